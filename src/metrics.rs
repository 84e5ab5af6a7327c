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

fn minute_now() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
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
    /// Stream messages carrying a key that is neither a core nor a declared field (scored all
    /// the same; the key is logged once per process).
    unknown_fields: Counter,
    answers: std::sync::Mutex<AnswerWindow>,
}

/// The latency of `/predict`'s 200 answers (commit included) over the current and the previous
/// minute, in the /metrics histogram's buckets: the dashboard's answer-latency tile. (The
/// Prometheus histogram cannot be read back, and counts since start.)
#[derive(Debug, Default)]
struct AnswerWindow {
    minute: i64,
    current: [u64; ANSWER_BUCKETS + 1],
    previous: [u64; ANSWER_BUCKETS + 1],
}

/// Bucket upper bounds 25 µs × 2^k, k < this; one more bucket beyond.
const ANSWER_BUCKETS: usize = 16;

impl AnswerWindow {
    fn observe(&mut self, minute: i64, elapsed: Duration) {
        if minute != self.minute {
            self.previous = if minute == self.minute + 1 { self.current } else { [0; ANSWER_BUCKETS + 1] };
            self.current = [0; ANSWER_BUCKETS + 1];
            self.minute = minute;
        }
        let us = elapsed.as_micros();
        let bucket = (0..ANSWER_BUCKETS).find(|&k| us <= 25 << k).unwrap_or(ANSWER_BUCKETS);
        self.current[bucket] += 1;
    }

    /// The upper bound (µs) of the bucket holding the 99th percentile over this minute and the
    /// previous one (`None` without answers, or beyond the last bound).
    fn p99_us(&self, minute: i64) -> Option<u64> {
        let counts: Vec<u64> = match minute - self.minute {
            0 => self.current.iter().zip(&self.previous).map(|(a, b)| a + b).collect(),
            1 => self.current.to_vec(),
            _ => return None,
        };
        let n: u64 = counts.iter().sum();
        let rank = (n * 99).div_ceil(100);
        let mut seen = 0;
        let k = counts.iter().position(|&c| {
            seen += c;
            n > 0 && seen >= rank
        })?;
        (k < ANSWER_BUCKETS).then(|| 25u64 << k)
    }
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
        let unknown_fields = Counter::default();
        registry.register(
            "unknown_fields",
            "Stream messages scored despite a key that is neither a transaction field nor a declared one",
            unknown_fields.clone(),
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
            unknown_fields,
            answers: std::sync::Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
        let labels = HttpLabels { route, method, status };
        self.http_requests.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if route == "/predict" && status == 200 {
            self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).observe(minute_now(), elapsed);
        }
    }

    /// The 99th percentile of `/predict`'s answers over the last one to two minutes, server-side
    /// and commit included, as the upper bound of its histogram bucket (µs).
    pub fn predict_p99_us(&self) -> Option<u64> {
        self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).p99_us(minute_now())
    }

    pub fn count_unknown_field(&self) {
        self.unknown_fields.inc();
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
    fn the_answer_p99_covers_this_minute_and_the_last_only() {
        let mut w = AnswerWindow::default();
        for _ in 0..98 {
            w.observe(100, Duration::from_micros(90));
        }
        w.observe(100, Duration::from_millis(5));
        w.observe(100, Duration::from_millis(5));
        // 98 answers within 100 µs, 2 within 6.4 ms: the 99th of 100 is in the 6.4 ms bucket.
        assert_eq!(w.p99_us(100), Some(6_400));
        assert_eq!(w.p99_us(101), Some(6_400), "the previous minute still counts");
        assert_eq!(w.p99_us(102), None, "older than that does not");
        w.observe(101, Duration::from_micros(20));
        assert_eq!(w.p99_us(101), Some(6_400));
        w.observe(103, Duration::from_micros(20));
        assert_eq!(w.p99_us(103), Some(25), "a gap of a minute drops the old counts");
        assert_eq!(AnswerWindow::default().p99_us(0), None);
    }

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
