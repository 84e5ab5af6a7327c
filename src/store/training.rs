//! The store as a data set: stored transactions with their verdicts, for `aegis train --db`
//! (retraining without a CSV) and `aegis evaluate --db` (champion against shadow).
//!
//! A transaction without a verdict counts as legitimate, as chargeback-fed training sets do
//! (fraud is reported; genuine purchases are not), and a fraud verdict is known from the time of
//! the change that made it fraud — so features and training see it only from then on.

use super::Store;
use super::sql::{Conn, args};
use crate::domain::Action;
use crate::ingest::LabelledTransaction;

/// One stored decision with both models' opinions and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub card: String,
    pub timestamp: i64,
    pub score: f32,
    pub action: Action,
    pub shadow: Option<crate::domain::ShadowScore>,
    pub model_version: String,
    /// `Some(true)` fraud, `Some(false)` confirmed legitimate, `None` no verdict.
    pub verdict: Option<bool>,
}

impl Store {
    /// Stored transactions with `from <= timestamp < to`, oldest first, labelled from their
    /// verdicts (none = legitimate), each fraud label with the time it became known. Rows whose
    /// card token is not in the current format are skipped. `progress` gets the row count so far.
    pub fn training_rows(
        &mut self,
        from: Option<i64>,
        to: Option<i64>,
        schema: &crate::domain::fields::Schema,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<Vec<LabelledTransaction>> {
        let mut out = Vec::new();
        self.conn.for_each(
            "SELECT r.txn_id, r.timestamp, r.card_token, r.amount, r.country, r.merchant, r.merchant_category,
                    r.card_masked, r.fields, r.verdict,
                    (SELECT MAX(c.known_at) FROM verdict_changes c WHERE c.txn_id = r.txn_id AND c.verdict = 'fraud')
             FROM results r WHERE r.timestamp >= ?1 AND r.timestamp < ?2
             ORDER BY r.timestamp, r.received_at",
            args![from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)],
            |r| {
                let Some(txn) = super::labels::transaction(r, 0, schema)? else { return Ok(()) };
                let fraud = r.opt_text(9)? == Some("fraud");
                out.push(LabelledTransaction {
                    txn,
                    label: Some(fraud),
                    label_time: if fraud { r.opt_int(10)? } else { None },
                    scenario: None,
                    masked_card: r.string(7)?,
                    line: out.len() as u64 + 1,
                });
                if out.len() % 10_000 == 0 {
                    progress(out.len() as u64);
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Every stored decision with `from <= timestamp < to` with its shadow opinion and verdict,
    /// oldest first.
    pub fn compared(&mut self, from: Option<i64>, to: Option<i64>) -> anyhow::Result<Vec<Compared>> {
        compared(
            &mut self.conn,
            "timestamp >= ?1 AND timestamp < ?2",
            args![from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)],
        )
    }
}

/// The stored decisions the shadow bundle `version` scored too, oldest first: the evidence a
/// promotion is judged on.
pub(crate) fn scored_by_shadow(c: &mut Conn, version: &str) -> anyhow::Result<Vec<Compared>> {
    compared(c, "shadow_version = ?1", args![version])
}

fn compared(c: &mut Conn, condition: &str, bound: &[super::sql::Value<'_>]) -> anyhow::Result<Vec<Compared>> {
    c.query(
        &format!(
            "SELECT card_token, timestamp, score, action, shadow_score, shadow_action, shadow_version, model_version,
                    verdict
             FROM results WHERE {condition} ORDER BY timestamp, received_at"
        ),
        bound,
        |r| {
            Ok(Compared {
                card: r.string(0)?,
                timestamp: r.int(1)?,
                score: r.real32(2)?,
                action: super::column::parsed(r, 3)?,
                shadow: super::column::shadow(r, 4)?,
                model_version: r.string(7)?,
                verdict: r.opt_text(8)?.map(|v| v == "fraud"),
            })
        },
    )
}
