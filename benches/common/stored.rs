//! The stored results the store benches write (`store.rs`, `lookup.rs`): random `txn_id`s and
//! 50,000 cards whose tokens are scattered as HMAC outputs are, as in real traffic (sequential
//! ids flattered the store 3×).

use aegis::domain::ScoredTransaction;
use aegis::scoring::Action;

/// Result `i`: its own random `txn_id`, one of 5,000 merchants and 50,000 cards, and `action`.
pub fn result(i: u64, action: Action) -> ScoredTransaction {
    ScoredTransaction {
        txn_id: format!("{:016x}", aegis::generator::txn_id(7, i)),
        timestamp: 1_735_689_600 + i as i64,
        amount: 12.5 + (i % 500) as f64,
        country: "US".into(),
        merchant: format!("M{:06}", i % 5000),
        merchant_category: Some("grocery".into()),
        card_masked: "453912******3374".into(),
        card_token: format!("{:032x}", aegis::generator::txn_id(8, i % 50_000)),
        score: 0.5,
        if_score: 0.4,
        ae_mse: 0.1,
        action,
        reasons: Vec::new(),
        model_version: "bench".into(),
        received_at: 1_735_689_600_000 + i as i64,
        latency_us: 7,
        fields: None,
        fraud_probability: None,
        rules: Vec::new(),
        shadow: None,
    }
}
