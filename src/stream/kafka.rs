//! Kafka through librdkafka: target parsing, client settings, and the producer side of
//! `aegis produce --target kafka://HOST:PORT/TOPIC`.
//!
//! Messages are keyed by the card token, so one card's transactions land in one partition, in
//! order, and reach the one consumer that holds that card's history. The value is the `/predict`
//! JSON; the card number is replaced by its token and masked form unless `--send-pan`.

use crate::domain::{CardKey, TransactionIn};
use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

/// The topic when a `kafka://` URL names none.
pub const DEFAULT_TOPIC: &str = "transactions";

/// `kafka://HOST:PORT[,HOST:PORT…][/TOPIC]` → (bootstrap servers, topic). Taken apart by hand:
/// a URL parser rejects a comma-separated broker list.
pub fn parse_target(target: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = target.strip_prefix("kafka://") else { bail!("not a kafka:// target: {target}") };
    let (brokers, topic) = rest.split_once('/').unwrap_or((rest, ""));
    if brokers.is_empty() {
        bail!("{target}: no broker address (kafka://HOST:PORT/TOPIC)");
    }
    let topic = topic.trim_end_matches('/');
    Ok((brokers.to_owned(), if topic.is_empty() { DEFAULT_TOPIC } else { topic }.to_owned()))
}

/// Settings for any client: the brokers, then the caller's pass-through properties last, so
/// they win.
pub fn client_config(brokers: &str, defaults: &[(&str, &str)], options: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in options {
        config.set(k, v);
    }
    config
}

pub struct KafkaTarget {
    producer: FutureProducer,
    topic: String,
    key: CardKey,
    send_pan: bool,
}

impl std::fmt::Debug for KafkaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTarget").field("topic", &self.topic).field("send_pan", &self.send_pan).finish()
    }
}

impl KafkaTarget {
    pub fn new(
        brokers: &str,
        topic: &str,
        options: &[(String, String)],
        key: CardKey,
        send_pan: bool,
    ) -> anyhow::Result<Self> {
        // Idempotent producer: retries cannot duplicate or reorder a card's messages.
        let producer = client_config(brokers, &[("enable.idempotence", "true"), ("linger.ms", "5")], options)
            .create()
            .context("cannot create the Kafka producer")?;
        Ok(Self { producer, topic: topic.to_owned(), key, send_pan })
    }

    /// Sends one transaction and waits for its delivery report.
    pub async fn send(&self, request: &TransactionIn) -> Result<(), String> {
        let token = request.token(&self.key).ok_or("the transaction has no card")?.to_string();
        let body = if self.send_pan {
            serde_json::to_vec(request)
        } else {
            serde_json::to_vec(&request.clone().tokenized(&self.key))
        }
        .map_err(|e| e.to_string())?;
        let record = FutureRecord::to(&self.topic).key(&token).payload(&body);
        self.producer.send(record, Duration::from_secs(30)).await.map(|_| ()).map_err(|(e, _)| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_brokers_and_topic() {
        assert_eq!(parse_target("kafka://127.0.0.1:9092/tx").unwrap(), ("127.0.0.1:9092".into(), "tx".into()));
        assert_eq!(parse_target("kafka://a:1,b:2").unwrap(), ("a:1,b:2".into(), DEFAULT_TOPIC.into()));
        assert!(parse_target("kafka:///tx").is_err());
        assert!(parse_target("http://a:1/tx").is_err());
    }
}
