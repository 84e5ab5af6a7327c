//! Card numbers are sensitive: this module is the only place a PAN is handled. It validates,
//! masks (first 6 / last 4) and tokenizes it with a keyed HMAC-SHA256; the token is what every
//! other stage keys on.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The secret key for card tokens. `Debug` never prints it.
#[derive(Clone)]
pub struct CardKey(Hmac<Sha256>);

impl fmt::Debug for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardKey(..)")
    }
}

impl CardKey {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        Self(Hmac::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length")))
    }

    /// A key from the hex string in `AEGIS_CARD_KEY`, or else a fresh random one. A random key is
    /// fine for training and evaluation, where tokens never leave the process.
    pub fn from_env_or_random() -> anyhow::Result<Self> {
        match std::env::var("AEGIS_CARD_KEY") {
            Ok(hex_key) => {
                let bytes =
                    hex::decode(hex_key.trim()).map_err(|e| anyhow::anyhow!("AEGIS_CARD_KEY is not valid hex: {e}"))?;
                anyhow::ensure!(bytes.len() >= 16, "AEGIS_CARD_KEY must hold at least 16 bytes");
                Ok(Self::new(&bytes))
            }
            Err(_) => Ok(Self::new(&rand::random::<[u8; 32]>())),
        }
    }

    /// The key for a results database: `AEGIS_CARD_KEY`, else `key_file`, else the file beside
    /// the SQLite database `sqlite_file` (`results.key` for `results.db`). A server store is
    /// shared by workers on several machines, which must all tokenize with one key: it takes
    /// `AEGIS_CARD_KEY` or a key file, never a key made up on one machine.
    pub fn for_database(
        sqlite_file: Option<&std::path::Path>,
        key_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let path = match (key_file, sqlite_file) {
            (Some(file), _) => file.to_path_buf(),
            (None, Some(db)) => db.with_extension("key"),
            (None, None) if std::env::var_os("AEGIS_CARD_KEY").is_some() => return Self::from_env_or_random(),
            (None, None) => anyhow::bail!(
                "a PostgreSQL store needs the card key every worker shares: set AEGIS_CARD_KEY (hex, at least 16 \
                 bytes, e.g. from `openssl rand -hex 32`) or give --card-key-file"
            ),
        };
        Self::load_or_create(&path).with_context(|| format!("card key {}", path.display()))
    }

    /// The serving key: `AEGIS_CARD_KEY` (hex) if set, else the key saved in `path`, else a new
    /// random key saved to `path` readable by its owner only. Tokens in the results store are only
    /// comparable across restarts under the same key, so it must outlive the process.
    pub fn load_or_create(path: &std::path::Path) -> anyhow::Result<Self> {
        if std::env::var_os("AEGIS_CARD_KEY").is_some() {
            return Self::from_env_or_random();
        }
        Self::load_or_create_file(path)
    }

    /// The key saved in `path`, or a new one saved there (owner-only), whatever the environment
    /// says (so its test holds with `AEGIS_CARD_KEY` set).
    fn load_or_create_file(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .with_context(|| format!("the card key file {} is not hex", path.display()))?;
                anyhow::ensure!(bytes.len() >= 16, "the card key in {} is shorter than 16 bytes", path.display());
                Ok(Self::new(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret = rand::random::<[u8; 32]>();
                write_owner_only(path, hex::encode(secret).as_bytes())
                    .with_context(|| format!("cannot save a new card key to {}", path.display()))?;
                tracing::info!(path = %path.display(), "created a new card tokenization key (owner-only permissions)");
                Ok(Self::new(&secret))
            }
            Err(e) => Err(e).with_context(|| format!("cannot read the card key file {}", path.display())),
        }
    }

    /// The token of a card identifier (a PAN, or a customer id in user data).
    pub fn token(&self, card: &str) -> CardToken {
        let mut mac = self.0.clone();
        mac.update(card.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        CardToken(u128::from_be_bytes(first))
    }
}

/// Creates `path` (never overwriting) with permissions 0600 and writes `contents`.
fn write_owner_only(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A card's pseudonymous identity: the first 128 bits of HMAC-SHA256(key, PAN).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardToken(u128);

impl CardToken {
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// A token from its 128 bits (tests, samples).
    pub const fn from_u128(bits: u128) -> Self {
        Self(bits)
    }

    /// Parses the 32-hex-digit form that `Display` writes (and the store keeps).
    pub fn from_hex(s: &str) -> Option<Self> {
        (s.len() == 32).then(|| u128::from_str_radix(s, 16).ok().map(Self)).flatten()
    }
}

impl fmt::Display for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardToken({self})")
    }
}

/// True if `digits` (ASCII digits only) passes the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) && luhn_sum(bytes, 1) % 10 == 0
}

/// The digit that, appended to `payload` (ASCII digits), makes it Luhn-valid.
pub fn luhn_check_digit(payload: &[u8]) -> u8 {
    // Appending a digit shifts every position by one, so the payload's doubled digits are the
    // even positions from the right.
    b'0' + ((10 - luhn_sum(payload, 0) % 10) % 10) as u8
}

/// Luhn sum of ASCII digits, doubling those at positions (from the right, 0-based) of the
/// given parity.
fn luhn_sum(digits: &[u8], doubled_parity: usize) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == doubled_parity { if d > 4 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum()
}

/// The issuer range (BIN: the first six digits) of a masked card number, when the masked value
/// is one of a card number: 12–19 characters, six digits first, four digits last, `*` between
/// (what [`mask_pan`] makes of a 12–19 digit number, and what Kafka messages carry). A card
/// column that holds customer ids gives `None`: BIN features are then missing, not zero.
/// Read from the masked form everywhere (CSV, API, store), so every path agrees.
pub fn bin_of(masked: &str) -> Option<u32> {
    let b = masked.as_bytes();
    let n = b.len();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if !(12..=19).contains(&n) || !digits(&b[..6]) || !digits(&b[n - 4..]) || !b[6..n - 4].iter().all(|&c| c == b'*') {
        return None;
    }
    masked[..6].parse().ok()
}

/// First 6 and last 4 digits kept, the rest masked: `411111******1111`.
pub fn mask_pan(pan: &str) -> String {
    let n = pan.len();
    if n < 10 || !pan.is_ascii() {
        return "*".repeat(n.min(19));
    }
    format!("{}{}{}", &pan[..6], "*".repeat(n - 10), &pan[n - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_new_key_file_is_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/card.key");
        let first = CardKey::load_or_create_file(&path).unwrap().token("4111111111111111");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = CardKey::load_or_create_file(&path).unwrap().token("4111111111111111");
        assert_eq!(first, again);
        assert_eq!(CardToken::from_hex(&first.to_string()), Some(first));
    }

    #[test]
    fn known_luhn_numbers() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("5500005555555559"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("41111111a1111111"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn masks_all_but_first_six_and_last_four() {
        assert_eq!(mask_pan("4111111111111111"), "411111******1111");
        assert_eq!(mask_pan("123"), "***");
    }

    #[test]
    fn the_bin_comes_from_a_masked_card_number_only() {
        assert_eq!(bin_of(&mask_pan("4556931234567890")), Some(455_693));
        assert_eq!(bin_of("455693******7890"), Some(455_693));
        assert_eq!(bin_of(&mask_pan("000123456789")), Some(123));
        // Customer ids and short numbers are not card numbers.
        assert_eq!(bin_of(&mask_pan("C0001234")), None);
        assert_eq!(bin_of(&mask_pan("12345")), None);
        assert_eq!(bin_of(&mask_pan("cust-00012345678")), None);
        assert_eq!(bin_of("45569312345678901234"), None);
        assert_eq!(bin_of("455693**x***7890"), None);
    }

    #[test]
    fn tokens_depend_on_key_and_card_and_hide_the_key() {
        let a = CardKey::new(b"key-a");
        let b = CardKey::new(b"key-b");
        assert_eq!(a.token("4111111111111111"), a.token("4111111111111111"));
        assert_ne!(a.token("4111111111111111"), b.token("4111111111111111"));
        assert_ne!(a.token("4111111111111111"), a.token("4111111111111129"));
        assert_eq!(format!("{a:?}"), "CardKey(..)");
        assert_eq!(a.token("x").to_string().len(), 32);
    }

    proptest! {
        #[test]
        fn check_digit_makes_any_payload_valid(payload in "[0-9]{11,18}") {
            let mut pan = payload.clone().into_bytes();
            pan.push(luhn_check_digit(payload.as_bytes()));
            let pan = String::from_utf8(pan).unwrap();
            prop_assert!(luhn_valid(&pan));
        }
    }
}
