use super::*;
use crate::domain::fields::{Field, Schema};
use crate::domain::{CardKey, Country};
use crate::features::{CategoryEncoder, Encoders, FeatureConfig, FeaturePipeline, N_FEATURES};
use proptest::prelude::*;

fn field(name: &str, kind: Kind) -> Field {
    Field { name: name.into(), kind, column: None, columns: None, required: false, pii: false, min: None, max: None }
}

fn pipeline(fields: Vec<Field>) -> FeaturePipeline {
    let encoders =
        Encoders { country: CategoryEncoder::fit([("FR", None)]), category: CategoryEncoder::fit([("", None)]) };
    let config = FeatureConfig { fields: Schema::new(fields).unwrap(), ..Default::default() };
    FeaturePipeline::new(encoders, config)
}

fn txn(card: u32, ts: i64, fields: Vec<FieldValue>) -> Transaction {
    Transaction {
        txn_id: format!("t{ts}"),
        timestamp: ts,
        card: CardKey::new(b"k").token(&card.to_string()),
        amount: 10.0,
        country: Country::parse("FR").unwrap(),
        merchant: "M".into(),
        merchant_category: None,
        bin: None,
        fields: fields.into(),
    }
}

/// The declared features of one transaction, by suffix.
fn read(p: &mut FeaturePipeline, t: &Transaction) -> Vec<f32> {
    let mut out = vec![0.0; p.width()];
    p.observe(t, &mut out);
    out[N_FEATURES..].to_vec()
}

fn at(kind: Kind, suffix: &str) -> usize {
    suffixes(kind).iter().position(|s| *s == suffix).unwrap()
}

proptest! {
    /// Entity features against brute force over the raw events: first use by the card, the
    /// card's distinct values over 7 and 30 days, the value's distinct cards over 24 h and its
    /// transactions over 7 and 30 days (days are exact buckets).
    #[test]
    fn entity_features_match_brute_force(events in proptest::collection::vec((0u32..4, 0u32..6, 0i64..3 * DAY), 1..120)) {
        let mut p = pipeline(vec![field("device", Kind::Entity)]);
        let mut ts = 20_000 * DAY;
        let mut seen: Vec<(u32, u32, i64)> = Vec::new();
        for (card, device, gap) in events {
            ts += gap;
            let t = txn(card, ts, vec![FieldValue::Text(format!("d-{device}").into())]);
            let got = read(&mut p, &t);
            let new = !seen.iter().any(|&(c, d, _)| c == card && d == device);
            seen.push((card, device, ts));
            let distinct = |days: i64| {
                let mut v: Vec<u32> = seen.iter().filter(|&&(c, _, at)| c == card && at > ts - days * DAY).map(|e| e.1).collect();
                v.sort_unstable();
                v.dedup();
                v.len() as f32
            };
            let mut cards: Vec<u32> = seen.iter().filter(|&&(_, d, at)| d == device && at > ts - DAY).map(|e| e.0).collect();
            cards.sort_unstable();
            cards.dedup();
            let today = ts.div_euclid(DAY);
            let count = |days: i64| seen.iter().filter(|&&(_, d, at)| d == device && at.div_euclid(DAY) > today - days).count() as f32;
            let k = |s| at(Kind::Entity, s);
            prop_assert_eq!(got[k("_new_for_card")], f32::from(new));
            prop_assert_eq!(got[k("_card_distinct_7d")], distinct(7));
            prop_assert_eq!(got[k("_card_distinct_30d")], distinct(30));
            prop_assert_eq!(got[k("_log_cards_24h")], (cards.len() as f32).ln_1p());
            prop_assert!((got[k("_log_count_7d")] - count(7).ln_1p()).abs() < 1e-5);
            prop_assert!((got[k("_log_count_30d")] - count(30).ln_1p()).abs() < 1e-5);
        }
    }
}

#[test]
fn missing_values_are_missing_not_zero() {
    let mut p = pipeline(vec![
        field("device", Kind::Entity),
        field("channel", Kind::Category),
        field("score", Kind::Number),
        field("tor", Kind::Flag),
        field("place", Kind::Location),
    ]);
    let got = read(&mut p, &txn(1, 20_000 * DAY, vec![FieldValue::Missing; 5]));
    assert_eq!(got.len(), 13 + 2 + 1 + 1 + 2);
    assert!(got.iter().all(|v| v.is_nan()), "{got:?}");
    // A transaction without values at all (no schema fields sent) reads the same.
    let got = read(&mut p, &txn(1, 20_000 * DAY + 60, vec![]));
    assert!(got.iter().all(|v| v.is_nan()), "{got:?}");
    let got = read(
        &mut p,
        &txn(
            1,
            20_000 * DAY + 120,
            vec![
                FieldValue::Text("d".into()),
                FieldValue::Text("ecom".into()),
                FieldValue::Number(3.5),
                FieldValue::Flag(true),
                FieldValue::Location { lat: 48.85, lon: 2.35 },
            ],
        ),
    );
    assert_eq!(&got[15..17], &[3.5, 1.0]);
    assert!(got[17].is_nan(), "no earlier place: distance is missing");
}

#[test]
fn a_known_fraud_marks_the_device_for_the_other_cards() {
    let mut p = pipeline(vec![field("device", Kind::Entity)]);
    let d = || vec![FieldValue::Text("bot".into())];
    let t0 = 20_000 * DAY;
    let first = txn(1, t0, d());
    read(&mut p, &first);
    let k = at(Kind::Entity, "_log_known_frauds");
    assert_eq!(read(&mut p, &txn(2, t0 + 60, d()))[k], 0.0);
    p.observe_label(&first, t0 + 120, true);
    assert_eq!(read(&mut p, &txn(3, t0 + 180, d()))[k], 1f32.ln_1p());
    assert_eq!(read(&mut p, &txn(4, t0 + 240, vec![FieldValue::Text("other".into())]))[k], 0.0);
    p.retract_label(&first);
    assert_eq!(read(&mut p, &txn(5, t0 + 300, d()))[k], 0.0);
}

#[test]
fn impossible_travel_and_distance_from_the_usual_place() {
    let mut p = pipeline(vec![field("place", Kind::Location)]);
    let paris = || vec![FieldValue::Location { lat: 48.8566, lon: 2.3522 }];
    let t0 = 20_000 * DAY;
    for i in 0..5 {
        read(&mut p, &txn(1, t0 + i * DAY, paris()));
    }
    // New York an hour after Paris: ~5,840 km, ~5,840 km/h.
    let got = read(&mut p, &txn(1, t0 + 4 * DAY + 3600, vec![FieldValue::Location { lat: 40.7128, lon: -74.006 }]));
    let (km, kmh) = (got[0].exp_m1(), got[1].exp_m1());
    assert!((5_800.0..5_900.0).contains(&km), "{km}");
    assert!((5_800.0..5_900.0).contains(&kmh), "{kmh}");
    let home = read(&mut p, &txn(1, t0 + 10 * DAY, paris()));
    assert!(home[0].exp_m1() < 2_000.0 && home[1].exp_m1() < 100.0, "{home:?}");
}

#[test]
fn idle_daily_counts_are_dropped_and_bytes_stay_bounded() {
    let mut p = pipeline(vec![field("ip", Kind::Entity)]);
    let t0 = 20_000 * DAY;
    for i in 0..1000u32 {
        read(
            &mut p,
            &txn(i, t0 + i64::from(i), vec![FieldValue::Text(format!("10.0.{}.{}", i / 256, i % 256).into())]),
        );
    }
    assert_eq!(p.declared().held(), [(1000, 1000)]);
    // Two days later the short windows are gone; past the daily counts' reach, those too.
    read(&mut p, &txn(0, t0 + 2 * DAY, vec![FieldValue::Text("10.9.9.9".into())]));
    assert_eq!(p.declared().held()[0].0, 1);
    read(&mut p, &txn(0, t0 + (risk::DAYS as i64 + 2) * DAY, vec![FieldValue::Text("10.9.9.9".into())]));
    assert_eq!(p.declared().held(), [(1, 1)]);
    assert!(Declared::idle_bytes_per_value() <= 300, "{}", Declared::idle_bytes_per_value());
}

#[test]
fn a_checkpoint_carries_the_cards_declared_memory_to_the_next_owner() {
    let fields = || vec![field("device_id", Kind::Entity), field("place", Kind::Location)];
    let mut old = pipeline(fields());
    let t0 = 20_000 * DAY;
    let device = |d: &str| FieldValue::Text(d.into());
    let paris = FieldValue::Location { lat: 48.85, lon: 2.35 };
    read(&mut old, &txn(1, t0, vec![device("d-1"), paris.clone()]));
    let card = txn(1, t0, vec![]).card;
    let mut bytes = Vec::new();
    old.export_cards([&card], &mut bytes);
    // The next owner of the partition: the card's device is not new to it, and its place is known.
    let mut new = pipeline(fields());
    assert_eq!(new.import_cards(&bytes, 0).unwrap(), [card]);
    let got = read(&mut new, &txn(1, t0 + 60, vec![device("d-1"), paris.clone()]));
    assert_eq!(got[at(Kind::Entity, "_new_for_card")], 0.0);
    assert!(got[13].is_finite() && got[13] < 0.1, "distance from the usual place: {got:?}");
    // A process with another schema ignores the memory it cannot read: the card starts afresh.
    let mut other = pipeline(vec![field("ip", Kind::Entity)]);
    other.import_cards(&bytes, 0).unwrap();
    let got = read(&mut other, &txn(1, t0 + 60, vec![device("10.0.0.1")]));
    assert_eq!(got[at(Kind::Entity, "_new_for_card")], 1.0);
}
