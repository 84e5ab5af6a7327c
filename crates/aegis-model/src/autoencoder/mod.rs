//! Dense autoencoder: input → 64 → 32 → bottleneck → 32 → 64 → input, ReLU, linear output.
//!
//! Training is hand-written backpropagation with Adam (see [`train`]); scoring is a plain forward
//! pass over flat `f32` weights, because framework overhead dominates a ~9k-MAC model (measured:
//! 3.5–5 µs/row hand-written vs 20 µs candle and 32–40 µs burn, `shared/ml-notes.md`).
//! The per-feature squared reconstruction errors are kept: they explain a score.

mod train;

pub use train::EpochEnd;

use crate::{Matrix, ModelError, Result, invalid_param};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Hyper-parameters. Inputs are expected to be standardised (see [`crate::StandardScaler`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderParams {
    /// Encoder widths before the bottleneck; the decoder mirrors them (default `[64, 32]`).
    pub hidden: Vec<usize>,
    /// Bottleneck width; `None` means min(16, max(1, d/2)).
    pub bottleneck: Option<usize>,
    /// Adam learning rate (default 1e-3).
    pub learning_rate: f64,
    /// Mini-batch size (default 256).
    pub batch_size: usize,
    /// Maximum epochs (default 30).
    pub max_epochs: usize,
    /// Stop after this many epochs without validation improvement (default 5).
    pub patience: usize,
    /// Share of rows held out for early stopping (default 0.1).
    pub validation_fraction: f64,
    /// Seed for weight initialisation, the split and shuffling.
    pub seed: u64,
}

impl Default for AutoencoderParams {
    fn default() -> Self {
        Self {
            hidden: vec![64, 32],
            bottleneck: None,
            learning_rate: 1e-3,
            batch_size: 256,
            max_epochs: 30,
            patience: 5,
            validation_fraction: 0.1,
            seed: 42,
        }
    }
}

impl AutoencoderParams {
    pub fn max_epochs(mut self, n: usize) -> Self {
        self.max_epochs = n;
        self
    }
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    pub fn learning_rate(mut self, lr: f64) -> Self {
        self.learning_rate = lr;
        self
    }
    pub fn patience(mut self, n: usize) -> Self {
        self.patience = n;
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.iter().any(|&w| w == 0 || w > 4096) {
            return Err(invalid_param("hidden", "needs 1+ widths between 1 and 4096"));
        }
        if self.bottleneck.is_some_and(|b| b == 0 || b > 4096) {
            return Err(invalid_param("bottleneck", "must be between 1 and 4096"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate < 1.0) {
            return Err(invalid_param("learning_rate", "must be in (0, 1)"));
        }
        if self.batch_size == 0 || self.max_epochs == 0 {
            return Err(invalid_param("batch_size/max_epochs", "must be positive"));
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return Err(invalid_param("validation_fraction", "must be in [0, 0.9)"));
        }
        Ok(())
    }

    /// Layer widths from input to output for `d` features.
    fn widths(&self, d: usize) -> Vec<usize> {
        let b = self.bottleneck.unwrap_or_else(|| (d / 2).clamp(1, 16));
        let mut w = vec![d];
        w.extend(&self.hidden);
        w.push(b);
        w.extend(self.hidden.iter().rev());
        w.push(d);
        w
    }
}

/// Loss per epoch and where training stopped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainingHistory {
    pub train_loss: Vec<f32>,
    pub validation_loss: Vec<f32>,
    /// Epoch (0-based) whose weights were kept: the best validation loss.
    pub best_epoch: usize,
    pub stopped_early: bool,
}

/// One dense layer; `weights` is `outputs × inputs`, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Dense {
    inputs: usize,
    outputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    relu: bool,
}

impl Dense {
    #[inline]
    fn forward(&self, x: &[f32], y: &mut [f32]) {
        for (j, out) in y.iter_mut().enumerate().take(self.outputs) {
            let w = &self.weights[j * self.inputs..(j + 1) * self.inputs];
            let v = self.bias[j] + dot(w, x);
            *out = if self.relu { v.max(0.0) } else { v };
        }
    }
}

/// Dot product with 8 independent accumulators so the compiler can vectorise it
/// (a single f32 accumulator forces sequential adds).
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A trained autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Autoencoder {
    layers: Vec<Dense>,
    params: AutoencoderParams,
    history: TrainingHistory,
}

/// Scratch buffers for [`Autoencoder::reconstruction_errors`], reused across rows so scoring
/// does not allocate. Make one per thread with [`Autoencoder::workspace`].
#[derive(Debug, Clone)]
pub struct Workspace {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Autoencoder {
    pub fn n_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    pub fn params(&self) -> &AutoencoderParams {
        &self.params
    }

    pub fn history(&self) -> &TrainingHistory {
        &self.history
    }

    /// Layer widths, input to output.
    pub fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.layers.iter().map(|l| l.inputs).collect();
        w.extend(self.layers.last().map(|l| l.outputs));
        w
    }

    pub fn workspace(&self) -> Workspace {
        let max = self.layers.iter().map(|l| l.outputs.max(l.inputs)).max().unwrap_or(0);
        Workspace { a: vec![0.0; max], b: vec![0.0; max] }
    }

    /// Reconstructs a standardised `row`, writes each feature's squared error into `errors`
    /// and returns their mean (the MSE, this model's anomaly score).
    pub fn reconstruction_errors(&self, row: &[f32], ws: &mut Workspace, errors: &mut [f32]) -> Result<f32> {
        let d = self.n_features();
        if row.len() != d || errors.len() != d {
            return Err(ModelError::FeatureCount { expected: d, got: row.len() });
        }
        if ws.a.len() < self.layers.iter().map(|l| l.outputs.max(l.inputs)).max().unwrap_or(0) {
            *ws = self.workspace();
        }
        let (mut cur, mut next) = (&mut ws.a, &mut ws.b);
        cur[..d].copy_from_slice(row);
        for layer in &self.layers {
            layer.forward(&cur[..layer.inputs], &mut next[..layer.outputs]);
            std::mem::swap(&mut cur, &mut next);
        }
        let mut sum = 0f32;
        for ((e, x), r) in errors.iter_mut().zip(row).zip(&cur[..d]) {
            *e = (x - r) * (x - r);
            sum += *e;
        }
        Ok(sum / d as f32)
    }

    /// The reconstruction MSE of one standardised row (allocates; prefer
    /// [`Autoencoder::reconstruction_errors`] on hot paths).
    pub fn score(&self, row: &[f32]) -> Result<f32> {
        let mut errors = vec![0.0; self.n_features()];
        self.reconstruction_errors(row, &mut self.workspace(), &mut errors)
    }

    /// Reconstruction MSE of every row, in parallel, in row order.
    pub fn score_batch(&self, data: &Matrix) -> Result<Vec<f32>> {
        let d = self.n_features();
        if data.n_cols() != d {
            return Err(ModelError::FeatureCount { expected: d, got: data.n_cols() });
        }
        data.as_slice()
            .par_chunks(1024 * d)
            .map(|rows| {
                let mut ws = self.workspace();
                let mut errors = vec![0.0; d];
                rows.chunks_exact(d)
                    .map(|r| self.reconstruction_errors(r, &mut ws, &mut errors))
                    .collect::<Result<Vec<f32>>>()
            })
            .collect::<Result<Vec<Vec<f32>>>>()
            .map(|chunks| chunks.concat())
    }

    /// Checks the shapes of a deserialised model so that scoring cannot index out of bounds.
    pub fn validate(&self) -> Result<()> {
        let corrupt = |m: &str| Err(ModelError::Corrupt(format!("autoencoder: {m}")));
        if self.layers.len() < 2 {
            return corrupt("fewer than two layers");
        }
        for pair in self.layers.windows(2) {
            if pair[0].outputs != pair[1].inputs {
                return corrupt("layer widths do not chain");
            }
        }
        for l in &self.layers {
            if l.weights.len() != l.inputs * l.outputs || l.bias.len() != l.outputs {
                return corrupt("a weight matrix has the wrong size");
            }
            if l.weights.iter().chain(&l.bias).any(|v| !v.is_finite()) {
                return corrupt("non-finite weights");
            }
        }
        if self.layers.last().map(|l| l.outputs) != Some(self.n_features()) {
            return corrupt("output width differs from input width");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
