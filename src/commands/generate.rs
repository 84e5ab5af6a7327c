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
    println!(
        "fraud: {} ({:.2}%) — 1 large amount abroad {}, 2 bust-out merchant {}, 3 compromised-card burst {}, 4 label noise {}, 5 skimmed terminal {}, 6 card takeover {}, 7 BIN attack {}, 8 card testing {}",
        frauds,
        100.0 * frauds as f64 / data.rows.len() as f64,
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        counts[6],
        counts[7],
        counts[8]
    );
    Ok(())
}
