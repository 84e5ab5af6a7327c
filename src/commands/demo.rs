//! `aegis demo`: a newcomer's first minute. Generates data and trains if needed, starts the
//! API, streams the newest transactions through it over HTTP (the same path a client takes),
//! prints every flagged one with its reasons and a summary, then keeps serving until Ctrl-C.

use crate::cli::{Cli, Command, DemoArgs};
use crate::ingest::{ColumnMap, read_requests, read_transactions};
use crate::load::{HttpTarget, Outgoing, Pace, Target};
use crate::scoring::Bundle;
use anyhow::{Context, ensure};
use clap::Parser;
use std::sync::Arc;

/// The schema of the generator's extra columns (examples/schema.toml).
const DEMO_SCHEMA: &str = include_str!("../../examples/schema.toml");

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    ensure!(args.count > 0, "--count must be at least 1");
    // One request at a time: concurrent requests can overtake each other, and a card's features
    // depend on the order of its transactions (at --rate 0 the demo's catch varied by run).
    let pace = Pace::new(args.rate, None, 1)?;
    let data = args.data.to_string_lossy().into_owned();
    if !args.data.exists() {
        println!("No data at {data}: generating it.");
        subcommand(&["generate", "--out", &data])?;
    }
    let key = crate::domain::CardKey::for_database(
        args.service.store.db.file(),
        args.service.store.card_key_file.as_deref(),
    )?;
    // The generator's card-not-present fields, declared as examples/schema.toml does (a bundle
    // trained before keeps the fields it was trained with).
    let existing = Bundle::load(&args.models).ok();
    let schema = match &existing {
        Some(bundle) => bundle.manifest.schema.fields.clone(),
        None => crate::domain::fields::Schema::parse(DEMO_SCHEMA)?,
    };
    let columns = ColumnMap::default().with_schema(schema);
    let rows = read_transactions(&args.data, &columns, &key, false, |_| {})?.rows;
    ensure!(rows.len() > args.count + 100, "{data} has {} rows; the demo needs more than --count + 100", rows.len());
    let split = fraud_window(&rows, args.count);
    let end = split + args.count;
    let cutoff = crate::commands::rfc3339(rows[split].txn.timestamp);
    // The newest streamed transaction's time: chargebacks are dated no later.
    let last = rows[end - 1].txn.timestamp;

    let models = args.models.to_string_lossy().into_owned();
    if existing.is_none() {
        let schema = args.data.with_file_name("schema.toml");
        if !schema.exists() {
            std::fs::write(&schema, DEMO_SCHEMA).with_context(|| format!("cannot write {}", schema.display()))?;
        }
        let schema = schema.to_string_lossy().into_owned();
        println!(
            "No model bundle in {models}: training one on the transactions before {cutoff}, with the fields {schema} declares."
        );
        subcommand(&["train", "--data", &data, "--out", &models, "--to", &cutoff, "--schema", &schema])?;
    }
    // The window's labelled frauds by scenario, to say what there is to catch.
    let mut scenarios: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for r in rows[split..end].iter().filter(|r| r.label == Some(true)) {
        *scenarios.entry(scenario_name(r.scenario.as_deref())).or_default() += 1;
    }
    // The older transactions build each card's history; the newest `count` are sent.
    let warm_up = rows.into_iter().take(split).collect();
    let requests = read_requests(&args.data, &columns)?;
    let items: Vec<Outgoing> =
        requests.into_iter().skip(split).take(args.count).map(|(request, label)| Outgoing { request, label }).collect();
    let frauds: Vec<String> =
        items.iter().filter(|o| o.label == Some(true)).map(|o| o.request.txn_id.clone()).collect();

    super::serve::runtime()?.block_on(async {
        let service = super::serve::Service::start(&args.models, &args.service, warm_up).await?;
        println!("Model bundle {}; API listening at {}", service.engine().model_version(), service.url);
        println!("Streaming {} transactions at {} through POST {}/predict.", items.len(), pace.describe(), service.url);
        if !scenarios.is_empty() {
            let list: Vec<String> = scenarios.iter().map(|(name, n)| format!("{n} {name}")).collect();
            println!("They include labelled frauds: {}.", list.join(", "));
        }
        let base = service.url.parse().context("internal: the service URL does not parse")?;
        let target = Arc::new(Target::Http(HttpTarget::new(&base, args.service.api_token.clone())?));
        let summary = super::produce::send(items, target, pace, false).await;
        println!("{}", summary.report());
        println!(
            "{} transactions, caught {} of {} labelled frauds ({} false alarms)",
            summary.sent,
            summary.frauds_flagged,
            summary.frauds,
            summary.flagged().saturating_sub(summary.frauds_flagged)
        );
        let missed = tokio::task::block_in_place(|| chargebacks(service.engine(), &frauds, last))?;
        println!(
            "Posted {missed} chargebacks (label `fraud`, source `chargeback`) for the frauds the models let \
             through: their cards and merchants score with that knowledge from now on."
        );
        println!("The {} flagged transactions wait in the dashboard's review queue for a verdict.", summary.flagged());
        println!(
            "Retraining a challenger from the store (`aegis train --db {} --challenger --label-delay 1h`; verdicts \
             from the review queue are labels too, and 20 known frauds give it a supervised model):",
            args.service.store.db
        );
        let fields = Bundle::load(&args.models).map(|b| b.manifest.schema.fields).unwrap_or_default();
        let schema = args.data.with_file_name("schema.toml");
        if !fields.is_empty() && !schema.exists() {
            std::fs::write(&schema, fields.to_toml()).with_context(|| format!("cannot write {}", schema.display()))?;
        }
        let schema = (!fields.is_empty()).then_some(schema.as_path());
        match tokio::task::block_in_place(|| retrain(&args.service.store.db, &args.models, schema)) {
            Ok(lines) => lines.iter().for_each(|l| println!("  {l}")),
            Err(e) => println!("  retraining failed: {e:#}"),
        }
        println!("Results are in {}; the dashboard is at {}/", args.service.store.db, service.url);
        if !args.exit_when_done {
            println!("Still serving the API and the dashboard at {}/ ; press Ctrl-C to stop.", service.url);
            super::serve::shutdown_signal().await;
        }
        service.stop().await?;
        ensure!(summary.errors == 0, "{} of {} transactions failed", summary.errors, summary.sent);
        Ok(())
    })
}

/// Runs another subcommand with its own defaults, as if typed on the command line.
fn subcommand(args: &[&str]) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(std::iter::once("aegis").chain(args.iter().copied()))
        .with_context(|| format!("internal: cannot parse `aegis {}`", args.join(" ")))?;
    match cli.command {
        Command::Demo(_) => Ok(()),
        command => crate::commands::run(Cli { command, ..cli }),
    }
}

/// Where the streamed window of `count` rows starts: among windows in the newest quarter of the
/// data, the one with labelled frauds of the most scenarios (then the most frauds; then the
/// newest), so that the demo shows several kinds of fraud being caught. Earlier rows train the
/// model and warm up the card history.
fn fraud_window(rows: &[crate::ingest::LabelledTransaction], count: usize) -> usize {
    let last = rows.len() - count;
    let step = (count / 4).max(1);
    let mut best = (0, 0, last);
    let mut start = last;
    while start >= rows.len() * 3 / 4 {
        let window = &rows[start..start + count];
        let frauds = window.iter().filter(|r| r.label == Some(true) && r.scenario.as_deref() != Some("4"));
        let kinds: std::collections::BTreeSet<&str> = frauds.clone().filter_map(|r| r.scenario.as_deref()).collect();
        let key = (kinds.len(), frauds.count(), start);
        if (key.0, key.1) > (best.0, best.1) {
            best = key;
        }
        match start.checked_sub(step) {
            Some(s) => start = s,
            None => break,
        }
    }
    best.2
}

/// The chargebacks a bank would receive days later: a fraud label for every labelled fraud in
/// `frauds` that the models allowed, stored as `POST /labels` stores them. The flagged ones are
/// left to the review queue. Returns how many were posted.
/// Each is dated an hour after its transaction, but no later than `last` (the newest streamed
/// transaction): inside the stored window (the demo streams hours of the data's time), so that
/// `train --db` counts it as known.
fn chargebacks(engine: &crate::engine::Engine, frauds: &[String], last: i64) -> anyhow::Result<usize> {
    let mut missed = Vec::new();
    for id in frauds {
        if let Some(t) = engine.readers().get(id)?.filter(|t| t.action == crate::domain::Action::Allow) {
            missed.push(crate::domain::LabelIn {
                reported_at: (t.timestamp + 3_600).min(last).max(t.timestamp),
                txn_id: t.txn_id,
                verdict: crate::domain::Verdict::Fraud,
                source: "chargeback".into(),
                note: Some("demo: a fraud the models let through".into()),
            });
        }
    }
    engine.label(&missed)?;
    Ok(missed.len())
}

/// The loop's last step: a challenger bundle trained from the stored decisions and their labels
/// by `aegis train --db … --challenger`, run as a child process so that its full report stays
/// out of the demo's output; returns its summary lines.
/// `schema`: a file declaring the champion's fields, so that the challenger can run beside it
/// as its shadow.
fn retrain(
    db: &crate::store::Location,
    models: &std::path::Path,
    schema: Option<&std::path::Path>,
) -> anyhow::Result<Vec<String>> {
    let mut train = std::process::Command::new(std::env::current_exe()?);
    train.arg("train").arg("--db").arg(db.as_arg()).arg("--out").arg(models).args(["--challenger", "--epochs", "10"]);
    // The stream covers hours of the data's time: a transaction without a fraud verdict counts
    // as legitimate an hour on (as its chargebacks were dated), not the default week.
    train.args(["--label-delay", "1h"]);
    if let Some(schema) = schema {
        train.arg("--schema").arg(schema);
    }
    let out = train.output().context("cannot run `aegis train`")?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr).trim());
    let keep = ["training on", "supervised model", "no supervised model", "a challenger"];
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| keep.iter().any(|k| l.starts_with(k)))
        .map(str::to_owned)
        .collect())
}

/// A generated fraud scenario's name, from its id in the `fraud_scenario` column.
fn scenario_name(id: Option<&str>) -> String {
    match id.map(str::trim) {
        Some("1") => "large purchases abroad".into(),
        Some("2") => "bust-out merchant".into(),
        Some("3") => "compromised-card burst".into(),
        Some("4") => "label noise".into(),
        Some("5") => "skimmed terminal".into(),
        Some("6") => "card takeover".into(),
        Some("7") => "BIN attack".into(),
        Some("8") => "card testing".into(),
        Some("9") => "card testing by a bot (device, IP)".into(),
        Some("10") => "account takeover (new device, e-mail, place)".into(),
        Some("11") => "fraud ring (shared devices, e-mails)".into(),
        Some(other) if !other.is_empty() && other != "0" => format!("scenario {other}"),
        _ => "unlabelled scenario".into(),
    }
}
