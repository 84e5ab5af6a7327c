//! Fitting the models and calibrating the thresholds on a training matrix.

use super::{Models, Thresholds};
use crate::progress;
use aegis_model::{
    AutoencoderParams, EmpiricalCdf, IsolationForestParams, Matrix, StandardScaler, calibration::quantile,
};
use anyhow::{Context, ensure};

/// Hyper-parameters for one training run.
#[derive(Debug, Clone)]
pub struct FitConfig {
    pub forest: IsolationForestParams,
    pub autoencoder: AutoencoderParams,
    pub review_rate: f64,
    pub block_rate: f64,
}

impl FitConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(0.0 < self.block_rate && self.block_rate < 0.5, "--block-rate must be in (0, 0.5)");
        ensure!(
            self.block_rate <= self.review_rate && self.review_rate < 0.5,
            "--review-rate must be at least --block-rate and below 0.5"
        );
        Ok(())
    }
}

/// Standardises, fits the Isolation Forest and the autoencoder, calibrates each model's score
/// distribution and sets the thresholds at the configured training quantiles.
pub fn fit(train: &Matrix, cfg: &FitConfig) -> anyhow::Result<(Models, Thresholds)> {
    cfg.check()?;
    ensure!(train.n_rows() >= 10, "need at least 10 training rows, got {}", train.n_rows());
    let scaler = StandardScaler::fit(train).context("cannot standardise the features")?;
    let mut scaled = train.clone();
    scaler.transform(&mut scaled)?;

    let spin = progress::spinner("isolation forest");
    let forest = cfg.forest.fit(&scaled).context("cannot fit the Isolation Forest")?;
    spin.finish_and_clear();

    let bar = progress::bar(cfg.autoencoder.max_epochs as u64, "autoencoder", "epochs");
    let autoencoder = cfg
        .autoencoder
        .fit_with_progress(&scaled, |e| {
            bar.set_position(e.epoch as u64 + 1);
            bar.set_message(format!("loss {:.4}", e.monitored_loss));
        })
        .context("cannot train the autoencoder")?;
    bar.finish_and_clear();

    let if_scores = forest.score_batch(&scaled)?;
    let ae_scores = autoencoder.score_batch(&scaled)?;
    let if_cdf = EmpiricalCdf::fit(&if_scores)?;
    let ae_cdf = EmpiricalCdf::fit(&ae_scores)?;
    let models = Models { scaler, forest, autoencoder, if_cdf, ae_cdf };
    let combined: Vec<f32> = if_scores.iter().zip(&ae_scores).map(|(&i, &a)| models.combine(i, a)).collect();
    let at = |rate: f64| quantile(&combined, 1.0 - rate).unwrap_or(1.0);
    let thresholds = Thresholds {
        review_rate: cfg.review_rate,
        block_rate: cfg.block_rate,
        review: at(cfg.review_rate),
        block: at(cfg.block_rate),
    };
    Ok((models, thresholds))
}
