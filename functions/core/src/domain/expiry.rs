//! `Expiry`: when a promo code stops being usable; also the parser for every timestamp the API
//! reads (RFC 3339 with an explicit offset, rendered back in UTC with `Z`).

use chrono::{DateTime, Datelike, SecondsFormat, SubsecRound, Utc};

use super::DomainError;

/// The instant a code expires: usable while `now < expires_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry(DateTime<Utc>);

impl Expiry {
    pub fn parse(input: &str) -> Result<Expiry, DomainError> {
        parse_timestamp(input).map(Expiry).map_err(|message| DomainError::invalid("expires_at", message))
    }

    /// An expiry for a new code: it must lie in the future.
    pub fn parse_future(input: &str, now: DateTime<Utc>) -> Result<Expiry, DomainError> {
        let expiry = Self::parse(input)?;
        if expiry.0 <= now {
            return Err(DomainError::invalid("expires_at", "expires_at must be in the future"));
        }
        Ok(expiry)
    }

    /// An expiry read back from the store, which already enforced the rules.
    pub fn from_stored(at: DateTime<Utc>) -> Expiry {
        Expiry(at)
    }

    pub fn at(self) -> DateTime<Utc> {
        self.0
    }

    pub fn is_expired(self, now: DateTime<Utc>) -> bool {
        now >= self.0
    }
}

/// Parses RFC 3339 with an offset or `Z` (a bare local time is refused), into UTC, to the
/// microsecond: PostgreSQL's precision, so what is stored is exactly what was accepted. The
/// instant must fall in years 0001-9999 once in UTC, the years RFC 3339 can write: an offset
/// can carry `9999-12-31T23:30:00-01:00` into year 10000, which no client could parse back.
pub(crate) fn parse_timestamp(input: &str) -> Result<DateTime<Utc>, String> {
    let at = DateTime::parse_from_rfc3339(input).map(|t| t.with_timezone(&Utc).trunc_subsecs(6)).map_err(|_| {
        format!("must be an RFC 3339 timestamp with an offset, such as 2026-12-31T23:59:59Z, got {input:?}")
    })?;
    if !in_rfc3339_years(at) {
        return Err(format!("must fall in years 0001-9999 once converted to UTC, got {input:?}"));
    }
    Ok(at)
}

/// Whether an instant lies in years 0001-9999 (UTC): every instant the API accepts or renders.
pub(crate) fn in_rfc3339_years(at: DateTime<Utc>) -> bool {
    (1..=9999).contains(&at.year())
}

/// Renders a timestamp as the API shows them all: RFC 3339, UTC, `Z`, fractions only if any.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_offset_is_converted_to_utc() {
        let e = Expiry::parse("2026-12-31T23:59:59+02:00").unwrap();
        assert_eq!(format_timestamp(e.at()), "2026-12-31T21:59:59Z");
    }

    #[test]
    fn a_timestamp_without_an_offset_is_refused() {
        for bad in ["2026-12-31T23:59:59", "2026-12-31", "tomorrow", "", "2026-13-01T00:00:00Z"] {
            assert_eq!(Expiry::parse(bad).unwrap_err().param(), Some("expires_at"), "{bad}");
        }
    }

    #[test]
    fn a_new_code_must_expire_in_the_future() {
        let now = Utc::now();
        let past = format_timestamp(now - chrono::Duration::seconds(1));
        let future = format_timestamp(now + chrono::Duration::days(1));
        assert!(Expiry::parse_future(&past, now).is_err());
        assert!(Expiry::parse_future(&format_timestamp(now), now).is_err());
        assert!(Expiry::parse_future(&future, now).is_ok());
    }

    #[test]
    fn a_code_is_usable_strictly_before_its_expiry() {
        let e = Expiry::parse("2026-06-01T00:00:00Z").unwrap();
        assert!(!e.is_expired(e.at() - chrono::Duration::microseconds(1)));
        assert!(e.is_expired(e.at()));
    }

    #[test]
    fn timestamps_keep_microseconds_as_the_database_does() {
        let e = Expiry::parse("2026-01-01T00:00:00.123456789Z").unwrap();
        assert_eq!(format_timestamp(e.at()), "2026-01-01T00:00:00.123456Z");
    }

    #[test]
    fn fractions_of_a_second_survive_and_whole_seconds_have_none() {
        assert_eq!(
            format_timestamp(Expiry::parse("2026-01-01T00:00:00.250Z").unwrap().at()),
            "2026-01-01T00:00:00.250Z"
        );
        assert_eq!(format_timestamp(Expiry::parse("2026-01-01T00:00:00Z").unwrap().at()), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn an_offset_cannot_carry_an_instant_out_of_years_0001_to_9999() {
        for bad in ["9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"] {
            assert!(parse_timestamp(bad).unwrap_err().contains("0001-9999"), "{bad}");
        }
        for good in ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:30:00+01:00"] {
            assert!(parse_timestamp(good).is_ok(), "{good}");
        }
    }

    proptest! {
        #[test]
        fn a_rendered_timestamp_parses_back_to_the_same_instant(secs in 0i64..8_000_000_000, micros in 0u32..1_000_000) {
            let at = DateTime::from_timestamp(secs, micros * 1000).unwrap();
            prop_assert_eq!(Expiry::parse(&format_timestamp(at)).unwrap().at(), at);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = Expiry::parse(&s);
        }
    }
}
