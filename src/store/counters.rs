//! Counters maintained in the same transaction as the results they count (per minute, per
//! country), so the dashboard's totals cost a few rows to read however large the store grows.

use super::ScoredTransaction;
use crate::scoring::Action;
use rusqlite::{Transaction, params};
use std::collections::HashMap;

/// One batch's additions, written as one upsert per minute and per country.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Minute → (transactions, reviewed, blocked).
    minutes: HashMap<i64, [i64; 3]>,
    /// Country → (transactions, flagged).
    countries: HashMap<String, [i64; 2]>,
}

impl Counters {
    pub(super) fn add(&mut self, r: &ScoredTransaction) {
        let m = self.minutes.entry(r.received_at.div_euclid(60_000)).or_default();
        m[0] += 1;
        m[1] += i64::from(r.action == Action::Review);
        m[2] += i64::from(r.action == Action::Block);
        // Looked up by &str first: a batch repeats few countries, so this rarely allocates.
        let flagged = i64::from(r.action != Action::Allow);
        match self.countries.get_mut(r.country.as_str()) {
            Some(c) => *c = [c[0] + 1, c[1] + flagged],
            None => drop(self.countries.insert(r.country.clone(), [1, flagged])),
        }
    }

    pub(super) fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut minute = tx.prepare_cached(
            "INSERT INTO stats_minute (minute, transactions, reviewed, blocked) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (minute) DO UPDATE SET transactions = transactions + excluded.transactions,
                 reviewed = reviewed + excluded.reviewed, blocked = blocked + excluded.blocked",
        )?;
        for (m, [n, review, block]) in &self.minutes {
            minute.execute(params![m, n, review, block])?;
        }
        let mut country = tx.prepare_cached(
            "INSERT INTO stats_country (country, transactions, flagged) VALUES (?1, ?2, ?3)
             ON CONFLICT (country) DO UPDATE SET transactions = transactions + excluded.transactions,
                 flagged = flagged + excluded.flagged",
        )?;
        for (c, [n, flagged]) in &self.countries {
            country.execute(params![c, n, flagged])?;
        }
        Ok(())
    }
}
