//! Ranking metrics for binary labels: ROC AUC, average precision, curves and
//! precision/recall at a threshold. Definitions follow scikit-learn's.

use serde::{Deserialize, Serialize};

/// Indices of `scores` sorted by descending score.
fn descending(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    idx
}

/// Cumulative (false positives, true positives) after each block of tied scores, starting
/// from (0, 0). Returns `None` unless both classes are present.
fn operating_points(scores: &[f32], labels: &[bool]) -> Option<Vec<(f64, f64)>> {
    let positives = labels.iter().filter(|&&l| l).count();
    if scores.len() != labels.len() || positives == 0 || positives == labels.len() {
        return None;
    }
    let order = descending(scores);
    let (mut fp, mut tp) = (0f64, 0f64);
    let mut points = vec![(0.0, 0.0)];
    for (k, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            points.push((fp, tp));
        }
    }
    Some(points)
}

/// Area under the ROC curve (ties counted as half), or `None` if only one class is present.
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let points = operating_points(scores, labels)?;
    let &(fp_total, tp_total) = points.last()?;
    let area: f64 = points.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum();
    Some(area / (fp_total * tp_total))
}

/// Average precision: Σ (Rₙ − Rₙ₋₁) Pₙ over score thresholds (scikit-learn's definition,
/// no interpolation), or `None` if only one class is present.
pub fn average_precision(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let points = operating_points(scores, labels)?;
    let tp_total = points.last()?.1;
    Some(
        points
            .windows(2)
            .map(|w| {
                let (fp, tp) = w[1];
                (tp - w[0].1) / tp_total * (tp / (tp + fp))
            })
            .sum(),
    )
}

/// A point on a curve, for plotting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub x: f64,
    pub y: f64,
}

/// ROC curve: (false positive rate, true positive rate) per distinct threshold.
pub fn roc_curve(scores: &[f32], labels: &[bool]) -> Vec<CurvePoint> {
    let Some(points) = operating_points(scores, labels) else {
        return Vec::new();
    };
    let &(fpn, tpn) = points.last().unwrap_or(&(1.0, 1.0));
    points.iter().map(|&(fp, tp)| CurvePoint { x: fp / fpn, y: tp / tpn }).collect()
}

/// Precision–recall curve: (recall, precision) per distinct threshold, highest threshold first.
pub fn pr_curve(scores: &[f32], labels: &[bool]) -> Vec<CurvePoint> {
    let Some(points) = operating_points(scores, labels) else {
        return Vec::new();
    };
    let tpn = points.last().map_or(1.0, |p| p.1);
    points.iter().skip(1).map(|&(fp, tp)| CurvePoint { x: tp / tpn, y: tp / (tp + fp) }).collect()
}

/// Confusion-matrix summary at a threshold (flagged = score ≥ threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdMetrics {
    pub threshold: f32,
    pub flagged: usize,
    pub true_positives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

pub fn at_threshold(scores: &[f32], labels: &[bool], threshold: f32) -> ThresholdMetrics {
    let (mut flagged, mut tp, mut positives) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        let flag = s >= threshold;
        flagged += usize::from(flag);
        tp += usize::from(flag && l);
        positives += usize::from(l);
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, flagged);
    let recall = ratio(tp, positives);
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    ThresholdMetrics { threshold, flagged, true_positives: tp, precision, recall, f1 }
}

/// Share of positives among the `k` highest-scored items (fewer if there are fewer items).
pub fn precision_at_k(scores: &[f32], labels: &[bool], k: usize) -> Option<f64> {
    let order = descending(scores);
    let top = &order[..k.min(order.len())];
    (!top.is_empty()).then(|| top.iter().filter(|&&i| labels[i]).count() as f64 / top.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-computed with scikit-learn:
    // y = [0, 0, 1, 1], s = [0.1, 0.4, 0.35, 0.8]
    // roc_auc_score = 0.75, average_precision_score = 0.8333…
    const S: [f32; 4] = [0.1, 0.4, 0.35, 0.8];
    const Y: [bool; 4] = [false, false, true, true];

    #[test]
    fn roc_auc_matches_hand_computed_case() {
        assert!((roc_auc(&S, &Y).unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn ties_count_half() {
        // All scores equal: AUC = 0.5, AP = prevalence.
        let s = [0.5; 4];
        assert!((roc_auc(&s, &Y).unwrap() - 0.5).abs() < 1e-12);
        assert!((average_precision(&s, &Y).unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn average_precision_matches_hand_computed_case() {
        assert!((average_precision(&S, &Y).unwrap() - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn curves_start_and_end_where_they_should() {
        let roc = roc_curve(&S, &Y);
        assert_eq!(roc.first(), Some(&CurvePoint { x: 0.0, y: 0.0 }));
        assert_eq!(roc.last(), Some(&CurvePoint { x: 1.0, y: 1.0 }));
        let pr = pr_curve(&S, &Y);
        assert_eq!(pr.first(), Some(&CurvePoint { x: 0.5, y: 1.0 }));
        assert_eq!(pr.last(), Some(&CurvePoint { x: 1.0, y: 0.5 }));
    }

    #[test]
    fn threshold_metrics_and_precision_at_k() {
        let m = at_threshold(&S, &Y, 0.35);
        assert_eq!((m.flagged, m.true_positives), (3, 2));
        assert!((m.precision - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.recall, 1.0);
        assert!((m.f1 - 0.8).abs() < 1e-12);
        assert_eq!(precision_at_k(&S, &Y, 1), Some(1.0));
        assert_eq!(precision_at_k(&S, &Y, 2), Some(0.5));
        assert_eq!(precision_at_k(&S, &Y, 100), Some(0.5));
        assert_eq!(precision_at_k(&[], &[], 100), None);
    }
}
