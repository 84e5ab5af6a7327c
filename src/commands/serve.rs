//! `aegis serve`: the scoring API until SIGINT/SIGTERM; SIGHUP reloads the model bundle.
//!
//! [`Service`] is also what `demo` runs in-process, so both take the same path.

use crate::cli::{ServeArgs, ServiceArgs};
use crate::engine::Engine;
use crate::http::{self, AppState};
pub(crate) use crate::runtime::shutdown_signal;
use crate::runtime::{Runtime, reload_on_sighup};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let service = Service::start(&args.models, &args.service, Vec::new()).await?;
        println!("Aegis is serving model {} at {}", service.engine().model_version(), service.url);
        println!("Dashboard: {}/  (API: {}/openapi.json)", service.url, service.url);
        shutdown_signal().await;
        println!("Shutting down: finishing requests in flight and flushing the store.");
        service.stop().await
    })
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// A running API: the [`Runtime`] with the HTTP server and the SIGHUP reloader plugged in.
#[derive(Debug)]
pub(crate) struct Service {
    pub url: String,
    runtime: Runtime,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    reloader: JoinHandle<()>,
}

impl Service {
    /// Starts the runtime (card history = `warm_up`, then the stored results) and serves.
    pub async fn start(
        models: &Path,
        args: &ServiceArgs,
        warm_up: Vec<crate::ingest::LabelledTransaction>,
    ) -> anyhow::Result<Self> {
        let runtime =
            Runtime::start(super::runtime_config(models, &args.store, &args.alerts, &args.decision, warm_up)).await?;
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {} (is another server running there?)", args.addr))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(Arc::clone(&runtime.engine), args.api_token.as_deref());
        let server = tokio::spawn(http::serve(listener, state, async {
            let _ = stopped.await;
        }));
        let reloader = tokio::spawn(reload_on_sighup(Arc::clone(&runtime.engine)));
        Ok(Self { url, runtime, stop, server, reloader })
    }

    pub fn engine(&self) -> &Engine {
        &self.runtime.engine
    }

    /// Stops accepting, lets requests in flight finish, then stops the runtime (store flush,
    /// alert drain).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
        self.reloader.abort();
        let _ = self.reloader.await;
        self.runtime.stop().await
    }
}
