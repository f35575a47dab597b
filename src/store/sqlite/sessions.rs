//! Sessions in SQLite, with what belongs to a session as a whole: its allowed tools,
//! its event-sequence floor, its whole content, and purging it (the trash and the
//! retention passes).

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    SqliteStore, cluster, exec, from_json, immediate, insert_message, insert_turn,
    message_from_row, query_one, storage_error, to_json, turn_from_row,
};
use crate::{
    domain::{Error, Result, Session, SessionStatus, Timestamp, Usage, cluster::Fence},
    store::{
        PurgeRule, SessionContent, SessionCursor, SessionFilter, SessionStore,
        codec::{
            self, MESSAGE_COLUMNS, SESSION_COLUMNS, TURN_COLUMNS, effort_from, effort_text,
            mode_from, mode_text, source_from, source_text,
        },
    },
};

/// SQLite's spelling of the list query: LIKE folds ASCII case; labels are read with
/// `json_extract` and a quoted JSON path (label keys hold no quote).
const DIALECT: codec::Dialect = codec::Dialect {
    like: "LIKE {} ESCAPE '\\'",
    label: "json_extract(labels, {})",
    label_path: |key| format!("$.\"{key}\""),
};

/// The sessions one retention pass purges: expired in the trash (?1) or inactive since
/// ?2, not kept (?3, a JSON array), without unfinished turns, without a live lease
/// (?4 is now), oldest first, at most ?5.
const PURGE_SELECT: &str = "SELECT s.id FROM sessions s \
     WHERE ((s.delete_time IS NOT NULL AND s.expire_time <= ?1) \
            OR (?2 IS NOT NULL AND s.last_active_time < ?2)) \
       AND s.id NOT IN (SELECT value FROM json_each(?3)) \
       AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id \
                       AND t.status IN ('queued', 'running')) \
       AND NOT EXISTS (SELECT 1 FROM session_leases l WHERE l.session_id = s.id \
                       AND l.owner <> '' AND l.expire_time > ?4) \
     ORDER BY COALESCE(s.expire_time, s.last_active_time), s.id LIMIT ?5";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let labels: String = row.get(7)?;
    Ok(Session {
        id: row.get(0)?,
        display_name: row.get(1)?,
        model: row.get(2)?,
        reasoning_effort: effort_from(&row.get::<_, String>(3)?),
        working_dir: row.get(4)?,
        permission_mode: mode_from(&row.get::<_, String>(5)?),
        system_prompt: row.get(6)?,
        labels: from_json::<BTreeMap<String, String>>(&labels)?,
        pinned: row.get(8)?,
        source: source_from(&row.get::<_, String>(9)?),
        message_count: row.get(10)?,
        last_message_preview: row.get(11)?,
        usage: Usage {
            input_tokens: row.get(12)?,
            output_tokens: row.get(13)?,
            reasoning_tokens: row.get(14)?,
            cached_input_tokens: row.get(15)?,
        },
        create_time: Timestamp(row.get(16)?),
        update_time: Timestamp(row.get(17)?),
        last_active_time: Timestamp(row.get(18)?),
        revision: row.get(19)?,
        forked_from: row.get(20)?,
        mcp_servers: row
            .get::<_, Option<String>>(21)?
            .map(|list| from_json::<Vec<String>>(&list))
            .transpose()?,
        delete_time: row.get::<_, Option<i64>>(22)?.map(Timestamp),
        expire_time: row.get::<_, Option<i64>>(23)?.map(Timestamp),
        profile: row.get(24)?,
        status: SessionStatus::Idle,
        queue_depth: 0,
        active_turn: None,
    })
}

fn insert_session(conn: &Connection, s: &Session) -> Result<()> {
    let labels = to_json(&s.labels)?;
    exec(conn,
        &format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
        ),
        params![
            s.id,
            s.display_name,
            s.model,
            effort_text(s.reasoning_effort),
            s.working_dir,
            mode_text(s.permission_mode),
            s.system_prompt,
            labels,
            s.pinned,
            source_text(s.source),
            s.message_count,
            s.last_message_preview,
            s.usage.input_tokens,
            s.usage.output_tokens,
            s.usage.reasoning_tokens,
            s.usage.cached_input_tokens,
            s.create_time.0,
            s.update_time.0,
            s.last_active_time.0,
            s.revision,
            s.forked_from,
            s.mcp_servers.as_ref().map(to_json).transpose()?,
            s.delete_time.map(|t| t.0),
            s.expire_time.map(|t| t.0),
            s.profile,
        ],
    )
    .map_err(|err| match err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Error::AlreadyExists {
                resource: crate::domain::Resource::Session,
                name: format!("sessions/{}", s.id),
            }
        }
        other => storage_error(other),
    })?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &Session) -> Result<()> {
        let session = session.clone();
        self.write(move |conn| insert_session(conn, &session)).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>> {
        let id = id.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"),
                [&id],
                session_from_row,
            )
            .optional()
            .map_err(storage_error)
        })
        .await
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<Session>> {
        let filter = filter.clone();
        let after = after.cloned();
        self.read(move |conn| {
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let sql = codec::session_list_sql(&filter, after.as_ref(), limit, &DIALECT, |value| {
                values.push(match value {
                    codec::Bound::Text(text) => text.into(),
                    codec::Bound::Int(n) => n.into(),
                    codec::Bound::Flag(flag) => i64::from(flag).into(),
                });
                format!("?{}", values.len())
            });
            let mut stmt = conn.prepare_cached(&sql).map_err(storage_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values), session_from_row)
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn update_session(&self, s: &Session, expected_revision: i64) -> Result<bool> {
        let s = s.clone();
        self.write(move |conn| {
            let labels = to_json(&s.labels)?;
            let changed = exec(
                conn,
                "UPDATE sessions SET display_name = ?2, model = ?3, reasoning_effort = ?4, \
                     working_dir = ?5, permission_mode = ?6, system_prompt = ?7, labels = ?8, \
                     pinned = ?9, message_count = ?10, last_message_preview = ?11, \
                     input_tokens = ?12, output_tokens = ?13, reasoning_tokens = ?14, \
                     cached_input_tokens = ?15, update_time = ?16, last_active_time = ?17, \
                     revision = ?18, mcp_servers = ?20, delete_time = ?21, expire_time = ?22 \
                     WHERE id = ?1 AND revision = ?19",
                params![
                    s.id,
                    s.display_name,
                    s.model,
                    effort_text(s.reasoning_effort),
                    s.working_dir,
                    mode_text(s.permission_mode),
                    s.system_prompt,
                    labels,
                    s.pinned,
                    s.message_count,
                    s.last_message_preview,
                    s.usage.input_tokens,
                    s.usage.output_tokens,
                    s.usage.reasoning_tokens,
                    s.usage.cached_input_tokens,
                    s.update_time.0,
                    s.last_active_time.0,
                    s.revision,
                    expected_revision,
                    s.mcp_servers.as_ref().map(to_json).transpose()?,
                    s.delete_time.map(|t| t.0),
                    s.expire_time.map(|t| t.0),
                ],
            )
            .map_err(storage_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_session(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let deleted =
                exec(conn, "DELETE FROM sessions WHERE id = ?1", [&id]).map_err(storage_error)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn purge_session(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let purged = exec(
                conn,
                "DELETE FROM sessions WHERE id = ?1 AND delete_time IS NOT NULL",
                [&id],
            )
            .map_err(storage_error)?;
            Ok(purged == 1)
        })
        .await
    }

    async fn purge_sessions(&self, rule: &PurgeRule) -> Result<Vec<String>> {
        let rule = rule.clone();
        self.write(move |conn| {
            // One writer at a time: the selection and the delete see the same rows.
            let tx = immediate(conn)?;
            let keep = to_json(&rule.keep)?;
            let ids = {
                let mut stmt = tx.prepare_cached(PURGE_SELECT).map_err(storage_error)?;
                stmt.query_map(
                    params![
                        rule.expired_at.0,
                        rule.inactive_before.map(|t| t.0),
                        keep,
                        Timestamp::now().0,
                        i64::try_from(rule.limit).unwrap_or(i64::MAX),
                    ],
                    |row| row.get::<_, String>(0),
                )
                .map_err(storage_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)?
            };
            for id in &ids {
                exec(&tx, "DELETE FROM sessions WHERE id = ?1", [id]).map_err(storage_error)?;
            }
            tx.commit().map_err(storage_error)?;
            Ok(ids)
        })
        .await
    }

    async fn insert_session_content(&self, content: &SessionContent) -> Result<()> {
        let content = content.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            insert_session(&tx, &content.session)?;
            for turn in &content.turns {
                insert_turn(&tx, turn)?;
            }
            for message in &content.messages {
                insert_message(&tx, message)?;
            }
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn session_content(&self, id: &str) -> Result<Option<SessionContent>> {
        let id = id.to_owned();
        self.read(move |conn| {
            // One read transaction: a consistent snapshot of session, messages and turns.
            conn.execute_batch("BEGIN").map_err(storage_error)?;
            let result = (|| {
                let Some(session) = query_one(
                    conn,
                    &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"),
                    [&id],
                    session_from_row,
                )
                .optional()
                .map_err(storage_error)?
                else {
                    return Ok(None);
                };
                // History order first; messages still waiting for their turn last.
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 \
                         ORDER BY position IS NULL, position, id"
                    ))
                    .map_err(storage_error)?;
                let messages = stmt
                    .query_map([&id], message_from_row)
                    .map_err(storage_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(storage_error)?;
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ?1 ORDER BY id"
                    ))
                    .map_err(storage_error)?;
                let turns = stmt
                    .query_map([&id], turn_from_row)
                    .map_err(storage_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(storage_error)?;
                Ok(Some(SessionContent {
                    session,
                    messages,
                    turns,
                }))
            })();
            conn.execute_batch("COMMIT").map_err(storage_error)?;
            result
        })
        .await
    }

    async fn allowed_tools(&self, session_id: &str) -> Result<Vec<String>> {
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            let json: Option<String> = query_one(
                conn,
                "SELECT allowed_tools FROM sessions WHERE id = ?1",
                [&session_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(storage_error)?;
            json.map_or(Ok(Vec::new()), |j| {
                from_json::<Vec<String>>(&j).map_err(storage_error)
            })
        })
        .await
    }

    async fn allow_tool(&self, session_id: &str, tool: &str, fence: Fence) -> Result<()> {
        let (session_id, tool) = (session_id.to_owned(), tool.to_owned());
        self.write(move |conn| {
            // One statement: concurrent grants never lose each other.
            cluster::fenced(conn, &session_id, fence, |conn| {
                exec(
                    conn,
                    "UPDATE sessions SET allowed_tools = (\
                       SELECT json_group_array(value) FROM (\
                         SELECT value FROM json_each(allowed_tools) UNION SELECT ?2)) \
                     WHERE id = ?1",
                    params![session_id, tool],
                )
                .map_err(storage_error)?;
                Ok(())
            })
        })
        .await
    }

    async fn event_sequence(&self, session_id: &str) -> Result<i64> {
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            Ok(query_one(
                conn,
                "SELECT event_sequence FROM sessions WHERE id = ?1",
                [&session_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(storage_error)?
            .unwrap_or(0))
        })
        .await
    }

    async fn set_event_sequence(
        &self,
        session_id: &str,
        sequence: i64,
        only_if: Option<i64>,
        fence: Fence,
    ) -> Result<()> {
        let session_id = session_id.to_owned();
        self.write(move |conn| {
            cluster::fenced(conn, &session_id, fence, |conn| {
                match only_if {
                    Some(expected) => exec(
                        conn,
                        "UPDATE sessions SET event_sequence = ?2 \
                         WHERE id = ?1 AND event_sequence = ?3",
                        params![session_id, sequence, expected],
                    ),
                    None => exec(
                        conn,
                        "UPDATE sessions SET event_sequence = MAX(event_sequence, ?2) \
                         WHERE id = ?1",
                        params![session_id, sequence],
                    ),
                }
                .map_err(storage_error)?;
                Ok(())
            })
        })
        .await
    }
}
