//! Secrets held in memory: the API key and the staff PIN. Owned by whoever holds the value; no thread of its own.
//!
//! A secret is zeroed on drop, and its `Debug` prints `<redacted>`; it has no `Display`, so it cannot end up in a
//! log line, an error message or a panic by accident. The only way to the bytes is [`ApiKey::expose`], called where
//! the header is set.

use zeroize::Zeroizing;

/// The Lapis API key.
#[derive(Clone)]
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a key. Surrounding white space (a trailing newline in a key file) is removed.
    pub fn new(key: &str) -> ApiKey {
        ApiKey(Zeroizing::new(key.trim().to_owned()))
    }

    /// The key itself, for the `x-api-key` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty after trimming.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares in constant time (for the sandbox's key check).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate)
    }
}

/// Whether two byte strings are equal, in a time that depends on their length only, not on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The PIN that opens the operator console on the customer kiosk: 4 to 12 digits.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffPin(Zeroizing<String>);

/// Fewest digits a staff PIN may have.
pub const STAFF_PIN_MIN: usize = 4;
/// Most digits a staff PIN may have (also the most the PIN pad accepts).
pub const STAFF_PIN_MAX: usize = 12;

impl StaffPin {
    /// Checks and wraps a PIN (surrounding white space removed). The error says what is wrong, never the PIN.
    pub fn parse(pin: &str) -> Result<StaffPin, String> {
        let pin = pin.trim();
        if !(STAFF_PIN_MIN..=STAFF_PIN_MAX).contains(&pin.chars().count()) {
            return Err(format!("must have {STAFF_PIN_MIN} to {STAFF_PIN_MAX} digits"));
        }
        if !pin.chars().all(|c| c.is_ascii_digit()) {
            return Err("must hold digits only".into());
        }
        Ok(StaffPin(Zeroizing::new(pin.to_owned())))
    }

    /// Compares a typed PIN in constant time (for PINs of the same length).
    pub fn matches(&self, typed: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), typed.as_bytes())
    }
}

impl std::fmt::Debug for StaffPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaffPin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let k = ApiKey::new("  sk_live_very_secret\n");
        assert_eq!(k.expose(), "sk_live_very_secret");
        let dbg = format!("{k:?} {:?}", Some(&k));
        assert!(!dbg.contains("very_secret"), "{dbg}");
    }

    #[test]
    fn matches_compares_whole_key() {
        let k = ApiKey::new("abc");
        assert!(k.matches(b"abc"));
        assert!(!k.matches(b"abd"));
        assert!(!k.matches(b"ab"));
        assert!(!k.matches(b"abcd"));
    }

    #[test]
    fn staff_pins_are_digits_of_sane_length_and_never_printed() {
        for bad in ["", "123", "1234567890123", "12a4", "12 34"] {
            assert!(StaffPin::parse(bad).is_err(), "{bad:?}");
        }
        let pin = StaffPin::parse(" 246810\n").unwrap();
        assert!(pin.matches("246810"));
        assert!(!pin.matches("24681"));
        assert!(!pin.matches("246811"));
        assert!(!format!("{pin:?}").contains("246810"));
    }
}
