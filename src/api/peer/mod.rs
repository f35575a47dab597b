//! The internal server-to-server service of a cluster (`peer.proto`, not part of the
//! public API) from both ends:
//!
//! - [`PeerApi`] serves it: the owner of a session runs a forwarded command as the
//!   public API would, but for `Caller::Peer`, so it never forwards it again.
//! - [`PeerClients`] calls it: the runtime's [`Peers`], one lazily connected HTTP/2
//!   channel per owner address, every call carrying the cluster token (checked by
//!   `auth::Auth::check_peer` on the owner, in constant time).
//!
//! Relayed events keep the owner's encoding (`Event::wire`), so a subscriber on any
//! server gets the same bytes, sequences and snapshot as one on the owner.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt as _;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Response, Status,
    metadata::{Ascii, MetadataValue},
    transport::{Channel, Endpoint},
};

use super::{
    chat::{ChatApi, WireStream, decision_pb, send_request},
    convert::{self, parse_name},
    error::from_peer_status,
};
use crate::{
    auth::CLUSTER_TOKEN_HEADER,
    domain::{Error, Message, Result, Timestamp, Turn, summary::Summary, tool::ToolCallRequest},
    pb::{self, chat_service_server::ChatService},
    runtime::{
        Caller, Chat, SendRequest,
        cluster::{Peers, Remote, RemoteEvents},
        events::{Confirmation, Decision, Event, EventKind, InputRequest, RelayedKind, WireCache},
    },
    tools::ask_user::Question,
};

/// The generated service and client.
#[allow(clippy::all, missing_docs)]
pub mod peer_pb {
    tonic::include_proto!("octo.peer.v1");
}

pub use peer_pb::peer_service_server::PeerServiceServer;
use peer_pb::{peer_service_client::PeerServiceClient, peer_service_server::PeerService};

/// How long a peer may take to accept a connection before it counts as unreachable:
/// on a LAN a connect takes well under 10 ms, so 2 s only trips for a dead host.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A unary forwarded command's whole budget (a send stores two rows on the owner).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A forwarded CompactSession: one model answer, which may take minutes.
const COMPACT_TIMEOUT: Duration = Duration::from_secs(300);

/// The peer service's methods `(path, server_streaming)`, for the metrics' bounded
/// method labels.
pub const METHODS: &[(&str, bool)] = &[
    ("/octo.peer.v1.PeerService/SendMessage", false),
    ("/octo.peer.v1.PeerService/StreamEvents", true),
    ("/octo.peer.v1.PeerService/CancelTurn", false),
    ("/octo.peer.v1.PeerService/ClearQueue", false),
    ("/octo.peer.v1.PeerService/CompactSession", false),
    ("/octo.peer.v1.PeerService/RespondToConfirmation", false),
    ("/octo.peer.v1.PeerService/RespondToInput", false),
    ("/octo.peer.v1.PeerService/EndSession", false),
];

/// Serves forwarded commands on the owner: the public ChatService's handlers, run for
/// `Caller::Peer` (so parsing, validation and conversion are the public API's own).
pub struct PeerApi {
    chat: Arc<Chat>,
    api: ChatApi,
}

impl PeerApi {
    pub fn new(chat: Arc<Chat>, shutdown: CancellationToken) -> Self {
        Self {
            api: ChatApi::for_peers(chat.clone(), shutdown),
            chat,
        }
    }
}

#[tonic::async_trait]
impl PeerService for PeerApi {
    async fn send_message(
        &self,
        request: Request<peer_pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let req = request.into_inner();
        let mut send = send_request(&req.session, &req.parts, req.on_busy, &req.model)?;
        send.unattended = req.unattended;
        let (message, turn) = self.chat.send_from(send, Caller::Peer).await?;
        Ok(Response::new(pb::SendMessageResponse {
            message: Some(convert::message_pb(&message)),
            turn: Some(convert::turn_pb(&turn)),
        }))
    }

    type StreamEventsStream = WireStream<pb::SessionEvent>;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        ChatService::stream_events(&self.api, request).await
    }

    async fn cancel_turn(
        &self,
        request: Request<pb::CancelTurnRequest>,
    ) -> Result<Response<pb::Turn>, Status> {
        ChatService::cancel_turn(&self.api, request).await
    }

    async fn clear_queue(
        &self,
        request: Request<pb::ClearQueueRequest>,
    ) -> Result<Response<pb::ClearQueueResponse>, Status> {
        ChatService::clear_queue(&self.api, request).await
    }

    async fn compact_session(
        &self,
        request: Request<pb::CompactSessionRequest>,
    ) -> Result<Response<pb::CompactSessionResponse>, Status> {
        ChatService::compact_session(&self.api, request).await
    }

    async fn respond_to_confirmation(
        &self,
        request: Request<pb::RespondToConfirmationRequest>,
    ) -> Result<Response<pb::RespondToConfirmationResponse>, Status> {
        ChatService::respond_to_confirmation(&self.api, request).await
    }

    async fn respond_to_input(
        &self,
        request: Request<pb::RespondToInputRequest>,
    ) -> Result<Response<pb::RespondToInputResponse>, Status> {
        ChatService::respond_to_input(&self.api, request).await
    }

    async fn end_session(
        &self,
        request: Request<pb::DeleteSessionRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let session_id = parse_name(&req.name, "sessions", "name")?;
        self.chat.end_session(session_id, Caller::Peer).await?;
        Ok(Response::new(()))
    }
}

/// Calls other servers' peer service: the runtime's [`Peers`] in a cluster.
pub struct PeerClients {
    token: MetadataValue<Ascii>,
    channels: Mutex<HashMap<String, Channel>>,
    max_message_bytes: usize,
}

impl PeerClients {
    /// `token` must be a valid header value (config validation checks it).
    pub fn new(cluster_token: &str, max_message_bytes: usize) -> Result<Self> {
        let token = cluster_token
            .parse()
            .map_err(|_| Error::invalid("cluster_token", "must be printable ASCII"))?;
        Ok(Self {
            token,
            channels: Mutex::new(HashMap::new()),
            max_message_bytes,
        })
    }

    fn client(&self, owner: &Remote) -> Result<PeerServiceClient<Channel>> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let channel = match channels.get(&owner.address) {
            Some(channel) => channel.clone(),
            None => {
                let mut endpoint = Endpoint::from_shared(owner.address.clone())
                    .map_err(|err| unreachable(owner, &err))?;
                if endpoint.uri().scheme_str() == Some("https") {
                    // A server with tls_cert advertises https://: verified against the
                    // system's roots (a private CA must be in the system trust store).
                    endpoint = endpoint
                        .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                        .map_err(|err| unreachable(owner, &err))?;
                }
                let channel = endpoint
                    .connect_timeout(CONNECT_TIMEOUT)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_while_idle(true)
                    .connect_lazy();
                channels.insert(owner.address.clone(), channel.clone());
                channel
            }
        };
        Ok(PeerServiceClient::new(channel)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes))
    }

    fn request<T>(&self, message: T, timeout: Option<Duration>) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert(CLUSTER_TOKEN_HEADER, self.token.clone());
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        // The owner's span of this call joins the trace of the call forwarded.
        let mut trace = http::HeaderMap::new();
        crate::telemetry::inject(&mut trace);
        for name in ["traceparent", "tracestate"] {
            if let Some(value) = trace
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<MetadataValue<Ascii>>().ok())
            {
                request.metadata_mut().insert(name, value);
            }
        }
        request
    }

    /// The domain error for a failed peer call: the owner's own answer, or, when the
    /// call never reached it, PEER_UNREACHABLE (retryable: the session moves to a live
    /// server within the lease TTL if its owner is dead).
    fn failed(owner: &Remote, status: &Status) -> Error {
        let transport = matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ) && status.get_details_error_info().is_none();
        if transport {
            return unreachable(owner, status);
        }
        from_peer_status(status)
    }
}

fn unreachable(owner: &Remote, err: &dyn std::fmt::Display) -> Error {
    tracing::debug!(server = %owner.server_id, address = %owner.address, error = %err, "peer unreachable");
    Error::Unavailable {
        reason: crate::domain::reason::PEER_UNREACHABLE,
        message: format!(
            "the server owning this session ({}) cannot be reached; retry: another server takes its sessions within the lease TTL if it is down",
            owner.server_id
        ),
        retry_after: Some(Duration::from_secs(1)),
    }
}

use tonic_types::StatusExt as _;

#[async_trait::async_trait]
impl Peers for PeerClients {
    async fn send(&self, owner: &Remote, send: &SendRequest) -> Result<(Message, Turn)> {
        let request = peer_pb::SendMessageRequest {
            session: convert::session_name(&send.session_id),
            parts: send.parts.iter().map(convert::part_pb).collect(),
            on_busy: busy_policy_pb(send.on_busy) as i32,
            model: send
                .model
                .as_deref()
                .map(convert::model_name)
                .unwrap_or_default(),
            unattended: send.unattended,
        };
        let answer = self
            .client(owner)?
            .send_message(self.request(request, Some(CALL_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        let mut message = answer
            .message
            .as_ref()
            .ok_or_else(|| Error::internal("peer answered without the message"))
            .and_then(|m| convert::message(m, "message"))?;
        message.session_id.clone_from(&send.session_id);
        let turn = answer
            .turn
            .as_ref()
            .ok_or_else(|| Error::internal("peer answered without the turn"))
            .and_then(|t| turn_of(&send.session_id, t))?;
        Ok((message, turn))
    }

    async fn subscribe(
        &self,
        owner: &Remote,
        session_id: &str,
        after_sequence: i64,
    ) -> Result<RemoteEvents> {
        let request = pb::StreamEventsRequest {
            session: convert::session_name(session_id),
            after_sequence,
        };
        let stream = self
            .client(owner)?
            .stream_events(self.request(request, None))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        let session: Arc<str> = Arc::from(session_id);
        let owner = owner.clone();
        Ok(Box::pin(stream.map(move |item| match item {
            Ok(event) => Ok(relayed(event, &session)),
            Err(status) => Err(Self::failed(&owner, &status)),
        })))
    }

    async fn cancel_turn(&self, owner: &Remote, session_id: &str, turn_id: &str) -> Result<Turn> {
        let request = pb::CancelTurnRequest {
            name: format!("sessions/{session_id}/turns/{turn_id}"),
        };
        let turn = self
            .client(owner)?
            .cancel_turn(self.request(request, Some(CALL_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        turn_of(session_id, &turn)
    }

    async fn clear_queue(&self, owner: &Remote, session_id: &str) -> Result<Vec<Turn>> {
        let request = pb::ClearQueueRequest {
            session: convert::session_name(session_id),
        };
        let answer = self
            .client(owner)?
            .clear_queue(self.request(request, Some(CALL_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        answer
            .cancelled_turns
            .iter()
            .map(|t| turn_of(session_id, t))
            .collect()
    }

    async fn compact(&self, owner: &Remote, session_id: &str) -> Result<(bool, Option<Summary>)> {
        let request = pb::CompactSessionRequest {
            session: convert::session_name(session_id),
        };
        // A summary request takes as long as a model answer: the relay's own timeout.
        let answer = self
            .client(owner)?
            .compact_session(self.request(request, Some(COMPACT_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        let summary = answer.summary.map(|s| Summary {
            session_id: session_id.to_owned(),
            // Not carried by the API; nothing downstream of a relayed answer reads it.
            through_position: 0,
            text: s.summary,
            replaced_messages: s.replaced_messages.max(0) as u32,
            tokens_before: s.tokens_before.max(0) as u64,
            tokens_after: s.tokens_after.max(0) as u64,
            model: s
                .model
                .strip_prefix("models/")
                .unwrap_or(&s.model)
                .to_owned(),
            create_time: Timestamp::now(),
        });
        Ok((answer.compacted, summary))
    }

    async fn respond(
        &self,
        owner: &Remote,
        session_id: &str,
        confirmation_id: &str,
        decision: Decision,
    ) -> Result<Confirmation> {
        let request = pb::RespondToConfirmationRequest {
            name: format!("sessions/{session_id}/confirmations/{confirmation_id}"),
            decision: decision_pb(Some(decision)) as i32,
        };
        let answer = self
            .client(owner)?
            .respond_to_confirmation(self.request(request, Some(CALL_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        let confirmation = answer
            .confirmation
            .ok_or_else(|| Error::internal("peer answered without the confirmation"))?;
        Ok(confirmation_from_pb(session_id, confirmation))
    }

    async fn respond_to_input(
        &self,
        owner: &Remote,
        session_id: &str,
        request_id: &str,
        answer: &str,
    ) -> Result<InputRequest> {
        let request = pb::RespondToInputRequest {
            name: format!("sessions/{session_id}/inputRequests/{request_id}"),
            answer: answer.to_owned(),
        };
        let answered = self
            .client(owner)?
            .respond_to_input(self.request(request, Some(CALL_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?
            .into_inner();
        let request = answered
            .input_request
            .ok_or_else(|| Error::internal("peer answered without the input request"))?;
        Ok(input_request_from_pb(session_id, request))
    }

    async fn end_session(&self, owner: &Remote, session_id: &str) -> Result<()> {
        let request = pb::DeleteSessionRequest {
            name: convert::session_name(session_id),
            ..Default::default()
        };
        self.client(owner)?
            .end_session(self.request(request, Some(CALL_TIMEOUT)))
            .await
            .map_err(|status| Self::failed(owner, &status))?;
        Ok(())
    }
}

/// An owner's event as this server relays it: the owner's bytes, and what the
/// runtime needs to know (sequence, turn, whether it ends the turn or the stream).
fn relayed(event: pb::SessionEvent, session_id: &Arc<str>) -> Event {
    use pb::session_event::Kind;
    let kind = match &event.kind {
        Some(Kind::Snapshot(_)) => RelayedKind::Snapshot,
        Some(Kind::TurnFinished(_)) => RelayedKind::TurnFinished,
        Some(Kind::SessionDeleted(_)) => RelayedKind::SessionDeleted,
        Some(Kind::StreamReset(_)) => RelayedKind::StreamReset,
        _ => RelayedKind::Other,
    };
    Event {
        sequence: event.sequence,
        session_id: session_id.clone(),
        turn_id: event
            .turn
            .rsplit_once("/turns/")
            .map(|(_, turn)| Arc::from(turn)),
        time: event
            .time
            .as_ref()
            .and_then(|t| convert::from_timestamp(t, "time").ok())
            .unwrap_or_else(Timestamp::now),
        kind: EventKind::Relayed(kind),
        wire: WireCache::filled(event.encode_to_vec().into()),
    }
}

/// A turn of `session_id` as the owner answered it.
fn turn_of(session_id: &str, turn: &pb::Turn) -> Result<Turn> {
    let mut turn = convert::turn(turn, "turn")?;
    turn.session_id = session_id.to_owned();
    Ok(turn)
}

fn busy_policy_pb(policy: crate::runtime::BusyPolicy) -> pb::BusyPolicy {
    use crate::runtime::BusyPolicy;
    match policy {
        BusyPolicy::Enqueue => pb::BusyPolicy::Enqueue,
        BusyPolicy::Steer => pb::BusyPolicy::Steer,
        BusyPolicy::Interrupt => pb::BusyPolicy::Interrupt,
        BusyPolicy::Reject => pb::BusyPolicy::Reject,
    }
}

fn confirmation_from_pb(session_id: &str, c: pb::Confirmation) -> Confirmation {
    let call = c.tool_call.unwrap_or_default();
    Confirmation {
        id: c.name.rsplit('/').next().unwrap_or_default().to_owned(),
        session_id: session_id.to_owned(),
        turn_id: c.turn.rsplit('/').next().unwrap_or_default().to_owned(),
        call: ToolCallRequest {
            id: call.id,
            tool: call.tool,
            arguments_json: call.arguments_json,
        },
        reason: c.reason,
        create_time: c
            .create_time
            .as_ref()
            .and_then(|t| convert::from_timestamp(t, "create_time").ok())
            .unwrap_or_else(Timestamp::now),
    }
}

fn input_request_from_pb(session_id: &str, r: pb::InputRequest) -> InputRequest {
    InputRequest {
        id: r.name.rsplit('/').next().unwrap_or_default().to_owned(),
        session_id: session_id.to_owned(),
        turn_id: r.turn.rsplit('/').next().unwrap_or_default().to_owned(),
        tool_call_id: r.tool_call_id,
        question: Question {
            question: r.question,
            choices: r.choices,
            allow_free_text: r.allow_free_text,
        },
        create_time: r
            .create_time
            .as_ref()
            .and_then(|t| convert::from_timestamp(t, "create_time").ok())
            .unwrap_or_else(Timestamp::now),
    }
}
