use super::*;

fn config(rows: usize, seed: u64) -> GeneratorConfig {
    GeneratorConfig {
        rows,
        cards: 300,
        merchants: 200,
        days: 30,
        start: 1_735_689_600, // 2025-01-01
        seed,
        fraud_rate: 0.04,
        label_noise: 0.005,
    }
}

fn csv_of(g: &Generated) -> String {
    let mut out = Vec::new();
    write_csv(g, &mut out, |_| {}).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = csv_of(&generate(&config(3000, 7)).unwrap());
    let b = csv_of(&generate(&config(3000, 7)).unwrap());
    let c = csv_of(&generate(&config(3000, 8)).unwrap());
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    // More rows than one generation chunk, so several chunks and format batches are involved.
    let cfg = config(150_000, 9);
    let a = one.install(|| csv_of(&generate(&cfg).unwrap()));
    let b = three.install(|| csv_of(&generate(&cfg).unwrap()));
    assert!(a == b, "generated files differ between 1 and 3 threads");
}

#[test]
fn rows_are_time_ordered_in_range_with_every_scenario() {
    let cfg = config(20_000, 1);
    let g = generate(&cfg).unwrap();
    assert_eq!(g.rows.len(), 20_000);
    assert!(g.rows.windows(2).all(|w| w[0].ts <= w[1].ts));
    let end = cfg.start + i64::from(cfg.days) * 86_400;
    assert!(g.rows.iter().all(|r| (cfg.start..end).contains(&r.ts)));
    let counts = g.scenario_counts();
    assert!(counts[1..].iter().all(|&c| c > 0), "every scenario should appear: {counts:?}");
    // Labels and scenarios agree.
    assert!(g.rows.iter().all(|r| r.label == (r.scenario != 0)));
    let rate = g.fraud_count() as f64 / 20_000.0;
    assert!((0.02..0.08).contains(&rate), "fraud rate {rate}");
}

#[test]
fn fraud_rate_is_adjustable() {
    let low = generate(&GeneratorConfig { fraud_rate: 0.01, ..config(20_000, 2) }).unwrap();
    let high = generate(&GeneratorConfig { fraud_rate: 0.10, ..config(20_000, 2) }).unwrap();
    assert!(high.fraud_count() > 3 * low.fraud_count());
}

#[test]
fn daily_rhythm_makes_nights_quiet() {
    let g = generate(&config(20_000, 3)).unwrap();
    let hour = |r: &Row| r.ts.rem_euclid(86_400) / 3600;
    let night = g.rows.iter().filter(|r| (2..5).contains(&hour(r))).count();
    let noon = g.rows.iter().filter(|r| (11..14).contains(&hour(r))).count();
    assert!(noon > 5 * night, "noon {noon} vs night {night}");
}

#[test]
fn scenario_one_is_large_and_abroad() {
    let g = generate(&config(20_000, 4)).unwrap();
    for r in g.rows.iter().filter(|r| r.scenario == 1) {
        assert!(r.amount_cents > 20_000);
        assert_ne!(r.country, g.world.cards[r.card as usize].home);
    }
}

#[test]
fn csv_has_the_documented_columns() {
    let text = csv_of(&generate(&config(100, 5)).unwrap());
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(CSV_HEADER));
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(first.len(), 16);
    assert!(first[9] == "pos" || first[9] == "ecom", "{first:?}");
    assert_eq!(first[0].len(), 16);
    assert!(chrono::DateTime::parse_from_rfc3339(first[1]).is_ok());
    assert!(crate::domain::luhn_valid(first[2]));
    assert!(first[3].parse::<f64>().unwrap() > 0.0);
    assert_eq!(text.lines().count(), 101);
}

#[test]
fn compromised_merchants_only_see_fraud_in_their_window() {
    let g = generate(&config(20_000, 6)).unwrap();
    let hit: Vec<&Row> = g.rows.iter().filter(|r| r.scenario == 2).collect();
    assert!(!hit.is_empty());
    for r in &hit {
        let span = hit.iter().filter(|o| o.merchant == r.merchant).map(|o| o.ts);
        let (lo, hi) = (span.clone().min().unwrap(), span.max().unwrap());
        // No legitimate transaction at that merchant inside its compromised window.
        assert!(!g.rows.iter().any(|o| o.merchant == r.merchant && !o.label && (lo..=hi).contains(&o.ts)));
    }
}

#[test]
fn finishes_when_a_compromised_merchant_is_its_countrys_only_one() {
    // 25 merchants = one per country: rerouting regular customers can find no alternative.
    let g = generate(&GeneratorConfig { merchants: 25, fraud_rate: 0.2, ..config(5_000, 9) }).unwrap();
    assert_eq!(g.rows.len(), 5_000);
}

#[test]
fn bad_config_is_refused() {
    assert!(generate(&GeneratorConfig { rows: 0, ..config(1, 1) }).is_err());
    assert!(generate(&GeneratorConfig { merchants: 3, ..config(1, 1) }).is_err());
    assert!(generate(&GeneratorConfig { fraud_rate: 0.9, ..config(1, 1) }).is_err());
}

#[test]
fn card_not_present_fields_carry_the_attacks_and_the_legitimate_mess() {
    use std::collections::{HashMap, HashSet};
    let g = generate(&config(40_000, 12)).unwrap();
    assert_eq!(g.cnp.len(), g.rows.len());
    // Card-present purchases have no device, IP or e-mail; online ones always do.
    for (r, c) in g.rows.iter().zip(&g.cnp) {
        assert_eq!(c.channel == 0, c.device == 0 && c.ip == 0 && c.email == 0, "{r:?} {c:?}");
    }
    let mut cards_per_device: HashMap<(u8, u32), HashSet<u32>> = HashMap::new();
    for (r, c) in g.rows.iter().zip(&g.cnp).filter(|(_, c)| c.device != 0) {
        cards_per_device.entry((r.scenario, c.device)).or_default().insert(r.card);
    }
    let widest = |scenario: u8| {
        cards_per_device.iter().filter(|(k, _)| k.0 == scenario).map(|(_, v)| v.len()).max().unwrap_or(0)
    };
    // A testing bot runs dozens of cards through one device, a ring a handful of devices over
    // many cards; legitimately, households share a laptop.
    assert!(widest(9) >= 15, "{}", widest(9));
    assert!(widest(11) >= 5, "{}", widest(11));
    assert!((2..10).contains(&widest(0)), "{}", widest(0));
    let counts = g.scenario_counts();
    assert!(counts[9] > 0 && counts[10] > 0 && counts[11] > 0, "{counts:?}");
}
