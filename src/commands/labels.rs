//! `aegis labels import`: a labels CSV (chargebacks, case-management exports) into the results
//! database, each row validated as `POST /labels` validates a label.

use crate::cli::{LabelsCommand, LabelsImportArgs};
use crate::domain::{LabelIn, LabelRequest};
use crate::store::{LabelOutcome, Store};
use anyhow::{Context, bail, ensure};
use serde_json::{Map, Value};

/// Labels stored per transaction.
const BATCH: usize = 5_000;
/// Problems listed in the summary.
const SHOW: usize = 10;
/// The fields of a labels file, in the order of [`Columns`].
const FIELDS: [&str; 5] = ["txn_id", "label", "reported_at", "source", "note"];

pub fn run(command: &LabelsCommand) -> anyhow::Result<()> {
    match command {
        LabelsCommand::Import(args) => import(args),
    }
}

#[derive(Debug, Default)]
struct Tally {
    rows: u64,
    stored: u64,
    unchanged: u64,
    verdicts_changed: u64,
    unknown: u64,
    invalid: u64,
    /// (line, what is wrong), the first [`SHOW`] of each kind; printed in line order.
    problems: Vec<(u64, String)>,
}

fn import(args: &LabelsImportArgs) -> anyhow::Result<()> {
    ensure!(
        args.db.exists(),
        "{} does not exist: labels need the transactions they label (run `aegis serve` first)",
        args.db
    );
    let columns = columns(&args.columns)?;
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(std::io::BufReader::new(file));
    let headers =
        reader.headers().with_context(|| format!("cannot read the header of {}", args.file.display()))?.clone();
    let index: Vec<Option<usize>> = columns.iter().map(|c| headers.iter().position(|h| h.trim() == c)).collect();
    for (i, required) in [(0, "txn_id"), (1, "label")] {
        if index[i].is_none() {
            bail!(
                "{} has no `{}` column for `{required}` (columns: {}); map it with --columns {required}=COLUMN",
                args.file.display(),
                columns[i],
                headers.iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut store = Store::open(&args.db)?;
    let origin = format!("import-{:016x}", rand::random::<u64>());
    let now = chrono::Utc::now();
    let bar = crate::progress::bar(size, "labels", "bytes");
    let mut tally = Tally::default();
    let mut batch: Vec<(u64, LabelIn)> = Vec::with_capacity(BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => bail!("{}: line {line}: {e}", args.file.display()),
        }
        tally.rows += 1;
        let field = |i: usize| index[i].and_then(|c| record.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let mut obj = Map::new();
        if let Some(id) = field(0) {
            obj.insert("txn_id".into(), Value::from(id));
        }
        if let Some(label) = field(1) {
            let label = match crate::ingest::parse_label(label) {
                Some(true) => "fraud",
                Some(false) => "legit",
                None => label,
            };
            obj.insert("label".into(), Value::from(label));
        }
        if let Some(at) = field(2) {
            obj.insert("reported_at".into(), at.parse::<i64>().map_or_else(|_| Value::from(at), Value::from));
        }
        obj.insert("source".into(), Value::from(field(3).unwrap_or(&args.source)));
        if let Some(note) = field(4) {
            obj.insert("note".into(), Value::from(note));
        }
        match LabelRequest::validate(&Value::Object(obj), now.timestamp()) {
            Ok(label) => batch.push((line, label)),
            Err(e) => {
                tally.invalid += 1;
                if tally.invalid <= SHOW as u64 {
                    tally.problems.push((line, e.message));
                }
            }
        }
        if batch.len() == BATCH {
            flush(&mut store, &mut batch, &origin, &mut tally)?;
            bar.set_position(reader.position().byte());
        }
    }
    flush(&mut store, &mut batch, &origin, &mut tally)?;
    bar.finish_and_clear();
    println!(
        "{} rows: {} labels stored ({} changed a verdict), {} unchanged (already stored, or older than this source's), {} for unknown transactions, {} invalid",
        tally.rows, tally.stored, tally.verdicts_changed, tally.unchanged, tally.unknown, tally.invalid
    );
    // Invalid rows are found while reading, unknown ones when their batch is stored.
    tally.problems.sort_by_key(|p| p.0);
    for (line, p) in tally.problems.iter().take(SHOW) {
        println!("  line {line}: {p}");
    }
    if tally.invalid + tally.unknown > SHOW as u64 {
        println!("  …");
    }
    let kept = tally.stored + tally.unchanged;
    ensure!(
        tally.invalid + tally.unknown == 0,
        "{} of {} rows were not stored ({} invalid, {} for unknown transactions); {}",
        tally.invalid + tally.unknown,
        tally.rows,
        tally.invalid,
        tally.unknown,
        match kept {
            0 => "no row was stored".to_owned(),
            1 => "the other one was (importing the file again changes nothing for it)".to_owned(),
            n => format!("the other {n} were (importing the file again changes nothing for them)"),
        }
    );
    Ok(())
}

fn flush(store: &mut Store, batch: &mut Vec<(u64, LabelIn)>, origin: &str, tally: &mut Tally) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let labels: Vec<LabelIn> = batch.iter().map(|(_, l)| l.clone()).collect();
    let outcomes = // The verdict changes are applied by the servers, which read the fields themselves.
    store.put_labels(&labels, origin, chrono::Utc::now().timestamp_millis(), &Default::default())?;
    for ((line, label), outcome) in batch.drain(..).zip(outcomes) {
        match outcome {
            LabelOutcome::Stored { change } => {
                tally.stored += 1;
                tally.verdicts_changed += u64::from(change.is_some());
            }
            LabelOutcome::Unchanged => tally.unchanged += 1,
            LabelOutcome::UnknownTxn => {
                tally.unknown += 1;
                if tally.unknown <= SHOW as u64 {
                    tally.problems.push((line, format!("no scored transaction has txn_id `{}`", label.txn_id)));
                }
            }
        }
    }
    Ok(())
}

/// Column names for [`FIELDS`], from `field=COLUMN` pairs.
fn columns(spec: &str) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = FIELDS.iter().map(|f| (*f).to_owned()).collect();
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, column) =
            pair.split_once('=').with_context(|| format!("column mapping `{pair}` is not of the form field=COLUMN"))?;
        let i = FIELDS
            .iter()
            .position(|f| *f == field.trim())
            .with_context(|| format!("unknown field `{}`; fields are {}", field.trim(), FIELDS.join(", ")))?;
        names[i] = column.trim().to_owned();
    }
    Ok(names)
}
