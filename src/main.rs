//! The `aegis` binary: parse the command line, set up logging, run the subcommand, and turn any
//! error into one line on stderr and a non-zero exit code.

use aegis::cli::Cli;
use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of glibc's allocator: under `/predict` load glibc's malloc/free took about
/// 14% of the server's CPU (perf, BENCHMARKS.md), and mimalloc's thread-local free lists cut it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: log files and pipes get plain text, not `\x1b[2m…`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    match aegis::commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` puts the whole context chain on one line: "cannot open x.csv: No such file".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
