//! Prometheus metrics (`GET /metrics`, OpenMetrics text): requests and latency by route and
//! status, decisions by action, store write latency and queue depth, alerts, the model version.
//!
//! Label values are `&'static str` and integers, so counting a request allocates nothing.

use crate::scoring::Action;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabels {
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 25 µs to about 0.8 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(25e-6, 2.0, 16))
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: HistogramFamily<HttpLabels>,
    decisions: Family<ActionLabels, Counter>,
    store_write: Histogram,
    store_queue: Gauge,
    store_batches: Gauge,
    cards: Gauge,
    alerts: Family<AlertLabels, Counter>,
    model: Family<ModelLabels, Gauge>,
    rule_matches: Family<RuleLabels, Counter>,
    rule_errors: Family<RuleLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("aegis");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_latency: HistogramFamily<HttpLabels> = Family::new_with_constructor(latency_histogram);
        let decisions = Family::<ActionLabels, Counter>::default();
        let store_write = latency_histogram();
        let (store_queue, store_batches, cards) = (Gauge::default(), Gauge::default(), Gauge::default());
        let alerts = Family::<AlertLabels, Counter>::default();
        let model = Family::<ModelLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", http_requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency", http_latency.clone());
        registry.register("decisions", "Transactions scored and stored, by action", decisions.clone());
        registry.register("store_write_seconds", "Wait from queueing a result to its commit", store_write.clone());
        registry.register("store_queue_depth", "Results waiting for the store writer", store_queue.clone());
        registry.register("store_commits", "Group commits made by the store writer", store_batches.clone());
        registry.register("cards_tracked", "Cards with streaming history in memory", cards.clone());
        registry.register("alerts", "Webhook alert deliveries by final status", alerts.clone());
        registry.register("model_info", "The model bundle version in use (value 1)", model.clone());
        let (rule_matches, rule_errors) =
            (Family::<RuleLabels, Counter>::default(), Family::<RuleLabels, Gauge>::default());
        registry.register("rule_matches", "Transactions each rule matched", rule_matches.clone());
        registry.register(
            "rule_errors",
            "Run-time errors per rule since its rules file was loaded (an errored rule does not match)",
            rule_errors.clone(),
        );
        Self {
            registry,
            http_requests,
            http_latency,
            decisions,
            store_write,
            store_queue,
            store_batches,
            cards,
            alerts,
            model,
            rule_matches,
            rule_errors,
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
        let labels = HttpLabels { route, method, status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    pub fn count_decision(&self, action: Action) {
        self.decisions.get_or_create(&ActionLabels { action: action.as_str() }).inc();
    }

    pub fn observe_store_write(&self, elapsed: Duration) {
        self.store_write.observe(elapsed.as_secs_f64());
    }

    /// `status` is `delivered`, `failed` or `dropped` (queue full).
    pub fn count_alert(&self, status: &'static str) {
        self.alerts.get_or_create(&AlertLabels { status }).inc();
    }

    pub fn set_model_version(&self, version: &str) {
        self.model.clear();
        self.model.get_or_create(&ModelLabels { version: version.to_owned() }).set(1);
    }

    /// The text exposition, with the gauges sampled now.
    pub fn count_rule_match(&self, rule: &str) {
        self.rule_matches.get_or_create(&RuleLabels { rule: rule.to_owned() }).inc();
    }

    /// The metrics text, with the gauges sampled by the caller: queue depth, commits, cards
    /// tracked, and each current rule's run-time errors.
    pub fn render(&self, queue_depth: u64, commits: u64, cards: usize, rule_errors: &[(&str, u64)]) -> String {
        self.rule_errors.clear();
        for (rule, errors) in rule_errors {
            self.rule_errors.get_or_create(&RuleLabels { rule: (*rule).to_owned() }).set(*errors as i64);
        }
        self.store_queue.set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        self.store_batches.set(i64::try_from(commits).unwrap_or(i64::MAX));
        self.cards.set(i64::try_from(cards).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_what_was_counted() {
        let m = Metrics::default();
        m.observe_request("/predict", "POST", 200, Duration::from_micros(300));
        m.count_decision(Action::Block);
        m.set_model_version("v1");
        m.set_model_version("v2");
        m.count_rule_match("stolen-card");
        let text = m.render(3, 7, 11, &[("stolen-card", 0), ("night", 2)]);
        assert!(text.contains(r#"aegis_rule_matches_total{rule="stolen-card"} 1"#), "{text}");
        assert!(text.contains(r#"aegis_rule_errors{rule="night"} 2"#), "{text}");
        assert!(text.contains(r#"aegis_http_requests_total{route="/predict",method="POST",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"aegis_decisions_total{action="block"} 1"#), "{text}");
        assert!(text.contains(r#"aegis_model_info{version="v2"} 1"#), "{text}");
        assert!(!text.contains(r#"version="v1""#), "{text}");
        assert!(text.contains("aegis_store_queue_depth 3"), "{text}");
        assert!(text.contains("aegis_cards_tracked 11"), "{text}");
    }
}
