//! The alerts table: one row per (flagged transaction, webhook), with its delivery status.

use super::Store;
use rusqlite::params;

/// Where an alert's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    /// Queued or being retried.
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|v| v.as_str() == s)
    }
}

/// One alert row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlert {
    pub txn_id: String,
    pub webhook: String,
    pub status: AlertStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl Store {
    /// Records the alert's delivery state (`now` in Unix milliseconds); the first call for a
    /// (transaction, webhook) pair creates its row, later ones update it.
    pub fn record_alert(
        &mut self,
        txn_id: &str,
        webhook: &str,
        status: AlertStatus,
        attempts: u32,
        last_error: Option<&str>,
        now: i64,
    ) -> anyhow::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO alerts (txn_id, webhook, status, attempts, last_error, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (txn_id, webhook) DO UPDATE SET
                     status = excluded.status, attempts = excluded.attempts,
                     last_error = excluded.last_error, updated_at = excluded.updated_at",
            )?
            .execute(params![txn_id, webhook, status.as_str(), attempts, last_error, now])?;
        Ok(())
    }

    /// Every alert row of a transaction.
    pub fn alerts(&self, txn_id: &str) -> anyhow::Result<Vec<StoredAlert>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT txn_id, webhook, status, attempts, last_error FROM alerts WHERE txn_id = ?1 ORDER BY webhook",
        )?;
        let rows = stmt.query_map([txn_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.map(|row| {
            let (txn_id, webhook, status, attempts, last_error) = row?;
            let status = AlertStatus::parse(&status).ok_or_else(|| anyhow::anyhow!("unknown alert status {status}"))?;
            Ok(StoredAlert { txn_id, webhook, status, attempts, last_error })
        })
        .collect()
    }
}
