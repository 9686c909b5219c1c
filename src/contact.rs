//! Contact details typed once and validated locally, before anything is queued or sent: [`Email`] and [`Phone`].
//! Pure functions, any thread (the UI validates as the customer types).

use crate::api::PhoneFormat;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a contact detail was refused. Messages are short enough to show under an input field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContactError {
    /// Nothing was entered.
    #[error("please enter an email address")]
    EmailEmpty,
    /// The email address is not of the form name@domain.tld.
    #[error("this email address doesn't look right")]
    EmailInvalid,
    /// Nothing was entered.
    #[error("please enter a phone number")]
    PhoneEmpty,
    /// The number holds characters other than digits, spaces, dashes, dots, brackets and one leading plus.
    #[error("a phone number can only hold digits")]
    PhoneCharacters,
    /// The number does not start with a country code (a leading `+` or `00`).
    #[error("please start with your country code, for example +44")]
    PhoneNoCountryCode,
    /// Too few or too many digits for an international number (E.164 allows 8 to 15 with the country code).
    #[error("this phone number has too few or too many digits")]
    PhoneLength,
}

/// A syntactically valid email address, trimmed, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates an address: one `@`, a local part of allowed characters, a domain with a dot and a TLD of letters.
    pub fn parse(input: &str) -> Result<Email, ContactError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ContactError::EmailEmpty);
        }
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ContactError::EmailInvalid);
        }
        let (local, domain) = s.split_once('@').ok_or(ContactError::EmailInvalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if local_ok && domain_ok { Ok(Email(s.to_string())) } else { Err(ContactError::EmailInvalid) }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ContactError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// An international phone number: the country code and subscriber number as digits (8 to 15 of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Accepts `+44 20 7946 0958`, `0044-20-7946-0958`, `+1 (555) 010-0199`, or digits already carrying the country
    /// code (`251999678350`, the vendor's sample form). Separators are dropped.
    pub fn parse(input: &str) -> Result<Phone, ContactError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ContactError::PhoneEmpty);
        }
        let (plus, rest) = match s.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, s),
        };
        if rest.chars().any(|c| !(c.is_ascii_digit() || " -.()".contains(c))) {
            return Err(ContactError::PhoneCharacters);
        }
        let mut digits: String = rest.chars().filter(char::is_ascii_digit).collect();
        if !plus {
            if let Some(d) = digits.strip_prefix("00") {
                digits = d.to_string();
            } else if digits.starts_with('0') {
                // A national trunk prefix: no country code.
                return Err(ContactError::PhoneNoCountryCode);
            }
        }
        if digits.starts_with('0') {
            return Err(ContactError::PhoneNoCountryCode);
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(ContactError::PhoneLength);
        }
        Ok(Phone(digits))
    }

    /// Digits with the country code, no `+`.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// The number as the API receives it.
    pub fn wire(&self, format: PhoneFormat) -> String {
        match format {
            PhoneFormat::Digits => self.0.clone(),
            PhoneFormat::E164 => format!("+{}", self.0),
        }
    }
}

impl TryFrom<String> for Phone {
    type Error = ContactError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContactError::*;

    #[test]
    fn emails() {
        let table: &[(&str, Result<&str, ContactError>)] = &[
            ("ada@example.com", Ok("ada@example.com")),
            ("  ada.l+kyc@mail.example.co.uk ", Ok("ada.l+kyc@mail.example.co.uk")),
            ("", Err(EmailEmpty)),
            ("   ", Err(EmailEmpty)),
            ("ada", Err(EmailInvalid)),
            ("ada@example", Err(EmailInvalid)),
            ("ada@@example.com", Err(EmailInvalid)),
            ("a da@example.com", Err(EmailInvalid)),
            (".ada@example.com", Err(EmailInvalid)),
            ("ada..b@example.com", Err(EmailInvalid)),
            ("ada@-example.com", Err(EmailInvalid)),
            ("ada@example.c0m", Err(EmailInvalid)),
            ("ada@exa_mple.com", Err(EmailInvalid)),
        ];
        for (input, want) in table {
            let got = Email::parse(input);
            assert_eq!(got.as_ref().map(Email::as_str).map_err(Clone::clone), want.clone(), "{input:?}");
        }
    }

    #[test]
    fn phones() {
        let table: &[(&str, Result<&str, ContactError>)] = &[
            ("+44 20 7946 0958", Ok("442079460958")),
            ("0044-20-7946-0958", Ok("442079460958")),
            ("+1 (555) 010-0199", Ok("15550100199")),
            ("251999678350", Ok("251999678350")),
            ("", Err(PhoneEmpty)),
            ("020 7946 0958", Err(PhoneNoCountryCode)),
            ("+0 123 456 789", Err(PhoneNoCountryCode)),
            ("+44 20 7946 095a", Err(PhoneCharacters)),
            ("++44 2079460958", Err(PhoneCharacters)),
            ("+44 123", Err(PhoneLength)),
            ("+44 1234 5678 9012 345", Err(PhoneLength)),
        ];
        for (input, want) in table {
            let got = Phone::parse(input);
            assert_eq!(got.as_ref().map(Phone::digits).map_err(Clone::clone), want.clone(), "{input:?}");
        }
        let p = Phone::parse("+44 20 7946 0958").unwrap();
        assert_eq!(p.wire(PhoneFormat::Digits), "442079460958");
        assert_eq!(p.wire(PhoneFormat::E164), "+442079460958");
    }
}
