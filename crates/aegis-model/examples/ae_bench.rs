//! Times autoencoder training (30 → 64 → 32 → 15 → 32 → 64 → 30, Adam 1e-3, batch 256,
//! 30 epochs, 10% validation) and single-row inference on a numeric CSV whose last column is a
//! label (ignored). Compare with `benches/ae_pytorch.py` on the same file.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p aegis-model --example ae_bench -- data.csv`

use aegis_model::{AutoencoderParams, Matrix, StandardScaler};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: ae_bench data.csv")?;
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let n_cols = lines.next().ok_or("empty file")?.split(',').count() - 1;
    let mut values = Vec::new();
    for line in lines {
        for f in line.split(',').take(n_cols) {
            values.push(f.parse::<f32>()?);
        }
    }
    let mut data = Matrix::from_vec(values, n_cols)?;
    StandardScaler::fit(&data)?.transform(&mut data)?;

    let t = Instant::now();
    let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42);
    let params = AutoencoderParams::default().patience(30).seed(seed); // all 30 epochs, for timing
    let ae = params.fit(&data)?;
    let train = t.elapsed().as_secs_f64();
    let h = ae.history();

    let mut ws = ae.workspace();
    let mut errors = vec![0f32; n_cols];
    let reps = 200_000;
    let t = Instant::now();
    let mut sink = 0f32;
    for i in 0..reps {
        sink += ae.reconstruction_errors(data.row(i % data.n_rows()), &mut ws, &mut errors)?;
    }
    let per_row_us = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
    println!(
        "aegis  train {} x {} for {} epochs: {train:.1} s, final train loss {:.4}, validation {:.4}; inference {per_row_us:.2} us/row (checksum {sink:.0})",
        data.n_rows(),
        n_cols,
        h.train_loss.len(),
        h.train_loss.last().copied().unwrap_or(f32::NAN),
        h.validation_loss.last().copied().unwrap_or(f32::NAN),
    );
    Ok(())
}
