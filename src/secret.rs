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

/// Whether two byte strings are equal, in a time that depends on their length only, not on where they differ
/// (`subtle`, whose comparison the optimiser cannot turn into an early exit).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The PIN that opens the operator console on the customer kiosk: 6 to 12 digits. Compared in constant time only
/// (its `PartialEq` too): no derived comparison that stops at the first different digit.
#[derive(Clone)]
pub struct StaffPin(Zeroizing<String>);

impl PartialEq for StaffPin {
    fn eq(&self, other: &StaffPin) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for StaffPin {}

/// Fewest digits a staff PIN may have: a million combinations, with the pad's lockouts, against guessing at the
/// kiosk.
pub const STAFF_PIN_MIN: usize = 6;
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

/// The digits typed so far on the staff PIN pad: zeroed when dropped, compared in constant time, and its `Debug`
/// gives only how many there are (a state dump or a log line never shows them).
#[derive(Clone, Default)]
pub struct PinDigits(Zeroizing<String>);

impl std::ops::Deref for PinDigits {
    type Target = String;
    fn deref(&self) -> &String {
        &self.0
    }
}

impl std::ops::DerefMut for PinDigits {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.0
    }
}

impl PartialEq for PinDigits {
    fn eq(&self, other: &PinDigits) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for PinDigits {}

impl std::fmt::Debug for PinDigits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinDigits({} typed)", self.0.chars().count())
    }
}

/// Why the process could not be hardened (see [`harden_process`]).
#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    /// `prctl(PR_SET_DUMPABLE, 0)` failed.
    #[error("cannot mark the process non-dumpable: {0}")]
    Dumpable(std::io::Error),
    /// `setrlimit(RLIMIT_CORE, 0)` failed.
    #[error("cannot turn core dumps off: {0}")]
    CoreLimit(std::io::Error),
}

/// Keeps secrets (the API key, the queue key, decrypted images) out of core dumps: no core file
/// (`RLIMIT_CORE` 0) and not dumpable (`PR_SET_DUMPABLE` 0, which also keeps other processes of the same user from
/// attaching a debugger or reading `/proc/<pid>/mem`). Called first thing in `main`.
pub fn harden_process() -> Result<(), HardenError> {
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to a properly initialised `rlimit` for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(HardenError::CoreLimit(std::io::Error::last_os_error()));
    }
    // SAFETY: PR_SET_DUMPABLE takes one integer argument; the others are ignored.
    if unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } != 0
    {
        return Err(HardenError::Dumpable(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes `name` from the process environment once its value has been read, so child processes do not inherit it,
/// and overwrites the value where the kernel placed it at exec, so `/proc/<pid>/environ` no longer shows it either
/// (removing the variable alone leaves those bytes in place).
///
/// # Safety
///
/// No other thread may read or write the environment during the call (call it before starting any thread).
pub unsafe fn scrub_env(name: &str) {
    unsafe extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let prefix = format!("{name}=");
    // SAFETY: the caller guarantees no other thread touches the environment; `environ` is a NULL-terminated array
    // of NUL-terminated strings, each writable (the exec block on the stack, or a string `setenv` allocated).
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = *p;
            let bytes = std::ffi::CStr::from_ptr(entry).to_bytes();
            if bytes.starts_with(prefix.as_bytes()) {
                let value = entry.add(prefix.len());
                let len = bytes.len() - prefix.len();
                for i in 0..len {
                    std::ptr::write_volatile(value.add(i), b'x' as libc::c_char);
                }
            }
            p = p.add(1);
        }
        std::env::remove_var(name);
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
        for bad in ["", "123", "2468", "24681", "1234567890123", "12a456", "12 3456"] {
            assert!(StaffPin::parse(bad).is_err(), "{bad:?}");
        }
        let pin = StaffPin::parse(" 246810\n").unwrap();
        assert!(pin.matches("246810"));
        assert!(!pin.matches("24681"));
        assert!(!pin.matches("246811"));
        assert!(!format!("{pin:?}").contains("246810"));
        assert!(pin == StaffPin::parse("246810").unwrap());
        assert!(pin != StaffPin::parse("246811").unwrap());
    }

    #[test]
    fn typed_pin_digits_never_show_in_debug() {
        let mut typed = PinDigits::default();
        for d in "246813".chars() {
            typed.push(d);
        }
        let dbg = format!("{typed:?}");
        assert_eq!(dbg, "PinDigits(6 typed)");
        assert!(typed == typed.clone());
    }
}
