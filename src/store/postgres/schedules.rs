//! Schedules and their runs in Postgres. A cron fire time is claimed by inserting its
//! run under the unique (schedule, fire time) key, so it fires once however many servers
//! share the database; the claim holds the schedule's row lock, so the schedule cannot be
//! disabled or deleted between the check and the claim.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    Param, PostgresStore,
    cluster::{NOW, ttl_micros},
    decode_all, execute, get, pg_error, pg_text, query, query_opt, storage_error,
};
use crate::{
    domain::{
        Result, Timestamp,
        outbox::OutboxDelivery,
        schedule::{Schedule, ScheduleRun, run_taken_over},
        time,
    },
    store::{
        ScheduleStore,
        codec::{self, RUN_COLUMNS, SCHEDULE_COLUMNS},
    },
};

fn schedule_from_row(row: &Row) -> Result<Schedule> {
    codec::schedule_from(get(row, 2)?, get(row, 0)?, get(row, 1)?).map_err(storage_error)
}

fn run_from_row(row: &Row) -> Result<ScheduleRun> {
    let attempt: i64 = get(row, 10)?;
    Ok(ScheduleRun {
        id: get(row, 0)?,
        schedule_id: get(row, 1)?,
        trigger: codec::run_trigger_from(get(row, 2)?).map_err(storage_error)?,
        scheduled_time: Timestamp(get(row, 3)?),
        status: codec::run_status_from(get(row, 4)?).map_err(storage_error)?,
        start_time: get::<Option<i64>>(row, 5)?.map(Timestamp),
        end_time: get::<Option<i64>>(row, 6)?.map(Timestamp),
        session_id: get(row, 7)?,
        turn_id: get(row, 8)?,
        error: get(row, 9)?,
        attempt: u32::try_from(attempt)
            .map_err(|_| storage_error(format!("run attempt {attempt} out of range")))?,
        next_retry_delay: codec::retry_delay(get(row, 11)?),
        runner: get(row, 12)?,
    })
}

/// Inserts a run; with a fire time, only if no run claimed it yet. Returns the rows
/// inserted.
async fn insert_run<C: GenericClient>(
    client: &C,
    run: &ScheduleRun,
    fire_time: Option<Timestamp>,
) -> Result<u64> {
    execute(
        client,
        &format!(
            "INSERT INTO schedule_runs ({RUN_COLUMNS}, fire_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (schedule_id, fire_time) DO NOTHING"
        ),
        &[
            &run.id,
            &run.schedule_id,
            &run.trigger.as_str(),
            &run.scheduled_time.as_micros(),
            &run.status.as_str(),
            &run.start_time.map(Timestamp::as_micros),
            &run.end_time.map(Timestamp::as_micros),
            &run.session_id,
            &run.turn_id,
            &pg_text(&run.error),
            &i64::from(run.attempt),
            &run.next_retry_delay.map(time::micros),
            &run.runner,
            &fire_time.map(Timestamp::as_micros),
        ],
    )
    .await
}

fn schedule_params(s: &Schedule) -> Result<(Option<i64>, String)> {
    Ok((
        s.next_run_time.map(Timestamp::as_micros),
        codec::to_json(s).map_err(storage_error)?,
    ))
}

async fn query_schedules<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Schedule>> {
    decode_all(&query(client, sql, params).await?, schedule_from_row)
}

async fn query_runs<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<ScheduleRun>> {
    decode_all(&query(client, sql, params).await?, run_from_row)
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn create_schedule(&self, s: &Schedule) -> Result<()> {
        let (next, config) = schedule_params(s)?;
        let client = self.client().await?;
        // Schedule ids are the server's own: a repeat is a fault (INTERNAL), as on SQLite.
        execute(
            &client,
            "INSERT INTO schedules (id, model, enabled, next_run_time, create_time, \
             update_time, revision, config) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &s.id,
                &s.model,
                &s.enabled,
                &next,
                &s.create_time.as_micros(),
                &s.update_time.as_micros(),
                &s.revision,
                &config,
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<Schedule>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(schedule_from_row)
        .transpose()
    }

    async fn list_schedules(&self, after: Option<&str>, limit: usize) -> Result<Vec<Schedule>> {
        let client = self.client().await?;
        query_schedules(
            &client,
            &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id > $1 ORDER BY id LIMIT $2"),
            &[&after.unwrap_or(""), &super::limit(limit)],
        )
        .await
    }

    async fn update_schedule(&self, s: &Schedule, expected_revision: i64) -> Result<bool> {
        let (next, config) = schedule_params(s)?;
        let client = self.client().await?;
        let changed = execute(
            &client,
            "UPDATE schedules SET model = $2, enabled = $3, next_run_time = $4, \
             update_time = $5, revision = $6, config = $7 WHERE id = $1 AND revision = $8",
            &[
                &s.id,
                &s.model,
                &s.enabled,
                &next,
                &s.update_time.as_micros(),
                &s.revision,
                &config,
                &expected_revision,
            ],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let client = self.client().await?;
        // Its runs go with it (ON DELETE CASCADE).
        let deleted = execute(&client, "DELETE FROM schedules WHERE id = $1", &[&id]).await?;
        Ok(deleted == 1)
    }

    async fn due_schedules(&self, now: Timestamp) -> Result<Vec<Schedule>> {
        let client = self.client().await?;
        // Ties by id (creation order), where SQLite's index falls back to insertion order.
        query_schedules(
            &client,
            &format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules \
                 WHERE enabled AND next_run_time <= $1 ORDER BY next_run_time, id"
            ),
            &[&now.as_micros()],
        )
        .await
    }

    async fn next_fire_time(&self) -> Result<Option<Timestamp>> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT min(next_run_time) FROM schedules WHERE enabled",
            &[],
        )
        .await?
        .ok_or_else(|| storage_error("an aggregate returned no row"))?;
        Ok(get::<Option<i64>>(&row, 0)?.map(Timestamp))
    }

    async fn claim_fire_time_with(
        &self,
        run: &ScheduleRun,
        fire_time: Timestamp,
        next: Option<Timestamp>,
        deliveries: &[OutboxDelivery],
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // The schedule may have been deleted or disabled since it was read; locked, it
        // stays as it is now until the commit. Claims of one schedule queue here.
        let live = match query_opt(
            &tx,
            "SELECT enabled FROM schedules WHERE id = $1 FOR NO KEY UPDATE",
            &[&run.schedule_id],
        )
        .await?
        {
            Some(row) => get::<bool>(&row, 0)?,
            None => false,
        };
        if !live {
            return Ok(false);
        }
        let claimed = insert_run(&tx, run, Some(fire_time)).await? == 1;
        if claimed {
            super::outbox::insert_deliveries(&tx, deliveries).await?;
        }
        execute(
            &tx,
            "UPDATE schedules SET next_run_time = $2 \
             WHERE id = $1 AND enabled AND next_run_time <= $3",
            &[
                &run.schedule_id,
                &next.map(Timestamp::as_micros),
                &fire_time.as_micros(),
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(claimed)
    }

    async fn insert_run(&self, run: &ScheduleRun) -> Result<()> {
        let client = self.client().await?;
        insert_run(&client, run, None).await.map(|_| ())
    }

    async fn update_run_with(
        &self,
        run: &ScheduleRun,
        deliveries: &[OutboxDelivery],
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let updated = execute(
            &tx,
            "UPDATE schedule_runs SET status = $2, start_time = $3, end_time = $4, \
             session_id = $5, turn_id = $6, error = $7, attempt = $8, \
             next_retry_delay_micros = $9 WHERE id = $1 AND runner = $10",
            &[
                &run.id,
                &run.status.as_str(),
                &run.start_time.map(Timestamp::as_micros),
                &run.end_time.map(Timestamp::as_micros),
                &run.session_id,
                &run.turn_id,
                &pg_text(&run.error),
                &i64::from(run.attempt),
                &run.next_retry_delay.map(time::micros),
                &run.runner,
            ],
        )
        .await?;
        // No row updated: the run is gone with its schedule (its deliveries still go
        // out), or it names another runner now (nothing is written).
        if updated == 0
            && query_opt(&tx, "SELECT 1 FROM schedule_runs WHERE id = $1", &[&run.id])
                .await?
                .is_some()
        {
            return Err(run_taken_over(&run.id, &run.runner));
        }
        super::outbox::insert_deliveries(&tx, deliveries).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn get_run(&self, schedule_id: &str, run_id: &str) -> Result<Option<ScheduleRun>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = $1 AND id = $2"),
            &[&schedule_id, &run_id],
        )
        .await?
        .as_ref()
        .map(run_from_row)
        .transpose()
    }

    async fn list_runs(
        &self,
        schedule_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>> {
        let client = self.client().await?;
        // Run ids are UUIDv7: newest first is descending id order ("~" sorts after them).
        query_runs(
            &client,
            &format!(
                "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3"
            ),
            &[&schedule_id, &before.unwrap_or("~"), &super::limit(limit)],
        )
        .await
    }

    async fn take_orphaned_runs(
        &self,
        runner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>> {
        let client = self.client().await?;
        // SKIP LOCKED: servers taking over at once get disjoint sets; the runner check
        // is made again by the UPDATE on the rows it locked.
        let mut runs = query_runs(
            &client,
            &format!(
                "UPDATE schedule_runs SET runner = $1 WHERE id IN ( \
                   SELECT r.id FROM schedule_runs r \
                   WHERE r.status IN ('pending', 'running') AND r.runner <> $1 \
                   AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.id = r.runner \
                                   AND s.heartbeat_time > {NOW} - $2) \
                   ORDER BY r.id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING {RUN_COLUMNS}"
            ),
            &[&runner, &ttl_micros(ttl), &super::limit(limit)],
        )
        .await?;
        // RETURNING gives no order.
        runs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(runs)
    }

    async fn latest_runs(&self, schedule_ids: &[String]) -> Result<Vec<ScheduleRun>> {
        if schedule_ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        // Run ids are UUIDv7: the newest run has the greatest id.
        query_runs(
            &client,
            &format!(
                "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE id IN \
                 (SELECT max(id) FROM schedule_runs WHERE schedule_id = ANY($1) \
                  GROUP BY schedule_id) ORDER BY id"
            ),
            &[&schedule_ids],
        )
        .await
    }
}
