//! `ListQuery`: the filters, sort, page size and position of `GET /promo-codes`, parsed from the
//! query string.

use std::fmt;

use chrono::{DateTime, Utc};

use super::code::{MAX_LEN, is_code_char};
use super::cursor::{CursorKey, SortValue};
use super::discount::parse_percentage_bound;
use super::expiry::{format_timestamp, parse_timestamp};
use super::{Cursor, DomainError, Owner, PromoCode};

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

/// Which codes a list shows, by their state now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    /// Active and not expired: usable now, redemption limits aside.
    Active,
    /// `expires_at <= now`, whether active or not.
    Expired,
    /// Switched off and not expired.
    Inactive,
    #[default]
    All,
}

impl Status {
    fn parse(input: &str) -> Result<Status, DomainError> {
        match input {
            "active" => Ok(Status::Active),
            "expired" => Ok(Status::Expired),
            "inactive" => Ok(Status::Inactive),
            "all" => Ok(Status::All),
            _ => Err(DomainError::malformed(
                Some("status"),
                format!("unknown status {input:?}; expected one of active, expired, inactive, all"),
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Inactive => "inactive",
            Status::All => "all",
        }
    }
}

/// The column a list is ordered by; ties are always broken by `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    ExpiresAt,
    Discount,
    Code,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::ExpiresAt => "expires_at",
            SortKey::Discount => "discount_percentage",
            SortKey::Code => "code",
        }
    }

    pub const ALL: [SortKey; 4] = [SortKey::CreatedAt, SortKey::ExpiresAt, SortKey::Discount, SortKey::Code];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    Ascending,
    Descending,
}

/// A sort key and its direction, written `created_at` or `-created_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortOrder {
    pub key: SortKey,
    pub direction: SortDirection,
}

impl SortOrder {
    pub fn parse(input: &str) -> Result<SortOrder, DomainError> {
        let (direction, name) = match input.strip_prefix('-') {
            Some(rest) => (SortDirection::Descending, rest),
            None => (SortDirection::Ascending, input),
        };
        let key = SortKey::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            DomainError::malformed(
                Some("sort"),
                format!(
                    "unknown sort {input:?}; expected created_at, expires_at, discount_percentage or code, optionally prefixed with '-'"
                ),
            )
        })?;
        Ok(SortOrder { key, direction })
    }
}

impl Default for SortOrder {
    fn default() -> Self {
        SortOrder { key: SortKey::CreatedAt, direction: SortDirection::Descending }
    }
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.direction == SortDirection::Descending {
            f.write_str("-")?;
        }
        f.write_str(self.key.name())
    }
}

/// The start of a code, upper-cased: 1 to 32 characters of the code alphabet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePrefix(String);

impl CodePrefix {
    fn parse(input: &str) -> Result<CodePrefix, DomainError> {
        let len = input.chars().count();
        if !(1..=MAX_LEN).contains(&len) || !input.chars().all(is_code_char) {
            return Err(DomainError::invalid(
                "code_prefix",
                format!("code_prefix must be 1 to {MAX_LEN} characters of A-Z, 0-9, '-' and '_'"),
            ));
        }
        Ok(CodePrefix(input.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything a list may be narrowed by. All bounds are exclusive except the discount ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filters {
    pub(crate) owner: Option<Owner>,
    pub(crate) status: Status,
    pub(crate) code_prefix: Option<CodePrefix>,
    pub(crate) min_discount_bp: Option<i32>,
    pub(crate) max_discount_bp: Option<i32>,
    pub(crate) expires_after: Option<DateTime<Utc>>,
    pub(crate) expires_before: Option<DateTime<Utc>>,
    pub(crate) created_after: Option<DateTime<Utc>>,
    pub(crate) created_before: Option<DateTime<Utc>>,
}

impl Filters {
    /// A stable text of the filters, so a cursor can tell whether it is reused with others.
    pub(crate) fn canonical(&self) -> String {
        let time = |t: &Option<DateTime<Utc>>| t.map(format_timestamp).unwrap_or_default();
        format!(
            "owner={}\nstatus={}\ncode_prefix={}\nmin_discount={}\nmax_discount={}\nexpires_after={}\nexpires_before={}\ncreated_after={}\ncreated_before={}",
            self.owner.as_ref().map(Owner::as_str).unwrap_or_default(),
            self.status.as_str(),
            self.code_prefix.as_ref().map(CodePrefix::as_str).unwrap_or_default(),
            self.min_discount_bp.map(|v| v.to_string()).unwrap_or_default(),
            self.max_discount_bp.map(|v| v.to_string()).unwrap_or_default(),
            time(&self.expires_after),
            time(&self.expires_before),
            time(&self.created_after),
            time(&self.created_before),
        )
    }
}

/// The `limit` query parameter of every paginated route: 1 to 100, default 20. Text that is not
/// an integer is malformed (400); an integer out of range is invalid (422).
pub(crate) fn parse_limit(value: Option<&str>) -> Result<u32, DomainError> {
    let Some(v) = value else { return Ok(DEFAULT_LIMIT) };
    let n: i64 =
        v.parse().map_err(|_| DomainError::malformed(Some("limit"), format!("limit must be an integer, got {v:?}")))?;
    if !(1..=i64::from(MAX_LIMIT)).contains(&n) {
        return Err(DomainError::invalid("limit", format!("limit must be from 1 to {MAX_LIMIT}, got {n}")));
    }
    Ok(n as u32)
}

/// One page request of `GET /promo-codes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub(crate) filters: Filters,
    pub(crate) sort: SortOrder,
    pub(crate) limit: u32,
    pub(crate) after: Option<CursorKey>,
}

const PARAMS: [&str; 12] = [
    "owner",
    "status",
    "code_prefix",
    "min_discount",
    "max_discount",
    "expires_after",
    "expires_before",
    "created_after",
    "created_before",
    "sort",
    "limit",
    "cursor",
];

impl ListQuery {
    /// Parses the query string's parameters, in the order they came.
    pub fn parse<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ListQuery, DomainError> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (name, value) in params {
            if !PARAMS.contains(&name) {
                return Err(DomainError::malformed(Some(name), format!("unknown query parameter {name:?}")));
            }
            if seen.iter().any(|(n, _)| *n == name) {
                return Err(DomainError::malformed(
                    Some(name),
                    format!("query parameter {name:?} appears more than once"),
                ));
            }
            seen.push((name, value));
        }
        let get = |name: &str| seen.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let time = |name: &str| -> Result<Option<DateTime<Utc>>, DomainError> {
            get(name)
                .map(|v| parse_timestamp(v).map_err(|m| DomainError::malformed(Some(name), format!("{name} {m}"))))
                .transpose()
        };

        let filters = Filters {
            owner: get("owner").map(|v| Owner::parse_as("owner", v)).transpose()?,
            status: get("status").map(Status::parse).transpose()?.unwrap_or_default(),
            code_prefix: get("code_prefix").map(CodePrefix::parse).transpose()?,
            min_discount_bp: get("min_discount").map(|v| parse_percentage_bound("min_discount", v)).transpose()?,
            max_discount_bp: get("max_discount").map(|v| parse_percentage_bound("max_discount", v)).transpose()?,
            expires_after: time("expires_after")?,
            expires_before: time("expires_before")?,
            created_after: time("created_after")?,
            created_before: time("created_before")?,
        };
        if let (Some(min), Some(max)) = (filters.min_discount_bp, filters.max_discount_bp)
            && min > max
        {
            return Err(DomainError::invalid("min_discount", "min_discount must not be greater than max_discount"));
        }

        let sort = get("sort").map(SortOrder::parse).transpose()?.unwrap_or_default();
        let limit = parse_limit(get("limit"))?;
        let after = get("cursor").map(|c| Cursor::decode(c, sort, &filters)).transpose()?;
        Ok(ListQuery { filters, sort, limit, after })
    }

    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    pub fn sort(&self) -> SortOrder {
        self.sort
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The cursor of the page that follows `last`, the last code of this page.
    pub fn cursor_after(&self, last: &PromoCode) -> String {
        let value = match self.sort.key {
            SortKey::CreatedAt => SortValue::Micros(last.created_at.timestamp_micros()),
            SortKey::ExpiresAt => SortValue::Micros(last.expires_at.at().timestamp_micros()),
            SortKey::Discount => SortValue::BasisPoints(last.discount.basis_points()),
            SortKey::Code => SortValue::CodeOnly,
        };
        Cursor::encode(self.sort, &self.filters, &CursorKey { value, code: last.code.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<ListQuery, DomainError> {
        ListQuery::parse(query.iter().copied())
    }

    #[test]
    fn the_defaults_are_all_codes_newest_first_20_a_page() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.filters, Filters::default());
        assert_eq!(q.sort.to_string(), "-created_at");
        assert_eq!(q.limit, 20);
        assert_eq!(q.after, None);
    }

    #[test]
    fn every_sort_parses_in_both_directions() {
        for key in SortKey::ALL {
            for text in [key.name().to_owned(), format!("-{}", key.name())] {
                assert_eq!(parse(&[("sort", &text)]).unwrap().sort.to_string(), text);
            }
        }
    }

    #[test]
    fn an_unknown_sort_or_status_is_malformed() {
        for q in [[("sort", "owner")], [("sort", "--code")], [("status", "ACTIVE")], [("status", "")]] {
            assert!(matches!(parse(&q), Err(DomainError::Malformed { .. })), "{q:?}");
        }
    }

    #[test]
    fn limit_that_does_not_parse_is_malformed_and_out_of_range_is_invalid() {
        assert!(matches!(parse(&[("limit", "ten")]), Err(DomainError::Malformed { .. })));
        assert!(matches!(parse(&[("limit", "0")]), Err(DomainError::Invalid { .. })));
        assert!(matches!(parse(&[("limit", "101")]), Err(DomainError::Invalid { .. })));
        assert!(matches!(parse(&[("limit", "-1")]), Err(DomainError::Invalid { .. })));
        assert_eq!(parse(&[("limit", "100")]).unwrap().limit, 100);
        assert_eq!(parse(&[("limit", "1")]).unwrap().limit, 1);
    }

    #[test]
    fn filters_parse_into_their_types() {
        let q = parse(&[
            ("owner", "user-1"),
            ("status", "active"),
            ("code_prefix", "sum"),
            ("min_discount", "10"),
            ("max_discount", "12.5"),
            ("expires_after", "2026-01-01T00:00:00+01:00"),
            ("created_before", "2026-02-01T00:00:00Z"),
        ])
        .unwrap();
        let f = q.filters;
        assert_eq!(f.owner.unwrap().as_str(), "user-1");
        assert_eq!(f.status, Status::Active);
        assert_eq!(f.code_prefix.unwrap().as_str(), "SUM");
        assert_eq!((f.min_discount_bp, f.max_discount_bp), (Some(1000), Some(1250)));
        assert_eq!(format_timestamp(f.expires_after.unwrap()), "2025-12-31T23:00:00Z");
        assert!(f.created_after.is_none());
    }

    #[test]
    fn bad_filters_name_their_parameter() {
        let cases: [(&str, &str); 6] = [
            ("expires_after", "yesterday"),
            ("created_before", "2026-01-01"),
            ("min_discount", "x"),
            ("max_discount", "101"),
            ("code_prefix", "A B"),
            ("owner", ""),
        ];
        for (name, value) in cases {
            assert_eq!(parse(&[(name, value)]).unwrap_err().param(), Some(name), "{name}={value}");
        }
        assert_eq!(parse(&[("min_discount", "50"), ("max_discount", "10")]).unwrap_err().param(), Some("min_discount"));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_malformed() {
        assert!(matches!(parse(&[("page", "2")]), Err(DomainError::Malformed { .. })));
        assert!(matches!(parse(&[("limit", "2"), ("limit", "3")]), Err(DomainError::Malformed { .. })));
    }
}
