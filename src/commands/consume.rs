//! `aegis consume`: a Kafka consumer-group worker that scores and stores, until SIGINT/SIGTERM.

use crate::alerts::{self, AlertConfig};
use crate::cli::ConsumeArgs;
use crate::engine::{Engine, EngineConfig, card_key_for};
use crate::kafka::consumer::{self, ConsumerConfig};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

pub fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    let config = ConsumerConfig {
        brokers: args.brokers.clone(),
        topic: args.topic.clone(),
        group: args.group.clone(),
        dlq_topic: args.dlq_topic.clone().unwrap_or_else(|| format!("{}.dlq", args.topic)),
        options: args.kafka_options.clone(),
        broker_timeout: Duration::from_secs(args.broker_timeout),
        scored_topic: args.scored_topic.clone(),
        alerts_topic: args.alerts_topic.clone(),
    };
    super::serve::runtime()?.block_on(async {
        let metrics = Arc::new(Metrics::default());
        let card_key = card_key_for(&args.db, args.card_key_file.as_deref())?;
        let engine_config =
            EngineConfig { models: args.models.clone(), db: args.db.clone(), card_key, warm_up: Vec::new() };
        let engine = {
            let metrics = Arc::clone(&metrics);
            tokio::task::spawn_blocking(move || Engine::open(engine_config, metrics)).await??
        };
        let (queue, alert_task) = if args.alert_webhooks.is_empty() {
            (None, None)
        } else {
            let alert_config = AlertConfig {
                webhooks: args.alert_webhooks.clone(),
                max_attempts: 5,
                backoff: Duration::from_millis(500),
                timeout: Duration::from_secs(5),
            };
            let (queue, task) = alerts::spawn(alert_config, &args.db, Arc::clone(&metrics))?;
            (Some(queue), Some(task))
        };
        let engine = Arc::new(engine.with_alerts(queue));
        println!(
            "Aegis is consuming {} from {} as group {} with model {}",
            config.topic,
            config.brokers,
            config.group,
            engine.model_version()
        );
        let result = consumer::run(Arc::clone(&engine), &config, super::serve::shutdown_signal()).await;
        if let Some(engine) = Arc::into_inner(engine) {
            tokio::task::spawn_blocking(move || engine.shutdown()).await?;
        }
        if let Some(task) = alert_task {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let summary = result?;
        println!(
            "Stopped: {} scored ({} already stored), {} sent to {}",
            summary.scored, summary.duplicates, summary.dead_lettered, config.dlq_topic
        );
        Ok(())
    })
}
