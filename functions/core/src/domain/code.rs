//! `Code`: the promo code itself, upper-case, 4 to 32 characters of `A-Z 0-9 - _`.

use std::fmt;

use rand::Rng;

use super::DomainError;

/// The alphabet of generated codes: no `0 O 1 I`, so a code read aloud or typed from print
/// survives. 32 symbols, so each carries exactly 5 bits and a byte maps onto it without bias.
const GENERATED_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const GENERATED_LEN: usize = 12;

pub(crate) const MIN_LEN: usize = 4;
pub(crate) const MAX_LEN: usize = 32;

/// A promo code: unique ignoring case, so it is stored and shown upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(String);

impl Code {
    /// Parses a code given in any case.
    pub fn parse(input: &str) -> Result<Code, DomainError> {
        let len = input.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(DomainError::invalid(
                "code",
                format!("code must be {MIN_LEN} to {MAX_LEN} characters long, got {len}"),
            ));
        }
        if let Some(bad) = input.chars().find(|c| !is_code_char(*c)) {
            return Err(DomainError::invalid(
                "code",
                format!("code may only contain A-Z, 0-9, '-' and '_', found {bad:?}"),
            ));
        }
        Ok(Code(input.to_ascii_uppercase()))
    }

    /// A fresh code of 12 characters from a 32-symbol alphabet: 60 bits from the operating
    /// system's CSPRNG (through `rand`'s thread-local ChaCha generator, seeded from it).
    pub fn generate() -> Code {
        let mut rng = rand::rng();
        let code = (0..GENERATED_LEN)
            .map(|_| char::from(GENERATED_ALPHABET[rng.random_range(0..GENERATED_ALPHABET.len())]))
            .collect();
        Code(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters a code may hold, in either case on input.
pub(crate) fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_code_is_stored_upper_case() {
        assert_eq!(Code::parse("summer_25-x").unwrap().as_str(), "SUMMER_25-X");
    }

    #[test]
    fn a_code_must_be_4_to_32_characters() {
        assert!(Code::parse("ABC").is_err());
        assert!(Code::parse("ABCD").is_ok());
        assert!(Code::parse(&"A".repeat(32)).is_ok());
        assert!(Code::parse(&"A".repeat(33)).is_err());
        assert!(Code::parse("").is_err());
    }

    #[test]
    fn a_code_refuses_characters_outside_its_alphabet() {
        for bad in ["SUMMER 25", "SUMMER%", "ÉTÉ2026", "SUM.MER", "ABC\n", "straße1"] {
            let err = Code::parse(bad).unwrap_err();
            assert_eq!(err.param(), Some("code"), "{bad}");
        }
    }

    #[test]
    fn generated_codes_are_12_characters_of_the_unambiguous_alphabet() {
        for _ in 0..1000 {
            let code = Code::generate();
            assert_eq!(code.as_str().len(), 12);
            assert!(code.as_str().bytes().all(|b| GENERATED_ALPHABET.contains(&b)));
            assert_eq!(Code::parse(code.as_str()).unwrap(), code);
        }
    }

    #[test]
    fn generated_codes_do_not_repeat() {
        let codes: std::collections::HashSet<_> = (0..10_000).map(|_| Code::generate()).collect();
        assert_eq!(codes.len(), 10_000);
    }

    proptest! {
        #[test]
        fn any_code_of_the_alphabet_parses_to_its_upper_case(s in "[A-Za-z0-9_-]{4,32}") {
            let code = Code::parse(&s).unwrap();
            prop_assert_eq!(code.as_str(), s.to_ascii_uppercase());
        }

        #[test]
        fn parsing_never_panics_and_accepts_only_valid_codes(s in "\\PC{0,40}") {
            if let Ok(code) = Code::parse(&s) {
                prop_assert!((4..=32).contains(&code.as_str().len()));
                prop_assert!(code.as_str().chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_'));
            }
        }
    }
}
