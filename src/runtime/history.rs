//! History of a session as stored: its messages and turns, one page at a time. Reads
//! the store directly on any server (a running turn is read from its owner's live state
//! when that is this server); page tokens are opaque and bound to their filters.

use super::Chat;
use crate::domain::{Error, Message, Resource, Result, Turn, page};

fn session_not_found(id: &str) -> Error {
    Error::not_found(Resource::Session, format!("sessions/{id}"))
}

impl Chat {
    pub async fn get_turn(&self, session_id: &str, turn_id: &str) -> Result<Turn> {
        if let Some(live) = self.map().get(session_id).cloned() {
            let running = live
                .lock()
                .active
                .as_ref()
                .filter(|a| a.turn.id == turn_id)
                .map(|a| a.turn.clone());
            if let Some(turn) = running {
                return Ok(turn);
            }
        }
        self.deps
            .store
            .get_turn(session_id, turn_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    Resource::Turn,
                    format!("sessions/{session_id}/turns/{turn_id}"),
                )
            })
    }

    pub async fn list_turns(
        &self,
        session_id: &str,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<Turn>, String)> {
        self.deps.sessions.get(session_id).await?;
        let limit = page::page_size(page_size)?;
        let filters = page::fingerprint(&[session_id]);
        let before: Option<String> = page::decode_token(page_token, filters)?;
        let mut turns = self
            .deps
            .store
            .list_turns(session_id, before.as_deref(), limit + 1)
            .await?;
        let next = next_token(&mut turns, limit, |t| t.id.clone(), filters);
        Ok((turns, next))
    }

    pub async fn get_message(&self, session_id: &str, message_id: &str) -> Result<Message> {
        self.deps
            .store
            .get_message(session_id, message_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    Resource::Message,
                    format!("sessions/{session_id}/messages/{message_id}"),
                )
            })
    }

    /// History newest first; `before`/`after` are message ids.
    pub async fn list_messages(
        &self,
        session_id: &str,
        before: Option<&str>,
        after: Option<&str>,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<Message>, String)> {
        self.deps
            .sessions
            .get(session_id)
            .await
            .map_err(|_| session_not_found(session_id))?;
        let limit = page::page_size(page_size)?;
        let filters = page::fingerprint(&[session_id, before.unwrap_or(""), after.unwrap_or("")]);
        let cursor: Option<String> = page::decode_token(page_token, filters)?;
        // The page token continues below the last message served.
        let before = cursor.as_deref().or(before);
        let mut messages = self
            .deps
            .store
            .list_messages(session_id, before, after, limit + 1)
            .await?;
        let next = next_token(&mut messages, limit, |m| m.id.clone(), filters);
        Ok((messages, next))
    }
}

/// Truncates a `limit + 1` page to `limit`, returning the next page token.
fn next_token<T>(
    items: &mut Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> String,
    filters: u64,
) -> String {
    if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| page::encode_token(&key(last), filters))
            .unwrap_or_default()
    } else {
        String::new()
    }
}
