//! Evaluating scores against labels: per model and combined, ROC AUC, average precision,
//! precision/recall/F1 at the block threshold and card precision@100 per day; printed as a
//! table and written as `report.json` and an HTML page with ROC and PR curves.

mod html;

pub use html::write_html;

use crate::scoring::{Models, Score, Thresholds};
use aegis_model::metrics::{self, CurvePoint, ThresholdMetrics};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;

/// Cards per day whose precision is measured (the fraud team's daily investigation budget).
pub const CARDS_PER_DAY: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    pub model: String,
    pub roc_auc: Option<f64>,
    pub average_precision: Option<f64>,
    /// Transactions flagged at the block threshold (for single models: the same training
    /// quantile of that model's own score).
    pub at_block: ThresholdMetrics,
    /// Mean over days of the share of truly compromised cards among the day's 100
    /// highest-scored cards; `None` without card and time information.
    pub card_precision_at_100: Option<f64>,
    pub roc_curve: Vec<CurvePoint>,
    pub pr_curve: Vec<CurvePoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub rows: usize,
    pub frauds: usize,
    pub fraud_rate: f64,
    pub from: Option<String>,
    pub to: Option<String>,
    pub models: Vec<ModelReport>,
}

impl ModelReport {
    /// The numbers a table row shows, formatted: ROC AUC, AP, precision, recall, F1 at the block
    /// threshold, card precision@100 ("-" where not available).
    pub fn cells(&self) -> [String; 6] {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
        [
            opt(self.roc_auc),
            opt(self.average_precision),
            format!("{:.4}", self.at_block.precision),
            format!("{:.4}", self.at_block.recall),
            format!("{:.4}", self.at_block.f1),
            opt(self.card_precision_at_100),
        ]
    }
}

impl Report {
    /// The combined model's report.
    pub fn combined(&self) -> Option<&ModelReport> {
        self.models.iter().find(|m| m.model == "combined")
    }

    /// Headline numbers for the manifest.
    pub fn summary(&self) -> serde_json::Value {
        let models: serde_json::Map<String, serde_json::Value> = self
            .models
            .iter()
            .map(|m| {
                (
                    m.model.clone(),
                    serde_json::json!({
                        "roc_auc": m.roc_auc,
                        "average_precision": m.average_precision,
                        "precision_at_block": m.at_block.precision,
                        "recall_at_block": m.at_block.recall,
                        "card_precision_at_100": m.card_precision_at_100,
                    }),
                )
            })
            .collect();
        serde_json::json!({ "holdout_rows": self.rows, "holdout_frauds": self.frauds, "models": models })
    }
}

/// Per-row context for card-level metrics: card key and Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct RowContext {
    pub card: u128,
    pub timestamp: i64,
}

/// Evaluates `scores` against `labels`. `context` (one per row) enables card precision@100.
pub fn evaluate(
    scores: &[Score],
    labels: &[bool],
    context: Option<&[RowContext]>,
    models: &Models,
    thresholds: &Thresholds,
    window: (Option<String>, Option<String>),
) -> Report {
    let frauds = labels.iter().filter(|&&l| l).count();
    let cut = 1.0 - thresholds.block_rate as f32;
    let if_raw: Vec<f32> = scores.iter().map(|s| s.if_score).collect();
    let ae_raw: Vec<f32> = scores.iter().map(|s| s.ae_mse).collect();
    let combined: Vec<f32> = scores.iter().map(|s| s.combined).collect();
    let if_pct: Vec<f32> = if_raw.iter().map(|&s| models.if_cdf.cdf(s)).collect();
    let ae_pct: Vec<f32> = ae_raw.iter().map(|&s| models.ae_cdf.cdf(s)).collect();
    let report = |name: &str, ranking: &[f32], flag_on: &[f32], threshold: f32| ModelReport {
        model: name.to_owned(),
        roc_auc: metrics::roc_auc(ranking, labels),
        average_precision: metrics::average_precision(ranking, labels),
        at_block: metrics::at_threshold(flag_on, labels, threshold),
        card_precision_at_100: context.and_then(|c| card_precision_per_day(ranking, labels, c, CARDS_PER_DAY)),
        roc_curve: thin(metrics::roc_curve(ranking, labels)),
        pr_curve: thin(metrics::pr_curve(ranking, labels)),
    };
    Report {
        rows: scores.len(),
        frauds,
        fraud_rate: if scores.is_empty() { 0.0 } else { frauds as f64 / scores.len() as f64 },
        from: window.0,
        to: window.1,
        models: vec![
            report("isolation_forest", &if_raw, &if_pct, cut),
            report("autoencoder", &ae_raw, &ae_pct, cut),
            report("combined", &combined, &combined, thresholds.block),
        ],
    }
}

/// Card precision@k per day: each day, rank cards by their highest score that day and take the
/// share of the top `k` that had a fraud that day; averaged over days.
pub fn card_precision_per_day(scores: &[f32], labels: &[bool], context: &[RowContext], k: usize) -> Option<f64> {
    let mut days: HashMap<i64, HashMap<u128, (f32, bool)>> = HashMap::new();
    for ((&s, &l), c) in scores.iter().zip(labels).zip(context) {
        let card =
            days.entry(c.timestamp.div_euclid(86_400)).or_default().entry(c.card).or_insert((f32::NEG_INFINITY, false));
        card.0 = card.0.max(s);
        card.1 |= l;
    }
    let per_day: Vec<f64> = days
        .into_values()
        .filter_map(|cards| {
            let (s, l): (Vec<f32>, Vec<bool>) = cards.into_values().unzip();
            metrics::precision_at_k(&s, &l, k)
        })
        .collect();
    (!per_day.is_empty()).then(|| per_day.iter().sum::<f64>() / per_day.len() as f64)
}

/// At most ~400 points per curve, keeping the first and last, so reports stay small.
fn thin(points: Vec<CurvePoint>) -> Vec<CurvePoint> {
    let step = points.len().div_ceil(400).max(1);
    let last = points.last().copied();
    let mut out: Vec<CurvePoint> = points.into_iter().step_by(step).collect();
    if let (Some(l), Some(o)) = (last, out.last()) {
        if *o != l {
            out.push(l);
        }
    }
    out
}

/// Prints the report as a fixed-width table.
pub fn print_table(report: &Report, mut w: impl Write) -> std::io::Result<()> {
    writeln!(w, "Evaluated {} transactions, {} fraud ({:.2}%)", report.rows, report.frauds, 100.0 * report.fraud_rate)?;
    writeln!(
        w,
        "{:<18} {:>8} {:>8} {:>10} {:>8} {:>8} {:>12}",
        "model", "ROC AUC", "AP", "precision", "recall", "F1", "card P@100"
    )?;
    for m in &report.models {
        let [auc, ap, p, r, f1, card] = m.cells();
        writeln!(w, "{:<18} {auc:>8} {ap:>8} {p:>10} {r:>8} {f1:>8} {card:>12}", m.model)?;
    }
    writeln!(w, "(precision, recall and F1 at the block threshold)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(card: u128, day: i64) -> RowContext {
        RowContext { card, timestamp: day * 86_400 + 10 }
    }

    #[test]
    fn card_precision_takes_each_cards_best_score_per_day() {
        // Day 0: card 1 (fraud) scores 0.9 once, card 2 (legit) scores 0.8 twice, card 3 (fraud) 0.1.
        // Top-2 cards: {1, 2} → 0.5. Day 1: card 2 (fraud) alone → 1.0. Mean 0.75.
        let scores = [0.9, 0.8, 0.8, 0.1, 0.5];
        let labels = [true, false, false, true, true];
        let context = [ctx(1, 0), ctx(2, 0), ctx(2, 0), ctx(3, 0), ctx(2, 1)];
        let p = card_precision_per_day(&scores, &labels, &context, 2).unwrap();
        assert!((p - 0.75).abs() < 1e-12, "{p}");
        assert_eq!(card_precision_per_day(&[], &[], &[], 2), None);
    }

    #[test]
    fn thinning_keeps_ends_and_bounds_size() {
        let pts: Vec<CurvePoint> = (0..=1000).map(|i| CurvePoint { x: i as f64, y: 0.0 }).collect();
        let t = thin(pts);
        assert!(t.len() <= 402);
        assert_eq!(t.first().unwrap().x, 0.0);
        assert_eq!(t.last().unwrap().x, 1000.0);
    }
}
