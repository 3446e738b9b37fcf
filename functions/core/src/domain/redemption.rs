//! Redemptions: `OrderId`, the `Redemption` a client gets back, and why a code cannot be used.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::expiry::format_timestamp;
use super::{Code, Discount, DomainError};

const ORDER_ID_MAX: usize = 128;

/// The caller's order a code is redeemed for: 1 to 128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(input: &str) -> Result<OrderId, DomainError> {
        let len = input.chars().count();
        if !(1..=ORDER_ID_MAX).contains(&len) {
            return Err(DomainError::invalid(
                "order_id",
                format!("order_id must be 1 to {ORDER_ID_MAX} characters long, got {len}"),
            ));
        }
        if super::text::has_control_characters(input) {
            return Err(DomainError::invalid("order_id", "order_id must not contain control characters"));
        }
        Ok(OrderId(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One use of a code for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub id: String,
    pub code: Code,
    pub order_id: OrderId,
    pub discount: Discount,
    pub redeemed_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct RedemptionJson<'a> {
    id: &'a str,
    code: &'a str,
    order_id: &'a str,
    discount_percentage: Box<RawValue>,
    redeemed_at: String,
}

impl Serialize for Redemption {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let discount = RawValue::from_string(self.discount.to_json_number()).map_err(serde::ser::Error::custom)?;
        RedemptionJson {
            id: &self.id,
            code: self.code.as_str(),
            order_id: self.order_id.as_str(),
            discount_percentage: discount,
            redeemed_at: format_timestamp(self.redeemed_at),
        }
        .serialize(serializer)
    }
}

/// Why the owner cannot use a code now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Expired,
    Inactive,
    Exhausted,
}

impl Unusable {
    pub fn reason(self) -> &'static str {
        match self {
            Unusable::Expired => "expired",
            Unusable::Inactive => "inactive",
            Unusable::Exhausted => "exhausted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_id_is_1_to_128_characters_without_control_characters() {
        assert!(OrderId::parse("order-42").is_ok());
        assert!(OrderId::parse(&"x".repeat(128)).is_ok());
        for bad in [String::new(), "x".repeat(129), "a\nb".into(), "\u{0}".into()] {
            assert_eq!(OrderId::parse(&bad).unwrap_err().param(), Some("order_id"));
        }
    }
}
