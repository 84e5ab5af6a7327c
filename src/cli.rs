//! The command line: one `aegis` binary, one subcommand per job.

use crate::ingest::ColumnMap;
use crate::store::Location;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Aegis: real-time credit-card fraud detection.
///
/// Generate synthetic transactions; train an Isolation Forest, an autoencoder and (with labels)
/// gradient-boosted trees on them or on your own CSV; evaluate; serve decisions over HTTP or
/// Kafka with rules, lists and a review dashboard.
#[derive(Debug, Parser)]
#[command(name = "aegis", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing directive such as `aegis=debug`).
    #[arg(long, global = true, env = "AEGIS_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write synthetic card transactions with labelled fraud scenarios to CSV.
    Generate(GenerateArgs),
    /// Train the models on a CSV (or on the results database and its labels) and write a
    /// versioned model bundle with an evaluation report.
    Train(TrainArgs),
    /// Evaluate a model bundle on any labelled CSV (a backtest), or compare the stored champion
    /// and shadow decisions (--db).
    Evaluate(EvaluateArgs),
    /// Labels (chargebacks, analyst verdicts) into the results database.
    #[command(subcommand)]
    Labels(LabelsCommand),
    /// Rules: backtest a rules file on a CSV.
    #[command(subcommand, after_long_help = RULES_HELP)]
    Rules(RulesCommand),
    /// Run the HTTP scoring API: POST /predict, /predict/batch, /health, /ready, /metrics,
    /// /openapi.json, labels, lists, admin routes and the dashboard. Every decision is committed
    /// to the results store (SQLite or PostgreSQL) before it is answered.
    Serve(ServeArgs),
    /// Send transactions to a running API, paced, and summarise the decisions and latency.
    Produce(ProduceArgs),
    /// Score transactions from a Kafka topic as a consumer-group worker, storing every result
    /// and committing offsets only after the results are stored.
    #[cfg(feature = "kafka")]
    Consume(ConsumeArgs),
    /// The whole pipeline on defaults: generate data and train if needed, start the API, stream
    /// transactions through it over HTTP, and show the decisions.
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// Import a labels CSV (a chargeback file, a case-management export) into the results
    /// database, validated like `POST /labels`: one row per label with `txn_id`, `label`
    /// (fraud/legit, or 1/0) and optionally `reported_at` (RFC 3339 or Unix seconds; default
    /// now), `source` and `note`. Rows that fail (invalid, or naming a transaction the store
    /// does not have) are reported with their line, in line order, and nothing is stored for
    /// them; the rest are stored, and the exit code is non-zero. A running `serve` or `consume`
    /// sharing the database picks the new verdicts up within seconds.
    Import(LabelsImportArgs),
}

#[derive(Debug, Args)]
pub struct LabelsImportArgs {
    /// The labels CSV.
    pub file: PathBuf,
    /// Column mapping as field=COLUMN pairs, e.g. `txn_id=TRANSACTION,label=IS_FRAUD`. Fields:
    /// txn_id, label, reported_at, source, note.
    #[arg(long, default_value = "")]
    pub columns: String,
    /// Source for rows without a `source` column.
    #[arg(long, default_value = "chargeback")]
    pub source: String,
    /// Results database: a SQLite file or a `postgres://user@host:port/dbname` URL.
    #[arg(long, env = "AEGIS_DB", default_value = "results.db")]
    pub db: Location,
}

/// What rule expressions can use (shown by `aegis rules --help`).
pub const RULES_HELP: &str = "\
Rules files are TOML:

  lists = [\"blocked_merchants\"]      # lists rules may name before they have items

  [[rule]]
  name = \"big-foreign-burst\"
  when = 'amount > 1000.0 && country != \"GB\" && card_txn_count_1h > 3'
  action = \"block\"                   # allow | review | block
  reason = \"burst of large foreign purchases\"

`when` is a CEL expression (https://cel.dev) giving true or false. It can use:
  transaction: txn_id, amount (double), country, merchant, merchant_category (\"\" if none),
               card (its token), timestamp (Unix seconds), hour (0-23, UTC)
  scores:      score, if_score, ae_mse, fraud_probability (null without a supervised model),
               model_action (\"allow\", \"review\" or \"block\")
  features:    every feature schema name (log_amount, log_count_1h, merchant_risk_7d, ...) and,
               in natural units, card_txn_count_1h/24h/7d/30d (int, the card's transactions,
               this one included), card_amount_sum_1h/24h, secs_since_prev, amount_ratio_30d,
               merchant_txn_count_1h/24h/1d/7d/30d, merchant_cards_1h/24h (distinct cards),
               bin_txn_count_1h/24h, bin_cards_1h/24h, bin_new_cards_1h (int; null when the
               card column holds no card numbers)
  lists:       `merchant in blocked_merchants`, `card in stolen_cards` (managed with
               GET/POST/DELETE /lists/{name}/items)
Write doubles with a decimal point (1000.0) and ints without (3). The decision is the most
severe of the model's action and every matching rule's, except that a matching `allow` rule
allows. A rule that fails at run time (a type error) counts as errored, never as a match.";

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Backtest a rules file on a transaction CSV: per rule, transactions hit, and precision and
    /// recall when the file has labels. Features and scores are computed with the model bundle,
    /// as live scoring would.
    Test(RulesTestArgs),
}

#[derive(Debug, Args)]
pub struct RulesTestArgs {
    /// The rules file.
    #[arg(long)]
    pub rules: PathBuf,
    /// Model bundle directory (or a models directory holding `current`).
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Where the scoring service keeps its state and how it is reached.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: std::net::SocketAddr,
    /// Require `Authorization: Bearer <token>` on /predict*, /labels, /lists/* and /admin/*
    /// (health, ready, metrics and the dashboard's reads stay open).
    #[arg(long, env = "AEGIS_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub decision: DecisionArgs,
}

/// What decides beside the model (`serve`, `consume`, `demo`).
#[derive(Debug, Clone, Args)]
pub struct DecisionArgs {
    /// Rules file (TOML `[[rule]]`s with `name`, `when` (a CEL expression), `action` and
    /// `reason`); reloaded with the bundle by `POST /admin/reload` and SIGHUP. The decision is the
    /// most severe of the model's and every matching rule's action, except that a matching
    /// `allow` rule allows. `aegis rules --help` lists what expressions can use.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// A challenger bundle that scores every transaction beside the model; its score and action
    /// are stored (never answered or alerted) for `aegis evaluate --db`, and `POST
    /// /admin/promote` makes it the model.
    #[arg(long, value_name = "DIR")]
    pub shadow: Option<PathBuf>,
}

/// Where decisions are stored, and the card key that goes with them (`serve`, `consume`, `demo`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Results database, created and migrated if needed: a SQLite file (one machine; `serve` and
    /// `consume` workers on it share it) or `postgres://user[:password]@host:port/dbname` (workers
    /// on several machines). A PostgreSQL store needs `AEGIS_CARD_KEY` or `--card-key-file`.
    #[arg(long, env = "AEGIS_DB", default_value = "results.db")]
    pub db: Location,
    /// Seconds the database may be unavailable (a restart, a network cut) before Aegis gives up:
    /// meanwhile results wait (HTTP answers are delayed; `consume` stops fetching and commits no
    /// offset for an unstored result), then requests fail with 503 and `consume` exits.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub db_timeout: u64,
    /// File holding the card tokenization key (hex), created owner-only if absent; producers
    /// must use the same key. `AEGIS_CARD_KEY` (hex) overrides it. Default: the database path
    /// with a `.key` extension.
    #[arg(long)]
    pub card_key_file: Option<PathBuf>,
}

/// Alert webhooks for review/block decisions (`serve`, `consume`, `demo`).
#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// POST a JSON alert for every review/block decision to this URL (repeatable).
    #[arg(long = "alert-webhook", value_name = "URL")]
    pub alert_webhooks: Vec<reqwest::Url>,
    /// Delivery attempts per alert and webhook before it is marked failed.
    #[arg(long, default_value_t = 5)]
    pub alert_attempts: u32,
    /// Wait before the first alert retry, in milliseconds; doubled for each further retry.
    #[arg(long, default_value_t = 500)]
    pub alert_backoff_ms: u64,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model bundle directory (or a models directory holding `current`). Reloaded on SIGHUP or
    /// POST /admin/reload.
    #[arg(long, default_value = "models/current")]
    pub models: PathBuf,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// How fast to send.
#[derive(Debug, Clone, Args)]
pub struct PaceArgs {
    /// How many transactions to send.
    #[arg(long, default_value_t = 200)]
    pub count: usize,
    /// Transactions per second; 0 sends as fast as --concurrency allows.
    #[arg(long, default_value_t = 5.0, conflicts_with = "interval")]
    pub rate: f64,
    /// Seconds between transactions (another way to say --rate: 0.2 = 5/s).
    #[arg(long)]
    pub interval: Option<f64>,
    /// Requests in flight at most [default: 8 for the API; 10000 for Kafka, whose producer
    /// queues the messages itself: they are enqueued in order, so a card's stay in order].
    #[arg(long)]
    pub concurrency: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Where to send: the API's base URL, or `kafka://HOST:PORT/TOPIC` (topic default
    /// `transactions`; messages keyed by card token).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// Kafka: put the raw card number in each message (default: its token and masked form).
    #[arg(long)]
    pub send_pan: bool,
    /// Kafka: any librdkafka property, as key=value (repeatable).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_kafka_option)]
    pub kafka_options: Vec<(String, String)>,
    /// Kafka: the card tokenization key file, shared with the consumers (`AEGIS_CARD_KEY`
    /// overrides it). Default: results.key, created owner-only if absent.
    #[arg(long)]
    pub card_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// Send the rows of this transaction CSV, in time order, with their own timestamps
    /// (default: generate yesterday's transactions (UTC) for the generator's cards, each card keeping
    /// its own spacing in event time whatever the sending rate).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Column mapping for --data, as for `train` (docs/csv-schema.md).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub columns: ColumnMap,
    /// With --data: a schema file (as for `train --schema`) whose declared fields are read from
    /// the CSV and sent as keys (PII raw: the server tokenizes it on arrival).
    #[arg(long, value_name = "SCHEMA_TOML", requires = "data")]
    pub schema: Option<PathBuf>,
    /// Seed for generated transactions (default: a new one each run, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Distinct cards in generated transactions (default: a quarter of --count, from 50 up to
    /// 10,000). More cards spread the same load thinner: fewer transactions per card.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub cards: Option<u32>,
    /// Bearer token for the API.
    #[arg(long, env = "AEGIS_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Do not print each flagged transaction.
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(feature = "kafka")]
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Kafka bootstrap servers (HOST:PORT, comma-separated).
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Topic to consume.
    #[arg(long, default_value = "transactions")]
    pub topic: String,
    /// Consumer group: workers in one group split the topic's partitions.
    #[arg(long, default_value = "aegis")]
    pub group: String,
    /// Dead-letter topic for messages that are not valid transactions (default: <topic>.dlq).
    #[arg(long)]
    pub dlq_topic: Option<String>,
    /// Also publish every stored decision to this topic (keyed by card token).
    #[arg(long)]
    pub scored_topic: Option<String>,
    /// Also publish review/block decisions to this topic.
    #[arg(long)]
    pub alerts_topic: Option<String>,
    /// Model bundle directory (or a models directory holding `current`).
    #[arg(long, default_value = "models/current")]
    pub models: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub decision: DecisionArgs,
    /// Any librdkafka property, as key=value (repeatable), e.g. session.timeout.ms=6000.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_kafka_option)]
    pub kafka_options: Vec<(String, String)>,
    /// Exit with an error once no broker has answered for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub broker_timeout: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Transaction CSV; generated with default settings if it does not exist.
    #[arg(long, default_value = "data/transactions.csv")]
    pub data: PathBuf,
    /// Models directory; a bundle is trained into it if it has no `current` bundle.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    /// How many of the newest transactions to stream through the API (the rest train the
    /// models and warm up each card's history).
    #[arg(long, default_value_t = 600)]
    pub count: usize,
    /// Transactions per second (0 = as fast as possible).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Stop once the stream is done instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit_when_done: bool,
    #[command(flatten)]
    pub service: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of transactions to write.
    #[arg(long, default_value_t = 60_000)]
    pub rows: usize,
    /// Output CSV file (its directory is created if needed).
    #[arg(long, default_value = "data/transactions.csv")]
    pub out: PathBuf,
    /// Random seed: the same seed and flags write the same file.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of cards (cardholders).
    #[arg(long, default_value_t = 1_000)]
    pub cards: usize,
    /// Number of merchants (at least 25, one per country).
    #[arg(long, default_value_t = 500)]
    pub merchants: usize,
    /// Number of days covered, starting at --start.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// First day (YYYY-MM-DD, UTC).
    #[arg(long, default_value = "2025-01-01")]
    pub start: chrono::NaiveDate,
    /// Target share of fraudulent transactions (scenarios 1–3, 5 and 6 are scaled to it; label
    /// noise adds to it).
    #[arg(long, default_value_t = 0.04)]
    pub fraud_rate: f64,
    /// Share of legitimate transactions labelled fraud at random (scenario 4).
    #[arg(long, default_value_t = 0.005)]
    pub label_noise: f64,
}

/// Where training or evaluation data comes from and how to read it.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Input CSV.
    #[arg(long, required_unless_present = "db", conflicts_with = "db")]
    pub data: Option<PathBuf>,
    /// Instead of a CSV: the results database `serve`/`consume` write, with the labels it has
    /// received (a transaction without a verdict counts as legitimate; a fraud verdict is known
    /// from the time it arrived). `evaluate --db` compares the stored champion and shadow
    /// decisions instead of scoring with a bundle.
    /// A SQLite file or a `postgres://` URL.
    #[arg(long, value_name = "RESULTS_DB")]
    pub db: Option<Location>,
    /// Column mapping for transaction CSVs with other column names, as field=COLUMN pairs:
    /// e.g. `card=CUSTOMER,timestamp=TX_TIME,amount=TX_AMOUNT,merchant=TERMINAL,label=TX_FRAUD`.
    /// Fields: txn_id, timestamp, card, amount, country, merchant, merchant_category, label,
    /// label_time (when the label became known), scenario (a fraud scenario id, for
    /// per-scenario reports); card, timestamp and amount are required, the others optional.
    /// Without it, the generator's column names are expected (docs/csv-schema.md).
    #[arg(long, default_value = "", hide_default_value = true)]
    pub columns: ColumnMap,
    /// Skip rows that cannot be parsed (they are counted and the first few reported) instead of
    /// stopping at the first one.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Start of the time window (RFC 3339 or YYYY-MM-DD, inclusive). Earlier rows only warm up
    /// each card's history.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<i64>,
    /// End of the time window (exclusive). Later rows are ignored.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<i64>,
    /// How long after its transaction a label becomes known, for rows without a label_time:
    /// features only see labels known before each transaction, and training only learns from
    /// labels known by the end of its window. Like `7d`, `36h`, `90m` or seconds. Default: 7d
    /// for train, the bundle's for evaluate.
    #[arg(long, value_parser = parse_duration)]
    pub label_delay: Option<i64>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A schema file declaring the team's own fields (channel, device, IP, e-mail, location, …)
    /// and their CSV columns: each becomes features, a `/predict` key and a rule variable. The
    /// bundle carries it, so `serve`, `consume` and `evaluate` need no flag (examples/schema.toml,
    /// docs/schema.md).
    #[arg(long, value_name = "SCHEMA_TOML")]
    pub schema: Option<PathBuf>,
    /// Directory of model bundles; the new bundle goes to <out>/<version> and <out>/current
    /// points to it.
    #[arg(long, default_value = "models")]
    pub out: PathBuf,
    /// Write the bundle beside the others without pointing <out>/current at it: a challenger to
    /// try with `serve --shadow <out>/<version>` and `POST /admin/promote`.
    #[arg(long)]
    pub challenger: bool,
    /// Treat the CSV as purely numeric, preprocessed features (no transaction feature pipeline).
    #[arg(long)]
    pub numeric: bool,
    /// With --numeric: the label column (0/1). Without it, no evaluation is possible.
    #[arg(long, requires = "numeric")]
    pub target: Option<String>,
    /// With --numeric: comma-separated feature columns (default: every numeric column but the target).
    #[arg(long, value_delimiter = ',', requires = "numeric")]
    pub features: Vec<String>,
    /// Share of the (time-ordered) labelled rows held out for evaluation: the last ones.
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// Seed for every model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Do not train the supervised model even if the data has labels (the decision score is
    /// then the Isolation Forest + autoencoder combination).
    #[arg(long)]
    pub unsupervised: bool,
    /// Supervised model: most boosting rounds (early stopping on the newest labelled rows
    /// usually keeps fewer).
    #[arg(long, default_value_t = 400)]
    pub supervised_trees: usize,
    /// Supervised model: most rows to fit on; beyond it, legitimate rows are sampled (and
    /// weighted up so probabilities stay calibrated) while every fraud is kept.
    #[arg(long, default_value_t = 400_000)]
    pub supervised_max_rows: usize,
    /// Also write the supervised model's inputs (fit.csv with weights, valid.csv, holdout.csv)
    /// to this directory, to compare other learners on exactly the same rows and features
    /// (benches/external/reference.py).
    #[arg(long, value_name = "DIR")]
    pub export_supervised: Option<PathBuf>,
    /// Isolation Forest: number of trees.
    #[arg(long, default_value_t = 200)]
    pub trees: usize,
    /// Isolation Forest: rows sampled per tree (ψ).
    #[arg(long, default_value_t = 256)]
    pub sample_size: usize,
    /// Autoencoder: maximum training epochs (early stopping may end sooner).
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Autoencoder: most rows to train on (a seeded sample beyond it).
    #[arg(long, default_value_t = 20_000)]
    pub autoencoder_max_rows: usize,
    /// Autoencoder: epochs without validation improvement before stopping.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    /// Share of training-like traffic to block: the block threshold is this quantile from the top
    /// of the training scores.
    #[arg(long, default_value_t = 0.01)]
    pub block_rate: f64,
    /// Share of training-like traffic to flag for review or block (at least --block-rate).
    #[arg(long, default_value_t = 0.03)]
    pub review_rate: f64,
    /// Instead of --block-rate: block from the lowest score at which at least this share of the
    /// validation rows flagged were fraud (needs the supervised model), e.g. 0.9.
    #[arg(long)]
    pub block_precision: Option<f64>,
    /// Instead of --review-rate: the same for review (at most the block threshold), e.g. 0.5.
    #[arg(long)]
    pub review_precision: Option<f64>,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Model bundle directory (or a models directory holding `current`).
    #[arg(long, default_value = "models/current")]
    pub models: PathBuf,
    /// For numeric bundles: the label column (default: the one used in training).
    #[arg(long)]
    pub target: Option<String>,
    /// Directory to write report.json and report.html into (default: print the table only).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write every row's scores and action to this CSV (txn_id or row number, label, score,
    /// if_score, ae_mse, fraud_probability, action), for your own analysis.
    #[arg(long)]
    pub scores: Option<PathBuf>,
}

fn parse_kafka_option(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not key=value"))?;
    Ok((k.trim().to_owned(), v.trim().to_owned()))
}

/// A duration like `7d`, `36h`, `90m`, `600s` or plain seconds, in seconds (at most 30 days).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` is not a duration (like 7d, 36h, 90m or seconds)")),
    };
    let n: i64 = number.parse().map_err(|_| format!("`{s}` is not a duration (like 7d, 36h, 90m or seconds)"))?;
    let secs = n.saturating_mul(scale);
    if secs > 30 * 86_400 {
        return Err(format!("`{s}` is longer than the 30 days the label-aware features support"));
    }
    Ok(secs)
}

fn parse_time(s: &str) -> Result<i64, String> {
    crate::ingest::parse_timestamp(s).ok_or_else(|| format!("`{s}` is not a time (use RFC 3339 or YYYY-MM-DD)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_train_with_mapping_and_window() {
        let cli = Cli::try_parse_from([
            "aegis",
            "train",
            "--data",
            "x.csv",
            "--columns",
            "card=C,timestamp=T",
            "--from",
            "2025-01-10",
        ])
        .unwrap();
        let Command::Train(t) = cli.command else { panic!("not train") };
        assert_eq!(t.data.from, Some(1_736_467_200));
        assert_eq!(t.out, PathBuf::from("models"));
        assert!(Cli::try_parse_from(["aegis", "train", "--data", "x", "--target", "Class"]).is_err());
        assert!(Cli::try_parse_from(["aegis", "train", "--data", "x", "--from", "tomorrow"]).is_err());
    }
}
