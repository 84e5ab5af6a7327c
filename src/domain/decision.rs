//! The decision: what to do with a transaction, the scored transaction every sink takes, and
//! its wire view.

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

/// One scored transaction: the decision record every sink takes. The store keeps it as a row,
/// and the HTTP answer, the Kafka messages, alerts and dashboard rows are views of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredTransaction {
    pub txn_id: String,
    /// Transaction time, Unix seconds.
    pub timestamp: i64,
    pub amount: f64,
    pub country: String,
    pub merchant: String,
    pub merchant_category: Option<String>,
    /// First 6 / last 4 digits.
    pub card_masked: String,
    /// HMAC token of the card number (hex).
    pub card_token: String,
    pub score: f32,
    pub if_score: f32,
    pub ae_mse: f32,
    /// The supervised model's fraud probability, if the bundle had one.
    pub fraud_probability: Option<f32>,
    pub action: Action,
    pub reasons: Vec<String>,
    /// Names of the rules that matched (their reasons are in `reasons`).
    pub rules: Vec<String>,
    pub model_version: String,
    /// The shadow model's opinion, stored for comparison, never answered or alerted.
    pub shadow: Option<ShadowScore>,
    /// When Aegis received it, Unix milliseconds.
    pub received_at: i64,
    /// From receipt to decision (validation, features, models), microseconds; the commit that
    /// follows is not included.
    pub latency_us: u32,
    /// The declared fields' values as a JSON object (PII as tokens); `None` without a schema.
    pub fields: Option<String>,
}

/// What the shadow (challenger) model would have decided.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ShadowScore {
    pub score: f32,
    pub action: Action,
    pub model_version: String,
}

/// A verdict on a transaction: confirmed fraud or confirmed legitimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Fraud,
    Legit,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Fraud => "fraud",
            Verdict::Legit => "legit",
        }
    }

    pub fn is_fraud(self) -> bool {
        self == Verdict::Fraud
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fraud" => Ok(Verdict::Fraud),
            "legit" => Ok(Verdict::Legit),
            other => Err(format!("`{other}` is not a label (fraud or legit)")),
        }
    }
}

/// The decision for one transaction on the wire: the `/predict` answer, the Kafka scored and
/// alerts messages, and what `produce` reads back. A view of [`ScoredTransaction`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PredictResponse {
    pub txn_id: String,
    /// The decision score in [0, 1]: the supervised model's fraud probability when the bundle
    /// has one, else the mean of the two anomaly models' training percentiles.
    pub score: f32,
    pub action: Action,
    /// Why, most important first (empty when allowed); matching rules' reasons included.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Names of the rules that matched.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Isolation Forest anomaly score in (0, 1].
    pub if_score: f32,
    /// Autoencoder reconstruction error (mean squared, standardised features).
    pub ae_mse: f32,
    /// The supervised model's fraud probability; null when the bundle was trained without labels.
    pub fraud_probability: Option<f32>,
    /// 1 if the action is not `allow` (kept for clients of the first prototype).
    pub label: u8,
    pub model_version: String,
    /// Time spent in the server, microseconds (over HTTP including the store commit).
    #[serde(default)]
    pub latency_us: u64,
    /// True if this `txn_id` was already scored: this is the stored decision.
    #[serde(default)]
    pub duplicate: bool,
}

impl PredictResponse {
    /// The answer for `txn`, `duplicate` if it is an earlier request's stored decision.
    pub fn new(txn: &ScoredTransaction, duplicate: bool, latency_us: u64) -> Self {
        Self {
            txn_id: txn.txn_id.clone(),
            score: txn.score,
            action: txn.action,
            reasons: txn.reasons.clone(),
            rules: txn.rules.clone(),
            if_score: txn.if_score,
            ae_mse: txn.ae_mse,
            fraud_probability: txn.fraud_probability,
            label: u8::from(txn.action != Action::Allow),
            model_version: txn.model_version.clone(),
            latency_us,
            duplicate,
        }
    }
}
