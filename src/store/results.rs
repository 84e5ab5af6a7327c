//! The store boundary the engine talks to: open (and rebuild recent history), look a decision
//! up, queue one for the group commit, say whether the store is healthy, shut down. SQLite or
//! PostgreSQL sits behind it ([`Location`]); the engine and the HTTP layer do not know which.
//! The dashboard's queries go through the shared [`ReadPool`].

use super::{Ack, History, LabelIn, LabelOutcome, Location, ReadPool, Store, VerdictChange, Writer, WriterStats};
use crate::domain::ScoredTransaction;
use crate::domain::fields::Schema;
use anyhow::Context;
use std::sync::Arc;
use std::sync::Mutex;

/// Results waiting for the writer before `submit` pushes back.
const WRITER_QUEUE: usize = 65_536;
/// Most results per commit.
const MAX_BATCH: usize = 4_096;
/// Read connections for look-ups and the dashboard.
const READERS: usize = 4;

/// The results store as the engine sees it: a group-commit writer and a pool of readers.
#[derive(Debug)]
pub struct Results {
    writer: Writer,
    readers: Arc<ReadPool>,
    /// A second write connection for the low-volume writes (labels, lists), which wait for
    /// the group-commit writer's lock like another process would.
    admin: Mutex<Store>,
    /// The newest transaction time stored when this process opened the store.
    newest_at_open: Option<i64>,
    /// The declared fields transactions read back from the store carry (the champion's).
    fields: Mutex<Schema>,
}

impl Results {
    /// Opens (creating and migrating) the store at `db` (a failing commit is retried for up to
    /// `retry_for`), and hands every stored transaction from
    /// `since`, or from `window_secs` before the newest one if that is later, to `history` in
    /// time order, before any new result can be written. Returns how many it replayed.
    pub fn open(
        db: &Location,
        retry_for: std::time::Duration,
        since: i64,
        window_secs: i64,
        fields: Schema,
        history: impl FnMut(History),
    ) -> anyhow::Result<(Self, u64)> {
        let mut store = Store::open(db)?;
        let context = || format!("cannot rebuild card history from {db}");
        let newest_at_open = store.latest_timestamp().with_context(context)?;
        let replayed = match newest_at_open {
            Some(latest) => store.replay(since.max(latest - window_secs), &fields, history).with_context(context)?,
            None => 0,
        };
        let readers = Arc::new(ReadPool::open(db, READERS)?);
        let admin = Mutex::new(Store::open(db)?);
        let writer = Writer::spawn(store, WRITER_QUEUE, MAX_BATCH, retry_for);
        Ok((Self { writer, readers, admin, newest_at_open, fields: Mutex::new(fields) }, replayed))
    }

    /// The declared fields to read stored transactions with from now on (a reloaded bundle's).
    pub fn set_fields(&self, fields: Schema) {
        *self.fields.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = fields;
    }

    fn fields(&self) -> Schema {
        self.fields.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The newest transaction time stored when [`Results::open`] opened the store (`None`:
    /// it was empty). Results written since by other processes are not counted.
    pub fn newest_at_open(&self) -> Option<i64> {
        self.newest_at_open
    }

    /// Stores labels in one transaction; `origin` names this process in the change log.
    pub fn put_labels(&self, labels: &[LabelIn], origin: &str) -> anyhow::Result<Vec<LabelOutcome>> {
        let fields = self.fields();
        self.admin().put_labels(labels, origin, chrono::Utc::now().timestamp_millis(), &fields)
    }

    /// The newest verdict change's sequence number.
    pub fn last_verdict_seq(&self) -> anyhow::Result<i64> {
        self.admin().last_verdict_seq()
    }

    /// Verdict changes by other processes than `origin` after `seq`, and the last seq read.
    pub fn verdict_changes_since(
        &self,
        seq: i64,
        origin: &str,
        limit: usize,
    ) -> anyhow::Result<(Vec<VerdictChange>, i64)> {
        let fields = self.fields();
        self.readers.with(|c| super::labels::changes_since(c, seq, origin, limit, &fields))
    }

    pub fn add_list_items(&self, list: &str, items: &[(String, Option<String>)]) -> anyhow::Result<usize> {
        self.admin().add_list_items(list, items, chrono::Utc::now().timestamp_millis())
    }

    pub fn remove_list_item(&self, list: &str, value: &str) -> anyhow::Result<bool> {
        self.admin().remove_list_item(list, value)
    }

    /// Saves partitions' card-state checkpoints (one transaction).
    pub fn save_checkpoints(&self, group: &str, topic: &str, checkpoints: &[super::Checkpoint]) -> anyhow::Result<()> {
        self.admin().save_checkpoints(group, topic, checkpoints, chrono::Utc::now().timestamp_millis())
    }

    /// A partition's newest checkpoint.
    pub fn load_checkpoint(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> anyhow::Result<Option<super::Checkpoint>> {
        self.admin().load_checkpoint(group, topic, partition)
    }

    fn admin(&self) -> std::sync::MutexGuard<'_, Store> {
        self.admin.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored decision for `txn_id`, if any.
    pub fn get(&self, txn_id: &str) -> anyhow::Result<Option<ScoredTransaction>> {
        self.readers.get(txn_id)
    }

    /// The stored decisions among `txn_ids`, by id.
    pub fn get_many(&self, txn_ids: &[&str]) -> anyhow::Result<std::collections::HashMap<String, ScoredTransaction>> {
        self.readers.get_many(txn_ids)
    }

    /// Queues `row` for the next group commit; `ack` runs after that commit (or its failure).
    pub fn submit(&self, row: ScoredTransaction, ack: Ack) -> Result<(), super::WriterClosed> {
        self.writer.submit(row, ack)
    }

    /// `Ok` if the writer runs and the database answers a read.
    pub fn status(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.writer.is_running(), "the results writer has stopped");
        self.readers.ping()
    }

    /// Queue depth and commit counters, for metrics.
    pub fn writer_stats(&self) -> &WriterStats {
        self.writer.stats()
    }

    /// The read connections (dashboard queries), shareable beyond the engine.
    pub fn readers(&self) -> &Arc<ReadPool> {
        &self.readers
    }

    /// Stops the writer after it commits what is queued.
    pub fn shutdown(self) {
        self.writer.shutdown();
    }
}
