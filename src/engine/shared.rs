//! What processes sharing a store agree on: labels (applied here at once, by the others within
//! the sync interval), list items, the daily counts of shared entities.

use super::{Engine, SHARED_COUNTS_EVERY, lock, write};
use crate::rules::Lists;
use crate::scoring::Scorer;
use crate::store::{LabelIn, LabelOutcome, VerdictChange};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Engine {
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
}

/// Moves `scorer`'s label-aware state for one verdict change.
pub(super) fn apply_change(scorer: &mut Scorer, change: &VerdictChange) {
    if let Some(txn) = &change.txn {
        scorer.apply_verdict(txn, change.known_at, change.verdict, change.previous);
    }
}
