//! Exact decimal parsing into hundredths, from the text of a JSON number or a query parameter.
//!
//! A discount of 12.34 % must be stored as 1234 basis points, never as whatever an `f64` of 12.34
//! rounds to. So the number is read from its decimal text, digit by digit, with no float at all.

/// Why a decimal text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not a number in JSON's grammar.
    NotANumber,
    /// More than two decimals that are not zero.
    TooPrecise,
    /// Too large to be a percentage at all (the caller checks the exact range).
    TooLarge,
    /// An exponent beyond ±[`MAX_EXPONENT`]: refused rather than applied inexactly.
    ExponentOutOfRange,
}

/// The largest exponent magnitude applied. A body is at most 16 KiB, so a number whose exponent
/// is larger can only be huge or vanishing; refusing it keeps the arithmetic below exact.
pub(crate) const MAX_EXPONENT: i64 = 10_000;

/// Parses a JSON number (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) into hundredths.
pub(crate) fn parse_hundredths(text: &str) -> Result<i64, DecimalError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let negative = bytes.first() == Some(&b'-');
    if negative {
        i += 1;
    }

    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = &text[int_start..i];
    if int_digits.is_empty() || (int_digits.len() > 1 && int_digits.starts_with('0')) {
        return Err(DecimalError::NotANumber);
    }

    let mut frac_digits = "";
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = &text[start..i];
        if frac_digits.is_empty() {
            return Err(DecimalError::NotANumber);
        }
    }

    let mut exponent: i64 = 0;
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        let exp_negative = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let exp_text = &text[start..i];
        if exp_text.is_empty() {
            return Err(DecimalError::NotANumber);
        }
        // Clamping a larger exponent would change the number (125 followed by 9,999 zeros, then
        // e-10001, is 1.25, not 12.5): refuse it instead.
        // (Zero times any power of ten is still exactly zero.)
        let magnitude: Option<i64> = exp_text.parse().ok().filter(|m| *m <= MAX_EXPONENT);
        exponent = match magnitude {
            Some(m) if exp_negative => -m,
            Some(m) => m,
            None => i64::MAX,
        };
    }
    if i != bytes.len() {
        return Err(DecimalError::NotANumber);
    }
    if exponent == i64::MAX {
        let zero = int_digits.bytes().chain(frac_digits.bytes()).all(|b| b == b'0');
        return if zero { Ok(0) } else { Err(DecimalError::ExponentOutOfRange) };
    }

    // value = digits * 10^(exponent - frac_len); hundredths = digits * 10^(exponent - frac_len + 2)
    let digits: String = format!("{int_digits}{frac_digits}");
    let digits = digits.trim_start_matches('0');
    let mut shift = exponent - frac_digits.len() as i64 + 2;
    let mut digits = digits.to_owned();
    while shift < 0 {
        match digits.pop() {
            Some('0') => shift += 1,
            Some(_) => return Err(DecimalError::TooPrecise),
            None => {
                shift = 0;
            }
        }
    }
    if digits.is_empty() {
        return Ok(0);
    }
    if digits.len() as i64 + shift > 15 {
        return Err(DecimalError::TooLarge);
    }
    let mut value: i64 = digits.parse().map_err(|_| DecimalError::NotANumber)?;
    for _ in 0..shift {
        value *= 10;
    }
    Ok(if negative { -value } else { value })
}

/// Renders hundredths as the shortest exact decimal: 1250 -> "12.5", 1000 -> "10", 7 -> "0.07".
pub(crate) fn format_hundredths(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let (whole, frac) = (abs / 100, abs % 100);
    match frac {
        0 => format!("{sign}{whole}"),
        f if f % 10 == 0 => format!("{sign}{whole}.{}", f / 10),
        f => format!("{sign}{whole}.{f:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_exponent_beyond_the_limit_is_refused_not_clamped() {
        let zeros = "0".repeat(9_999);
        assert_eq!(parse_hundredths(&format!("125{zeros}e-10001")), Err(DecimalError::ExponentOutOfRange));
        assert_eq!(parse_hundredths("1e99999999999999999999"), Err(DecimalError::ExponentOutOfRange));
        // Up to the limit, exponents apply exactly.
        assert_eq!(parse_hundredths(&format!("125{zeros}0e-10000")), Ok(12500));
        assert_eq!(parse_hundredths(&format!("125{}e-10000", "0".repeat(9_998))), Ok(125));
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_hundredths("12.5"), Ok(1250));
        assert_eq!(parse_hundredths("12.34"), Ok(1234));
        assert_eq!(parse_hundredths("0.07"), Ok(7));
        assert_eq!(parse_hundredths("100"), Ok(10000));
        assert_eq!(parse_hundredths("12.50"), Ok(1250));
        assert_eq!(parse_hundredths("12.3400000"), Ok(1234));
        assert_eq!(parse_hundredths("1.25e1"), Ok(1250));
        assert_eq!(parse_hundredths("1250E-2"), Ok(1250));
        assert_eq!(parse_hundredths("0"), Ok(0));
        assert_eq!(parse_hundredths("-0"), Ok(0));
        assert_eq!(parse_hundredths("-5"), Ok(-500));
        assert_eq!(parse_hundredths("0e999999999999999999999"), Ok(0));
    }

    #[test]
    fn more_than_two_decimals_are_refused() {
        assert_eq!(parse_hundredths("12.345"), Err(DecimalError::TooPrecise));
        assert_eq!(parse_hundredths("0.001"), Err(DecimalError::TooPrecise));
        assert_eq!(parse_hundredths("1e-3"), Err(DecimalError::TooPrecise));
    }

    #[test]
    fn text_outside_the_json_number_grammar_is_refused() {
        for bad in ["", "-", "+1", "01", "1.", ".5", "1e", "1e+", "12,5", "NaN", "inf", " 1", "1 ", "0x10", "\"12\""] {
            assert_eq!(parse_hundredths(bad), Err(DecimalError::NotANumber), "{bad:?}");
        }
    }

    #[test]
    fn huge_numbers_are_too_large_not_a_panic() {
        assert_eq!(parse_hundredths("1e400"), Err(DecimalError::TooLarge));
        assert_eq!(parse_hundredths(&"9".repeat(50)), Err(DecimalError::TooLarge));
    }

    #[test]
    fn hundredths_format_as_the_shortest_exact_decimal() {
        assert_eq!(format_hundredths(1250), "12.5");
        assert_eq!(format_hundredths(1234), "12.34");
        assert_eq!(format_hundredths(10000), "100");
        assert_eq!(format_hundredths(7), "0.07");
        assert_eq!(format_hundredths(1), "0.01");
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_gives_back_the_same_hundredths(v in -10_000_000i64..10_000_000) {
            prop_assert_eq!(parse_hundredths(&format_hundredths(v)), Ok(v));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "[-+0-9.eE]{0,30}|\\PC{0,20}") {
            let _ = parse_hundredths(&s);
        }

        #[test]
        fn two_decimals_written_any_way_parse_to_the_same_value(whole in 0i64..1000, frac in 0i64..100, zeros in 0usize..5) {
            let text = format!("{whole}.{frac:02}{}", "0".repeat(zeros));
            prop_assert_eq!(parse_hundredths(&text), Ok(whole * 100 + frac));
        }
    }
}
