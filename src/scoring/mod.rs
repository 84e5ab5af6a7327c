//! From a feature vector to a decision: the unsupervised models, the supervised model, the
//! combined score and the thresholds,
//! plus the versioned model bundle they are stored in.

mod bundle;
mod fit;
mod models;
mod reasons;
mod scorer;
#[cfg(test)]
pub(crate) mod testing;

pub use bundle::{Bundle, DataInfo, FORMAT_VERSION, FeatureSchema, Manifest, SchemaKind, is_models_root, make_current};
pub use fit::{FitConfig, Fitted, MIN_POSITIVES, SupervisedSummary, fit, write_csv};
pub use models::{Models, Score, Scratch, Thresholds, supervised_input};
pub use scorer::{Decision, Scorer, decide, decide_batch, with_scratch};

pub use crate::domain::Action;
