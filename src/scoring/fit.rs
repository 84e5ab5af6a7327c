//! Fitting the models and calibrating the thresholds on a training matrix.

use super::models::supervised_input;
use super::{Models, Thresholds};
use crate::progress;
use aegis_model::{
    AutoencoderParams, EmpiricalCdf, GbdtParams, IsolationForestParams, Matrix, StandardScaler, calibration::quantile,
};
use anyhow::{Context, ensure};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Fewest known frauds (in the fitting part) to train the supervised model.
pub const MIN_POSITIVES: usize = 20;
/// Share of the labelled training rows, the newest, used for early stopping and calibration.
const VALIDATION_SHARE: f64 = 0.2;

/// Hyper-parameters for one training run.
#[derive(Debug, Clone)]
pub struct FitConfig {
    pub forest: IsolationForestParams,
    pub autoencoder: AutoencoderParams,
    pub supervised: GbdtParams,
    /// The supervised model fits on at most this many rows: every fraud, and legitimate rows
    /// sampled (seeded) and weighted up so that probabilities stay calibrated.
    pub max_supervised_rows: usize,
    /// The autoencoder trains on a seeded sample of at most this many rows.
    pub max_autoencoder_rows: usize,
    pub review_rate: f64,
    pub block_rate: f64,
    /// With a supervised model: set the block (review) threshold at the lowest score whose
    /// validation precision reaches this, instead of by rate.
    pub block_precision: Option<f64>,
    pub review_precision: Option<f64>,
    /// Write the supervised model's fit and validation inputs here (`fit.csv`, `valid.csv`), to
    /// compare other learners on exactly the same rows.
    pub export_supervised: Option<std::path::PathBuf>,
}

impl FitConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(0.0 < self.block_rate && self.block_rate < 0.5, "--block-rate must be in (0, 0.5)");
        ensure!(
            self.block_rate <= self.review_rate && self.review_rate < 0.5,
            "--review-rate must be at least --block-rate and below 0.5"
        );
        ensure!(self.max_supervised_rows >= 1_000, "the supervised row budget must be at least 1,000");
        ensure!(self.max_autoencoder_rows >= 100, "the autoencoder row budget must be at least 100");
        for (flag, p) in [("--block-precision", self.block_precision), ("--review-precision", self.review_precision)] {
            ensure!(p.is_none_or(|p| 0.0 < p && p <= 1.0), "{flag} must be in (0, 1]");
        }
        Ok(())
    }
}

/// What the supervised model was trained on, for the manifest and the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisedSummary {
    /// Training rows whose label was known by the end of the training window.
    pub labelled_rows: usize,
    pub fit_rows: usize,
    pub fit_frauds: usize,
    /// Legitimate rows kept in the fit (each weighted by the inverse).
    pub negative_sample_rate: f64,
    pub validation_rows: usize,
    pub validation_frauds: usize,
    pub trees: usize,
    pub best_validation_loss: Option<f32>,
    /// Wall time of the boosting itself.
    #[serde(default)]
    pub fit_secs: f64,
}

/// A fit's result.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub models: Models,
    pub thresholds: Thresholds,
    /// Set when the supervised model was trained.
    pub supervised: Option<SupervisedSummary>,
    /// Why there is no supervised model, when labels were given but could not be used.
    pub fallback: Option<String>,
    /// What the user should know about how thresholds were set.
    pub notes: Vec<String>,
}

/// Standardises, fits the Isolation Forest and the autoencoder, calibrates each model's score
/// distribution, fits the supervised model where `labels` (one per training row: the label if
/// it was known by the end of training, time-ordered rows) allow, and sets the thresholds at the
/// configured quantiles of the decision score — on the newest labelled rows, which the supervised
/// model did not fit, or on every training row without one.
pub fn fit(train: &Matrix, labels: Option<&[Option<bool>]>, cfg: &FitConfig) -> anyhow::Result<Fitted> {
    cfg.check()?;
    ensure!(train.n_rows() >= 10, "need at least 10 training rows, got {}", train.n_rows());
    let clock = std::time::Instant::now();
    let lap = |phase: &str| tracing::debug!(phase, secs = clock.elapsed().as_secs_f64(), "fit");
    let scaler = StandardScaler::fit(train).context("cannot standardise the features")?;
    let mut scaled = train.clone();
    scaler.transform(&mut scaled)?;

    let spin = progress::spinner("isolation forest");
    let forest = cfg.forest.fit(&scaled).context("cannot fit the Isolation Forest")?;
    spin.finish_and_clear();
    lap("isolation forest");

    // The autoencoder learns what normal looks like from a seeded sample: beyond ~20k rows more
    // rows cost time, not quality (BENCHMARKS.md).
    let ae_rows = if scaled.n_rows() > cfg.max_autoencoder_rows {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(cfg.autoencoder.seed ^ 0xae);
        let mut idx = rand::seq::index::sample(&mut rng, scaled.n_rows(), cfg.max_autoencoder_rows).into_vec();
        idx.sort_unstable();
        Some(scaled.select_rows(&idx))
    } else {
        None
    };
    let bar = progress::bar(cfg.autoencoder.max_epochs as u64, "autoencoder", "epochs");
    let autoencoder = cfg
        .autoencoder
        .fit_with_progress(ae_rows.as_ref().unwrap_or(&scaled), |e| {
            bar.set_position(e.epoch as u64 + 1);
            bar.set_message(format!("loss {:.4}", e.monitored_loss));
        })
        .context("cannot train the autoencoder")?;
    bar.finish_and_clear();

    lap("autoencoder");
    let (if_scores, ae_scores) = rayon::join(|| forest.score_batch(&scaled), || autoencoder.score_batch(&scaled));
    let (if_scores, ae_scores) = (if_scores?, ae_scores?);
    drop(scaled);
    let if_cdf = EmpiricalCdf::fit(&if_scores)?;
    let ae_cdf = EmpiricalCdf::fit(&ae_scores)?;
    let mut models = Models { scaler, forest, autoencoder, if_cdf, ae_cdf, supervised: None };

    lap("unsupervised scores");
    let mut fallback = None;
    let mut supervised = None;
    let mut calibration: Vec<f32> =
        if_scores.iter().zip(&ae_scores).map(|(&i, &a)| models.combine_unsupervised(i, a)).collect();
    let mut calibration_labels: Option<Vec<bool>> = None;
    if let Some(labels) = labels {
        ensure!(labels.len() == train.n_rows(), "internal: one label per training row expected");
        let input = supervised_input(train, &if_scores, &ae_scores);
        match fit_supervised(&input, labels, cfg)? {
            Ok((gbdt, summary, validation_rows)) => {
                let valid = input.select_rows(&validation_rows);
                calibration = gbdt.predict_batch(&valid)?;
                calibration_labels = Some(validation_rows.iter().map(|&i| labels[i] == Some(true)).collect());
                models.supervised = Some(gbdt);
                supervised = Some(summary);
            }
            Err(why) => fallback = Some(why),
        }
    }
    lap("supervised");
    let at = |rate: f64| quantile(&calibration, 1.0 - rate).unwrap_or(1.0);
    let mut notes = Vec::new();
    let mut pick = |rate: f64, precision: Option<f64>, flag: &str| -> f32 {
        let Some(target) = precision else { return at(rate) };
        match calibration_labels.as_deref().map(|l| threshold_for_precision(&calibration, l, target)) {
            Some(Some(t)) => t,
            Some(None) => {
                notes.push(format!("{flag} {target}: no threshold reaches it on the validation rows; set by rate"));
                at(rate)
            }
            None => {
                notes.push(format!("{flag} needs the supervised model; set by rate"));
                at(rate)
            }
        }
    };
    let block = pick(cfg.block_rate, cfg.block_precision, "--block-precision");
    let review = pick(cfg.review_rate, cfg.review_precision, "--review-precision").min(block);
    // The rates say what share of validation traffic each threshold flags, however it was set.
    let share = |t: f32| calibration.iter().filter(|&&s| s >= t).count() as f64 / calibration.len().max(1) as f64;
    let thresholds = Thresholds { review_rate: share(review), block_rate: share(block), review, block };
    Ok(Fitted { models, thresholds, supervised, fallback, notes })
}

/// Fewest validation rows a precision-set threshold may flag (a handful of rows says little).
const MIN_FLAGGED_FOR_PRECISION: usize = 10;

/// The lowest score whose rows at or above it have at least `target` precision (flagging at
/// least [`MIN_FLAGGED_FOR_PRECISION`] rows), or `None` if no such score exists.
fn threshold_for_precision(scores: &[f32], labels: &[bool], target: f64) -> Option<f32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut flagged, mut frauds, mut best) = (0usize, 0usize, None);
    for (k, &i) in order.iter().enumerate() {
        flagged += 1;
        frauds += usize::from(labels[i]);
        let end_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if end_of_tie && flagged >= MIN_FLAGGED_FOR_PRECISION && frauds as f64 >= target * flagged as f64 {
            best = Some(scores[i]);
        }
    }
    best
}

type SupervisedFit = (aegis_model::Gbdt, SupervisedSummary, Vec<usize>);

/// Fits the GBDT on the older labelled rows with early stopping on the newer ones; `Err(why)`
/// when there are too few known frauds to learn from.
fn fit_supervised(
    input: &Matrix,
    labels: &[Option<bool>],
    cfg: &FitConfig,
) -> anyhow::Result<Result<SupervisedFit, String>> {
    let labelled: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
    let is_fraud = |i: usize| labels[i] == Some(true);
    let n_valid = ((labelled.len() as f64) * VALIDATION_SHARE).round() as usize;
    let (fit_rows, valid_rows) = labelled.split_at(labelled.len() - n_valid);
    let fit_frauds = fit_rows.iter().filter(|&&i| is_fraud(i)).count();
    let valid_frauds = valid_rows.iter().filter(|&&i| is_fraud(i)).count();
    if fit_frauds < MIN_POSITIVES || valid_rows.is_empty() || fit_frauds == fit_rows.len() {
        return Ok(Err(format!(
            "{} labelled training rows with {} known frauds ({} needed to learn from, and a newer slice to validate on; \
             a row counts as labelled only once its label was known by the end of the training window: a fraud label \
             from when it was reported, a legitimate one a label delay after its transaction)",
            labelled.len(),
            fit_frauds + valid_frauds,
            MIN_POSITIVES
        )));
    }
    // Every fraud; legitimate rows sampled down to the row budget, weighted by the inverse rate.
    let negatives = fit_rows.len() - fit_frauds;
    let budget = cfg.max_supervised_rows.saturating_sub(fit_frauds).max(1);
    let rate = (budget as f64 / negatives as f64).min(1.0);
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(cfg.supervised.seed ^ 0x5eed);
    let chosen: Vec<usize> =
        fit_rows.iter().copied().filter(|&i| is_fraud(i) || rate >= 1.0 || rng.random::<f64>() < rate).collect();
    let weights: Vec<f32> = chosen.iter().map(|&i| if is_fraud(i) { 1.0 } else { (1.0 / rate) as f32 }).collect();
    let y: Vec<bool> = chosen.iter().map(|&i| is_fraud(i)).collect();
    let x = input.select_rows(&chosen);
    let vx = input.select_rows(valid_rows);
    let vy: Vec<bool> = valid_rows.iter().map(|&i| is_fraud(i)).collect();
    if let Some(dir) = &cfg.export_supervised {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        write_csv(&dir.join("fit.csv"), &x, &y, Some(&weights))?;
        write_csv(&dir.join("valid.csv"), &vx, &vy, None)?;
    }
    let spin = progress::spinner("gradient-boosted trees");
    let started = std::time::Instant::now();
    let gbdt =
        cfg.supervised.fit(&x, &y, Some(&weights), Some((&vx, &vy))).context("cannot fit the supervised model")?;
    let fit_secs = started.elapsed().as_secs_f64();
    spin.finish_and_clear();
    let summary = SupervisedSummary {
        labelled_rows: labelled.len(),
        fit_rows: chosen.len(),
        fit_frauds,
        negative_sample_rate: rate,
        validation_rows: valid_rows.len(),
        validation_frauds: valid_frauds,
        trees: gbdt.n_trees(),
        best_validation_loss: gbdt.validation_loss().iter().copied().reduce(f32::min),
        fit_secs,
    };
    Ok(Ok((gbdt, summary, valid_rows.to_vec())))
}

/// Writes `x` as CSV (`f0…fN`, then `label`, then `weight` if given), for other tools.
pub fn write_csv(path: &std::path::Path, x: &Matrix, y: &[bool], weights: Option<&[f32]>) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut header: Vec<String> = (0..x.n_cols()).map(|j| format!("f{j}")).collect();
    header.push("label".into());
    if weights.is_some() {
        header.push("weight".into());
    }
    w.write_record(&header)?;
    let mut record: Vec<String> = Vec::with_capacity(header.len());
    for (i, row) in x.rows().enumerate() {
        record.clear();
        record.extend(row.iter().map(|v| v.to_string()));
        record.push(u8::from(y[i]).to_string());
        if let Some(ws) = weights {
            record.push(ws[i].to_string());
        }
        w.write_record(&record)?;
    }
    w.flush().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_pcg::Pcg64Mcg;

    fn config() -> FitConfig {
        FitConfig {
            forest: IsolationForestParams::default().n_trees(20),
            autoencoder: AutoencoderParams::default().max_epochs(2),
            supervised: GbdtParams::default().max_trees(30),
            max_supervised_rows: 5_000,
            max_autoencoder_rows: 1_000,
            review_rate: 0.03,
            block_rate: 0.01,
            block_precision: None,
            review_precision: None,
            export_supervised: None,
        }
    }

    #[test]
    fn thresholds_can_be_set_by_validation_precision() {
        // Scores 1..=100; 92..=100 are fraud, and the even scores 82..=90. Precision ≥ 0.9 holds
        // from 90 up (10 of 11), not from 89 down (10 of 12, then never again).
        let scores: Vec<f32> = (1..=100).map(|v| v as f32).collect();
        let labels: Vec<bool> = (1..=100).map(|v| (v > 91) || (v > 80 && v <= 90 && v % 2 == 0)).collect();
        assert_eq!(threshold_for_precision(&scores, &labels, 0.9), Some(90.0));
        // 0.7: from 81 up, 14 of 20 frauds.
        assert_eq!(threshold_for_precision(&scores, &labels, 0.7), Some(81.0));
        assert_eq!(threshold_for_precision(&scores, &[false; 100], 0.5), None);
        // End to end: frauds are 5% and separable, so a 0.95 precision target blocks about all
        // of them — five times the default 1% rate — and the reported rate says so.
        let (x, labels) = data(8_000);
        let cfg = FitConfig { block_precision: Some(0.95), ..config() };
        let fitted = fit(&x, Some(&labels), &cfg).unwrap();
        assert!(fitted.notes.is_empty(), "{:?}", fitted.notes);
        assert!((0.03..0.08).contains(&fitted.thresholds.block_rate), "{:?}", fitted.thresholds);
        assert!(fitted.thresholds.review <= fitted.thresholds.block);
        // Without a supervised model the target cannot apply, and the user is told.
        let fitted = fit(&x, None, &cfg).unwrap();
        assert!(fitted.notes[0].contains("needs the supervised model"), "{:?}", fitted.notes);
    }

    /// 4 features; fraud iff x0 > 0.95, so about 5%.
    fn data(n: usize) -> (Matrix, Vec<Option<bool>>) {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut m = Matrix::with_cols(4);
        let mut labels = Vec::new();
        for _ in 0..n {
            let row: Vec<f32> = (0..4).map(|_| rng.random::<f32>()).collect();
            labels.push(Some(row[0] > 0.95));
            m.push_row(&row).unwrap();
        }
        (m, labels)
    }

    #[test]
    fn labels_train_a_supervised_model_that_drives_the_score() {
        let (x, labels) = data(8_000);
        let fitted = fit(&x, Some(&labels), &config()).unwrap();
        let gbdt = fitted.models.supervised.as_ref().expect("a supervised model");
        let s = fitted.supervised.unwrap();
        // Legitimate rows were sampled down to the budget, every fraud kept.
        assert!(s.fit_rows <= 5_000 && s.negative_sample_rate < 1.0, "{s:?}");
        assert_eq!(s.validation_rows, 1_600);
        assert_eq!(gbdt.n_features(), 6);
        let scores = fitted.models.score_matrix(&x).unwrap();
        let high = scores.iter().zip(&labels).filter(|(s, l)| **l == Some(true) && s.combined > 0.5).count();
        let frauds = labels.iter().filter(|l| **l == Some(true)).count();
        assert!(high * 10 > frauds * 9, "{high} of {frauds}");
        assert!(scores.iter().all(|s| s.fraud_probability == Some(s.combined)));
    }

    #[test]
    fn without_labels_or_enough_frauds_it_falls_back_and_says_why() {
        let (x, mut labels) = data(2_000);
        let fitted = fit(&x, None, &config()).unwrap();
        assert!(fitted.models.supervised.is_none() && fitted.fallback.is_none());
        // Only labels known by the end of training count: hide all but 5 frauds.
        let mut kept = 0;
        for l in labels.iter_mut() {
            if *l == Some(true) {
                kept += 1;
                if kept > 5 {
                    *l = None;
                }
            }
        }
        let fitted = fit(&x, Some(&labels), &config()).unwrap();
        assert!(fitted.models.supervised.is_none());
        let why = fitted.fallback.unwrap();
        assert!(why.contains("5 known frauds"), "{why}");
        let scores = fitted.models.score_matrix(&x).unwrap();
        assert!(scores.iter().all(|s| s.fraud_probability.is_none()));
    }
}
