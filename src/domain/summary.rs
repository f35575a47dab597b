//! A session's context summary: what compaction leaves of the oldest part of a
//! conversation. The messages it replaces stay stored (history and export show them);
//! only the requests to the model use the summary in their place.
//!
//! A session has at most one summary. Compacting again summarises the previous summary
//! together with the messages after it, so `through_position` only grows and
//! `replaced_messages` counts every message ever folded in.

use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub session_id: String,
    /// Every message with a position up to this one is replaced by `text`.
    pub through_position: i64,
    pub text: String,
    /// Messages replaced in all, this and earlier compactions.
    pub replaced_messages: u32,
    /// The request's size before this compaction: the provider's count of the last
    /// request plus an estimate of what came since (an estimate alone before the first
    /// answer).
    pub tokens_before: u64,
    /// The estimated size right after: the summary and the messages kept.
    pub tokens_after: u64,
    /// The model that wrote it.
    pub model: String,
    pub create_time: Timestamp,
}
