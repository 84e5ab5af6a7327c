//! `aegis generate`: synthetic transactions to CSV.

use crate::cli::GenerateArgs;
use crate::generator::{GeneratorConfig, generate, write_csv};
use crate::progress;
use anyhow::Context;
use std::time::Instant;

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = GeneratorConfig {
        rows: args.rows,
        cards: args.cards,
        merchants: args.merchants,
        days: args.days,
        start: args.start.and_hms_opt(0, 0, 0).map_or(0, |d| d.and_utc().timestamp()),
        seed: args.seed,
        fraud_rate: args.fraud_rate,
        label_noise: args.label_noise,
    };
    config.check()?;
    let spin = progress::spinner("generating");
    let data = generate(&config)?;
    spin.finish_and_clear();
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "generated rows in memory");

    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = progress::bar(data.rows.len() as u64, "writing", "rows");
    write_csv(&data, file, |n| bar.set_position(n)).with_context(|| format!("cannot write {}", args.out.display()))?;
    bar.finish_and_clear();

    let counts = data.scenario_counts();
    let frauds = data.fraud_count();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} transactions to {} in {:.2}s ({:.0} rows/s)",
        data.rows.len(),
        args.out.display(),
        secs,
        data.rows.len() as f64 / secs.max(1e-9)
    );
    const NAMES: [&str; 11] = [
        "large amount abroad",
        "bust-out merchant",
        "compromised-card burst",
        "label noise",
        "skimmed terminal",
        "card takeover",
        "BIN attack",
        "card testing",
        "card testing by a bot",
        "account takeover",
        "fraud ring",
    ];
    let per: Vec<String> =
        NAMES.iter().enumerate().map(|(k, name)| format!("{} {name} {}", k + 1, counts[k + 1])).collect();
    println!("fraud: {} ({:.2}%) — {}", frauds, 100.0 * frauds as f64 / data.rows.len() as f64, per.join(", "));
    Ok(())
}
