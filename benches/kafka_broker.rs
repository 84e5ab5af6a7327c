//! Broker-only Kafka rates, to compare with `aegis consume` (BENCHMARKS.md): produce N messages
//! of a typical transaction's size with rdkafka, then consume them all, nothing else.
//!
//! `AEGIS_BENCH_KAFKA=HOST:PORT [ROWS=1000000] cargo bench --bench kafka_broker`
//! (`benches/kafka_pipeline.sh` starts a broker and runs this and the Aegis pipeline).

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::{Duration, Instant};

fn main() {
    let Ok(brokers) = std::env::var("AEGIS_BENCH_KAFKA") else {
        eprintln!("set AEGIS_BENCH_KAFKA=HOST:PORT (benches/kafka_pipeline.sh starts a broker)");
        return;
    };
    let rows: usize = std::env::var("ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let topic = format!("broker-bench-{}", std::process::id());
    let body = br#"{"txn_id":"0123456789abcdef","timestamp":1737763200,"amount":42.5,"country":"FR","merchant":"M000042","merchant_category":"grocery","card_token":"00112233445566778899aabbccddeeff","card_masked":"411111******1111"}"#;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "2000000")
        .create()
        .expect("producer");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let started = Instant::now();
    rt.block_on(async {
        let mut pending = Vec::with_capacity(rows);
        for i in 0..rows {
            let key = format!("{:032x}", i % 10_000);
            let record = FutureRecord::to(&topic).key(&key).payload(&body[..]);
            pending.push(producer.send_result(record).expect("queued"));
        }
        for p in pending {
            p.await.expect("delivery report").expect("delivered");
        }
    });
    let produce = started.elapsed();
    println!(
        "broker-only produce: {rows} messages in {:.1} s ({:.0}/s)",
        produce.as_secs_f64(),
        rows as f64 / produce.as_secs_f64()
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut n = 0;
    while n < rows && started.elapsed() < Duration::from_secs(600) {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            n += 1;
        }
    }
    let reading = first.map_or(Duration::ZERO, |f| f.elapsed());
    println!(
        "broker-only consume: {n} messages in {:.1} s after the group join ({:.0}/s; join took {:.1} s)",
        reading.as_secs_f64(),
        n as f64 / reading.as_secs_f64().max(1e-9),
        first.map_or(0.0, |f| (f - started).as_secs_f64())
    );
}
