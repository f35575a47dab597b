//! The bench's gRPC client side: Octo started for a scenario, and event streams decoded
//! lightly (only the fields the bench reads; prost skips the rest without allocating),
//! so the client, which shares the machine, costs as little as it can.

use std::path::{Path, PathBuf};

use http::uri::PathAndQuery;
use octo::pb;
use tonic::transport::Channel;

use crate::proc::Server;

/// `SessionEvent` with only what the bench reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LightEvent {
    #[prost(int64, tag = "1")]
    pub sequence: i64,
    #[prost(message, optional, tag = "4")]
    pub time: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "10")]
    pub snapshot: Option<Empty>,
    #[prost(message, optional, tag = "15")]
    pub text_delta: Option<LightText>,
    #[prost(message, optional, tag = "24")]
    pub turn_finished: Option<Empty>,
    #[prost(message, optional, tag = "28")]
    pub stream_reset: Option<Empty>,
}

/// `SessionEvent` for fan-out: no text at all.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CountEvent {
    #[prost(message, optional, tag = "4")]
    pub time: Option<prost_types::Timestamp>,
    #[prost(message, optional, tag = "10")]
    pub snapshot: Option<Empty>,
    #[prost(message, optional, tag = "24")]
    pub turn_finished: Option<FinishedTurn>,
    #[prost(message, optional, tag = "28")]
    pub stream_reset: Option<Empty>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `TurnFinished` with only the turn's name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FinishedTurn {
    #[prost(message, optional, tag = "1")]
    pub turn: Option<TurnName>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TurnName {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LightText {
    #[prost(string, tag = "3")]
    pub text: String,
}

pub fn micros(time: &Option<prost_types::Timestamp>) -> u64 {
    time.as_ref()
        .map(|t| t.seconds as u64 * 1_000_000 + t.nanos as u64 / 1_000)
        .unwrap_or_default()
}

/// A server-streaming call decoded as `Resp`.
pub async fn server_stream<Req, Resp>(
    channel: Channel,
    path: &'static str,
    request: Req,
) -> Result<tonic::Streaming<Resp>, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    Ok(grpc
        .server_streaming(
            tonic::Request::new(request),
            PathAndQuery::from_static(path),
            codec,
        )
        .await?
        .into_inner())
}

pub const CHAT: &str = "/octo.v1.ChatService/Chat";
pub const STREAM_EVENTS: &str = "/octo.v1.ChatService/StreamEvents";

pub fn text_parts(text: String) -> Vec<pb::Part> {
    vec![pb::Part {
        kind: Some(pb::part::Kind::Text(text)),
    }]
}

/// Octo configured for the bench: model `fake` (OpenAI-compatible, the bench's fake
/// server) and model `mock` (built in, `mock_tokens` tokens at full speed).
pub struct OctoSetup {
    pub octo: PathBuf,
    pub dir: PathBuf,
    pub fake_url: String,
    pub mock_tokens: u32,
    pub default_model: &'static str,
}

impl OctoSetup {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn database(&self) -> PathBuf {
        self.data_dir().join("octo.db")
    }

    pub fn write_config(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(
            self.config_path(),
            format!(
                r#"default_model = "{default}"
log = "warn,octo::server=info"
max_queue_depth = 1000
[models.fake]
provider = "openai"
base_url = "{fake}"
model = "bench"
api_key = "k"
[models.mock]
provider = "mock"
model = "mock"
[models.mock.options]
tokens = {tokens}
"#,
                default = self.default_model,
                fake = self.fake_url,
                tokens = self.mock_tokens,
            ),
        )?;
        Ok(())
    }

    pub async fn start(&self) -> anyhow::Result<Server> {
        self.write_config()?;
        start_octo(&self.octo, &self.config_path(), &self.data_dir()).await
    }
}

pub async fn start_octo(octo: &Path, config: &Path, data: &Path) -> anyhow::Result<Server> {
    let home = data.join("home");
    std::fs::create_dir_all(&home)?;
    Server::spawn(
        octo,
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            "--config".into(),
            config.to_path_buf(),
            "--data-dir".into(),
            data.to_path_buf(),
        ],
    )
    .await
}

pub async fn create_session(channel: &Channel, name: &str) -> anyhow::Result<String> {
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    Ok(sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                display_name: name.into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .name)
}
