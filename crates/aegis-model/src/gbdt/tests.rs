use super::*;
use crate::Matrix;
use crate::metrics::roc_auc;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Rows of 6 uniform features; fraud iff (x0 > 0.8 and x1 < 0.3) or x2 > 0.97, with 1% label noise.
fn planted(n: usize, seed: u64) -> (Matrix, Vec<bool>) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut m = Matrix::with_cols(6);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f32> = (0..6).map(|_| rng.random::<f32>()).collect();
        let rule = (row[0] > 0.8 && row[1] < 0.3) || row[2] > 0.97;
        labels.push(rule != (rng.random::<f64>() < 0.01));
        m.push_row(&row).unwrap();
    }
    (m, labels)
}

fn small() -> GbdtParams {
    GbdtParams::default().max_trees(60)
}

#[test]
fn learns_a_planted_rule() {
    let (x, y) = planted(20_000, 1);
    let (vx, vy) = planted(5_000, 2);
    let (tx, ty) = planted(10_000, 3);
    let model = small().fit(&x, &y, None, Some((&vx, &vy))).unwrap();
    let p = model.predict_batch(&tx).unwrap();
    let auc = roc_auc(&p, &ty).unwrap();
    // 1% label noise caps the AUC near 0.955 (a noisy positive ranks at chance).
    assert!(auc > 0.93, "AUC {auc}");
    // The rule's features carry the importance; the noise features almost none.
    let imp = model.importance();
    assert!(imp[0] + imp[1] + imp[2] > 0.9, "{imp:?}");
    // A clear positive and a clear negative.
    assert!(model.predict(&[0.9, 0.1, 0.5, 0.5, 0.5, 0.5]).unwrap() > 0.8);
    assert!(model.predict(&[0.1, 0.9, 0.5, 0.5, 0.5, 0.5]).unwrap() < 0.05);
}

#[test]
fn deterministic_for_a_seed_and_single_rows_match_batches() {
    let (x, y) = planted(5_000, 4);
    let a = small().fit(&x, &y, None, None).unwrap();
    let b = small().fit(&x, &y, None, None).unwrap();
    assert_eq!(a, b);
    let batch = a.predict_batch(&x).unwrap();
    for (i, want) in batch.iter().enumerate().take(500) {
        assert_eq!(a.predict(x.row(i)).unwrap(), *want);
    }
}

#[test]
fn early_stopping_keeps_the_best_round() {
    let (x, y) = planted(3_000, 5);
    let (vx, vy) = planted(2_000, 6);
    let model = GbdtParams::default().max_trees(400).fit(&x, &y, None, Some((&vx, &vy))).unwrap();
    let losses = model.validation_loss();
    assert!(model.n_trees() < 400, "should stop early");
    let best = losses.iter().copied().fold(f32::INFINITY, f32::min);
    assert_eq!(losses[model.n_trees() - 1], best);
}

#[test]
fn contributions_add_up_to_the_raw_score_and_name_the_rule() {
    let (x, y) = planted(10_000, 7);
    let model = small().fit(&x, &y, None, None).unwrap();
    let row = [0.95, 0.05, 0.5, 0.4, 0.6, 0.5];
    let mut c = [0f32; 6];
    let bias = model.contributions(&row, &mut c).unwrap();
    let total = bias + c.iter().sum::<f32>();
    assert!((total - model.raw_score(&row).unwrap()).abs() < 1e-3, "{total}");
    let top = (0..6).max_by(|&a, &b| c[a].total_cmp(&c[b])).unwrap();
    assert!(top == 0 || top == 1, "{c:?}");
}

#[test]
fn weights_stand_in_for_dropped_rows() {
    // Negatives kept at 1 in 4 with weight 4 give about the same probabilities as all rows.
    let (x, y) = planted(20_000, 8);
    let full = small().fit(&x, &y, None, None).unwrap();
    let keep: Vec<usize> = (0..x.n_rows()).filter(|&i| y[i] || i % 4 == 0).collect();
    let xs = x.select_rows(&keep);
    let ys: Vec<bool> = keep.iter().map(|&i| y[i]).collect();
    let ws: Vec<f32> = ys.iter().map(|&l| if l { 1.0 } else { 4.0 }).collect();
    let sampled = small().fit(&xs, &ys, Some(&ws), None).unwrap();
    let mean = |m: &Gbdt| m.predict_batch(&x).unwrap().iter().map(|&p| f64::from(p)).sum::<f64>() / x.n_rows() as f64;
    let base = y.iter().filter(|&&l| l).count() as f64 / y.len() as f64;
    assert!((mean(&full) - base).abs() < 0.01);
    assert!((mean(&sampled) - base).abs() < 0.02, "{} vs {base}", mean(&sampled));
}

#[test]
fn serde_round_trip_and_corrupt_files_are_refused() {
    let (x, y) = planted(3_000, 9);
    let model = small().fit(&x, &y, None, None).unwrap();
    let json = serde_json::to_string(&model).unwrap();
    let back: Gbdt = serde_json::from_str(&json).unwrap();
    assert_eq!(back, model);
    back.validate().unwrap();

    let mut bad = model.clone();
    let inner = bad.nodes.iter().position(|n| n.feature != LEAF).unwrap();
    bad.nodes[inner].left = inner as u32; // a loop
    assert!(bad.validate().is_err());
    let mut bad = model.clone();
    bad.nodes[inner].feature = 6; // no such feature
    assert!(bad.validate().is_err());
    let mut bad = model.clone();
    bad.roots.push(u32::MAX);
    assert!(bad.validate().is_err());
    let mut bad = model;
    bad.nodes[0].value = f32::NAN;
    assert!(bad.validate().is_err());
}

#[test]
fn refuses_bad_input() {
    let (x, y) = planted(100, 10);
    assert!(small().fit(&x, &[false; 100], None, None).is_err(), "one class only");
    assert!(small().fit(&x, &y[..50], None, None).is_err());
    assert!(GbdtParams::default().learning_rate(0.0).fit(&x, &y, None, None).is_err());
    let model = small().fit(&x, &y, None, None).unwrap();
    assert!(model.predict(&[0.0; 5]).is_err());
}
