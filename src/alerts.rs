//! Alerts for flagged transactions: a JSON POST to each configured webhook, from a background
//! task with retries and exponential backoff, so scoring never waits for a receiver. Every
//! delivery's status (pending, delivered, failed, with attempts and the last error) is kept in
//! the store's `alerts` table.

use crate::domain::ScoredTransaction;
use crate::metrics::Metrics;
use crate::scoring::Action;
use crate::store::{AlertStatus, Store};
use reqwest::Url;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Alerts waiting for delivery before new ones are dropped (and counted as `dropped`).
const QUEUE: usize = 10_000;

/// The JSON body posted to a webhook. No card number: only the masked one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub txn_id: String,
    pub timestamp: String,
    pub amount: f64,
    pub country: String,
    pub merchant: String,
    pub card_masked: String,
    pub score: f32,
    pub action: Action,
    pub reasons: Vec<String>,
    pub model_version: String,
}

impl Alert {
    pub fn of(r: &ScoredTransaction) -> Self {
        Self {
            txn_id: r.txn_id.clone(),
            timestamp: crate::domain::rfc3339(r.timestamp),
            amount: r.amount,
            country: r.country.clone(),
            merchant: r.merchant.clone(),
            card_masked: r.card_masked.clone(),
            score: r.score,
            action: r.action,
            reasons: r.reasons.clone(),
            model_version: r.model_version.clone(),
        }
    }
}

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub webhooks: Vec<Url>,
    /// Attempts per webhook, the first included.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    pub timeout: Duration,
}

/// Where flagged results are handed over for delivery. Sending never blocks.
#[derive(Debug, Clone)]
pub struct AlertQueue {
    tx: mpsc::Sender<Alert>,
    metrics: Arc<Metrics>,
}

impl AlertQueue {
    pub fn send(&self, alert: Alert) {
        if let Err(e) = self.tx.try_send(alert) {
            tracing::warn!(error = %e, "alert queue full or closed; alert dropped");
            self.metrics.count_alert("dropped");
        }
    }
}

/// Starts the delivery task. It ends, after finishing the deliveries under way, once every
/// [`AlertQueue`] clone is dropped.
pub fn spawn(
    config: AlertConfig,
    db: &crate::store::Location,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(AlertQueue, tokio::task::JoinHandle<()>)> {
    let store = Arc::new(Mutex::new(Store::open(db)?));
    let client = reqwest::Client::builder().timeout(config.timeout).build()?;
    let (tx, mut rx) = mpsc::channel::<Alert>(QUEUE);
    let queue = AlertQueue { tx, metrics: Arc::clone(&metrics) };
    let config = Arc::new(config);
    let task = tokio::spawn(async move {
        let mut deliveries = JoinSet::new();
        while let Some(alert) = rx.recv().await {
            let alert = Arc::new(alert);
            for hook in 0..config.webhooks.len() {
                let job = Delivery {
                    alert: Arc::clone(&alert),
                    hook,
                    config: Arc::clone(&config),
                    client: client.clone(),
                    store: Arc::clone(&store),
                    metrics: Arc::clone(&metrics),
                };
                deliveries.spawn(job.run());
            }
            // Reap finished deliveries so the set does not grow.
            while deliveries.try_join_next().is_some() {}
        }
        while deliveries.join_next().await.is_some() {}
    });
    Ok((queue, task))
}

struct Delivery {
    alert: Arc<Alert>,
    hook: usize,
    config: Arc<AlertConfig>,
    client: reqwest::Client,
    store: Arc<Mutex<Store>>,
    metrics: Arc<Metrics>,
}

impl Delivery {
    async fn run(self) {
        let url = &self.config.webhooks[self.hook];
        self.record(AlertStatus::Pending, 0, None).await;
        let mut wait = self.config.backoff;
        let mut last_error = String::new();
        for attempt in 1..=self.config.max_attempts.max(1) {
            match self.client.post(url.clone()).json(&*self.alert).send().await {
                Ok(r) if r.status().is_success() => {
                    self.record(AlertStatus::Delivered, attempt, None).await;
                    self.metrics.count_alert("delivered");
                    return;
                }
                Ok(r) => last_error = format!("HTTP {}", r.status()),
                Err(e) => last_error = e.to_string(),
            }
            tracing::debug!(txn_id = %self.alert.txn_id, webhook = %url, attempt, error = %last_error, "alert not delivered");
            if attempt < self.config.max_attempts {
                self.record(AlertStatus::Pending, attempt, Some(&last_error)).await;
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
        tracing::warn!(txn_id = %self.alert.txn_id, webhook = %url, error = %last_error, "alert delivery failed");
        self.record(AlertStatus::Failed, self.config.max_attempts, Some(&last_error)).await;
        self.metrics.count_alert("failed");
    }

    /// Writes the delivery state on a blocking thread (SQLite commits fsync).
    async fn record(&self, status: AlertStatus, attempts: u32, error: Option<&str>) {
        let (store, txn_id) = (Arc::clone(&self.store), self.alert.txn_id.clone());
        let (webhook, error) = (self.config.webhooks[self.hook].to_string(), error.map(str::to_owned));
        let now = chrono::Utc::now().timestamp_millis();
        let result = tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            store.record_alert(&txn_id, &webhook, status, attempts, error.as_deref(), now)
        })
        .await;
        if let Ok(Err(e)) | Err(e) = result.map_err(anyhow::Error::from) {
            tracing::error!(error = %format!("{e:#}"), "cannot record alert status");
        }
    }
}
