//! `aegis consume`: a Kafka consumer-group worker that scores and stores, until SIGINT/SIGTERM.

use crate::cli::ConsumeArgs;
use crate::kafka::consumer::{self, ConsumerConfig};
use crate::runtime::Runtime;
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
        let runtime =
            Runtime::start(super::runtime_config(&args.models, &args.store, &args.alerts, &args.decision, Vec::new()))
                .await?;
        println!(
            "Aegis is consuming {} from {} as group {} with model {}",
            config.topic,
            config.brokers,
            config.group,
            runtime.engine.model_version()
        );
        let result = consumer::run(Arc::clone(&runtime.engine), &config, super::serve::shutdown_signal()).await;
        runtime.stop().await?;
        let summary = result?;
        println!(
            "Stopped: {} scored ({} already stored), {} sent to {}",
            summary.scored, summary.duplicates, summary.dead_lettered, config.dlq_topic
        );
        Ok(())
    })
}
