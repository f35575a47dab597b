//! TriggerService: validate the request, call the runtime's triggers, convert the
//! answer. A trigger's secret leaves only as its masked hint. The calls themselves
//! (`POST /hooks/{trigger}`) are `http::hooks`'.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{self, parse_name};
use crate::{
    domain::{
        Error, Result, page,
        trigger::{SignatureScheme, Trigger, TriggerDelivery, TriggerDeliveryStatus, TriggerField},
    },
    pb::{self, trigger_service_server::TriggerService},
    runtime::Triggers,
};

const COLLECTION: &str = "triggers";

pub struct TriggerApi {
    triggers: Arc<Triggers>,
}

impl TriggerApi {
    pub fn new(triggers: Arc<Triggers>) -> Self {
        Self { triggers }
    }
}

fn scheme_pb(scheme: SignatureScheme) -> pb::SignatureScheme {
    match scheme {
        SignatureScheme::StandardWebhooks => pb::SignatureScheme::StandardWebhooks,
        SignatureScheme::GitHub => pb::SignatureScheme::Github,
    }
}

fn status_pb(status: TriggerDeliveryStatus) -> pb::TriggerDeliveryStatus {
    match status {
        TriggerDeliveryStatus::Received => pb::TriggerDeliveryStatus::Received,
        TriggerDeliveryStatus::Started => pb::TriggerDeliveryStatus::Started,
        TriggerDeliveryStatus::Failed => pb::TriggerDeliveryStatus::Failed,
    }
}

/// The path a trigger's calls go to.
pub fn hook_path(id: &str) -> String {
    format!("/hooks/{id}")
}

fn trigger_pb(t: &Trigger) -> pb::Trigger {
    pb::Trigger {
        name: format!("{COLLECTION}/{}", t.id),
        display_name: t.display_name.clone(),
        disabled: !t.enabled,
        signature_scheme: scheme_pb(t.scheme) as i32,
        secret: t.secret_hint(),
        profile: t
            .profile
            .as_deref()
            .map(convert::profile_name)
            .unwrap_or_default(),
        session: t
            .session
            .as_deref()
            .map(convert::session_name)
            .unwrap_or_default(),
        prompt_template: t.prompt_template.clone(),
        url_path: hook_path(&t.id),
        create_time: convert::timestamp(t.create_time),
        update_time: convert::timestamp(t.update_time),
        etag: convert::etag(t.revision),
    }
}

pub fn delivery_pb(d: &TriggerDelivery) -> pb::TriggerDelivery {
    pb::TriggerDelivery {
        name: format!("{COLLECTION}/{}/deliveries/{}", d.trigger_id, d.id),
        message_id: d.message_id.clone(),
        event: d.event.clone(),
        status: status_pb(d.status) as i32,
        session: d
            .session_id
            .as_deref()
            .map(convert::session_name)
            .unwrap_or_default(),
        turn: match (&d.session_id, &d.turn_id) {
            (Some(session), Some(turn)) => format!("sessions/{session}/turns/{turn}"),
            _ => String::new(),
        },
        error: d.error.clone(),
        receive_time: convert::timestamp(d.receive_time),
        payload_bytes: d.payload_bytes,
        attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
    }
}

/// The client-settable fields of a trigger; violations are relative to it.
fn trigger(given: &pb::Trigger) -> Result<Trigger> {
    let mut v = crate::domain::error::Violations::new();
    let scheme = match pb::SignatureScheme::try_from(given.signature_scheme) {
        Ok(pb::SignatureScheme::Unspecified | pb::SignatureScheme::StandardWebhooks) => {
            SignatureScheme::StandardWebhooks
        }
        Ok(pb::SignatureScheme::Github) => SignatureScheme::GitHub,
        Err(_) => {
            v.add(
                "signature_scheme",
                format!("unknown enum value {}", given.signature_scheme),
            );
            SignatureScheme::StandardWebhooks
        }
    };
    let profile = v
        .take(convert::profile_ref(&given.profile, "profile"))
        .flatten();
    let session = match given.session.as_str() {
        "" => None,
        name => v
            .take(parse_name(name, "sessions", "session"))
            .map(str::to_owned),
    };
    v.into_result()?;
    let mut trigger = Trigger::new("", given.secret.trim());
    trigger.display_name = given.display_name.clone();
    trigger.enabled = !given.disabled;
    trigger.scheme = scheme;
    trigger.profile = profile;
    trigger.session = session;
    trigger.prompt_template = given.prompt_template.clone();
    Ok(trigger)
}

/// The fields an update changes: the mask's paths, `*` for all, or (no mask, AIP-134)
/// the fields the client populated.
fn update_fields(
    mask: Option<&prost_types::FieldMask>,
    t: &pb::Trigger,
) -> Result<Vec<TriggerField>> {
    if let Some(fields) = convert::mask_fields(mask)? {
        return Ok(fields);
    }
    let populated = TriggerField::ALL.into_iter().filter(|field| match field {
        TriggerField::DisplayName => !t.display_name.is_empty(),
        TriggerField::Disabled => t.disabled,
        TriggerField::SignatureScheme => t.signature_scheme != 0,
        TriggerField::Secret => !t.secret.is_empty(),
        TriggerField::Profile => !t.profile.is_empty(),
        TriggerField::Session => !t.session.is_empty(),
        TriggerField::PromptTemplate => !t.prompt_template.is_empty(),
    });
    Ok(populated.collect())
}

#[tonic::async_trait]
impl TriggerService for TriggerApi {
    async fn list_triggers(
        &self,
        request: Request<pb::ListTriggersRequest>,
    ) -> Result<Response<pb::ListTriggersResponse>, Status> {
        let req = request.into_inner();
        let all = self.triggers.list().await?;
        let (triggers, next_page_token) = page::page_of(
            &all,
            |item| item.id.clone(),
            req.page_size,
            &req.page_token,
            page::fingerprint(&[COLLECTION]),
        )?;
        Ok(Response::new(pb::ListTriggersResponse {
            triggers: triggers.into_iter().map(trigger_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_trigger(
        &self,
        request: Request<pb::GetTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, COLLECTION, "name")?;
        Ok(Response::new(trigger_pb(&self.triggers.get(id).await?)))
    }

    async fn create_trigger(
        &self,
        request: Request<pb::CreateTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        let req = request.into_inner();
        let given = req
            .trigger
            .ok_or_else(|| Error::invalid("trigger", "is required"))?;
        let mut trigger = trigger(&given).map_err(|e| e.within("trigger."))?;
        trigger.id = req.trigger_id;
        let created = self.triggers.create(trigger).await?;
        Ok(Response::new(trigger_pb(&created)))
    }

    async fn update_trigger(
        &self,
        request: Request<pb::UpdateTriggerRequest>,
    ) -> Result<Response<pb::Trigger>, Status> {
        let req = request.into_inner();
        let given = req
            .trigger
            .ok_or_else(|| Error::invalid("trigger", "is required"))?;
        let id = parse_name(&given.name, COLLECTION, "trigger.name")?;
        let fields = update_fields(req.update_mask.as_ref(), &given)?;
        let changes = trigger(&given).map_err(|e| e.within("trigger."))?;
        let updated = self
            .triggers
            .update(
                id,
                &changes,
                &fields,
                convert::expected_revision(&given.etag),
            )
            .await?;
        Ok(Response::new(trigger_pb(&updated)))
    }

    async fn delete_trigger(
        &self,
        request: Request<pb::DeleteTriggerRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, COLLECTION, "name")?;
        self.triggers
            .delete(id, convert::expected_revision(&req.etag))
            .await?;
        Ok(Response::new(()))
    }

    async fn list_trigger_deliveries(
        &self,
        request: Request<pb::ListTriggerDeliveriesRequest>,
    ) -> Result<Response<pb::ListTriggerDeliveriesResponse>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.parent, COLLECTION, "parent")?;
        let (deliveries, next_page_token) = self
            .triggers
            .deliveries(id, &req.page_token, req.page_size)
            .await?;
        Ok(Response::new(pb::ListTriggerDeliveriesResponse {
            trigger_deliveries: deliveries.iter().map(delivery_pb).collect(),
            next_page_token,
        }))
    }
}
