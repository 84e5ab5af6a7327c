//! `aegis evaluate`: score a labelled CSV with a bundle and report, as `train` does on its
//! holdout. Rows before `--from` (and their labels, each once it became known) warm up the
//! card and merchant state; rows from `--to` on are ignored.

use super::{report_skipped, rfc3339};
use crate::cli::EvaluateArgs;
use crate::evaluation::{self, RowContext};
use crate::features::{TimeWindow, replay};
use crate::ingest::{NumericSpec, read_numeric};
use crate::progress;
use crate::scoring::{Bundle, SchemaKind};
use anyhow::{Context, bail, ensure};

pub fn run(args: &EvaluateArgs) -> anyhow::Result<()> {
    if let Some(db) = &args.data.db {
        return compare_stored(db, args.data.from, args.data.to);
    }
    let bundle = Bundle::load(&args.models)?;
    let manifest = &bundle.manifest;
    let mut ids: Vec<String> = Vec::new();
    let mut scenarios = None;
    let (features, labels, context) = match (manifest.schema.kind, &bundle.encoders) {
        (SchemaKind::Transaction, Some(encoders)) => {
            let data = super::read_data(&args.data, &manifest.schema.fields)?;
            report_skipped(&data.skipped);
            ensure!(
                data.has_labels,
                "{} has no `{}` column to evaluate against; map one with --columns label=COLUMN",
                super::data_source(&args.data),
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
            let csv = args.data.data.as_deref().context("numeric bundles evaluate a CSV (--data)")?;
            let data = read_numeric(csv, &spec, args.data.skip_bad_rows)?;
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

/// `evaluate --db`: the stored champion decisions against the shadow model's, on the same
/// transactions, judged by their verdicts (none = legitimate).
fn compare_stored(db: &crate::store::Location, from: Option<i64>, to: Option<i64>) -> anyhow::Result<()> {
    use aegis_model::metrics::{at_threshold, average_precision, roc_auc};
    ensure!(db.exists(), "{db} does not exist");
    let rows = crate::store::Store::open(db)?.compared(from, to)?;
    ensure!(!rows.is_empty(), "{db} holds no transactions in the window");
    let verdicts = rows.iter().filter(|r| r.verdict.is_some()).count();
    let frauds = rows.iter().filter(|r| r.verdict == Some(true)).count();
    ensure!(
        frauds > 0,
        "none of the {} stored transactions has a fraud verdict yet ({verdicts} verdicts): send labels with POST /labels or `aegis labels import` first",
        rows.len()
    );
    // Both columns on the same rows: those the shadow scored too, if it scored any.
    let with_shadow: Vec<_> = rows.iter().filter(|r| r.shadow.is_some()).collect();
    let same: Vec<_> = if with_shadow.is_empty() { rows.iter().collect() } else { with_shadow };
    let labels: Vec<bool> = same.iter().map(|r| r.verdict == Some(true)).collect();
    let context: Vec<RowContext> = same
        .iter()
        .map(|r| RowContext {
            card: u128::from_str_radix(&r.card, 16).unwrap_or_default(),
            timestamp: r.timestamp,
            known_compromised: false,
        })
        .collect();
    let column = |scores: Vec<f32>, actions: Vec<crate::scoring::Action>| -> Vec<String> {
        let flagged: Vec<f32> =
            actions.iter().map(|a| f32::from(u8::from(*a != crate::scoring::Action::Allow))).collect();
        let blocked: Vec<f32> =
            actions.iter().map(|a| f32::from(u8::from(*a == crate::scoring::Action::Block))).collect();
        let (f, b) = (at_threshold(&flagged, &labels, 0.5), at_threshold(&blocked, &labels, 0.5));
        let fmt = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |v| format!("{v:.3}"));
        vec![
            fmt(roc_auc(&scores, &labels)),
            fmt(average_precision(&scores, &labels)),
            fmt(evaluation::card_precision_per_day(&scores, &labels, &context, 100)),
            format!("{:.3}", f.precision),
            format!("{:.3}", f.recall),
            format!("{:.3}", b.precision),
            format!("{:.3}", b.recall),
        ]
    };
    let champion = column(same.iter().map(|r| r.score).collect(), same.iter().map(|r| r.action).collect());
    let shadow = (same.iter().all(|r| r.shadow.is_some())).then(|| {
        column(
            same.iter().filter_map(|r| r.shadow.as_ref().map(|s| s.score)).collect(),
            same.iter().filter_map(|r| r.shadow.as_ref().map(|s| s.action)).collect(),
        )
    });
    let version = |v: Option<&str>| v.unwrap_or("–").to_owned();
    let champion_version = version(same.last().map(|r| r.model_version.as_str()));
    let shadow_version = version(same.last().and_then(|r| r.shadow.as_ref()).map(|s| s.model_version.as_str()));
    println!(
        "{} stored transactions{}; {} with a verdict, {} fraud (no verdict counts as legitimate)",
        same.len(),
        if same.len() < rows.len() { format!(" scored by both models (of {})", rows.len()) } else { String::new() },
        same.iter().filter(|r| r.verdict.is_some()).count(),
        labels.iter().filter(|&&l| l).count()
    );
    let names = [
        "ROC AUC",
        "average precision",
        "card precision@100/day",
        "flagged precision",
        "flagged recall",
        "blocked precision",
        "blocked recall",
    ];
    println!("{:<24} {:>14} {:>14}", "", format!("champion {champion_version}"), format!("shadow {shadow_version}"));
    for (i, name) in names.iter().enumerate() {
        let s = shadow.as_ref().map_or("–", |c| c[i].as_str());
        println!("{name:<24} {:>14} {:>14}", champion[i], s);
    }
    // A flag nobody reviewed yet counts as a false alarm: say how many, or the flagged precision
    // of a fresh store reads as a bad model.
    let flagged = |r: &&&crate::store::Compared| {
        r.action != crate::scoring::Action::Allow
            || r.shadow.as_ref().is_some_and(|s| s.action != crate::scoring::Action::Allow)
    };
    let unreviewed = same.iter().filter(flagged).filter(|r| r.verdict.is_none()).count();
    if unreviewed > 0 {
        println!(
            "{unreviewed} flagged decisions (by either model) have no verdict yet and count as legitimate: review \
             them (dashboard, POST /labels) before reading flagged and blocked precision"
        );
    }
    if shadow.is_none() {
        println!("no shadow scores stored: start `aegis serve --shadow DIR` to try a challenger");
    }
    Ok(())
}
