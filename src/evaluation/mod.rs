//! Evaluating scores against labels: per model and combined, ROC AUC, average precision,
//! precision/recall/F1 at the block threshold and card precision@100 per day (also with the
//! cards already known to be compromised left out); per fraud scenario, each model's ROC AUC
//! against the genuine transactions and its recall at the block threshold. Printed as tables
//! and written as `report.json` and an HTML page with ROC and PR curves.

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
    /// The same with cards already known to be compromised (a fraud label known before that
    /// day) left out, since those are caught anyway.
    #[serde(default)]
    pub card_precision_at_100_unknown: Option<f64>,
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
    /// Per fraud scenario, when the data names them.
    #[serde(default)]
    pub scenarios: Vec<ScenarioReport>,
}

/// How each model does on one fraud scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub frauds: usize,
    pub models: Vec<ScenarioModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioModel {
    pub model: String,
    /// ROC AUC of this scenario's frauds against every genuine transaction.
    pub roc_auc: Option<f64>,
    /// Share of this scenario's frauds at or above the block threshold.
    pub recall_at_block: f64,
}

impl ModelReport {
    /// The numbers a table row shows, formatted: ROC AUC, AP, precision, recall, F1 at the block
    /// threshold, card precision@100 and without known cards ("-" where not available).
    pub fn cells(&self) -> [String; 7] {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
        [
            opt(self.roc_auc),
            opt(self.average_precision),
            format!("{:.4}", self.at_block.precision),
            format!("{:.4}", self.at_block.recall),
            format!("{:.4}", self.at_block.f1),
            opt(self.card_precision_at_100),
            opt(self.card_precision_at_100_unknown),
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
                        "card_precision_at_100_unknown": m.card_precision_at_100_unknown,
                    }),
                )
            })
            .collect();
        let scenarios: serde_json::Map<String, serde_json::Value> = self
            .scenarios
            .iter()
            .map(|s| {
                let combined = s.models.iter().find(|m| m.model == "combined");
                (
                    s.scenario.clone(),
                    serde_json::json!({
                        "frauds": s.frauds,
                        "combined_roc_auc": combined.and_then(|m| m.roc_auc),
                        "combined_recall_at_block": combined.map(|m| m.recall_at_block),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "holdout_rows": self.rows,
            "holdout_frauds": self.frauds,
            "models": models,
            "scenarios": scenarios,
        })
    }
}

/// Per-row context for card-level metrics: card key, Unix seconds, and whether the card was
/// already known to be compromised when the row's day began.
#[derive(Debug, Clone, Copy)]
pub struct RowContext {
    pub card: u128,
    pub timestamp: i64,
    pub known_compromised: bool,
}

/// Evaluates `scores` against `labels`. `context` (one per row) enables card precision@100;
/// `scenarios` (one per row: the fraud scenario id, if any) the per-scenario table.
pub fn evaluate(
    scores: &[Score],
    labels: &[bool],
    context: Option<&[RowContext]>,
    scenarios: Option<&[Option<Box<str>>]>,
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
    let unknown: Option<(Vec<usize>, Vec<RowContext>)> = context.map(|c| {
        let keep: Vec<usize> = (0..c.len()).filter(|&i| !c[i].known_compromised).collect();
        let ctx = keep.iter().map(|&i| c[i]).collect();
        (keep, ctx)
    });
    let report = |name: &str, ranking: &[f32], flag_on: &[f32], threshold: f32| ModelReport {
        model: name.to_owned(),
        roc_auc: metrics::roc_auc(ranking, labels),
        average_precision: metrics::average_precision(ranking, labels),
        at_block: metrics::at_threshold(flag_on, labels, threshold),
        card_precision_at_100: context.and_then(|c| card_precision_per_day(ranking, labels, c, CARDS_PER_DAY)),
        card_precision_at_100_unknown: unknown.as_ref().and_then(|(keep, ctx)| {
            let s: Vec<f32> = keep.iter().map(|&i| ranking[i]).collect();
            let l: Vec<bool> = keep.iter().map(|&i| labels[i]).collect();
            card_precision_per_day(&s, &l, ctx, CARDS_PER_DAY)
        }),
        roc_curve: thin(metrics::roc_curve(ranking, labels)),
        pr_curve: thin(metrics::pr_curve(ranking, labels)),
    };
    // (name, ranking, what is compared with the threshold, threshold)
    let mut columns: Vec<(&str, Vec<f32>, Vec<f32>, f32)> =
        vec![("isolation_forest", if_raw, if_pct, cut), ("autoencoder", ae_raw, ae_pct, cut)];
    if scores.iter().all(|s| s.fraud_probability.is_some()) && !scores.is_empty() {
        let p: Vec<f32> = scores.iter().map(|s| s.fraud_probability.unwrap_or(0.0)).collect();
        columns.push(("supervised", p.clone(), p, thresholds.block));
    }
    columns.push(("combined", combined.clone(), combined, thresholds.block));
    Report {
        rows: scores.len(),
        frauds,
        fraud_rate: if scores.is_empty() { 0.0 } else { frauds as f64 / scores.len() as f64 },
        from: window.0,
        to: window.1,
        models: columns.iter().map(|(name, ranking, flag_on, t)| report(name, ranking, flag_on, *t)).collect(),
        scenarios: scenarios.map_or_else(Vec::new, |s| by_scenario(&columns, labels, s)),
    }
}

/// Each scenario's frauds against every genuine row, per model.
fn by_scenario(
    columns: &[(&str, Vec<f32>, Vec<f32>, f32)],
    labels: &[bool],
    scenarios: &[Option<Box<str>>],
) -> Vec<ScenarioReport> {
    let mut names: Vec<&str> =
        scenarios.iter().zip(labels).filter(|(_, l)| **l).map(|(s, _)| s.as_deref().unwrap_or("?")).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let rows: Vec<usize> =
                (0..labels.len()).filter(|&i| !labels[i] || scenarios[i].as_deref().unwrap_or("?") == name).collect();
            let y: Vec<bool> = rows.iter().map(|&i| labels[i]).collect();
            let frauds = y.iter().filter(|&&l| l).count();
            let models = columns
                .iter()
                .map(|(model, ranking, flag_on, threshold)| {
                    let s: Vec<f32> = rows.iter().map(|&i| ranking[i]).collect();
                    let caught = rows.iter().filter(|&&i| labels[i] && flag_on[i] >= *threshold).count();
                    ScenarioModel {
                        model: (*model).to_owned(),
                        roc_auc: metrics::roc_auc(&s, &y),
                        recall_at_block: caught as f64 / frauds.max(1) as f64,
                    }
                })
                .collect();
            ScenarioReport { scenario: name.to_owned(), frauds, models }
        })
        .collect()
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

/// Prints the report as fixed-width tables.
pub fn print_table(report: &Report, mut w: impl Write) -> std::io::Result<()> {
    writeln!(w, "Evaluated {} transactions, {} fraud ({:.2}%)", report.rows, report.frauds, 100.0 * report.fraud_rate)?;
    writeln!(
        w,
        "{:<18} {:>8} {:>8} {:>10} {:>8} {:>8} {:>12} {:>12}",
        "model", "ROC AUC", "AP", "precision", "recall", "F1", "card P@100", "new cards"
    )?;
    for m in &report.models {
        let [auc, ap, p, r, f1, card, unknown] = m.cells();
        writeln!(w, "{:<18} {auc:>8} {ap:>8} {p:>10} {r:>8} {f1:>8} {card:>12} {unknown:>12}", m.model)?;
    }
    writeln!(
        w,
        "(precision, recall and F1 at the block threshold; \"new cards\": card P@100 without cards already known compromised)"
    )?;
    if !report.scenarios.is_empty() {
        writeln!(w, "\nPer fraud scenario (ROC AUC against genuine transactions / recall at the block threshold):")?;
        write!(w, "{:<10} {:>7}", "scenario", "frauds")?;
        for m in &report.scenarios[0].models {
            write!(w, " {:>20}", m.model)?;
        }
        writeln!(w)?;
        for s in &report.scenarios {
            write!(w, "{:<10} {:>7}", s.scenario, s.frauds)?;
            for m in &s.models {
                let auc = m.roc_auc.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
                write!(w, " {:>20}", format!("{auc} / {:.3}", m.recall_at_block))?;
            }
            writeln!(w)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(card: u128, day: i64) -> RowContext {
        RowContext { card, timestamp: day * 86_400 + 10, known_compromised: false }
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
    fn each_scenario_is_ranked_against_the_genuine_rows_only() {
        // Scenario "a" frauds score above every genuine row, scenario "b" frauds below them.
        let scores = vec![0.9, 0.8, 0.5, 0.4, 0.1, 0.2];
        let labels = [true, true, false, false, true, true];
        let scenarios: Vec<Option<Box<str>>> =
            ["a", "a", "0", "0", "b", "b"].iter().map(|s| Some(Box::from(*s))).collect();
        let columns = vec![("m", scores.clone(), scores, 0.85)];
        let r = by_scenario(&columns, &labels, &scenarios);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].scenario.as_str(), r[0].frauds), ("a", 2));
        assert_eq!(r[0].models[0].roc_auc, Some(1.0));
        assert_eq!(r[0].models[0].recall_at_block, 0.5);
        assert_eq!(r[1].models[0].roc_auc, Some(0.0));
        assert_eq!(r[1].models[0].recall_at_block, 0.0);
    }

    #[test]
    fn card_precision_can_leave_known_cards_out() {
        // Card 1 is known compromised: its fraud is the day's top card, so leaving it out
        // leaves card 2 (legit) on top with k = 1.
        let scores = [0.9, 0.5, 0.3];
        let labels = [true, false, true];
        let mut context = [ctx(1, 0), ctx(2, 0), ctx(3, 0)];
        context[0].known_compromised = true;
        assert_eq!(card_precision_per_day(&scores, &labels, &context, 1), Some(1.0));
        let keep: Vec<usize> = (0..3).filter(|&i| !context[i].known_compromised).collect();
        let s: Vec<f32> = keep.iter().map(|&i| scores[i]).collect();
        let l: Vec<bool> = keep.iter().map(|&i| labels[i]).collect();
        let c: Vec<RowContext> = keep.iter().map(|&i| context[i]).collect();
        assert_eq!(card_precision_per_day(&s, &l, &c, 1), Some(0.0));
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
