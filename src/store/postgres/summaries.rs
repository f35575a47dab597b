//! Context summaries in Postgres: one row per session, the record as JSON.

use async_trait::async_trait;

use super::{
    Param, PostgresStore, cluster::check_fence, execute, get, lock_session, pg_error, query_opt,
    storage_error,
};
use crate::{
    domain::{Result, cluster::Fence, summary::Summary},
    store::SummaryStore,
};

const UPSERT: &str = "INSERT INTO session_summaries (session_id, through_position, summary) \
     VALUES ($1, $2, $3) ON CONFLICT (session_id) DO UPDATE SET \
     through_position = EXCLUDED.through_position, summary = EXCLUDED.summary";

#[async_trait]
impl SummaryStore for PostgresStore {
    async fn get_summary(&self, session_id: &str) -> Result<Option<Summary>> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT summary FROM session_summaries WHERE session_id = $1",
            &[&session_id],
        )
        .await?;
        row.map(|row| {
            let json: &str = get(&row, 0)?;
            serde_json::from_str(json).map_err(storage_error)
        })
        .transpose()
    }

    async fn put_summary(&self, summary: &Summary, fence: Fence) -> Result<()> {
        let json = serde_json::to_string(summary).map_err(storage_error)?;
        let params: [Param<'_>; 3] = [&summary.session_id, &summary.through_position, &json];
        let mut client = self.client().await?;
        if fence.is_none() {
            execute(&client, UPSERT, &params).await?;
            return Ok(());
        }
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_session(&tx, &summary.session_id).await?;
        check_fence(&tx, &summary.session_id, fence).await?;
        execute(&tx, UPSERT, &params).await?;
        tx.commit().await.map_err(pg_error)
    }
}
