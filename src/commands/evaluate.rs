//! `aegis evaluate`: score a labelled CSV with a bundle and report, as `train` does on its
//! holdout. Rows before `--from` (and their labels, each once it became known) warm up the
//! card and merchant state; rows from `--to` on are ignored.

use super::{report_skipped, rfc3339};
use crate::cli::EvaluateArgs;
use crate::evaluation::{self, RowContext};
use crate::features::{TimeWindow, replay};
use crate::ingest::{NumericSpec, read_numeric, read_transactions};
use crate::scoring::{Bundle, SchemaKind};
use crate::{domain::CardKey, progress};
use anyhow::{Context, bail, ensure};

pub fn run(args: &EvaluateArgs) -> anyhow::Result<()> {
    let bundle = Bundle::load(&args.models)?;
    let manifest = &bundle.manifest;
    let mut ids: Vec<String> = Vec::new();
    let mut scenarios = None;
    let (features, labels, context) = match (manifest.schema.kind, &bundle.encoders) {
        (SchemaKind::Transaction, Some(encoders)) => {
            let key = CardKey::from_env_or_random()?;
            let data = read_transactions(&args.data.data, &args.data.columns, &key, args.data.skip_bad_rows, |_| {})?;
            report_skipped(&data.skipped);
            ensure!(
                data.has_labels,
                "{} has no `{}` column to evaluate against; map one with --columns label=COLUMN",
                args.data.data.display(),
                args.data.columns.label_name()
            );
            let range = TimeWindow { from: args.data.from, to: args.data.to }.range(&data.rows);
            ensure!(!range.is_empty(), "no rows fall inside the --from/--to window");
            let config = manifest.schema.feature_config();
            let delay = args.data.label_delay.unwrap_or(config.label_delay_secs);
            let bar = progress::bar(range.end as u64, "features", "rows");
            let replayed = replay(&data.rows, range.clone(), encoders, config, delay, |n| bar.set_position(n));
            bar.finish_and_clear();
            let rows = &data.rows[range];
            ids = rows.iter().map(|r| r.txn.txn_id.clone()).collect();
            let labels = rows.iter().map(|r| r.label == Some(true)).collect::<Vec<_>>();
            let context = rows
                .iter()
                .zip(&replayed.known_compromised)
                .map(|(r, &known_compromised)| RowContext {
                    card: r.txn.card.as_u128(),
                    timestamp: r.txn.timestamp,
                    known_compromised,
                })
                .collect::<Vec<_>>();
            if data.has_scenarios {
                scenarios = Some(rows.iter().map(|r| r.scenario.clone()).collect::<Vec<_>>());
            }
            let features = replayed.features;
            (features, labels, Some(context))
        }
        (SchemaKind::Numeric, _) => {
            if args.data.from.is_some() || args.data.to.is_some() {
                bail!("--from/--to need timestamps, which numeric bundles do not use");
            }
            let target = args
                .target
                .clone()
                .or_else(|| manifest.data.label_column.clone())
                .context("this numeric bundle was trained without a target; name the label column with --target")?;
            let spec = NumericSpec { target: Some(target), features: manifest.schema.names.clone() };
            let data = read_numeric(&args.data.data, &spec, args.data.skip_bad_rows)?;
            report_skipped(&data.skipped);
            (data.matrix, data.labels.unwrap_or_default(), None)
        }
        (SchemaKind::Transaction, None) => bail!("the bundle has no encoders.json"),
    };
    let scores = bundle.models.score_matrix(&features)?;
    let window = (args.data.from.map(rfc3339), args.data.to.map(rfc3339));
    let report = evaluation::evaluate(
        &scores,
        &labels,
        context.as_deref(),
        scenarios.as_deref(),
        &bundle.models,
        &manifest.thresholds,
        window,
    );
    if let Some(path) = &args.scores {
        write_scores(path, &ids, &labels, &scores, &manifest.thresholds)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("model bundle {}", manifest.version);
    evaluation::print_table(&report, std::io::stdout().lock())?;
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write to {}", out.display()))?;
        let html = evaluation::write_html(&report, &format!("Aegis evaluation — {}", manifest.version))?;
        std::fs::write(out.join("report.html"), html).with_context(|| format!("cannot write to {}", out.display()))?;
        println!("report written to {}", out.display());
    }
    Ok(())
}

fn write_scores(
    path: &std::path::Path,
    ids: &[String],
    labels: &[bool],
    scores: &[crate::scoring::Score],
    thresholds: &crate::scoring::Thresholds,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(["txn_id", "label", "score", "if_score", "ae_mse", "fraud_probability", "action"])?;
    for (i, (s, l)) in scores.iter().zip(labels).enumerate() {
        let id = ids.get(i).cloned().unwrap_or_else(|| (i + 1).to_string());
        w.write_record([
            id,
            u8::from(*l).to_string(),
            s.combined.to_string(),
            s.if_score.to_string(),
            s.ae_mse.to_string(),
            s.fraud_probability.map_or_else(String::new, |p| p.to_string()),
            thresholds.action(s.combined).as_str().to_owned(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
