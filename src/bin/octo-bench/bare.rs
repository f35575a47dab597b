//! The ceiling: a bare tonic server implementing only the streaming shape of
//! ChatService, with events of the same sizes as Octo's (same names, same text deltas).
//! No store, no provider, no runtime. Runs as a child process (`octo-bench --serve-bare`)
//! so it is measured from outside, like Octo.

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};
use octo::pb::{self, chat_service_server::ChatService, session_event::Kind};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SessionEvent, Status>> + Send>>;

pub struct Bare {
    events: broadcast::Sender<Arc<pb::SessionEvent>>,
    /// Turns of the session run one after the other, like Octo's.
    turns: Arc<tokio::sync::Mutex<()>>,
}

fn now() -> Option<prost_types::Timestamp> {
    let micros = crate::fake::now_micros();
    Some(prost_types::Timestamp {
        seconds: (micros / 1_000_000) as i64,
        nanos: ((micros % 1_000_000) * 1_000) as i32,
    })
}

fn tokens_of(parts: &[pb::Part]) -> u32 {
    parts
        .iter()
        .find_map(|p| match &p.kind {
            Some(pb::part::Kind::Text(t)) => t
                .rsplit_once("bench:")
                .and_then(|(_, n)| n.split(':').next()?.parse().ok()),
            _ => None,
        })
        .unwrap_or(200)
}

/// One turn's events, in Octo's order and shapes.
struct TurnEvents {
    session: String,
    turn: String,
    message: String,
    tokens: u32,
    next: u32,
    sequence: i64,
}

impl TurnEvents {
    fn new(session: &str, tokens: u32, sequence: i64) -> Self {
        let turn = octo::domain::new_id();
        let message = octo::domain::new_id();
        Self {
            session: session.to_owned(),
            turn: format!("{session}/turns/{turn}"),
            message: format!("{session}/messages/{message}"),
            tokens,
            next: 0,
            sequence,
        }
    }

    fn turn_pb(&self) -> pb::Turn {
        pb::Turn {
            name: self.turn.clone(),
            ..Default::default()
        }
    }
}

impl Iterator for TurnEvents {
    type Item = pb::SessionEvent;

    fn next(&mut self) -> Option<pb::SessionEvent> {
        let i = self.next;
        self.next += 1;
        let n = self.tokens;
        let kind = match i {
            0 => Kind::TurnStarted(pb::TurnStarted {
                turn: Some(self.turn_pb()),
            }),
            1 => Kind::MessageStarted(pb::MessageStarted {
                message: self.message.clone(),
                role: pb::Role::Assistant.into(),
            }),
            2 => Kind::ContentStarted(pb::ContentStarted {
                message: self.message.clone(),
                index: 0,
                kind: pb::ContentKind::Text.into(),
            }),
            i if i < n + 3 => Kind::TextDelta(pb::TextDelta {
                message: self.message.clone(),
                index: 0,
                text: format!("tok{} ", i - 3),
            }),
            i if i == n + 3 => Kind::ContentFinished(pb::ContentFinished {
                message: self.message.clone(),
                index: 0,
            }),
            i if i == n + 4 => Kind::TurnFinished(pb::TurnFinished {
                turn: Some(self.turn_pb()),
            }),
            _ => return None,
        };
        self.sequence += 1;
        Some(pb::SessionEvent {
            sequence: self.sequence,
            session: self.session.clone(),
            turn: self.turn.clone(),
            time: now(),
            kind: Some(kind),
        })
    }
}

#[tonic::async_trait]
impl ChatService for Bare {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let req = request.into_inner();
        let tokens = tokens_of(&req.parts);
        let events = self.events.clone();
        let turn_events = TurnEvents::new(&req.session, tokens, 0);
        let turn = turn_events.turn_pb();
        let order = self.turns.clone();
        let queued = order.lock_owned();
        tokio::spawn(async move {
            let _running = queued.await;
            for (i, event) in turn_events.enumerate() {
                let _ = events.send(Arc::new(event));
                if i % 64 == 63 {
                    tokio::task::yield_now().await;
                }
            }
        });
        Ok(Response::new(pb::SendMessageResponse {
            message: None,
            turn: Some(turn),
        }))
    }

    type ChatStream = EventStream;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let req = request.into_inner();
        let tokens = tokens_of(&req.parts);
        let events = TurnEvents::new(&req.session, tokens, 0);
        Ok(Response::new(Box::pin(
            futures::stream::iter(events).map(Ok),
        )))
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let req = request.into_inner();
        let snapshot = pb::SessionEvent {
            session: req.session.clone(),
            time: now(),
            kind: Some(Kind::Snapshot(pb::SessionSnapshot {
                session: Some(pb::Session {
                    name: req.session,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let live = BroadcastStream::new(self.events.subscribe())
            .filter_map(|item| async move { item.ok().map(|e| Ok((*e).clone())) });
        Ok(Response::new(Box::pin(
            futures::stream::once(async move { Ok(snapshot) }).chain(live),
        )))
    }

    async fn list_messages(
        &self,
        _: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn send_message_and_wait(
        &self,
        _: Request<pb::SendMessageAndWaitRequest>,
    ) -> Result<Response<pb::SendMessageAndWaitResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn get_message(
        &self,
        _: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn get_turn(&self, _: Request<pb::GetTurnRequest>) -> Result<Response<pb::Turn>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn list_turns(
        &self,
        _: Request<pb::ListTurnsRequest>,
    ) -> Result<Response<pb::ListTurnsResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn cancel_turn(
        &self,
        _: Request<pb::CancelTurnRequest>,
    ) -> Result<Response<pb::Turn>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn clear_queue(
        &self,
        _: Request<pb::ClearQueueRequest>,
    ) -> Result<Response<pb::ClearQueueResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn compact_session(
        &self,
        _: Request<pb::CompactSessionRequest>,
    ) -> Result<Response<pb::CompactSessionResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn respond_to_confirmation(
        &self,
        _: Request<pb::RespondToConfirmationRequest>,
    ) -> Result<Response<pb::RespondToConfirmationResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }

    async fn respond_to_input(
        &self,
        _: Request<pb::RespondToInputRequest>,
    ) -> Result<Response<pb::RespondToInputResponse>, Status> {
        Err(Status::unimplemented("bare"))
    }
}

/// `octo-bench --serve-bare`: serves until killed.
pub async fn serve() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (events, _) = broadcast::channel(1024);
    eprintln!("bare tonic listening address={address}");
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(pb::chat_service_server::ChatServiceServer::new(Bare {
            events,
            turns: Arc::default(),
        }))
        // `tcp_nodelay` above applies only to listeners tonic binds itself.
        .serve_with_incoming(
            tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
                stream.inspect(|s| {
                    let _ = s.set_nodelay(true);
                })
            }),
        )
        .await?;
    Ok(())
}
