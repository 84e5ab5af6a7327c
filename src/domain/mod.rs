//! Domain types shared by every stage: transactions, card tokens, decisions, time.

mod card;
mod decision;
pub mod fields;
mod label;
mod time;
mod transaction;
mod wire;

pub use card::{CardKey, CardToken, bin_of, luhn_check_digit, luhn_valid, mask_pan};
pub use decision::{Action, PredictResponse, ScoredTransaction, ShadowScore, Verdict};
pub use label::{LabelIn, LabelRequest};
pub use time::{parse_timestamp, rfc3339};
pub use transaction::{Country, Transaction};
pub use wire::{MAX_AMOUNT, MIN_TIMESTAMP, Rejection, TransactionIn, ValidTransaction, latest_timestamp};
