//! Counters maintained in the same transaction as the results they count: per minute and per
//! country for the dashboard (its totals cost a few rows to read however large the store
//! grows), and per merchant, country, category, issuer range (BIN) and overall per transaction day (`entity_days`),
//! the state spanning cards that workers share (`Engine::refresh_shared_counts`).

use super::ScoredTransaction;
use super::sql::{Backend, Conn, args};
use crate::features::{Entity, category_key};
use crate::scoring::Action;
use std::collections::BTreeMap;

/// One batch's additions, written as one upsert per minute and per country.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Minute → (transactions, reviewed, blocked).
    minutes: BTreeMap<i64, [i64; 3]>,
    /// Country → (transactions, flagged).
    countries: BTreeMap<String, [i64; 2]>,
    /// (entity kind, transaction day) → key → transactions. Keyed in two levels so that a row
    /// finds its counter by `&str` (a batch repeats merchants and days: few allocations).
    entities: BTreeMap<(Entity, i64), BTreeMap<String, i64>>,
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
        let day = r.timestamp.div_euclid(86_400);
        // The issuer range as the masked number's first six digits, when it is a card number.
        let bin = crate::domain::bin_of(&r.card_masked).map(|_| &r.card_masked[..6]);
        let keys = [
            (Entity::Merchant, Some(r.merchant.as_str())),
            (Entity::Country, Some(r.country.as_str())),
            (Entity::Category, Some(category_key(r.merchant_category.as_deref()))),
            (Entity::Bin, bin),
            (Entity::All, Some("")),
        ];
        for (entity, key) in keys.into_iter().filter_map(|(e, k)| Some((e, k?))) {
            let keys = self.entities.entry((entity, day)).or_default();
            match keys.get_mut(key) {
                Some(n) => *n += 1,
                None => drop(keys.insert(key.to_owned(), 1)),
            }
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
        self.write_entities(c)
    }

    /// The per-entity daily counts: one upsert per key on SQLite; one multi-row upsert on
    /// PostgreSQL (a batch touches hundreds of merchant-days; a round trip each would cost more
    /// than the results' own insert).
    fn write_entities(&self, c: &mut Conn) -> anyhow::Result<()> {
        const UPSERT: &str = " ON CONFLICT (kind, entity, day) DO UPDATE SET txns = entity_days.txns + excluded.txns";
        // In (kind, day, key) order: the same order in every worker.
        let rows = self.entities.iter().flat_map(|(&(entity, day), keys)| {
            keys.iter().map(move |(key, &n)| (entity.as_str(), key.as_str(), day, n))
        });
        if c.backend() == Backend::Postgres {
            let kinds: Vec<&str> = rows.clone().map(|r| r.0).collect();
            let keys: Vec<&str> = rows.clone().map(|r| r.1).collect();
            let days: Vec<i64> = rows.clone().map(|r| r.2).collect();
            let txns: Vec<i64> = rows.map(|r| r.3).collect();
            c.postgres_query(
                &format!(
                    "INSERT INTO entity_days (kind, entity, day, txns)
                     SELECT * FROM UNNEST(?1::text[], ?2::text[], ?3::bigint[], ?4::bigint[]){UPSERT}"
                ),
                &[&kinds, &keys, &days, &txns],
            )?;
            return Ok(());
        }
        let sql = format!("INSERT INTO entity_days (kind, entity, day, txns) VALUES (?1, ?2, ?3, ?4){UPSERT}");
        for (entity, key, day, n) in rows {
            c.execute(&sql, args![entity, key, day, n])?;
        }
        Ok(())
    }
}

/// One entity's transactions on one day, over every process sharing the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityDay {
    pub entity: Entity,
    pub key: String,
    pub day: u32,
    pub txns: u32,
}

impl super::ReadPool {
    /// Every entity's daily count for the `days` newest days stored.
    pub fn entity_days(&self, days: u32) -> anyhow::Result<Vec<EntityDay>> {
        self.with(|c| {
            let Some(newest) = c.query_one("SELECT MAX(day) FROM entity_days", &[], |r| r.opt_int(0))? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            c.for_each(
                "SELECT kind, entity, day, txns FROM entity_days WHERE day > ?1",
                args![newest - i64::from(days)],
                |r| {
                    if let Some(entity) = Entity::parse(r.text(0)?) {
                        let clamp = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
                        out.push(EntityDay {
                            entity,
                            key: r.string(1)?,
                            day: clamp(r.int(2)?),
                            txns: clamp(r.int(3)?),
                        });
                    }
                    Ok(())
                },
            )?;
            Ok(out)
        })
    }
}
