//! Feature windows and card state against a brute-force recomputation from the full history.

use super::*;
use crate::domain::{CardKey, Country};
use crate::ingest::LabelledTransaction;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Event {
    ts: i64,
    amount: f32,
    country: usize,
    merchant: usize,
}

const COUNTRIES: [&str; 6] = ["US", "GB", "FR", "DE", "JP", "BR"];

/// Up to 6 countries and 32 merchants: the ranges where the bounded state is exact.
fn events() -> impl Strategy<Value = Vec<Event>> {
    let gap = prop_oneof![0i64..120, 0i64..7_200, 0i64..200_000, 0i64..4_000_000];
    proptest::collection::vec((gap, 1u32..100_000, 0usize..6, 0usize..32), 1..120).prop_map(|raw| {
        let mut ts = 1_700_000_000i64;
        raw.into_iter()
            .map(|(g, cents, country, merchant)| {
                ts += g;
                Event { ts, amount: cents as f32 / 100.0, country, merchant }
            })
            .collect()
    })
}

fn country(i: usize) -> Country {
    Country::parse(COUNTRIES[i]).unwrap()
}

/// (count, sum) of events up to and including `i` whose bucket is among the `span` ending at i's.
fn brute_window(ev: &[Event], i: usize, width: i64, span: i64) -> (u32, f64) {
    let now = ev[i].ts.div_euclid(width);
    ev[..=i]
        .iter()
        .filter(|e| (now - span + 1..=now).contains(&e.ts.div_euclid(width)))
        .fold((0, 0.0), |(c, s), e| (c + 1, s + f64::from(e.amount)))
}

proptest! {
    #[test]
    fn card_state_agrees_with_brute_force(ev in events()) {
        let mut state = CardState::default();
        for i in 0..ev.len() {
            let e = &ev[i];
            let got = state.observe(e.ts, e.amount, country(e.country), e.merchant as u32 * 7919);
            let specs = [(300, 12), (3600, 24), (86_400, 7), (86_400, 30)];
            for (k, (width, span)) in specs.into_iter().enumerate() {
                let (c, s) = brute_window(&ev, i, width, span);
                prop_assert_eq!(got.windows[k].0, c, "window {} count at event {}", k, i);
                prop_assert!((f64::from(got.windows[k].1) - s).abs() <= 1e-3 * s.max(1.0));
            }
            let prev = &ev[..i];
            prop_assert_eq!(got.secs_since_prev, i.checked_sub(1).map(|p| e.ts - ev[p].ts));

            let day = e.ts.div_euclid(86_400);
            let recent: Vec<f64> = prev.iter()
                .filter(|p| p.ts.div_euclid(86_400) > day - 30)
                .map(|p| f64::from(p.amount)).collect();
            match got.prev_mean_30d {
                None => prop_assert!(recent.is_empty()),
                Some(m) => {
                    let want = recent.iter().sum::<f64>() / recent.len() as f64;
                    prop_assert!((f64::from(m) - want).abs() <= 1e-3 * want.max(1.0));
                }
            }

            let mut counts = [0u32; 6];
            for p in prev { counts[p.country] += 1; }
            let home = (0..6).filter(|&c| counts[c] > 0)
                .max_by_key(|&c| (counts[c], std::cmp::Reverse(country(c))))
                .map(country);
            prop_assert_eq!(got.home_country, home);

            prop_assert_eq!(got.new_merchant, !prev.iter().any(|p| p.merchant == e.merchant));
            prop_assert_eq!(got.new_country, !prev.is_empty() && !prev.iter().any(|p| p.country == e.country));

            let mut seen = [false; 6];
            for p in ev[..=i].iter().filter(|p| p.ts > e.ts - 86_400) { seen[p.country] = true; }
            prop_assert_eq!(got.distinct_countries_24h, seen.iter().filter(|&&s| s).count() as u32);
        }
    }
}

fn encoders() -> Encoders {
    Encoders {
        country: CategoryEncoder::fit(vec![("US", Some(false)); 10]),
        category: CategoryEncoder::fit(vec![("grocery", Some(false)); 10]),
    }
}

fn txn(key: &CardKey, card: &str, ts: i64, amount: f64, country: &str, merchant: &str) -> Transaction {
    Transaction {
        txn_id: format!("{card}-{ts}"),
        timestamp: ts,
        card: key.token(card),
        amount,
        country: Country::parse(country).unwrap(),
        merchant: merchant.into(),
        merchant_category: Some("grocery".into()),
        bin: crate::domain::bin_of(&crate::domain::mask_pan(card)),
        fields: Default::default(),
    }
}

#[test]
fn pipeline_features_have_the_documented_meaning() {
    let key = CardKey::new(b"test");
    let mut p = FeaturePipeline::new(encoders(), FeatureConfig::default());
    let mut f = [0f32; N_FEATURES];
    // 2023-11-14 (a Tuesday) 22:13:20 UTC.
    let t0 = 1_700_000_000;
    for k in 0..5 {
        p.observe(&txn(&key, "4111111111111111", t0 + k * 60, 20.0, "US", "m1"), &mut f);
    }
    let i = |name| feature_index(name).unwrap();
    assert_eq!(f[i("log_count_1h")], 5f32.ln_1p());
    assert_eq!(f[i("foreign_country")], 0.0);
    assert_eq!(f[i("new_merchant")], 0.0);
    assert_eq!(f[i("is_weekend")], 0.0);
    assert!((f[i("log_secs_since_prev")] - 60f32.ln_1p()).abs() < 1e-6);

    // A large purchase abroad at a new merchant, 10 minutes later.
    p.observe(&txn(&key, "4111111111111111", t0 + 600, 200.0, "FR", "m2"), &mut f);
    assert_eq!(f[i("foreign_country")], 1.0);
    assert_eq!(f[i("new_country")], 1.0);
    assert_eq!(f[i("new_merchant")], 1.0);
    assert_eq!(f[i("distinct_countries_24h")], 2.0);
    assert!((f[i("log_amount_ratio_30d")] - (201f32 / 21.0).ln()).abs() < 1e-5);
    // Unseen country and category fall into the "other" bucket instead of failing.
    assert_eq!(f[i("country_frequency")], 0.0);

    // A different card has its own, empty state.
    p.observe(&txn(&key, "5500005555555559", t0 + 700, 5.0, "US", "m1"), &mut f);
    assert_eq!(f[i("log_count_1h")], 1f32.ln_1p());
    assert_eq!(f[i("new_merchant")], 1.0);
    assert_eq!(f[i("log_amount_ratio_30d")], 0.0);
    assert_eq!(p.n_cards(), 2);
}

#[test]
fn calendar_features_use_utc() {
    let key = CardKey::new(b"test");
    let mut p = FeaturePipeline::new(encoders(), FeatureConfig::default());
    let mut f = [0f32; N_FEATURES];
    // 2024-06-01 03:00:00 UTC, a Saturday night.
    p.observe(&txn(&key, "4111111111111111", 1_717_210_800, 1.0, "US", "m"), &mut f);
    assert_eq!(f[feature_index("is_weekend").unwrap()], 1.0);
    assert_eq!(f[feature_index("is_night").unwrap()], 1.0);
    let angle = std::f32::consts::TAU * 3.0 / 24.0;
    assert!((f[feature_index("hour_sin").unwrap()] - angle.sin()).abs() < 1e-6);
}

#[test]
fn card_state_stays_under_one_kilobyte() {
    assert!(std::mem::size_of::<CardState>() <= 1024, "{}", std::mem::size_of::<CardState>());
}

/// A labelled row for replay tests.
fn labelled(
    key: &CardKey,
    id: &str,
    card: &str,
    ts: i64,
    merchant: &str,
    fraud: bool,
    label_time: Option<i64>,
) -> LabelledTransaction {
    let mut txn = txn(key, card, ts, 20.0, "US", merchant);
    txn.txn_id = id.into();
    LabelledTransaction { txn, label: Some(fraud), label_time, scenario: None, masked_card: String::new(), line: 0 }
}

#[test]
fn a_label_known_at_t_is_invisible_before_t_and_visible_after() {
    let key = CardKey::new(b"test");
    let day = 86_400;
    let t0 = 1_700_006_400 - 1_700_006_400 % day; // a midnight
    let known = t0 + 9 * day;
    let mut rows = vec![labelled(&key, "fraud", "4111111111111111", t0 + 3600, "m1", true, Some(known))];
    // Ten legitimate transactions at the same merchant on day 0 (other cards), labels at the default delay.
    for k in 0..10 {
        rows.push(labelled(&key, &format!("l{k}"), "5500005555555559", t0 + 7200 + k, "m1", false, None));
    }
    rows.push(labelled(&key, "before", "4111111111111111", known - 1, "m1", false, None));
    rows.push(labelled(&key, "at", "4111111111111111", known, "m1", false, None));
    rows.push(labelled(&key, "after", "4111111111111111", known + 1, "m1", false, None));
    let n = rows.len();
    let out = replay(&rows, n - 3..n, &encoders(), FeatureConfig::default(), 7 * day, |_| {}).features;
    let i = |name| feature_index(name).unwrap();
    let (before, at, after) = (out.row(0), out.row(1), out.row(2));
    // Day 0 is mature on day 8 (delay 7) already, but the label only becomes known on day 9.
    assert_eq!(before[i("merchant_risk_30d")], 0.0);
    assert_eq!(before[i("card_known_fraud")], 0.0);
    // Known at exactly t: transactions strictly after it see it ("known before").
    assert_eq!(at[i("merchant_risk_30d")], 0.0);
    assert_eq!(at[i("card_known_fraud")], 0.0);
    assert!(after[i("merchant_risk_30d")] > 0.05, "{}", after[i("merchant_risk_30d")]);
    assert_eq!(after[i("card_known_fraud")], 1.0);
    // Counts do not depend on labels: 11 transactions on day 0, then the two just before.
    assert_eq!(after[i("merchant_log_count_30d")], 13f32.ln_1p());
}

#[test]
fn labels_default_to_the_delay_and_never_precede_their_transaction() {
    let key = CardKey::new(b"test");
    let rows = vec![
        labelled(&key, "a", "4111111111111111", 1_000_000, "m", true, None),
        labelled(&key, "b", "4111111111111111", 2_000_000, "m", true, Some(1_500_000)),
        labelled(&key, "c", "4111111111111111", 3_000_000, "m", false, None),
    ];
    // Legitimate labels move no state and are not scheduled; a label time before its
    // transaction is moved up to it.
    assert_eq!(label_schedule(&rows, 600), vec![(1_000_600, 0), (2_000_000, 1)]);
}

proptest! {
    /// Merchant risk read through the whole pipeline equals a brute-force count over the rows
    /// and the labels known before each one.
    #[test]
    fn merchant_risk_matches_brute_force(
        raw in proptest::collection::vec((0i64..40_000, 0usize..3, any::<bool>(), 0i64..4 * 86_400), 1..150),
    ) {
        let key = CardKey::new(b"test");
        let delay = 86_400;
        let mut ts = 1_700_006_400;
        let rows: Vec<LabelledTransaction> = raw
            .iter()
            .enumerate()
            .map(|(k, &(gap, m, fraud, lag))| {
                ts += gap;
                labelled(&key, &k.to_string(), "4111111111111111", ts, ["a", "b", "c"][m], fraud, Some(ts + lag))
            })
            .collect();
        let out = replay(&rows, 0..rows.len(), &encoders(), FeatureConfig { label_delay_secs: delay, ..Default::default() }, delay, |_| {}).features;
        let day = |t: i64| t.div_euclid(86_400);
        for (i, r) in rows.iter().enumerate() {
            let today = day(r.txn.timestamp);
            let last_mature = today - 2; // delay of one day, plus the day in progress
            let earlier = rows[..i].iter().filter(|o| o.txn.merchant == r.txn.merchant);
            let (mut n, mut f) = (0u32, 0u32);
            for o in earlier.clone().filter(|o| (last_mature - 29..=last_mature).contains(&day(o.txn.timestamp))) {
                n += 1;
                f += u32::from(o.label == Some(true) && o.label_time.unwrap() < r.txn.timestamp);
            }
            // The smoothing prior: the share of known frauds over every merchant's mature days.
            let (mut gn, mut gf) = (0u32, 0u32);
            for o in rows[..i].iter().filter(|o| (last_mature - 29..=last_mature).contains(&day(o.txn.timestamp))) {
                gn += 1;
                gf += u32::from(o.label == Some(true) && o.label_time.unwrap() < r.txn.timestamp);
            }
            let prior = if gn == 0 { 0.0 } else { f64::from(gf) / f64::from(gn) };
            let want = ((f64::from(f) + 5.0 * prior) / (f64::from(n) + 5.0)) as f32;
            let got = out.row(i)[feature_index("merchant_risk_30d").unwrap()];
            prop_assert!((got - want).abs() < 1e-6, "row {}: {} vs {}", i, got, want);
            let count_7d = earlier.filter(|o| day(o.txn.timestamp) > today - 7).count();
            prop_assert_eq!(out.row(i)[feature_index("merchant_log_count_7d").unwrap()], (count_7d as f32).ln_1p());
        }
    }
}

#[test]
fn a_retracted_fraud_label_leaves_merchant_risk_as_if_it_never_came() {
    let key = CardKey::new(b"test");
    let day = 86_400;
    let t0 = 1_700_006_400 - 1_700_006_400 % day;
    let later = t0 + 10 * day;
    // The same history twice; in one, the first transaction is labelled fraud, then found legitimate.
    let risk_after = |labels: &[bool]| {
        let mut p = FeaturePipeline::new(encoders(), FeatureConfig::default());
        let mut out = [0.0; N_FEATURES];
        let first = txn(&key, "4111111111111111", t0 + 3600, 20.0, "US", "m1");
        p.observe(&first, &mut out);
        for k in 0..10 {
            p.observe(&txn(&key, "5500005555555559", t0 + 7200 + k, 20.0, "US", "m1"), &mut out);
        }
        for &fraud in labels {
            if fraud {
                p.observe_label(&first, t0 + 2 * day, true);
            } else {
                p.retract_label(&first);
            }
        }
        p.observe(&txn(&key, "5500005555555559", later, 20.0, "US", "m1"), &mut out);
        out[feature_index("merchant_risk_30d").unwrap()]
    };
    let (never, labelled, retracted) = (risk_after(&[]), risk_after(&[true]), risk_after(&[true, false]));
    assert!(labelled > never + 0.05, "{labelled} vs {never}");
    assert_eq!(retracted, never);
}

/// The card-level features of `f` (the ones a checkpoint carries; merchant, country and
/// category risk span cards and are not part of it).
fn card_features(f: &[f32; N_FEATURES]) -> Vec<f32> {
    ["log_count_1h", "log_count_24h", "log_secs_since_prev", "log_amount_ratio_30d", "new_merchant", "new_country"]
        .iter()
        .map(|n| f[feature_index(n).unwrap()])
        .collect()
}

/// The card features of each message as one owner that sees the whole partition computes them
/// (messages at consecutive offsets from `first`).
fn one_owner(msgs: &[Transaction], first: i64) -> Vec<Vec<f32>> {
    let mut whole = FeaturePipeline::new(encoders(), FeatureConfig::default());
    let mut f = [0f32; N_FEATURES];
    msgs.iter()
        .enumerate()
        .map(|(i, t)| {
            whole.observe_at(t, first + i as i64, &mut f);
            card_features(&f)
        })
        .collect()
}

#[test]
fn a_card_handed_over_by_checkpoint_sees_each_message_exactly_once() {
    let key = CardKey::new(b"test");
    let t0 = 1_700_000_000;
    let msgs: Vec<Transaction> =
        (0..8).map(|i| txn(&key, "4111111111111111", t0 + i * 300, 10.0 + i as f64, "US", &format!("m{i}"))).collect();
    let card = msgs[0].card;
    let offset = |i: usize| 100 + i as i64;
    let mut f = [0f32; N_FEATURES];
    let expected = one_owner(&msgs, offset(0));

    // Owner A scores 0..=3, checkpoints (resume at offset(2): 2 and 3 are not committed yet),
    // then stores 4 (arrived at 1,000 ms) and dies.
    let mut a = FeaturePipeline::new(encoders(), FeatureConfig::default());
    for (i, t) in msgs.iter().enumerate().take(4) {
        a.observe_at(t, offset(i), &mut f);
    }
    let mut checkpoint = Vec::new();
    a.export_cards([&card], &mut checkpoint);
    a.observe_at(&msgs[4], offset(4), &mut f);

    // Owner B restores at 2,000 ms; Kafka redelivers from offset(2). A fraud label for the card
    // reached B (every worker applies every verdict change) after A's checkpoint: B keeps it.
    let mut b = FeaturePipeline::new(encoders(), FeatureConfig::default());
    b.observe_label(&msgs[0], t0 + 1_000, true);
    assert_eq!(b.import_cards(&checkpoint, 2_000).unwrap(), [card]);
    assert_eq!(b.card_fraud_known_at(&card), Some(t0 + 1_000), "the newer label survives the restore");
    assert!(!b.replay_at(&msgs[2], offset(2), 500, &mut f), "2 is in the checkpoint");
    assert!(!b.replay_at(&msgs[3], offset(3), 600, &mut f), "3 too");
    assert!(b.replay_at(&msgs[4], offset(4), 1_000, &mut f), "4 was stored after it: it moves the state once");
    assert!(!b.replay_at(&msgs[4], offset(4), 1_000, &mut f), "and only once");
    // 5 was scored by A but never stored: B scores it as new.
    for i in 5..8 {
        b.observe_at(&msgs[i], offset(i), &mut f);
        assert_eq!(card_features(&f), expected[i], "message {i} sees the card's whole history");
    }
    // A repeat stored after the restore (a client or producer retry) never moves the state.
    assert!(!b.replay_at(&msgs[7], offset(7) + 50, 3_000, &mut f));
    // Without the checkpoint, B would have started from nothing.
    let mut fresh = FeaturePipeline::new(encoders(), FeatureConfig::default());
    fresh.observe_at(&msgs[5], offset(5), &mut f);
    assert_ne!(card_features(&f), expected[5]);
}

#[test]
fn a_card_first_seen_after_the_checkpoint_gets_its_stored_tail_once() {
    let key = CardKey::new(b"test");
    let t0 = 1_700_000_000;
    // A card whose first three messages (offsets 10..13) owner A stored after its last
    // checkpoint, which therefore does not hold the card; then A died.
    let msgs: Vec<Transaction> =
        (0..5).map(|i| txn(&key, "4111111111111111", t0 + i * 300, 10.0 + i as f64, "US", "m1")).collect();
    let mut f = [0f32; N_FEATURES];
    let expected = one_owner(&msgs, 10);
    // Owner B restored the partition (the checkpoint without this card) and gets the tail again.
    let mut b = FeaturePipeline::new(encoders(), FeatureConfig::default());
    for (i, t) in msgs.iter().enumerate().take(3) {
        assert!(b.replay_at(t, 10 + i as i64, 1_000 + i as i64, &mut f), "stored message {i} moves the new state");
    }
    assert!(!b.replay_at(&msgs[2], 12, 1_002, &mut f), "once");
    for (i, t) in msgs.iter().enumerate().skip(3) {
        b.observe_at(t, 10 + i as i64, &mut f);
        assert_eq!(card_features(&f), expected[i], "message {i} sees the card's whole history");
    }
    // A repeat of a message B stored itself moves nothing.
    assert!(!b.replay_at(&msgs[4], 14, 5_000, &mut f));
}

#[test]
fn issuer_range_features_come_from_card_numbers_and_are_missing_for_customer_ids() {
    let key = CardKey::new(b"test");
    let t0 = 1_700_000_000;
    let mut p = FeaturePipeline::new(encoders(), FeatureConfig::default());
    let mut f = [0f32; N_FEATURES];
    let at = |name: &str| feature_index(name).unwrap();
    // Ten new cards of one range at one shop within ten minutes, then a known card of the range.
    let pans: Vec<String> = (0..10u8)
        .map(|k| {
            let mut d = format!("45569300000000{k}").into_bytes();
            d.push(crate::domain::luhn_check_digit(&d));
            String::from_utf8(d).unwrap()
        })
        .collect();
    for (k, pan) in pans.iter().enumerate() {
        p.observe(&txn(&key, pan, t0 + 60 * k as i64, 20.0, "US", "shop"), &mut f);
    }
    assert_eq!(f[at("bin_log_new_cards_1h")], 10f32.ln_1p());
    assert_eq!(f[at("bin_log_cards_1h")], 10f32.ln_1p());
    assert_eq!(f[at("merchant_log_cards_1h")], 10f32.ln_1p());
    assert_eq!(f[at("merchant_new_card_share_1h")], 1.0);
    p.observe(&txn(&key, &pans[0], t0 + 700, 20.0, "US", "shop"), &mut f);
    assert_eq!(f[at("bin_log_count_1h")], 11f32.ln_1p());
    assert_eq!(f[at("bin_log_cards_1h")], 10f32.ln_1p(), "a card seen again is not a new distinct card");
    assert_eq!(f[at("merchant_log_count_1h")], 11f32.ln_1p());
    assert!(f[at("bin_risk_30d")].is_finite());
    // A customer id is not a card number: the range's features are missing, the merchant's are not.
    p.observe(&txn(&key, "C0000042", t0 + 800, 20.0, "US", "shop"), &mut f);
    for name in ["bin_log_count_1h", "bin_log_cards_1h", "bin_log_new_cards_1h", "bin_risk_30d"] {
        assert!(f[at(name)].is_nan(), "{name} = {}", f[at(name)]);
    }
    assert_eq!(f[at("merchant_log_cards_1h")], 11f32.ln_1p());
    assert!((f[at("merchant_new_card_share_1h")] - 11.0 / 11.0).abs() < 1e-6);
    // A day later the hour is empty again but the range's 24 h still holds what came.
    p.observe(&txn(&key, &pans[1], t0 + 3 * 3600, 20.0, "US", "other"), &mut f);
    assert_eq!(f[at("bin_log_cards_1h")], 1f32.ln_1p());
    assert_eq!(f[at("bin_log_new_cards_1h")], 0.0);
    assert_eq!(f[at("bin_log_cards_24h")], 10f32.ln_1p());
}

#[test]
fn feature_positions_are_found_by_name_at_compile_time() {
    for (i, name) in FEATURE_NAMES.iter().enumerate() {
        assert_eq!(feature_at(name), i);
    }
    assert_eq!(at::BIN_FEATURES.len(), FEATURE_NAMES.iter().filter(|n| n.starts_with("bin_")).count());
}

#[test]
fn another_workers_transactions_raise_a_ranges_counts_and_so_its_risk() {
    let key = CardKey::new(b"test");
    let day = 86_400;
    let t0 = 1_700_006_400 - 1_700_006_400 % day;
    let pan = "4556931234567897";
    let risk_with = |shared_txns: u32| {
        let mut p = FeaturePipeline::new(encoders(), FeatureConfig::default());
        let mut f = [0f32; N_FEATURES];
        // Two transactions of the range on day 0, one later found fraud.
        let first = txn(&key, pan, t0 + 60, 20.0, "US", "m1");
        p.observe(&first, &mut f);
        p.observe(&txn(&key, pan, t0 + 120, 20.0, "US", "m1"), &mut f);
        p.observe_label(&first, t0 + day, true);
        // Another worker's share of that day, read from the store (`entity_days`).
        p.raise_txns(Entity::Bin, "455693", (t0 / day) as u32, shared_txns);
        p.observe(&txn(&key, pan, t0 + 10 * day, 20.0, "US", "m1"), &mut f);
        f[feature_index("bin_risk_30d").unwrap()]
    };
    let (alone, shared) = (risk_with(0), risk_with(200));
    assert!(alone > 2.0 * shared && shared > 0.0, "1 fraud in 2 vs in 200: {alone} vs {shared}");
}

/// Without a schema the feature vector is the built-in one, bit for bit: a fixed history
/// (labels included) replays to the same 50 numbers per row as at commit 36ddd96, before
/// declared fields existed. A change here changes every bundle's features: bump
/// SCHEMA_VERSION and record the new digest deliberately.
#[test]
fn without_a_schema_the_features_are_those_of_before_declared_fields() {
    let key = CardKey::new(b"golden");
    let (mut rows, mut state) = (Vec::new(), 0x2545_f491_4f6c_dd1du64);
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut ts = 1_735_689_600;
    for i in 0..3000u64 {
        ts += next(900) as i64;
        let card = format!("45399{:011}", next(120));
        let country = ["US", "FR", "GB"][next(3) as usize];
        let merchant = format!("M{}", next(40));
        let mut t = txn(&key, &card, ts, (next(50_000) as f64) / 100.0, country, &merchant);
        t.txn_id = format!("g{i}");
        let label = next(50) == 0;
        rows.push(LabelledTransaction {
            txn: t,
            label: Some(label),
            label_time: None,
            scenario: None,
            masked_card: crate::domain::mask_pan(&card),
            line: i + 1,
        });
    }
    let out = replay(&rows, 0..rows.len(), &encoders(), FeatureConfig::default(), 86_400, |_| {}).features;
    assert_eq!(out.n_cols(), N_FEATURES);
    // FNV-1a over every value's bits, in row order.
    let digest = (0..out.n_rows())
        .flat_map(|i| out.row(i).iter().map(|v| v.to_bits()))
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    assert_eq!(format!("{digest:016x}"), "0c353e8a58ddcb19");
}
