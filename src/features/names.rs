//! The feature vector's schema: every feature's name in vector order, its version, and each
//! position by name (so the code writing the vector says what it writes).

/// Bumped whenever a feature is added, removed, reordered or redefined.
/// v2: label-aware features (merchant counts and risk, known-compromised card) and streaming,
/// label-delayed country and category risk.
/// v3: merchant and issuer range (BIN) as entities: 1 h / 24 h windows, distinct and new cards.
pub const SCHEMA_VERSION: u32 = 3;

/// The transaction feature schema, in vector order.
pub const FEATURE_NAMES: [&str; 50] = [
    "log_amount",
    "hour_sin",
    "hour_cos",
    "dow_sin",
    "dow_cos",
    "is_weekend",
    "is_night",
    "country_frequency",
    "country_risk",
    "category_frequency",
    "category_risk",
    "log_count_1h",
    "log_sum_1h",
    "log_mean_1h",
    "log_count_24h",
    "log_sum_24h",
    "log_mean_24h",
    "log_count_7d",
    "log_sum_7d",
    "log_mean_7d",
    "log_count_30d",
    "log_sum_30d",
    "log_mean_30d",
    "log_secs_since_prev",
    "log_amount_ratio_30d",
    "foreign_country",
    "new_merchant",
    "new_country",
    "distinct_countries_24h",
    "merchant_log_count_1d",
    "merchant_log_count_7d",
    "merchant_log_count_30d",
    "merchant_risk_1d",
    "merchant_risk_7d",
    "merchant_risk_30d",
    "merchant_log_recent_frauds",
    "card_known_fraud",
    "merchant_log_count_1h",
    "merchant_log_sum_1h",
    "merchant_log_count_24h",
    "merchant_log_sum_24h",
    "merchant_log_cards_1h",
    "merchant_log_cards_24h",
    "merchant_new_card_share_1h",
    "bin_log_count_1h",
    "bin_log_count_24h",
    "bin_log_cards_1h",
    "bin_log_cards_24h",
    "bin_log_new_cards_1h",
    "bin_risk_30d",
];

pub const N_FEATURES: usize = FEATURE_NAMES.len();

/// Index of a feature by name, for code that explains scores.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// Index of a feature by name at compile time (a misspelt name does not compile), so the code
/// writing the vector names what it writes instead of counting positions.
pub const fn feature_at(name: &str) -> usize {
    let mut i = 0;
    while i < FEATURE_NAMES.len() {
        let (a, b) = (FEATURE_NAMES[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut k = 0;
            while k < a.len() && a[k] == b[k] {
                k += 1;
            }
            if k == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("no feature of that name")
}

/// Where each feature is written, by name.
pub(super) mod at {
    use super::feature_at;
    pub const LOG_AMOUNT: usize = feature_at("log_amount");
    pub const HOUR_SIN: usize = feature_at("hour_sin");
    pub const HOUR_COS: usize = feature_at("hour_cos");
    pub const DOW_SIN: usize = feature_at("dow_sin");
    pub const DOW_COS: usize = feature_at("dow_cos");
    pub const IS_WEEKEND: usize = feature_at("is_weekend");
    pub const IS_NIGHT: usize = feature_at("is_night");
    pub const COUNTRY_FREQUENCY: usize = feature_at("country_frequency");
    pub const COUNTRY_RISK: usize = feature_at("country_risk");
    pub const CATEGORY_FREQUENCY: usize = feature_at("category_frequency");
    pub const CATEGORY_RISK: usize = feature_at("category_risk");
    /// The first of the card's (count, sum, mean) triples over 1 h, 24 h, 7 d and 30 d.
    pub const CARD_WINDOWS: usize = feature_at("log_count_1h");
    pub const SECS_SINCE_PREV: usize = feature_at("log_secs_since_prev");
    pub const AMOUNT_RATIO_30D: usize = feature_at("log_amount_ratio_30d");
    pub const FOREIGN_COUNTRY: usize = feature_at("foreign_country");
    pub const NEW_MERCHANT: usize = feature_at("new_merchant");
    pub const NEW_COUNTRY: usize = feature_at("new_country");
    pub const DISTINCT_COUNTRIES_24H: usize = feature_at("distinct_countries_24h");
    /// The merchant's day counts and risks over 1, 7 and 30 days.
    pub const MERCHANT_COUNTS: usize = feature_at("merchant_log_count_1d");
    pub const MERCHANT_RISKS: usize = feature_at("merchant_risk_1d");
    pub const MERCHANT_RECENT_FRAUDS: usize = feature_at("merchant_log_recent_frauds");
    pub const CARD_KNOWN_FRAUD: usize = feature_at("card_known_fraud");
    pub const MERCHANT_COUNT_1H: usize = feature_at("merchant_log_count_1h");
    pub const MERCHANT_SUM_1H: usize = feature_at("merchant_log_sum_1h");
    pub const MERCHANT_COUNT_24H: usize = feature_at("merchant_log_count_24h");
    pub const MERCHANT_SUM_24H: usize = feature_at("merchant_log_sum_24h");
    pub const MERCHANT_CARDS_1H: usize = feature_at("merchant_log_cards_1h");
    pub const MERCHANT_CARDS_24H: usize = feature_at("merchant_log_cards_24h");
    pub const MERCHANT_NEW_CARD_SHARE_1H: usize = feature_at("merchant_new_card_share_1h");
    pub const BIN_COUNT_1H: usize = feature_at("bin_log_count_1h");
    pub const BIN_COUNT_24H: usize = feature_at("bin_log_count_24h");
    pub const BIN_CARDS_1H: usize = feature_at("bin_log_cards_1h");
    pub const BIN_CARDS_24H: usize = feature_at("bin_log_cards_24h");
    pub const BIN_NEW_CARDS_1H: usize = feature_at("bin_log_new_cards_1h");
    pub const BIN_RISK_30D: usize = feature_at("bin_risk_30d");
    /// The features that are missing (NaN) when the card column holds no card numbers.
    pub const BIN_FEATURES: [usize; 6] =
        [BIN_COUNT_1H, BIN_COUNT_24H, BIN_CARDS_1H, BIN_CARDS_24H, BIN_NEW_CARDS_1H, BIN_RISK_30D];
}
