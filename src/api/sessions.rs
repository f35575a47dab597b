//! SessionService: validate the request, call the runtime, convert the answer.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::{self, parse_child_name, parse_name, session_pb};
use crate::{
    domain::{
        Error, Result, SessionSource, Timestamp,
        error::Violations,
        session::{SessionField, SessionSettings},
        session_list::{self, SessionOrder},
    },
    pb::{self, session_service_server::SessionService},
    runtime::{Chat, NewSession, SessionChange, Sessions, sessions::ARCHIVE_FORMAT_VERSION},
    store::{SessionContent, SessionFilter},
};

pub struct SessionApi {
    sessions: Arc<Sessions>,
    chat: Arc<Chat>,
    /// Ends open watch streams when the server shuts down.
    shutdown: CancellationToken,
}

impl SessionApi {
    pub fn new(sessions: Arc<Sessions>, chat: Arc<Chat>, shutdown: CancellationToken) -> Self {
        Self {
            sessions,
            chat,
            shutdown,
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The fields an update changes: the mask's paths, `*` for all, or (no mask, AIP-134)
/// the fields the client populated.
fn update_fields(
    mask: Option<&prost_types::FieldMask>,
    session: &pb::Session,
) -> Result<Vec<SessionField>> {
    if let Some(fields) = convert::mask_fields(mask)? {
        return Ok(fields);
    }
    let defaults = SessionSettings::default();
    let given = convert::session_settings(session).map_err(|e| e.within("session."))?;
    let populated = SessionField::ALL.into_iter().filter(|field| match field {
        SessionField::DisplayName => given.display_name != defaults.display_name,
        SessionField::Model => given.model != defaults.model,
        SessionField::ReasoningEffort => given.reasoning_effort != defaults.reasoning_effort,
        SessionField::WorkingDir => given.working_dir != defaults.working_dir,
        SessionField::PermissionMode => session.permission_mode != 0,
        SessionField::SystemPrompt => given.system_prompt != defaults.system_prompt,
        SessionField::Labels => !given.labels.is_empty(),
        SessionField::Pinned => given.pinned,
        SessionField::McpServers => given.mcp_servers.is_some(),
    });
    Ok(populated.collect())
}

/// The list's filters and order; every bad field is reported at once.
fn filter(req: &pb::ListSessionsRequest) -> Result<SessionFilter> {
    let mut v = Violations::new();
    let source = v.take(convert::session_source(req.source, "source"));
    let created_after = v.take(
        req.created_after
            .as_ref()
            .map(|t| convert::from_timestamp(t, "created_after"))
            .transpose(),
    );
    let created_before = v.take(
        req.created_before
            .as_ref()
            .map(|t| convert::from_timestamp(t, "created_before"))
            .transpose(),
    );
    let labels = v.take(session_list::parse_filter(&req.filter));
    let order = v.take(SessionOrder::parse(&req.order_by));
    v.into_result()?;
    Ok(SessionFilter {
        query: Some(req.query.trim().to_owned()).filter(|q| !q.is_empty()),
        source: source.flatten(),
        pinned: req.pinned,
        created_after: created_after.flatten(),
        created_before: created_before.flatten(),
        show_deleted: req.show_deleted,
        labels: labels.unwrap_or_default(),
        order: order.unwrap_or_default(),
    })
}

fn archive_pb(content: &SessionContent) -> pb::SessionArchive {
    pb::SessionArchive {
        format_version: ARCHIVE_FORMAT_VERSION,
        exported_by: format!("octo {}", env!("CARGO_PKG_VERSION")),
        export_time: convert::timestamp(Timestamp::now()),
        session: Some(session_pb(&content.session)),
        messages: content.messages.iter().map(convert::message_pb).collect(),
        turns: content.turns.iter().map(convert::turn_pb).collect(),
    }
}

fn archive(archive: &pb::SessionArchive) -> Result<SessionContent> {
    if archive.format_version != ARCHIVE_FORMAT_VERSION {
        return Err(Error::invalid(
            "archive.format_version",
            format!(
                "must be {ARCHIVE_FORMAT_VERSION} (got {})",
                archive.format_version
            ),
        ));
    }
    let session = archive
        .session
        .as_ref()
        .ok_or_else(|| Error::invalid("archive.session", "is required"))?;
    let settings = convert::session_settings(session).map_err(|e| e.within("archive.session."))?;
    let source = convert::session_source(session.source, "archive.session.source")?;
    let time = |t: &Option<prost_types::Timestamp>, field: &str| {
        t.as_ref()
            .map(|t| convert::from_timestamp(t, field))
            .transpose()
    };
    let created =
        time(&session.create_time, "archive.session.create_time")?.unwrap_or_else(Timestamp::now);
    let domain_session = crate::domain::Session {
        id: String::new(),
        display_name: settings.display_name,
        model: settings.model,
        reasoning_effort: settings.reasoning_effort,
        working_dir: settings.working_dir,
        permission_mode: settings.permission_mode.unwrap_or_default(),
        system_prompt: settings.system_prompt,
        labels: settings.labels,
        pinned: settings.pinned,
        source: source.unwrap_or_default(),
        message_count: 0,
        last_message_preview: String::new(),
        usage: Default::default(),
        create_time: created,
        update_time: created,
        last_active_time: time(
            &session.last_active_time,
            "archive.session.last_active_time",
        )?
        .unwrap_or(created),
        revision: 1,
        forked_from: None,
        mcp_servers: settings.mcp_servers,
        delete_time: None,
        expire_time: None,
        profile: convert::profile_ref(&session.profile, "archive.session.profile")?,
        status: Default::default(),
        queue_depth: 0,
        active_turn: None,
    };
    let messages = archive
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| convert::message(m, &format!("archive.messages[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let turns = archive
        .turns
        .iter()
        .enumerate()
        .map(|(i, t)| convert::turn(t, &format!("archive.turns[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SessionContent {
        session: domain_session,
        messages,
        turns,
    })
}

fn watch_response(change: SessionChange) -> pb::WatchSessionsResponse {
    use pb::watch_sessions_response::Change;
    let change = match change {
        SessionChange::Created(s) => Change::Created(session_pb(&s)),
        SessionChange::Updated(s) => Change::Updated(session_pb(&s)),
        SessionChange::Deleted(id) => Change::Deleted(convert::session_name(&id)),
    };
    pb::WatchSessionsResponse {
        change: Some(change),
    }
}

#[tonic::async_trait]
impl SessionService for SessionApi {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let session = request.into_inner().session.unwrap_or_default();
        let settings = convert::session_settings(&session).map_err(|e| e.within("session."))?;
        let source = match convert::session_source(session.source, "session.source")? {
            None => SessionSource::Api,
            Some(SessionSource::Schedule) => {
                return Err(Error::invalid(
                    "session.source",
                    "SCHEDULE is set by the server for sessions its schedules create",
                )
                .into());
            }
            Some(source) => source,
        };
        let profile = convert::profile_ref(&session.profile, "session.profile")?;
        let created = self
            .sessions
            .create(NewSession {
                profile,
                ..NewSession::new(settings, source)
            })
            .await
            .map_err(|e| e.within("session."))?;
        Ok(Response::new(session_pb(&created)))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "sessions", "name")?;
        Ok(Response::new(session_pb(&self.sessions.get(id).await?)))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let req = request.into_inner();
        let filter = filter(&req)?;
        let (sessions, next_page_token) = self
            .sessions
            .list(&filter, &req.page_token, req.page_size)
            .await?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions.iter().map(session_pb).collect(),
            next_page_token,
        }))
    }

    async fn update_session(
        &self,
        request: Request<pb::UpdateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let req = request.into_inner();
        let session = req
            .session
            .ok_or_else(|| Error::invalid("session", "is required"))?;
        let id = parse_name(&session.name, "sessions", "session.name")?;
        let fields = update_fields(req.update_mask.as_ref(), &session)?;
        let settings = convert::session_settings(&session).map_err(|e| e.within("session."))?;
        let updated = self
            .sessions
            .update(id, settings, &fields, &session.etag)
            .await
            .map_err(|e| e.within("session."))?;
        Ok(Response::new(session_pb(&updated)))
    }

    async fn delete_session(
        &self,
        request: Request<pb::DeleteSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "sessions", "name")?;
        let trashed = self
            .chat
            .delete_session(id, &req.etag, req.allow_missing)
            .await?;
        // allow_missing and nothing there: an empty Session.
        Ok(Response::new(
            trashed.as_ref().map(session_pb).unwrap_or_default(),
        ))
    }

    async fn undelete_session(
        &self,
        request: Request<pb::UndeleteSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "sessions", "name")?;
        let restored = self.chat.undelete_session(id).await?;
        Ok(Response::new(session_pb(&restored)))
    }

    async fn purge_session(
        &self,
        request: Request<pb::PurgeSessionRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "sessions", "name")?;
        self.chat.purge_session(id, &req.etag).await?;
        Ok(Response::new(()))
    }

    async fn fork_session(
        &self,
        request: Request<pb::ForkSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "sessions", "name")?;
        let up_to = if req.up_to_message.is_empty() {
            None
        } else {
            let (session, message) =
                parse_child_name(&req.up_to_message, "messages", "up_to_message")?;
            if session != id {
                return Err(Error::invalid(
                    "up_to_message",
                    format!("must be a message of {}", req.name),
                )
                .into());
            }
            Some(message)
        };
        let display_name = Some(req.display_name).filter(|t| !t.is_empty());
        if let Some(title) = &display_name {
            SessionSettings {
                display_name: title.clone(),
                ..SessionSettings::default()
            }
            .validate()?;
        }
        let fork = self.sessions.fork(id, up_to, display_name).await?;
        Ok(Response::new(session_pb(&fork)))
    }

    async fn export_session(
        &self,
        request: Request<pb::ExportSessionRequest>,
    ) -> Result<Response<pb::SessionArchive>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, "sessions", "name")?;
        let content = self.sessions.export(id).await?;
        Ok(Response::new(archive_pb(&content)))
    }

    async fn import_session(
        &self,
        request: Request<pb::ImportSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let req = request.into_inner();
        let archived = req
            .archive
            .as_ref()
            .ok_or_else(|| Error::invalid("archive", "is required"))?;
        let content = archive(archived)?;
        let imported = self.sessions.import(content).await?;
        Ok(Response::new(session_pb(&imported)))
    }

    type WatchSessionsStream = ResponseStream<pb::WatchSessionsResponse>;

    async fn watch_sessions(
        &self,
        _request: Request<pb::WatchSessionsRequest>,
    ) -> Result<Response<Self::WatchSessionsStream>, Status> {
        let receiver = self.sessions.watch();
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            let item = match receiver.recv().await {
                Ok(change) => watch_response(change),
                Err(RecvError::Lagged(skipped)) => pb::WatchSessionsResponse {
                    change: Some(pb::watch_sessions_response::Change::Reset(format!(
                        "{skipped} changes were dropped because this client read too slowly; list sessions again"
                    ))),
                },
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(item), receiver))
        })
        .take_until(self.shutdown.clone().cancelled_owned());
        Ok(Response::new(Box::pin(stream)))
    }
}
