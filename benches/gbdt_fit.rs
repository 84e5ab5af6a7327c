//! Fits the supervised GBDT on inputs exported by `aegis train --export-supervised DIR`
//! (fit.csv with weights, valid.csv, holdout.csv) and reports fit time, trees and holdout ROC
//! AUC / AP: the Aegis side of `benches/external/reference.py DIR`, on exactly the same rows.
//!
//! `AEGIS_GBDT_DIR=exp cargo bench --bench gbdt_fit`

use aegis_model::metrics::{average_precision, roc_auc};
use aegis_model::{GbdtParams, Matrix};
use std::time::Instant;

/// (features, labels, weights) from one exported CSV.
fn load(path: &std::path::Path) -> (Matrix, Vec<bool>, Option<Vec<f32>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let weighted = header.last() == Some(&"weight");
    let n_features = header.len() - 1 - usize::from(weighted);
    let (mut data, mut labels, mut weights) = (Vec::new(), Vec::new(), Vec::new());
    for line in lines {
        let values: Vec<f32> = line.split(',').map(|v| v.parse().expect("a number")).collect();
        data.extend_from_slice(&values[..n_features]);
        labels.push(values[n_features] > 0.5);
        if weighted {
            weights.push(values[n_features + 1]);
        }
    }
    (Matrix::from_vec(data, n_features).expect("rectangular"), labels, weighted.then_some(weights))
}

fn main() {
    let Some(dir) = std::env::var_os("AEGIS_GBDT_DIR") else {
        eprintln!("set AEGIS_GBDT_DIR to a directory written by `aegis train --export-supervised`");
        return;
    };
    let dir = std::path::Path::new(&dir);
    let (x, y, w) = load(&dir.join("fit.csv"));
    let (vx, vy, _) = load(&dir.join("valid.csv"));
    let (hx, hy, _) = load(&dir.join("holdout.csv"));
    for run in 1..=3 {
        let started = Instant::now();
        let model = GbdtParams::default().fit(&x, &y, w.as_deref(), Some((&vx, &vy))).expect("fits");
        let secs = started.elapsed().as_secs_f64();
        let p = model.predict_batch(&hx).expect("scores");
        println!(
            "run {run}: fit {secs:.2} s, {} trees; holdout ROC AUC {:.4} AP {:.4}",
            model.n_trees(),
            roc_auc(&p, &hy).unwrap_or(f64::NAN),
            average_precision(&p, &hy).unwrap_or(f64::NAN)
        );
    }
}
