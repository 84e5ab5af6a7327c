//! The serving runtime every source of live transactions plugs into (server side).
//!
//! [`Runtime::start`] opens, from one validated [`RuntimeConfig`], what `serve`, `consume` and
//! `demo` all need — the metrics registry, the card key, the [`Engine`] (model bundle, card
//! history, results store) and the alert delivery task — and [`Runtime::stop`] stops them in
//! order: the engine commits what its writer has queued, then alerts get a bounded time to drain.
//! Sources (the HTTP router, the Kafka consumer) only hold the engine. The signal helpers every
//! long-running command uses live here too.

use crate::alerts::{self, AlertConfig};
use crate::domain::CardKey;
use crate::engine::{Engine, EngineConfig};
use crate::ingest::LabelledTransaction;
use crate::metrics::Metrics;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often labels and list changes made by other processes sharing the store are picked up
/// (the bound on how stale this process's label-aware features and lists can be).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// How long stopping waits for alert deliveries still retrying.
const ALERT_DRAIN: Duration = Duration::from_secs(10);

/// Everything the runtime is started from.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Model bundle directory (or a models directory holding `current`).
    pub models: PathBuf,
    /// A challenger bundle scored beside the model (stored, never answered).
    pub shadow: Option<PathBuf>,
    /// The rules file.
    pub rules: Option<PathBuf>,
    /// Results database.
    pub db: crate::store::Location,
    /// How long the store may fail before results (and `consume`) fail with it.
    pub db_timeout: std::time::Duration,
    /// The card key file; `None` = beside the database (`AEGIS_CARD_KEY` overrides either).
    pub card_key_file: Option<PathBuf>,
    /// Alert delivery; `None` sends no alerts.
    pub alerts: Option<AlertConfig>,
    /// Past transactions (with labels) to build history from before the stored results.
    pub warm_up: Vec<LabelledTransaction>,
}

/// A started runtime: the shared engine and the background tasks it owns.
#[derive(Debug)]
pub struct Runtime {
    pub engine: Arc<Engine>,
    alerts: Option<JoinHandle<()>>,
    sync: JoinHandle<()>,
}

impl Runtime {
    pub async fn start(config: RuntimeConfig) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::default());
        let card_key = CardKey::for_database(config.db.file(), config.card_key_file.as_deref())?;
        let engine_config = EngineConfig {
            models: config.models,
            shadow: config.shadow,
            rules: config.rules,
            db: config.db.clone(),
            db_timeout: config.db_timeout,
            card_key,
            warm_up: config.warm_up,
        };
        // The store is created by the engine; alert delivery opens its own connection after.
        let engine = {
            let metrics = Arc::clone(&metrics);
            tokio::task::spawn_blocking(move || Engine::open(engine_config, metrics)).await??
        };
        let (queue, alerts) = match config.alerts.filter(|a| !a.webhooks.is_empty()) {
            Some(alert_config) => {
                let (queue, task) = alerts::spawn(alert_config, &config.db, metrics)?;
                (Some(queue), Some(task))
            }
            None => (None, None),
        };
        let engine = Arc::new(engine.with_alerts(queue));
        let sync = tokio::spawn(sync_shared(Arc::downgrade(&engine)));
        Ok(Self { engine, alerts, sync })
    }

    /// Commits what the store has queued, then waits (briefly) for alert deliveries. Sources
    /// must have stopped and dropped their handles to the engine first.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.sync.abort();
        let _ = self.sync.await;
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

/// Every [`SYNC_INTERVAL`], applies what other processes sharing the store did (verdict
/// changes, list changes) to this engine; ends when the engine is dropped.
async fn sync_shared(engine: std::sync::Weak<Engine>) {
    let mut tick = tokio::time::interval(SYNC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(engine) = engine.upgrade() else { return };
        match tokio::task::spawn_blocking(move || engine.sync_shared()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "cannot read shared labels and lists; retrying"),
            Err(e) => tracing::error!(error = %e, "label sync task failed"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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

/// Reloads the engine's model bundle on every SIGHUP until aborted; a bundle that does not load
/// is refused and logged.
pub async fn reload_on_sighup(engine: Arc<Engine>) {
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
