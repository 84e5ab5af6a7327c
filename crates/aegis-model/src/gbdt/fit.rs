//! Fitting: quantile binning, histogram trees grown best-leaf-first, early stopping.

use super::{Gbdt, LEAF, Node, sigmoid};
use crate::{Matrix, ModelError, Result, invalid_param};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Histogram slots per feature (bins are `u8`).
const BINS: usize = 256;
/// Rows sampled to place the bin edges.
const EDGE_SAMPLE: usize = 200_000;

/// Hyper-parameters, with LightGBM-like defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbdtParams {
    /// Boosting rounds at most (early stopping may keep fewer).
    pub max_trees: usize,
    pub learning_rate: f32,
    /// Leaves per tree (trees grow best-leaf-first up to this).
    pub max_leaves: usize,
    pub max_depth: usize,
    /// Fewest training rows in a leaf.
    pub min_leaf_rows: usize,
    /// Smallest hessian sum in a leaf.
    pub min_leaf_hessian: f64,
    /// L2 regularisation of leaf values.
    pub l2: f64,
    /// Bins per feature (2–256).
    pub max_bins: usize,
    /// Rounds without a better validation loss before stopping.
    pub patience: usize,
    /// Seeds the sample the bin edges are taken from.
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            max_trees: 400,
            learning_rate: 0.1,
            max_leaves: 31,
            max_depth: 10,
            min_leaf_rows: 20,
            min_leaf_hessian: 1e-3,
            l2: 1.0,
            max_bins: BINS,
            patience: 30,
            seed: 42,
        }
    }
}

impl GbdtParams {
    pub fn max_trees(mut self, n: usize) -> Self {
        self.max_trees = n;
        self
    }

    pub fn learning_rate(mut self, lr: f32) -> Self {
        self.learning_rate = lr;
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn check(&self) -> Result<()> {
        if self.max_trees == 0 {
            return Err(invalid_param("max_trees", "must be at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return Err(invalid_param("learning_rate", "must be in (0, 1]"));
        }
        if self.max_leaves < 2 {
            return Err(invalid_param("max_leaves", "must be at least 2"));
        }
        if self.max_depth == 0 {
            return Err(invalid_param("max_depth", "must be at least 1"));
        }
        if !(2..=BINS).contains(&self.max_bins) {
            return Err(invalid_param("max_bins", format!("must be between 2 and {BINS}")));
        }
        if !(self.l2 >= 0.0 && self.min_leaf_hessian >= 0.0) {
            return Err(invalid_param("l2", "regularisation must be non-negative"));
        }
        Ok(())
    }

    /// Fits on `data` (row-major) with labels, optional per-row weights and an optional
    /// validation set for early stopping (the model keeps the rounds up to its best loss).
    pub fn fit(
        &self,
        data: &Matrix,
        labels: &[bool],
        weights: Option<&[f32]>,
        validation: Option<(&Matrix, &[bool])>,
    ) -> Result<Gbdt> {
        self.check()?;
        let (n, d) = (data.n_rows(), data.n_cols());
        if n == 0 || d == 0 {
            return Err(ModelError::InvalidData("no rows or no features".into()));
        }
        if d >= usize::from(LEAF) {
            return Err(ModelError::InvalidData(format!("too many features ({d})")));
        }
        if labels.len() != n || weights.is_some_and(|w| w.len() != n) {
            return Err(ModelError::InvalidData("labels or weights do not match the rows".into()));
        }
        if weights.is_some_and(|w| w.iter().any(|&w| !(w.is_finite() && w >= 0.0))) {
            return Err(ModelError::InvalidData("weights must be finite and non-negative".into()));
        }
        if let Some((v, l)) = validation {
            if v.n_cols() != d || l.len() != v.n_rows() {
                return Err(ModelError::InvalidData("the validation set does not match the training set".into()));
            }
        }
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let (mut pos, mut total) = (0f64, 0f64);
        for (i, &y) in labels.iter().enumerate() {
            total += f64::from(weight(i));
            if y {
                pos += f64::from(weight(i));
            }
        }
        if pos <= 0.0 || pos >= total {
            return Err(ModelError::InvalidData("both classes are needed to fit a classifier".into()));
        }
        let p = (pos / total).clamp(1e-6, 1.0 - 1e-6);
        let base = (p / (1.0 - p)).ln() as f32;

        let binned = Binned::new(data, self.max_bins, self.seed);
        let mut grower = Grower::new(self, &binned);
        let mut raw = vec![base; n];
        let mut valid_raw = validation.map(|(v, _)| vec![base; v.n_rows()]);
        let (mut g, mut h) = (vec![0f32; n], vec![0f32; n]);
        let mut model = Gbdt {
            params: self.clone(),
            n_features: d,
            base,
            roots: Vec::new(),
            nodes: Vec::new(),
            validation_loss: Vec::new(),
            importance: vec![0.0; d],
        };
        let mut gains: Vec<(u16, f32)> = Vec::new();
        let (mut best_loss, mut best_round) = (f32::INFINITY, 0usize);
        for round in 0..self.max_trees {
            for i in 0..n {
                let p = sigmoid(raw[i]);
                let w = weight(i);
                g[i] = w * (p - f32::from(u8::from(labels[i])));
                h[i] = (w * p * (1.0 - p)).max(1e-16);
            }
            let root = model.nodes.len() as u32;
            let tree = grower.grow(&g, &h, &binned, &mut raw);
            if tree.len() < 2 && round > 0 {
                break; // nothing left to split
            }
            model.roots.push(root);
            for (node, gain) in tree {
                let offset = |i: u32| if node.feature == LEAF { 0 } else { i + root };
                model.nodes.push(Node { left: offset(node.left), right: offset(node.right), ..node });
                gains.push((node.feature, gain));
            }
            if let (Some((vdata, vlabels)), Some(vraw)) = (validation, valid_raw.as_mut()) {
                let r = *model.roots.last().unwrap_or(&0);
                vraw.par_iter_mut().enumerate().for_each(|(i, s)| *s += model.leaf(r, vdata.row(i)).value);
                let loss = log_loss(vraw, vlabels);
                model.validation_loss.push(loss);
                if loss < best_loss {
                    (best_loss, best_round) = (loss, round);
                } else if round - best_round >= self.patience {
                    break;
                }
            }
        }
        if validation.is_some() && !model.roots.is_empty() {
            let keep = best_round + 1;
            if keep < model.roots.len() {
                let cut = model.roots[keep] as usize;
                model.roots.truncate(keep);
                model.nodes.truncate(cut);
                gains.truncate(cut);
            }
        }
        for &(f, gain) in &gains {
            if f != LEAF {
                model.importance[usize::from(f)] += gain;
            }
        }
        Ok(model)
    }
}

fn log_loss(raw: &[f32], labels: &[bool]) -> f32 {
    let sum: f64 = raw
        .iter()
        .zip(labels)
        .map(|(&s, &y)| {
            // log(1 + e^-s) for a positive, log(1 + e^s) for a negative, computed stably.
            let z = f64::from(if y { -s } else { s });
            z.max(0.0) + (-z.abs()).exp().ln_1p()
        })
        .sum();
    (sum / raw.len().max(1) as f64) as f32
}

/// Every feature as `u8` bins, feature-major, and the edges that map values to bins.
struct Binned {
    n_rows: usize,
    /// `bins[f * n_rows + i]`: the bin of row `i`'s feature `f`.
    bins: Vec<u8>,
    /// Per feature, ascending: a value `x ≤ edges[b]` (and above `edges[b - 1]`) is in bin `b`;
    /// above every edge is bin `edges.len()`, where NaN goes too.
    edges: Vec<Vec<f32>>,
}

impl Binned {
    fn new(data: &Matrix, max_bins: usize, seed: u64) -> Self {
        let (n, d) = (data.n_rows(), data.n_cols());
        let sample: Vec<usize> = if n <= EDGE_SAMPLE {
            (0..n).collect()
        } else {
            let mut rng = Pcg64Mcg::seed_from_u64(seed);
            (0..EDGE_SAMPLE).map(|_| rng.random_range(0..n)).collect()
        };
        let edges: Vec<Vec<f32>> = (0..d)
            .into_par_iter()
            .map(|f| {
                let mut values: Vec<f32> = sample.iter().map(|&i| data.row(i)[f]).filter(|v| v.is_finite()).collect();
                values.sort_unstable_by(f32::total_cmp);
                edges_of(&values, max_bins)
            })
            .collect();
        let mut bins = vec![0u8; n * d];
        bins.par_chunks_mut(n.max(1)).zip(&edges).enumerate().for_each(|(f, (col, e))| {
            for (i, b) in col.iter_mut().enumerate() {
                *b = bin_of(e, data.row(i)[f]);
            }
        });
        Self { n_rows: n, bins, edges }
    }

    fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// At most `max_bins − 1` edges: midpoints between distinct values when there are few,
/// otherwise quantiles.
fn edges_of(sorted: &[f32], max_bins: usize) -> Vec<f32> {
    let mut distinct = sorted.to_vec();
    distinct.dedup();
    if distinct.len() < max_bins {
        // One bin per distinct value (the last bin takes the largest and NaN).
        return distinct.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect();
    }
    let mut edges: Vec<f32> = (1..max_bins - 1).map(|q| sorted[q * sorted.len() / (max_bins - 1)]).collect();
    edges.dedup();
    edges
}

fn bin_of(edges: &[f32], x: f32) -> u8 {
    if x.is_nan() { edges.len() as u8 } else { edges.partition_point(|&e| e < x) as u8 }
}

/// Sums of gradients, hessians and rows in one bin.
#[derive(Debug, Clone, Copy, Default)]
struct Stat {
    g: f64,
    h: f64,
    n: u32,
}

/// The best split found for a leaf.
#[derive(Debug, Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    bin: u8,
    left: Stat,
}

/// A leaf being grown: its rows are `indices[start..end]`.
struct Open {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    total: Stat,
    hist: Vec<Stat>,
    split: Option<Split>,
}

/// Grows one tree at a time, reusing its buffers.
struct Grower<'p> {
    params: &'p GbdtParams,
    indices: Vec<u32>,
    /// Scratch for partitioning a leaf's rows.
    right: Vec<u32>,
    /// A leaf's (gradient, hessian) pairs in row order.
    gh: Vec<(f32, f32)>,
}

impl<'p> Grower<'p> {
    fn new(params: &'p GbdtParams, binned: &Binned) -> Self {
        Self { params, indices: Vec::with_capacity(binned.n_rows), right: Vec::new(), gh: Vec::new() }
    }

    fn value(&self, s: Stat) -> f32 {
        (-s.g / (s.h + self.params.l2)) as f32 * self.params.learning_rate
    }

    /// Grows a tree on gradients `g` and hessians `h`, adds its output to `raw`, and returns its
    /// nodes (children indices relative to the tree) with each node's split gain.
    fn grow(&mut self, g: &[f32], h: &[f32], binned: &Binned, raw: &mut [f32]) -> Vec<(Node, f32)> {
        let d = binned.edges.len();
        self.indices.clear();
        self.indices.extend(0..binned.n_rows as u32);
        let mut hist = vec![Stat::default(); d * BINS];
        self.histogram(0, binned.n_rows, g, h, binned, &mut hist);
        let total = hist[..BINS].iter().fold(Stat::default(), |a, s| Stat { g: a.g + s.g, h: a.h + s.h, n: a.n + s.n });
        let mut nodes =
            vec![(Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, value: self.value(total) }, 0f32)];
        let mut open = vec![Open { node: 0, start: 0, end: binned.n_rows, depth: 0, total, hist, split: None }];
        open[0].split = self.best_split(&open[0], binned);
        let mut leaves = 1;
        while leaves < self.params.max_leaves {
            let Some(k) = open
                .iter()
                .enumerate()
                .filter_map(|(k, o)| o.split.map(|s| (k, s.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(k, _)| k)
            else {
                break;
            };
            let parent = open.swap_remove(k);
            let Some(split) = parent.split else { break };
            // A stable partition: each leaf's rows stay in increasing order, so histogram
            // passes read the bin columns front to back.
            let column = binned.column(split.feature);
            let rows = &mut self.indices[parent.start..parent.end];
            self.right.clear();
            let mut mid = 0;
            for j in 0..rows.len() {
                let i = rows[j];
                if column[i as usize] <= split.bin {
                    rows[mid] = i;
                    mid += 1;
                } else {
                    self.right.push(i);
                }
            }
            rows[mid..].copy_from_slice(&self.right);
            let mid = parent.start + mid;
            let right_total = Stat {
                g: parent.total.g - split.left.g,
                h: parent.total.h - split.left.h,
                n: parent.total.n - split.left.n,
            };
            let (l, r) = (nodes.len(), nodes.len() + 1);
            let leaf = |v| (Node { feature: LEAF, threshold: 0.0, left: 0, right: 0, value: v }, 0f32);
            nodes.push(leaf(self.value(split.left)));
            nodes.push(leaf(self.value(right_total)));
            nodes[parent.node] = (
                Node {
                    feature: split.feature as u16,
                    threshold: binned.edges[split.feature][usize::from(split.bin)],
                    left: l as u32,
                    right: r as u32,
                    value: nodes[parent.node].0.value,
                },
                split.gain as f32,
            );
            // Build the smaller child's histogram; the larger one is the parent's minus it.
            let mut small = vec![Stat::default(); d * BINS];
            let left_smaller = mid - parent.start <= parent.end - mid;
            let (s_start, s_end) = if left_smaller { (parent.start, mid) } else { (mid, parent.end) };
            self.histogram(s_start, s_end, g, h, binned, &mut small);
            let mut large = parent.hist;
            for (a, b) in large.iter_mut().zip(&small) {
                a.g -= b.g;
                a.h -= b.h;
                a.n -= b.n;
            }
            let (left_hist, right_hist) = if left_smaller { (small, large) } else { (large, small) };
            let depth = parent.depth + 1;
            for (node, start, end, total, hist) in
                [(l, parent.start, mid, split.left, left_hist), (r, mid, parent.end, right_total, right_hist)]
            {
                let mut o = Open { node, start, end, depth, total, hist, split: None };
                o.split = self.best_split(&o, binned);
                open.push(o);
            }
            leaves += 1;
        }
        // Every row's output: the value of the leaf that holds it.
        for o in &open {
            let v = nodes[o.node].0.value;
            for &i in &self.indices[o.start..o.end] {
                raw[i as usize] += v;
            }
        }
        nodes
    }

    /// Histograms of every feature over the rows `indices[start..end]`.
    fn histogram(&mut self, start: usize, end: usize, g: &[f32], h: &[f32], binned: &Binned, out: &mut [Stat]) {
        let rows = &self.indices[start..end];
        // Gradients in row order once, packed, so each feature's pass reads them sequentially.
        self.gh.clear();
        self.gh.extend(rows.iter().map(|&i| (g[i as usize], h[i as usize])));
        let gh = &self.gh;
        out.par_chunks_mut(BINS).enumerate().for_each(|(f, hist)| {
            let Ok(hist) = <&mut [Stat; BINS]>::try_from(hist) else { return };
            let column = binned.column(f);
            // Two interleaved accumulators: runs of rows in the same bin (common for flags and
            // counts) would otherwise wait on each other's additions.
            let mut other = [Stat::default(); BINS];
            let mut pairs = rows.chunks_exact(2).zip(gh.chunks_exact(2));
            for (r, x) in pairs.by_ref() {
                let a = &mut hist[usize::from(column[r[0] as usize])];
                a.g += f64::from(x[0].0);
                a.h += f64::from(x[0].1);
                a.n += 1;
                let b = &mut other[usize::from(column[r[1] as usize])];
                b.g += f64::from(x[1].0);
                b.h += f64::from(x[1].1);
                b.n += 1;
            }
            if let (Some(&r), Some(&(gv, hv))) = (rows.get(rows.len() & !1), gh.get(rows.len() & !1)) {
                let a = &mut hist[usize::from(column[r as usize])];
                a.g += f64::from(gv);
                a.h += f64::from(hv);
                a.n += 1;
            }
            for (a, b) in hist.iter_mut().zip(&other) {
                a.g += b.g;
                a.h += b.h;
                a.n += b.n;
            }
        });
    }

    fn best_split(&self, leaf: &Open, binned: &Binned) -> Option<Split> {
        let p = self.params;
        if leaf.depth >= p.max_depth || (leaf.total.n as usize) < 2 * p.min_leaf_rows {
            return None;
        }
        let score = |s: Stat| s.g * s.g / (s.h + p.l2);
        let parent = score(leaf.total);
        let mut best: Option<Split> = None;
        for (f, edges) in binned.edges.iter().enumerate() {
            let hist = &leaf.hist[f * BINS..f * BINS + edges.len() + 1];
            let mut left = Stat::default();
            for (b, s) in hist[..hist.len() - 1].iter().enumerate() {
                left = Stat { g: left.g + s.g, h: left.h + s.h, n: left.n + s.n };
                let right = Stat { g: leaf.total.g - left.g, h: leaf.total.h - left.h, n: leaf.total.n - left.n };
                if (left.n as usize) < p.min_leaf_rows || left.h < p.min_leaf_hessian {
                    continue;
                }
                if (right.n as usize) < p.min_leaf_rows || right.h < p.min_leaf_hessian {
                    break;
                }
                let gain = score(left) + score(right) - parent;
                if gain > 1e-9 && best.is_none_or(|s| gain > s.gain) {
                    best = Some(Split { gain, feature: f, bin: b as u8, left });
                }
            }
        }
        best
    }
}
