//! Counters maintained in the same transaction as the results they count (per minute, per
//! country), so the dashboard's totals cost a few rows to read however large the store grows.

use super::ScoredTransaction;
use super::sql::{Conn, args};
use crate::scoring::Action;
use std::collections::BTreeMap;

/// One batch's additions, written as one upsert per minute and per country.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Minute → (transactions, reviewed, blocked).
    minutes: BTreeMap<i64, [i64; 3]>,
    /// Country → (transactions, flagged).
    countries: BTreeMap<String, [i64; 2]>,
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

    /// Upserts in key order: PostgreSQL workers committing batches side by side then lock the
    /// same counter rows in the same order, so they wait for each other instead of deadlocking.
    pub(super) fn write(&self, c: &mut Conn) -> anyhow::Result<()> {
        for (m, [n, review, block]) in &self.minutes {
            c.execute(
                "INSERT INTO stats_minute (minute, transactions, reviewed, blocked) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (minute) DO UPDATE SET transactions = stats_minute.transactions + excluded.transactions,
                     reviewed = stats_minute.reviewed + excluded.reviewed,
                     blocked = stats_minute.blocked + excluded.blocked",
                args![*m, *n, *review, *block],
            )?;
        }
        for (country, [n, flagged]) in &self.countries {
            c.execute(
                "INSERT INTO stats_country (country, transactions, flagged) VALUES (?1, ?2, ?3)
                 ON CONFLICT (country) DO UPDATE SET transactions = stats_country.transactions + excluded.transactions,
                     flagged = stats_country.flagged + excluded.flagged",
                args![country, *n, *flagged],
            )?;
        }
        Ok(())
    }
}
