//! Times the Isolation Forest on a numeric CSV whose last column is a 0/1 label, and prints
//! fit time, batch and single-row scoring speed and ROC AUC. Used by
//! `benches/iforest_vs_sklearn.sh` to compare against scikit-learn on the same file.
//!
//! `cargo run --release -p aegis-model --example iforest_bench -- data.csv [seed] [scores.txt]`

use aegis_model::{IsolationForestParams, Matrix, metrics};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: iforest_bench data.csv [seed] [scores-out]")?;
    let seed: u64 = args.next().map_or(Ok(0), |s| s.parse())?;
    let scores_out = args.next();
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let n_cols = lines.next().ok_or("empty file")?.split(',').count();
    let (mut values, mut labels) = (Vec::new(), Vec::new());
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        for f in &fields[..n_cols - 1] {
            values.push(f.parse::<f32>()?);
        }
        labels.push(fields[n_cols - 1].trim() == "1");
    }
    let data = Matrix::from_vec(values, n_cols - 1)?;

    let t = Instant::now();
    let forest = IsolationForestParams::default().seed(seed).fit(&data)?;
    let fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let scores = forest.score_batch(&data)?;
    let batch = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reps = 2_000;
    let mut sink = 0f32;
    for i in 0..reps {
        sink += forest.score(data.row(i % data.n_rows()))?;
    }
    let single_us = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
    let auc = metrics::roc_auc(&scores, &labels).unwrap_or(f64::NAN);
    println!(
        "aegis  fit {fit:.3} s  score {} rows {batch:.3} s ({:.0} rows/s, {} threads)  one row {single_us:.1} us  ROC AUC {auc:.4}  (checksum {sink:.1})",
        data.n_rows(),
        data.n_rows() as f64 / batch,
        rayon::current_num_threads()
    );
    if let Some(out) = scores_out {
        let text: String = scores.iter().map(|s| format!("{s}\n")).collect();
        std::fs::write(out, text)?;
    }
    Ok(())
}
