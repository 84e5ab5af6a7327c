//! The scoring engine behind every live source (`/predict`, the demo, Kafka): one transaction
//! goes claim → look up → features and models → decision → store → alert.
//!
//! - **Idempotent**: a `txn_id` already stored gets its stored decision back and does not touch
//!   card state again. A `txn_id` being processed right now is *claimed* (an in-memory set),
//!   so a concurrent duplicate is refused with [`EngineError::InProgress`] instead of being
//!   scored twice. The claim is released in the writer's acknowledgement, after the commit, so
//!   a later duplicate always finds the stored row.
//! - **Persist before acknowledge**: [`Pending::wait`] resolves only after the store commit.
//! - **No lock across `.await`**: the scorer's mutex is held for one scoring call (microseconds);
//!   everything before the wait for the commit is synchronous.

mod known;
mod models;
mod partitions;
pub mod promotion;
mod shared;

use crate::alerts::{Alert, AlertQueue};
use crate::domain::{CardKey, ScoredTransaction, ShadowScore, ValidTransaction};
use crate::metrics::Metrics;
use crate::rules::{self, Lists, RuleInput, RuleSet};
use crate::scoring::{Action, Bundle, Decision, Scorer, decide, decide_batch, with_scratch};
use crate::store::{History, Outcome, ReadPool, Results};
use anyhow::Context;
use known::KnownIds;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Instant;
use tokio::sync::oneshot;

/// Card history is rebuilt from this much stored history on start (the longest feature window).
const REPLAY_SECS: i64 = 30 * 86_400;

/// When a transaction reached Aegis: wall-clock time for the store, a monotonic instant for
/// its latency.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub unix_ms: i64,
    pub instant: Instant,
    /// The Kafka offset of the message in its card's partition (`None` over HTTP): a message
    /// the card's state already holds (restored from a checkpoint) does not move it again, and a
    /// stored repeat the state does not hold yet (a redelivery after a restore) moves it once.
    pub offset: Option<i64>,
}

impl Arrival {
    pub fn now() -> Self {
        Self { unix_ms: chrono::Utc::now().timestamp_millis(), instant: Instant::now(), offset: None }
    }

    /// Now, for the Kafka message at `offset`.
    pub fn at_offset(offset: i64) -> Self {
        Self { offset: Some(offset), ..Self::now() }
    }
}

/// The decision for one transaction, as returned to clients: the scored transaction, and
/// whether it is the decision stored for an earlier request with the same `txn_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub txn: ScoredTransaction,
    pub duplicate: bool,
}

impl Scored {
    fn from_stored(txn: ScoredTransaction) -> Self {
        Self { txn, duplicate: true }
    }
}

/// Most transactions scored under one hold of the scorer lock (~1 µs of features each): a
/// 10,000-item `/predict/batch` would otherwise hold it ~10 ms while single requests wait.
pub const SUBMIT_CHUNK: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("transaction {0} is being processed by another request; retry")]
    InProgress(String),
    /// The store failed or stopped; nothing was acknowledged.
    #[error("the result could not be stored: {0}")]
    Store(String),
    /// The store could not be asked whether the transaction is a repeat: nothing was scored
    /// and no state moved, so the same transaction may simply be submitted again.
    #[error("the results store cannot be read: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl EngineError {
    /// The engine answered fewer outcomes than it was given transactions (a bug, not the
    /// caller's mistake).
    pub fn no_outcome() -> Self {
        Self::Internal(anyhow::anyhow!("no outcome for a submitted transaction"))
    }
}

/// Where the engine loads from and writes to.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub models: PathBuf,
    /// A challenger bundle that scores every transaction beside the champion; its opinion is
    /// stored, never answered.
    pub shadow: Option<PathBuf>,
    /// The rules file.
    pub rules: Option<PathBuf>,
    pub db: crate::store::Location,
    /// How long the store may fail (a database restart) before results fail with it.
    pub db_timeout: std::time::Duration,
    pub card_key: CardKey,
    /// Past transactions (with their labels, each applied when it became known) to build card
    /// and merchant history from before the stored results (oldest first).
    pub warm_up: Vec<crate::ingest::LabelledTransaction>,
}

/// Where the bundles and rules load from (again on reload).
#[derive(Debug, Clone)]
struct Sources {
    models: PathBuf,
    shadow: Option<PathBuf>,
    rules: Option<PathBuf>,
}

/// The rules and the lists they read, swapped as a whole.
#[derive(Debug, Clone, Default)]
struct Policy {
    rules: Arc<RuleSet>,
    lists: Arc<Lists>,
    /// The declared fields requests are validated against: the champion's, then the shadow's
    /// the champion lacks.
    fields: crate::domain::fields::Schema,
}

#[derive(Debug)]
pub struct Engine {
    scorer: Mutex<Scorer>,
    /// Locked after `scorer` whenever both are held.
    shadow: Mutex<Option<Scorer>>,
    sources: Mutex<Sources>,
    policy: RwLock<Policy>,
    /// Names this process in the store's verdict changes, so it skips its own when syncing.
    origin: String,
    /// The newest verdict change this process has applied or skipped.
    verdicts_seen: AtomicI64,
    /// When the shared daily counts were last read (Unix ms).
    counts_refreshed: AtomicI64,
    claims: Arc<Mutex<HashSet<String>>>,
    /// The ids this process has claimed, so that a new one skips the store look-up (locked
    /// after `claims`, only while claiming).
    known: Mutex<KnownIds>,
    /// Idempotency look-ups made in the store, by id.
    store_lookups: AtomicU64,
    results: Results,
    db_timeout: std::time::Duration,
    key: CardKey,
    alerts: Option<AlertQueue>,
    metrics: Arc<Metrics>,
}

/// A transaction scored and handed to the store; [`Pending::wait`] for the commit.
#[derive(Debug)]
pub enum Pending {
    Ready(Scored),
    Committing { scored: Scored, commit: oneshot::Receiver<Result<Outcome, String>>, started: Instant },
}

/// How often the daily counts shared through the store are read: the staleness bound of
/// another worker's transactions in this one's merchant, country and category state.
pub const SHARED_COUNTS_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl Engine {
    /// Loads the bundle, opens (and migrates) the store, and builds card history from the
    /// warm-up transactions and then the last 30 days of stored results newer than them.
    pub fn open(config: EngineConfig, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let bundle = Bundle::load(&config.models)?;
        let mut scorer = Scorer::new(bundle)?;
        let mut shadow = match &config.shadow {
            Some(path) => {
                let bundle = Bundle::load(path).context("cannot load the shadow bundle")?;
                Some(Scorer::new(bundle).context("cannot use the shadow bundle")?)
            }
            None => None,
        };
        // Requests carry the champion's declared fields and the shadow's (a challenger may
        // declare fields the champion does not read).
        let fields = models::request_fields(&mut scorer, shadow.as_mut())?;
        for s in std::iter::once(&mut scorer).chain(shadow.as_mut()) {
            s.warm_up(&config.warm_up);
        }
        let since = config.warm_up.last().map_or(i64::MIN, |r| r.txn.timestamp + 1);
        let (results, n) = Results::open(&config.db, config.db_timeout, since, REPLAY_SECS, fields.clone(), |event| {
            for s in std::iter::once(&mut scorer).chain(shadow.as_mut()) {
                match &event {
                    History::Transaction(txn) => s.observe(txn),
                    History::Verdict(change) => shared::apply_change(s, change),
                }
            }
        })?;
        if n > 0 {
            tracing::info!(transactions = n, cards = scorer.n_cards(), "card history rebuilt from the store");
        }
        let verdicts_seen = results.last_verdict_seq()?;
        let (version, lists) = results.readers().all_lists()?;
        let lists = Lists::new(version, lists);
        let rules = match &config.rules {
            Some(path) => RuleSet::load(path, &lists, scorer.fields())?,
            None => RuleSet::default(),
        };
        if !rules.is_empty() {
            tracing::info!(rules = rules.len(), "rules loaded");
        }
        metrics.set_model_version(scorer.model_version());
        Ok(Self {
            scorer: Mutex::new(scorer),
            shadow: Mutex::new(shadow),
            sources: Mutex::new(Sources { models: config.models, shadow: config.shadow, rules: config.rules }),
            policy: RwLock::new(Policy { rules: Arc::new(rules), lists: Arc::new(lists), fields }),
            origin: format!("{:016x}", rand::random::<u64>()),
            verdicts_seen: AtomicI64::new(verdicts_seen),
            counts_refreshed: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
            claims: Arc::default(),
            known: Mutex::new(KnownIds::new(results.newest_at_open(), known::GENERATION)),
            store_lookups: AtomicU64::new(0),
            results,
            db_timeout: config.db_timeout,
            key: config.card_key,
            alerts: None,
            metrics,
        })
    }

    /// Sends an alert for every newly stored review/block decision to `alerts`.
    pub fn with_alerts(self, alerts: Option<AlertQueue>) -> Self {
        Self { alerts, ..self }
    }

    pub fn card_key(&self) -> &CardKey {
        &self.key
    }

    /// The declared fields requests are validated against (the champion's, then the shadow's).
    pub fn fields(&self) -> crate::domain::fields::Schema {
        self.policy.read().unwrap_or_else(PoisonError::into_inner).fields.clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn readers(&self) -> &Arc<ReadPool> {
        self.results.readers()
    }

    fn policy(&self) -> Policy {
        self.policy.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The synchronous half: claim, look up, score and queue the result for the store.
    pub fn submit(&self, valid: ValidTransaction, arrival: Arrival) -> Result<Pending, EngineError> {
        let mut one = self.submit_many(vec![(valid, arrival)]);
        one.pop().unwrap_or_else(|| Err(EngineError::no_outcome()))
    }

    /// [`Engine::submit`] for transactions in their order (a Kafka partition's messages, a
    /// `/predict/batch` request): one claim, one store look-up (a single query on PostgreSQL)
    /// and one hold of each scorer's lock for up to [`SUBMIT_CHUNK`] of them, so a batch pays
    /// the fixed costs once a chunk. Outcomes come back in order.
    pub fn submit_many(&self, mut batch: Vec<(ValidTransaction, Arrival)>) -> Vec<Result<Pending, EngineError>> {
        if batch.len() <= SUBMIT_CHUNK {
            return self.submit_chunk(batch);
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(SUBMIT_CHUNK));
            outcomes.extend(self.submit_chunk(batch));
            batch = rest;
        }
        outcomes
    }

    /// [`Engine::submit_many`] of at most [`SUBMIT_CHUNK`] transactions.
    fn submit_chunk(&self, batch: Vec<(ValidTransaction, Arrival)>) -> Vec<Result<Pending, EngineError>> {
        // A txn_id in flight elsewhere, or twice in this batch, is claimed once. A claimed one
        // is looked up in the store unless it is certainly new ([`KnownIds`]); a Kafka message
        // always is, because a redelivered one must move a restored card state exactly once.
        let (claimed, look_up): (Vec<bool>, Vec<bool>) = {
            let mut claims = lock(&self.claims);
            let mut known = lock(&self.known);
            batch
                .iter()
                .map(|(v, arrival)| {
                    let (id, timestamp) = (v.txn.txn_id.as_str(), v.txn.timestamp);
                    if !claims.insert(id.to_owned()) {
                        return (false, false);
                    }
                    let may_be_stored = known.claim(id, timestamp);
                    (true, arrival.offset.is_some() || may_be_stored)
                })
                .unzip()
        };
        let ids: Vec<&str> =
            batch.iter().zip(&look_up).filter(|(_, l)| **l).map(|((v, _), _)| v.txn.txn_id.as_str()).collect();
        self.store_lookups.fetch_add(ids.len() as u64, Ordering::Relaxed);
        let lookup = match ids[..] {
            [] => Ok(HashMap::new()),
            [id] => self.results.get(id).map(|s| s.into_iter().map(|s| (s.txn_id.clone(), s)).collect()),
            _ => self.results.get_many(&ids),
        };
        let mut stored = match lookup {
            Ok(stored) => stored,
            Err(e) => {
                let message = format!("{e:#}");
                let mut claims = lock(&self.claims);
                return batch
                    .into_iter()
                    .zip(claimed)
                    .map(|((v, _), claimed)| {
                        if !claimed {
                            return Err(EngineError::InProgress(v.txn.txn_id));
                        }
                        claims.remove(&v.txn.txn_id);
                        Err(EngineError::Unavailable(message.clone()))
                    })
                    .collect();
            }
        };
        // In order, under one hold of the lock: a stored transaction (a redelivered Kafka
        // message) goes into a card state that does not hold it yet; a new one's features are
        // computed (moving its card's state). The models run after the lock is released, so
        // requests on other threads score at the same time.
        let (states, bundle) = {
            let mut scorer = self.scorer();
            let states: Vec<State> = batch
                .iter()
                .zip(&claimed)
                .map(|((v, arrival), &claimed)| {
                    if !claimed {
                        return State::Refused;
                    }
                    match stored.remove(&v.txn.txn_id) {
                        Some(s) => {
                            if let Some(offset) = arrival.offset {
                                scorer.replay_at(&v.txn, offset, s.received_at);
                            }
                            State::Stored(Box::new(s))
                        }
                        None => State::New(scorer.features(&v.txn, arrival.offset)),
                    }
                })
                .collect();
            (states, Arc::clone(scorer.bundle()))
        };
        let shadows = self.score_shadow(&batch, &states);
        let mut decisions = decide_all(&bundle, &batch, &states).into_iter();
        let steps = states.into_iter().map(|state| match state {
            State::Refused => Step::Refused,
            State::Stored(s) => Step::Stored(s),
            State::New(_) => Step::Scored(decisions.next().unwrap_or_else(|| Err(anyhow::anyhow!("not scored")))),
        });
        let model_version = &bundle.manifest.version;
        let policy = self.policy();
        batch
            .into_iter()
            .zip(steps)
            .zip(shadows)
            .map(|(((valid, arrival), step), shadow)| match step {
                Step::Refused => Err(EngineError::InProgress(valid.txn.txn_id)),
                Step::Stored(s) => {
                    lock(&self.claims).remove(&s.txn_id);
                    Ok(Pending::Ready(Scored::from_stored(*s)))
                }
                Step::Scored(Err(e)) => {
                    lock(&self.claims).remove(&valid.txn.txn_id);
                    Err(e.into())
                }
                Step::Scored(Ok(decision)) => self.store(valid, arrival, decision, model_version, shadow, &policy),
            })
            .collect()
    }

    /// Applies the rules to a scored transaction, queues its row for the store and returns the
    /// pending answer (its claim is released after the commit).
    fn store(
        &self,
        valid: ValidTransaction,
        arrival: Arrival,
        decision: Decision,
        model_version: &str,
        shadow: Option<ShadowScore>,
        policy: &Policy,
    ) -> Result<Pending, EngineError> {
        let ValidTransaction { txn, card_masked } = valid;
        let card_token = txn.card.to_string();
        let mut matches = Vec::new();
        if !policy.rules.is_empty() {
            let input = RuleInput {
                txn: &txn,
                card: &card_token,
                features: &decision.features,
                score: &decision.score,
                model_action: decision.action,
            };
            policy.rules.evaluate(&input, &policy.lists, &mut matches);
            for m in &matches {
                self.metrics.count_rule_match(&m.name);
            }
        }
        let action = rules::decide(decision.action, &matches);
        let mut reasons: Vec<String> = matches.iter().map(|m| format!("rule {}: {}", m.name, m.reason)).collect();
        reasons.extend(decision.reasons);
        let score = decision.score;
        let fields = crate::domain::fields::value::to_stored(&policy.fields, &txn.fields);
        let row = ScoredTransaction {
            txn_id: txn.txn_id,
            timestamp: txn.timestamp,
            amount: txn.amount,
            country: txn.country.as_str().to_owned(),
            merchant: txn.merchant,
            merchant_category: txn.merchant_category,
            card_masked,
            card_token,
            score: score.combined,
            if_score: score.if_score,
            ae_mse: score.ae_mse,
            fraud_probability: score.fraud_probability,
            action,
            reasons,
            rules: matches.into_iter().map(|m| m.name).collect(),
            model_version: model_version.to_owned(),
            shadow,
            received_at: arrival.unix_ms,
            latency_us: u32::try_from(arrival.instant.elapsed().as_micros()).unwrap_or(u32::MAX),
            fields,
        };
        // The client's copy; the row itself moves to the writer.
        let scored = Scored { txn: row.clone(), duplicate: false };
        // Built before the row moves to the writer; sent only once the row is committed.
        let alert = self.alerts.as_ref().filter(|_| row.action != Action::Allow).map(|q| (q.clone(), Alert::of(&row)));
        let (tx, rx) = oneshot::channel();
        let claims = Arc::clone(&self.claims);
        let id = row.txn_id.clone();
        let ack = Box::new(move |outcome: Result<Outcome, String>| {
            lock(&claims).remove(&id);
            if let (Ok(Outcome::Inserted), Some((queue, alert))) = (&outcome, alert) {
                queue.send(alert);
            }
            // The receiver is gone if the client went away; the result is stored all the same.
            let _ = tx.send(outcome);
        });
        let started = Instant::now();
        if let Err(e) = self.results.submit(row, ack) {
            // The ack was dropped with the job; release the claim here.
            lock(&self.claims).remove(&scored.txn.txn_id);
            return Err(EngineError::Store(e.to_string()));
        }
        Ok(Pending::Committing { scored, commit: rx, started })
    }

    /// How long the store may fail before results fail with it.
    pub fn db_timeout(&self) -> std::time::Duration {
        self.db_timeout
    }

    /// [`Engine::submit`], then wait for the commit.
    pub async fn process(&self, valid: ValidTransaction, arrival: Arrival) -> Result<Scored, EngineError> {
        self.submit(valid, arrival)?.wait(&self.metrics).await
    }

    /// `Ok` if the writer runs and the database answers.
    pub fn store_status(&self) -> anyhow::Result<()> {
        self.results.status()
    }

    /// The metrics text, with the store and card gauges sampled now.
    pub fn render_metrics(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.results.writer_stats();
        let cards = self.scorer().n_cards();
        let policy = self.policy();
        let rule_errors: Vec<(&str, u64)> = policy.rules.errors().collect();
        self.metrics.render(stats.queued.load(Relaxed), stats.batches.load(Relaxed), cards, &rule_errors)
    }

    /// Stops the writer after it commits what is queued.
    pub fn shutdown(self) {
        self.results.shutdown();
    }

    fn scorer(&self) -> MutexGuard<'_, Scorer> {
        lock(&self.scorer)
    }

    /// The shadow model's opinion of each new transaction of a batch (`None` without a shadow);
    /// its own card state takes the batch's transactions as the champion's did.
    fn score_shadow(&self, batch: &[(ValidTransaction, Arrival)], champion: &[State]) -> Vec<Option<ShadowScore>> {
        let (states, bundle) = {
            let mut shadow = lock(&self.shadow);
            let Some(scorer) = shadow.as_mut() else { return vec![None; batch.len()] };
            let states: Vec<State> = batch
                .iter()
                .zip(champion)
                .map(|((v, arrival), state)| match state {
                    State::Stored(s) => {
                        if let Some(offset) = arrival.offset {
                            scorer.replay_at(&v.txn, offset, s.received_at);
                        }
                        State::Refused
                    }
                    State::New(_) => State::New(scorer.features(&v.txn, arrival.offset)),
                    State::Refused => State::Refused,
                })
                .collect();
            (states, Arc::clone(scorer.bundle()))
        };
        let mut decisions = decide_all(&bundle, batch, &states).into_iter();
        states
            .iter()
            .map(|state| {
                let State::New(_) = state else { return None };
                match decisions.next()? {
                    Ok(d) => Some(ShadowScore {
                        score: d.score.combined,
                        action: d.action,
                        model_version: bundle.manifest.version.clone(),
                    }),
                    Err(e) => {
                        tracing::debug!(error = %format!("{e:#}"), "the shadow model could not score a transaction");
                        None
                    }
                }
            })
            .collect()
    }
}

/// The models' decisions for the batch's new transactions, in order (outside any lock): a
/// lone transaction (an HTTP request) row by row, a batch (Kafka) as one matrix.
fn decide_all(
    bundle: &Arc<Bundle>,
    batch: &[(ValidTransaction, Arrival)],
    states: &[State],
) -> Vec<anyhow::Result<Decision>> {
    let rows: Vec<(&crate::domain::Transaction, Vec<f32>)> = batch
        .iter()
        .zip(states)
        .filter_map(|((v, _), state)| match state {
            State::New(features) => Some((&v.txn, features.clone())),
            _ => None,
        })
        .collect();
    if rows.len() < MATRIX_FROM {
        return with_scratch(bundle, |scratch, contributions| {
            rows.iter().map(|(txn, f)| decide(bundle, txn, f, scratch, contributions)).collect()
        });
    }
    decide_batch(bundle, &rows)
}

/// From this many new transactions on, a batch is scored as one matrix.
const MATRIX_FROM: usize = 16;

/// A transaction of a batch after the card-state step.
enum State {
    /// Its txn_id was claimed already (in flight); or, for the shadow, nothing to score.
    Refused,
    /// Stored before: the stored decision.
    Stored(Box<ScoredTransaction>),
    /// New: its features, to score.
    New(Vec<f32>),
}

/// What [`Engine::submit_many`] did with one transaction under the scorer's lock.
enum Step {
    /// Its txn_id was claimed already (in flight).
    Refused,
    /// Stored before: the stored decision.
    Stored(Box<ScoredTransaction>),
    /// Scored now.
    Scored(anyhow::Result<Decision>),
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl Pending {
    /// Resolves once the result is committed (or known to be a duplicate).
    pub async fn wait(self, metrics: &Metrics) -> Result<Scored, EngineError> {
        match self {
            Pending::Ready(scored) => Ok(scored),
            Pending::Committing { scored, commit, started } => {
                let outcome = commit.await.map_err(|_| EngineError::Store("the results writer stopped".into()))?;
                metrics.observe_store_write(started.elapsed());
                match outcome.map_err(EngineError::Store)? {
                    Outcome::Inserted => {
                        metrics.count_decision(scored.txn.action);
                        Ok(scored)
                    }
                    // Another process (a Kafka worker sharing the store) stored it first.
                    Outcome::Duplicate(stored) => Ok(Scored::from_stored(*stored)),
                }
            }
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (each critical section
/// is a single insert, remove or scoring call).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An engine over `bundle` (saved to `dir/models` if not there yet) and a store in `dir`, for
/// tests of the engine and of the layers above it.
#[cfg(test)]
pub(crate) fn engine_for_tests(dir: &std::path::Path, bundle: &Bundle) -> Engine {
    let models = dir.join("models");
    if !models.exists() {
        std::fs::create_dir_all(&models).unwrap_or_else(|e| panic!("{e}"));
        bundle.save(&models, &[]).unwrap_or_else(|e| panic!("{e:#}"));
    }
    let config = EngineConfig {
        models,
        shadow: None,
        rules: None,
        db: dir.join("results.db").into(),
        db_timeout: std::time::Duration::ZERO,
        card_key: CardKey::new(b"engine tests"),
        warm_up: Vec::new(),
    };
    Engine::open(config, Arc::new(Metrics::default())).unwrap_or_else(|e| panic!("{e:#}"))
}

#[cfg(test)]
mod tests;
