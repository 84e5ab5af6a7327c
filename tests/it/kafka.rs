//! `aegis produce --target kafka://…` and `aegis consume` against a real Kafka-protocol broker
//! (Tansu, started by `scripts/test.sh`; ../shared/kafka-broker.md). Each test uses its own
//! topics and consumer group.

use super::server::bundles;
use super::{aegis, aegis_ok};
use aegis::store::Store;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Settings the test broker needs (kafka-broker.md), passed through as a user would.
const TEST_OPTIONS: [&str; 2] = ["session.timeout.ms=6000", "heartbeat.interval.ms=1000"];

fn broker() -> String {
    std::env::var("AEGIS_TEST_KAFKA")
        .expect("AEGIS_TEST_KAFKA: run the tests with ./scripts/test.sh, which starts a broker")
}

/// A name no other test (or earlier run) used.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), rand::random::<u32>())
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let results = rt
        .block_on(
            admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()),
        )
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// `aegis consume` on `topic` as `group`, storing into `dir/results.db`; killed on drop.
struct Worker(Child);

impl Worker {
    fn start(dir: &Path, brokers: &str, topic: &str, group: &str) -> Self {
        Self::start_with(dir, brokers, topic, group, &[])
    }

    /// `--db` in `extra` names another database (a `postgres://` URL, say); the card key is
    /// always `dir/results.key`, the one `produce` writes.
    fn start_with(dir: &Path, brokers: &str, topic: &str, group: &str, extra: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegis"));
        cmd.args(["consume", "--brokers", brokers, "--topic", topic, "--group", group, "--log", "warn"])
            .arg("--models")
            .arg(&bundles().a)
            .arg("--card-key-file")
            .arg(dir.join("results.key"));
        if !extra.contains(&"--db") {
            cmd.arg("--db").arg(dir.join("results.db"));
        }
        cmd.args(["--broker-timeout", "30"])
            .args(extra)
            .env_remove("AEGIS_CARD_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for o in TEST_OPTIONS {
            cmd.args(["--kafka-option", o]);
        }
        Self(cmd.spawn().unwrap())
    }

    fn signal(&self, signal: &str) {
        Command::new("kill").args([signal, &self.0.id().to_string()]).status().unwrap();
    }

    /// SIGTERM, then the exit status and stdout.
    fn stop(self) -> (bool, String) {
        self.signal("-TERM");
        self.wait(Duration::from_secs(120))
    }

    /// The exit status and output once the worker ends by itself (killed after `within`).
    fn wait(mut self, within: Duration) -> (bool, String) {
        let deadline = Instant::now() + within;
        while self.0.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.0.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `aegis produce` of `count` generated transactions (seed `seed`) to `topic`.
fn produce(dir: &Path, brokers: &str, topic: &str, count: usize, seed: u64) -> String {
    let target = format!("kafka://{brokers}/{topic}");
    let (count, seed) = (count.to_string(), seed.to_string());
    let key = dir.join("results.key");
    let mut args = vec!["produce", "--target", &target, "--count", &count, "--rate", "0", "--concurrency", "256"];
    args.extend(["--seed", &seed, "--quiet", "--card-key-file", key.to_str().unwrap()]);
    for o in TEST_OPTIONS {
        args.extend(["--kafka-option", o]);
    }
    aegis_ok(dir, &args)
}

use super::stored_rows as count_rows;

/// Waits until the store holds `n` results (and no more appear for a moment).
fn wait_for_rows(db: impl AsRef<std::ffi::OsStr> + Copy, n: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        if count_rows(db) >= n || Instant::now() > deadline {
            // A moment more, to see anything beyond `n` that should not be there.
            std::thread::sleep(Duration::from_millis(500));
            return count_rows(db);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn generated_ids(seed: u64, count: usize) -> Vec<String> {
    (0..count as u64).map(|i| format!("{:016x}", aegis::generator::txn_id(seed, i))).collect()
}

/// Sum over the topic's partitions of the group's committed offsets.
fn committed(brokers: &str, topic: &str, group: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let offsets = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    offsets.elements().iter().filter_map(|e| e.offset().to_raw()).filter(|o| *o > 0).sum()
}

#[test]
fn ten_thousand_produced_are_stored_exactly_once_with_offsets_committed() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 3);
    let out = produce(dir.path(), &brokers, &topic, 10_000, 11);
    assert!(out.contains("10000 transactions sent, 10000 delivered, 0 errors"), "{out}");
    let worker = Worker::start(dir.path(), &brokers, &topic, &group);
    let db = dir.path().join("results.db");
    assert_eq!(wait_for_rows(&db, 10_000, Duration::from_secs(120)), 10_000);
    let (ok, log) = worker.stop();
    assert!(ok, "{log}");
    assert!(log.contains("Stopped: 10000 scored (0 already stored), 0 sent to"), "{log}");
    let mut store = Store::open(&db).unwrap();
    assert!(generated_ids(11, 10_000).iter().all(|id| store.get(id).unwrap().is_some()));
    assert_eq!(committed(&brokers, &topic, &group, 3), 10_000, "every offset committed");
}

#[test]
fn a_worker_killed_mid_stream_and_restarted_loses_and_doubles_nothing() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 2);
    produce(dir.path(), &brokers, &topic, 10_000, 12);
    let db = dir.path().join("results.db");
    let first = Worker::start(dir.path(), &brokers, &topic, &group);
    // Killed as soon as results start arriving: mid-stream, with messages in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_rows(&db) < 200 {
        assert!(Instant::now() < deadline, "the first worker stored nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    first.signal("-KILL");
    let partial = count_rows(&db);
    drop(first);
    assert!(partial < 10_000, "killed before the end ({partial} stored)");
    let second = Worker::start(dir.path(), &brokers, &topic, &group);
    assert_eq!(wait_for_rows(&db, 10_000, Duration::from_secs(120)), 10_000);
    let (ok, log) = second.stop();
    assert!(ok, "{log}");
    let mut store = Store::open(&db).unwrap();
    let missing = generated_ids(12, 10_000).iter().filter(|id| store.get(id).unwrap().is_none()).count();
    assert_eq!(missing, 0);
    assert_eq!(committed(&brokers, &topic, &group, 2), 10_000);
}

#[test]
fn two_workers_on_postgres_store_each_transaction_once_even_when_one_is_killed() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 4);
    produce(dir.path(), &brokers, &topic, 10_000, 14);
    let db = super::postgres_db();
    let on_postgres = ["--db", db.as_str()];
    let a = Worker::start_with(dir.path(), &brokers, &topic, &group, &on_postgres);
    let b = Worker::start_with(dir.path(), &brokers, &topic, &group, &on_postgres);
    // Killed once results arrive: mid-stream, with messages in flight and offsets uncommitted.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_rows(&db) < 1_000 {
        assert!(Instant::now() < deadline, "the workers stored nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    a.signal("-KILL");
    drop(a);
    assert!(count_rows(&db) < 10_000, "killed before the end");
    // The survivor takes the dead worker's partitions (after the session timeout) and finishes.
    assert_eq!(wait_for_rows(db.as_str(), 10_000, Duration::from_secs(180)), 10_000);
    let (ok, log) = b.stop();
    assert!(ok, "{log}");
    let mut client = ::postgres::Client::connect(&db, ::postgres::NoTls).unwrap();
    let stored: std::collections::HashSet<String> =
        client.query("SELECT txn_id FROM results", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    let expected: std::collections::HashSet<String> = generated_ids(14, 10_000).into_iter().collect();
    assert_eq!(stored, expected, "each produced transaction stored, once");
    assert_eq!(committed(&brokers, &topic, &group, 4), 10_000, "every offset committed");
}

#[test]
fn a_postgres_restart_mid_stream_loses_nothing_and_the_worker_resumes() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let pg = super::OwnPostgres::start(&dir.path().join("pg"));
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 2);
    produce(dir.path(), &brokers, &topic, 10_000, 15);
    let worker =
        Worker::start_with(dir.path(), &brokers, &topic, &group, &["--db", pg.url.as_str(), "--db-timeout", "120"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_rows(&pg.url) < 1_000 {
        assert!(Instant::now() < deadline, "the worker stored nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    // An outage of a few seconds, mid-stream: connections cut, commits refused.
    pg.ctl("stop");
    std::thread::sleep(Duration::from_secs(3));
    pg.ctl("start");
    assert_eq!(wait_for_rows(pg.url.as_str(), 10_000, Duration::from_secs(180)), 10_000);
    let (ok, log) = worker.stop();
    assert!(ok, "{log}");
    assert!(log.contains("retrying"), "the worker felt the outage and waited it out: {log}");
    let mut client = ::postgres::Client::connect(&pg.url, ::postgres::NoTls).unwrap();
    let stored: std::collections::HashSet<String> =
        client.query("SELECT txn_id FROM results", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(stored, generated_ids(15, 10_000).into_iter().collect(), "each transaction stored, once");
    assert_eq!(committed(&brokers, &topic, &group, 2), 10_000, "every offset committed");
}

/// A store outage must not reorder a card's messages: a lane whose batch the store refused
/// retries it before taking the next one. The second half of a stream arrives while PostgreSQL
/// is down; every transaction's card counts (spelled out by the count rules) must then equal
/// those of a worker that read the same topic with no outage.
#[test]
fn a_store_outage_does_not_reorder_a_cards_messages() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pg = super::OwnPostgres::start(&d.join("pg"));
    // 12 transactions a card over 20 days: counts 1..=12, every message tells its card's order.
    aegis_ok(d, &["generate", "--rows", "6000", "--cards", "500", "--days", "20", "--seed", "21", "--out", "gen.csv"]);
    let all = std::fs::read_to_string(d.join("gen.csv")).unwrap();
    let halves = [0, 3_000].map(|from| {
        let path = d.join(format!("half-{from}.csv"));
        csv_slice(&all, from, 3_000, &path);
        path
    });
    let rules = count_rules(d);
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 2);
    let extra = ["--db", pg.url.as_str(), "--db-timeout", "120", "--rules", rules.as_str()];
    let worker = Worker::start_with(d, &brokers, &topic, &group, &extra);
    produce_csv(d, &brokers, &topic, &halves[0]);
    assert_eq!(wait_for_rows(pg.url.as_str(), 3_000, Duration::from_secs(120)), 3_000);
    pg.ctl("stop");
    produce_csv(d, &brokers, &topic, &halves[1]);
    std::thread::sleep(Duration::from_secs(4));
    pg.ctl("start");
    assert_eq!(wait_for_rows(pg.url.as_str(), 6_000, Duration::from_secs(180)), 6_000);
    let (ok, log) = worker.stop();
    assert!(ok, "{log}");
    assert!(log.contains("retrying"), "the worker felt the outage: {log}");

    let reference = d.join("reference.db");
    let extra = ["--db", reference.to_str().unwrap(), "--rules", rules.as_str()];
    let worker = Worker::start_with(d, &brokers, &topic, &unique("g"), &extra);
    assert_eq!(wait_for_rows(&reference, 6_000, Duration::from_secs(120)), 6_000);
    assert!(worker.stop().0);

    let mut client = ::postgres::Client::connect(&pg.url, ::postgres::NoTls).unwrap();
    let through_outage: std::collections::HashMap<String, String> =
        client.query("SELECT txn_id, rules FROM results", &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    let reference = rules_by_txn(&reference);
    assert_eq!(reference.len(), 6_000);
    let differing: Vec<_> = reference.iter().filter(|(id, rules)| through_outage.get(*id) != Some(rules)).collect();
    assert!(
        differing.is_empty(),
        "{} of 6000 differ, e.g. {:?}",
        differing.len(),
        &differing[..differing.len().min(3)]
    );
}

#[test]
fn consume_exits_with_a_clear_error_when_the_database_stays_away() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let pg = super::OwnPostgres::start(&dir.path().join("pg"));
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 1);
    let worker =
        Worker::start_with(dir.path(), &brokers, &topic, &group, &["--db", pg.url.as_str(), "--db-timeout", "2"]);
    std::thread::sleep(Duration::from_secs(3));
    pg.ctl("stop");
    produce(dir.path(), &brokers, &topic, 200, 16);
    let (ok, log) = worker.wait(Duration::from_secs(90));
    assert!(!ok, "the worker gives up: {log}");
    assert!(log.contains("cannot store results") || log.contains("cannot be read"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(committed(&brokers, &topic, &group, 1), 0, "no offset committed for an unstored result");
}

/// A rules file whose matches spell out each transaction's 7- and 30-day card counts (up to
/// 12): card state made visible in the stored decisions. (Merchant, country and category state
/// spans cards and partitions, and is not in a partition's checkpoint.)
fn count_rules(dir: &Path) -> String {
    let mut text = String::new();
    for days in [7, 30] {
        for k in 1..=12 {
            text += &format!(
                "[[rule]]\nname = \"c{days}d-{k}\"\nwhen = \"card_txn_count_{days}d >= {k}\"\naction = \"review\"\nreason = \"count\"\n\n"
            );
        }
    }
    let path = dir.join("count-rules.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn rules_by_txn(db: &Path) -> std::collections::HashMap<String, String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn.prepare("SELECT txn_id, rules FROM results").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// A CSV of `rows` (header kept) from line `from` on.
fn csv_slice(all: &str, from: usize, rows: usize, out: &Path) {
    let mut lines = all.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.skip(from).take(rows).collect();
    std::fs::write(out, format!("{header}\n{}\n", body.join("\n"))).unwrap();
}

fn produce_csv(dir: &Path, brokers: &str, topic: &str, csv: &Path) {
    let target = format!("kafka://{brokers}/{topic}");
    let key = dir.join("results.key");
    let mut args = vec!["produce", "--target", &target, "--data", csv.to_str().unwrap(), "--count", "100000"];
    args.extend(["--rate", "0"]);
    args.extend(["--concurrency", "64", "--quiet", "--card-key-file", key.to_str().unwrap()]);
    for o in TEST_OPTIONS {
        args.extend(["--kafka-option", o]);
    }
    aegis_ok(dir, &args);
}

/// Two workers split a stream, then one leaves — stopped (its partitions checkpointed on
/// revoke) or killed (the other resumes from its last periodic checkpoint and replays the
/// stored tail since) — and the other takes its partitions. Every transaction's card state, as
/// the count rules spell it out, must equal a single worker's that saw the whole stream.
fn card_state_follows_its_partition(kill: bool) {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    aegis_ok(d, &["generate", "--rows", "4000", "--cards", "150", "--days", "20", "--seed", "17", "--out", "gen.csv"]);
    let all = std::fs::read_to_string(d.join("gen.csv")).unwrap();
    let parts = [(0, 2_000), (2_000, 500), (2_500, 1_500)].map(|(from, rows)| {
        let path = d.join(format!("part-{from}.csv"));
        csv_slice(&all, from, rows, &path);
        path
    });
    let rules = count_rules(d);

    // The reference: one worker sees the whole stream.
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 4);
    for part in &parts {
        produce_csv(d, &brokers, &topic, part);
    }
    let single = d.join("single.db");
    let extra = ["--db", single.to_str().unwrap(), "--rules", rules.as_str()];
    let worker = Worker::start_with(d, &brokers, &topic, &group, &extra);
    assert_eq!(wait_for_rows(&single, 4_000, Duration::from_secs(120)), 4_000);
    assert!(worker.stop().0);

    // The pair starts together on an empty store, so neither learns the other's cards from it.
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 4);
    let pair = d.join("pair.db");
    let extra = ["--db", pair.to_str().unwrap(), "--rules", rules.as_str()];
    let a = Worker::start_with(d, &brokers, &topic, &group, &extra);
    let b = Worker::start_with(d, &brokers, &topic, &group, &extra);
    std::thread::sleep(Duration::from_secs(8)); // both join the group and share the partitions
    produce_csv(d, &brokers, &topic, &parts[0]);
    assert_eq!(wait_for_rows(&pair, 2_000, Duration::from_secs(120)), 2_000);
    // A periodic checkpoint (every 5 s) covers the first part; the second part comes after it.
    std::thread::sleep(Duration::from_secs(7));
    produce_csv(d, &brokers, &topic, &parts[1]);
    assert_eq!(wait_for_rows(&pair, 2_500, Duration::from_secs(120)), 2_500);
    let log = if kill {
        a.signal("-KILL");
        a.wait(Duration::from_secs(30)).1
    } else {
        let (ok, log) = a.stop();
        assert!(ok, "{log}");
        let line = log.lines().find(|l| l.starts_with("Stopped: ")).unwrap_or_else(|| panic!("{log}"));
        let scored: u64 = line["Stopped: ".len()..].split(' ').next().unwrap().parse().unwrap();
        assert!(scored > 0 && scored < 2_500, "the leaver had partitions of its own: {line}");
        log
    };
    produce_csv(d, &brokers, &topic, &parts[2]);
    assert_eq!(wait_for_rows(&pair, 4_000, Duration::from_secs(120)), 4_000, "{log}");
    assert!(b.stop().0);

    let (reference, handed_over) = (rules_by_txn(&single), rules_by_txn(&pair));
    assert_eq!(reference.len(), 4_000);
    let differing: Vec<_> = reference.iter().filter(|(id, rules)| handed_over.get(*id) != Some(rules)).collect();
    assert!(
        differing.is_empty(),
        "{} of 4000 differ, e.g. {:?}",
        differing.len(),
        &differing[..differing.len().min(3)]
    );
}

#[test]
fn card_state_follows_its_partition_when_a_worker_leaves() {
    card_state_follows_its_partition(false);
}

#[test]
fn card_state_follows_its_partition_when_a_worker_dies() {
    card_state_follows_its_partition(true);
}

#[test]
fn two_workers_in_one_group_split_the_partitions() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 4);
    let db = dir.path().join("results.db");
    produce(dir.path(), &brokers, &topic, 4_000, 13);
    let a = Worker::start(dir.path(), &brokers, &topic, &group);
    let b = Worker::start(dir.path(), &brokers, &topic, &group);
    assert_eq!(wait_for_rows(&db, 4_000, Duration::from_secs(120)), 4_000);
    let scored = |log: &str| -> u64 {
        let line = log.lines().find(|l| l.starts_with("Stopped: ")).unwrap_or_else(|| panic!("{log}"));
        line["Stopped: ".len()..].split(' ').next().unwrap().parse().unwrap()
    };
    let ((ok_a, log_a), (ok_b, log_b)) = (a.stop(), b.stop());
    assert!(ok_a && ok_b, "{log_a}\n{log_b}");
    let (sa, sb) = (scored(&log_a), scored(&log_b));
    assert!(sa > 0 && sb > 0, "both workers got partitions: {sa} + {sb}");
    assert!(sa + sb >= 4_000);
    assert_eq!(committed(&brokers, &topic, &group, 4), 4_000);
}

#[test]
fn poison_messages_go_to_the_dead_letter_topic_and_the_rest_are_stored() {
    let brokers = broker();
    let dir = tempfile::tempdir().unwrap();
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 1);
    create_topic(&brokers, &format!("{topic}.dlq"), 1);
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let good = |i: u32| {
        let pan = super::server::pan(u64::from(i));
        serde_json::json!({"txn_id": format!("p-{i}"), "timestamp": "2025-01-09T10:00:00Z", "amount": 20.0,
            "country": "FR", "merchant": "M1", "card_num": pan})
        .to_string()
    };
    // The last carries a key no schema declares (an upstream added a field): scored all the same.
    let unknown = good(5).replace("\"amount\"", "\"upstream_added\":\"x\",\"amount\"");
    let messages = [good(1), "{not json".to_owned(), good(2), good(3).replace("20.0", "-5"), good(4), unknown];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for m in &messages {
        rt.block_on(producer.send(FutureRecord::to(&topic).key("k").payload(m), Duration::from_secs(10))).unwrap();
    }
    let scored_topic = format!("{topic}.scored");
    create_topic(&brokers, &scored_topic, 1);
    let worker = Worker::start_with(dir.path(), &brokers, &topic, &group, &["--scored-topic", &scored_topic]);
    let db = dir.path().join("results.db");
    assert_eq!(wait_for_rows(&db, 4, Duration::from_secs(60)), 4);
    let (ok, log) = worker.stop();
    assert!(ok && log.contains("4 scored (0 already stored), 2 sent to"), "{log}");
    assert!(log.contains("key=upstream_added") && log.contains("neither a transaction field"), "logged once: {log}");
    assert_eq!(committed(&brokers, &topic, &group, 1), 6, "poison messages do not block the partition");

    let mut reasons: Vec<String> = read_topic(&brokers, &format!("{topic}.dlq"), 2)
        .iter()
        .map(|(_, error)| error.clone().expect("an aegis-error header"))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    reasons.sort();
    // Decisions are published once stored, for the good messages only.
    let mut scored: Vec<String> = read_topic(&brokers, &scored_topic, 4)
        .iter()
        .map(|(body, _)| {
            serde_json::from_str::<serde_json::Value>(body).unwrap()["txn_id"].as_str().unwrap().to_owned()
        })
        .collect();
    scored.sort();
    assert_eq!(scored, ["p-1", "p-2", "p-4", "p-5"]);
    assert!(reasons[0].contains("`amount` must not be negative") && reasons[1].starts_with("not JSON"), "{reasons:?}");
}

#[test]
fn consume_gives_up_clearly_when_no_broker_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let models = bundles().a.to_str().unwrap().to_owned();
    let brokers = format!("127.0.0.1:{port}");
    let out = aegis(
        dir.path(),
        &["consume", "--brokers", &brokers, "--models", &models, "--broker-timeout", "3", "--log", "error"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unreachable for"), "{stderr}");
}

/// The first `n` messages of `topic` (body, `aegis-error` header), read from the beginning.
fn read_topic(brokers: &str, topic: &str, n: usize) -> Vec<(String, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            let error = m.headers().and_then(|h| h.iter().find(|h| h.key == "aegis-error").and_then(|h| h.value));
            let body = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            messages.push((body, error.map(|e| String::from_utf8_lossy(e).into_owned())));
        }
    }
    messages
}

/// A private in-memory broker on `port` (the shared one must not be restarted under other tests).
fn private_broker(port: u16) -> Child {
    let tansu = std::env::var("AEGIS_TEST_TANSU").expect("AEGIS_TEST_TANSU: run the tests with ./scripts/test.sh");
    let listener = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu)
        .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the private broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

#[test]
fn a_broker_restart_is_reported_and_survived() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let brokers = format!("127.0.0.1:{port}");
    let mut broker = private_broker(port);
    let dir = tempfile::tempdir().unwrap();
    let (topic, group) = (unique("tx"), unique("g"));
    create_topic(&brokers, &topic, 1);
    produce(dir.path(), &brokers, &topic, 200, 21);
    let worker = Worker::start(dir.path(), &brokers, &topic, &group);
    let db = dir.path().join("results.db");
    assert_eq!(wait_for_rows(&db, 200, Duration::from_secs(60)), 200);

    // The test broker keeps nothing across a restart: topic, messages and offsets are gone.
    broker.kill().unwrap();
    broker.wait().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let mut broker = private_broker(port);
    create_topic(&brokers, &topic, 1);
    produce(dir.path(), &brokers, &topic, 150, 22);
    assert_eq!(wait_for_rows(&db, 350, Duration::from_secs(90)), 350, "the worker picked up after the restart");
    let (ok, log) = worker.stop();
    assert!(ok, "the worker survived the outage: {log}");
    assert!(log.contains("unreachable"), "the outage was reported: {log}");
    let _ = broker.kill();
    let _ = broker.wait();
}
