//! Secrets held in memory: the API key. Owned by whoever holds the value; no thread of its own.
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
        let ours = self.0.as_bytes();
        if ours.len() != candidate.len() {
            return false;
        }
        ours.iter().zip(candidate).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
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
}
