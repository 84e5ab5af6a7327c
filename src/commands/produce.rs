//! `aegis produce`: send transactions to a running API at a given pace and summarise what
//! came back.

use crate::cli::ProduceArgs;
use crate::stream::{self, HttpTarget, Outgoing, Pace, Reply};
use anyhow::ensure;
use std::sync::Arc;

pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    ensure!(args.pace.count > 0, "--count must be at least 1");
    let pace = Pace::from_args(&args.pace)?;
    let items = match &args.data {
        Some(path) => {
            let rows = crate::ingest::read_requests(path, &args.columns)?;
            rows.into_iter()
                .take(args.pace.count)
                .map(|(request, label)| Outgoing { request, label, live: false })
                .collect::<Vec<_>>()
        }
        None => {
            let seed = args.seed.unwrap_or_else(rand::random);
            println!("Generating {} transactions (seed {seed}).", args.pace.count);
            stream::generated(args.pace.count, seed)?
        }
    };
    let target = Arc::new(HttpTarget::new(&args.target, args.api_token.clone())?);
    println!("Sending {} transactions to {} at {}.", items.len(), args.target, pace.describe());
    let summary = super::serve::runtime()?.block_on(send(items, target, pace, args.quiet));
    println!("{}", summary.report());
    ensure!(summary.errors < summary.sent, "every request failed");
    Ok(())
}

/// Sends with a progress bar, printing flagged transactions above it unless `quiet`.
pub(crate) async fn send(items: Vec<Outgoing>, target: Arc<HttpTarget>, pace: Pace, quiet: bool) -> stream::Summary {
    let bar = crate::progress::bar(items.len() as u64, "sending", "transactions");
    let summary = stream::send_all(items, target, pace, |item, result| {
        bar.inc(1);
        if let Ok(reply) = result
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
        crate::domain::mask_pan(&r.card_num),
        r.amount,
        r.country,
        r.merchant,
        reply.reasons.join("; "),
        if item.label == Some(true) { "  [labelled fraud]" } else { "" }
    )
}
