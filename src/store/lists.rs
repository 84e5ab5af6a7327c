//! Named lists (card tokens, merchants, countries) that rules test membership in. Every change
//! bumps `lists_version`, so other processes sharing the store notice with one read.

use super::{ReadPool, Store};
use rusqlite::{Connection, params};
use std::collections::BTreeMap;

/// One list entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ListItem {
    /// A merchant id, a country code or a card token (cards are never listed by number).
    pub value: String,
    pub note: Option<String>,
    /// When it was added, Unix milliseconds.
    pub added_at: i64,
}

impl Store {
    /// Adds `items` (value, note) to `list`; returns how many were new.
    pub fn add_list_items(
        &mut self,
        list: &str,
        items: &[(String, Option<String>)],
        now_ms: i64,
    ) -> anyhow::Result<usize> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut added = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO list_items (list, item, note, added_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (list, item) DO UPDATE SET note = COALESCE(excluded.note, note)",
            )?;
            let mut exists = tx.prepare_cached("SELECT 1 FROM list_items WHERE list = ?1 AND item = ?2")?;
            for (value, note) in items {
                added += usize::from(!exists.exists(params![list, value])?);
                insert.execute(params![list, value, note, now_ms])?;
            }
        }
        bump(&tx)?;
        tx.commit()?;
        Ok(added)
    }

    /// Removes `value` from `list`; false if it was not there.
    pub fn remove_list_item(&mut self, list: &str, value: &str) -> anyhow::Result<bool> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let removed = tx.execute("DELETE FROM list_items WHERE list = ?1 AND item = ?2", params![list, value])? == 1;
        if removed {
            bump(&tx)?;
        }
        tx.commit()?;
        Ok(removed)
    }
}

impl ReadPool {
    /// The entries of `list`, oldest first (empty if there is no such list).
    pub fn list_items(&self, list: &str) -> anyhow::Result<Vec<ListItem>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT item, note, added_at FROM list_items WHERE list = ?1 ORDER BY added_at, item",
            )?;
            let rows =
                stmt.query_map([list], |r| Ok(ListItem { value: r.get(0)?, note: r.get(1)?, added_at: r.get(2)? }))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// Every list's values, and the version they were read at.
    pub fn all_lists(&self) -> anyhow::Result<(i64, BTreeMap<String, Vec<String>>)> {
        self.with(|c| {
            let version = lists_version(c)?;
            let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut stmt = c.prepare_cached("SELECT list, item FROM list_items ORDER BY list")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                lists.entry(r.get(0)?).or_default().push(r.get(1)?);
            }
            Ok((version, lists))
        })
    }

    /// Changes whenever any list changes.
    pub fn lists_version(&self) -> anyhow::Result<i64> {
        self.with(lists_version)
    }
}

fn lists_version(c: &Connection) -> anyhow::Result<i64> {
    Ok(c.prepare_cached("SELECT lists_version FROM label_stats")?.query_row([], |r| r.get(0))?)
}

fn bump(c: &Connection) -> rusqlite::Result<usize> {
    c.execute("UPDATE label_stats SET lists_version = lists_version + 1", [])
}
