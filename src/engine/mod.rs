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
pub mod promotion;

use crate::alerts::{Alert, AlertQueue};
use crate::domain::{CardKey, CardToken, ScoredTransaction, ShadowScore, ValidTransaction};
use crate::metrics::Metrics;
use crate::rules::{self, Lists, RuleInput, RuleSet};
use crate::scoring::{Action, Bundle, Decision, Scorer, decide, decide_batch, with_scratch};
use crate::store::{History, LabelIn, LabelOutcome, Outcome, ReadPool, Results, VerdictChange};
use anyhow::{Context, ensure};
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
    /// The champion's declared fields: what requests are validated against.
    fields: crate::fields::Schema,
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

/// A shadow scores the champion's transactions: it must read the same declared fields.
fn same_fields(champion: &Scorer, shadow: &Scorer) -> anyhow::Result<()> {
    ensure!(
        champion.fields() == shadow.fields(),
        "the shadow bundle declares other fields than the champion (train both with the same --schema)"
    );
    Ok(())
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
        scorer.warm_up(&config.warm_up);
        let mut shadow = match &config.shadow {
            Some(path) => {
                let bundle = Bundle::load(path).context("cannot load the shadow bundle")?;
                let mut shadow = Scorer::new(bundle).context("cannot use the shadow bundle")?;
                shadow.warm_up(&config.warm_up);
                Some(shadow)
            }
            None => None,
        };
        if let Some(shadow) = &shadow {
            same_fields(&scorer, shadow)?;
        }
        let since = config.warm_up.last().map_or(i64::MIN, |r| r.txn.timestamp + 1);
        let fields = scorer.fields().clone();
        let (results, n) = Results::open(&config.db, config.db_timeout, since, REPLAY_SECS, fields, |event| {
            for s in std::iter::once(&mut scorer).chain(shadow.as_mut()) {
                match &event {
                    History::Transaction(txn) => s.observe(txn),
                    History::Verdict(change) => apply_change(s, change),
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
        let fields = scorer.fields().clone();
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

    /// The declared fields requests are validated against (the champion's schema).
    pub fn fields(&self) -> crate::fields::Schema {
        self.policy.read().unwrap_or_else(PoisonError::into_inner).fields.clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn readers(&self) -> &Arc<ReadPool> {
        self.results.readers()
    }

    pub fn model_version(&self) -> String {
        self.scorer().model_version().to_owned()
    }

    /// The share of its training transactions the model flags (its calibrated review rate).
    pub fn flag_rate(&self) -> f64 {
        self.scorer().thresholds().review_rate
    }

    /// The shadow bundle's version, if one scores beside the champion.
    pub fn shadow_version(&self) -> Option<String> {
        lock(&self.shadow).as_ref().map(|s| s.model_version().to_owned())
    }

    /// Loads the bundles (champion and shadow) and the rules file at the configured paths again
    /// and swaps them in, keeping card history. Nothing changes unless everything loads: a
    /// broken rules file or bundle is refused and the old ones keep serving.
    pub fn reload(&self) -> anyhow::Result<String> {
        let sources = lock(&self.sources).clone();
        let lists = Arc::clone(&self.policy().lists);
        let bundle = Bundle::load(&sources.models)?;
        let schema = &bundle.manifest.schema.fields;
        let rules = sources.rules.as_deref().map(|p| RuleSet::load(p, &lists, schema)).transpose()?;
        let shadow = sources.shadow.as_deref().map(Bundle::load).transpose().context("shadow bundle")?;
        if let Some(shadow) = &shadow {
            ensure!(
                shadow.manifest.schema.fields == bundle.manifest.schema.fields,
                "the shadow bundle declares other fields than the champion (train both with the same --schema)"
            );
        }
        let mut scorer = self.scorer();
        let mut shadow_scorer = lock(&self.shadow);
        if let Some(s) = shadow_scorer.as_ref().filter(|_| shadow.is_none()) {
            ensure!(
                s.fields() == &bundle.manifest.schema.fields,
                "the new bundle declares other fields than the shadow (train both with the same --schema)"
            );
        }
        if let (Some(bundle), Some(s)) = (shadow, shadow_scorer.as_mut()) {
            s.replace_bundle(bundle).context("shadow bundle")?;
        }
        scorer.replace_bundle(bundle)?;
        let version = scorer.model_version().to_owned();
        let fields = scorer.fields().clone();
        drop((scorer, shadow_scorer));
        self.results.set_fields(fields.clone());
        let mut policy = write(&self.policy);
        policy.fields = fields;
        if let Some(rules) = rules {
            tracing::info!(rules = rules.len(), "rules reloaded");
            policy.rules = Arc::new(rules);
        }
        drop(policy);
        self.metrics.set_model_version(&version);
        tracing::info!(version = %version, "model bundle reloaded");
        Ok(version)
    }

    /// Makes the shadow bundle the champion: it answers from now on (with the card history it
    /// built beside the champion), the champion's models directory's `current` points at it,
    /// and reloads and restarts load it. Refused unless the stored decisions it scored show it
    /// ranks the confirmed frauds at least as well as the champion ([`promotion::Evidence`]);
    /// `force` promotes anyway (logged).
    /// Returns the new champion's version.
    pub fn promote(&self, force: bool) -> anyhow::Result<String> {
        let mut sources = lock(&self.sources);
        let path = sources.shadow.clone().context("no shadow model to promote (start with --shadow DIR)")?;
        let shadow_version =
            lock(&self.shadow).as_ref().map(|s| s.model_version().to_owned()).context("no shadow model to promote")?;
        let verdict = self
            .results
            .readers()
            .with(|c| crate::store::scored_by_shadow(c, &shadow_version))
            .map(|rows| promotion::Evidence::of(&rows).and_then(|e| e.judge().map(|()| e)));
        match (verdict?, force) {
            (Ok(e), _) => tracing::info!(
                shadow = %shadow_version, rows = e.rows, frauds = e.frauds, shadow_ap = e.shadow_ap,
                champion_ap = e.champion_ap, "the shadow ranks confirmed frauds at least as well"
            ),
            (Err(why), true) => tracing::warn!(shadow = %shadow_version, reason = %why, "promotion forced"),
            (Err(why), false) => anyhow::bail!("{why}; promote anyway with ?force=true"),
        }
        // The champion's models directory now points at the promoted bundle; a champion given as
        // a bundle directory is replaced by the shadow's path.
        let models = if crate::scoring::is_models_root(&sources.models) {
            let root = if sources.models.file_name().is_some_and(|n| n == "current") {
                sources.models.parent().map(std::path::Path::to_path_buf).unwrap_or_default()
            } else {
                sources.models.clone()
            };
            crate::scoring::make_current(&root, &path)?;
            sources.models.clone()
        } else {
            path
        };
        let mut scorer = self.scorer();
        let shadow = lock(&self.shadow).take().context("no shadow model to promote")?;
        *scorer = shadow;
        let version = scorer.model_version().to_owned();
        drop(scorer);
        (sources.models, sources.shadow) = (models, None);
        self.metrics.set_model_version(&version);
        tracing::info!(version = %version, "shadow model promoted to champion");
        Ok(version)
    }

    /// Stores labels (one transaction for the batch) and moves the label-aware features of this
    /// process at once for every verdict that changed.
    pub fn label(&self, labels: &[LabelIn]) -> anyhow::Result<Vec<LabelOutcome>> {
        let outcomes = self.results.put_labels(labels, &self.origin)?;
        for outcome in &outcomes {
            if let LabelOutcome::Stored { change: Some(change) } = outcome {
                self.apply(change);
            }
        }
        Ok(outcomes)
    }

    /// Catches up with what other processes sharing the store did: verdict changes (applied to
    /// the features once each) and list changes. The runtime calls it every few seconds.
    pub fn sync_shared(&self) -> anyhow::Result<()> {
        const PAGE: usize = 10_000;
        let now_ms = chrono::Utc::now().timestamp_millis();
        if now_ms - self.counts_refreshed.load(Ordering::Acquire) >= SHARED_COUNTS_EVERY.as_millis() as i64 {
            self.counts_refreshed.store(now_ms, Ordering::Release);
            self.refresh_shared_counts()?;
        }
        loop {
            let seen = self.verdicts_seen.load(Ordering::Acquire);
            let (changes, last) = self.results.verdict_changes_since(seen, &self.origin, PAGE)?;
            for change in &changes {
                self.apply(change);
            }
            self.verdicts_seen.store(last, Ordering::Release);
            if last == seen || changes.len() < PAGE && last - seen < PAGE as i64 {
                break;
            }
        }
        if self.readers().lists_version()? != self.policy().lists.version() {
            self.refresh_lists()?;
        }
        Ok(())
    }

    /// Raises the merchant, country, category and overall daily transaction counts to the
    /// store's, which cover every process writing to it: with several workers, each sees only
    /// its partitions' transactions, while fraud labels reach every worker (verdict changes) —
    /// without this, a merchant's risk (its frauds over its transactions) would read about N
    /// times too high with N workers. Counts only go up (the store's include this process's
    /// committed transactions; uncommitted ones stay counted here).
    pub fn refresh_shared_counts(&self) -> anyhow::Result<usize> {
        let days = self.readers().entity_days(crate::features::risk::DAYS as u32)?;
        let mut scorer = self.scorer();
        let mut shadow = lock(&self.shadow);
        for s in std::iter::once(&mut *scorer).chain(shadow.as_mut()) {
            for d in &days {
                s.raise_txns(d.entity, &d.key, d.day, d.txns);
            }
        }
        Ok(days.len())
    }

    /// Adds items to a list; returns how many were new. Rules see them at once.
    pub fn add_list_items(&self, list: &str, items: &[(String, Option<String>)]) -> anyhow::Result<usize> {
        let added = self.results.add_list_items(list, items)?;
        self.refresh_lists()?;
        Ok(added)
    }

    /// Removes an item from a list; false if it was not there.
    pub fn remove_list_item(&self, list: &str, value: &str) -> anyhow::Result<bool> {
        let removed = self.results.remove_list_item(list, value)?;
        self.refresh_lists()?;
        Ok(removed)
    }

    fn refresh_lists(&self) -> anyhow::Result<()> {
        let (version, lists) = self.readers().all_lists()?;
        write(&self.policy).lists = Arc::new(Lists::new(version, lists));
        Ok(())
    }

    fn apply(&self, change: &VerdictChange) {
        apply_change(&mut self.scorer(), change);
        if let Some(shadow) = lock(&self.shadow).as_mut() {
            apply_change(shadow, change);
        }
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
        let fields = crate::fields::value::to_stored(&policy.fields, &txn.fields);
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

    /// Checkpoints partitions: for each (partition, offset to resume from, its cards), the
    /// cards' states as they are now, all saved in one store transaction. The states may hold
    /// messages past the offset (scored, not yet stored): their redelivery will not move the
    /// restored states again (see [`Arrival::offset`]).
    pub fn checkpoint(
        &self,
        group: &str,
        topic: &str,
        partitions: &[(i32, i64, Vec<CardToken>)],
    ) -> anyhow::Result<()> {
        let checkpoints: Vec<crate::store::Checkpoint> = partitions
            .iter()
            .map(|(partition, next_offset, cards)| crate::store::Checkpoint {
                partition: *partition,
                next_offset: *next_offset,
                cards: cards.len() as u64,
                state: self.export_cards(cards),
            })
            .collect();
        self.results.save_checkpoints(group, topic, &checkpoints)
    }

    /// Loads a partition's checkpoint into the card states, if it has one; returns the offset to
    /// resume from and its cards.
    pub fn restore(&self, group: &str, topic: &str, partition: i32) -> anyhow::Result<Option<(i64, Vec<CardToken>)>> {
        let Some(cp) = self.results.load_checkpoint(group, topic, partition)? else { return Ok(None) };
        let cards = self.import_cards(&cp.state)?;
        Ok(Some((cp.next_offset, cards)))
    }

    /// The states of `cards` (those it has), as a checkpoint.
    fn export_cards<'a>(&self, cards: impl IntoIterator<Item = &'a CardToken>) -> Vec<u8> {
        self.scorer().export_cards(cards)
    }

    /// Takes a checkpoint's card states (the shadow's card states follow the champion's: both
    /// see the same transactions). Returns its cards.
    fn import_cards(&self, checkpoint: &[u8]) -> anyhow::Result<Vec<CardToken>> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut scorer = self.scorer();
        let cards = scorer.import_cards(checkpoint, now_ms)?;
        if let Some(shadow) = lock(&self.shadow).as_mut() {
            shadow.import_cards(checkpoint, now_ms)?;
        }
        Ok(cards)
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

/// Moves `scorer`'s label-aware state for one verdict change.
fn apply_change(scorer: &mut Scorer, change: &VerdictChange) {
    if let Some(txn) = &change.txn {
        scorer.apply_verdict(txn, change.known_at, change.verdict, change.previous);
    }
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
mod tests {
    use super::*;
    use crate::domain::Transaction;
    use crate::ingest::LabelledTransaction;
    use crate::scoring::testing::trained;
    use std::path::Path;

    fn engine(dir: &Path, bundle: &Bundle) -> Engine {
        engine_for_tests(dir, bundle)
    }

    fn valid(txn: &Transaction) -> ValidTransaction {
        ValidTransaction { txn: txn.clone(), card_masked: "411111******1111".into() }
    }

    /// Two transactions of one card, the first earlier.
    fn same_card(rows: &[LabelledTransaction]) -> (Transaction, Transaction) {
        let first = &rows[0].txn;
        let later = rows[1..].iter().find(|r| r.txn.card == first.card).expect("a card with two transactions");
        (first.clone(), later.txn.clone())
    }

    #[tokio::test]
    async fn the_answer_comes_after_the_commit_and_a_repeat_gets_the_stored_decision() {
        let (bundle, rows) = trained();
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), &bundle);
        let t = &rows[0].txn;
        let pending = engine.submit(valid(t), Arrival::now()).unwrap();
        // While the first is in flight the id is claimed: a repeat is refused or, if the commit
        // already happened, answered from the store — never scored again.
        match engine.submit(valid(t), Arrival::now()) {
            Err(EngineError::InProgress(id)) => assert_eq!(id, t.txn_id),
            Ok(Pending::Ready(s)) => assert!(s.duplicate),
            other => panic!("a repeat in flight was scored again: {other:?}"),
        }
        let first = pending.wait(engine.metrics()).await.unwrap();
        assert!(!first.duplicate);
        // Persisted before the answer: another connection already sees it.
        let mut store = crate::store::Store::open(dir.path().join("results.db")).unwrap();
        let stored = store.get(&t.txn_id).unwrap().expect("stored before the answer");
        assert_eq!((stored.score, stored.action), (first.txn.score, first.txn.action));
        assert_eq!(stored.fraud_probability, first.txn.fraud_probability);
        // The claim went with the commit: a repeat now gets the stored decision, once stored.
        let again = engine.process(valid(t), Arrival::now()).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(
            (again.txn.score, again.txn.action, again.txn.reasons.clone()),
            (first.txn.score, first.txn.action, first.txn.reasons)
        );
        assert_eq!(store.count().unwrap(), 1);
        engine.shutdown();
    }

    #[tokio::test]
    async fn a_batch_scores_as_one_at_a_time_would_and_claims_each_id_once() {
        let (bundle, rows) = trained();
        // More than a chunk, so the batch is scored under two holds of the lock.
        let txns: Vec<&Transaction> = rows.iter().take(SUBMIT_CHUNK + 88).map(|r| &r.txn).collect();
        assert_eq!(txns.len(), SUBMIT_CHUNK + 88);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let scores = |t: &ScoredTransaction| (t.txn_id.clone(), t.score, t.if_score, t.ae_mse, t.action);
        let one_at_a_time = engine(a.path(), &bundle);
        let mut want = Vec::new();
        for t in &txns {
            want.push(scores(&one_at_a_time.process(valid(t), Arrival::now()).await.unwrap().txn));
        }
        // The first is stored already; the batch repeats it, and repeats its sixth at the end
        // of the first chunk (in flight: refused) and at the end (in the second chunk: in flight
        // or committed by then, so refused or answered as a repeat — never scored twice).
        let batched = engine(b.path(), &bundle);
        batched.process(valid(txns[0]), Arrival::now()).await.unwrap();
        let mut batch: Vec<_> = txns.iter().chain([&txns[5]]).map(|t| (valid(t), Arrival::now())).collect();
        batch.insert(SUBMIT_CHUNK - 1, (valid(txns[5]), Arrival::now()));
        let mut outcomes = batched.submit_many(batch);
        match outcomes.pop() {
            Some(Err(EngineError::InProgress(id))) => assert_eq!(id, txns[5].txn_id),
            Some(Ok(p)) => assert!(p.wait(batched.metrics()).await.unwrap().duplicate, "answered as a repeat"),
            other => panic!("the repeat in the second chunk: {other:?}"),
        }
        assert!(
            matches!(outcomes.remove(SUBMIT_CHUNK - 1), Err(EngineError::InProgress(id)) if id == txns[5].txn_id),
            "a txn_id twice in one chunk is scored once"
        );
        let mut got = Vec::new();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let scored = outcome.unwrap().wait(batched.metrics()).await.unwrap();
            assert_eq!(scored.duplicate, i == 0, "only the stored one is a repeat");
            got.push(scores(&scored.txn));
        }
        assert_eq!(got, want);
        for e in [one_at_a_time, batched] {
            e.shutdown();
        }
    }

    #[tokio::test]
    async fn a_repeat_after_a_restart_or_stored_by_another_process_gets_the_stored_decision() {
        let (bundle, rows) = trained();
        let (t0, t1) = same_card(&rows);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Restarted between a transaction and its repeat: the repeat is answered from the store,
        // and the card's next transaction scores as if it had been sent once.
        let first = engine(a.path(), &bundle);
        let stored = first.process(valid(&t0), Arrival::now()).await.unwrap().txn;
        first.shutdown();
        let restarted = engine(a.path(), &bundle);
        let again = restarted.process(valid(&t0), Arrival::now()).await.unwrap();
        assert!(again.duplicate);
        assert_eq!((again.txn.score, again.txn.received_at), (stored.score, stored.received_at));
        let got = restarted.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
        let once = engine(b.path(), &bundle);
        once.process(valid(&t0), Arrival::now()).await.unwrap();
        assert_eq!(got, once.process(valid(&t1), Arrival::now()).await.unwrap().txn.score);
        // Another process on the same store stored it after this one started.
        let other = engine(a.path(), &bundle);
        let t2 = Transaction { txn_id: "stored-elsewhere".into(), ..t1.clone() };
        let elsewhere = restarted.process(valid(&t2), Arrival::now()).await.unwrap().txn;
        let here = other.process(valid(&t2), Arrival::now()).await.unwrap();
        assert!(here.duplicate, "the store's first decision, not a second one");
        assert_eq!((here.txn.score, here.txn.received_at), (elsewhere.score, elsewhere.received_at));
        for e in [restarted, once, other] {
            e.shutdown();
        }
    }

    #[tokio::test]
    async fn a_new_transaction_skips_the_store_look_up_and_a_repeat_does_not() {
        let (bundle, rows) = trained();
        let dir = tempfile::tempdir().unwrap();
        let lookups = |e: &Engine| e.store_lookups.load(Ordering::Relaxed);
        let first = engine(dir.path(), &bundle);
        for r in &rows[..50] {
            assert!(!first.process(valid(&r.txn), Arrival::now()).await.unwrap().duplicate);
        }
        assert_eq!(lookups(&first), 0, "50 new transactions on an empty store");
        let again = first.process(valid(&rows[0].txn), Arrival::now()).await.unwrap();
        assert!(again.duplicate);
        assert_eq!(lookups(&first), 1, "a repeat of an id this process handled is looked up");
        first.shutdown();

        // Restarted: what is stored is behind the horizon, so a repeat is looked up and answered
        // from the store; a transaction newer than everything stored is not looked up.
        let restarted = engine(dir.path(), &bundle);
        assert!(restarted.process(valid(&rows[1].txn), Arrival::now()).await.unwrap().duplicate);
        assert_eq!(lookups(&restarted), 1);
        let newest = rows[..50].iter().map(|r| r.txn.timestamp).max().unwrap();
        let newer =
            |id: &str, secs: i64| Transaction { txn_id: id.into(), timestamp: newest + secs, ..rows[2].txn.clone() };
        assert!(!restarted.process(valid(&newer("newer-1", 60)), Arrival::now()).await.unwrap().duplicate);
        assert_eq!(lookups(&restarted), 1);

        // Stored by another process after this one opened the store: not looked up, scored here,
        // and the store answers its first decision all the same.
        let other = engine(dir.path(), &bundle);
        let elsewhere = restarted.process(valid(&newer("newer-2", 120)), Arrival::now()).await.unwrap().txn;
        let here = other.process(valid(&newer("newer-2", 120)), Arrival::now()).await.unwrap();
        assert_eq!(lookups(&other), 0);
        assert!(here.duplicate, "the store's first decision, not a second one");
        assert_eq!((here.txn.score, here.txn.received_at), (elsewhere.score, elsewhere.received_at));
        assert_eq!(crate::store::Store::open(dir.path().join("results.db")).unwrap().count().unwrap(), 52);
        for e in [restarted, other] {
            e.shutdown();
        }
    }

    #[tokio::test]
    async fn a_repeat_never_moves_card_state_twice() {
        let (bundle, rows) = trained();
        let (t0, t1) = same_card(&rows);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Engine A sees t0 twice, engine B once; the card's next transaction must score the same.
        let ea = engine(a.path(), &bundle);
        ea.process(valid(&t0), Arrival::now()).await.unwrap();
        assert!(ea.process(valid(&t0), Arrival::now()).await.unwrap().duplicate);
        let got = ea.process(valid(&t1), Arrival::now()).await.unwrap();
        let eb = engine(b.path(), &bundle);
        eb.process(valid(&t0), Arrival::now()).await.unwrap();
        let want = eb.process(valid(&t1), Arrival::now()).await.unwrap();
        assert_eq!(
            (got.txn.score, got.txn.if_score, got.txn.ae_mse),
            (want.txn.score, want.txn.if_score, want.txn.ae_mse)
        );
        ea.shutdown();
        eb.shutdown();
    }

    #[tokio::test]
    async fn workers_sharing_a_store_share_merchant_country_and_category_counts() {
        let (bundle, rows) = trained();
        let base = rows[0].txn.clone();
        let at = |i: usize, card: &str| Transaction {
            txn_id: format!("shared-{i}"),
            card: CardKey::new(b"shared").token(card),
            merchant: "M-SHARED".into(),
            timestamp: base.timestamp + i as i64 * 60,
            ..base.clone()
        };
        let (shared, alone) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Worker A scores 30 transactions at one merchant; worker B, on the same store, saw none.
        let a = engine(shared.path(), &bundle);
        let b = engine(shared.path(), &bundle);
        for i in 0..30 {
            a.process(valid(&at(i, &format!("card-{i}"))), Arrival::now()).await.unwrap();
        }
        // One worker that saw all of them: what B should read after its refresh.
        let single = engine(alone.path(), &bundle);
        for i in 0..30 {
            single.process(valid(&at(i, &format!("card-{i}"))), Arrival::now()).await.unwrap();
        }
        // Two days later: the merchant's hour and day windows are each worker's own (not shared
        // through the store; ARCHITECTURE.md), its 7- and 30-day counts are shared.
        let probe = Transaction { timestamp: base.timestamp + 2 * 86_400, ..at(30, "a new card") };
        let want = single.process(valid(&probe), Arrival::now()).await.unwrap().txn;
        let scores = |t: &ScoredTransaction| (t.score, t.if_score, t.ae_mse);
        // Before the refresh, B's view of the merchant is empty, and it scores the probe otherwise.
        let nothing = tempfile::tempdir().unwrap();
        let unshared = engine(nothing.path(), &bundle);
        let stale = unshared.process(valid(&probe), Arrival::now()).await.unwrap().txn;
        assert_ne!(scores(&stale), scores(&want), "the shared counts matter to the score");
        assert!(b.refresh_shared_counts().unwrap() >= 4, "merchant, country, category and overall rows");
        let got = b.process(valid(&probe), Arrival::now()).await.unwrap().txn;
        assert_eq!(scores(&got), scores(&want), "after the refresh B reads what one worker would");
        for e in [a, b, single, unshared] {
            e.shutdown();
        }
    }

    #[tokio::test]
    async fn a_restart_replays_verdicts_with_the_history() {
        use crate::domain::{LabelIn, Verdict};
        let (bundle, rows) = trained();
        let (t0, t1) = same_card(&rows);
        let fraud = LabelIn {
            txn_id: t0.txn_id.clone(),
            verdict: Verdict::Fraud,
            source: "chargeback".into(),
            reported_at: t0.timestamp + 1,
            note: None,
        };
        // Restarted between the label and the card's next transaction.
        let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = engine(a.path(), &bundle);
        first.process(valid(&t0), Arrival::now()).await.unwrap();
        first.label(std::slice::from_ref(&fraud)).unwrap();
        first.shutdown();
        let restarted = engine(a.path(), &bundle);
        let got = restarted.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
        // Never restarted.
        let live = engine(b.path(), &bundle);
        live.process(valid(&t0), Arrival::now()).await.unwrap();
        live.label(std::slice::from_ref(&fraud)).unwrap();
        let want = live.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
        // Never labelled: the label must matter for the comparison to mean anything.
        let unlabelled = engine(c.path(), &bundle);
        unlabelled.process(valid(&t0), Arrival::now()).await.unwrap();
        let without = unlabelled.process(valid(&t1), Arrival::now()).await.unwrap().txn.score;
        assert_eq!(got, want, "the restarted engine lost the verdict");
        assert_ne!(want, without, "the fraud verdict should change the card's next score");
        for e in [restarted, live, unlabelled] {
            e.shutdown();
        }
    }

    #[tokio::test]
    async fn a_rejected_submit_releases_its_claim() {
        let (bundle, rows) = trained();
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), &bundle);
        // A transaction the models cannot score (a non-finite amount makes non-finite features)
        // is an error, and its id stays free for a corrected retry.
        let mut bad = rows[0].txn.clone();
        bad.amount = f64::NAN;
        let first = engine.process(valid(&bad), Arrival::now()).await;
        let retry = engine.process(valid(&rows[0].txn), Arrival::now()).await;
        assert!(first.is_err(), "{first:?}");
        assert!(retry.as_ref().is_ok_and(|s| !s.duplicate), "the failed submit kept its claim or a row: {retry:?}");
        engine.shutdown();
    }
}
