//! Reference codes shown to the customer (`K7-4QXM-2D`): eight characters from an alphabet without look-alikes
//! (no 0/O, 1/I/L, U/V), the last one a check character so a mistyped code is caught. Pure functions.

/// The 29 characters a reference is made of (a prime count, so the weighted check catches every single
/// substitution and every swap of two neighbours).
pub const SYMBOLS: &[u8] = b"23456789ABCDEFGHJKMNPQRSTWXYZ";

fn value(c: u8) -> Option<usize> {
    SYMBOLS.iter().position(|&s| s == c)
}

fn check_char(body: &[u8]) -> u8 {
    // Weighted sum modulo the alphabet size: catches any single substitution and most transpositions.
    let n = SYMBOLS.len();
    let sum: usize = body.iter().enumerate().map(|(i, &c)| (i + 1) * value(c).unwrap_or(0)).sum();
    SYMBOLS[sum % n]
}

/// A new random reference from seven random characters and a check character.
pub fn generate(rng: &mut fastrand::Rng) -> String {
    let body: Vec<u8> = (0..7).map(|_| SYMBOLS[rng.usize(..SYMBOLS.len())]).collect();
    let c = check_char(&body);
    format!(
        "{}-{}-{}{}",
        std::str::from_utf8(&body[..2]).unwrap_or_default(),
        std::str::from_utf8(&body[2..6]).unwrap_or_default(),
        body[6] as char,
        c as char
    )
}

/// Normalises what an operator typed (case, spaces, dashes) and checks the check character; `None` when it is not
/// a well-formed reference.
pub fn normalize(input: &str) -> Option<String> {
    let chars: Vec<u8> = input.bytes().filter(|b| !matches!(b, b'-' | b' ')).map(|b| b.to_ascii_uppercase()).collect();
    if chars.len() != 8 || chars.iter().any(|&c| value(c).is_none()) {
        return None;
    }
    if check_char(&chars[..7]) != chars[7] {
        return None;
    }
    let s = std::str::from_utf8(&chars).ok()?;
    Some(format!("{}-{}-{}", &s[..2], &s[2..6], &s[6..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_validate_and_typos_do_not() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..500 {
            let r = generate(&mut rng);
            assert_eq!(r.len(), 10, "{r}");
            assert_eq!(normalize(&r).as_deref(), Some(r.as_str()));
            assert_eq!(normalize(&r.to_lowercase().replace('-', " ")).as_deref(), Some(r.as_str()));
            // Any single substitution is caught.
            let mut b = r.clone().into_bytes();
            let pos = [0usize, 1, 3, 4, 5, 6, 8][rng.usize(..7)];
            let orig = b[pos];
            b[pos] = SYMBOLS.iter().copied().find(|&c| c != orig).unwrap_or(b'2');
            assert_eq!(normalize(std::str::from_utf8(&b).unwrap()), None, "{r}");
        }
        for bad in ["", "K7-4QXM-2", "K0-4QXM-2D", "K7-4QXM-2D-X", "12"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
