//! Test support shared by unit tests: a small bundle trained on generated data.

use super::{Bundle, DataInfo, FORMAT_VERSION, FeatureSchema, FitConfig, Manifest, fit};
use crate::domain::CardKey;
use crate::features::{CategoryEncoder, DEFAULT_LABEL_DELAY_SECS, Encoders, FeatureConfig, replay};
use crate::generator::{GeneratorConfig, generate, write_csv};
use crate::ingest::{ColumnMap, LabelledTransaction, read_transactions};
use aegis_model::{AutoencoderParams, GbdtParams, IsolationForestParams};

/// A small bundle trained on generated data (with its labels, so with a supervised model),
/// and the rows it was trained on.
pub(crate) fn trained() -> (Bundle, Vec<LabelledTransaction>) {
    trained_with(crate::domain::fields::Schema::default())
}

/// [`trained`], reading and learning from `schema`'s declared fields.
pub(crate) fn trained_with(schema: crate::domain::fields::Schema) -> (Bundle, Vec<LabelledTransaction>) {
    let cfg = GeneratorConfig {
        rows: 6000,
        cards: 200,
        merchants: 100,
        days: 20,
        start: 1_735_689_600,
        seed: 3,
        fraud_rate: 0.04,
        label_noise: 0.0,
    };
    let file = tempfile::NamedTempFile::new().unwrap();
    write_csv(&generate(&cfg).unwrap(), file.reopen().unwrap(), |_| {}).unwrap();
    let columns = ColumnMap::default().with_schema(schema.clone());
    let data = read_transactions(file.path(), &columns, &CardKey::new(b"k"), false, |_| {}).unwrap();
    let rows = data.rows;
    let encoders = Encoders {
        country: CategoryEncoder::fit(rows.iter().map(|r| (r.txn.country.as_str(), r.label))),
        category: CategoryEncoder::fit(
            rows.iter().map(|r| (r.txn.merchant_category.as_deref().unwrap_or(""), r.label)),
        ),
    };
    let config = FeatureConfig { fields: schema, ..Default::default() };
    let features = replay(&rows, 0..rows.len(), &encoders, config.clone(), DEFAULT_LABEL_DELAY_SECS, |_| {}).features;
    let fit_cfg = FitConfig {
        forest: IsolationForestParams::default().n_trees(50),
        autoencoder: AutoencoderParams::default().max_epochs(3),
        supervised: GbdtParams::default().max_trees(40),
        max_supervised_rows: 100_000,
        max_autoencoder_rows: 100_000,
        export_supervised: None,
        review_rate: 0.03,
        block_rate: 0.01,
        block_precision: None,
        review_precision: None,
    };
    let labels: Vec<Option<bool>> = rows.iter().map(|r| r.label).collect();
    let fitted = fit(&features, Some(&labels), &fit_cfg).unwrap();
    assert!(fitted.models.supervised.is_some(), "{:?}", fitted.fallback);
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        version: "test".into(),
        created_at: String::new(),
        aegis_version: String::new(),
        schema: FeatureSchema::transaction(config),
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
        autoencoder_training: fitted.models.autoencoder.history().clone(),
        thresholds: fitted.thresholds,
        supervised: fitted.supervised,
        metrics: None,
    };
    (Bundle { manifest, encoders: Some(encoders), models: fitted.models }, rows)
}
