//! Turn records in Postgres. A turn that becomes terminal adds its usage to its session
//! exactly once, however often it is written.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    PostgresStore, cluster::check_fence, decode_all, execute, get, lock_session, pg_error, pg_text,
    query, query_opt, storage_error,
};
use crate::{
    domain::{
        Result, Timestamp, ToolCallRecord, Turn, TurnStatus, Usage, cluster::Fence,
        outbox::OutboxDelivery,
    },
    store::{
        TurnStore,
        codec::{self, TURN_COLUMNS, json_name},
    },
};

pub(super) fn turn_from_row(row: &Row) -> Result<Turn> {
    let status: &str = get(row, 2)?;
    let tool_calls: &str = get(row, 17)?;
    let step_count: i64 = get(row, 16)?;
    Ok(Turn {
        id: get(row, 0)?,
        session_id: get(row, 1)?,
        status: codec::from_json_name::<TurnStatus>(status).map_err(storage_error)?,
        user_message_id: get(row, 3)?,
        model: get(row, 4)?,
        usage: Usage {
            input_tokens: get(row, 5)?,
            output_tokens: get(row, 6)?,
            reasoning_tokens: get(row, 7)?,
            cached_input_tokens: get(row, 8)?,
        },
        latency_micros: get(row, 9)?,
        time_to_first_token_micros: get(row, 10)?,
        error: codec::turn_error(get(row, 11)?, get(row, 12)?),
        create_time: Timestamp(get(row, 13)?),
        start_time: get::<Option<i64>>(row, 14)?.map(Timestamp),
        end_time: get::<Option<i64>>(row, 15)?.map(Timestamp),
        step_count: i32::try_from(step_count)
            .map_err(|_| storage_error(format!("turn step_count {step_count} out of range")))?,
        tool_calls: codec::from_json::<Vec<ToolCallRecord>>(tool_calls).map_err(storage_error)?,
    })
}

/// Inserts a new turn row (an existing id is an error).
pub(super) async fn insert_turn<C: GenericClient>(client: &C, t: &Turn) -> Result<()> {
    write_turn(client, t, "").await
}

/// Every column replaced, as SQLite's `INSERT OR REPLACE` does.
const TURN_UPSERT: &str = "ON CONFLICT (id) DO UPDATE SET session_id = excluded.session_id, \
    status = excluded.status, user_message_id = excluded.user_message_id, \
    model = excluded.model, input_tokens = excluded.input_tokens, \
    output_tokens = excluded.output_tokens, reasoning_tokens = excluded.reasoning_tokens, \
    cached_input_tokens = excluded.cached_input_tokens, \
    latency_micros = excluded.latency_micros, first_token_micros = excluded.first_token_micros, \
    error_reason = excluded.error_reason, error_message = excluded.error_message, \
    create_time = excluded.create_time, start_time = excluded.start_time, \
    end_time = excluded.end_time, step_count = excluded.step_count, \
    tool_calls = excluded.tool_calls";

async fn write_turn<C: GenericClient>(client: &C, t: &Turn, conflict: &str) -> Result<()> {
    let tool_calls = codec::to_json(&t.tool_calls).map_err(storage_error)?;
    execute(
        client,
        &format!(
            "INSERT INTO turns ({TURN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18) {conflict}"
        ),
        &[
            &t.id,
            &t.session_id,
            &json_name(&t.status),
            &t.user_message_id,
            &t.model,
            &t.usage.input_tokens,
            &t.usage.output_tokens,
            &t.usage.reasoning_tokens,
            &t.usage.cached_input_tokens,
            &t.latency_micros,
            &t.time_to_first_token_micros,
            &t.error.as_ref().map(|e| pg_text(&e.reason)),
            &t.error.as_ref().map(|e| pg_text(&e.message)),
            &t.create_time.0,
            &t.start_time.map(|t| t.0),
            &t.end_time.map(|t| t.0),
            &i64::from(t.step_count),
            &tool_calls,
        ],
    )
    .await?;
    Ok(())
}

async fn query_turns<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[super::Param<'_>],
) -> Result<Vec<Turn>> {
    decode_all(&query(client, sql, params).await?, turn_from_row)
}

#[async_trait]
impl TurnStore for PostgresStore {
    async fn put_turn_with(
        &self,
        turn: &Turn,
        fence: Fence,
        deliveries: &[OutboxDelivery],
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // The session's lock serialises its turn writes, so the status read here is still
        // the stored one at commit and a turn's usage is added once; the turn's own row
        // lock covers a turn stored under another session id.
        lock_session(&tx, &turn.session_id).await?;
        check_fence(&tx, &turn.session_id, fence).await?;
        let previous = query_opt(
            &tx,
            "SELECT status FROM turns WHERE id = $1 FOR UPDATE",
            &[&turn.id],
        )
        .await?;
        let was_terminal = match &previous {
            Some(row) => codec::from_json_name::<TurnStatus>(get(row, 0)?)
                .ok()
                .is_some_and(TurnStatus::is_terminal),
            None => false,
        };
        write_turn(&tx, turn, TURN_UPSERT).await?;
        if turn.status.is_terminal() && !was_terminal {
            let u = &turn.usage;
            execute(
                &tx,
                "UPDATE sessions SET input_tokens = input_tokens + $2, \
                 output_tokens = output_tokens + $3, reasoning_tokens = reasoning_tokens + $4, \
                 cached_input_tokens = cached_input_tokens + $5, \
                 last_active_time = GREATEST(last_active_time, $6) WHERE id = $1",
                &[
                    &turn.session_id,
                    &u.input_tokens,
                    &u.output_tokens,
                    &u.reasoning_tokens,
                    &u.cached_input_tokens,
                    &turn.end_time.unwrap_or(turn.create_time).0,
                ],
            )
            .await?;
        }
        super::outbox::insert_deliveries(&tx, deliveries).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn get_turn(&self, session_id: &str, turn_id: &str) -> Result<Option<Turn>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {TURN_COLUMNS} FROM turns WHERE session_id = $1 AND id = $2"),
            &[&session_id, &turn_id],
        )
        .await?
        .as_ref()
        .map(turn_from_row)
        .transpose()
    }

    async fn list_turns(
        &self,
        session_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Turn>> {
        let client = self.client().await?;
        let limit = super::limit(limit);
        match before {
            Some(before) => {
                query_turns(
                    &client,
                    &format!(
                        "SELECT {TURN_COLUMNS} FROM turns WHERE session_id = $1 AND id < $2 \
                         ORDER BY id DESC LIMIT $3"
                    ),
                    &[&session_id, &before, &limit],
                )
                .await
            }
            None => {
                query_turns(
                    &client,
                    &format!(
                        "SELECT {TURN_COLUMNS} FROM turns WHERE session_id = $1 \
                         ORDER BY id DESC LIMIT $2"
                    ),
                    &[&session_id, &limit],
                )
                .await
            }
        }
    }

    async fn unfinished_turns(&self, session_id: Option<&str>) -> Result<Vec<Turn>> {
        let client = self.client().await?;
        query_turns(
            &client,
            &format!(
                "SELECT {TURN_COLUMNS} FROM turns WHERE status IN ('queued', 'running') \
                 AND ($1::TEXT IS NULL OR session_id = $1) ORDER BY id"
            ),
            &[&session_id],
        )
        .await
    }
}
