//! Turning raw model scores into comparable [0, 1] numbers, and picking thresholds.
//!
//! Each model's raw score (Isolation Forest path score, autoencoder MSE) lives on its own scale.
//! An [`EmpiricalCdf`] fitted on the training scores maps a raw score to the share of training
//! rows that scored at most as high — a rank in [0, 1] that two models can be averaged on.

use crate::{ModelError, Result};
use serde::{Deserialize, Serialize};

/// Number of stored quantiles (0.1% resolution in the body; the extremes are kept exactly).
const KNOTS: usize = 1001;

/// A compact empirical CDF: `KNOTS` evenly spaced quantiles of the fitted values,
/// linearly interpolated between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmpiricalCdf {
    quantiles: Vec<f32>,
}

impl EmpiricalCdf {
    /// Fits on `values` (any order). Fails if empty or if any value is not finite.
    pub fn fit(values: &[f32]) -> Result<Self> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::InvalidData("cannot calibrate on empty or non-finite scores".into()));
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable_by(f32::total_cmp);
        let quantiles = (0..KNOTS).map(|k| quantile_sorted(&sorted, k as f64 / (KNOTS - 1) as f64)).collect();
        Ok(Self { quantiles })
    }

    /// The share of fitted values at or below `x`, interpolated; 0 below the minimum,
    /// 1 at or above the maximum.
    pub fn cdf(&self, x: f32) -> f32 {
        let q = &self.quantiles;
        let last = q.len() - 1;
        if x.is_nan() {
            return 1.0; // an unscorable row is treated as maximally unusual
        }
        if x < q[0] {
            return 0.0;
        }
        if x >= q[last] {
            return 1.0;
        }
        // First knot strictly above x; x sits in [q[i-1], q[i]).
        let i = q.partition_point(|&v| v <= x);
        let (lo, hi) = (q[i - 1], q[i]);
        let frac = if hi > lo { (x - lo) / (hi - lo) } else { 0.0 };
        ((i - 1) as f32 + frac) / last as f32
    }

    pub fn validate(&self) -> Result<()> {
        let ok = self.quantiles.len() >= 2
            && self.quantiles.iter().all(|v| v.is_finite())
            && self.quantiles.windows(2).all(|w| w[0] <= w[1]);
        if ok { Ok(()) } else { Err(ModelError::Corrupt("calibration quantiles are malformed".into())) }
    }
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `values`, linearly interpolated (NumPy's default method).
pub fn quantile(values: &[f32], q: f64) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    Some(quantile_sorted(&sorted, q))
}

fn quantile_sorted(sorted: &[f32], q: f64) -> f32 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quantiles_match_numpy() {
        // numpy.quantile([1, 2, 3, 4], [0, .25, .5, .99]) = [1, 1.75, 2.5, 3.97]
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert!((quantile(&v, 0.99).unwrap() - 3.97).abs() < 1e-6);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn cdf_of_uniform_values_is_the_identity() {
        let v: Vec<f32> = (0..=10_000).map(|i| i as f32 / 10_000.0).collect();
        let cdf = EmpiricalCdf::fit(&v).unwrap();
        for x in [0.0, 0.123, 0.5, 0.9, 0.999] {
            assert!((cdf.cdf(x) - x).abs() < 1e-3, "cdf({x}) = {}", cdf.cdf(x));
        }
        assert_eq!(cdf.cdf(-1.0), 0.0);
        assert_eq!(cdf.cdf(2.0), 1.0);
        assert_eq!(cdf.cdf(f32::NAN), 1.0);
    }

    proptest! {
        #[test]
        fn cdf_is_monotone_and_bounded(
            values in proptest::collection::vec(-1e3f32..1e3, 1..300),
            probes in proptest::collection::vec(-2e3f32..2e3, 2..50),
        ) {
            let cdf = EmpiricalCdf::fit(&values).unwrap();
            let mut probes = probes;
            probes.sort_by(f32::total_cmp);
            let mapped: Vec<f32> = probes.iter().map(|&p| cdf.cdf(p)).collect();
            prop_assert!(mapped.iter().all(|c| (0.0..=1.0).contains(c)));
            prop_assert!(mapped.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
