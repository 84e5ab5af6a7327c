//! The live scoring path: one transaction at a time, with per-card streaming state.
//!
//! It runs exactly the code training replays ([`FeaturePipeline::observe`]) and the same model
//! arithmetic as batch scoring ([`Models::score_row`]), so a transaction scores the same live as
//! in a backtest. Scratch buffers are owned and reused: scoring does not allocate except for
//! the reasons' text.

use super::{Action, Bundle, SchemaKind, Score, Thresholds, reasons};
use crate::domain::Transaction;
use crate::features::{FeaturePipeline, N_FEATURES};
use aegis_model::autoencoder::Workspace;
use anyhow::{Context, bail};

/// The outcome for one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub score: Score,
    pub action: Action,
    /// Short sentences, most important first.
    pub reasons: Vec<String>,
}

#[derive(Debug)]
pub struct Scorer {
    bundle: Bundle,
    pipeline: FeaturePipeline,
    features: [f32; N_FEATURES],
    scaled: [f32; N_FEATURES],
    errors: [f32; N_FEATURES],
    workspace: Workspace,
}

impl Scorer {
    /// A scorer with empty card state. Only transaction bundles can score transactions.
    pub fn new(bundle: Bundle) -> anyhow::Result<Self> {
        let encoders = check(&bundle)?;
        let workspace = bundle.models.autoencoder.workspace();
        Ok(Self {
            pipeline: FeaturePipeline::new(encoders),
            bundle,
            features: [0.0; N_FEATURES],
            scaled: [0.0; N_FEATURES],
            errors: [0.0; N_FEATURES],
            workspace,
        })
    }

    /// Scores with `bundle` from now on, keeping every card's history (hot reload). On error
    /// the current bundle stays.
    pub fn replace_bundle(&mut self, bundle: Bundle) -> anyhow::Result<()> {
        let encoders = check(&bundle)?;
        self.workspace = bundle.models.autoencoder.workspace();
        self.pipeline.set_encoders(encoders);
        self.bundle = bundle;
        Ok(())
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.bundle.manifest.thresholds
    }

    /// The version of the model bundle in use.
    pub fn model_version(&self) -> &str {
        &self.bundle.manifest.version
    }

    /// How many cards have a history.
    pub fn n_cards(&self) -> usize {
        self.pipeline.n_cards()
    }

    /// Records a past transaction in its card's state without scoring it (warm-up).
    pub fn observe(&mut self, txn: &Transaction) {
        self.pipeline.observe(txn, &mut self.features);
    }

    /// Computes the transaction's features, records it, scores it and decides.
    pub fn score(&mut self, txn: &Transaction) -> anyhow::Result<Decision> {
        self.pipeline.observe(txn, &mut self.features);
        let score =
            self.bundle.models.score_row(&self.features, &mut self.scaled, &mut self.workspace, &mut self.errors)?;
        let action = self.thresholds().action(score.combined);
        let reasons =
            if action == Action::Allow { Vec::new() } else { reasons::explain(txn, &self.features, &self.errors, 3) };
        Ok(Decision { score, action, reasons })
    }
}

/// The bundle's encoders, if it can score transactions.
fn check(bundle: &Bundle) -> anyhow::Result<crate::features::Encoders> {
    if bundle.manifest.schema.kind != SchemaKind::Transaction {
        bail!("bundle {} was trained on numeric columns and cannot score transactions", bundle.manifest.version);
    }
    bundle.encoders.clone().context("the bundle has no encoders")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CardKey;
    use crate::features::{CategoryEncoder, Encoders, replay};
    use crate::generator::{GeneratorConfig, generate, write_csv};
    use crate::ingest::{ColumnMap, read_transactions};
    use crate::scoring::{DataInfo, FORMAT_VERSION, FeatureSchema, FitConfig, Manifest, fit};
    use aegis_model::{AutoencoderParams, IsolationForestParams};

    /// A small bundle trained on generated data, and the rows it was trained on.
    fn trained() -> (Bundle, Vec<crate::ingest::LabelledTransaction>) {
        let cfg = GeneratorConfig {
            rows: 3000,
            cards: 200,
            merchants: 100,
            days: 10,
            start: 1_735_689_600,
            seed: 3,
            fraud_rate: 0.04,
            label_noise: 0.0,
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        write_csv(&generate(&cfg).unwrap(), file.reopen().unwrap(), |_| {}).unwrap();
        let data = read_transactions(file.path(), &ColumnMap::default(), &CardKey::new(b"k"), false, |_| {}).unwrap();
        let rows = data.rows;
        let encoders = Encoders {
            country: CategoryEncoder::fit(rows.iter().map(|r| (r.txn.country.as_str(), r.label))),
            category: CategoryEncoder::fit(
                rows.iter().map(|r| (r.txn.merchant_category.as_deref().unwrap_or(""), r.label)),
            ),
        };
        let features = replay(&rows, 0..rows.len(), &encoders, |_| {});
        let fit_cfg = FitConfig {
            forest: IsolationForestParams::default().n_trees(50),
            autoencoder: AutoencoderParams::default().max_epochs(3),
            review_rate: 0.03,
            block_rate: 0.01,
        };
        let (models, thresholds) = fit(&features, &fit_cfg).unwrap();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            version: "test".into(),
            created_at: String::new(),
            aegis_version: String::new(),
            schema: FeatureSchema::transaction(),
            data: DataInfo {
                path: String::new(),
                sha256: String::new(),
                rows: rows.len(),
                training_rows: rows.len(),
                holdout_rows: 0,
                from: None,
                to: None,
                label_column: None,
            },
            isolation_forest: fit_cfg.forest,
            autoencoder: fit_cfg.autoencoder,
            autoencoder_training: models.autoencoder.history().clone(),
            thresholds,
            metrics: None,
        };
        (Bundle { manifest, encoders: Some(encoders), models }, rows)
    }

    #[test]
    fn live_scores_equal_batch_replay_scores() {
        let (bundle, rows) = trained();
        let features = replay(&rows, 1000..rows.len(), bundle.encoders.as_ref().unwrap(), |_| {});
        let batch = bundle.models.score_matrix(&features).unwrap();
        let mut scorer = Scorer::new(bundle).unwrap();
        for r in &rows[..1000] {
            scorer.observe(&r.txn);
        }
        let mut flagged = 0;
        for (r, want) in rows[1000..].iter().zip(&batch) {
            let got = scorer.score(&r.txn).unwrap();
            assert_eq!(got.score, *want, "txn {}", r.txn.txn_id);
            assert_eq!(got.action, scorer.thresholds().action(want.combined));
            assert_eq!(got.reasons.is_empty(), got.action == Action::Allow);
            flagged += usize::from(got.action != Action::Allow);
        }
        assert!(flagged > 0, "some transactions should be flagged");
    }

    #[test]
    fn bundle_round_trips_through_disk() {
        let (bundle, _) = trained();
        let dir = tempfile::tempdir().unwrap();
        let path = bundle.save(dir.path(), &[("report.json", b"{}")]).unwrap();
        assert!(path.join("report.json").is_file());
        let back = Bundle::load(dir.path()).unwrap();
        assert_eq!(back.models, bundle.models);
        assert_eq!(back.manifest, bundle.manifest);
        assert_eq!(back.encoders, bundle.encoders);
        // Saving the same version again is refused rather than overwriting it.
        assert!(bundle.save(dir.path(), &[]).is_err());
    }
}
