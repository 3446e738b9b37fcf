//! The audit trail of a promo code: `AuditEvent` and the page query of its events.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::expiry::format_timestamp;
use super::list::parse_limit;
use super::{Code, DomainError};

/// One recorded change: who (the token's `sub`), when, what.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: i64,
    pub code: Code,
    /// `created`, `updated` or `redeemed`.
    pub action: String,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// For `created`, the fields as created; otherwise `{"field": {"from": .., "to": ..}}`
    /// (a redemption also names its `order_id`).
    pub changes: serde_json::Value,
}

impl Serialize for AuditEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            id: String,
            code: &'a str,
            action: &'a str,
            sub: &'a str,
            at: String,
            changes: &'a serde_json::Value,
        }
        Json {
            id: self.id.to_string(),
            code: self.code.as_str(),
            action: &self.action,
            sub: &self.actor,
            at: format_timestamp(self.at),
            changes: &self.changes,
        }
        .serialize(serializer)
    }
}

/// A page request of `GET /promo-codes/{code}/events`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    pub(crate) limit: u32,
    pub(crate) after_id: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    c: String,
    i: i64,
}

impl EventsQuery {
    /// Parses `limit` and `cursor`; a cursor is bound to the code it was issued for.
    pub fn parse<'a>(
        code: &Code,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<EventsQuery, DomainError> {
        let mut limit = None;
        let mut cursor = None;
        for (name, value) in params {
            let slot = match name {
                "limit" => &mut limit,
                "cursor" => &mut cursor,
                other => {
                    return Err(DomainError::malformed(Some(other), format!("unknown query parameter {other:?}")));
                }
            };
            if slot.replace(value).is_some() {
                return Err(DomainError::malformed(
                    Some(name),
                    format!("query parameter {name:?} appears more than once"),
                ));
            }
        }
        let limit = parse_limit(limit)?;
        let after_id = cursor
            .map(|text| {
                let bad = || DomainError::malformed(Some("cursor"), "cursor is not one this API issued for this code");
                let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
                let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
                if wire.v != 1 || wire.c != code.as_str() || wire.i < 0 {
                    return Err(bad());
                }
                Ok(wire.i)
            })
            .transpose()?;
        Ok(EventsQuery { limit, after_id })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn cursor_after(code: &Code, last: &AuditEvent) -> String {
        let wire = Wire { v: 1, c: code.to_string(), i: last.id };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(c: &str) -> Code {
        Code::parse(c).unwrap()
    }

    #[test]
    fn a_cursor_is_bound_to_its_code() {
        let event = AuditEvent {
            id: 7,
            code: code("SUMMER25"),
            action: "created".into(),
            actor: "admin".into(),
            at: Utc::now(),
            changes: serde_json::json!({}),
        };
        let cursor = EventsQuery::cursor_after(&code("SUMMER25"), &event);
        let q = EventsQuery::parse(&code("SUMMER25"), [("cursor", cursor.as_str())]).unwrap();
        assert_eq!(q.after_id, Some(7));
        assert!(EventsQuery::parse(&code("WINTER25"), [("cursor", cursor.as_str())]).is_err());
        assert!(EventsQuery::parse(&code("SUMMER25"), [("cursor", "garbage")]).is_err());
    }

    #[test]
    fn limit_is_1_to_100() {
        assert_eq!(EventsQuery::parse(&code("ABCD"), []).unwrap().limit, 20);
        assert!(matches!(EventsQuery::parse(&code("ABCD"), [("limit", "0")]), Err(DomainError::Invalid { .. })));
        assert!(matches!(EventsQuery::parse(&code("ABCD"), [("limit", "x")]), Err(DomainError::Malformed { .. })));
        assert!(matches!(EventsQuery::parse(&code("ABCD"), [("sort", "x")]), Err(DomainError::Malformed { .. })));
    }
}
