//! One module per subcommand; each takes its parsed arguments and does the whole job.

#[cfg(feature = "kafka")]
pub mod consume;
pub mod demo;
pub mod evaluate;
pub mod generate;
pub mod labels;
pub mod produce;
pub mod rules;
pub mod serve;
pub mod train;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(args) => generate::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Labels(command) => labels::run(&command),
        Command::Rules(command) => rules::run(&command),
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
        db_timeout: std::time::Duration::from_secs(store.db_timeout),
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

/// Where the data of `train`/`evaluate` comes from, for manifests and messages.
pub(crate) fn data_source(args: &crate::cli::DataArgs) -> String {
    match (&args.data, &args.db) {
        (Some(csv), _) => csv.display().to_string(),
        (None, Some(db)) => format!("results database {db}"),
        (None, None) => String::new(),
    }
}

/// The transactions of `--data FILE.csv` or `--db results.db`, time-ordered, with a spinner;
/// a CSV's declared fields are read as `schema` says.
pub(crate) fn read_data(
    args: &crate::cli::DataArgs,
    schema: &crate::domain::fields::Schema,
) -> anyhow::Result<crate::ingest::TransactionData> {
    let bar = crate::progress::spinner("reading");
    let data = match (&args.data, &args.db) {
        (Some(csv), _) => {
            let key = crate::domain::CardKey::from_env_or_random()?;
            let columns = args.columns.clone().with_schema(schema.clone());
            crate::ingest::read_transactions(csv, &columns, &key, args.skip_bad_rows, |n| {
                bar.set_message(format!("reading line {n}"))
            })?
        }
        (None, Some(db)) => {
            anyhow::ensure!(db.exists(), "{db} does not exist (run `aegis serve` or `aegis demo` first)");
            let mut store = crate::store::Store::open(db)?;
            // The store keeps card tokens, not numbers: rows carry them as they are.
            let rows = store.training_rows(None, None, schema, |n| bar.set_message(format!("reading row {n}")))?;
            anyhow::ensure!(!rows.is_empty(), "{db} holds no transactions yet");
            crate::ingest::TransactionData { rows, skipped: Vec::new(), has_labels: true, has_scenarios: false }
        }
        (None, None) => anyhow::bail!("give --data FILE.csv or --db results.db"),
    };
    bar.finish_and_clear();
    Ok(data)
}
