//! Training with candle: Adam on MSE, mini-batches, early stopping on a validation split.
//!
//! candle's CPU RNG cannot be seeded, so weights are initialised here from our own seeded RNG
//! (PyTorch's default: U(−1/√fan_in, 1/√fan_in) for weights and biases), which makes training
//! reproducible for a given seed.

use super::{Autoencoder, AutoencoderParams, Dense, TrainingHistory};
use crate::{Matrix, ModelError, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_pcg::Pcg64Mcg;

impl AutoencoderParams {
    /// Trains on `data`, which should already be standardised. Keeps the weights of the epoch
    /// with the lowest validation loss (training loss when there are too few rows to hold out).
    pub fn fit(&self, data: &Matrix) -> Result<Autoencoder> {
        self.fit_with_progress(data, |_| {})
    }

    /// [`AutoencoderParams::fit`], calling `on_epoch` after every epoch (for progress display).
    pub fn fit_with_progress(&self, data: &Matrix, mut on_epoch: impl FnMut(&EpochEnd)) -> Result<Autoencoder> {
        self.check()?;
        data.check_trainable()?;
        let widths = self.widths(data.n_cols());
        let mut rng = Pcg64Mcg::seed_from_u64(self.seed);

        let mut order: Vec<usize> = (0..data.n_rows()).collect();
        order.shuffle(&mut rng);
        let n_val = (data.n_rows() as f64 * self.validation_fraction) as usize;
        let n_val = if data.n_rows() - n_val < 2 { 0 } else { n_val };
        let (val_idx, train_idx) = order.split_at(n_val);

        let dev = Device::Cpu;
        let to_tensor = |m: Matrix| Tensor::from_vec(m.as_slice().to_vec(), (m.n_rows(), m.n_cols()), &dev);
        let x_train = to_tensor(data.select_rows(train_idx))?;
        let x_val = (n_val > 0).then(|| to_tensor(data.select_rows(val_idx))).transpose()?;

        let vars = init_vars(&widths, &mut rng, &dev)?;
        let mut opt = AdamW::new(
            vars.iter().flat_map(|(w, b)| [w.clone(), b.clone()]).collect(),
            ParamsAdamW {
                lr: self.learning_rate,
                weight_decay: 0.0, // plain Adam
                ..ParamsAdamW::default()
            },
        )?;

        let n_train = train_idx.len();
        let mut perm: Vec<u32> = (0..n_train as u32).collect();
        let mut history = TrainingHistory::default();
        let mut best = (f32::INFINITY, snapshot(&vars)?);
        for epoch in 0..self.max_epochs {
            perm.shuffle(&mut rng);
            let shuffled = x_train.index_select(&Tensor::from_slice(&perm, n_train, &dev)?, 0)?;
            let mut loss_sum = 0f64;
            for start in (0..n_train).step_by(self.batch_size) {
                let len = self.batch_size.min(n_train - start);
                let xb = shuffled.narrow(0, start, len)?;
                let loss = mse(&forward(&vars, &xb)?, &xb)?;
                opt.backward_step(&loss)?;
                loss_sum += f64::from(loss.to_scalar::<f32>()?) * len as f64;
            }
            let train_loss = (loss_sum / n_train as f64) as f32;
            history.train_loss.push(train_loss);
            let monitored = match &x_val {
                Some(xv) => {
                    let v = mse(&forward(&vars, xv)?, xv)?.to_scalar::<f32>()?;
                    history.validation_loss.push(v);
                    v
                }
                None => train_loss,
            };
            on_epoch(&EpochEnd { epoch, max_epochs: self.max_epochs, train_loss, monitored_loss: monitored });
            if !monitored.is_finite() {
                return Err(ModelError::InvalidData(format!(
                    "training diverged at epoch {epoch} (loss {monitored}); are the features standardised?"
                )));
            }
            if monitored < best.0 {
                best = (monitored, snapshot(&vars)?);
                history.best_epoch = epoch;
            } else if epoch - history.best_epoch >= self.patience {
                history.stopped_early = true;
                break;
            }
        }
        Ok(Autoencoder { layers: to_dense(&widths, best.1), params: self.clone(), history })
    }
}

/// Reported after each training epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochEnd {
    pub epoch: usize,
    pub max_epochs: usize,
    pub train_loss: f32,
    /// Validation loss (training loss when nothing was held out).
    pub monitored_loss: f32,
}

type Layer = (Var, Var);

fn init_vars(widths: &[usize], rng: &mut Pcg64Mcg, dev: &Device) -> Result<Vec<Layer>> {
    widths
        .windows(2)
        .map(|w| {
            let (fan_in, fan_out) = (w[0], w[1]);
            let k = 1.0 / (fan_in as f32).sqrt();
            let mut uniform = |n: usize| (0..n).map(|_| rng.random_range(-k..k)).collect::<Vec<f32>>();
            let weight = Var::from_tensor(&Tensor::from_vec(uniform(fan_in * fan_out), (fan_in, fan_out), dev)?)?;
            let bias = Var::from_tensor(&Tensor::from_vec(uniform(fan_out), fan_out, dev)?)?;
            Ok((weight, bias))
        })
        .collect()
}

fn forward(vars: &[Layer], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (i, (w, b)) in vars.iter().enumerate() {
        h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
        if i + 1 < vars.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

fn mse(out: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    out.sub(target)?.sqr()?.mean_all()?.to_dtype(DType::F32)
}

/// Weights as plain vectors: each layer's `(in × out)` weight matrix and its bias.
fn snapshot(vars: &[Layer]) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    vars.iter()
        .map(|(w, b)| Ok((w.as_tensor().flatten_all()?.to_vec1::<f32>()?, b.as_tensor().to_vec1::<f32>()?)))
        .collect()
}

/// Converts candle's `(in × out)` weights to row-per-output layers for the forward pass.
fn to_dense(widths: &[usize], weights: Vec<(Vec<f32>, Vec<f32>)>) -> Vec<Dense> {
    let n_layers = weights.len();
    weights
        .into_iter()
        .zip(widths.windows(2))
        .enumerate()
        .map(|(i, ((w, bias), io))| {
            let (inputs, outputs) = (io[0], io[1]);
            let mut t = vec![0f32; inputs * outputs];
            for r in 0..inputs {
                for c in 0..outputs {
                    t[c * inputs + r] = w[r * outputs + c];
                }
            }
            Dense { inputs, outputs, weights: t, bias, relu: i + 1 < n_layers }
        })
        .collect()
}
