//! Schedules and their runs in SQLite. A cron fire time is claimed by inserting its run
//! under a unique (schedule, fire time) key, so it fires once however many servers share
//! the database.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, immediate, storage_error};
use crate::{
    domain::{
        Result, Timestamp,
        outbox::OutboxDelivery,
        schedule::{Schedule, ScheduleRun, run_taken_over},
        time::{self, micros},
    },
    store::{
        ScheduleStore,
        codec::{self, RUN_COLUMNS, SCHEDULE_COLUMNS},
    },
};

fn schedule_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Schedule> {
    let next: Option<i64> = row.get(0)?;
    let revision: i64 = row.get(1)?;
    let config: String = row.get(2)?;
    codec::schedule_from(&config, next, revision).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(err))
    })
}

fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRun> {
    let bad = |index: usize, message: String| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            message.into(),
        )
    };
    let trigger: String = row.get(2)?;
    let status: String = row.get(4)?;
    Ok(ScheduleRun {
        id: row.get(0)?,
        schedule_id: row.get(1)?,
        trigger: codec::run_trigger_from(&trigger).map_err(|m| bad(2, m))?,
        scheduled_time: Timestamp(row.get(3)?),
        status: codec::run_status_from(&status).map_err(|m| bad(4, m))?,
        start_time: row.get::<_, Option<i64>>(5)?.map(Timestamp),
        end_time: row.get::<_, Option<i64>>(6)?.map(Timestamp),
        session_id: row.get(7)?,
        turn_id: row.get(8)?,
        error: row.get(9)?,
        attempt: row.get(10)?,
        next_retry_delay: codec::retry_delay(row.get::<_, Option<i64>>(11)?),
        runner: row.get(12)?,
    })
}

fn insert_run(conn: &Connection, run: &ScheduleRun, fire_time: Option<Timestamp>) -> Result<usize> {
    conn.execute(
        &format!(
            "INSERT INTO schedule_runs ({RUN_COLUMNS}, fire_time) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (schedule_id, fire_time) DO NOTHING"
        ),
        params![
            run.id,
            run.schedule_id,
            run.trigger.as_str(),
            run.scheduled_time.as_micros(),
            run.status.as_str(),
            run.start_time.map(Timestamp::as_micros),
            run.end_time.map(Timestamp::as_micros),
            run.session_id,
            run.turn_id,
            run.error,
            run.attempt,
            run.next_retry_delay.map(time::micros),
            run.runner,
            fire_time.map(Timestamp::as_micros),
        ],
    )
    .map_err(storage_error)
}

fn schedule_params(s: &Schedule) -> Result<(Option<i64>, String)> {
    Ok((
        s.next_run_time.map(Timestamp::as_micros),
        codec::to_json(s).map_err(storage_error)?,
    ))
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn create_schedule(&self, schedule: &Schedule) -> Result<()> {
        let s = schedule.clone();
        self.write(move |conn| {
            let (next, config) = schedule_params(&s)?;
            conn.execute(
                "INSERT INTO schedules (id, model, enabled, next_run_time, create_time, \
                 update_time, revision, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.id,
                    s.model,
                    s.enabled,
                    next,
                    s.create_time.as_micros(),
                    s.update_time.as_micros(),
                    s.revision,
                    config
                ],
            )
            .map_err(storage_error)?;
            Ok(())
        })
        .await
    }

    async fn get_schedule(&self, id: &str) -> Result<Option<Schedule>> {
        let id = id.to_owned();
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1"),
                [&id],
                schedule_from_row,
            )
            .optional()
            .map_err(storage_error)
        })
        .await
    }

    async fn list_schedules(&self, after: Option<&str>, limit: usize) -> Result<Vec<Schedule>> {
        let after = after.unwrap_or("").to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id > ?1 ORDER BY id LIMIT ?2"
                ))
                .map_err(storage_error)?;
            let rows = stmt
                .query_map(params![after, limit as i64], schedule_from_row)
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn update_schedule(&self, schedule: &Schedule, expected_revision: i64) -> Result<bool> {
        let s = schedule.clone();
        self.write(move |conn| {
            let (next, config) = schedule_params(&s)?;
            let changed = conn
                .execute(
                    "UPDATE schedules SET model = ?2, enabled = ?3, next_run_time = ?4, \
                     update_time = ?5, revision = ?6, config = ?7 WHERE id = ?1 AND revision = ?8",
                    params![
                        s.id,
                        s.model,
                        s.enabled,
                        next,
                        s.update_time.as_micros(),
                        s.revision,
                        config,
                        expected_revision
                    ],
                )
                .map_err(storage_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM schedules WHERE id = ?1", [&id])
                .map_err(storage_error)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn due_schedules(&self, now: Timestamp) -> Result<Vec<Schedule>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules \
                     WHERE enabled = 1 AND next_run_time <= ?1 ORDER BY next_run_time"
                ))
                .map_err(storage_error)?;
            let rows = stmt
                .query_map([now.as_micros()], schedule_from_row)
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn next_fire_time(&self) -> Result<Option<Timestamp>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT min(next_run_time) FROM schedules WHERE enabled = 1",
                [],
                |row| row.get::<_, Option<i64>>(0),
            )
            .map(|t| t.map(Timestamp))
            .map_err(storage_error)
        })
        .await
    }

    async fn claim_fire_time_with(
        &self,
        run: &ScheduleRun,
        fire_time: Timestamp,
        next: Option<Timestamp>,
        deliveries: &[OutboxDelivery],
    ) -> Result<bool> {
        let run = run.clone();
        let deliveries = deliveries.to_vec();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            // The schedule may have been deleted or disabled since it was read.
            let live: bool = tx
                .query_row(
                    "SELECT enabled FROM schedules WHERE id = ?1",
                    [&run.schedule_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(storage_error)?
                .unwrap_or(false);
            if !live {
                return Ok(false);
            }
            let claimed = insert_run(&tx, &run, Some(fire_time))? == 1;
            if claimed {
                super::outbox::insert_deliveries(&tx, &deliveries)?;
            }
            tx.execute(
                "UPDATE schedules SET next_run_time = ?2 \
                 WHERE id = ?1 AND enabled = 1 AND next_run_time <= ?3",
                params![
                    run.schedule_id,
                    next.map(Timestamp::as_micros),
                    fire_time.as_micros()
                ],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            Ok(claimed)
        })
        .await
    }

    async fn insert_run(&self, run: &ScheduleRun) -> Result<()> {
        let run = run.clone();
        self.write(move |conn| insert_run(conn, &run, None).map(|_| ()))
            .await
    }

    async fn update_run_with(
        &self,
        run: &ScheduleRun,
        deliveries: &[OutboxDelivery],
    ) -> Result<()> {
        let run = run.clone();
        let deliveries = deliveries.to_vec();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let updated = tx
                .execute(
                    "UPDATE schedule_runs SET status = ?2, start_time = ?3, end_time = ?4, \
                     session_id = ?5, turn_id = ?6, error = ?7, attempt = ?8, \
                     next_retry_delay_micros = ?9 WHERE id = ?1 AND runner = ?10",
                    params![
                        run.id,
                        run.status.as_str(),
                        run.start_time.map(Timestamp::as_micros),
                        run.end_time.map(Timestamp::as_micros),
                        run.session_id,
                        run.turn_id,
                        run.error,
                        run.attempt,
                        run.next_retry_delay.map(time::micros),
                        run.runner,
                    ],
                )
                .map_err(storage_error)?;
            // No row updated: the run is gone with its schedule (its deliveries still
            // go out), or it names another runner now (nothing is written).
            if updated == 0
                && tx
                    .query_row(
                        "SELECT 1 FROM schedule_runs WHERE id = ?1",
                        [&run.id],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(storage_error)?
                    .is_some()
            {
                return Err(run_taken_over(&run.id, &run.runner));
            }
            super::outbox::insert_deliveries(&tx, &deliveries)?;
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn get_run(&self, schedule_id: &str, run_id: &str) -> Result<Option<ScheduleRun>> {
        let (schedule_id, run_id) = (schedule_id.to_owned(), run_id.to_owned());
        self.read(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = ?1 AND id = ?2"
                ),
                [&schedule_id, &run_id],
                run_from_row,
            )
            .optional()
            .map_err(storage_error)
        })
        .await
    }

    async fn list_runs(
        &self,
        schedule_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>> {
        let schedule_id = schedule_id.to_owned();
        // Run ids are UUIDv7: newest first is descending id order.
        let before = before.unwrap_or("~").to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE schedule_id = ?1 AND id < ?2 \
                     ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(storage_error)?;
            let rows = stmt
                .query_map(params![schedule_id, before, limit as i64], run_from_row)
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn latest_runs(&self, schedule_ids: &[String]) -> Result<Vec<ScheduleRun>> {
        if schedule_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = schedule_ids.to_vec();
        self.read(move |conn| {
            let placeholders = vec!["?"; ids.len()].join(", ");
            // Run ids are UUIDv7: the newest run has the greatest id.
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {RUN_COLUMNS} FROM schedule_runs WHERE id IN \
                     (SELECT max(id) FROM schedule_runs WHERE schedule_id IN ({placeholders}) \
                      GROUP BY schedule_id)"
                ))
                .map_err(storage_error)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(ids.iter()), run_from_row)
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn take_orphaned_runs(
        &self,
        runner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>> {
        let runner = runner.to_owned();
        self.write(move |conn| {
            let now = Timestamp::now().0;
            let tx = immediate(conn)?;
            let runs = {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "UPDATE schedule_runs SET runner = ?1 WHERE id IN ( \
                           SELECT r.id FROM schedule_runs r \
                           WHERE r.status IN ('pending', 'running') AND r.runner <> ?1 \
                           AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.id = r.runner \
                                           AND s.heartbeat_time > ?2) \
                           ORDER BY r.id LIMIT ?3) \
                         RETURNING {RUN_COLUMNS}"
                    ))
                    .map_err(storage_error)?;
                let rows = stmt
                    .query_map(
                        params![runner, now - micros(ttl).min(i64::MAX / 4), limit as i64],
                        run_from_row,
                    )
                    .map_err(storage_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(storage_error)?
            };
            tx.commit().map_err(storage_error)?;
            let mut runs = runs;
            // RETURNING gives no order.
            runs.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(runs)
        })
        .await
    }
}
