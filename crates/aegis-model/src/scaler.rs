//! Per-feature standardisation (z-scores), fitted on training data and stored in the bundle.

use crate::{Matrix, ModelError, Result};
use serde::{Deserialize, Serialize};

/// Subtracts each feature's training mean and divides by its standard deviation.
/// A constant feature (std 0, or below 10⁻⁶ of its scale) is only centred.
/// A missing value (NaN) is left out of the fit and standardises to 0, the mean: the
/// unsupervised models, which need finite inputs, read it as "typical", while the supervised
/// model gets the raw NaN and learns what missing means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl StandardScaler {
    pub fn fit(data: &Matrix) -> Result<Self> {
        data.check_trainable_allowing_nan()?;
        let d = data.n_cols();
        let mut n = vec![0f64; d];
        let mut sum = vec![0f64; d];
        let mut sum_sq = vec![0f64; d];
        for row in data.rows() {
            for (j, &v) in row.iter().enumerate() {
                if v.is_nan() {
                    continue;
                }
                n[j] += 1.0;
                sum[j] += f64::from(v);
                sum_sq[j] += f64::from(v) * f64::from(v);
            }
        }
        // A column that is always missing has mean 0 and is left as it is.
        let mean: Vec<f64> = sum.iter().zip(&n).map(|(s, &n)| if n > 0.0 { s / n } else { 0.0 }).collect();
        let inv_std = sum_sq
            .iter()
            .zip(&mean)
            .zip(&n)
            .map(|((sq, m), &n)| {
                let var = if n > 0.0 { (sq / n - m * m).max(0.0) } else { 0.0 };
                let std = var.sqrt();
                // A constant column's variance is rounding noise, not signal: its inverse
                // would blow tiny differences up by 10^7 (seen on data without a country).
                if std > 1e-6 * (1.0 + m.abs()) { (1.0 / std) as f32 } else { 1.0 }
            })
            .collect();
        Ok(Self { mean: mean.into_iter().map(|m| m as f32).collect(), inv_std })
    }

    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Standardises `row` in place.
    pub fn transform_row(&self, row: &mut [f32]) -> Result<()> {
        if row.len() != self.mean.len() {
            return Err(ModelError::FeatureCount { expected: self.mean.len(), got: row.len() });
        }
        for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
            *v = if v.is_nan() { 0.0 } else { (*v - m) * s };
        }
        Ok(())
    }

    /// Standardises every row of `data` in place.
    pub fn transform(&self, data: &mut Matrix) -> Result<()> {
        for row in data.rows_mut() {
            self.transform_row(row)?;
        }
        Ok(())
    }

    /// Checks the shape of a deserialised scaler.
    pub fn validate(&self) -> Result<()> {
        if self.mean.len() != self.inv_std.len() || self.mean.is_empty() {
            return Err(ModelError::Corrupt("scaler mean/std lengths differ".into()));
        }
        if self.mean.iter().chain(&self.inv_std).any(|v| !v.is_finite()) {
            return Err(ModelError::Corrupt("scaler holds non-finite values".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardises_to_zero_mean_unit_variance() {
        let mut m = Matrix::from_vec(vec![1.0, 5.0, 3.0, 5.0, 5.0, 5.0], 2).unwrap();
        let s = StandardScaler::fit(&m).unwrap();
        s.transform(&mut m).unwrap();
        let col0: Vec<f32> = m.rows().map(|r| r[0]).collect();
        let mean: f32 = col0.iter().sum::<f32>() / 3.0;
        let var: f32 = col0.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
        assert!(mean.abs() < 1e-6);
        assert!((var - 1.0).abs() < 1e-5);
        // The constant column is centred, not blown up.
        assert!(m.rows().all(|r| r[1] == 0.0));
    }

    #[test]
    fn missing_values_are_left_out_of_the_fit_and_standardise_to_zero() {
        let nan = f32::NAN;
        let mut m = Matrix::from_vec(vec![1.0, nan, 3.0, nan, nan, nan], 2).unwrap();
        let s = StandardScaler::fit(&m).unwrap();
        assert_eq!(s.mean, [2.0, 0.0]);
        assert_eq!(s.inv_std, [1.0, 1.0]);
        s.transform(&mut m).unwrap();
        assert_eq!(m.as_slice(), &[-1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
        // Infinity is still refused.
        assert!(StandardScaler::fit(&Matrix::from_vec(vec![f32::INFINITY, 1.0], 2).unwrap()).is_err());
    }

    #[test]
    fn a_constant_column_with_rounding_noise_is_not_blown_up() {
        // sum²/n − mean² of a repeated 0.1 is ~1e-17, not 0: the old 1e-12 floor on the standard
        // deviation let an inverse of ~10^8 through.
        let data: Vec<f32> = (0..100_003).flat_map(|i| [0.1f32, i as f32]).collect();
        let s = StandardScaler::fit(&Matrix::from_vec(data, 2).unwrap()).unwrap();
        assert_eq!(s.inv_std[0], 1.0);
        assert!(s.inv_std[1] < 1e-4);
    }
}
