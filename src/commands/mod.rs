//! One module per subcommand; each takes its parsed arguments and does the whole job.

#[cfg(feature = "kafka")]
pub mod consume;
pub mod demo;
pub mod evaluate;
pub mod generate;
pub mod produce;
pub mod serve;
pub mod train;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(args) => generate::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Produce(args) => produce::run(&args),
        #[cfg(feature = "kafka")]
        Command::Consume(args) => consume::run(&args),
        Command::Demo(args) => demo::run(&args),
    }
}

/// Prints how many bad rows were skipped, with the first few reasons.
pub(crate) fn report_skipped(skipped: &[String]) {
    if skipped.is_empty() {
        return;
    }
    eprintln!("skipped {} bad rows; the first ones:", skipped.len());
    for reason in skipped.iter().take(5) {
        eprintln!("  {reason}");
    }
}

pub(crate) use crate::domain::rfc3339;

/// The runtime's settings from the command line: library code never sees a clap type.
pub(crate) fn runtime_config(
    models: &std::path::Path,
    store: &crate::cli::StoreArgs,
    alerts: &crate::cli::AlertArgs,
    decision: &crate::cli::DecisionArgs,
    warm_up: Vec<crate::ingest::LabelledTransaction>,
) -> crate::runtime::RuntimeConfig {
    crate::runtime::RuntimeConfig {
        models: models.to_owned(),
        shadow: decision.shadow.clone(),
        rules: decision.rules.clone(),
        db: store.db.clone(),
        card_key_file: store.card_key_file.clone(),
        alerts: (!alerts.alert_webhooks.is_empty()).then(|| crate::alerts::AlertConfig {
            webhooks: alerts.alert_webhooks.clone(),
            max_attempts: alerts.alert_attempts.max(1),
            backoff: std::time::Duration::from_millis(alerts.alert_backoff_ms),
            timeout: std::time::Duration::from_secs(5),
        }),
        warm_up,
    }
}
