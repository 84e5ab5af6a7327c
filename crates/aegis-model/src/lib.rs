//! Pure, synchronous, deterministic models for Aegis: anomaly detectors and a supervised GBDT.
//!
//! Nothing here does I/O or knows about transactions: the crate takes rows of `f32`
//! features and returns scores. Models follow linfa's shape — a `Params` builder with
//! defaults, checked on `fit(&data) -> Result<Model>`; fitted models have private
//! fields, score one row (`score(&self, row)`) or a batch, and round-trip through serde.

pub mod autoencoder;
pub mod calibration;
pub mod gbdt;
pub mod isolation_forest;
mod matrix;
pub mod metrics;
mod scaler;

pub use autoencoder::{Autoencoder, AutoencoderParams, TrainingHistory};
pub use calibration::EmpiricalCdf;
pub use gbdt::{Gbdt, GbdtParams};
pub use isolation_forest::{IsolationForest, IsolationForestParams};
pub use matrix::Matrix;
pub use scaler::StandardScaler;

/// Everything that can go wrong when fitting, loading or applying a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A hyper-parameter is out of its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// The training data cannot be used (empty, non-finite, wrong shape).
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// A row has a different number of features than the model was fitted on.
    #[error("expected {expected} features, got {got}")]
    FeatureCount { expected: usize, got: usize },
    /// A deserialised model is internally inconsistent (corrupt or hand-edited file).
    #[error("corrupt model: {0}")]
    Corrupt(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

pub(crate) fn invalid_param(name: &'static str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidParam { name, reason: reason.into() }
}
