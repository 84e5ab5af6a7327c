//! The Kafka consumer-group worker behind `aegis consume`: the same validate → engine → store
//! path as `/predict`, with offsets committed only once results are durable.
//!
//! - Auto-commit and automatic offset storing are off. A message's offset is stored when its
//!   result has been committed to the store (or it has been written to the dead-letter topic),
//!   and only in order: per partition, an offset waits until every earlier one is done. Stored
//!   offsets are committed every 500 ms, synchronously on partition revoke and at shutdown.
//!   A crash therefore redelivers at most what was not yet committed, and the store's
//!   idempotent insert by `txn_id` absorbs the redelivery.
//! - Poison messages (not JSON, or failing validation) go to `<topic>.dlq` with the reason in
//!   an `aegis-error` header and never block their partition.
//! - Card state follows its partition. Messages are keyed by card, so a partition owns a set of
//!   cards. Every [`CHECKPOINT_EVERY`], when a partition is revoked, and at shutdown, the worker
//!   saves each partition's card states with the offset everything before which is stored
//!   (`store::Checkpoint`, one transaction). On assignment it loads the partition's checkpoint
//!   into its card states and resumes from that offset: the redelivered tail is already stored,
//!   and each of those messages moves a restored card state exactly once (a message the
//!   checkpoint holds not at all; one the previous owner stored after its checkpoint once; see
//!   `FeaturePipeline::replay_at`). A worker that dies without checkpointing leaves its last
//!   periodic checkpoint: the tail since is redelivered and replayed the same way.

use super::client_config;
use crate::domain::CardToken;
use crate::domain::ValidTransaction;
use crate::domain::{PredictResponse, TransactionIn};
use crate::engine::{Arrival, Engine, EngineError, Pending, Scored};
use crate::scoring::Action;
use anyhow::{Context, bail};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The unknown message keys already logged by this process (each once).
static UNKNOWN_LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How the worker connects and what it reads.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    pub dlq_topic: String,
    /// librdkafka properties passed through (they override the defaults here).
    pub options: Vec<(String, String)>,
    /// Exit with an error once no broker has answered for this long.
    pub broker_timeout: Duration,
    /// Publish every decision here (after it is stored), keyed by card token.
    pub scored_topic: Option<String>,
    /// Publish review/block decisions here too.
    pub alerts_topic: Option<String>,
}

/// What a worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeSummary {
    pub scored: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
}

/// How often assigned partitions' card states are checkpointed.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// What the worker knows of each assigned partition, shared with the rebalance callback.
#[derive(Debug, Default)]
struct Book {
    partitions: HashMap<i32, PartitionBook>,
}

#[derive(Debug, Default)]
struct PartitionBook {
    /// Cards seen in (or restored for) the partition.
    cards: HashSet<CardToken>,
    /// Every message before this offset is stored; `None` until one is.
    next: Option<i64>,
    /// `next` as of the last checkpoint: a partition that has not moved since is not rewritten.
    checkpointed: Option<i64>,
}

/// Commits what is durable and checkpoints card states before partitions are taken away,
/// restores them when partitions arrive, and logs client errors.
struct WorkerContext {
    engine: Arc<Engine>,
    group: String,
    topic: String,
    book: Arc<Mutex<Book>>,
}

impl WorkerContext {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Saves the card states of `partitions` (all if `None`) that have a stored position and, if
    /// `only_moved`, have stored more since their last checkpoint (an idle partition's states
    /// are not rewritten every few seconds).
    fn checkpoint(&self, partitions: Option<&[i32]>, only_moved: bool) {
        let due: Vec<(i32, i64, Vec<CardToken>)> = {
            let book = self.book();
            book.partitions
                .iter()
                .filter(|(p, _)| partitions.is_none_or(|only| only.contains(p)))
                .filter(|(_, b)| !only_moved || b.next != b.checkpointed)
                .filter_map(|(p, b)| Some((*p, b.next?, b.cards.iter().copied().collect())))
                .collect()
        };
        if due.is_empty() {
            return;
        }
        let started = Instant::now();
        match self.engine.checkpoint(&self.group, &self.topic, &due) {
            Ok(()) => {
                let mut book = self.book();
                for (p, next, _) in &due {
                    if let Some(b) = book.partitions.get_mut(p) {
                        b.checkpointed = Some(*next);
                    }
                }
                drop(book);
                tracing::debug!(
                    partitions = due.len(),
                    cards = due.iter().map(|d| d.2.len()).sum::<usize>(),
                    took = ?started.elapsed(),
                    "card states checkpointed"
                );
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "card states not checkpointed"),
        }
    }

    /// Loads the checkpoints of newly assigned partitions and starts each partition at its
    /// checkpoint's offset when that is behind the group's committed offset (the stored tail
    /// since the checkpoint is replayed into the restored states). Never ahead of it, and not
    /// without one (a broker that lost the group's offsets): consumption only ever rewinds.
    fn restore(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        let committed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the group's committed offsets; resuming from them");
            TopicPartitionList::new()
        });
        for (topic, partition) in partitions {
            if topic != self.topic {
                continue;
            }
            match self.engine.restore(&self.group, &self.topic, partition) {
                Ok(Some((next, cards))) => {
                    tracing::info!(partition, offset = next, cards = cards.len(), "card states restored");
                    let behind = match committed.find_partition(&topic, partition).map(|e| e.offset()) {
                        Some(Offset::Offset(c)) => next < c,
                        _ => false,
                    };
                    if behind && let Err(e) = tpl.set_partition_offset(&topic, partition, Offset::Offset(next)) {
                        tracing::warn!(error = %e, partition, "cannot resume from the checkpoint's offset");
                    }
                    let mut book = self.book();
                    let entry = book.partitions.entry(partition).or_default();
                    entry.cards.extend(cards);
                    entry.next = Some(next);
                }
                Ok(None) => {
                    self.book().partitions.entry(partition).or_default();
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), partition, "card states not restored");
                    self.book().partitions.entry(partition).or_default();
                }
            }
        }
    }
}

impl ClientContext for WorkerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
    }
}

impl ConsumerContext for WorkerContext {
    /// Replaces rdkafka's default handling (which assigns what the group gave, at the committed
    /// offsets) to restore checkpoints and start each partition at its checkpoint's offset.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.restore(consumer, tpl);
                tracing::info!(partitions = tpl.count(), "partitions assigned");
                if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(partitions = tpl.count(), "partitions revoked; committing stored offsets");
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %e, "nothing to commit on revoke");
                }
                let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                self.checkpoint(Some(&revoked), false);
                let mut book = self.book();
                for p in &revoked {
                    book.partitions.remove(p);
                }
                drop(book);
                if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() }
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error; unassigning");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "rebalance not applied");
        }
    }
}

/// One message finished: its result stored (or dead-lettered), or the store failed.
struct Done {
    partition: i32,
    offset: i64,
    outcome: Result<Outcome, String>,
}

enum Outcome {
    Scored { duplicate: bool },
    DeadLettered,
}

/// Messages in flight (received, result not yet stored) before the worker stops fetching: the
/// back-pressure that keeps memory bounded and the store's queue from filling.
const MAX_IN_FLIGHT: usize = 16_384;

/// Per partition, the offsets in flight in arrival (= offset) order, each marked when done.
#[derive(Default)]
struct Offsets {
    partitions: HashMap<i32, VecDeque<(i64, bool)>>,
    in_flight: usize,
}

impl Offsets {
    fn start(&mut self, partition: i32, offset: i64) {
        let queue = self.partitions.entry(partition).or_default();
        // Rewound (the partition came back at its checkpoint's offset): what was in flight
        // before is redelivered, so it is tracked anew.
        if queue.back().is_some_and(|&(last, _)| last >= offset) {
            self.in_flight -= queue.len();
            queue.clear();
        }
        queue.push_back((offset, false));
        self.in_flight += 1;
    }

    /// Marks `offset` done; returns the highest offset whose predecessors are all done, if
    /// that moved.
    fn finish(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let queue = self.partitions.get_mut(&partition)?;
        // A partition delivers increasing offsets, so the queue is sorted.
        if let Ok(i) = queue.binary_search_by_key(&offset, |e| e.0) {
            queue[i].1 = true;
        }
        let mut ready = None;
        while let Some(&(o, true)) = queue.front() {
            ready = Some(o);
            queue.pop_front();
            self.in_flight -= 1;
        }
        ready
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// Consumes until `shutdown` resolves (or the brokers stay unreachable, or the store fails).
pub async fn run(
    engine: Arc<Engine>,
    config: &ConsumerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ConsumeSummary> {
    let defaults = [
        ("group.id", config.group.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
    ];
    let book = Arc::new(Mutex::new(Book::default()));
    let context = WorkerContext {
        engine: Arc::clone(&engine),
        group: config.group.clone(),
        topic: config.topic.clone(),
        book: Arc::clone(&book),
    };
    let consumer: Arc<StreamConsumer<WorkerContext>> = Arc::new(
        client_config(&config.brokers, &defaults, &config.options)
            .create_with_context(context)
            .context("cannot create the Kafka consumer")?,
    );
    // Dead letters and published decisions share one producer.
    let producer: FutureProducer =
        client_config(&config.brokers, &[], &config.options).create().context("cannot create the Kafka producer")?;
    consumer.subscribe(&[&config.topic]).with_context(|| format!("cannot subscribe to {}", config.topic))?;

    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Vec<Done>>();
    let mut offsets = Offsets::default();
    let mut summary = ConsumeSummary::default();
    let mut commit_tick = tokio::time::interval(Duration::from_millis(500));
    let mut health_tick = tokio::time::interval(Duration::from_secs(2));
    let mut checkpoint_tick = tokio::time::interval(CHECKPOINT_EVERY);
    let shared = Arc::new(config.clone());
    let mut lanes: HashMap<i32, mpsc::UnboundedSender<Received>> = HashMap::new();
    let mut last_contact = Instant::now();
    let mut dirty = false;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            received = consumer.recv(), if offsets.in_flight() < MAX_IN_FLIGHT => match received {
                Ok(message) => {
                    last_contact = Instant::now();
                    let (partition, offset) = (message.partition(), message.offset());
                    offsets.start(partition, offset);
                    let payload = message.payload().unwrap_or_default().to_vec();
                    let key = message.key().map(<[u8]>::to_vec);
                    drop(message);
                    let sender = lanes.entry(partition).or_insert_with(|| {
                        Lane {
                            partition,
                            engine: Arc::clone(&engine),
                            producer: producer.clone(),
                            config: Arc::clone(&shared),
                            book: Arc::clone(&book),
                            done: done_tx.clone(),
                        }
                        .spawn()
                    });
                    let _ = sender.send(Received { offset, payload, key });
                }
                Err(e) => tracing::warn!(error = %e, "kafka receive error"),
            },
            Some(done) = done_rx.recv() => {
                dirty |= record(&consumer, config, &book, &mut offsets, &mut summary, done)?;
            }
            _ = checkpoint_tick.tick() => {
                let context = Arc::clone(&consumer);
                let _ = tokio::task::spawn_blocking(move || context.context().checkpoint(None, true)).await;
            }
            _ = commit_tick.tick() => {
                if std::mem::take(&mut dirty) {
                    let _ = consumer.commit_consumer_state(CommitMode::Async);
                }
            }
            _ = health_tick.tick() => {
                let (probe, topic) = (Arc::clone(&consumer), config.topic.clone());
                let reachable = tokio::task::spawn_blocking(move || probe.fetch_metadata(Some(&topic), Duration::from_secs(2)).is_ok())
                    .await
                    .unwrap_or(false);
                if reachable {
                    last_contact = Instant::now();
                } else if last_contact.elapsed() > config.broker_timeout {
                    bail!("the Kafka brokers at {} have been unreachable for {:?}", config.brokers, config.broker_timeout);
                } else {
                    tracing::warn!(brokers = %config.brokers, "Kafka brokers unreachable; retrying");
                }
            }
        }
    }

    // Shutdown: let what is in flight finish, then commit it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while offsets.in_flight() > 0 {
        match tokio::time::timeout_at(deadline, done_rx.recv()).await {
            Ok(Some(done)) => {
                record(&consumer, config, &book, &mut offsets, &mut summary, done)?;
            }
            _ => break,
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        tracing::debug!(error = %e, "nothing to commit at shutdown");
    }
    let context = Arc::clone(&consumer);
    let _ = tokio::task::spawn_blocking(move || context.context().checkpoint(None, false)).await;
    Ok(summary)
}

/// Stores each partition's offset once everything before it is done (once per partition for
/// a batch of finished messages). True if an offset was stored.
fn record(
    consumer: &StreamConsumer<WorkerContext>,
    config: &ConsumerConfig,
    book: &Mutex<Book>,
    offsets: &mut Offsets,
    summary: &mut ConsumeSummary,
    dones: Vec<Done>,
) -> anyhow::Result<bool> {
    let mut ready: Vec<(i32, i64)> = Vec::new();
    for done in dones {
        match done.outcome {
            Ok(Outcome::Scored { duplicate }) => {
                summary.scored += 1;
                summary.duplicates += u64::from(duplicate);
            }
            Ok(Outcome::DeadLettered) => summary.dead_lettered += 1,
            // Without the store nothing can be acknowledged: stop, and let a restart redeliver.
            Err(e) => bail!("cannot store results: {e}"),
        }
        if let Some(offset) = offsets.finish(done.partition, done.offset) {
            match ready.iter_mut().find(|(p, _)| *p == done.partition) {
                Some(r) => r.1 = r.1.max(offset),
                None => ready.push((done.partition, offset)),
            }
        }
    }
    let mut stored = false;
    for (partition, offset) in ready {
        stored |= store_offset(consumer, config, book, partition, offset);
    }
    Ok(stored)
}

/// Records that every message of `partition` up to `ready` is done: for the next checkpoint,
/// and as the offset to commit. False if the partition was revoked meanwhile.
fn store_offset(
    consumer: &StreamConsumer<WorkerContext>,
    config: &ConsumerConfig,
    book: &Mutex<Book>,
    partition: i32,
    ready: i64,
) -> bool {
    if let Some(p) = book.lock().unwrap_or_else(std::sync::PoisonError::into_inner).partitions.get_mut(&partition) {
        p.next = Some(p.next.map_or(ready + 1, |n| n.max(ready + 1)));
    }
    match consumer.store_offset(&config.topic, partition, ready) {
        Ok(()) => true,
        // The partition was revoked meanwhile: its new owner continues from the last commit.
        Err(e) => {
            tracing::debug!(error = %e, partition, "offset not stored");
            false
        }
    }
}

/// One message as read from the broker.
struct Received {
    offset: i64,
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
}

/// Most messages a lane takes from its queue at once: the engine's chunk. A batch is
/// validated, looked up in the store (one query) and scored under one hold of the scorer's
/// lock, and reports back as one.
const LANE_BATCH: usize = crate::engine::SUBMIT_CHUNK;

/// A partition's lane: a task that validates and scores the partition's messages in offset
/// order (a card's features depend on the order of its transactions), a batch at a time (what
/// arrived while the last batch was scored), while other partitions' lanes run beside it. The
/// wait for a batch's commit runs as a task of its own.
struct Lane {
    partition: i32,
    engine: Arc<Engine>,
    producer: FutureProducer,
    config: Arc<ConsumerConfig>,
    book: Arc<Mutex<Book>>,
    done: mpsc::UnboundedSender<Vec<Done>>,
}

impl Lane {
    /// Starts the lane's task; returns where to send the partition's messages.
    fn spawn(self) -> mpsc::UnboundedSender<Received> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Received>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(LANE_BATCH);
            while rx.recv_many(&mut batch, LANE_BATCH).await > 0 {
                self.handle(std::mem::replace(&mut batch, Vec::with_capacity(LANE_BATCH))).await;
            }
        });
        tx
    }

    /// Validates and submits a batch of the partition's messages (poison ones go to the
    /// dead-letter topic); reports each on `done` once stored. Returns once the batch is
    /// scored: after an outage of the store, only once it could be read again, so the next
    /// batch never overtakes this one.
    async fn handle(&self, messages: Vec<Received>) {
        let engine = &self.engine;
        let mut batch = Vec::with_capacity(messages.len());
        let fields = engine.fields();
        for Received { offset, payload, key } in messages {
            let arrival = Arrival::at_offset(offset);
            let valid = serde_json::from_slice(&payload).map_err(|e| format!("not JSON: {e}")).and_then(|v| {
                TransactionIn::validate_lenient(&v, engine.card_key(), &fields, arrival.unix_ms / 1000)
                    .map_err(|r| r.message)
            });
            // An upstream adding a field must not stop scoring: counted, logged once per key.
            let valid = valid.map(|(valid, unknown)| {
                if let Some(key) = unknown {
                    engine.metrics().count_unknown_field();
                    if let Some(mut logged) = UNKNOWN_LOGGED.lock().ok().filter(|l| !l.contains(&key) && l.len() < 100) {
                        logged.push(key.clone());
                        tracing::warn!(key = %key, "messages carry a key that is neither a transaction field nor a declared one; scored without it");
                    }
                }
                valid
            });
            match valid {
                Ok(valid) => batch.push((valid, arrival)),
                Err(reason) => self.dead_letter(offset, payload, key, reason),
            }
        }
        if batch.is_empty() {
            return;
        }
        if let Some(p) =
            self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner).partitions.get_mut(&self.partition)
        {
            p.cards.extend(batch.iter().map(|(v, _)| v.txn.card));
        }
        // Scored here, in the partition's order; only the wait for the commit runs as a task.
        // A message refused for now (its txn_id in flight, the store unreadable) is retried
        // there, so it keeps its transaction.
        let mut submitted = engine.submit_many(batch.clone());
        // The store could not be read (an outage: nothing was scored): the batch is submitted
        // again, as a batch, with backoff up to --db-timeout in all. Meanwhile this lane takes
        // nothing new, its offsets stay uncommitted and the in-flight window fills, which stops
        // fetching.
        let mut unavailable = Backoff::new(engine.db_timeout());
        loop {
            let refused: Vec<usize> =
                (0..submitted.len()).filter(|&i| matches!(submitted[i], Err(EngineError::Unavailable(_)))).collect();
            let Some(&first) = refused.first() else { break };
            let Some(wait) = unavailable.next() else { break };
            if warn_now()
                && let Err(e) = &submitted[first]
            {
                tracing::warn!(error = %e, "results store unavailable; retrying");
            }
            tokio::time::sleep(wait).await;
            let again = engine.submit_many(refused.iter().map(|&i| batch[i].clone()).collect());
            for (i, outcome) in refused.into_iter().zip(again) {
                submitted[i] = outcome;
            }
        }
        let (engine, partition, done) = (Arc::clone(engine), self.partition, self.done.clone());
        let publish = Publish {
            producer: self.producer.clone(),
            scored: self.config.scored_topic.clone(),
            alerts: self.config.alerts_topic.clone(),
        };
        tokio::spawn(async move {
            let mut finished = Vec::with_capacity(batch.len());
            for ((valid, arrival), first) in batch.into_iter().zip(submitted) {
                let offset = arrival.offset.unwrap_or_default();
                let card = valid.txn.card;
                let outcome = settle(&engine, valid, arrival, first, &mut unavailable).await;
                let outcome = match outcome {
                    // Published after the store commit: a crash in between republishes on
                    // redelivery (at least once), never the other way round. Each publication
                    // waits for its delivery on its own.
                    Ok(scored) if publish.wanted(&scored) => {
                        let (publish, done) = (publish.clone(), done.clone());
                        tokio::spawn(async move {
                            let outcome = publish
                                .send(&card.to_string(), &scored)
                                .await
                                .map(|()| Outcome::Scored { duplicate: scored.duplicate });
                            let _ = done.send(vec![Done { partition, offset, outcome }]);
                        });
                        continue;
                    }
                    Ok(scored) => Ok(Outcome::Scored { duplicate: scored.duplicate }),
                    Err(e) => Err(e),
                };
                finished.push(Done { partition, offset, outcome });
            }
            let _ = done.send(finished);
        });
    }

    /// Sends a message that is not a valid transaction to the dead-letter topic, with the reason.
    fn dead_letter(&self, offset: i64, payload: Vec<u8>, key: Option<Vec<u8>>, reason: String) {
        let partition = self.partition;
        tracing::warn!(partition, offset, reason = %reason, "poison message sent to the dead-letter topic");
        let (producer, topic, done) = (self.producer.clone(), self.config.dlq_topic.clone(), self.done.clone());
        tokio::spawn(async move {
            let headers = OwnedHeaders::new()
                .insert(Header { key: "aegis-error", value: Some(reason.as_str()) })
                .insert(Header { key: "aegis-source", value: Some(&format!("{partition}:{offset}")) });
            let mut record = FutureRecord::to(&topic).payload(&payload).headers(headers);
            if let Some(k) = &key {
                record = record.key(k);
            }
            let outcome = producer
                .send(record, Duration::from_secs(30))
                .await
                .map(|_| Outcome::DeadLettered)
                .map_err(|(e, _)| format!("dead-letter topic {topic}: {e}"));
            let _ = done.send(vec![Done { partition, offset, outcome }]);
        });
    }
}

/// Waits for a submitted message's commit; a message refused for now is submitted again: one
/// whose txn_id is in flight (a repeated message) once that one is stored, one the store could
/// not look up (an outage) with `unavailable`'s backoff (shared by the batch: up to
/// `--db-timeout` in all).
async fn settle(
    engine: &Engine,
    valid: ValidTransaction,
    arrival: Arrival,
    first: Result<Pending, EngineError>,
    unavailable: &mut Backoff,
) -> Result<Scored, String> {
    let mut first = Some(first);
    loop {
        let submitted = first.take().unwrap_or_else(|| engine.submit(valid.clone(), arrival));
        let pending = match submitted {
            Err(EngineError::InProgress(_)) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            // Meanwhile this message's offset stays uncommitted and the in-flight window
            // fills, which stops fetching.
            Err(EngineError::Unavailable(e)) => match unavailable.next() {
                Some(wait) => {
                    if warn_now() {
                        tracing::warn!(error = %e, "results store unavailable; retrying");
                    }
                    tokio::time::sleep(wait).await;
                    continue;
                }
                None => Err(EngineError::Unavailable(e)),
            },
            other => other,
        };
        return match pending {
            Ok(p) => p.wait(engine.metrics()).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
    }
}

/// True at most once a second: every message in flight meets an outage, one line says so.
fn warn_now() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    LAST.swap(now, Ordering::Relaxed) != now
}

/// Growing waits between retries, until `limit` has passed since the first.
struct Backoff {
    started: Option<Instant>,
    next: Duration,
    limit: Duration,
}

impl Backoff {
    fn new(limit: Duration) -> Self {
        Self { started: None, next: Duration::from_millis(50), limit }
    }

    /// The next wait, or `None` once the time is up.
    fn next(&mut self) -> Option<Duration> {
        if self.started.get_or_insert_with(Instant::now).elapsed() >= self.limit {
            return None;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(2));
        Some(wait)
    }
}

/// Where stored decisions are published, if anywhere.
#[derive(Clone)]
struct Publish {
    producer: FutureProducer,
    scored: Option<String>,
    alerts: Option<String>,
}

impl Publish {
    /// The topics `s` goes to.
    fn topics(&self, s: &Scored) -> [Option<&str>; 2] {
        let flagged = s.txn.action != Action::Allow;
        [self.scored.as_deref(), self.alerts.as_deref().filter(|_| flagged)]
    }

    fn wanted(&self, s: &Scored) -> bool {
        self.topics(s).iter().any(Option::is_some)
    }

    async fn send(&self, card: &str, s: &Scored) -> Result<(), String> {
        let topics = self.topics(s);
        // The same JSON as the `/predict` answer.
        let body = serde_json::to_string(&PredictResponse::new(&s.txn, s.duplicate, u64::from(s.txn.latency_us)))
            .map_err(|e| e.to_string())?;
        for topic in topics.into_iter().flatten() {
            let record = FutureRecord::to(topic).key(card).payload(&body);
            self.producer.send(record, Duration::from_secs(30)).await.map_err(|(e, _)| format!("{topic}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_released_in_order_only() {
        let mut o = Offsets::default();
        for off in [10, 11, 12] {
            o.start(0, off);
        }
        o.start(1, 5);
        assert_eq!(o.finish(0, 11), None, "10 is still in flight");
        assert_eq!(o.finish(1, 5), Some(5));
        assert_eq!(o.finish(0, 10), Some(11), "10 and 11 are done");
        assert_eq!(o.in_flight(), 1);
        assert_eq!(o.finish(0, 12), Some(12));
        assert_eq!(o.in_flight(), 0);
    }
}
