//! Isolation Forest (Liu, Ting & Zhou, 2008), hand-written over flat node arrays.
//!
//! Hand-written rather than a crate for a measured reason (see `../shared/ml-notes.md`): the
//! maintained crates were 3–300× slower to score and some cannot be seeded. Trees are stored as one
//! flat `Vec<Node>` of 16-byte nodes in pre-order. A leaf points to itself on both sides, so every
//! row can take exactly `depth` steps through a tree, with no per-row "reached a leaf?" exit: batch
//! scoring advances a block of rows through one tree in lock-step, keeping that tree in L1, and
//! spreads blocks over cores with rayon (measured 2.5–4× faster than walking each row to its
//! leaf; BENCHMARKS.md).

use crate::{Matrix, ModelError, Result, invalid_param};
use rand::{Rng, SeedableRng, seq::index::sample};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Rows scored together per tree in batch scoring (they and the tree fit in L1; measured best
/// of 64–512 on the 200k × 30 benchmark).
const BLOCK: usize = 128;
/// Trees walked side by side when scoring a single row.
const TREE_LANES: usize = 8;

/// Hyper-parameters, with the classic algorithm's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForestParams {
    /// Number of trees (default 200).
    pub n_trees: usize,
    /// Rows sub-sampled without replacement per tree, ψ (default 256).
    pub sample_size: usize,
    /// Height limit; `None` means ceil(log2 ψ).
    pub max_depth: Option<usize>,
    /// Seed for sub-sampling and splits: the same seed and data give the same forest.
    pub seed: u64,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        Self { n_trees: 200, sample_size: 256, max_depth: None, seed: 42 }
    }
}

impl IsolationForestParams {
    pub fn n_trees(mut self, n: usize) -> Self {
        self.n_trees = n;
        self
    }
    pub fn sample_size(mut self, n: usize) -> Self {
        self.sample_size = n;
        self
    }
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = Some(depth);
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self) -> Result<()> {
        if !(1..=10_000).contains(&self.n_trees) {
            return Err(invalid_param("n_trees", "must be between 1 and 10000"));
        }
        if self.sample_size < 2 {
            return Err(invalid_param("sample_size", "must be at least 2"));
        }
        if self.max_depth.is_some_and(|d| !(1..=64).contains(&d)) {
            return Err(invalid_param("max_depth", "must be between 1 and 64"));
        }
        Ok(())
    }

    /// Fits a forest on `data` (rows are samples). Fails on empty or non-finite data.
    pub fn fit(&self, data: &Matrix) -> Result<IsolationForest> {
        self.check()?;
        data.check_trainable()?;
        let psi = self.sample_size.min(data.n_rows());
        let max_depth = self.max_depth.unwrap_or_else(|| (psi as f64).log2().ceil().max(1.0) as usize);
        let trees: Vec<TreeBuilder> = (0..self.n_trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = Pcg64Mcg::seed_from_u64(tree_seed(self.seed, t as u64));
                let mut idx: Vec<u32> = sample(&mut rng, data.n_rows(), psi).into_iter().map(|i| i as u32).collect();
                let mut tree = TreeBuilder { nodes: Vec::with_capacity(2 * psi), values: Vec::new(), depth: 0 };
                tree.build(data, &mut idx, 0, max_depth, &mut rng);
                tree
            })
            .collect();
        let total = trees.iter().map(|t| t.nodes.len()).sum();
        let (mut nodes, mut values) = (Vec::with_capacity(total), Vec::with_capacity(total));
        let (mut roots, mut depths) = (Vec::with_capacity(trees.len()), Vec::with_capacity(trees.len()));
        for tree in trees {
            let offset = nodes.len() as u32;
            roots.push(offset);
            depths.push(tree.depth);
            nodes.extend(tree.nodes.into_iter().map(|n| Node { left: n.left + offset, right: n.right + offset, ..n }));
            values.extend(tree.values);
        }
        Ok(IsolationForest {
            nodes,
            values,
            roots,
            depths,
            n_features: data.n_cols(),
            norm: average_path_length(psi),
            params: self.clone(),
        })
    }
}

/// One node: go to `left` if `x[feature] <= threshold`, else to `right`. A leaf has
/// `left == right ==` itself, so stepping from it stays put.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Node {
    feature: u32,
    threshold: f32,
    left: u32,
    right: u32,
}

/// A fitted Isolation Forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationForest {
    nodes: Vec<Node>,
    /// Per node: for a leaf, its path length depth + c(leaf size); 0 for internal nodes.
    values: Vec<f32>,
    roots: Vec<u32>,
    /// Per tree: the depth of its deepest leaf (the steps that bring any row to a leaf).
    depths: Vec<u8>,
    n_features: usize,
    /// c(ψ): the average path length of an unsuccessful BST search over ψ points.
    norm: f32,
    params: IsolationForestParams,
}

impl IsolationForest {
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn params(&self) -> &IsolationForestParams {
        &self.params
    }

    /// Anomaly score 2^(−E[h(x)]/c(ψ)) in (0, 1]: near 1 is anomalous, below 0.5 is normal.
    pub fn score(&self, row: &[f32]) -> Result<f32> {
        self.check_row(row.len())?;
        // Eight trees side by side: independent walks overlap in the CPU instead of one long
        // chain of dependent loads (measured ~2× on one row). Stepping past a leaf stays on it,
        // so each group takes its deepest tree's steps; values are summed in tree order, so the
        // result equals the batch path's to the bit.
        let mut total = 0f32;
        for (roots, depths) in self.roots.chunks(TREE_LANES).zip(self.depths.chunks(TREE_LANES)) {
            let mut c = [0u32; TREE_LANES];
            c[..roots.len()].copy_from_slice(roots);
            let c = &mut c[..roots.len()];
            for _ in 0..depths.iter().copied().max().unwrap_or(0) {
                for ck in c.iter_mut() {
                    *ck = self.step(*ck, row);
                }
            }
            for &ck in c.iter() {
                total += self.values[ck as usize];
            }
        }
        Ok(self.to_score(total))
    }

    /// Scores every row of `data`, in parallel, in row order; the same numbers as [`Self::score`].
    pub fn score_batch(&self, data: &Matrix) -> Result<Vec<f32>> {
        self.check_row(data.n_cols())?;
        let mut out = vec![0f32; data.n_rows()];
        let d = self.n_features;
        out.par_chunks_mut(BLOCK).zip(data.as_slice().par_chunks(BLOCK * d)).for_each(|(scores, rows)| {
            let mut cursors = [0u32; BLOCK];
            let cursors = &mut cursors[..scores.len()];
            for (&root, &depth) in self.roots.iter().zip(&self.depths) {
                cursors.fill(root);
                for _ in 0..depth {
                    for (c, row) in cursors.iter_mut().zip(rows.chunks_exact(d)) {
                        *c = self.step(*c, row);
                    }
                }
                for (acc, &c) in scores.iter_mut().zip(cursors.iter()) {
                    *acc += self.values[c as usize];
                }
            }
            for s in scores.iter_mut() {
                *s = self.to_score(*s);
            }
        });
        Ok(out)
    }

    fn to_score(&self, total_path: f32) -> f32 {
        let mean = total_path / self.roots.len() as f32;
        (-mean / self.norm).exp2()
    }

    /// One step down a tree (from a leaf, stays on it).
    #[inline(always)]
    fn step(&self, i: u32, row: &[f32]) -> u32 {
        let n = &self.nodes[i as usize];
        if row[n.feature as usize] <= n.threshold { n.left } else { n.right }
    }

    fn check_row(&self, len: usize) -> Result<()> {
        if len == self.n_features {
            Ok(())
        } else {
            Err(ModelError::FeatureCount { expected: self.n_features, got: len })
        }
    }

    /// Checks a deserialised forest so that scoring cannot index out of bounds: every child
    /// stays inside its own tree and every feature index is in range.
    pub fn validate(&self) -> Result<()> {
        let corrupt = |m: String| Err(ModelError::Corrupt(format!("isolation forest: {m}")));
        if self.roots.is_empty() || self.n_features == 0 || self.norm.is_nan() || self.norm <= 0.0 {
            return corrupt("no trees, no features or a bad normaliser".into());
        }
        if self.values.len() != self.nodes.len() || self.depths.len() != self.roots.len() {
            return corrupt("array lengths disagree".into());
        }
        let len = self.nodes.len() as u32;
        for (t, &root) in self.roots.iter().enumerate() {
            let end = self.roots.get(t + 1).copied().unwrap_or(len);
            if root >= end || end > len || self.depths[t] > 64 {
                return corrupt(format!("tree {t} has bad bounds"));
            }
            for i in root..end {
                let n = self.nodes[i as usize];
                let inside = (root..end).contains(&n.left) && (root..end).contains(&n.right);
                if !inside || n.feature as usize >= self.n_features || !self.values[i as usize].is_finite() {
                    return corrupt(format!("node {i} of tree {t} is malformed"));
                }
            }
        }
        Ok(())
    }
}

/// One tree under construction, in pre-order, with its leaf values and deepest leaf.
struct TreeBuilder {
    nodes: Vec<Node>,
    values: Vec<f32>,
    depth: u8,
}

impl TreeBuilder {
    /// Builds the subtree over the rows in `idx` (partitioned in place); returns its root.
    fn build(&mut self, data: &Matrix, idx: &mut [u32], depth: usize, max_depth: usize, rng: &mut Pcg64Mcg) -> u32 {
        let me = self.nodes.len() as u32;
        let split = if depth >= max_depth || idx.len() <= 1 { None } else { pick_split_feature(data, idx, rng) };
        let Some((feature, lo, hi)) = split else {
            // Both children are the leaf itself, so the threshold is irrelevant; it must only be finite
            // to survive JSON.
            self.nodes.push(Node { feature: 0, threshold: f32::MAX, left: me, right: me });
            self.values.push(depth as f32 + average_path_length(idx.len()));
            self.depth = self.depth.max(depth as u8);
            return me;
        };
        let threshold = rng.random_range(lo..hi);
        // Partition: rows with x <= threshold first. lo <= threshold < hi keeps both sides non-empty.
        let mut split = 0;
        for k in 0..idx.len() {
            if data.row(idx[k] as usize)[feature] <= threshold {
                idx.swap(k, split);
                split += 1;
            }
        }
        self.nodes.push(Node { feature: feature as u32, threshold, left: 0, right: 0 });
        self.values.push(0.0);
        let (left_rows, right_rows) = idx.split_at_mut(split);
        let left = self.build(data, left_rows, depth + 1, max_depth, rng);
        let right = self.build(data, right_rows, depth + 1, max_depth, rng);
        self.nodes[me as usize].left = left;
        self.nodes[me as usize].right = right;
        me
    }
}

/// Draws a random feature that is not constant over `idx` (as scikit-learn does, redrawing
/// on constant features), returning it with its min and max. `None` if all are constant.
fn pick_split_feature(data: &Matrix, idx: &[u32], rng: &mut Pcg64Mcg) -> Option<(usize, f32, f32)> {
    let d = data.n_cols();
    let range = |f: usize| {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &i in idx {
            let v = data.row(i as usize)[f];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        (lo < hi).then_some((f, lo, hi))
    };
    for _ in 0..d {
        if let Some(found) = range(rng.random_range(0..d)) {
            return Some(found);
        }
    }
    // Unlucky draws: fall back to a scan from a random start.
    let start = rng.random_range(0..d);
    (0..d).find_map(|k| range((start + k) % d))
}

/// c(n) = 2·H(n−1) − 2(n−1)/n, the expected path length of an unsuccessful BST search.
fn average_path_length(n: usize) -> f32 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            (2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n) as f32
        }
    }
}

/// Independent, reproducible per-tree seeds (SplitMix64 finaliser), so the forest does not
/// depend on how rayon schedules the trees.
fn tree_seed(seed: u64, tree: u64) -> u64 {
    let mut z = seed ^ tree.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_distr::{Distribution, StandardNormal};

    /// `n` Gaussian inliers plus `k` far-away outliers (the last `k` rows).
    fn planted(n: usize, k: usize, d: usize, seed: u64) -> Matrix {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut m = Matrix::with_cols(d);
        for i in 0..n + k {
            let shift = if i >= n { 6.0 } else { 0.0 };
            let row: Vec<f32> = (0..d)
                .map(|_| {
                    let z: f32 = StandardNormal.sample(&mut rng);
                    z + shift
                })
                .collect();
            m.push_row(&row).unwrap();
        }
        m
    }

    #[test]
    fn planted_outliers_score_higher_than_inliers() {
        let data = planted(2000, 20, 5, 1);
        let forest = IsolationForestParams::default().seed(3).fit(&data).unwrap();
        let scores = forest.score_batch(&data).unwrap();
        let max_inlier_median = {
            let mut inl = scores[..2000].to_vec();
            inl.sort_by(f32::total_cmp);
            inl[1000]
        };
        let min_outlier = scores[2000..].iter().copied().fold(f32::INFINITY, f32::min);
        assert!(min_outlier > 0.6, "outliers should be clearly anomalous, got {min_outlier}");
        assert!(max_inlier_median < 0.5, "typical inliers should look normal, got {max_inlier_median}");
    }

    #[test]
    fn same_seed_same_forest_and_batch_matches_single() {
        let data = planted(500, 5, 4, 2);
        let a = IsolationForestParams::default().seed(9).fit(&data).unwrap();
        let b = IsolationForestParams::default().seed(9).fit(&data).unwrap();
        let c = IsolationForestParams::default().seed(10).fit(&data).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let batch = a.score_batch(&data).unwrap();
        for (i, row) in data.rows().enumerate() {
            assert_eq!(batch[i], a.score(row).unwrap());
        }
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let data = planted(300, 3, 3, 4);
        let forest = IsolationForestParams::default().n_trees(20).fit(&data).unwrap();
        let json = serde_json::to_string(&forest).unwrap();
        let back: IsolationForest = serde_json::from_str(&json).unwrap();
        back.validate().unwrap();
        assert_eq!(back, forest);
        // A child pointer into another tree, or a feature out of range, must be refused.
        let mut broken = forest.clone();
        broken.nodes[1].right = broken.nodes.len() as u32 - 1;
        assert!(broken.validate().is_err());
        let mut broken = forest.clone();
        broken.nodes[0].feature = 99;
        assert!(broken.validate().is_err());
    }

    #[test]
    fn rejects_bad_params_and_shapes() {
        let data = planted(10, 0, 2, 5);
        assert!(IsolationForestParams::default().n_trees(0).fit(&data).is_err());
        assert!(IsolationForestParams::default().sample_size(1).fit(&data).is_err());
        let forest = IsolationForestParams::default().fit(&data).unwrap();
        assert!(forest.score(&[1.0]).is_err());
    }

    #[test]
    fn constant_data_gives_leaves_not_panics() {
        let data = Matrix::from_vec(vec![1.0; 40], 2).unwrap();
        let forest = IsolationForestParams::default().n_trees(5).fit(&data).unwrap();
        let s = forest.score(&[1.0, 1.0]).unwrap();
        assert!(s.is_finite() && s > 0.0 && s <= 1.0);
    }

    #[test]
    fn path_length_normaliser_matches_known_values() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(256) ≈ 10.2448 (as in scikit-learn's _average_path_length).
        assert!((average_path_length(256) - 10.2448).abs() < 1e-3);
    }

    proptest! {
        #[test]
        fn scores_are_in_unit_interval(seed in 0u64..1000, n in 2usize..200) {
            let data = planted(n, 1, 3, seed);
            let forest = IsolationForestParams::default().n_trees(10).seed(seed).fit(&data).unwrap();
            for s in forest.score_batch(&data).unwrap() {
                prop_assert!(s > 0.0 && s <= 1.0);
            }
        }
    }
}
