//! Connecting to a running server with the generated tonic clients, the bearer-token
//! interceptor, and turning gRPC failures into readable error messages.

use std::{error::Error as StdError, fmt, io, path::Path, time::Duration};

use anyhow::Context as _;
use tonic::{
    Code, Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};
use tonic_types::StatusExt;

use crate::pb::{
    chat_service_client::ChatServiceClient, file_service_client::FileServiceClient,
    mcp_server_service_client::McpServerServiceClient, model_service_client::ModelServiceClient,
    profile_service_client::ProfileServiceClient, schedule_service_client::ScheduleServiceClient,
    session_service_client::SessionServiceClient, trigger_service_client::TriggerServiceClient,
    webhook_service_client::WebhookServiceClient,
};

/// Where client commands connect when neither `--server` nor `OCTO_SERVER` says otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Largest response the CLI accepts (exports of long sessions are big).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Debug, Default)]
pub struct AuthInterceptor {
    header: Option<MetadataValue<Ascii>>,
}

impl AuthInterceptor {
    /// An interceptor sending `token`; `None` or a blank token sends nothing.
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        let header = match token.map(str::trim).filter(|token| !token.is_empty()) {
            None => None,
            Some(token) => Some(format!("Bearer {token}").parse().map_err(|_| {
                anyhow::anyhow!("the token contains characters not allowed in a header")
            })?),
        };
        Ok(AuthInterceptor { header })
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(header) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
        }
        Ok(request)
    }
}

/// The transport every generated client uses: the channel behind the auth interceptor.
pub type AuthChannel = InterceptedService<Channel, AuthInterceptor>;

/// A connection to a server; hands out the generated clients of each service.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    auth: AuthInterceptor,
    url: String,
}

impl Client {
    /// Connects to `server`: `http://host:port` is plaintext h2c (a missing scheme means
    /// `http://`), `https://host:port` is TLS verified against the system's roots and
    /// `ca_cert` (a PEM file), never a silent plaintext fallback.
    pub async fn connect(
        server: &str,
        token: Option<&str>,
        ca_cert: Option<&Path>,
    ) -> anyhow::Result<Client> {
        let url = normalize_url(server);
        let auth = AuthInterceptor::new(token)?;
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|err| anyhow::anyhow!("invalid server URL {url:?}: {err}"))?
            .connect_timeout(Duration::from_secs(10));
        let tls = match endpoint.uri().scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => anyhow::bail!("invalid server URL {url:?}: use http:// or https://"),
        };
        let endpoint = if tls {
            let mut config = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = ca_cert {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading --ca-cert {}", path.display()))?;
                config = config.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint
                .tls_config(config)
                .map_err(|err| anyhow::anyhow!("TLS setup for {url}: {}", error_chain(&err)))?
        } else {
            if ca_cert.is_some() {
                anyhow::bail!(
                    "--ca-cert is for https:// servers, but {url} is plain http: use https:// \
                     to connect over TLS"
                );
            }
            endpoint
        };
        let channel = endpoint.connect().await.map_err(|source| ConnectError {
            url: url.clone(),
            refused: is_connection_refused(&source),
            tls,
            detail: error_chain(&source),
        })?;
        Ok(Client { channel, auth, url })
    }

    /// The server URL connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn sessions(&self) -> SessionServiceClient<AuthChannel> {
        SessionServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn chat(&self) -> ChatServiceClient<AuthChannel> {
        ChatServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn models(&self) -> ModelServiceClient<AuthChannel> {
        ModelServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn webhooks(&self) -> WebhookServiceClient<AuthChannel> {
        WebhookServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn files(&self) -> FileServiceClient<AuthChannel> {
        FileServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn mcp_servers(&self) -> McpServerServiceClient<AuthChannel> {
        McpServerServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn profiles(&self) -> ProfileServiceClient<AuthChannel> {
        ProfileServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn triggers(&self) -> TriggerServiceClient<AuthChannel> {
        TriggerServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn schedules(&self) -> ScheduleServiceClient<AuthChannel> {
        ScheduleServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

fn normalize_url(server: &str) -> String {
    let server = server.trim().trim_end_matches('/');
    if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    }
}

/// The server could not be reached.
#[derive(Debug)]
pub struct ConnectError {
    pub url: String,
    pub refused: bool,
    /// Whether the connection was to be TLS (`https://`).
    pub tls: bool,
    detail: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.refused {
            write!(
                f,
                "cannot connect to the octo server at {}: connection refused",
                self.url
            )
        } else if self.tls {
            write!(
                f,
                "cannot connect to the octo server at {} over TLS: {} (does the server serve \
                 TLS, and is its certificate signed by a CA this machine or --ca-cert trusts?)",
                self.url, self.detail
            )
        } else {
            write!(
                f,
                "cannot connect to the octo server at {}: {}",
                self.url, self.detail
            )
        }
    }
}

impl StdError for ConnectError {}

const CONNECT_HINT: &str = "hint: is the server running? Start one with `octo serve`, \
                            or point --server (or OCTO_SERVER) at it";

fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        let next = err.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = err.source();
    }
    text
}

fn is_connection_refused(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// The text printed for a failed gRPC call, saying each thing once:
/// `error: <message> (<REASON>)` (the ErrorInfo reason, else the code), then one line
/// per BadRequest field violation (`  <field>: <description>`; the headline is then just
/// "invalid argument", as the server's message only joins the same violations) and per
/// ErrorInfo metadata entry.
pub fn describe_status(status: &Status) -> String {
    use crate::api::error::code_name;
    let details = status.get_error_details();
    let violations = details
        .bad_request()
        .map(|b| b.field_violations.as_slice())
        .unwrap_or_default();
    let label = details
        .error_info()
        .map(|info| info.reason.as_str())
        .filter(|reason| !reason.is_empty())
        .unwrap_or_else(|| code_name(status.code()));
    let message = if !violations.is_empty() {
        "invalid argument"
    } else if status.message().is_empty() {
        code_name(status.code())
    } else {
        status.message()
    };
    let mut text = if message == label {
        format!("error: {message}\n")
    } else {
        format!("error: {message} ({label})\n")
    };
    for violation in violations {
        text.push_str(&format!(
            "  {}: {}\n",
            violation.field, violation.description
        ));
    }
    if let Some(info) = details.error_info() {
        let mut metadata: Vec<_> = info.metadata.iter().collect();
        metadata.sort();
        for (key, value) in metadata {
            text.push_str(&format!("  {key}: {value}\n"));
        }
    }

    let refused = StdError::source(status).is_some_and(is_connection_refused);
    if refused {
        text.push_str(CONNECT_HINT);
        text.push('\n');
    } else if status.code() == Code::Unauthenticated {
        text.push_str("hint: pass the server's token with --token or OCTO_TOKEN\n");
    }
    text
}

/// The text printed for any error a command returns, ending in a newline.
pub fn describe_error(err: &anyhow::Error) -> String {
    for cause in err.chain() {
        if let Some(status) = cause.downcast_ref::<Status>() {
            return describe_status(status);
        }
        if let Some(connect) = cause.downcast_ref::<ConnectError>() {
            let mut text = format!("error: {connect}\n");
            if connect.refused {
                text.push_str(CONNECT_HINT);
                text.push('\n');
            }
            return text;
        }
    }
    format!("error: {err:#}\n")
}

/// Whether the error is a closed stdout (e.g. output piped into `head`): not worth a message.
/// A broken pipe inside a failed call is the server's connection closing (say, a TLS
/// port spoken to in plaintext): that is an error to report, never a quiet success.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let from_the_connection = err.chain().any(|cause| {
        cause.is::<Status>() || cause.is::<ConnectError>() || cause.is::<tonic::transport::Error>()
    });
    !from_the_connection
        && err.chain().any(|cause| {
            cause
                .downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
        })
}

/// One page of a List RPC, or with `all` every page. `fetch` gets a page token and
/// returns that page's items and the next token; the last token is returned with the
/// items (non-empty when more pages remain).
pub async fn collect_pages<T, F, Fut>(all: bool, mut fetch: F) -> anyhow::Result<(Vec<T>, String)>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(Vec<T>, String)>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (page, next) = fetch(token.clone()).await?;
        items.extend(page);
        // Stop on the last page, and on a token that repeats (a server bug, not a loop).
        if !all || next.is_empty() || next == token {
            return Ok((items, next));
        }
        token = next;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn collect_pages_follows_tokens_only_when_asked_and_stops_on_a_repeat() {
        // Pages: "" -> [1,2] next "a"; "a" -> [3] next "b"; "b" -> [4] next "b" (a repeat).
        let fetch = |token: String| async move {
            Ok::<_, anyhow::Error>(match token.as_str() {
                "" => (vec![1, 2], "a".to_owned()),
                "a" => (vec![3], "b".to_owned()),
                _ => (vec![4], "b".to_owned()),
            })
        };
        assert_eq!(
            collect_pages(false, fetch).await.expect("one page"),
            (vec![1, 2], "a".to_owned())
        );
        assert_eq!(
            collect_pages(true, fetch).await.expect("all"),
            (vec![1, 2, 3, 4], "b".to_owned())
        );
    }

    use super::*;
    use tonic_types::{ErrorDetails, FieldViolation};

    #[test]
    fn interceptor_adds_the_bearer_token() {
        let mut auth = AuthInterceptor::new(Some("s3cret")).expect("token");
        let request = auth.call(Request::new(())).expect("call");
        assert_eq!(
            request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer s3cret")
        );

        let mut none = AuthInterceptor::new(Some("  ")).expect("blank");
        let request = none.call(Request::new(())).expect("call");
        assert!(request.metadata().get("authorization").is_none());

        assert!(AuthInterceptor::new(Some("bad\ntoken")).is_err());
    }

    #[test]
    fn only_a_closed_stdout_is_a_quiet_broken_pipe() {
        let stdout = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&stdout));
        let connection = Status::from_error(Box::new(io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(StdError::source(&connection).is_some(), "{connection:?}");
        assert!(!is_broken_pipe(&anyhow::Error::new(connection)));
    }

    #[test]
    fn urls_get_a_scheme() {
        assert_eq!(normalize_url("127.0.0.1:1"), "http://127.0.0.1:1");
        assert_eq!(normalize_url("http://h:2/"), "http://h:2");
    }

    #[test]
    fn statuses_print_code_message_and_details() {
        let mut details = ErrorDetails::with_error_info(
            "SESSION_INVALID",
            "octo",
            [("session".to_owned(), "sessions/x".to_owned())],
        );
        details.set_bad_request(vec![FieldViolation::new(
            "session.display_name",
            "too long",
        )]);
        let status = Status::with_error_details(Code::InvalidArgument, "invalid session", details);
        let text = describe_status(&status);
        assert_eq!(
            text,
            "error: invalid argument (SESSION_INVALID)\n  session.display_name: too long\n  \
             session: sessions/x\n"
        );

        // The server's reason names the error; the code is the fallback.
        let details =
            ErrorDetails::with_error_info(crate::domain::reason::SESSION_BUSY, "octo.v1", []);
        let busy =
            Status::with_error_details(Code::FailedPrecondition, "sessions/x is running", details);
        assert_eq!(
            describe_status(&busy),
            "error: sessions/x is running (SESSION_BUSY)\n"
        );
        let err = anyhow::Error::new(Status::not_found("no such session")).context("get");
        assert_eq!(describe_error(&err), "error: no such session (NOT_FOUND)\n");
    }

    #[tokio::test]
    async fn refused_connections_mention_the_url_and_octo_serve() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let url = format!("http://{addr}");
        let err = Client::connect(&url, None, None)
            .await
            .expect_err("refused");
        let text = describe_error(&err);
        assert!(text.contains(&url), "{text}");
        assert!(text.contains("octo serve"), "{text}");
    }
}
