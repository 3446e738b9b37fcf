//! `Cursor`: the opaque position of a page in a list, bound to the sort and filters it was made for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::expiry::in_rfc3339_years;
use super::list::{Filters, SortKey, SortOrder};
use super::{Code, DomainError};

const VERSION: u8 = 1;

/// The sort value of the last row of a page; which variant depends on the sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortValue {
    /// A timestamp in microseconds since the epoch, PostgreSQL's own precision.
    Micros(i64),
    BasisPoints(i32),
    /// Sorting by code: the code is the whole key.
    CodeOnly,
}

/// Where the next page starts: strictly after (sort value, code) in the sort's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CursorKey {
    pub(crate) value: SortValue,
    pub(crate) code: Code,
}

/// Encodes and decodes cursors. A cursor names its sort and carries a fingerprint of the
/// filters, so reusing it with another sort or other filters is refused instead of silently
/// skipping or repeating rows.
pub struct Cursor;

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    s: String,
    f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<i64>,
    c: String,
}

impl Cursor {
    pub(crate) fn encode(sort: SortOrder, filters: &Filters, key: &CursorKey) -> String {
        let k = match key.value {
            SortValue::Micros(v) => Some(v),
            SortValue::BasisPoints(v) => Some(i64::from(v)),
            SortValue::CodeOnly => None,
        };
        let wire = Wire { v: VERSION, s: sort.to_string(), f: fingerprint(filters), k, c: key.code.to_string() };
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(text: &str, sort: SortOrder, filters: &Filters) -> Result<CursorKey, DomainError> {
        let bad = || DomainError::malformed(Some("cursor"), "cursor is not one this API issued");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if wire.v != VERSION {
            return Err(bad());
        }
        if wire.s != sort.to_string() {
            return Err(DomainError::malformed(
                Some("cursor"),
                format!(
                    "cursor was issued for sort {:?}, not {:?}; start again without a cursor",
                    wire.s,
                    sort.to_string()
                ),
            ));
        }
        if wire.f != fingerprint(filters) {
            return Err(DomainError::malformed(
                Some("cursor"),
                "cursor was issued for other filters; start again without a cursor",
            ));
        }
        let code = Code::parse(&wire.c).map_err(|_| bad())?;
        let value = match (sort.key, wire.k) {
            // Only instants the API itself can hold: far outside them, PostgreSQL refuses the
            // bound value and the list would be a 500.
            (SortKey::CreatedAt | SortKey::ExpiresAt, Some(v))
                if chrono::DateTime::from_timestamp_micros(v).is_some_and(in_rfc3339_years) =>
            {
                SortValue::Micros(v)
            }
            (SortKey::Discount, Some(v)) => SortValue::BasisPoints(i32::try_from(v).map_err(|_| bad())?),
            (SortKey::Code, None) => SortValue::CodeOnly,
            _ => return Err(bad()),
        };
        Ok(CursorKey { value, code })
    }
}

fn fingerprint(filters: &Filters) -> String {
    let digest = Sha256::digest(filters.canonical().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ListQuery;
    use proptest::prelude::*;

    fn key(code: &str) -> CursorKey {
        CursorKey { value: SortValue::Micros(1_780_000_000_000_000), code: Code::parse(code).unwrap() }
    }

    #[test]
    fn a_cursor_decodes_to_the_key_it_was_made_from() {
        let sort = SortOrder::default();
        let filters = Filters::default();
        let text = Cursor::encode(sort, &filters, &key("SUMMER25"));
        assert_eq!(Cursor::decode(&text, sort, &filters).unwrap(), key("SUMMER25"));
    }

    #[test]
    fn a_cursor_reused_with_another_sort_is_refused() {
        let filters = Filters::default();
        let text = Cursor::encode(SortOrder::parse("-created_at").unwrap(), &filters, &key("SUMMER25"));
        let err = Cursor::decode(&text, SortOrder::parse("created_at").unwrap(), &filters).unwrap_err();
        assert!(matches!(err, DomainError::Malformed { .. }));
        assert!(err.to_string().contains("sort"), "{err}");
    }

    #[test]
    fn a_cursor_reused_with_other_filters_is_refused() {
        let sort = SortOrder::default();
        let mine = ListQuery::parse([("owner", "alice")]).unwrap();
        let text = Cursor::encode(sort, &mine.filters, &key("SUMMER25"));
        let theirs = ListQuery::parse([("owner", "bob")]).unwrap();
        assert!(Cursor::decode(&text, sort, &theirs.filters).is_err());
        assert!(Cursor::decode(&text, sort, &mine.filters).is_ok());
    }

    #[test]
    fn a_cursor_for_a_sort_key_must_carry_that_kind_of_value() {
        let sort = SortOrder::parse("code").unwrap();
        let filters = Filters::default();
        let text = Cursor::encode(sort, &filters, &key("SUMMER25"));
        // Same sort name, but a value where a code sort has none: hand-crafted, refused.
        assert!(Cursor::decode(&text, sort, &filters).is_err());
    }

    proptest! {
        #[test]
        fn tampered_cursors_are_errors_never_panics(s in "[A-Za-z0-9_-]{0,120}|\\PC{0,60}") {
            let _ = Cursor::decode(&s, SortOrder::default(), &Filters::default());
        }

        #[test]
        fn flipping_any_character_of_a_cursor_never_panics(pos in 0usize..200, c in "[A-Za-z0-9_-]") {
            let sort = SortOrder::default();
            let filters = Filters::default();
            let mut text: Vec<char> = Cursor::encode(sort, &filters, &key("SUMMER25")).chars().collect();
            let i = pos % text.len();
            text[i] = c.chars().next().unwrap();
            let tampered: String = text.into_iter().collect();
            let _ = Cursor::decode(&tampered, sort, &filters);
        }
    }
}
