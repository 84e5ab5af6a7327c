//! Replaying a history through the feature pipeline, for training and backtests.

use super::{Encoders, FeaturePipeline, N_FEATURES};
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

/// Features of `rows[range]` (time-ordered). Every row before the range is replayed first, to
/// warm each card's state up, so a later window sees each card's real history; rows after the
/// range are never read.
pub fn replay(
    rows: &[LabelledTransaction],
    range: std::ops::Range<usize>,
    encoders: &Encoders,
    mut progress: impl FnMut(u64),
) -> Matrix {
    let mut pipeline = FeaturePipeline::new(encoders.clone());
    let mut out = [0f32; N_FEATURES];
    let mut matrix = Matrix::with_cols(N_FEATURES);
    for (i, row) in rows[..range.end].iter().enumerate() {
        pipeline.observe(&row.txn, &mut out);
        if i >= range.start {
            // The row length always matches: both are N_FEATURES.
            let _ = matrix.push_row(&out);
        }
        if i % 65_536 == 65_535 {
            progress(i as u64 + 1);
        }
    }
    progress(range.end as u64);
    matrix
}
