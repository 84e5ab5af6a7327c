//! `aegis demo`: a newcomer's first minute. Generates data and trains if needed, then streams
//! the newest transactions through the live scoring path, printing every flagged one with its
//! reasons, and a summary.

use crate::cli::{Cli, Command, DemoArgs};
use crate::domain::CardKey;
use crate::ingest::{ColumnMap, read_transactions};
use crate::scoring::{Action, Bundle, Scorer};
use anyhow::{Context, ensure};
use clap::Parser;
use std::time::{Duration, Instant};

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    ensure!(args.count > 0, "--count must be at least 1");
    ensure!(args.rate >= 0.0 && args.rate.is_finite(), "--rate must be 0 (as fast as possible) or more");
    let data = args.data.to_string_lossy().into_owned();
    if !args.data.exists() {
        println!("No data at {data}: generating it.");
        subcommand(&["generate", "--out", &data])?;
    }
    let key = CardKey::from_env_or_random()?;
    let rows = read_transactions(&args.data, &ColumnMap::default(), &key, false, |_| {})?.rows;
    ensure!(rows.len() > args.count + 100, "{data} has {} rows; the demo needs more than --count + 100", rows.len());
    let split = rows.len() - args.count;
    let cutoff = crate::commands::rfc3339(rows[split].txn.timestamp);

    let models = args.models.to_string_lossy().into_owned();
    let bundle = match Bundle::load(&args.models) {
        Ok(b) => b,
        Err(_) => {
            println!("No model bundle in {models}: training one on the transactions before {cutoff}.");
            subcommand(&["train", "--data", &data, "--out", &models, "--to", &cutoff])?;
            Bundle::load(&args.models)?
        }
    };
    println!("Model bundle {}.", bundle.manifest.version);
    let mut scorer = Scorer::new(bundle)?;
    for r in &rows[..split] {
        scorer.observe(&r.txn);
    }

    println!(
        "Streaming {} transactions at {}:",
        args.count,
        if args.rate > 0.0 { format!("{}/s", args.rate) } else { "full speed".into() }
    );
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let started = Instant::now();
    let (mut counts, mut caught, mut frauds) = ([0usize; 3], 0usize, 0usize);
    for (k, r) in rows[split..].iter().enumerate() {
        if let Some(every) = interval {
            let due = started + every * k as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let d = scorer.score(&r.txn)?;
        counts[d.action as usize] += 1;
        let fraud = r.label == Some(true);
        frauds += usize::from(fraud);
        caught += usize::from(fraud && d.action != Action::Allow);
        if d.action != Action::Allow {
            println!(
                "  {:<6} {:.3}  {}  {:>9.2}  {}  {:<8} {}{}",
                d.action.as_str(),
                d.score.combined,
                r.masked_card,
                r.txn.amount,
                r.txn.country,
                r.txn.merchant,
                d.reasons.join("; "),
                if fraud { "  [labelled fraud]" } else { "" }
            );
        }
    }
    let flagged = counts[Action::Review as usize] + counts[Action::Block as usize];
    println!(
        "{} transactions processed, {flagged} flagged ({} review, {} block); {caught} of {frauds} labelled frauds flagged.",
        args.count,
        counts[Action::Review as usize],
        counts[Action::Block as usize]
    );
    Ok(())
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
