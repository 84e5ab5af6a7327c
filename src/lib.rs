//! Aegis: real-time credit-card fraud detection.
//!
//! The library behind the `aegis` binary. Data flows one way:
//! [`generator`] or [`ingest`] → [`features`] → [`scoring`] (models from `aegis-model`) →
//! [`evaluation`]; [`store`] keeps every decision in SQLite. `train`, `evaluate` and `demo`
//! share the same feature and scoring code. Live, [`runtime`] owns the [`engine`] (model bundle,
//! card history, the [`store`] boundary), metrics and alerts; sources plug into it — the HTTP
//! API ([`http`]) and the Kafka consumer (`kafka`) — and every sink takes one
//! [`domain::ScoredTransaction`]. [`load`] is the client side that sends to the sources.

pub mod alerts;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod engine;
pub mod evaluation;
pub mod features;
pub mod generator;
pub mod http;
pub mod ingest;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod load;
pub mod metrics;
pub mod progress;
pub mod rules;
pub mod runtime;
pub mod scoring;
pub mod store;
