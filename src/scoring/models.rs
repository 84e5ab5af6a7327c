//! The fitted models and how their scores combine.
//!
//! With labels, the decision score (`combined`) is the supervised model's fraud probability:
//! gradient-boosted trees over the feature vector plus the Isolation Forest score and the
//! autoencoder error, so the unsupervised models keep contributing (and catch what labels have
//! not yet seen). Without labels, combined = ½·F_if(s_if) + ½·F_ae(s_ae), where F is each
//! model's empirical CDF over the training rows: "the share of training transactions this one
//! out-scores", so both count equally whatever their raw scales. The `block` and `review`
//! thresholds are the (1 − rate) quantiles of the combined score on calibration rows: with the
//! default rates, 1% of training-like traffic would be blocked and 3% flagged.

use super::Action;
use aegis_model::{Autoencoder, EmpiricalCdf, Gbdt, IsolationForest, Matrix, StandardScaler, autoencoder::Workspace};
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
    /// The decision score in [0, 1].
    pub combined: f32,
    /// Isolation Forest anomaly score in (0, 1].
    pub if_score: f32,
    /// Autoencoder reconstruction MSE on standardised features.
    pub ae_mse: f32,
    /// The supervised model's fraud probability, if the bundle has one.
    pub fraud_probability: Option<f32>,
}

/// Everything needed to score a feature vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Models {
    pub scaler: StandardScaler,
    pub forest: IsolationForest,
    pub autoencoder: Autoencoder,
    pub if_cdf: EmpiricalCdf,
    pub ae_cdf: EmpiricalCdf,
    /// Gradient-boosted trees over [raw features…, if_score, ae_mse], when training had labels.
    #[serde(default)]
    pub supervised: Option<Gbdt>,
}

/// Scratch space for [`Models::score_row`], sized for one model set; reused across rows.
#[derive(Debug, Clone)]
pub struct Scratch {
    scaled: Vec<f32>,
    /// Per-feature autoencoder reconstruction errors of the last row.
    pub errors: Vec<f32>,
    workspace: Workspace,
    /// The supervised model's input of the last row.
    input: Vec<f32>,
}

impl Models {
    pub fn n_features(&self) -> usize {
        self.scaler.n_features()
    }

    pub fn scratch(&self) -> Scratch {
        let d = self.n_features();
        Scratch {
            scaled: vec![0.0; d],
            errors: vec![0.0; d],
            workspace: self.autoencoder.workspace(),
            input: vec![0.0; d + 2],
        }
    }

    /// The unsupervised combination: mean of both models' training percentiles.
    pub fn combine_unsupervised(&self, if_score: f32, ae_mse: f32) -> f32 {
        0.5 * self.if_cdf.cdf(if_score) + 0.5 * self.ae_cdf.cdf(ae_mse)
    }

    fn score_from(&self, if_score: f32, ae_mse: f32, fraud_probability: Option<f32>) -> Score {
        let combined = fraud_probability.unwrap_or_else(|| self.combine_unsupervised(if_score, ae_mse));
        Score { combined, if_score, ae_mse, fraud_probability }
    }

    /// Scores one raw feature row (the per-feature reconstruction errors are left in
    /// `scratch.errors` and the supervised input in the scratch, to explain the score).
    pub fn score_row(&self, raw: &[f32], scratch: &mut Scratch) -> aegis_model::Result<Score> {
        let Scratch { scaled, errors, workspace, input } = scratch;
        scaled.copy_from_slice(raw);
        self.scaler.transform_row(scaled)?;
        let if_score = self.forest.score(scaled)?;
        let ae_mse = self.autoencoder.reconstruction_errors(scaled, workspace, errors)?;
        let p = match &self.supervised {
            Some(gbdt) => {
                let d = raw.len();
                input[..d].copy_from_slice(raw);
                input[d] = if_score;
                input[d + 1] = ae_mse;
                Some(gbdt.predict(input)?)
            }
            None => None,
        };
        Ok(self.score_from(if_score, ae_mse, p))
    }

    /// Per-input contributions of the supervised model to the last row scored with `scratch`
    /// (one per feature, then the forest and the autoencoder), or `None` without one.
    pub fn contributions(&self, scratch: &Scratch, out: &mut [f32]) -> Option<()> {
        self.supervised.as_ref()?.contributions(&scratch.input, out).ok().map(|_| ())
    }

    /// The unsupervised scores of every raw row, in parallel: (if_score, ae_mse) columns.
    pub fn unsupervised_scores(&self, raw: &Matrix) -> aegis_model::Result<(Vec<f32>, Vec<f32>)> {
        let mut scaled = raw.clone();
        self.scaler.transform(&mut scaled)?;
        let (if_scores, ae_scores) =
            rayon::join(|| self.forest.score_batch(&scaled), || self.autoencoder.score_batch(&scaled));
        Ok((if_scores?, ae_scores?))
    }

    /// Scores every raw row, in parallel; the same numbers as [`Models::score_row`].
    pub fn score_matrix(&self, raw: &Matrix) -> aegis_model::Result<Vec<Score>> {
        let (if_scores, ae_scores) = self.unsupervised_scores(raw)?;
        let probabilities = match &self.supervised {
            Some(gbdt) => Some(gbdt.predict_batch(&supervised_input(raw, &if_scores, &ae_scores))?),
            None => None,
        };
        Ok((0..raw.n_rows())
            .into_par_iter()
            .map(|i| self.score_from(if_scores[i], ae_scores[i], probabilities.as_ref().map(|p| p[i])))
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
        if let Some(gbdt) = &self.supervised {
            gbdt.validate()?;
            if gbdt.n_features() != n_features + 2 {
                return Err(aegis_model::ModelError::FeatureCount { expected: n_features + 2, got: gbdt.n_features() });
            }
        }
        Ok(())
    }
}

/// The supervised model's input: each raw row followed by its forest score and AE error.
pub fn supervised_input(raw: &Matrix, if_scores: &[f32], ae_scores: &[f32]) -> Matrix {
    let d = raw.n_cols();
    let mut data = Vec::with_capacity(raw.n_rows() * (d + 2));
    for (i, row) in raw.rows().enumerate() {
        data.extend_from_slice(row);
        data.push(if_scores[i]);
        data.push(ae_scores[i]);
    }
    // The length is n_rows × (d + 2) by construction.
    Matrix::from_vec(data, d + 2).unwrap_or_else(|_| Matrix::with_cols(d + 2))
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
