//! The names a rule can use, read on demand from the transaction being decided (no map of
//! variables is built per transaction).

use super::Lists;
use crate::domain::{Action, Transaction};
use crate::features::{FEATURE_NAMES, N_FEATURES, feature_index};
use crate::scoring::Score;
use cel::common::types::{CelDouble, CelInt, CelNull, CelString};
use cel::common::value::CowVal;

/// What rules see of one transaction.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub txn: &'a Transaction,
    /// The card token (hex), as lists hold cards.
    pub card: &'a str,
    pub features: &'a [f32; N_FEATURES],
    pub score: &'a Score,
    /// The models' action, before rules.
    pub model_action: Action,
}

/// Transaction fields and scores.
const FIELDS: [&str; 13] = [
    "txn_id",
    "amount",
    "country",
    "merchant",
    "merchant_category",
    "card",
    "timestamp",
    "hour",
    "score",
    "if_score",
    "ae_mse",
    "fraud_probability",
    "model_action",
];

/// Features in natural units (the schema's are logarithms): `(name, schema feature, integer)`.
const NATURAL: [(&str, &str, bool); 11] = [
    ("card_txn_count_1h", "log_count_1h", true),
    ("card_txn_count_24h", "log_count_24h", true),
    ("card_txn_count_7d", "log_count_7d", true),
    ("card_txn_count_30d", "log_count_30d", true),
    ("card_amount_sum_1h", "log_sum_1h", false),
    ("card_amount_sum_24h", "log_sum_24h", false),
    ("secs_since_prev", "log_secs_since_prev", false),
    ("amount_ratio_30d", "log_amount_ratio_30d", false),
    ("merchant_txn_count_1d", "merchant_log_count_1d", true),
    ("merchant_txn_count_7d", "merchant_log_count_7d", true),
    ("merchant_txn_count_30d", "merchant_log_count_30d", true),
];

/// Every variable name a rule may use besides lists: transaction fields and scores, the
/// feature schema's names, and the natural-unit features.
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    FIELDS.into_iter().chain(FEATURE_NAMES).chain(NATURAL.iter().map(|n| n.0))
}

pub(super) struct Resolver<'a> {
    pub input: &'a RuleInput<'a>,
    pub lists: &'a Lists,
    pub declared: &'a [String],
}

impl cel::context::VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let RuleInput { txn, card, features, score, model_action } = *self.input;
        let double = |x: f64| Some(CowVal::owned(CelDouble::from(x)));
        let string = |s: &'b str| Some(CowVal::owned(CelString::from(s)));
        match name {
            "txn_id" => string(&txn.txn_id),
            "amount" => double(txn.amount),
            "country" => string(txn.country.as_str()),
            "merchant" => string(&txn.merchant),
            "merchant_category" => string(txn.merchant_category.as_deref().unwrap_or("")),
            "card" => string(card),
            "timestamp" => Some(CowVal::owned(CelInt::from(txn.timestamp))),
            "hour" => Some(CowVal::owned(CelInt::from(txn.timestamp.rem_euclid(86_400) / 3_600))),
            "score" => double(f64::from(score.combined)),
            "if_score" => double(f64::from(score.if_score)),
            "ae_mse" => double(f64::from(score.ae_mse)),
            "fraud_probability" => match score.fraud_probability {
                Some(p) => double(f64::from(p)),
                None => Some(CowVal::owned(CelNull)),
            },
            "model_action" => string(model_action.as_str()),
            _ => {
                if let Some(i) = feature_index(name) {
                    return double(f64::from(features[i]));
                }
                if let Some(&(_, feature, integer)) = NATURAL.iter().find(|n| n.0 == name) {
                    let natural = f64::from(features[feature_index(feature)?]).exp_m1();
                    return if integer {
                        Some(CowVal::owned(CelInt::from(natural.round() as i64)))
                    } else if feature == "log_amount_ratio_30d" {
                        double(natural + 1.0)
                    } else {
                        double(natural)
                    };
                }
                match self.lists.get(name) {
                    Some(list) => Some(CowVal::Borrowed(list)),
                    None if self.declared.iter().any(|d| d == name) => Some(CowVal::Borrowed(self.lists.empty())),
                    None => None,
                }
            }
        }
    }
}

/// A plausible transaction for checking rules at load time.
pub(super) struct Sample {
    txn: Transaction,
    features: [f32; N_FEATURES],
    score: Score,
}

impl Sample {
    pub(super) fn new() -> Self {
        Self {
            txn: Transaction {
                txn_id: "sample".into(),
                timestamp: 1_735_689_600,
                card: crate::domain::CardToken::from_u128(0),
                amount: 42.0,
                country: crate::domain::Country::UNKNOWN,
                merchant: "M0001".into(),
                merchant_category: Some("grocery".into()),
            },
            features: [0.5; N_FEATURES],
            score: Score { combined: 0.1, if_score: 0.4, ae_mse: 0.5, fraud_probability: Some(0.01) },
        }
    }

    pub(super) fn input(&self) -> RuleInput<'_> {
        RuleInput {
            txn: &self.txn,
            card: "00000000000000000000000000000000",
            features: &self.features,
            score: &self.score,
            model_action: Action::Allow,
        }
    }
}
