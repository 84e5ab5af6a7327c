//! The fitted models and how their scores combine.
//!
//! Combined score = ½·F_if(s_if) + ½·F_ae(s_ae), where F is each model's empirical CDF over the
//! training rows. Each term is "the share of training transactions this one out-scores", so the
//! two models count equally whatever their raw scales, and the result is in [0, 1]. The `block`
//! and `review` thresholds are the (1 − rate) quantiles of the combined training scores: with the
//! default rates, 1% of training-like traffic would be blocked and 3% flagged.

use super::Action;
use aegis_model::{Autoencoder, EmpiricalCdf, IsolationForest, Matrix, StandardScaler, autoencoder::Workspace};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Score thresholds on the combined score, calibrated at training time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Share of training transactions at or above `review` (default 0.03).
    pub review_rate: f64,
    /// Share of training transactions at or above `block` (default 0.01).
    pub block_rate: f64,
    pub review: f32,
    pub block: f32,
}

impl Thresholds {
    pub fn action(&self, score: f32) -> Action {
        if score >= self.block {
            Action::Block
        } else if score >= self.review {
            Action::Review
        } else {
            Action::Allow
        }
    }
}

/// One row's scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Combined score in [0, 1].
    pub combined: f32,
    /// Isolation Forest anomaly score in (0, 1].
    pub if_score: f32,
    /// Autoencoder reconstruction MSE on standardised features.
    pub ae_mse: f32,
}

/// Everything needed to score a feature vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Models {
    pub scaler: StandardScaler,
    pub forest: IsolationForest,
    pub autoencoder: Autoencoder,
    pub if_cdf: EmpiricalCdf,
    pub ae_cdf: EmpiricalCdf,
}

impl Models {
    pub fn n_features(&self) -> usize {
        self.scaler.n_features()
    }

    pub fn combine(&self, if_score: f32, ae_mse: f32) -> f32 {
        0.5 * self.if_cdf.cdf(if_score) + 0.5 * self.ae_cdf.cdf(ae_mse)
    }

    /// Scores one raw feature row. `scaled` and `errors` are scratch space of the feature count
    /// (the per-feature reconstruction errors are left in `errors`, to explain the score).
    pub fn score_row(
        &self,
        raw: &[f32],
        scaled: &mut [f32],
        ws: &mut Workspace,
        errors: &mut [f32],
    ) -> aegis_model::Result<Score> {
        scaled.copy_from_slice(raw);
        self.scaler.transform_row(scaled)?;
        let if_score = self.forest.score(scaled)?;
        let ae_mse = self.autoencoder.reconstruction_errors(scaled, ws, errors)?;
        Ok(Score { combined: self.combine(if_score, ae_mse), if_score, ae_mse })
    }

    /// Scores every raw row, in parallel; the same numbers as [`Models::score_row`].
    pub fn score_matrix(&self, raw: &Matrix) -> aegis_model::Result<Vec<Score>> {
        let mut scaled = raw.clone();
        self.scaler.transform(&mut scaled)?;
        let (if_scores, ae_scores) =
            rayon::join(|| self.forest.score_batch(&scaled), || self.autoencoder.score_batch(&scaled));
        let (if_scores, ae_scores) = (if_scores?, ae_scores?);
        Ok(if_scores
            .par_iter()
            .zip(&ae_scores)
            .map(|(&if_score, &ae_mse)| Score { combined: self.combine(if_score, ae_mse), if_score, ae_mse })
            .collect())
    }

    /// Checks shapes after loading, so that scoring can never index out of bounds.
    pub fn validate(&self, n_features: usize) -> aegis_model::Result<()> {
        self.scaler.validate()?;
        self.forest.validate()?;
        self.autoencoder.validate()?;
        self.if_cdf.validate()?;
        self.ae_cdf.validate()?;
        for got in [self.scaler.n_features(), self.forest.n_features(), self.autoencoder.n_features()] {
            if got != n_features {
                return Err(aegis_model::ModelError::FeatureCount { expected: n_features, got });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_pick_the_action() {
        let t = Thresholds { review_rate: 0.03, block_rate: 0.01, review: 0.9, block: 0.97 };
        assert_eq!(t.action(0.5), Action::Allow);
        assert_eq!(t.action(0.9), Action::Review);
        assert_eq!(t.action(0.97), Action::Block);
        assert_eq!(t.action(1.0), Action::Block);
    }
}
