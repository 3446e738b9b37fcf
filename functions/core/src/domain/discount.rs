//! `Discount`: a percentage greater than 0 and at most 100, with at most two decimals, held
//! exactly as basis points.

use super::DomainError;
use super::decimal::{DecimalError, MAX_EXPONENT, format_hundredths, parse_hundredths};

/// 100 % in basis points.
const MAX_BASIS_POINTS: i64 = 10_000;

/// A discount percentage, in basis points (12.5 % is 1250): exact, no float drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Discount(i32);

impl Discount {
    /// Parses the text of a JSON number, as it appears in a request body.
    pub fn parse_json_number(param: &str, text: &str) -> Result<Discount, DomainError> {
        let hundredths = parse_percentage(param, text)?;
        Self::from_basis_points(hundredths).map_err(|_| {
            DomainError::invalid(param, format!("{param} must be greater than 0 and at most 100, got {text}"))
        })
    }

    /// A discount from basis points, as the database holds it.
    pub fn from_basis_points(bp: i64) -> Result<Discount, DomainError> {
        if bp <= 0 || bp > MAX_BASIS_POINTS {
            return Err(DomainError::invalid(
                "discount_percentage",
                format!("discount_percentage must be greater than 0 and at most 100, got {}", format_hundredths(bp)),
            ));
        }
        Ok(Discount(bp as i32))
    }

    pub fn basis_points(self) -> i32 {
        self.0
    }

    /// The percentage as the exact decimal text of a JSON number: 1250 -> `12.5`.
    pub fn to_json_number(self) -> String {
        format_hundredths(i64::from(self.0))
    }
}

/// Parses a percentage filter bound (`min_discount`, `max_discount`): 0 to 100 inclusive, in
/// basis points. Unparseable text is malformed (400); a number out of range is invalid (422).
pub(crate) fn parse_percentage_bound(param: &str, text: &str) -> Result<i32, DomainError> {
    let hundredths = match parse_hundredths(text) {
        Err(DecimalError::NotANumber) => {
            return Err(DomainError::malformed(Some(param), format!("{param} must be a number, got {text:?}")));
        }
        other => other,
    }
    .map_err(|e| percentage_error(param, text, e))?;
    if !(0..=MAX_BASIS_POINTS).contains(&hundredths) {
        return Err(DomainError::invalid(param, format!("{param} must be between 0 and 100, got {text}")));
    }
    Ok(hundredths as i32)
}

fn parse_percentage(param: &str, text: &str) -> Result<i64, DomainError> {
    parse_hundredths(text).map_err(|e| percentage_error(param, text, e))
}

fn percentage_error(param: &str, text: &str, error: DecimalError) -> DomainError {
    match error {
        DecimalError::NotANumber => DomainError::invalid(param, format!("{param} must be a number")),
        DecimalError::TooPrecise => {
            DomainError::invalid(param, format!("{param} must have at most 2 decimals, got {text}"))
        }
        DecimalError::TooLarge => {
            DomainError::invalid(param, format!("{param} must be greater than 0 and at most 100, got {text}"))
        }
        DecimalError::ExponentOutOfRange => DomainError::invalid(
            param,
            format!("{param} has an exponent beyond ±{MAX_EXPONENT}; write the number plainly, such as 12.5"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Discount, DomainError> {
        Discount::parse_json_number("discount_percentage", text)
    }

    #[test]
    fn a_discount_is_held_in_basis_points() {
        assert_eq!(parse("12.5").unwrap().basis_points(), 1250);
        assert_eq!(parse("100").unwrap().basis_points(), 10_000);
        assert_eq!(parse("0.01").unwrap().basis_points(), 1);
        assert_eq!(parse("33.33").unwrap().basis_points(), 3333);
    }

    #[test]
    fn a_discount_must_be_above_0_and_at_most_100() {
        for bad in ["0", "0.00", "-1", "100.01", "101", "1e3"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.param(), Some("discount_percentage"), "{bad}");
        }
    }

    #[test]
    fn a_discount_has_at_most_two_decimals() {
        let err = parse("12.345").unwrap_err();
        assert!(err.to_string().contains("at most 2 decimals"), "{err}");
    }

    #[test]
    fn a_discount_renders_as_the_number_it_was_given() {
        assert_eq!(parse("12.50").unwrap().to_json_number(), "12.5");
        assert_eq!(parse("0.07").unwrap().to_json_number(), "0.07");
        assert_eq!(parse("1e2").unwrap().to_json_number(), "100");
    }

    #[test]
    fn filter_bounds_allow_0_and_tell_garbage_from_out_of_range() {
        assert_eq!(parse_percentage_bound("min_discount", "0"), Ok(0));
        assert_eq!(parse_percentage_bound("min_discount", "99.99"), Ok(9999));
        assert!(matches!(parse_percentage_bound("min_discount", "abc"), Err(DomainError::Malformed { .. })));
        assert!(matches!(parse_percentage_bound("min_discount", "101"), Err(DomainError::Invalid { .. })));
    }

    proptest! {
        #[test]
        fn every_valid_percentage_round_trips(bp in 1i64..=10_000) {
            let d = Discount::from_basis_points(bp).unwrap();
            prop_assert_eq!(parse(&d.to_json_number()).unwrap(), d);
        }

        #[test]
        fn a_float_looking_input_is_never_rounded(whole in 0u32..100, frac in 0u32..1000) {
            let text = format!("{whole}.{frac:03}");
            let result = parse(&text);
            let bp = i64::from(whole) * 100 + i64::from(frac / 10);
            if frac % 10 != 0 {
                prop_assert!(result.is_err());
            } else if bp == 0 {
                prop_assert!(result.is_err());
            } else {
                prop_assert_eq!(result.unwrap().basis_points() as i64, bp);
            }
        }
    }
}
