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

pub use bundle::{Bundle, DataInfo, FORMAT_VERSION, FeatureSchema, Manifest, SchemaKind};
pub use fit::{FitConfig, Fitted, MIN_POSITIVES, SupervisedSummary, fit, write_csv};
pub use models::{Models, Score, Scratch, Thresholds, supervised_input};
pub use scorer::{Decision, Scorer};

use serde::{Deserialize, Serialize};

/// What to do with a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Review,
    Block,
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Action::Allow),
            "review" => Ok(Action::Review),
            "block" => Ok(Action::Block),
            other => Err(format!("`{other}` is not an action (allow, review or block)")),
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Review => "review",
            Action::Block => "block",
        }
    }
}
