//! Context summaries in SQLite: one row per session, the record as JSON.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, cluster::fenced, storage_error};
use crate::{
    domain::{Result, cluster::Fence, summary::Summary},
    store::SummaryStore,
};

#[async_trait]
impl SummaryStore for SqliteStore {
    async fn get_summary(&self, session_id: &str) -> Result<Option<Summary>> {
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT summary FROM session_summaries WHERE session_id = ?1")
                .map_err(storage_error)?
                .query_row([&session_id], |row| row.get(0))
                .optional()
                .map_err(storage_error)?;
            json.map(|json| serde_json::from_str(&json).map_err(storage_error))
                .transpose()
        })
        .await
    }

    async fn put_summary(&self, summary: &Summary, fence: Fence) -> Result<()> {
        let summary = summary.clone();
        let json = serde_json::to_string(&summary).map_err(storage_error)?;
        self.write(move |conn| {
            fenced(conn, &summary.session_id, fence, |conn| {
                conn.execute(
                    "INSERT INTO session_summaries (session_id, through_position, summary) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (session_id) DO UPDATE SET \
                     through_position = excluded.through_position, summary = excluded.summary",
                    params![summary.session_id, summary.through_position, json],
                )
                .map_err(storage_error)?;
                Ok(())
            })
        })
        .await
    }
}
