//! Test support: a real Octo server on an ephemeral loopback port, in this process,
//! with its own data dir; and helpers to reach it with real clients.
#![allow(dead_code)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use octo::{
    config::Config,
    pb::{self, session_service_client::SessionServiceClient},
    server::Server,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

/// Safety net for anything awaited in a test: generous, never a synchronisation device.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Config,
    /// Holds the data dir for the test's lifetime.
    pub dir: std::sync::Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(dir: &tempfile::TempDir) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("data"),
        workspace_root: Some(dir.path().join("workspace")),
        shutdown_grace_seconds: 5,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
        let mut config = test_config(&dir);
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    /// Starts a server on an existing data dir (restarts).
    pub async fn start_in(dir: std::sync::Arc<tempfile::TempDir>, config: Config) -> TestServer {
        let server = Server::bind(config.clone()).await.expect("server binds");
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            config,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn workspace(&self) -> PathBuf {
        self.config.workspace_root()
    }

    pub async fn channel(&self) -> Channel {
        tokio::time::timeout(
            TIMEOUT,
            Channel::from_shared(self.url()).expect("url").connect(),
        )
        .await
        .expect("connect in time")
        .expect("connects")
    }

    pub async fn sessions(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel().await)
    }

    /// Stops gracefully and waits until the server has flushed and returned.
    pub async fn stop(mut self) -> (std::sync::Arc<tempfile::TempDir>, Config) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("server stops in time")
                .expect("server task")
                .expect("server run ok");
        }
        (self.dir.clone(), self.config.clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request carrying a bearer token.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).expect("metadata"),
    );
    request
}

pub fn session(title: &str) -> pb::Session {
    pb::Session {
        display_name: title.to_owned(),
        ..Default::default()
    }
}

pub async fn create(client: &mut SessionServiceClient<Channel>, title: &str) -> pb::Session {
    client
        .create_session(pb::CreateSessionRequest {
            session: Some(session(title)),
        })
        .await
        .expect("create session")
        .into_inner()
}

/// The field paths of a status's BadRequest violations.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Where a third-party tool was installed: `.ci/setup`'s folder, PATH, or Go's bin dir.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin")];
    dirs.extend(
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("go/bin"));
    }
    if let Some(gopath) = std::env::var_os("GOPATH") {
        dirs.push(PathBuf::from(gopath).join("bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}
