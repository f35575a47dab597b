//! Ownership of sessions when several servers share one database: the server registry,
//! session leases and the fence an owner's writes carry. Plain types; the store
//! (`store::ClusterStore`) keeps the rules:
//!
//! - **Servers** register with an id and an advertised address and heartbeat; a server
//!   whose heartbeat stopped is dead, and its leases expire with it.
//! - **A lease** names the one server that owns a live session until `expire_time`. While
//!   it is live (now < expire_time) only its owner can take or renew it; once expired or
//!   released anyone can, and the epoch then rises whenever the owner changes. The same
//!   owner renewing (heartbeat, re-acquire) keeps the epoch: nobody else held it between.
//!   A lease row outlives its owner (released: owner `""`), so epochs never repeat for a
//!   session; it goes with its session.
//! - **Fencing**: each write an owner makes for a session carries the epoch it acquired
//!   ([`Fence`]); the store checks it in the write's own transaction, under a lock that a
//!   concurrent acquisition waits for, and refuses the write with [`LEASE_LOST`] once the
//!   epoch moved on. So a paused or partitioned ex-owner can never overwrite what the new
//!   owner wrote. [`Fence::NONE`] skips the check (one server: SQLite, tests).
//! - **Clocks**: lease times are the database's clock on Postgres (servers' clocks may be
//!   skewed; the database is the one clock they share) and the local clock on SQLite (one
//!   server, one clock).

use std::time::Duration;

use super::{Error, Timestamp};

/// The reason of the error a fenced write gets once its lease moved on.
pub use crate::domain::reason::LEASE_LOST;

/// A server of a cluster as registered in the store.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerInfo {
    pub id: String,
    /// Where other servers reach it (the internal service).
    pub address: String,
    /// Set when it first registered; kept by later registrations.
    pub start_time: Timestamp,
    pub heartbeat_time: Timestamp,
}

/// Who owns a live session.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub session_id: String,
    /// The owner's server id; `""` when released.
    pub owner: String,
    /// The owner's advertised address from its server row; `""` if it has none.
    pub address: String,
    /// Rises each time the owner changes; what the owner's writes are fenced with.
    pub epoch: i64,
    /// The lease is live while now < expire_time (0 when released).
    pub expire_time: Timestamp,
}

/// The lease epoch an owner's write carries; the store refuses the write once the
/// session's lease has another epoch. `Fence::NONE` (0) writes unfenced (one server,
/// SQLite default, tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fence(pub i64);

impl Fence {
    /// No check: the write goes through whoever owns the session (epochs start at 1).
    pub const NONE: Fence = Fence(0);

    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// The error a write fenced with `fence` gets when `session_id`'s lease has another epoch
/// (or none): retryable, since the session lives on another server now and a retry is
/// routed there.
pub fn lease_lost(session_id: &str, fence: Fence) -> Error {
    Error::Unavailable {
        reason: LEASE_LOST,
        message: format!(
            "sessions/{session_id} moved to another server (lease epoch {} is no longer \
             current); retry",
            fence.0
        ),
        retry_after: Some(Duration::from_secs(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_zero_and_lease_lost_is_retryable() {
        assert!(Fence::NONE.is_none());
        assert!(Fence::default().is_none());
        assert!(!Fence(1).is_none());
        let err = lease_lost("s1", Fence(3));
        assert_eq!(err.reason(), crate::domain::reason::LEASE_LOST);
        assert_eq!(
            err.to_string(),
            "sessions/s1 moved to another server (lease epoch 3 is no longer current); retry"
        );
        assert!(matches!(
            err,
            Error::Unavailable {
                retry_after: Some(_),
                ..
            }
        ));
    }
}
