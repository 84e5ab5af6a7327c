//! The scoring API as a target: `POST {base}/predict` over a pooled keep-alive client.

use crate::domain::TransactionIn;
use anyhow::Context;
use reqwest::Url;
use std::time::Duration;

/// A `/predict` answer, as the server sends it.
pub use crate::domain::PredictResponse as Reply;

#[derive(Debug)]
pub struct HttpTarget {
    client: reqwest::Client,
    predict: Url,
    ready: Url,
    token: Option<String>,
}

impl HttpTarget {
    pub fn new(base: &Url, token: Option<String>) -> anyhow::Result<Self> {
        anyhow::ensure!(base.scheme() == "http", "--target must be an http:// URL (got {base})");
        let predict = base.join("predict").with_context(|| format!("bad target URL {base}"))?;
        let ready = base.join("ready").with_context(|| format!("bad target URL {base}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(1024)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { client, predict, ready, token: token.filter(|t| !t.is_empty()) })
    }

    /// The share of transactions the serving model was calibrated to flag (`/ready`), if the
    /// server says.
    pub async fn flag_rate(&self) -> Option<f64> {
        let response = self.client.get(self.ready.clone()).send().await.ok()?;
        let ready: serde_json::Value = response.json().await.ok()?;
        ready["flag_rate"].as_f64()
    }

    /// Sends one transaction; an error is one line (the API's error message when it gave one).
    pub async fn send(&self, request: &TransactionIn) -> Result<Reply, String> {
        let mut post = self.client.post(self.predict.clone()).json(request);
        if let Some(token) = &self.token {
            post = post.bearer_auth(token);
        }
        let response = post.send().await.map_err(|e| format!("{}: {e}", self.predict))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("{}: {e}", self.predict))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| format!("unexpected answer from {}: {e}", self.predict));
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        Err(format!("HTTP {status}: {message}"))
    }
}
