//! Client side: streaming transactions to the scoring API or a Kafka topic, paced — what
//! `produce` and `demo` do.
//!
//! A source gives [`Outgoing`] requests (generated, or read from a CSV); [`send_all`] sends
//! them at a rate or as fast as a concurrency limit allows, and returns a [`Summary`] with the
//! decisions and the client-side latency.

mod http_target;

pub use http_target::{HttpTarget, Reply};

use crate::domain::TransactionIn;
use crate::generator::{CATEGORIES, COUNTRIES, GeneratorConfig, generate, txn_id};
use crate::scoring::Action;
use anyhow::ensure;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Where `produce` sends.
#[derive(Debug)]
pub enum Target {
    /// The scoring API: each answer carries the decision.
    Http(HttpTarget),
    /// A Kafka topic: the answer is the delivery report.
    #[cfg(feature = "kafka")]
    Kafka(crate::kafka::KafkaTarget),
}

/// A request on its way: resolves to the decision (HTTP) or `None` once delivered (Kafka).
type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Reply>, String>> + Send>>;

impl Target {
    /// The share of transactions the model behind the target was calibrated to flag, if it
    /// says (the API's `/ready`; a Kafka topic has no model to ask).
    pub async fn calibrated_flag_rate(&self) -> Option<f64> {
        match self {
            Self::Http(http) => http.flag_rate().await,
            #[cfg(feature = "kafka")]
            Self::Kafka(_) => None,
        }
    }

    /// Starts sending `request`. A Kafka message is enqueued before this returns, so messages
    /// keep the order of these calls (one card's transactions stay in order in its partition);
    /// an HTTP request starts when the returned future is first polled.
    pub async fn start(self: &Arc<Self>, request: &TransactionIn) -> InFlight {
        match &**self {
            Target::Http(_) => {
                let (target, request) = (Arc::clone(self), request.clone());
                Box::pin(async move {
                    match &*target {
                        Target::Http(t) => t.send(&request).await.map(Some),
                        #[cfg(feature = "kafka")]
                        Target::Kafka(_) => unreachable!("an HTTP target"),
                    }
                })
            }
            #[cfg(feature = "kafka")]
            Target::Kafka(t) => match t.enqueue(request).await {
                Ok(delivery) => {
                    Box::pin(async move { crate::kafka::KafkaTarget::delivered(delivery).await.map(|()| None) })
                }
                Err(e) => Box::pin(std::future::ready(Err(e))),
            },
        }
    }
}

/// One request to send, with its label when the source has one.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub request: TransactionIn,
    pub label: Option<bool>,
}

/// `count` generated transactions (the generator's cards, merchants and fraud scenarios over
/// one day): yesterday (UTC) as seen from `now` (Unix seconds), so each card's transactions
/// keep their own spacing and hours of the day, whatever the sending rate. Stamping every one with the time it is sent squeezed a
/// card's day into seconds, so every card looked like a burst (a quarter to a third of a
/// generated stream was flagged at 1,000/s).
/// `cards`: how many distinct cards (default: a quarter of `count`, from 50 up to 10,000).
pub fn generated(count: usize, cards: Option<usize>, seed: u64, now: i64) -> anyhow::Result<Vec<Outgoing>> {
    const DAY: i64 = 86_400;
    let config = GeneratorConfig {
        rows: count,
        cards: cards.unwrap_or((count / 4).clamp(50, 10_000)),
        merchants: 500,
        days: 1,
        start: (now.div_euclid(DAY) - 1) * DAY,
        seed,
        fraud_rate: 0.04,
        label_noise: 0.0,
    };
    let data = generate(&config)?;
    Ok(data
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let merchant = &data.world.merchants[r.merchant as usize];
            Outgoing {
                request: TransactionIn {
                    txn_id: format!("{:016x}", txn_id(seed, i as u64)),
                    timestamp: r.ts.into(),
                    amount: f64::from(r.amount_cents) / 100.0,
                    country: COUNTRIES[usize::from(r.country)].0.to_owned(),
                    merchant: merchant.id.clone(),
                    card_num: Some(data.world.cards[r.card as usize].pan.clone()),
                    card_token: None,
                    card_masked: None,
                    merchant_category: Some(CATEGORIES[usize::from(merchant.category)].0.to_owned()),
                    currency: None,
                    fields: Default::default(),
                },
                label: Some(r.label),
            }
        })
        .collect())
}

/// When to send.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Time between sends; `None` sends as fast as `concurrency` allows.
    pub interval: Option<Duration>,
    pub concurrency: usize,
}

impl Pace {
    /// `rate` sends a second (0 = as fast as `concurrency` allows), or one every `interval`
    /// seconds if given; the flags' names are in the messages because that is where they come from.
    pub fn new(rate: f64, interval: Option<f64>, concurrency: usize) -> anyhow::Result<Self> {
        ensure!(concurrency >= 1, "--concurrency must be at least 1");
        let interval = match interval {
            Some(s) => {
                ensure!(s.is_finite() && s >= 0.0, "--interval must be 0 or more seconds");
                (s > 0.0).then(|| Duration::from_secs_f64(s))
            }
            None => {
                ensure!(rate.is_finite() && rate >= 0.0, "--rate must be 0 (as fast as possible) or more");
                (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate))
            }
        };
        Ok(Self { interval, concurrency })
    }

    pub fn describe(&self) -> String {
        match self.interval {
            Some(i) => format!("{:.1}/s", 1.0 / i.as_secs_f64()),
            None => format!("full speed, {} in flight", self.concurrency),
        }
    }
}

/// What came back.
#[derive(Debug, Default)]
pub struct Summary {
    pub sent: usize,
    /// Decisions by action (allow, review, block).
    pub actions: [usize; 3],
    pub duplicates: usize,
    /// Delivered without a decision (Kafka).
    pub delivered: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// Labelled frauds sent, and how many of them were flagged.
    pub frauds: usize,
    pub frauds_flagged: usize,
    latencies_us: Vec<u64>,
    pub elapsed: Duration,
    /// The share the serving model was calibrated to flag, if the target said (HTTP).
    pub calibrated_flag_rate: Option<f64>,
}

impl Summary {
    pub fn flagged(&self) -> usize {
        self.actions[Action::Review as usize] + self.actions[Action::Block as usize]
    }

    /// Client-side latency at quantile `q` (nearest rank), if anything was answered.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        let n = self.latencies_us.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
        self.latencies_us.get(rank).map(|&us| Duration::from_micros(us))
    }

    fn record(&mut self, item: &Outgoing, result: &Result<Option<Reply>, String>, latency: Duration) {
        self.sent += 1;
        let fraud = item.label == Some(true);
        self.frauds += usize::from(fraud);
        match result {
            Ok(None) => {
                self.delivered += 1;
                self.latencies_us.push(latency.as_micros() as u64);
            }
            Ok(Some(reply)) => {
                self.actions[reply.action as usize] += 1;
                self.duplicates += usize::from(reply.duplicate);
                self.frauds_flagged += usize::from(fraud && reply.action != Action::Allow);
                self.latencies_us.push(latency.as_micros() as u64);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }

    /// How far the share flagged is from what the model was calibrated to flag: far above it,
    /// the traffic does not look like the model's training data (or is an attack); the
    /// dashboard's review queue fills at that rate.
    fn flag_rate_line(&self) -> Option<String> {
        let calibrated = self.calibrated_flag_rate?;
        let decided: usize = self.actions.iter().sum();
        if decided == 0 {
            return None;
        }
        let flagged = self.flagged() as f64 / decided as f64;
        let points = (flagged - calibrated) * 100.0;
        let how = if points.abs() < 0.05 {
            "on it".to_owned()
        } else {
            format!("{:.1} points {}", points.abs(), if points > 0.0 { "above" } else { "below" })
        };
        Some(format!(
            "flagged {:.1}%; the model was calibrated to flag {:.1}% of its training transactions: {how}",
            flagged * 100.0,
            calibrated * 100.0
        ))
    }

    /// The closing lines: decisions, errors, throughput and latency.
    pub fn report(&self) -> String {
        let ms = |d: Option<Duration>| d.map_or_else(|| "-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3));
        let [allow, review, block] = self.actions;
        let mut text = if self.delivered > 0 {
            format!("{} transactions sent, {} delivered, {} errors", self.sent, self.delivered, self.errors)
        } else {
            String::new()
        };
        if self.delivered == 0 {
            text = format!(
                "{} transactions processed, {} flagged ({review} review, {block} block, {allow} allowed), {} errors",
                self.sent,
                self.flagged(),
                self.errors
            );
        }
        if self.duplicates > 0 {
            text += &format!("; {} were already stored (their stored decisions were returned)", self.duplicates);
        }
        if let Some(line) = self.flag_rate_line() {
            text += &format!("\n{line}");
        }
        if self.frauds > 0 && self.delivered == 0 {
            text += &format!("\n{} of {} labelled frauds flagged", self.frauds_flagged, self.frauds);
        }
        let rate = self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9);
        text += &format!(
            "\nin {:.1} s ({rate:.0}/s); latency p50 {}, p99 {}",
            self.elapsed.as_secs_f64(),
            ms(self.latency(0.5)),
            ms(self.latency(0.99))
        );
        if let Some(e) = &self.first_error {
            text += &format!("\nfirst error: {e}");
        }
        text
    }
}

/// Sends every item to `target` at `pace`, calling `on_reply` as answers arrive.
pub async fn send_all(
    items: Vec<Outgoing>,
    target: Arc<Target>,
    pace: Pace,
    mut on_reply: impl FnMut(&Outgoing, &Result<Option<Reply>, String>),
) -> Summary {
    let mut summary = Summary::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(pace.concurrency));
    let mut in_flight = JoinSet::new();
    let started = tokio::time::Instant::now();
    let mut done = |summary: &mut Summary,
                    (item, result, latency): (Outgoing, Result<Option<Reply>, String>, Duration)| {
        on_reply(&item, &result);
        summary.record(&item, &result, latency);
    };
    for (k, item) in items.into_iter().enumerate() {
        if let Some(every) = pace.interval {
            tokio::time::sleep_until(started + every * k as u32).await;
        }
        // Waits while `concurrency` requests are in flight.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
        while let Some(Ok(finished)) = in_flight.try_join_next() {
            done(&mut summary, finished);
        }
        let sent = Instant::now();
        let reply = target.start(&item.request).await;
        in_flight.spawn(async move {
            let result = reply.await;
            drop(slot);
            (item, result, sent.elapsed())
        });
    }
    while let Some(joined) = in_flight.join_next().await {
        if let Ok(finished) = joined {
            done(&mut summary, finished);
        }
    }
    summary.latencies_us.sort_unstable();
    summary.elapsed = started.elapsed();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_how_far_the_flag_rate_is_from_the_calibrated_one() {
        let mut s = Summary { sent: 100, actions: [90, 8, 2], ..Summary::default() };
        assert!(!s.report().contains("calibrated"), "no line when the target did not say");
        s.calibrated_flag_rate = Some(0.055);
        assert!(
            s.report().contains(
                "flagged 10.0%; the model was calibrated to flag 5.5% of its training transactions: 4.5 points above"
            ),
            "{}",
            s.report()
        );
        s.actions = [97, 2, 1];
        assert!(s.report().contains(
            "flagged 3.0%; the model was calibrated to flag 5.5% of its training transactions: 2.5 points below"
        ));
    }

    #[test]
    fn generated_load_spreads_over_the_cards_asked_for() {
        let cards = |n| {
            let load = generated(2_000, n, 3, 1_764_000_000).unwrap();
            load.iter().map(|o| o.request.card_num.clone()).collect::<std::collections::HashSet<_>>().len()
        };
        let default = cards(None);
        assert!(default <= 500, "a quarter of the count by default: {default}");
        let more = cards(Some(1_500));
        assert!(more > 500 && more > default, "--cards 1500: {more}");
        // Cardholders' cards; a BIN attack adds the numbers it tries.
        let load = generated(2_000, Some(7), 3, 1_764_000_000).unwrap();
        let holders = load.iter().filter(|o| o.label == Some(false)).map(|o| o.request.card_num.clone());
        assert!(holders.collect::<std::collections::HashSet<_>>().len() <= 7);
    }

    #[test]
    fn generated_requests_are_valid_and_deterministic() {
        let a = generated(300, None, 9, 1_764_000_000).unwrap();
        let b = generated(300, None, 9, 1_764_000_000).unwrap();
        assert_eq!(a.len(), 300);
        assert!(a.iter().zip(&b).all(|(x, y)| x.request == y.request));
        let key = crate::domain::CardKey::new(b"k");
        for o in &a {
            TransactionIn::validate(
                &serde_json::to_value(&o.request).unwrap(),
                &key,
                &Default::default(),
                2_000_000_000,
            )
            .unwrap();
        }
    }

    #[test]
    fn latency_quantiles_use_nearest_rank() {
        let mut s = Summary { latencies_us: (1..=100).map(|v| v * 1000).collect(), ..Summary::default() };
        s.latencies_us.sort_unstable();
        assert_eq!(s.latency(0.5), Some(Duration::from_millis(50)));
        assert_eq!(s.latency(0.99), Some(Duration::from_millis(99)));
        assert_eq!(Summary::default().latency(0.5), None);
    }
}
