//! Domain types shared by every stage: transactions, card tokens, actions.

mod card;
mod transaction;

pub use card::{CardKey, CardToken, luhn_check_digit, luhn_valid, mask_pan};
pub use transaction::{Country, Transaction};
