//! Training: Adam on the mean squared reconstruction error, mini-batches, early stopping on a
//! validation split — hand-written backpropagation for the dense layers.
//!
//! Measured reason (BENCHMARKS.md): candle trained this one small MLP, but split each
//! (batch × 64) product across rayon's threads, which on two cores cost more system time than
//! it saved (50k × 39, 30 epochs: 12.4 s with 7.4 s of system time by default, 5.3 s on one
//! thread), and it brought ~130 crates into the build. Here the three products per layer are
//! plain row-major loops whose inner loop runs over contiguous memory, on one thread, in a
//! fixed order: training is reproducible for a seed. Weights start as PyTorch's default,
//! U(−1/√fan_in, 1/√fan_in), from our seeded RNG; Adam is PyTorch's (β = 0.9, 0.999, ε = 1e-8).

use super::{Autoencoder, AutoencoderParams, Dense, TrainingHistory};
use crate::{Matrix, ModelError, Result};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_pcg::Pcg64Mcg;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;

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
        let x_train = data.select_rows(train_idx);
        let x_val = (n_val > 0).then(|| data.select_rows(val_idx));

        let mut net = Net::init(&widths, &mut rng, self.batch_size);
        let mut adam = Adam::new(&net, self.learning_rate as f32);
        let d = data.n_cols();
        let n_train = x_train.n_rows();
        let mut perm: Vec<usize> = (0..n_train).collect();
        let mut batch = vec![0f32; self.batch_size * d];
        let mut history = TrainingHistory::default();
        let mut best = (f32::INFINITY, net.snapshot());
        for epoch in 0..self.max_epochs {
            perm.shuffle(&mut rng);
            let mut loss_sum = 0f64;
            for rows in perm.chunks(self.batch_size) {
                for (k, &r) in rows.iter().enumerate() {
                    batch[k * d..(k + 1) * d].copy_from_slice(x_train.row(r));
                }
                let loss = net.forward_backward(&batch[..rows.len() * d], rows.len());
                adam.step(&mut net);
                loss_sum += f64::from(loss) * rows.len() as f64;
            }
            let train_loss = (loss_sum / n_train as f64) as f32;
            history.train_loss.push(train_loss);
            let monitored = match &x_val {
                Some(xv) => {
                    let v = net.mean_loss(xv);
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
                best = (monitored, net.snapshot());
                history.best_epoch = epoch;
            } else if epoch - history.best_epoch >= self.patience {
                history.stopped_early = true;
                break;
            }
        }
        Ok(Autoencoder { layers: to_dense(&widths, best.1), params: self.clone(), history })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochEnd {
    pub epoch: usize,
    pub max_epochs: usize,
    pub train_loss: f32,
    /// Validation loss (training loss when nothing was held out).
    pub monitored_loss: f32,
}

/// The trained parameters: per layer `w` (`inputs × outputs`, row-major: row k holds input k's
/// weights) and `b`.
#[derive(Debug, Clone)]
struct Params {
    widths: Vec<usize>,
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
}

/// One thread's share of a batch: activations, gradients and its part of the parameter
/// gradients.
#[derive(Debug, Clone)]
struct Worker {
    /// Per layer, the output for the rows (after ReLU on hidden layers), `rows × outputs`.
    out: Vec<Vec<f32>>,
    /// Per layer, the loss gradient with respect to that output, then to its pre-activation.
    grad: Vec<Vec<f32>>,
    dw: Vec<Vec<f32>>,
    db: Vec<Vec<f32>>,
    /// Sum of squared errors of the last forward pass.
    sse: f64,
}

/// Rows below which a batch is not split between two threads.
const SPLIT_ROWS: usize = 64;

#[derive(Debug, Clone)]
struct Net {
    params: Params,
    workers: [Worker; 2],
}

impl Params {
    fn layers(&self) -> usize {
        self.w.len()
    }

    fn io(&self, l: usize) -> (usize, usize) {
        (self.widths[l], self.widths[l + 1])
    }
}

impl Worker {
    fn new(p: &Params, rows: usize) -> Self {
        let sized = |f: &dyn Fn(usize) -> usize| (0..p.layers()).map(|l| vec![0f32; f(l)]).collect::<Vec<_>>();
        Self {
            out: sized(&|l| rows * p.widths[l + 1]),
            grad: sized(&|l| rows * p.widths[l + 1]),
            dw: sized(&|l| p.widths[l] * p.widths[l + 1]),
            db: sized(&|l| p.widths[l + 1]),
            sse: 0.0,
        }
    }

    /// Forward pass over the `n` rows of `x`; keeps every layer's output and the squared error.
    fn forward(&mut self, p: &Params, x: &[f32], n: usize) {
        for l in 0..p.layers() {
            let (ins, outs) = p.io(l);
            let (before, rest) = self.out.split_at_mut(l);
            let input = before.last().map_or(x, |o| &o[..n * ins]);
            let z_all = &mut rest[0];
            let relu = l + 1 < p.layers();
            for r in 0..n {
                let z = &mut z_all[r * outs..(r + 1) * outs];
                z.copy_from_slice(&p.b[l]);
                for (k, &a) in input[r * ins..(r + 1) * ins].iter().enumerate() {
                    for (zj, &wj) in z.iter_mut().zip(&p.w[l][k * outs..(k + 1) * outs]) {
                        *zj += a * wj;
                    }
                }
                if relu {
                    for v in z.iter_mut() {
                        *v = v.max(0.0);
                    }
                }
            }
        }
        let last = self.out.last().map_or(&[][..], |o| &o[..x.len()]);
        self.sse = last.iter().zip(x).map(|(&o, &t)| f64::from(o - t) * f64::from(o - t)).sum();
    }

    /// Gradients of `scale × SSE` of the last forward pass into `dw`/`db` (scale = 2 / entries
    /// of the whole batch, so the workers' parts add up to the batch's mean-squared-error gradient).
    fn backward(&mut self, p: &Params, x: &[f32], n: usize, scale: f32) {
        let top = p.layers() - 1;
        for ((g, &o), &t) in self.grad[top][..x.len()].iter_mut().zip(&self.out[top][..x.len()]).zip(x) {
            *g = scale * (o - t);
        }
        for l in (0..p.layers()).rev() {
            let (ins, outs) = p.io(l);
            if l < top {
                // ReLU's gradient: zero where the output was clamped.
                for (g, &o) in self.grad[l][..n * outs].iter_mut().zip(&self.out[l][..n * outs]) {
                    if o <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            let input = if l == 0 { x } else { &self.out[l - 1][..n * ins] };
            let (dw, db, grad) = (&mut self.dw[l], &mut self.db[l], &self.grad[l]);
            dw.fill(0.0);
            db.fill(0.0);
            for r in 0..n {
                let g = &grad[r * outs..(r + 1) * outs];
                for (dbj, &gj) in db.iter_mut().zip(g) {
                    *dbj += gj;
                }
                for (k, &a) in input[r * ins..(r + 1) * ins].iter().enumerate() {
                    for (dwj, &gj) in dw[k * outs..(k + 1) * outs].iter_mut().zip(g) {
                        *dwj += a * gj;
                    }
                }
            }
            if l > 0 {
                // The gradient for the layer below: grad · Wᵀ.
                let (below, here) = self.grad.split_at_mut(l);
                let (back, g_all) = (&mut below[l - 1], &here[0]);
                for r in 0..n {
                    let g = &g_all[r * outs..(r + 1) * outs];
                    for k in 0..ins {
                        back[r * ins + k] =
                            p.w[l][k * outs..(k + 1) * outs].iter().zip(g).map(|(&w, &gj)| w * gj).sum();
                    }
                }
            }
        }
    }
}

impl Net {
    fn init(widths: &[usize], rng: &mut Pcg64Mcg, batch: usize) -> Self {
        let (mut w, mut b) = (Vec::new(), Vec::new());
        for io in widths.windows(2) {
            let (inputs, outputs) = (io[0], io[1]);
            let k = 1.0 / (inputs as f32).sqrt();
            w.push((0..inputs * outputs).map(|_| rng.random_range(-k..k)).collect());
            b.push((0..outputs).map(|_| rng.random_range(-k..k)).collect());
        }
        let params = Params { widths: widths.to_vec(), w, b };
        let workers = [Worker::new(&params, batch), Worker::new(&params, batch)];
        Self { params, workers }
    }

    /// One training step's forward and backward pass over `n` rows of `x`: the batch's mean
    /// squared error, with its gradient left in the first worker. Large batches are split
    /// between two threads at a fixed row, and their gradients added in a fixed order, so the
    /// result does not depend on scheduling.
    fn forward_backward(&mut self, x: &[f32], n: usize) -> f32 {
        let d = x.len() / n.max(1);
        let scale = 2.0 / (n * d) as f32;
        let p = &self.params;
        let [first, second] = &mut self.workers;
        if n < SPLIT_ROWS {
            first.forward(p, x, n);
            first.backward(p, x, n, scale);
            return (first.sse / (n * d) as f64) as f32;
        }
        let half = n / 2;
        let (xa, xb) = x.split_at(half * d);
        rayon::join(
            || {
                first.forward(p, xa, half);
                first.backward(p, xa, half, scale);
            },
            || {
                second.forward(p, xb, n - half);
                second.backward(p, xb, n - half, scale);
            },
        );
        for l in 0..p.layers() {
            for (a, b) in first.dw[l].iter_mut().zip(&second.dw[l]) {
                *a += b;
            }
            for (a, b) in first.db[l].iter_mut().zip(&second.db[l]) {
                *a += b;
            }
        }
        ((first.sse + second.sse) / (n * d) as f64) as f32
    }

    /// Mean squared error over every row of `data`, in batches.
    fn mean_loss(&mut self, data: &Matrix) -> f32 {
        let d = data.n_cols();
        let batch = self.workers[0].out[0].len() / self.params.widths[1].max(1);
        let mut sum = 0f64;
        for chunk in data.as_slice().chunks(batch.max(1) * d) {
            self.workers[0].forward(&self.params, chunk, chunk.len() / d);
            sum += self.workers[0].sse;
        }
        (sum / (data.n_rows() * d).max(1) as f64) as f32
    }

    fn snapshot(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.params.w.iter().cloned().zip(self.params.b.iter().cloned()).collect()
    }
}

/// Adam's moment estimates, one pair per parameter.
#[derive(Debug)]
struct Adam {
    lr: f32,
    t: i32,
    moments: Vec<[Vec<f32>; 4]>,
}

impl Adam {
    fn new(net: &Net, lr: f32) -> Self {
        let p = &net.params;
        let moments = (0..p.layers())
            .map(|l| {
                [vec![0.0; p.w[l].len()], vec![0.0; p.w[l].len()], vec![0.0; p.b[l].len()], vec![0.0; p.b[l].len()]]
            })
            .collect();
        Self { lr, t: 0, moments }
    }

    /// One update from the gradients the last `forward_backward` left in the first worker.
    fn step(&mut self, net: &mut Net) {
        self.t += 1;
        let (c1, c2) = (1.0 - BETA1.powi(self.t), 1.0 - BETA2.powi(self.t));
        let lr = self.lr;
        let update = |p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
            for i in 0..p.len() {
                m[i] = BETA1 * m[i] + (1.0 - BETA1) * g[i];
                v[i] = BETA2 * v[i] + (1.0 - BETA2) * g[i] * g[i];
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + EPS);
            }
        };
        let (params, grads) = (&mut net.params, &net.workers[0]);
        for (l, [mw, vw, mb, vb]) in self.moments.iter_mut().enumerate() {
            update(&mut params.w[l], &grads.dw[l], mw, vw);
            update(&mut params.b[l], &grads.db[l], mb, vb);
        }
    }
}

/// Converts trained `(in × out)` weights to row-per-output layers for the forward pass.
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

#[cfg(test)]
mod gradient_check {
    use super::*;

    /// Backpropagated gradients equal finite differences of the loss, for every weight and bias,
    /// whether the batch is split between two workers or not.
    #[test]
    fn backward_matches_finite_differences() {
        for n in [6, 2 * SPLIT_ROWS + 3] {
            let mut rng = Pcg64Mcg::seed_from_u64(5);
            let widths = [5, 4, 3, 4, 5];
            let x: Vec<f32> = (0..n * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut net = Net::init(&widths, &mut rng, n);
            net.forward_backward(&x, n);
            let analytic: Vec<(Vec<f32>, Vec<f32>)> =
                net.workers[0].dw.iter().cloned().zip(net.workers[0].db.iter().cloned()).collect();
            let h = 1e-2f32;
            let loss = |net: &mut Net| f64::from(net.forward_backward(&x, n));
            let mut worst = 0f64;
            for (l, (dw, db)) in analytic.iter().enumerate() {
                for (i, &want) in dw.iter().enumerate() {
                    let w0 = net.params.w[l][i];
                    net.params.w[l][i] = w0 + h;
                    let up = loss(&mut net);
                    net.params.w[l][i] = w0 - h;
                    let down = loss(&mut net);
                    net.params.w[l][i] = w0;
                    worst = worst.max(((up - down) / (2.0 * f64::from(h)) - f64::from(want)).abs());
                }
                for (i, &want) in db.iter().enumerate() {
                    let b0 = net.params.b[l][i];
                    net.params.b[l][i] = b0 + h;
                    let up = loss(&mut net);
                    net.params.b[l][i] = b0 - h;
                    let down = loss(&mut net);
                    net.params.b[l][i] = b0;
                    worst = worst.max(((up - down) / (2.0 * f64::from(h)) - f64::from(want)).abs());
                }
            }
            assert!(worst < 2e-3, "{n} rows: largest gradient error {worst}");
        }
    }
}
