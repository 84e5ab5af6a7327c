//! Named lists (card tokens, merchants, countries) that rules test membership in. Every change
//! bumps `lists_version`, so other processes sharing the store notice with one read.

use super::sql::{Conn, args};
use super::{ReadPool, Store};
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
        self.conn.transaction(Some(super::locks::LABELS), |c| {
            let mut added = 0;
            for (value, note) in items {
                let exists =
                    c.query_opt("SELECT 1 FROM list_items WHERE list = ?1 AND item = ?2", args![list, value], |_| {
                        Ok(())
                    })?
                    .is_some();
                added += usize::from(!exists);
                c.execute(
                    "INSERT INTO list_items (list, item, note, added_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (list, item) DO UPDATE SET note = COALESCE(excluded.note, list_items.note)",
                    args![list, value, note.as_deref(), now_ms],
                )?;
            }
            bump(c)?;
            Ok(added)
        })
    }

    /// Removes `value` from `list`; false if it was not there.
    pub fn remove_list_item(&mut self, list: &str, value: &str) -> anyhow::Result<bool> {
        self.conn.transaction(Some(super::locks::LABELS), |c| {
            let removed = c.execute("DELETE FROM list_items WHERE list = ?1 AND item = ?2", args![list, value])? == 1;
            if removed {
                bump(c)?;
            }
            Ok(removed)
        })
    }
}

impl ReadPool {
    /// The entries of `list`, oldest first (empty if there is no such list).
    pub fn list_items(&self, list: &str) -> anyhow::Result<Vec<ListItem>> {
        self.with(|c| {
            c.query(
                "SELECT item, note, added_at FROM list_items WHERE list = ?1 ORDER BY added_at, item",
                args![list],
                |r| Ok(ListItem { value: r.string(0)?, note: r.opt_string(1)?, added_at: r.int(2)? }),
            )
        })
    }

    /// Every list's values, and the version they were read at.
    pub fn all_lists(&self) -> anyhow::Result<(i64, BTreeMap<String, Vec<String>>)> {
        self.with(|c| {
            let version = lists_version(c)?;
            let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
            c.for_each("SELECT list, item FROM list_items ORDER BY list", &[], |r| {
                lists.entry(r.string(0)?).or_default().push(r.string(1)?);
                Ok(())
            })?;
            Ok((version, lists))
        })
    }

    /// Changes whenever any list changes.
    pub fn lists_version(&self) -> anyhow::Result<i64> {
        self.with(lists_version)
    }
}

fn lists_version(c: &mut Conn) -> anyhow::Result<i64> {
    c.query_one("SELECT lists_version FROM label_stats", &[], |r| r.int(0))
}

fn bump(c: &mut Conn) -> anyhow::Result<u64> {
    c.execute("UPDATE label_stats SET lists_version = lists_version + 1", &[])
}
