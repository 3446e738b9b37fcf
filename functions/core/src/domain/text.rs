//! `Owner` and `Description`: the two free-text fields of a promo code.

use std::fmt;

use super::DomainError;

const OWNER_MAX: usize = 255;

/// Whether text holds a control character: Unicode's Cc category (U+0000-U+001F, U+007F-U+009F).
/// The migrations' CHECK constraints use the same class, `[\x01-\x1f\x7f-\x9f]` (PostgreSQL text
/// cannot hold U+0000 at all); a test holds the two to one another.
pub fn has_control_characters(text: &str) -> bool {
    text.chars().any(char::is_control)
}
const DESCRIPTION_MAX: usize = 500;

/// The JWT `sub` of the only user who may use a code: 1 to 255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    pub fn parse(input: &str) -> Result<Owner, DomainError> {
        Self::parse_as("owner", input)
    }

    /// Parses an owner read from somewhere other than the `owner` field (a filter, a token).
    pub fn parse_as(param: &str, input: &str) -> Result<Owner, DomainError> {
        let len = input.chars().count();
        if !(1..=OWNER_MAX).contains(&len) {
            return Err(DomainError::invalid(
                param,
                format!("{param} must be 1 to {OWNER_MAX} characters long, got {len}"),
            ));
        }
        if has_control_characters(input) {
            return Err(DomainError::invalid(param, format!("{param} must not contain control characters")));
        }
        Ok(Owner(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a promo code is for: at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(input: &str) -> Result<Description, DomainError> {
        let len = input.chars().count();
        if len > DESCRIPTION_MAX {
            return Err(DomainError::invalid(
                "description",
                format!("description must be at most {DESCRIPTION_MAX} characters long, got {len}"),
            ));
        }
        if has_control_characters(input) {
            return Err(DomainError::invalid("description", "description must not contain control characters"));
        }
        Ok(Description(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_owner_is_1_to_255_characters() {
        assert!(Owner::parse("").is_err());
        assert!(Owner::parse("u").is_ok());
        assert!(Owner::parse(&"é".repeat(255)).is_ok());
        assert!(Owner::parse(&"é".repeat(256)).is_err());
    }

    #[test]
    fn an_owner_has_no_control_characters() {
        for bad in ["user\n1", "user\u{0}", "\u{7f}user", "a\u{9f}b"] {
            assert_eq!(Owner::parse(bad).unwrap_err().param(), Some("owner"));
        }
        assert!(Owner::parse("auth0|5f7c8ec7c33c6c004bbafe82").is_ok());
    }

    #[test]
    fn a_description_has_no_control_characters_nul_included() {
        for bad in ["a\u{0}b", "line\nbreak", "tab\t", "\u{85}"] {
            assert_eq!(Description::parse(bad).unwrap_err().param(), Some("description"), "{bad:?}");
        }
        assert!(Description::parse("Été 25 % \u{a0}— summer").is_ok());
    }

    #[test]
    fn a_description_is_at_most_500_characters() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"ü".repeat(500)).is_ok());
        let err = Description::parse(&"a".repeat(501)).unwrap_err();
        assert_eq!(err.param(), Some("description"));
    }

    proptest! {
        #[test]
        fn an_owner_parses_exactly_when_its_rules_hold(s in "\\PC{0,300}|[\\x00-\\x7f]{0,10}") {
            let len = s.chars().count();
            let ok = (1..=255).contains(&len) && !s.chars().any(char::is_control);
            prop_assert_eq!(Owner::parse(&s).is_ok(), ok);
        }
    }
}
