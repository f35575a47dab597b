//! Sessions in Postgres, with what belongs to a session as a whole: its allowed tools,
//! its event-sequence floor and its whole content.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::{IsolationLevel, Row, types::ToSql};

use super::{
    PostgresStore,
    cluster::{NOW, check_fence},
    decode_all, execute, get, lock_session, messages, pg_error, query, query_opt, storage_error,
    try_execute, turns,
};
use crate::{
    domain::{Error, Resource, Result, Session, SessionStatus, Timestamp, Usage, cluster::Fence},
    store::{
        PurgeRule, SessionContent, SessionCursor, SessionFilter, SessionStore,
        codec::{
            self, MESSAGE_COLUMNS, SESSION_COLUMNS, TURN_COLUMNS, effort_from, effort_text,
            mode_from, mode_text, source_from, source_text,
        },
    },
};

/// Postgres' spelling of the list query. The columns are COLLATE "C": ILIKE folds ASCII
/// case only, as SQLite's LIKE does; `\` is its escape character by default. A label's
/// value is `->>` of the JSON (its key cast, since `->>` also takes an index).
const DIALECT: codec::Dialect = codec::Dialect {
    like: "ILIKE {}",
    label: "(labels::jsonb ->> {}::TEXT)",
    label_path: str::to_owned,
};

/// A session a retention pass may purge: no queued or running turn, and no live lease
/// (by the database's clock, as leases are).
fn unowned() -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id \
           AND t.status IN ('queued', 'running')) \
         AND NOT EXISTS (SELECT 1 FROM session_leases l WHERE l.session_id = s.id \
           AND l.owner <> '' AND l.expire_time > {NOW})"
    )
}

fn session_from_row(row: &Row) -> Result<Session> {
    let labels: String = get(row, 7)?;
    Ok(Session {
        id: get(row, 0)?,
        display_name: get(row, 1)?,
        model: get(row, 2)?,
        reasoning_effort: effort_from(get(row, 3)?),
        working_dir: get(row, 4)?,
        permission_mode: mode_from(get(row, 5)?),
        system_prompt: get(row, 6)?,
        labels: codec::from_json::<BTreeMap<String, String>>(&labels).map_err(storage_error)?,
        pinned: get(row, 8)?,
        source: source_from(get(row, 9)?),
        message_count: get(row, 10)?,
        last_message_preview: get(row, 11)?,
        usage: Usage {
            input_tokens: get(row, 12)?,
            output_tokens: get(row, 13)?,
            reasoning_tokens: get(row, 14)?,
            cached_input_tokens: get(row, 15)?,
        },
        create_time: Timestamp(get(row, 16)?),
        update_time: Timestamp(get(row, 17)?),
        last_active_time: Timestamp(get(row, 18)?),
        revision: get(row, 19)?,
        forked_from: get(row, 20)?,
        mcp_servers: get::<Option<String>>(row, 21)?
            .map(|list| codec::from_json::<Vec<String>>(&list).map_err(storage_error))
            .transpose()?,
        delete_time: get::<Option<i64>>(row, 22)?.map(Timestamp),
        expire_time: get::<Option<i64>>(row, 23)?.map(Timestamp),
        profile: get(row, 24)?,
        status: SessionStatus::Idle,
        queue_depth: 0,
        active_turn: None,
    })
}

fn mcp_servers_json(s: &Session) -> Result<Option<String>> {
    s.mcp_servers
        .as_ref()
        .map(|list| codec::to_json(list).map_err(storage_error))
        .transpose()
}

/// Inserts a new session: ALREADY_EXISTS if the id is taken.
async fn insert_session<C: GenericClient>(client: &C, s: &Session) -> Result<()> {
    let labels = codec::to_json(&s.labels).map_err(storage_error)?;
    let mcp_servers = mcp_servers_json(s)?;
    try_execute(
        client,
        &format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
        ),
        &[
            &s.id,
            &s.display_name,
            &s.model,
            &effort_text(s.reasoning_effort),
            &s.working_dir,
            &mode_text(s.permission_mode),
            &s.system_prompt,
            &labels,
            &s.pinned,
            &source_text(s.source),
            &s.message_count,
            &s.last_message_preview,
            &s.usage.input_tokens,
            &s.usage.output_tokens,
            &s.usage.reasoning_tokens,
            &s.usage.cached_input_tokens,
            &s.create_time.0,
            &s.update_time.0,
            &s.last_active_time.0,
            &s.revision,
            &s.forked_from,
            &mcp_servers,
            &s.delete_time.map(|t| t.0),
            &s.expire_time.map(|t| t.0),
            &s.profile,
        ],
    )
    .await
    .map_err(|err| {
        if super::is_unique_violation(&err) {
            Error::AlreadyExists {
                resource: Resource::Session,
                name: format!("sessions/{}", s.id),
            }
        } else {
            pg_error(err)
        }
    })?;
    Ok(())
}

/// A list query's SQL and its parameters, numbered as they are bound.
#[derive(Default)]
struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn as_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, session: &Session) -> Result<()> {
        insert_session(&self.client().await?, session).await
    }

    async fn get_session(&self, id: &str) -> Result<Option<Session>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
    }

    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<Session>> {
        let mut params = Params::default();
        let sql = codec::session_list_sql(filter, after, limit, &DIALECT, |value| match value {
            codec::Bound::Text(text) => params.bind(text),
            codec::Bound::Int(n) => params.bind(n),
            codec::Bound::Flag(flag) => params.bind(flag),
        });
        let client = self.client().await?;
        let rows = query(&client, &sql, &params.as_refs()).await?;
        decode_all(&rows, session_from_row)
    }

    async fn update_session(&self, s: &Session, expected_revision: i64) -> Result<bool> {
        let labels = codec::to_json(&s.labels).map_err(storage_error)?;
        let mcp_servers = mcp_servers_json(s)?;
        let client = self.client().await?;
        let changed = execute(
            &client,
            "UPDATE sessions SET display_name = $2, model = $3, reasoning_effort = $4, \
                 working_dir = $5, permission_mode = $6, system_prompt = $7, labels = $8, \
                 pinned = $9, message_count = $10, last_message_preview = $11, \
                 input_tokens = $12, output_tokens = $13, reasoning_tokens = $14, \
                 cached_input_tokens = $15, update_time = $16, last_active_time = $17, \
                 revision = $18, mcp_servers = $20, delete_time = $21, expire_time = $22 \
                 WHERE id = $1 AND revision = $19",
            &[
                &s.id,
                &s.display_name,
                &s.model,
                &effort_text(s.reasoning_effort),
                &s.working_dir,
                &mode_text(s.permission_mode),
                &s.system_prompt,
                &labels,
                &s.pinned,
                &s.message_count,
                &s.last_message_preview,
                &s.usage.input_tokens,
                &s.usage.output_tokens,
                &s.usage.reasoning_tokens,
                &s.usage.cached_input_tokens,
                &s.update_time.0,
                &s.last_active_time.0,
                &s.revision,
                &expected_revision,
                &mcp_servers,
                &s.delete_time.map(|t| t.0),
                &s.expire_time.map(|t| t.0),
            ],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn delete_session(&self, id: &str) -> Result<bool> {
        let client = self.client().await?;
        // Messages and turns go with it (ON DELETE CASCADE).
        let deleted = execute(&client, "DELETE FROM sessions WHERE id = $1", &[&id]).await?;
        Ok(deleted == 1)
    }

    async fn purge_session(&self, id: &str) -> Result<bool> {
        let client = self.client().await?;
        let purged = execute(
            &client,
            "DELETE FROM sessions WHERE id = $1 AND delete_time IS NOT NULL",
            &[&id],
        )
        .await?;
        Ok(purged == 1)
    }

    async fn purge_sessions(&self, rule: &PurgeRule) -> Result<Vec<String>> {
        let unowned = unowned();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // 1. The candidates, row-locked; rows another server is purging (or a writer
        //    holds) are skipped, so servers purging at once take disjoint sets.
        let rows = query(
            &tx,
            &format!(
                "SELECT s.id FROM sessions s \
                 WHERE ((s.delete_time IS NOT NULL AND s.expire_time <= $1) \
                        OR ($2::BIGINT IS NOT NULL AND s.last_active_time < $2)) \
                   AND NOT (s.id = ANY($3)) AND {unowned} \
                 ORDER BY COALESCE(s.expire_time, s.last_active_time), s.id LIMIT $4 \
                 FOR UPDATE OF s SKIP LOCKED"
            ),
            &[
                &rule.expired_at.0,
                &rule.inactive_before.map(|t| t.0),
                &rule.keep,
                &super::limit(rule.limit),
            ],
        )
        .await?;
        let candidates: Vec<String> = rows.iter().map(|row| get(row, 0)).collect::<Result<_>>()?;
        if candidates.is_empty() {
            return Ok(candidates);
        }
        // 2. Their lease rows, waiting for a lease being taken right now (updating a lease
        //    row locks no session row). A lease inserted from now on waits for the session
        //    row, and then finds the session gone.
        query(
            &tx,
            "SELECT session_id FROM session_leases WHERE session_id = ANY($1) FOR UPDATE",
            &[&candidates],
        )
        .await?;
        // 3. A new snapshot: a lease taken meanwhile is seen, and keeps its session.
        let rows = query(
            &tx,
            &format!("DELETE FROM sessions s WHERE s.id = ANY($1) AND {unowned} RETURNING s.id"),
            &[&candidates],
        )
        .await?;
        let purged: std::collections::HashSet<String> =
            rows.iter().map(|row| get(row, 0)).collect::<Result<_>>()?;
        tx.commit().await.map_err(pg_error)?;
        // In the candidates' order (RETURNING's is the table's).
        Ok(candidates
            .into_iter()
            .filter(|id| purged.contains(id))
            .collect())
    }

    async fn insert_session_content(&self, content: &SessionContent) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        insert_session(&tx, &content.session).await?;
        for turn in &content.turns {
            turns::insert_turn(&tx, turn).await?;
        }
        for message in &content.messages {
            messages::insert_message(&tx, message).await?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn session_content(&self, id: &str) -> Result<Option<SessionContent>> {
        let mut client = self.client().await?;
        // One snapshot of session, messages and turns.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let Some(row) = query_opt(
            &tx,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"),
            &[&id],
        )
        .await?
        else {
            return Ok(None);
        };
        let session = session_from_row(&row)?;
        // History order first; messages still waiting for their turn last.
        let rows = query(
            &tx,
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 \
                 ORDER BY position IS NULL, position, id"
            ),
            &[&id],
        )
        .await?;
        let messages = decode_all(&rows, messages::message_from_row)?;
        let rows = query(
            &tx,
            &format!("SELECT {TURN_COLUMNS} FROM turns WHERE session_id = $1 ORDER BY id"),
            &[&id],
        )
        .await?;
        let turns = decode_all(&rows, turns::turn_from_row)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some(SessionContent {
            session,
            messages,
            turns,
        }))
    }

    async fn allowed_tools(&self, session_id: &str) -> Result<Vec<String>> {
        let client = self.client().await?;
        let Some(row) = query_opt(
            &client,
            "SELECT allowed_tools FROM sessions WHERE id = $1",
            &[&session_id],
        )
        .await?
        else {
            return Ok(Vec::new());
        };
        let json: String = get(&row, 0)?;
        codec::from_json::<Vec<String>>(&json).map_err(storage_error)
    }

    async fn allow_tool(&self, session_id: &str, tool: &str, fence: Fence) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Read and written under the row lock: concurrent grants never lose each other.
        let row = query_opt(
            &tx,
            "SELECT allowed_tools FROM sessions WHERE id = $1 FOR NO KEY UPDATE",
            &[&session_id],
        )
        .await?;
        // Before the missing-session no-op: a fenced grant for a session that is gone (so
        // is its lease) is LEASE_LOST, as on SQLite and as the other fenced writes.
        check_fence(&tx, session_id, fence).await?;
        let Some(row) = row else {
            return Ok(());
        };
        let json: String = get(&row, 0)?;
        let mut tools = codec::from_json::<Vec<String>>(&json).map_err(storage_error)?;
        if tools.iter().any(|t| t == tool) {
            return Ok(());
        }
        // Sorted, without duplicates: what SQLite's `UNION` leaves.
        tools.push(tool.to_owned());
        tools.sort();
        tools.dedup();
        let json = codec::to_json(&tools).map_err(storage_error)?;
        execute(
            &tx,
            "UPDATE sessions SET allowed_tools = $2 WHERE id = $1",
            &[&session_id, &json],
        )
        .await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn event_sequence(&self, session_id: &str) -> Result<i64> {
        let client = self.client().await?;
        match query_opt(
            &client,
            "SELECT event_sequence FROM sessions WHERE id = $1",
            &[&session_id],
        )
        .await?
        {
            Some(row) => get(&row, 0),
            None => Ok(0),
        }
    }

    async fn set_event_sequence(
        &self,
        session_id: &str,
        sequence: i64,
        only_if: Option<i64>,
        fence: Fence,
    ) -> Result<()> {
        let mut client = self.client().await?;
        if fence.is_none() {
            return write_event_sequence(&client, session_id, sequence, only_if).await;
        }
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_session(&tx, session_id).await?;
        check_fence(&tx, session_id, fence).await?;
        write_event_sequence(&tx, session_id, sequence, only_if).await?;
        tx.commit().await.map_err(pg_error)
    }
}

/// Sets a session's event-sequence floor: one statement each way, so the condition is
/// checked on the row it updates.
async fn write_event_sequence<C: GenericClient>(
    client: &C,
    session_id: &str,
    sequence: i64,
    only_if: Option<i64>,
) -> Result<()> {
    match only_if {
        Some(expected) => {
            execute(
                client,
                "UPDATE sessions SET event_sequence = $2 WHERE id = $1 AND event_sequence = $3",
                &[&session_id, &sequence, &expected],
            )
            .await?
        }
        None => {
            execute(
                client,
                "UPDATE sessions SET event_sequence = GREATEST(event_sequence, $2) WHERE id = $1",
                &[&session_id, &sequence],
            )
            .await?
        }
    };
    Ok(())
}
