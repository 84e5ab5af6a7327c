//! The alerts table: one row per (flagged transaction, webhook), with its delivery status.

use super::Store;
use super::sql::args;

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
        self.conn.execute(
            "INSERT INTO alerts (txn_id, webhook, status, attempts, last_error, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (txn_id, webhook) DO UPDATE SET
                 status = excluded.status, attempts = excluded.attempts,
                 last_error = excluded.last_error, updated_at = excluded.updated_at",
            args![txn_id, webhook, status.as_str(), attempts, last_error, now, now],
        )?;
        Ok(())
    }

    /// Every alert row of a transaction.
    pub fn alerts(&mut self, txn_id: &str) -> anyhow::Result<Vec<StoredAlert>> {
        self.conn.query(
            "SELECT txn_id, webhook, status, attempts, last_error FROM alerts WHERE txn_id = ?1 ORDER BY webhook",
            args![txn_id],
            |r| {
                let status = r.text(2)?;
                let status =
                    AlertStatus::parse(status).ok_or_else(|| anyhow::anyhow!("unknown alert status {status}"))?;
                Ok(StoredAlert {
                    txn_id: r.string(0)?,
                    webhook: r.string(1)?,
                    status,
                    attempts: r.int32(3)?,
                    last_error: r.opt_string(4)?,
                })
            },
        )
    }
}
