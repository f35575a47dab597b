//! Assembles the server: store, runtime, gRPC services, gRPC-Web, the JSON gateway,
//! auth and metrics on one listening address (HTTP/1.1 and h2c), with graceful shutdown.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use http::{HeaderValue, Request, Response, header};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tonic::{body::Body, service::Routes, transport::server::TcpConnectInfo};
use tower::{Layer, ServiceExt, util::BoxCloneSyncService};
use tracing::Instrument;

use crate::{
    admission::{Admission, StreamCapLayer},
    api::{
        ChatApi, ChatRoutes, FileApi, McpServerApi, ModelApi, ProfileApi, ScheduleApi, SessionApi,
        TriggerApi, WebhookApi,
        peer::{PeerApi, PeerClients, PeerServiceServer},
    },
    auth::{Auth, AuthLayer},
    config::Config,
    domain::outbox::WebhookEndpoint,
    guard::Guard,
    http::{GrpcService, JsonGateway},
    metrics::{Metrics, MetricsLayer},
    outbox::OutboxWorker,
    pb::{
        self, file_service_server::FileServiceServer,
        mcp_server_service_server::McpServerServiceServer,
        model_service_server::ModelServiceServer, profile_service_server::ProfileServiceServer,
        schedule_service_server::ScheduleServiceServer,
        session_service_server::SessionServiceServer, trigger_service_server::TriggerServiceServer,
        webhook_service_server::WebhookServiceServer,
    },
    runtime::{
        Chat, ClusterSettings, Deliveries, Deps, Files, Limits, LiveIndex, McpServers, Models,
        Outbox, Ownership, Profiles, RetentionPolicy, Sessions, Triggers, Workspace,
    },
    scheduler::{Clock, Scheduler, SchedulerDeps, SystemClock},
    store::Store,
    telemetry::rpc::RpcSpanLayer,
    tools::{Toolbox, mcp::McpConnections},
    webhooks::{WebhookSecret, Webhooks},
};

const REQUEST_ID: &str = "x-request-id";

/// Everything a request may need, shared by all connections.
struct App {
    chat: Arc<Chat>,
    /// Answers `POST /hooks/{trigger}` (inbound trigger calls).
    triggers: Arc<Triggers>,
    store: Arc<dyn Store>,
    /// Cancelled when shutdown begins: the readiness probe fails from then on.
    stopping: CancellationToken,
    grpc: GrpcService,
    grpc_web: GrpcService,
    gateway: JsonGateway,
    metrics: Arc<Metrics>,
    auth: Arc<Auth>,
    guard: Guard,
    /// Serve the web UI at `/` (config `ui`).
    ui: bool,
    /// The connection and stream caps.
    admission: Admission,
}

/// A bound, not yet running server.
pub struct Server {
    config: Config,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// Set when `tls_cert`/`tls_key` are: every connection is TLS.
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    store: Arc<dyn Store>,
    chat: Arc<Chat>,
    /// Cancelled on shutdown: running turns end INTERRUPTED.
    turns_shutdown: CancellationToken,
    health: tonic_health::server::HealthReporter,
    /// Cancelled on shutdown: open server streams end.
    shutdown: CancellationToken,
    scheduler: Arc<Scheduler>,
    /// Sends the outbox's deliveries (the worker starts with [`Server::run`]).
    webhooks: Webhooks,
    outbox: Outbox,
    /// Cancelled last: the in-memory webhook queue stops.
    webhooks_shutdown: CancellationToken,
    /// This process: cluster member, runner of schedule runs, claimer of deliveries.
    server_id: String,
    /// Stopped after the turns: their processes exit.
    mcp_connections: Arc<McpConnections>,
}

/// `(path, server_streaming)` of every Octo RPC, from the descriptor set.
fn octo_methods() -> anyhow::Result<Vec<(String, bool)>> {
    let pool = prost_reflect::DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET)
        .context("decoding the descriptor set")?;
    Ok(pool
        .services()
        .flat_map(|service| {
            service
                .methods()
                .map(|m| {
                    (
                        format!("/{}/{}", service.full_name(), m.name()),
                        m.is_server_streaming(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .chain(
            [
                ("/grpc.health.v1.Health/Check", false),
                ("/grpc.health.v1.Health/Watch", true),
                (
                    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                    true,
                ),
                (
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                    true,
                ),
            ]
            .into_iter()
            .chain(crate::api::peer::METHODS.iter().copied())
            .map(|(path, streaming)| (path.to_owned(), streaming)),
        )
        .collect())
}

impl Server {
    /// Checks the configuration, opens the store (running migrations) and binds the
    /// listening address.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        Self::bind_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Server::bind`] with the clock schedules fire by (tests move it by hand).
    pub async fn bind_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
        crate::auth::check_startup(config.listen, config.token.as_deref(), config.require_token)
            .map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        if tls.is_none() && !local_addr.ip().is_loopback() {
            tracing::warn!(
                address = %local_addr,
                "listening on a non-loopback address without TLS: the token and every \
                 conversation travel in clear text; set tls_cert and tls_key (or put a TLS \
                 proxy in front)"
            );
        }
        // The data dir holds the database, stored keys and workspaces: owner only.
        crate::files::private_dir(&config.data_dir)
            .with_context(|| format!("preparing data dir {}", config.data_dir.display()))?;

        let database = match &config.database_url {
            Some(url) => crate::domain::secret::mask_url(url),
            None => config.database_path().display().to_string(),
        };
        let clustered = config.cluster_token.is_some();
        let store = crate::store::open(
            config.database_url.as_deref(),
            &config.database_path(),
            clustered,
        )
        .await
        .with_context(|| format!("opening the database {database}"))?;
        let workspace = Workspace::new(&config.workspace_root(), config.allow_any_working_dir)
            .with_context(|| {
                format!(
                    "preparing workspace root {}",
                    config.workspace_root().display()
                )
            })?;
        let live = Arc::new(LiveIndex::default());
        let provider_policy = config.provider.policy();
        let http = crate::providers::http::http_client(&provider_policy)
            .map_err(|err| anyhow::anyhow!("building the HTTP client: {}", err.message))?;
        let models = Arc::new(
            Models::open(
                store.clone(),
                &config.models,
                config.default_model.as_deref(),
                http.clone(),
                provider_policy.clone(),
            )
            .await
            .context("loading models")?,
        );
        let profiles = Arc::new(
            Profiles::open(
                store.clone(),
                models.clone(),
                &config.profiles,
                config.default_profile.as_deref(),
            )
            .await
            .context("loading profiles")?,
        );
        let sessions = Arc::new(
            Sessions::new(store.clone(), workspace, live.clone(), models.clone())
                .with_trash_retention(config.trash_retention()),
        );
        let webhooks_shutdown = CancellationToken::new();
        let webhook_policy = config.webhooks.policy();
        let webhooks = Webhooks::start(
            crate::webhooks::http_client(&webhook_policy).context("building the webhook client")?,
            webhook_policy,
            local_addr,
            webhooks_shutdown.clone(),
        );
        let server_webhook = match (&config.webhook_url, &config.webhook_secret) {
            (Some(url), Some(secret)) => {
                webhooks
                    .check_url(url)
                    .await
                    .map_err(|err| anyhow::anyhow!("webhook_url: {err}"))?;
                WebhookSecret::parse(secret)
                    .map_err(|err| anyhow::anyhow!("webhook_secret: {err}"))?;
                Some(WebhookEndpoint {
                    url: url.clone(),
                    secret: secret.clone(),
                })
            }
            _ => None,
        };
        let outbox = Outbox {
            endpoint: server_webhook,
            wake: Arc::default(),
        };
        let shutdown = CancellationToken::new();
        let turns_shutdown = CancellationToken::new();
        let limits = Limits::from_config(&config);
        // Said once, plainly: what a model's commands can and cannot do on this host.
        if limits.sandbox.confines_files() || !config.sandbox.confine_files {
            tracing::info!(sandbox = %limits.sandbox.describe(), "tool sandbox");
        } else {
            tracing::warn!(sandbox = %limits.sandbox.describe(), "tool sandbox");
        }
        let mcp_connections = Arc::new(McpConnections::new(
            limits.tool_env.clone(),
            config.workspace_root(),
        ));
        let mcp = Arc::new(
            McpServers::open(
                store.clone(),
                mcp_connections.clone(),
                &config.mcp,
                Toolbox::builtin(),
                sessions.clone(),
            )
            .await
            .context("loading MCP servers")?,
        );
        let deps = Arc::new(Deps {
            store: store.clone(),
            sessions: sessions.clone(),
            models: models.clone(),
            toolbox: Toolbox::builtin(),
            mcp: mcp.clone(),
            http,
            provider_policy,
            limits,
            live,
            shutdown: turns_shutdown.clone(),
            outbox: outbox.clone(),
        });
        // This process, as a cluster member, a runner of schedule runs and a claimer of
        // webhook deliveries. New at every start: a restarted server is a new member, so
        // nothing it held before a crash is mistaken for its own.
        let server_id = uuid::Uuid::now_v7().simple().to_string();
        let chat = match &config.cluster_token {
            None => Chat::new(deps),
            Some(token) => {
                let settings = ClusterSettings {
                    server_id: server_id.clone(),
                    address: config.advertised_address(local_addr),
                    lease_ttl: Duration::from_secs(config.lease_ttl_seconds),
                };
                tracing::info!(server = %settings.server_id, address = %settings.address, lease_ttl_seconds = config.lease_ttl_seconds, "joining the cluster");
                let peers = PeerClients::new(token, config.max_message_bytes)?;
                Chat::with_ownership(
                    deps.clone(),
                    Ownership::clustered(store.clone(), settings),
                    Arc::new(peers),
                )
            }
        };
        let recovered = chat
            .recover()
            .await
            .context("recovering unfinished turns")?;
        if recovered > 0 {
            tracing::info!(
                sessions = recovered,
                "recovered sessions with unfinished turns"
            );
        }

        let scheduler = Scheduler::new(
            SchedulerDeps {
                store: store.clone(),
                chat: chat.clone(),
                sessions: sessions.clone(),
                models: models.clone(),
                clock,
                webhooks: webhooks.clone(),
                outbox: outbox.clone(),
                misfire_grace: Duration::from_secs(config.schedule_misfire_grace_seconds),
                server_id: server_id.clone(),
                lease_ttl: clustered.then(|| Duration::from_secs(config.lease_ttl_seconds)),
            },
            CancellationToken::new(),
        );

        let triggers = Arc::new(Triggers::new(store.clone(), sessions.clone(), chat.clone()));
        let max = config.max_message_bytes;
        let (health, health_service) = tonic_health::server::health_reporter();
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building reflection v1")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("building reflection v1alpha")?;
        let routes = Routes::new(
            SessionServiceServer::new(SessionApi::new(
                sessions.clone(),
                chat.clone(),
                shutdown.clone(),
            ))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(ChatRoutes::new(
            ChatApi::new(chat.clone(), shutdown.clone()),
            max,
        ))
        .add_service(
            ModelServiceServer::new(ModelApi::new(models.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ProfileServiceServer::new(ProfileApi::new(profiles))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            TriggerServiceServer::new(TriggerApi::new(triggers.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            FileServiceServer::new(FileApi::new(Arc::new(Files::new(
                sessions.clone(),
                config.files.limits(),
            ))))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            McpServerServiceServer::new(McpServerApi::new(mcp.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ScheduleServiceServer::new(ScheduleApi::new(scheduler.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            WebhookServiceServer::new(WebhookApi::new(Arc::new(Deliveries::new(
                store.clone(),
                &outbox,
            ))))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            PeerServiceServer::new(PeerApi::new(chat.clone(), shutdown.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare();

        let methods = octo_methods()?;
        // Octo's own server streams count against max_streams (peer relays included: a
        // relayed stream holds a stream on the owner too).
        let streaming = methods
            .iter()
            .filter(|(path, server_streaming)| *server_streaming && path.starts_with("/octo."))
            .map(|(path, _)| path.clone())
            .collect();
        let admission = Admission::new(config.max_connections, config.max_streams, streaming);
        warn_if_over_file_limit(config.max_connections);
        let all_methods = methods.clone();
        let metrics = Arc::new(Metrics::new(methods));
        let auth = Arc::new(
            Auth::new(config.token.as_deref()).with_cluster_token(config.cluster_token.as_deref()),
        );
        let services = MetricsLayer::new(metrics.clone()).layer(
            AuthLayer::new(auth.clone()).layer(StreamCapLayer(admission.clone()).layer(routes)),
        );
        // A span per RPC, outermost (refused calls get one too); only when traces are
        // exported, so without them the stack is what it was.
        let grpc: GrpcService = if crate::telemetry::enabled() {
            BoxCloneSyncService::new(
                RpcSpanLayer::new(all_methods.iter().map(|(path, _)| path.clone())).layer(services),
            )
        } else {
            BoxCloneSyncService::new(services)
        };
        let grpc_web: GrpcService =
            BoxCloneSyncService::new(tonic_web::GrpcWebLayer::new().layer(grpc.clone()));
        let gateway = JsonGateway::new(pb::FILE_DESCRIPTOR_SET, grpc.clone(), max)
            .map_err(anyhow::Error::msg)
            .context("building the JSON/HTTP gateway")?;

        let guard = Guard::new(&config);
        let ui = config.ui;
        Ok(Server {
            config,
            listener,
            local_addr,
            tls,
            app: Arc::new(App {
                chat: chat.clone(),
                triggers,
                store: store.clone(),
                stopping: shutdown.clone(),
                grpc,
                grpc_web,
                gateway,
                metrics,
                auth,
                guard,
                ui,
                admission,
            }),
            store,
            chat,
            turns_shutdown,
            health,
            shutdown,
            scheduler,
            webhooks,
            outbox,
            webhooks_shutdown,
            server_id,
            mcp_connections,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, ends open streams, waits
    /// up to the grace period for requests in flight, and flushes the store.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Server {
            config,
            listener,
            local_addr,
            tls,
            app,
            store,
            chat,
            turns_shutdown,
            health,
            shutdown: streams_shutdown,
            scheduler,
            webhooks,
            outbox,
            webhooks_shutdown,
            server_id,
            mcp_connections,
        } = self;
        // Delivers what the outbox holds, this server's rows and any other's.
        let outbox_worker = OutboxWorker::start(
            store.clone(),
            webhooks,
            server_id,
            outbox.wake.clone(),
            Some(app.metrics.clone()),
        );
        scheduler.start().await.context("starting the scheduler")?;
        // Before serving: listening for other servers' changes is part of being ready.
        chat.start_cluster().await;
        // Purges what the trash (and session_retention_days) let go, now and periodically.
        chat.start_retention(RetentionPolicy {
            interval: Duration::from_secs(config.retention_interval_seconds),
            inactive: config.session_retention(),
        });
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        health
            .set_serving::<SessionServiceServer<SessionApi>>()
            .await;

        let cors = app.guard.cors();
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
        tracing::info!(
            address = %local_addr,
            version = env!("CARGO_PKG_VERSION"),
            auth = if app.auth.required() { "token" } else { "none (loopback)" },
            tls = tls.is_some(),
            data_dir = %config.data_dir.display(),
            "octo listening"
        );
        crate::http::ui::log_url(local_addr, tls.is_some(), app.ui);
        tokio::pin!(shutdown);
        let mut accept_backoff = ACCEPT_BACKOFF_MIN;
        let refused_log = crate::logging::Throttle::new(Duration::from_secs(10));
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => {
                            accept_backoff = ACCEPT_BACKOFF_MIN;
                            accepted
                        }
                        Err(err) => {
                            // Out of file descriptors and the like: back off (5 ms
                            // doubling to 1 s), keep serving what is open.
                            tracing::warn!(error = %err, backoff_ms = accept_backoff.as_millis() as u64, "accept failed");
                            tokio::time::sleep(accept_backoff).await;
                            accept_backoff = (accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let Some(connection_permit) = app.admission.connection() else {
                        if let Some(suppressed) = refused_log.allow() {
                            tracing::warn!(%peer, max_connections = config.max_connections, refused_since_last_log = suppressed, "connection refused: max_connections reached");
                        }
                        refuse_connection(app.clone(), builder.clone(), stream, peer);
                        continue;
                    };
                    let connect_info = TcpConnectInfo {
                        local_addr: Some(local_addr),
                        remote_addr: Some(peer),
                    };
                    let routed = {
                        let app = app.clone();
                        cors.clone().layer(tower::service_fn(move |request: Request<Body>| {
                            let app = app.clone();
                            async move { Ok::<_, Infallible>(handle(app, request).await) }
                        }))
                    };
                    let app = app.clone();
                    // The guard runs before CORS, so a refused origin's preflight is
                    // refused too rather than answered without CORS headers.
                    let service = tower::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(connect_info.clone());
                        let refused = app.guard.check(&request).err().map(|err| refusal(&app, &request, peer, err));
                        let routed = routed.clone();
                        async move {
                            match refused {
                                Some(response) => Ok::<_, Infallible>(response),
                                None => routed.oneshot(request.map(Body::new)).await,
                            }
                        }
                    });
                    let builder = builder.clone();
                    let watcher = graceful.watcher();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _connection_permit = connection_permit;
                        let service = TowerToHyperService::new(service);
                        let served = match tls {
                            None => {
                                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                                watcher.watch(connection.into_owned()).await
                            }
                            Some(tls) => {
                                let stream = match crate::tls::handshake(&tls, stream).await {
                                    Ok(stream) => stream,
                                    Err(err) => {
                                        tracing::debug!(error = %err, %peer, "TLS handshake failed");
                                        return;
                                    }
                                };
                                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                                watcher.watch(connection.into_owned()).await
                            }
                        };
                        if let Err(err) = served {
                            tracing::debug!(error = %err, %peer, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }

        tracing::info!("shutting down: no new connections; ending open streams");
        drop(listener);
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        streams_shutdown.cancel();
        let grace = Duration::from_secs(config.shutdown_grace_seconds);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_seconds = config.shutdown_grace_seconds,
                "requests still open after the grace period; closing them"
            );
        }
        // No new fires; runs record how they ended.
        scheduler.shutdown(grace).await;
        // Running turns end INTERRUPTED (partial text kept); queued turns resume next start.
        turns_shutdown.cancel();
        if tokio::time::timeout(grace, chat.shutdown()).await.is_err() {
            tracing::warn!("turns still stopping after the grace period");
        }
        // MCP servers' processes are asked to exit (SIGTERM, then SIGKILL, 3 s apart).
        if tokio::time::timeout(grace, mcp_connections.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("MCP servers still stopping after the grace period");
        }
        // Attempts in flight are cut short and recorded as due again.
        outbox_worker.stop(grace).await;
        webhooks_shutdown.cancel();
        store.flush().await.context("flushing the store")?;
        tracing::info!("stopped");
        Ok(())
    }
}

fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The first and the longest wait after a failed accept.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves a connection beyond `max_connections` only to tell each request so
/// (RESOURCE_EXHAUSTED), for a few seconds, over plain TCP (a TLS client sees the
/// connection close).
fn refuse_connection(
    app: Arc<App>,
    builder: auto::Builder<TokioExecutor>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    tokio::spawn(async move {
        let service = tower::service_fn(move |request: Request<hyper::body::Incoming>| {
            let response = refusal(&app, &request, peer, app.admission.too_many_connections());
            async move { Ok::<_, Infallible>(response) }
        });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let _ =
            tokio::time::timeout(crate::admission::REFUSED_CONNECTION_LIFETIME, connection).await;
    });
}

/// Warns when `max_connections` cannot be reached: the open-file limit comes first and
/// accept fails with EMFILE instead of a clear answer.
fn warn_if_over_file_limit(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we pass and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        // The database pool, listener, logs and tool pipes need descriptors too.
        let needed = max_connections as u64 + 256;
        if limit.rlim_cur < needed {
            tracing::warn!(
                open_file_limit = limit.rlim_cur,
                max_connections,
                "the open-file limit is below max_connections + 256: raise it (ulimit -n, LimitNOFILE=) or lower max_connections"
            );
        }
    }
}

/// Routes one request by what it is: gRPC, gRPC-Web, metrics, probes, the OpenAPI
/// document, trigger calls (`/hooks/`: signed, no token), the web UI, or JSON/HTTP.
async fn handle(app: Arc<App>, mut request: Request<Body>) -> Response<Body> {
    // Keep a client's request id if it is sane, so logs correlate across systems.
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let span = tracing::info_span!("request", id = %request_id, method = %request.method(), path = %request.uri().path());
    async move {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut response = if content_type.starts_with("application/grpc-web") {
            oneshot(app.grpc_web.clone(), request).await
        } else if content_type.starts_with("application/grpc") {
            oneshot(app.grpc.clone(), request).await
        } else if request.uri().path() == "/metrics" && request.method() == http::Method::GET {
            metrics_response(&app, &request)
        } else if request.uri().path() == "/healthz" && request.method() == http::Method::GET {
            probe_response(http::StatusCode::OK, "ok")
        } else if request.uri().path() == "/readyz" && request.method() == http::Method::GET {
            readiness(&app).await
        } else if request.uri().path() == "/openapi.json" && request.method() == http::Method::GET {
            app.gateway.openapi_response()
        } else if request.uri().path().starts_with(crate::http::hooks::PREFIX) {
            crate::http::hooks::serve(&app.triggers, &app.gateway, request).await
        } else if let Some(page) = app
            .ui
            .then(|| crate::http::ui::response(&request))
            .flatten()
        {
            page
        } else {
            app.gateway.handle(request).await
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        tracing::debug!(status = response.status().as_u16(), "responded");
        response
    }
    .instrument(span)
    .await
}

/// The answer to a request the guard refused: PERMISSION_DENIED for gRPC clients,
/// `google.rpc.Status` JSON with HTTP 403 for everything a browser sends.
fn refusal<B>(
    app: &App,
    request: &Request<B>,
    peer: SocketAddr,
    err: crate::domain::Error,
) -> Response<Body> {
    tracing::warn!(
        %peer,
        method = %request.method(),
        path = request.uri().path(),
        origin = ?request.headers().get(header::ORIGIN),
        host = ?request.headers().get(header::HOST),
        reason = %err.reason(),
        "request refused"
    );
    let status = crate::api::error::to_status(err);
    let mut response = if is_native_grpc(request.headers()) {
        status.into_http()
    } else {
        app.gateway.status_response(&status)
    };
    if let Ok(value) = HeaderValue::from_str(&new_request_id()) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// `application/grpc[+proto]`, not gRPC-Web.
fn is_native_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/grpc") && !v.starts_with("application/grpc-web")
        })
}

async fn oneshot(service: GrpcService, request: Request<Body>) -> Response<Body> {
    match service.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// How long the readiness probe waits for the database: probes time out after 1 s by
/// default (Kubernetes), and a healthy local query takes well under a millisecond.
const READINESS_TIMEOUT: Duration = Duration::from_millis(800);

/// `GET /readyz`: 200 when the database answers and the server is not shutting down,
/// else 503 with the reason. No auth (a load balancer probes it), nothing sensitive.
async fn readiness(app: &App) -> Response<Body> {
    if app.stopping.is_cancelled() {
        return probe_response(http::StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match tokio::time::timeout(READINESS_TIMEOUT, app.store.check()).await {
        Ok(Ok(())) => probe_response(http::StatusCode::OK, "ready"),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: the database does not answer");
            probe_response(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
        }
        Err(_) => probe_response(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer in time",
        ),
    }
}

fn probe_response(status: http::StatusCode, text: &str) -> Response<Body> {
    let mut response = Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from(
        format!("{text}\n"),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn metrics_response(app: &App, request: &Request<Body>) -> Response<Body> {
    if let Err((error, _)) = app
        .auth
        .check(request.headers(), crate::auth::peer_ip(request))
    {
        let mut response = Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from(
            format!("{error}\n"),
        ))));
        *response.status_mut() = http::StatusCode::UNAUTHORIZED;
        return response;
    }
    app.metrics
        .active_sessions
        .set(app.chat.busy_count() as i64);
    app.metrics.live_sessions.set(app.chat.live_count() as i64);
    // OpenMetrics when the scraper asks for it (Prometheus does), else the classic
    // text format, which is the same lines without the `# EOF` trailer.
    let openmetrics = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let mut text = app.metrics.render();
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        if let Some(body) = text.strip_suffix("# EOF\n") {
            text.truncate(body.len());
        }
        "text/plain; version=0.0.4; charset=utf-8"
    };
    let mut response = Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from(
        text,
    ))));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Binds and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    // The handlers are in place before the server logs that it listens: a signal sent
    // on seeing that line never meets the default action (which ends the process).
    let signals = shutdown_signal();
    server.run(signals).await
}

/// Installs the signal handlers now; the future completes on SIGINT or SIGTERM.
fn shutdown_signal() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let (interrupt, terminate, hangup) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        )
    };
    async move {
        #[cfg(unix)]
        let ctrl_c = async {
            match interrupt {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGINT");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let ctrl_c = async {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %err, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        // SIGHUP (a closed terminal, `kill -HUP` by habit) would end the process with no
        // word by default. Nothing is reloaded live: the configuration is read at start.
        #[cfg(unix)]
        let hangup = async {
            match hangup {
                Ok(mut signal) => loop {
                    signal.recv().await;
                    tracing::warn!(
                        "SIGHUP received and ignored: the configuration is read at start; \
                         restart the server to apply changes"
                    );
                },
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGHUP");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => tracing::info!("SIGINT received"),
            () = terminate => tracing::info!("SIGTERM received"),
            () = hangup => {}
        }
    }
}
