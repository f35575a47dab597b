//! ScheduleService: validate the request, call the scheduler, convert the answer.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{self, parse_name, parse_nested_name, schedule_pb, schedule_run_pb};
use crate::{
    domain::{
        Error, Result,
        page::{self, decode_token, encode_token},
        schedule::{Schedule, ScheduleField},
    },
    pb::{self, schedule_service_server::ScheduleService},
    scheduler::Scheduler,
};

pub struct ScheduleApi {
    scheduler: Arc<Scheduler>,
}

impl ScheduleApi {
    pub fn new(scheduler: Arc<Scheduler>) -> Self {
        Self { scheduler }
    }

    /// The schedules as the API shows them, each with its latest run.
    async fn schedules_pb(&self, schedules: &[Schedule]) -> Result<Vec<pb::Schedule>> {
        let last_runs = self.scheduler.last_runs(schedules).await?;
        Ok(schedules
            .iter()
            .zip(&last_runs)
            .map(|(schedule, last_run)| schedule_pb(schedule, last_run.as_ref()))
            .collect())
    }

    async fn schedule_pb(&self, schedule: &Schedule) -> Result<pb::Schedule> {
        let last_run = self
            .scheduler
            .last_runs(std::slice::from_ref(schedule))
            .await?
            .pop()
            .flatten();
        Ok(schedule_pb(schedule, last_run.as_ref()))
    }
}

/// The fields an update changes: the mask's paths, `*` for all, or (no mask, AIP-134)
/// the fields the client populated.
fn update_fields(
    mask: Option<&prost_types::FieldMask>,
    s: &pb::Schedule,
) -> Result<Vec<ScheduleField>> {
    if let Some(fields) = convert::mask_fields(mask)? {
        return Ok(fields);
    }
    let populated = ScheduleField::ALL.into_iter().filter(|field| match field {
        ScheduleField::DisplayName => !s.display_name.is_empty(),
        ScheduleField::Prompt => !s.prompt.is_empty(),
        ScheduleField::Cron => !s.cron.is_empty(),
        ScheduleField::TimeZone => !s.time_zone.is_empty(),
        ScheduleField::Enabled => s.enabled.is_some(),
        ScheduleField::TargetSession => !s.target_session.is_empty(),
        ScheduleField::Model => !s.model.is_empty(),
        ScheduleField::PermissionMode => s.permission_mode != 0,
        ScheduleField::WorkingDir => !s.working_dir.is_empty(),
        ScheduleField::OverlapPolicy => s.overlap_policy != 0,
        ScheduleField::RetryPolicy => s.retry_policy.is_some(),
        ScheduleField::WebhookUrl => !s.webhook_url.is_empty(),
        ScheduleField::WebhookSecret => !s.webhook_secret.is_empty(),
        ScheduleField::Profile => !s.profile.is_empty(),
    });
    Ok(populated.collect())
}

#[tonic::async_trait]
impl ScheduleService for ScheduleApi {
    async fn create_schedule(
        &self,
        request: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        let given = request
            .into_inner()
            .schedule
            .ok_or_else(|| Error::invalid("schedule", "is required"))?;
        let schedule = convert::schedule(&given).map_err(|e| e.within("schedule."))?;
        let created = self.scheduler.create(schedule).await?;
        Ok(Response::new(self.schedule_pb(&created).await?))
    }

    async fn get_schedule(
        &self,
        request: Request<pb::GetScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        let id = parse_name(&request.get_ref().name, "schedules", "name")?;
        let schedule = self.scheduler.get(id).await?;
        Ok(Response::new(self.schedule_pb(&schedule).await?))
    }

    async fn list_schedules(
        &self,
        request: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        let req = request.into_inner();
        let size = page::page_size(req.page_size)?;
        let fingerprint = page::fingerprint(&["schedules"]);
        let after: Option<String> = decode_token(&req.page_token, fingerprint)?;
        let mut found = self.scheduler.list(after.as_deref(), size + 1).await?;
        let more = found.len() > size;
        found.truncate(size);
        let next_page_token = match found.last() {
            Some(last) if more => encode_token(&last.id, fingerprint),
            _ => String::new(),
        };
        let schedules = self.schedules_pb(&found).await?;
        Ok(Response::new(pb::ListSchedulesResponse {
            schedules,
            next_page_token,
        }))
    }

    async fn update_schedule(
        &self,
        request: Request<pb::UpdateScheduleRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        let req = request.into_inner();
        let given = req
            .schedule
            .ok_or_else(|| Error::invalid("schedule", "is required"))?;
        let id = parse_name(&given.name, "schedules", "schedule.name")?;
        let fields = update_fields(req.update_mask.as_ref(), &given)?;
        let changes = convert::schedule(&given).map_err(|e| e.within("schedule."))?;
        let updated = self
            .scheduler
            .update(
                id,
                &changes,
                &fields,
                convert::expected_revision(&given.etag),
            )
            .await?;
        Ok(Response::new(self.schedule_pb(&updated).await?))
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "schedules", "name")?;
        self.scheduler
            .delete(id, convert::expected_revision(&req.etag), req.allow_missing)
            .await?;
        Ok(Response::new(()))
    }

    async fn run_schedule(
        &self,
        request: Request<pb::RunScheduleRequest>,
    ) -> Result<Response<pb::ScheduleRun>, Status> {
        let id = parse_name(&request.get_ref().name, "schedules", "name")?;
        let run = self.scheduler.run_now(id).await?;
        Ok(Response::new(schedule_run_pb(&run)))
    }

    async fn list_schedule_runs(
        &self,
        request: Request<pb::ListScheduleRunsRequest>,
    ) -> Result<Response<pb::ListScheduleRunsResponse>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.parent, "schedules", "parent")?;
        let size = page::page_size(req.page_size)?;
        let fingerprint = page::fingerprint(&["schedule_runs", id]);
        let before: Option<String> = decode_token(&req.page_token, fingerprint)?;
        let mut runs = self
            .scheduler
            .list_runs(id, before.as_deref(), size + 1)
            .await?;
        let more = runs.len() > size;
        runs.truncate(size);
        let next_page_token = match runs.last() {
            Some(last) if more => encode_token(&last.id, fingerprint),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListScheduleRunsResponse {
            runs: runs.iter().map(schedule_run_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_schedule_run(
        &self,
        request: Request<pb::GetScheduleRunRequest>,
    ) -> Result<Response<pb::ScheduleRun>, Status> {
        let (schedule, run) =
            parse_nested_name(&request.get_ref().name, "schedules", "runs", "name")?;
        let run = self.scheduler.get_run(schedule, run).await?;
        Ok(Response::new(schedule_run_pb(&run)))
    }

    async fn preview_schedule(
        &self,
        request: Request<pb::PreviewScheduleRequest>,
    ) -> Result<Response<pb::PreviewScheduleResponse>, Status> {
        let req = request.into_inner();
        let times = self
            .scheduler
            .preview(&req.cron, &req.time_zone, req.count)?;
        Ok(Response::new(pb::PreviewScheduleResponse {
            fire_times: times.into_iter().filter_map(convert::timestamp).collect(),
        }))
    }
}
