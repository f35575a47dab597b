//! A session's messages in Postgres: the conversation (messages with a position) and
//! the messages waiting to join it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    Param, PostgresStore, cluster::check_fence, decode_all, execute, get, lock_session, pg_error,
    pg_text, query, query_opt, storage_error, turns,
};
use crate::{
    domain::{Message, Part, Result, Role, Timestamp, Turn, cluster::Fence},
    store::{
        MessageStore,
        codec::{self, MESSAGE_COLUMNS, json_name},
    },
};

pub(super) fn message_from_row(row: &Row) -> Result<Message> {
    let role: &str = get(row, 3)?;
    let parts: &str = get(row, 4)?;
    Ok(Message {
        id: get(row, 0)?,
        session_id: get(row, 1)?,
        turn_id: get(row, 2)?,
        role: codec::from_json_name::<Role>(role).map_err(storage_error)?,
        parts: codec::from_json::<Vec<Part>>(parts).map_err(storage_error)?,
        create_time: Timestamp(get(row, 5)?),
        incomplete: get(row, 6)?,
        model: get(row, 7)?,
        position: get(row, 8)?,
    })
}

/// Inserts a new message row (an existing id is an error).
pub(super) async fn insert_message<C: GenericClient>(client: &C, m: &Message) -> Result<u64> {
    write_message(client, m, "").await
}

/// Inserts a message row followed by `conflict` (an `ON CONFLICT` clause or nothing);
/// returns the rows inserted.
async fn write_message<C: GenericClient>(client: &C, m: &Message, conflict: &str) -> Result<u64> {
    let parts = codec::to_json(&m.parts).map_err(storage_error)?;
    execute(
        client,
        &format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {conflict}"
        ),
        &[
            &m.id,
            &m.session_id,
            &m.turn_id,
            &json_name(&m.role),
            &parts,
            &m.create_time.0,
            &m.incomplete,
            &m.model,
            &m.position,
        ],
    )
    .await
}

/// Replaces a stored message's content, keeping a position it has when `m` has none.
/// (SQLite's upsert does the same in its `ON CONFLICT DO UPDATE`.)
async fn rewrite_message<C: GenericClient>(client: &C, m: &Message) -> Result<()> {
    let parts = codec::to_json(&m.parts).map_err(storage_error)?;
    execute(
        client,
        "UPDATE messages SET turn_id = $2, role = $3, parts = $4, incomplete = $5, model = $6, \
         position = COALESCE($7, position) WHERE id = $1",
        &[
            &m.id,
            &m.turn_id,
            &json_name(&m.role),
            &parts,
            &m.incomplete,
            &m.model,
            &m.position,
        ],
    )
    .await?;
    Ok(())
}

/// Counts a new message in its session: count, preview, activity time.
async fn count_message<C: GenericClient>(client: &C, m: &Message) -> Result<()> {
    let preview = crate::domain::session::preview(&m.text());
    let preview = pg_text(&preview);
    execute(
        client,
        "UPDATE sessions SET message_count = message_count + 1, \
         last_message_preview = CASE WHEN $2::TEXT = '' THEN last_message_preview ELSE $2::TEXT END, \
         last_active_time = GREATEST(last_active_time, $3) WHERE id = $1",
        &[&m.session_id, &preview.as_ref(), &m.create_time.0],
    )
    .await?;
    Ok(())
}

async fn query_messages<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Message>> {
    decode_all(&query(client, sql, params).await?, message_from_row)
}

/// Where a message id bounds a page: None for an unknown id (which matches nothing),
/// else its position (None while it waits) and the id.
type Bound = Option<(Option<i64>, String)>;

/// The bound message `id` names, if a bound is given.
async fn bound<C: GenericClient>(client: &C, id: Option<&str>) -> Result<Option<Bound>> {
    let Some(id) = id else { return Ok(None) };
    let row = query_opt(
        client,
        "SELECT position FROM messages WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(Some(match row {
        Some(row) => Some((get::<Option<i64>>(&row, 0)?, id.to_owned())),
        None => None,
    }))
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn append_user_message(
        &self,
        message: &Message,
        turn: Option<&Turn>,
        fence: Fence,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // The session's row lock (as `lock_session`) and whether it is in the trash: the
        // move there waits for this lock, so none can commit between check and insert.
        let session = query_opt(
            &tx,
            "SELECT delete_time FROM sessions WHERE id = $1 FOR NO KEY UPDATE",
            &[&message.session_id],
        )
        .await?;
        check_fence(&tx, &message.session_id, fence).await?;
        if let Some(row) = session
            && get::<Option<i64>>(&row, 0)?.is_some()
        {
            return Err(crate::domain::session::session_deleted(&message.session_id));
        }
        if let Some(turn) = turn {
            turns::insert_turn(&tx, turn).await?;
        }
        insert_message(&tx, message).await?;
        count_message(&tx, message).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn put_message(&self, message: &Message, fence: Fence) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Under the session's lock, "is it new?" cannot change before the commit.
        lock_session(&tx, &message.session_id).await?;
        check_fence(&tx, &message.session_id, fence).await?;
        let inserted = write_message(&tx, message, "ON CONFLICT (id) DO NOTHING").await? == 1;
        if inserted {
            count_message(&tx, message).await?;
        } else {
            rewrite_message(&tx, message).await?;
            let text = message.text();
            if !text.is_empty() {
                let preview = crate::domain::session::preview(&text);
                execute(
                    &tx,
                    "UPDATE sessions SET last_message_preview = $2 WHERE id = $1",
                    &[&message.session_id, &pg_text(&preview).as_ref()],
                )
                .await?;
            }
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn get_message(&self, session_id: &str, message_id: &str) -> Result<Option<Message>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND id = $2"),
            &[&session_id, &message_id],
        )
        .await?
        .as_ref()
        .map(message_from_row)
        .transpose()
    }

    async fn list_messages(
        &self,
        session_id: &str,
        before: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let client = self.client().await?;
        // Conversation order, newest first: messages still waiting for their turn (no
        // position yet) are the newest, by id; then by position. Two index range scans
        // (messages_waiting, messages_history) that stop at `limit`, as on SQLite.
        let before = bound(&client, before).await?;
        let after = bound(&client, after).await?;
        if matches!(before, Some(None)) || matches!(after, Some(None)) {
            return Ok(Vec::new());
        }
        let before = before.flatten();
        let after = after.flatten();
        let limit_total = super::limit(limit);
        let mut out = Vec::new();
        // Waiting messages: only below a waiting `before`, above any positioned `after`.
        let waiting_allowed = before.as_ref().is_none_or(|(p, _)| p.is_none());
        if waiting_allowed {
            let mut sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND position IS NULL"
            );
            let mut params: Vec<Param<'_>> = vec![&session_id];
            if let Some((_, id)) = &before {
                params.push(id);
                sql.push_str(&format!(" AND id < ${}", params.len()));
            }
            if let Some((None, id)) = &after {
                params.push(id);
                sql.push_str(&format!(" AND id > ${}", params.len()));
            }
            params.push(&limit_total);
            sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));
            out = query_messages(&client, &sql, &params).await?;
        }
        // Positioned messages: none above a waiting `after`.
        let positioned_allowed = after.as_ref().is_none_or(|(p, _)| p.is_some());
        if out.len() < limit && positioned_allowed {
            let remaining = super::limit(limit - out.len());
            let mut sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 AND position IS NOT NULL"
            );
            let mut params: Vec<Param<'_>> = vec![&session_id];
            if let Some((Some(position), id)) = &before {
                params.push(position);
                params.push(id);
                sql.push_str(&format!(
                    " AND (position, id) < (${}, ${})",
                    params.len() - 1,
                    params.len()
                ));
            }
            if let Some((Some(position), id)) = &after {
                params.push(position);
                params.push(id);
                sql.push_str(&format!(
                    " AND (position, id) > (${}, ${})",
                    params.len() - 1,
                    params.len()
                ));
            }
            params.push(&remaining);
            sql.push_str(&format!(
                " ORDER BY position DESC, id DESC LIMIT ${}",
                params.len()
            ));
            out.extend(query_messages(&client, &sql, &params).await?);
        }
        Ok(out)
    }

    async fn history(&self, session_id: &str) -> Result<Vec<Message>> {
        let client = self.client().await?;
        query_messages(
            &client,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages \
                 WHERE session_id = $1 AND position IS NOT NULL ORDER BY position, id"
            ),
            &[&session_id],
        )
        .await
    }

    async fn next_position(&self, session_id: &str) -> Result<i64> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT COALESCE(MAX(position), 0) + 1 FROM messages WHERE session_id = $1",
            &[&session_id],
        )
        .await?
        .ok_or_else(|| storage_error("an aggregate returned no row"))?;
        get(&row, 0)
    }

    async fn set_message_position(
        &self,
        session_id: &str,
        message_id: &str,
        position: i64,
        fence: Fence,
    ) -> Result<()> {
        const SQL: &str = "UPDATE messages SET position = $3 WHERE session_id = $1 AND id = $2";
        let mut client = self.client().await?;
        if fence.is_none() {
            execute(&client, SQL, &[&session_id, &message_id, &position]).await?;
            return Ok(());
        }
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_session(&tx, session_id).await?;
        check_fence(&tx, session_id, fence).await?;
        execute(&tx, SQL, &[&session_id, &message_id, &position]).await?;
        tx.commit().await.map_err(pg_error)
    }
}
