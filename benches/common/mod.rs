//! What the scoring benches share: a bundle trained on generated data, and the transactions
//! after its training cut to score.

use aegis::cli::Cli;
use aegis::domain::CardKey;
use aegis::ingest::{ColumnMap, LabelledTransaction, read_transactions};
use aegis::scoring::Bundle;
use clap::Parser;

pub fn run(args: &[&str]) {
    let cli = Cli::try_parse_from(std::iter::once("aegis").chain(args.iter().copied())).expect("valid command line");
    aegis::commands::run(cli).expect("command succeeds");
}

/// 40,000 generated transactions, a bundle trained on those before 2025-02-20, the CSV it read
/// (in `dir`), the rows, and the index of the first row after the cut.
pub fn trained(dir: &std::path::Path) -> (Bundle, std::path::PathBuf, Vec<LabelledTransaction>, usize) {
    trained_with(dir, None)
}

/// [`trained`] with a schema file's declared fields (`train --schema`).
pub fn trained_with(
    dir: &std::path::Path,
    schema: Option<&str>,
) -> (Bundle, std::path::PathBuf, Vec<LabelledTransaction>, usize) {
    let data = dir.join("tx.csv");
    let models = dir.join(if schema.is_some() { "models-schema" } else { "models" });
    let (data_s, models_s) = (data.to_string_lossy().into_owned(), models.to_string_lossy().into_owned());
    if !data.exists() {
        run(&["generate", "--rows", "40000", "--out", &data_s]);
    }
    let mut train = vec!["train", "--data", &data_s, "--out", &models_s, "--to", "2025-02-20"];
    if let Some(schema) = schema {
        train.extend(["--schema", schema]);
    }
    run(&train);
    let bundle = Bundle::load(&models).expect("bundle");
    let columns = ColumnMap::default().with_schema(bundle.manifest.schema.fields.clone());
    let rows = read_transactions(&data, &columns, &CardKey::new(b"bench"), false, |_| {}).expect("rows").rows;
    let split = rows.iter().position(|r| r.txn.timestamp >= 1_740_009_600).expect("rows after the cut");
    (bundle, data, rows, split)
}
