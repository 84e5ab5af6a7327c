//! `aegis serve`: the scoring API until SIGINT/SIGTERM; SIGHUP reloads the model bundle.
//!
//! [`Service`] is also what `demo` runs in-process, so both take the same path.

use crate::alerts::{self, AlertConfig};
use crate::cli::{ServeArgs, ServiceArgs};
use crate::engine::{Engine, EngineConfig, card_key_for};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long shutdown waits for alert deliveries still retrying.
const ALERT_DRAIN: Duration = Duration::from_secs(10);

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let service = Service::start(&args.models, &args.service, Vec::new()).await?;
        println!("Aegis is serving model {} at {}", service.engine.model_version(), service.url);
        println!("Dashboard: {}/  (API: {}/openapi.json)", service.url, service.url);
        shutdown_signal().await;
        println!("Shutting down: finishing requests in flight and flushing the store.");
        service.stop().await
    })
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// A running API: engine, HTTP server, alert delivery and the SIGHUP reloader.
#[derive(Debug)]
pub(crate) struct Service {
    pub url: String,
    pub engine: Arc<Engine>,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    alerts: Option<JoinHandle<()>>,
    reloader: JoinHandle<()>,
}

impl Service {
    /// Opens the engine (card history = `warm_up`, then the stored results) and starts serving.
    pub async fn start(
        models: &Path,
        args: &ServiceArgs,
        warm_up: Vec<crate::ingest::LabelledTransaction>,
    ) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let card_key = card_key_for(&args.db, args.card_key_file.as_deref())?;
        let config = EngineConfig { models: models.to_owned(), db: args.db.clone(), card_key, warm_up };
        // The store is created by the engine; alert delivery opens its own connection after.
        let engine = {
            let metrics = Arc::clone(&metrics);
            tokio::task::spawn_blocking(move || Engine::open(config, metrics)).await??
        };
        let (alert_queue, alerts) = if args.alert_webhooks.is_empty() {
            (None, None)
        } else {
            let config = AlertConfig {
                webhooks: args.alert_webhooks.clone(),
                max_attempts: args.alert_attempts.max(1),
                backoff: Duration::from_millis(args.alert_backoff_ms),
                timeout: Duration::from_secs(5),
            };
            let (queue, task) = alerts::spawn(config, &args.db, Arc::clone(&metrics))?;
            (Some(queue), Some(task))
        };
        let engine = Arc::new(engine.with_alerts(alert_queue));
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {} (is another server running there?)", args.addr))?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(Arc::clone(&engine), args.api_token.as_deref());
        let server = tokio::spawn(http::serve(listener, state, async {
            let _ = stopped.await;
        }));
        let reloader = tokio::spawn(reload_on_sighup(Arc::clone(&engine)));
        Ok(Self { url, engine, stop, server, alerts, reloader })
    }

    /// Stops accepting, lets requests in flight finish, then commits what the store has queued
    /// and waits (briefly) for alert deliveries.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await.context("the HTTP server task failed")?.context("the HTTP server failed")?;
        self.reloader.abort();
        let _ = self.reloader.await;
        match Arc::into_inner(self.engine) {
            Some(engine) => tokio::task::spawn_blocking(move || engine.shutdown()).await?,
            None => tracing::warn!("the engine is still shared at shutdown; queued results flush on drop"),
        }
        if let Some(alerts) = self.alerts
            && tokio::time::timeout(ALERT_DRAIN, alerts).await.is_err()
        {
            tracing::warn!("alert deliveries still retrying at shutdown were abandoned (they stay `pending`)");
        }
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn reload_on_sighup(engine: Arc<Engine>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            let engine = Arc::clone(&engine);
            match tokio::task::spawn_blocking(move || engine.reload()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %format!("{e:#}"), "SIGHUP reload refused; the current bundle keeps serving")
                }
                Err(e) => tracing::error!(error = %e, "reload task failed"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(engine);
}
