//! Kafka through librdkafka (feature `kafka`): the consumer-group worker that scores what it
//! reads (server side, `aegis consume`), the producer `aegis produce` sends with (client side),
//! and what both share: `kafka://` targets and client settings.

pub mod consumer;
mod producer;

pub use producer::KafkaTarget;

use anyhow::bail;
use rdkafka::ClientConfig;

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
