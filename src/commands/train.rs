//! `aegis train`: read a CSV, replay it (transactions and label events) through the feature
//! pipeline, fit the unsupervised models and — with labels — the supervised one, calibrate the
//! thresholds, evaluate on the held-out last part, and write a versioned bundle.

use super::{report_skipped, rfc3339};
use crate::cli::TrainArgs;
use crate::evaluation::{self, Report, RowContext};
use crate::features::{CategoryEncoder, DEFAULT_LABEL_DELAY_SECS, Encoders, FeatureConfig, TimeWindow, replay};
use crate::ingest::{NumericSpec, read_numeric};
use crate::progress;
use crate::scoring::{Bundle, DataInfo, FORMAT_VERSION, FeatureSchema, FitConfig, Manifest, SchemaKind, fit};
use aegis_model::{AutoencoderParams, GbdtParams, IsolationForestParams, Matrix};
use anyhow::{Context, bail, ensure};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Instant;

/// The data, featurised and split.
struct Prepared {
    schema: FeatureSchema,
    encoders: Option<Encoders>,
    train: Matrix,
    /// Per training row, its label if it was known by the end of the training part.
    train_labels: Option<Vec<Option<bool>>>,
    holdout: Option<Holdout>,
    rows: usize,
    label_column: Option<String>,
}

/// The held-out, labelled last part of the data.
pub(crate) struct Holdout {
    pub features: Matrix,
    pub labels: Vec<bool>,
    pub context: Option<Vec<RowContext>>,
    pub scenarios: Option<Vec<Option<Box<str>>>>,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    ensure!((0.0..0.9).contains(&args.holdout), "--holdout must be in [0, 0.9)");
    let fit_config = FitConfig {
        forest: IsolationForestParams::default().n_trees(args.trees).sample_size(args.sample_size).seed(args.seed),
        autoencoder: AutoencoderParams {
            max_epochs: args.epochs,
            patience: args.patience,
            seed: args.seed,
            ..AutoencoderParams::default()
        },
        supervised: GbdtParams::default().max_trees(args.supervised_trees).seed(args.seed),
        max_supervised_rows: args.supervised_max_rows,
        max_autoencoder_rows: args.autoencoder_max_rows,
        export_supervised: args.export_supervised.clone(),
        review_rate: args.review_rate,
        block_rate: args.block_rate,
        block_precision: args.block_precision,
        review_precision: args.review_precision,
    };
    fit_config.check()?;
    ensure!(!(args.numeric && args.data.db.is_some()), "--numeric reads a CSV (--data), not a results database");
    let sha256 = match (&args.data.data, &args.data.db) {
        (Some(csv), _) => sha256_file(csv)?,
        (None, Some(db)) => store_digest(db)?,
        (None, None) => bail!("give --data FILE.csv or --db results.db"),
    };
    let prepared = if args.numeric { prepare_numeric(args)? } else { prepare_transactions(args)? };
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "data read and featurised");
    let has_labels = prepared.label_column.is_some();
    println!(
        "training on {} rows × {} features{}",
        prepared.train.n_rows(),
        prepared.train.n_cols(),
        prepared
            .holdout
            .as_ref()
            .map_or(String::new(), |h| format!(", holding out the last {} for evaluation", h.features.n_rows()))
    );

    let labels = if args.unsupervised { None } else { prepared.train_labels.as_deref() };
    let fitted = fit(&prepared.train, labels, &fit_config)?;
    let (models, thresholds) = (fitted.models, fitted.thresholds);

    let report = match &prepared.holdout {
        Some(h) => {
            if let Some(dir) = args.export_supervised.as_ref().filter(|_| models.supervised.is_some()) {
                let (if_scores, ae_scores) = models.unsupervised_scores(&h.features)?;
                let input = crate::scoring::supervised_input(&h.features, &if_scores, &ae_scores);
                crate::scoring::write_csv(&dir.join("holdout.csv"), &input, &h.labels, None)?;
            }
            let scores = models.score_matrix(&h.features)?;
            let window = (args.data.from.map(rfc3339), args.data.to.map(rfc3339));
            Some(evaluation::evaluate(
                &scores,
                &h.labels,
                h.context.as_deref(),
                h.scenarios.as_deref(),
                &models,
                &thresholds,
                window,
            ))
        }
        None => None,
    };

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        version: new_version(&args.out, &sha256),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        aegis_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema: prepared.schema,
        data: DataInfo {
            path: super::data_source(&args.data),
            sha256,
            rows: prepared.rows,
            training_rows: prepared.train.n_rows(),
            holdout_rows: prepared.holdout.as_ref().map_or(0, |h| h.features.n_rows()),
            from: args.data.from.map(rfc3339),
            to: args.data.to.map(rfc3339),
            label_column: prepared.label_column,
        },
        isolation_forest: models.forest.params().clone(),
        autoencoder: models.autoencoder.params().clone(),
        autoencoder_training: models.autoencoder.history().clone(),
        thresholds,
        supervised: fitted.supervised.clone(),
        metrics: report.as_ref().map(Report::summary),
    };
    let bundle = Bundle { manifest, encoders: prepared.encoders, models };
    let extra = match &report {
        Some(r) => vec![
            ("report.json".to_owned(), serde_json::to_vec_pretty(r)?),
            (
                "report.html".to_owned(),
                evaluation::write_html(r, &format!("Aegis evaluation — {}", bundle.manifest.version))?.into_bytes(),
            ),
        ],
        None => Vec::new(),
    };
    let extra: Vec<(&str, &[u8])> = extra.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "models fitted and evaluated");
    let dir = if args.challenger { bundle.save_beside(&args.out, &extra)? } else { bundle.save(&args.out, &extra)? };

    if let Some(r) = &report {
        evaluation::print_table(r, std::io::stdout().lock())?;
    } else if has_labels {
        println!("no rows held out (--holdout 0): trained without evaluation");
    } else {
        println!("the data has no labels: trained without evaluation (map a label column with --columns label=COLUMN)");
    }
    match (&fitted.supervised, &fitted.fallback) {
        (Some(s), _) => println!(
            "supervised model: {} trees in {:.1}s on {} rows ({} known frauds; legitimate rows sampled at {:.3}), validated on the newest {} labelled rows ({} frauds)",
            s.trees,
            s.fit_secs,
            s.fit_rows,
            s.fit_frauds,
            s.negative_sample_rate,
            s.validation_rows,
            s.validation_frauds
        ),
        (None, Some(why)) => {
            println!("no supervised model: {why}; the decision score is the Isolation Forest + autoencoder combination")
        }
        (None, None) if args.unsupervised => println!("no supervised model (--unsupervised)"),
        (None, None) => {}
    }
    if let Some(gbdt) = &bundle.models.supervised {
        println!("top features by gain: {}", top_features(&bundle.manifest.schema.names, &gbdt.importance(), 10));
    }
    let h = bundle.models.autoencoder.history();
    println!(
        "autoencoder: {} epochs{}, best validation loss {:.4}",
        h.train_loss.len(),
        if h.stopped_early { " (stopped early)" } else { "" },
        h.validation_loss.get(h.best_epoch).or(h.train_loss.get(h.best_epoch)).copied().unwrap_or(f32::NAN)
    );
    for note in &fitted.notes {
        println!("note: {note}");
    }
    println!(
        "thresholds: review ≥ {:.4}, block ≥ {:.4} (top {:.1}% / {:.1}% of calibration scores)",
        thresholds.review,
        thresholds.block,
        100.0 * thresholds.review_rate,
        100.0 * thresholds.block_rate
    );
    println!("model bundle written to {} in {:.1}s", dir.display(), started.elapsed().as_secs_f64());
    if args.challenger {
        println!(
            "a challenger: try it with `aegis serve --shadow {}`; once labels show it does better (`aegis evaluate --db`), POST /admin/promote",
            dir.display()
        );
    }
    Ok(())
}

/// A fingerprint of a results database's content for the manifest: its row count and newest
/// transaction and verdict (hashing a live database file would race its writers).
fn store_digest(db: &crate::store::Location) -> anyhow::Result<String> {
    // Opening would create a mistyped SQLite path as an empty database.
    anyhow::ensure!(db.exists(), "{db} does not exist (run `aegis serve` or `aegis demo` first)");
    let mut store = crate::store::Store::open(db)?;
    let text = format!("{db}:{}:{:?}:{}", store.count()?, store.latest_timestamp()?, store.last_verdict_seq()?);
    Ok(format!("{:x}", Sha256::digest(text.as_bytes())))
}

fn prepare_transactions(args: &TrainArgs) -> anyhow::Result<Prepared> {
    let schema = match &args.schema {
        Some(path) => crate::domain::fields::Schema::load(path)?,
        None => crate::domain::fields::Schema::default(),
    };
    let data = super::read_data(&args.data, &schema)?;
    report_skipped(&data.skipped);
    let rows = &data.rows;
    let window = TimeWindow { from: args.data.from, to: args.data.to };
    let range = window.range(rows);
    ensure!(!range.is_empty(), "no rows fall inside the --from/--to window");
    let n = range.len();
    let n_train = if data.has_labels { ((n as f64) * (1.0 - args.holdout)).round() as usize } else { n };
    ensure!(n_train >= 10, "need at least 10 training rows in the window, got {n_train}");
    let train_rows = &rows[range.start..range.start + n_train];
    let encoders = Encoders {
        country: CategoryEncoder::fit(train_rows.iter().map(|r| (r.txn.country.as_str(), r.label))),
        category: CategoryEncoder::fit(
            train_rows.iter().map(|r| (r.txn.merchant_category.as_deref().unwrap_or(""), r.label)),
        ),
    };
    let delay = args.data.label_delay.unwrap_or(DEFAULT_LABEL_DELAY_SECS);
    let config = FeatureConfig { label_delay_secs: delay, fields: schema };
    let bar = progress::bar(range.end as u64, "features", "rows");
    let started = Instant::now();
    let replayed = replay(rows, range.clone(), &encoders, config.clone(), delay, |n| bar.set_position(n));
    bar.finish_and_clear();
    tracing::debug!(secs = started.elapsed().as_secs_f64(), rows = range.end, "features replayed");
    let features = replayed.features;

    // The supervised model learns only from labels known by the end of the training part:
    // the newest rows' labels had not arrived yet, as in production.
    let train_end = rows.get(range.start + n_train).map_or_else(
        || args.data.to.unwrap_or_else(|| train_rows.last().map_or(0, |r| r.txn.timestamp + 1)),
        |r| r.txn.timestamp,
    );
    let train_labels = data.has_labels.then(|| {
        train_rows
            .iter()
            .map(|r| {
                let known = r.label_time.unwrap_or(r.txn.timestamp.saturating_add(delay));
                r.label.filter(|_| known < train_end)
            })
            .collect()
    });
    let train_idx: Vec<usize> = (0..n_train).collect();
    let holdout = (n_train < n).then(|| {
        let idx: Vec<usize> = (n_train..n).collect();
        let held = &rows[range.start + n_train..range.end];
        Holdout {
            features: features.select_rows(&idx),
            labels: held.iter().map(|r| r.label == Some(true)).collect(),
            context: Some(
                held.iter()
                    .zip(&replayed.known_compromised[n_train..])
                    .map(|(r, &known_compromised)| RowContext {
                        card: r.txn.card.as_u128(),
                        timestamp: r.txn.timestamp,
                        known_compromised,
                    })
                    .collect(),
            ),
            scenarios: data.has_scenarios.then(|| held.iter().map(|r| r.scenario.clone()).collect()),
        }
    });
    Ok(Prepared {
        schema: FeatureSchema::transaction(config),
        encoders: Some(encoders),
        train: features.select_rows(&train_idx),
        train_labels,
        holdout,
        rows: rows.len(),
        label_column: data.has_labels.then(|| args.data.columns.label_name().to_owned()),
    })
}

fn prepare_numeric(args: &TrainArgs) -> anyhow::Result<Prepared> {
    if args.data.from.is_some() || args.data.to.is_some() {
        bail!("--from/--to need timestamps, which --numeric data does not have");
    }
    let spec = NumericSpec { target: args.target.clone(), features: args.features.clone() };
    let csv = args.data.data.as_deref().context("--numeric needs --data FILE.csv")?;
    let data = read_numeric(csv, &spec, args.data.skip_bad_rows)?;
    report_skipped(&data.skipped);
    let n = data.matrix.n_rows();
    // File order is taken as time order.
    let n_train = if data.labels.is_some() { ((n as f64) * (1.0 - args.holdout)).round() as usize } else { n };
    ensure!(n_train >= 10, "need at least 10 training rows, got {n_train}");
    let train_idx: Vec<usize> = (0..n_train).collect();
    let holdout = data.labels.as_ref().filter(|_| n_train < n).map(|labels| Holdout {
        features: data.matrix.select_rows(&(n_train..n).collect::<Vec<_>>()),
        labels: labels[n_train..].to_vec(),
        context: None,
        scenarios: None,
    });
    // A preprocessed file's labels are all known: the supervised model learns from every one.
    let train_labels = data.labels.as_ref().map(|l| l[..n_train].iter().map(|&l| Some(l)).collect());
    Ok(Prepared {
        schema: FeatureSchema {
            kind: SchemaKind::Numeric,
            version: 1,
            names: data.names,
            label_delay_secs: None,
            fields: Default::default(),
        },
        encoders: None,
        train: data.matrix.select_rows(&train_idx),
        train_labels,
        holdout,
        rows: n,
        label_column: args.target.clone(),
    })
}

/// `YYYYMMDD-HHMMSS-<first 6 hex of the data hash>-<4 random hex>`: two bundles trained in
/// the same second on the same data (say, with other settings) still get different versions,
/// which is what the store and `/metrics` tell them apart by.
fn new_version(root: &Path, sha256: &str) -> String {
    let base = format!(
        "{}-{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        &sha256[..6.min(sha256.len())],
        rand::random::<u16>()
    );
    let mut version = base.clone();
    let mut k = 2;
    while root.join(&version).exists() {
        version = format!("{base}-{k}");
        k += 1;
    }
    version
}

pub(crate) fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// The `n` inputs of the supervised model with the largest share of its split gain, as
/// "name 23.1%, …" (its inputs: the features, then the two anomaly scores), so a team sees what
/// its declared fields bring.
fn top_features(names: &[String], importance: &[f32], n: usize) -> String {
    let name = |i: usize| match i.checked_sub(names.len()) {
        None => names[i].as_str(),
        Some(0) => "isolation_forest_score",
        Some(_) => "autoencoder_error",
    };
    let mut order: Vec<usize> = (0..importance.len()).filter(|&i| importance[i] > 0.0).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]));
    order.iter().take(n).map(|&i| format!("{} {:.1}%", name(i), 100.0 * importance[i])).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_features_name_the_largest_gains_and_the_anomaly_scores() {
        let names = vec!["a".to_owned(), "device_id_log_cards_24h".to_owned()];
        let line = super::top_features(&names, &[0.1, 0.6, 0.0, 0.3], 3);
        assert_eq!(line, "device_id_log_cards_24h 60.0%, autoencoder_error 30.0%, a 10.0%");
    }
}
