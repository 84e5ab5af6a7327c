//! `aegis rules test`: backtest a rules file on a transaction CSV — the features and scores of
//! every row computed as live scoring would (same replay, same bundle), then every rule run.

use crate::cli::{RulesCommand, RulesTestArgs};
use crate::features::{TimeWindow, replay};
use crate::rules::{Lists, Match, RuleInput, RuleSet, decide};
use crate::scoring::{Action, Bundle};
use anyhow::{Context, ensure};

pub fn run(command: &RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::Test(args) => test(args),
    }
}

/// Per rule: transactions hit, and of those labelled fraud.
#[derive(Debug, Default, Clone, Copy)]
struct Hits {
    all: u64,
    fraud: u64,
}

fn test(args: &RulesTestArgs) -> anyhow::Result<()> {
    // Lists live in the results database; a backtest sees the declared ones, empty.
    let bundle = Bundle::load(&args.models)?;
    let rules = RuleSet::load(&args.rules, &Lists::default(), &bundle.manifest.schema.fields)?;
    ensure!(!rules.is_empty(), "{} has no [[rule]]", args.rules.display());
    let encoders = bundle.encoders.as_ref().context("rules need a transaction bundle (this one is numeric)")?;
    let data = super::read_data(&args.data, &bundle.manifest.schema.fields)?;
    super::report_skipped(&data.skipped);
    let range = TimeWindow { from: args.data.from, to: args.data.to }.range(&data.rows);
    ensure!(!range.is_empty(), "no rows fall inside the --from/--to window");
    let config = bundle.manifest.schema.feature_config();
    let delay = args.data.label_delay.unwrap_or(config.label_delay_secs);
    let bar = crate::progress::bar(range.end as u64, "features", "rows");
    let replayed = replay(&data.rows, range.clone(), encoders, config, delay, |n| bar.set_position(n));
    bar.finish_and_clear();
    let scores = bundle.models.score_matrix(&replayed.features)?;
    let thresholds = &bundle.manifest.thresholds;
    let names: Vec<&str> = rules.names().collect();
    let mut hits = vec![Hits::default(); names.len()];
    let (mut frauds, mut model_flags, mut final_flags) = (0u64, Hits::default(), Hits::default());
    let mut matches: Vec<Match> = Vec::new();
    for (i, row) in data.rows[range].iter().enumerate() {
        let features = replayed.features.row(i);
        let model_action = thresholds.action(scores[i].combined);
        let card = row.txn.card.to_string();
        let input = RuleInput { txn: &row.txn, card: &card, features, score: &scores[i], model_action };
        matches.clear();
        rules.evaluate(&input, &Lists::default(), &mut matches);
        let fraud = row.label == Some(true);
        frauds += u64::from(fraud);
        for m in &matches {
            if let Some(k) = names.iter().position(|n| *n == m.name) {
                hits[k].all += 1;
                hits[k].fraud += u64::from(fraud);
            }
        }
        for (tally, action) in [(&mut model_flags, model_action), (&mut final_flags, decide(model_action, &matches))] {
            if action != Action::Allow {
                tally.all += 1;
                tally.fraud += u64::from(fraud);
            }
        }
    }
    let n = replayed.features.n_rows() as u64;
    let labelled = data.has_labels;
    let pct = |a: u64, b: u64| if b == 0 { "–".to_owned() } else { format!("{:.1}%", 100.0 * a as f64 / b as f64) };
    println!("{n} transactions{}", if labelled { format!(", {frauds} labelled fraud") } else { String::new() });
    println!(
        "{:<28} {:>7} {:>10} {:>8} {:>10} {:>8} {:>7}",
        "rule", "action", "hits", "share", "precision", "recall", "errors"
    );
    let errors: Vec<u64> = rules.errors().map(|(_, e)| e).collect();
    let actions: Vec<Action> = rules.actions().collect();
    for (k, name) in names.iter().enumerate() {
        let h = hits[k];
        println!(
            "{:<28} {:>7} {:>10} {:>8} {:>10} {:>8} {:>7}",
            name,
            actions.get(k).map_or("", |a| a.as_str()),
            h.all,
            pct(h.all, n),
            if labelled { pct(h.fraud, h.all) } else { "–".into() },
            if labelled { pct(h.fraud, frauds) } else { "–".into() },
            errors[k]
        );
    }
    for (label, t) in [("model alone: flagged", model_flags), ("model + rules: flagged", final_flags)] {
        println!(
            "{:<28} {:>7} {:>10} {:>8} {:>10} {:>8}",
            label,
            "",
            t.all,
            pct(t.all, n),
            if labelled { pct(t.fraud, t.all) } else { "–".into() },
            if labelled { pct(t.fraud, frauds) } else { "–".into() }
        );
    }
    Ok(())
}
