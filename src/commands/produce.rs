//! `aegis produce`: send transactions to a running API at a given pace and summarise what
//! came back.

use crate::cli::ProduceArgs;
use crate::load::{self, HttpTarget, Outgoing, Pace, Reply, Target};
use anyhow::ensure;
use std::sync::Arc;

pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    ensure!(args.pace.count > 0, "--count must be at least 1");
    let pace = Pace::new(args.pace.rate, args.pace.interval, concurrency(args))?;
    let items = match &args.data {
        Some(path) => {
            // The declared fields the target's model reads, sent as keys beside the core ones.
            let columns = match &args.schema {
                Some(schema) => args.columns.clone().with_schema(crate::domain::fields::Schema::load(schema)?),
                None => args.columns.clone(),
            };
            let mut rows = crate::ingest::read_requests(path, &columns)?;
            // Nothing raw on a topic: PII fields go as their tokens under the consumers' card key,
            // as card numbers do unless --send-pan.
            if args.target.starts_with("kafka://") && !args.send_pan {
                let key = crate::domain::CardKey::for_database(
                    Some(std::path::Path::new("results.db")),
                    args.card_key_file.as_deref(),
                )?;
                for field in columns.schema().fields().iter().filter(|f| f.pii) {
                    for (request, _) in &mut rows {
                        if let Some(serde_json::Value::String(raw)) = request.fields.get_mut(&field.name) {
                            *raw = crate::domain::fields::value::tokenize(&key, &field.name, raw);
                        }
                    }
                }
            }
            rows.into_iter()
                .take(args.pace.count)
                .map(|(request, label)| Outgoing { request, label })
                .collect::<Vec<_>>()
        }
        None => {
            let seed = args.seed.unwrap_or_else(rand::random);
            println!("Generating {} transactions (seed {seed}).", args.pace.count);
            load::generated(args.pace.count, args.cards.map(|c| c as usize), seed, chrono::Utc::now().timestamp())?
        }
    };
    let target = Arc::new(target(args)?);
    println!("Sending {} transactions to {} at {}.", items.len(), args.target, pace.describe());
    let summary = super::serve::runtime()?.block_on(async {
        let mut summary = send(items, Arc::clone(&target), pace, args.quiet).await;
        summary.calibrated_flag_rate = target.calibrated_flag_rate().await;
        summary
    });
    println!("{}", summary.report());
    ensure!(summary.errors < summary.sent, "every request failed");
    Ok(())
}

/// Messages in flight: `--concurrency`, or by default 8 HTTP requests (a few connections keep a
/// server busy) or 10,000 Kafka messages. A Kafka send is an enqueue into librdkafka, which
/// batches (`linger.ms`); waiting for delivery reports 8 at a time held the producer to one
/// batch per linger, about a thousandth of its speed.
fn concurrency(args: &ProduceArgs) -> usize {
    const HTTP: usize = 8;
    const KAFKA: usize = 10_000;
    args.pace.concurrency.unwrap_or(if args.target.starts_with("kafka://") { KAFKA } else { HTTP })
}

/// The target named by `--target`: `http://…` (the API) or `kafka://…` (a topic).
fn target(args: &ProduceArgs) -> anyhow::Result<Target> {
    match args.target.split_once("://").map_or("", |(scheme, _)| scheme) {
        #[cfg(feature = "kafka")]
        "kafka" => {
            let (brokers, topic) = crate::kafka::parse_target(&args.target)?;
            let key = crate::domain::CardKey::for_database(
                Some(std::path::Path::new("results.db")),
                args.card_key_file.as_deref(),
            )?;
            let target = crate::kafka::KafkaTarget::new(&brokers, &topic, &args.kafka_options, key, args.send_pan)?;
            Ok(Target::Kafka(target))
        }
        #[cfg(not(feature = "kafka"))]
        "kafka" => anyhow::bail!("this aegis was built without the `kafka` feature"),
        _ => {
            let url = args.target.parse().map_err(|e| anyhow::anyhow!("--target {}: {e}", args.target))?;
            Ok(Target::Http(HttpTarget::new(&url, args.api_token.clone())?))
        }
    }
}

/// Sends with a progress bar, printing flagged transactions above it unless `quiet`.
pub(crate) async fn send(items: Vec<Outgoing>, target: Arc<Target>, pace: Pace, quiet: bool) -> load::Summary {
    let bar = crate::progress::bar(items.len() as u64, "sending", "transactions");
    let summary = load::send_all(items, target, pace, |item, result| {
        bar.inc(1);
        if let Ok(Some(reply)) = result
            && !quiet
            && reply.action != crate::scoring::Action::Allow
        {
            bar.suspend(|| println!("{}", flagged_line(item, reply)));
        }
    })
    .await;
    bar.finish_and_clear();
    summary
}

/// One flagged transaction: action, score, masked card, amount, country, merchant, reasons.
fn flagged_line(item: &Outgoing, reply: &Reply) -> String {
    let r = &item.request;
    format!(
        "  {:<6} {:.3}  {}  {:>9.2}  {}  {:<8} {}{}",
        reply.action.as_str(),
        reply.score,
        r.masked_card(),
        r.amount,
        r.country,
        r.merchant,
        reply.reasons.join("; "),
        if item.label == Some(true) { "  [labelled fraud]" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn in_flight(args: &[&str]) -> usize {
        let cli = Cli::try_parse_from(["aegis", "produce"].iter().chain(args)).unwrap();
        let Command::Produce(p) = cli.command else { panic!("not produce") };
        concurrency(&p)
    }

    #[test]
    fn kafka_keeps_thousands_of_messages_in_flight_and_http_a_few_requests() {
        assert_eq!(in_flight(&["--target", "kafka://127.0.0.1:9092/tx"]), 10_000);
        assert_eq!(in_flight(&["--target", "http://127.0.0.1:8000"]), 8);
        assert_eq!(in_flight(&[]), 8);
        assert_eq!(in_flight(&["--target", "kafka://127.0.0.1:9092/tx", "--concurrency", "64"]), 64);
    }
}
