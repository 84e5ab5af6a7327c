//! Replaying a history through the feature pipeline, for training and backtests.

use super::{Encoders, FeatureConfig, FeaturePipeline};
use crate::domain::Transaction;
use crate::ingest::LabelledTransaction;
use aegis_model::Matrix;

/// A half-open time window `[from, to)` in Unix seconds; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeWindow {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl TimeWindow {
    /// The index range of `rows` (sorted by time) inside the window.
    pub fn range(&self, rows: &[LabelledTransaction]) -> std::ops::Range<usize> {
        let start = self.from.map_or(0, |f| rows.partition_point(|r| r.txn.timestamp < f));
        let end = self.to.map_or(rows.len(), |t| rows.partition_point(|r| r.txn.timestamp < t));
        start..end.max(start)
    }
}

/// The replayed window: features and, per row, whether its card was already known to be
/// compromised (a fraud label known before the row's day began).
#[derive(Debug, Clone)]
pub struct Replayed {
    pub features: Matrix,
    pub known_compromised: Vec<bool>,
}

/// When each fraud label becomes known, with its row index, in time order: the row's
/// `label_time`, else its timestamp plus `default_delay` seconds (never before the
/// transaction itself).
pub fn label_schedule(rows: &[LabelledTransaction], default_delay: i64) -> Vec<(i64, u32)> {
    let mut events: Vec<(i64, u32)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.label == Some(true))
        .map(|(i, r)| {
            let known = r.label_time.unwrap_or(r.txn.timestamp.saturating_add(default_delay));
            (known.max(r.txn.timestamp), i as u32)
        })
        .collect();
    events.sort_unstable();
    events
}

/// One step of a replay: a fraud label becoming known, or the next row.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A fraud label for `txn` became known at `known_at`.
    Label { txn: &'a Transaction, known_at: i64 },
    /// The `index`-th row.
    Row { index: usize, row: &'a LabelledTransaction },
}

/// Walks time-ordered `rows` with their fraud labels interleaved: before each row, every label
/// known strictly before it (`label_time`, else the row's time + `label_delay`). Labels known
/// after the last row are not emitted. The one place replay, warm-up and tests get the order
/// from, so each sees exactly the labels live scoring would have seen.
pub fn interleave<'a>(rows: &'a [LabelledTransaction], label_delay: i64, mut on: impl FnMut(Event<'a>)) {
    let labels = label_schedule(rows, label_delay);
    let mut next = 0;
    for (index, row) in rows.iter().enumerate() {
        while let Some(&(known_at, j)) = labels.get(next).filter(|(known, _)| *known < row.txn.timestamp) {
            on(Event::Label { txn: &rows[j as usize].txn, known_at });
            next += 1;
        }
        on(Event::Row { index, row });
    }
}

/// Features of `rows[range]` (time-ordered). Every row before the range is replayed first, to
/// warm each card's and merchant's state up, so a later window sees its real history; rows after
/// the range are never read. Labels are replayed as events at the time they became known
/// (`label_delay` after the transaction unless the row has a `label_time`), interleaved with the
/// transactions: a row's features only see labels known strictly before it.
pub fn replay(
    rows: &[LabelledTransaction],
    range: std::ops::Range<usize>,
    encoders: &Encoders,
    config: FeatureConfig,
    label_delay: i64,
    mut progress: impl FnMut(u64),
) -> Replayed {
    let mut pipeline = FeaturePipeline::new(encoders.clone(), config);
    let mut out = vec![0f32; pipeline.width()];
    let mut matrix = Matrix::with_cols(pipeline.width());
    let mut known_compromised = Vec::with_capacity(range.len());
    interleave(&rows[..range.end], label_delay, |event| match event {
        Event::Label { txn, known_at } => pipeline.observe_label(txn, known_at, true),
        Event::Row { index, row } => {
            pipeline.observe(&row.txn, &mut out);
            if index >= range.start {
                // The row length always matches: both are the pipeline's width.
                let _ = matrix.push_row(&out);
                let ts = row.txn.timestamp;
                let day_start = ts - ts.rem_euclid(86_400);
                known_compromised.push(pipeline.card_fraud_known_at(&row.txn.card).is_some_and(|at| at < day_start));
            }
            if index % 65_536 == 65_535 {
                progress(index as u64 + 1);
            }
        }
    });
    progress(range.end as u64);
    Replayed { features: matrix, known_compromised }
}
