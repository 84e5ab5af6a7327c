//! The producer side of `aegis produce --target kafka://HOST:PORT/TOPIC` (client side).
//!
//! Messages are keyed by the card token, so one card's transactions land in one partition, in
//! order, and reach the one consumer that holds that card's history. The value is the `/predict`
//! JSON; the card number is replaced by its token and masked form unless `--send-pan`.

use super::client_config;
use crate::domain::{CardKey, TransactionIn};
use anyhow::Context;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::time::Duration;

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

    /// Hands one transaction to the producer now (waiting while its queue is full) and returns
    /// the wait for its delivery report. Calls enqueue in call order, so a card's messages
    /// reach its partition in the order they were given (`aegis produce` sends many at once,
    /// but enqueues one after the other).
    pub async fn enqueue(&self, request: &TransactionIn) -> Result<DeliveryFuture, String> {
        let token = request.token(&self.key).ok_or("the transaction has no card")?.to_string();
        let body = if self.send_pan {
            serde_json::to_vec(request)
        } else {
            serde_json::to_vec(&request.clone().tokenized(&self.key))
        }
        .map_err(|e| e.to_string())?;
        let mut record = FutureRecord::to(&self.topic).key(&token).payload(&body);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if tokio::time::Instant::now() < deadline =>
                {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e.to_string()),
            }
        }
    }

    /// Waits for a delivery report.
    pub async fn delivered(delivery: DeliveryFuture) -> Result<(), String> {
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(e.to_string()),
            Err(_) => Err("the producer went away before the delivery report".into()),
        }
    }
}
