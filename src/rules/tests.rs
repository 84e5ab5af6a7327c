use super::*;
use crate::domain::{CardToken, Country, Transaction};
use crate::features::N_FEATURES;
use crate::scoring::Score;

fn txn(amount: f64, country: &str, merchant: &str) -> Transaction {
    Transaction {
        txn_id: "t1".into(),
        timestamp: 1_735_689_600 + 3 * 3600,
        card: CardToken::from_u128(7),
        amount,
        country: Country::parse(country).unwrap(),
        merchant: merchant.into(),
        merchant_category: None,
        bin: None,
        fields: Default::default(),
    }
}

fn matches(set: &RuleSet, lists: &Lists, t: &Transaction, features: &[f32]) -> Vec<String> {
    let score = Score { combined: 0.2, if_score: 0.5, ae_mse: 0.3, fraud_probability: None };
    let card = t.card.to_string();
    let input = RuleInput { txn: t, card: &card, features, score: &score, model_action: Action::Allow };
    let mut out = Vec::new();
    set.evaluate(&input, lists, &mut out);
    out.into_iter().map(|m| m.name).collect()
}

const RULES: &str = r#"
lists = ["vip_merchants"]

[[rule]]
name = "big-foreign-burst"
when = 'amount > 1000.0 && country != "GB" && card_txn_count_1h > 3'
action = "block"
reason = "burst of large foreign purchases"

[[rule]]
name = "blocked-merchant"
when = "merchant in blocked_merchants"
action = "review"
reason = "merchant on the blocked list"

[[rule]]
name = "vip"
when = "merchant in vip_merchants"
action = "allow"
reason = "trusted merchant"

[[rule]]
name = "night"
when = "hour == 3 && fraud_probability > 0.5"
action = "review"
reason = "night and likely fraud"
"#;

fn lists() -> Lists {
    Lists::new(1, [("blocked_merchants".to_owned(), vec!["M666".to_owned()])].into())
}

#[test]
fn rules_match_on_fields_natural_features_and_lists() {
    let set = RuleSet::parse(RULES, &lists(), &Default::default()).unwrap();
    assert_eq!(set.len(), 4);
    let mut features = [0.0; N_FEATURES];
    // Four earlier transactions in the hour: the schema keeps ln(1 + 4).
    features[crate::features::feature_index("log_count_1h").unwrap()] = 4f32.ln_1p();
    let lists = lists();
    assert_eq!(matches(&set, &lists, &txn(1500.0, "FR", "M1"), &features), ["big-foreign-burst"]);
    assert!(matches(&set, &lists, &txn(1500.0, "GB", "M1"), &features).is_empty());
    assert!(matches(&set, &lists, &txn(1500.0, "FR", "M1"), &[0.0; N_FEATURES]).is_empty());
    assert_eq!(matches(&set, &lists, &txn(10.0, "GB", "M666"), &features), ["blocked-merchant"]);
    // A declared list the store does not have yet is empty, not an error (`night` errors on
    // the null probability: see the next test).
    assert!(set.errors().filter(|(name, _)| *name != "night").all(|(_, n)| n == 0));
}

#[test]
fn a_run_time_error_is_counted_never_a_match() {
    let set = RuleSet::parse(RULES, &lists(), &Default::default()).unwrap();
    // `fraud_probability` is null without a supervised model: `null > 0.5` errors.
    assert!(matches(&set, &lists(), &txn(10.0, "GB", "M1"), &[0.0; N_FEATURES]).is_empty());
    let errors: Vec<_> = set.errors().collect();
    assert_eq!(errors[3], ("night", 1));
    assert_eq!(errors[0], ("big-foreign-burst", 0));
}

#[test]
fn decision_is_the_most_severe_unless_an_allow_rule_matches() {
    let m = |action| Match { name: "r".into(), action, reason: "x".into() };
    assert_eq!(decide(Action::Allow, &[]), Action::Allow);
    assert_eq!(decide(Action::Review, &[]), Action::Review);
    assert_eq!(decide(Action::Allow, &[m(Action::Review)]), Action::Review);
    assert_eq!(decide(Action::Review, &[m(Action::Block), m(Action::Review)]), Action::Block);
    assert_eq!(decide(Action::Block, &[m(Action::Review)]), Action::Block);
    assert_eq!(decide(Action::Block, &[m(Action::Block), m(Action::Allow)]), Action::Allow);
}

#[test]
fn load_errors_name_the_rule_and_its_position() {
    let err = |text: &str| format!("{:#}", RuleSet::parse(text, &Lists::default(), &Default::default()).unwrap_err());
    let rule = |when: &str| {
        format!(
            "[[rule]]\nname = \"ok\"\nwhen = \"true\"\naction = \"block\"\nreason = \"r\"\n\n[[rule]]\nname = \"bad\"\nwhen = '{when}'\naction = \"review\"\nreason = \"r\"\n"
        )
    };
    let e = err(&rule("amount >> 5"));
    assert!(e.contains("rule 2 (`bad`)") && e.contains("does not parse"), "{e}");
    let e = err(&rule("amout > 5.0"));
    assert!(e.contains("rule 2 (`bad`)") && e.contains("unknown name `amout`"), "{e}");
    let e = err(&rule("amount + 1.0"));
    assert!(e.contains("rule 2 (`bad`)") && e.contains("not true or false"), "{e}");
    let e = err(&rule("merchant in nowhere"));
    assert!(e.contains("unknown name `nowhere`"), "{e}");
    let e = err("[[rule]]\nname = \"x\"\nwhen = \"true\"\naction = \"deny\"\nreason = \"r\"\n");
    assert!(e.contains("deny"), "{e}");
    let e = err("[[rule]]\nname = \"x\"\nwhen = \"true\"\naction = \"block\"\nreason = \"r\"\nresaon = \"typo\"\n");
    assert!(e.contains("resaon"), "{e}");
    let two = "[[rule]]\nname = \"x\"\nwhen = \"true\"\naction = \"block\"\nreason = \"r\"\n";
    assert!(err(&format!("{two}{two}")).contains("same name"));
}

#[test]
fn the_issuer_range_features_read_in_natural_units_and_as_null_when_missing() {
    let text = r#"
[[rule]]
name = "bin-attack"
when = "bin_new_cards_1h >= 20 && merchant_cards_1h > 10"
action = "block"
reason = "many new cards of one range"

[[rule]]
name = "no-bin"
when = "bin_new_cards_1h == null"
action = "review"
reason = "not a card number"
"#;
    let set = RuleSet::parse(text, &Lists::default(), &Default::default()).unwrap();
    let at = |n: &str| crate::features::feature_index(n).unwrap();
    let mut features = [0.0; N_FEATURES];
    features[at("bin_log_new_cards_1h")] = 25f32.ln_1p();
    features[at("merchant_log_cards_1h")] = 30f32.ln_1p();
    let lists = Lists::default();
    assert_eq!(matches(&set, &lists, &txn(10.0, "FR", "M1"), &features), ["bin-attack"]);
    // A customer id: the range's features are missing (NaN), which rules read as null.
    features[at("bin_log_new_cards_1h")] = f32::NAN;
    assert_eq!(matches(&set, &lists, &txn(10.0, "FR", "M1"), &features), ["no-bin"]);
    // Comparing null with a number is a run-time error, counted, never a match (as for
    // `fraud_probability`): a rule that must cope writes `bin_new_cards_1h != null && …`.
    assert_eq!(set.errors().collect::<Vec<_>>(), [("bin-attack", 1), ("no-bin", 0)]);
}

#[test]
fn rules_name_the_declared_fields_and_their_features() {
    use crate::domain::fields::{Field, FieldValue, Kind, Schema};
    let field = |name: &str, kind| Field {
        name: name.into(),
        kind,
        column: None,
        columns: None,
        required: false,
        pii: false,
        min: None,
        max: None,
    };
    let schema = Schema::new(vec![field("channel", Kind::Category), field("device_id", Kind::Entity)]).unwrap();
    let text = r#"
        [[rule]]
        name = "shared-device"
        when = "channel == 'ecom' && device_id_cards_24h >= 5 && device_id != 'known-good'"
        action = "review"
        reason = "a device many cards use"
    "#;
    // Without the schema the names are unknown: refused at load time, naming one.
    let err = format!("{:#}", RuleSet::parse(text, &Lists::default(), &Schema::default()).unwrap_err());
    assert!(err.contains("unknown name `channel`") || err.contains("unknown name `device_id"), "{err}");
    let set = RuleSet::parse(text, &Lists::default(), &schema).unwrap();
    let names = crate::features::declared::feature_names(&schema);
    let mut features = vec![0.0; N_FEATURES + names.len()];
    let cards = N_FEATURES + names.iter().position(|n| n == "device_id_log_cards_24h").unwrap();
    let mut t = txn(10.0, "FR", "M1");
    t.fields = vec![FieldValue::Text("ecom".into()), FieldValue::Text("d-9".into())].into();
    features[cards] = 6f32.ln_1p();
    assert_eq!(matches(&set, &Lists::default(), &t, &features), ["shared-device"]);
    features[cards] = 2f32.ln_1p();
    assert!(matches(&set, &Lists::default(), &t, &features).is_empty());
    // A missing value is null: the comparison fails, the rule does not match (and is counted).
    features[cards] = 6f32.ln_1p();
    t.fields = vec![FieldValue::Missing, FieldValue::Text("d-9".into())].into();
    assert!(matches(&set, &Lists::default(), &t, &features).is_empty());
}
