//! The names a rule can use, read on demand from the transaction being decided (no map of
//! variables is built per transaction).

use super::Lists;
use crate::domain::fields::{FieldValue, Kind, Schema};
use crate::domain::{Action, Transaction};
use crate::features::{FEATURE_NAMES, N_FEATURES, feature_index};
use crate::scoring::Score;
use cel::common::types::{CelDouble, CelInt, CelNull, CelString};
use cel::common::value::CowVal;
use std::collections::HashMap;
use std::sync::OnceLock;

/// What rules see of one transaction.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    pub txn: &'a Transaction,
    /// The card token (hex), as lists hold cards.
    pub card: &'a str,
    pub features: &'a [f32],
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

/// How a feature name reads its schema value.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// As the schema has it.
    Schema,
    /// ln(1 + n) back to the integer n.
    Count,
    /// ln(1 + x) back to x.
    Amount,
    /// ln(r) back to r.
    Ratio,
}

/// Features in natural units (the schema's are logarithms): `(name, schema feature, unit)`.
const NATURAL: [(&str, &str, Unit); 20] = [
    ("card_txn_count_1h", "log_count_1h", Unit::Count),
    ("card_txn_count_24h", "log_count_24h", Unit::Count),
    ("card_txn_count_7d", "log_count_7d", Unit::Count),
    ("card_txn_count_30d", "log_count_30d", Unit::Count),
    ("card_amount_sum_1h", "log_sum_1h", Unit::Amount),
    ("card_amount_sum_24h", "log_sum_24h", Unit::Amount),
    ("secs_since_prev", "log_secs_since_prev", Unit::Amount),
    ("amount_ratio_30d", "log_amount_ratio_30d", Unit::Ratio),
    ("merchant_txn_count_1d", "merchant_log_count_1d", Unit::Count),
    ("merchant_txn_count_7d", "merchant_log_count_7d", Unit::Count),
    ("merchant_txn_count_30d", "merchant_log_count_30d", Unit::Count),
    ("merchant_txn_count_1h", "merchant_log_count_1h", Unit::Count),
    ("merchant_txn_count_24h", "merchant_log_count_24h", Unit::Count),
    ("merchant_cards_1h", "merchant_log_cards_1h", Unit::Count),
    ("merchant_cards_24h", "merchant_log_cards_24h", Unit::Count),
    ("bin_txn_count_1h", "bin_log_count_1h", Unit::Count),
    ("bin_txn_count_24h", "bin_log_count_24h", Unit::Count),
    ("bin_cards_1h", "bin_log_cards_1h", Unit::Count),
    ("bin_cards_24h", "bin_log_cards_24h", Unit::Count),
    ("bin_new_cards_1h", "bin_log_new_cards_1h", Unit::Count),
];

#[derive(Debug, Clone, Copy)]
pub(super) struct FeatureVar {
    index: usize,
    unit: Unit,
}

/// Every feature a rule can name (schema names and natural-unit ones), looked up once per
/// reference instead of scanning the schema.
fn features_by_name() -> &'static HashMap<&'static str, FeatureVar> {
    static MAP: OnceLock<HashMap<&'static str, FeatureVar>> = OnceLock::new();
    MAP.get_or_init(|| {
        let schema =
            FEATURE_NAMES.iter().enumerate().map(|(index, name)| (*name, FeatureVar { index, unit: Unit::Schema }));
        let natural = NATURAL.iter().filter_map(|&(name, feature, unit)| {
            feature_index(feature).map(|index| (name, FeatureVar { index, unit }))
        });
        schema.chain(natural).collect()
    })
}

/// Every variable name a rule may use besides lists: transaction fields and scores, the
/// feature schema's names, and the natural-unit features.
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    FIELDS.into_iter().chain(FEATURE_NAMES).chain(NATURAL.iter().map(|n| n.0))
}

/// A name a team's schema adds: a field's value, or one of its features.
#[derive(Debug, Clone, Copy)]
pub(super) enum DeclaredVar {
    /// The value of the schema's field at this position (`null` when missing).
    Field(usize),
    Feature(FeatureVar),
}

/// The declared fields' names for rules: each field by its name, each feature it adds by the
/// feature's name, and counts and distances in natural units (`device_id_cards_24h`,
/// `device_id_txn_count_1h`, `location_km_from_usual`, …).
pub(super) fn declared_vars(schema: &Schema) -> HashMap<String, DeclaredVar> {
    let names = crate::features::declared::feature_names(schema);
    let mut vars: HashMap<String, DeclaredVar> = HashMap::new();
    for (i, f) in schema.fields().iter().enumerate() {
        vars.insert(f.name.clone(), DeclaredVar::Field(i));
    }
    for (k, name) in names.iter().enumerate() {
        let index = N_FEATURES + k;
        if !vars.contains_key(name) {
            vars.insert(name.clone(), DeclaredVar::Feature(FeatureVar { index, unit: Unit::Schema }));
        }
        let natural = [
            ("_log_count_", "_txn_count_", Unit::Count),
            ("_log_sum_", "_amount_sum_", Unit::Amount),
            ("_log_cards_", "_cards_", Unit::Count),
            ("_log_known_frauds", "_known_frauds", Unit::Count),
            ("_log_km_from_usual", "_km_from_usual", Unit::Amount),
            ("_log_kmh_since_prev", "_kmh_since_prev", Unit::Amount),
        ];
        for (from, to, unit) in natural {
            if let Some(field) = schema.fields().iter().find(|f| name.starts_with(&format!("{}{from}", f.name))) {
                let alias = format!("{}{to}{}", field.name, &name[field.name.len() + from.len()..]);
                vars.entry(alias).or_insert(DeclaredVar::Feature(FeatureVar { index, unit }));
            }
        }
    }
    vars
}

pub(super) struct Resolver<'a> {
    pub input: &'a RuleInput<'a>,
    pub lists: &'a Lists,
    pub declared: &'a [String],
    pub fields: &'a HashMap<String, DeclaredVar>,
}

/// A feature's value in the unit a rule reads it in; `null` when missing.
fn feature_value<'b>(features: &[f32], feature: FeatureVar) -> Option<CowVal<'b, 'b>> {
    let value = f64::from(*features.get(feature.index)?);
    if value.is_nan() {
        return Some(CowVal::owned(CelNull));
    }
    let double = |x: f64| Some(CowVal::owned(CelDouble::from(x)));
    match feature.unit {
        Unit::Schema => double(value),
        Unit::Count => Some(CowVal::owned(CelInt::from(value.exp_m1().round() as i64))),
        Unit::Amount => double(value.exp_m1()),
        Unit::Ratio => double(value.exp()),
    }
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
                if let Some(&feature) = features_by_name().get(name) {
                    // A missing feature (no issuer range for a customer id) is null, as
                    // `fraud_probability` without a supervised model.
                    return feature_value(features, feature);
                }
                match self.fields.get(name) {
                    Some(DeclaredVar::Feature(feature)) => return feature_value(features, *feature),
                    Some(&DeclaredVar::Field(i)) => {
                        return Some(match txn.fields.get(i) {
                            Some(FieldValue::Number(x)) => CowVal::owned(CelDouble::from(*x)),
                            Some(FieldValue::Flag(b)) => CowVal::owned(cel::common::types::CelBool::from(*b)),
                            Some(FieldValue::Text(t)) => CowVal::owned(CelString::from(&**t)),
                            _ => CowVal::owned(CelNull),
                        });
                    }
                    None => {}
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
    features: Vec<f32>,
    score: Score,
}

impl Sample {
    /// A sample carrying `schema`'s fields: a value of the field's kind each.
    pub(super) fn new(schema: &Schema) -> Self {
        Self {
            txn: Transaction {
                txn_id: "sample".into(),
                timestamp: 1_735_689_600,
                card: crate::domain::CardToken::from_u128(0),
                amount: 42.0,
                country: crate::domain::Country::UNKNOWN,
                merchant: "M0001".into(),
                merchant_category: Some("grocery".into()),
                bin: None,
                fields: schema
                    .fields()
                    .iter()
                    .map(|f| match f.kind {
                        Kind::Number => FieldValue::Number(1.0),
                        Kind::Flag => FieldValue::Flag(false),
                        Kind::Category | Kind::Entity => FieldValue::Text("sample".into()),
                        Kind::Location => FieldValue::Location { lat: 0.0, lon: 0.0 },
                    })
                    .collect(),
            },
            features: vec![0.5; N_FEATURES + crate::features::declared::feature_names(schema).len()],
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
