//! The promo code as stored and shown, and the two ways to change it: `NewPromoCode` (create)
//! and `PromoCodePatch` (update), both parsed straight from a request body.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::expiry::format_timestamp;
use super::{Code, Description, Discount, DomainError, Expiry, Owner, Unusable};

/// A cap on how many times a code may be redeemed: an integer of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaxRedemptions(i32);

impl MaxRedemptions {
    pub fn new(value: i64) -> Result<MaxRedemptions, DomainError> {
        if !(1..=i64::from(i32::MAX)).contains(&value) {
            return Err(DomainError::invalid(
                "max_redemptions",
                format!("max_redemptions must be null or an integer from 1 to {}, got {value}", i32::MAX),
            ));
        }
        Ok(MaxRedemptions(value as i32))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A promo code as the store holds it and the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoCode {
    pub code: Code,
    pub owner: Owner,
    pub discount: Discount,
    pub expires_at: Expiry,
    pub description: Option<Description>,
    pub active: bool,
    pub max_redemptions: Option<MaxRedemptions>,
    pub times_redeemed: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl PromoCode {
    /// Why the owner cannot use this code at `now`, if they cannot.
    pub fn unusable(&self, now: DateTime<Utc>) -> Option<Unusable> {
        if self.expires_at.is_expired(now) {
            Some(Unusable::Expired)
        } else if !self.active {
            Some(Unusable::Inactive)
        } else if self.max_redemptions.is_some_and(|max| self.times_redeemed >= max.get()) {
            Some(Unusable::Exhausted)
        } else {
            None
        }
    }

    /// The fields an admin sets, as the API shows them: what the audit trail records.
    pub fn audited_fields(&self) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = json.as_object_mut() {
            for read_only in ["code", "times_redeemed", "created_at", "updated_at", "version"] {
                object.remove(read_only);
            }
        }
        json
    }

    /// The `ETag` of this version: the version number, quoted.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// The wire shape of a promo code (CONTRACT.md "The promo code").
#[derive(Serialize)]
struct PromoCodeJson<'a> {
    code: &'a str,
    owner: &'a str,
    discount_percentage: Box<RawValue>,
    expires_at: String,
    description: Option<&'a str>,
    active: bool,
    max_redemptions: Option<i32>,
    times_redeemed: i32,
    created_at: String,
    updated_at: String,
    version: i32,
}

impl Serialize for PromoCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The exact decimal text goes out as a JSON number, so 12.34 never becomes 12.339999.
        let discount = RawValue::from_string(self.discount.to_json_number()).map_err(serde::ser::Error::custom)?;
        PromoCodeJson {
            code: self.code.as_str(),
            owner: self.owner.as_str(),
            discount_percentage: discount,
            expires_at: format_timestamp(self.expires_at.at()),
            description: self.description.as_ref().map(Description::as_str),
            active: self.active,
            max_redemptions: self.max_redemptions.map(MaxRedemptions::get),
            times_redeemed: self.times_redeemed,
            created_at: format_timestamp(self.created_at),
            updated_at: format_timestamp(self.updated_at),
            version: self.version,
        }
        .serialize(serializer)
    }
}

/// Fields the server sets; a client may never send them.
const READ_ONLY: [&str; 4] = ["times_redeemed", "created_at", "updated_at", "version"];

/// What a create request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPromoCode {
    pub code: Code,
    pub owner: Owner,
    pub discount: Discount,
    pub expires_at: Expiry,
    pub description: Option<Description>,
    pub active: bool,
    pub max_redemptions: Option<MaxRedemptions>,
    /// The client sent no `code`: it was generated, and may be generated again on a collision.
    pub code_generated: bool,
}

impl NewPromoCode {
    /// Parses a create body. `code` omitted: a fresh one is generated.
    pub fn from_json(body: &[u8], now: DateTime<Utc>) -> Result<NewPromoCode, DomainError> {
        let mut fields = parse_object(body)?;
        let (code, code_generated) = match fields.remove("code") {
            Some(raw) => (Code::parse(&string(&raw, "code")?)?, false),
            None => (Code::generate(), true),
        };
        let owner = Owner::parse(&string(&required(&mut fields, "owner")?, "owner")?)?;
        let discount =
            Discount::parse_json_number("discount_percentage", required(&mut fields, "discount_percentage")?.get())?;
        let expires_at = Expiry::parse_future(&string(&required(&mut fields, "expires_at")?, "expires_at")?, now)?;
        let description = match fields.remove("description") {
            Some(raw) => nullable_string(&raw, "description")?.map(|d| Description::parse(&d)).transpose()?,
            None => None,
        };
        let active = match fields.remove("active") {
            Some(raw) => boolean(&raw, "active")?,
            None => true,
        };
        let max_redemptions = match fields.remove("max_redemptions") {
            Some(raw) => max_redemptions(&raw)?,
            None => None,
        };
        refuse_leftovers(fields)?;
        Ok(NewPromoCode { code, owner, discount, expires_at, description, active, max_redemptions, code_generated })
    }
}

/// What an update request asks to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromoCodePatch {
    pub owner: Option<Owner>,
    pub discount: Option<Discount>,
    /// Any time is accepted here; the store refuses one not after `created_at`.
    pub expires_at: Option<Expiry>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<Description>>,
    pub active: Option<bool>,
    /// `Some(None)` makes the code unlimited.
    pub max_redemptions: Option<Option<MaxRedemptions>>,
}

impl PromoCodePatch {
    /// Parses a PATCH body: at least one field, none unknown or read-only, `code` immutable.
    pub fn from_json(body: &[u8]) -> Result<PromoCodePatch, DomainError> {
        let mut fields = parse_object(body)?;
        if fields.is_empty() {
            return Err(DomainError::invalid("body", "a PATCH must change at least one field"));
        }
        if fields.contains_key("code") {
            return Err(DomainError::invalid("code", "code is immutable; create a new promo code instead"));
        }
        let mut patch = PromoCodePatch::default();
        if let Some(raw) = fields.remove("owner") {
            patch.owner = Some(Owner::parse(&string(&raw, "owner")?)?);
        }
        if let Some(raw) = fields.remove("discount_percentage") {
            patch.discount = Some(Discount::parse_json_number("discount_percentage", raw.get())?);
        }
        if let Some(raw) = fields.remove("expires_at") {
            patch.expires_at = Some(Expiry::parse(&string(&raw, "expires_at")?)?);
        }
        if let Some(raw) = fields.remove("description") {
            patch.description =
                Some(nullable_string(&raw, "description")?.map(|d| Description::parse(&d)).transpose()?);
        }
        if let Some(raw) = fields.remove("active") {
            patch.active = Some(boolean(&raw, "active")?);
        }
        if let Some(raw) = fields.remove("max_redemptions") {
            patch.max_redemptions = Some(max_redemptions(&raw)?);
        }
        refuse_leftovers(fields)?;
        Ok(patch)
    }
}

type Fields = BTreeMap<String, Box<RawValue>>;

/// A request body as its top-level fields, each kept as raw JSON text so numbers stay exact.
fn parse_object(body: &[u8]) -> Result<Fields, DomainError> {
    serde_json::from_slice(body)
        .map_err(|e| DomainError::malformed(None, format!("the request body must be a JSON object: {e}")))
}

fn required(fields: &mut Fields, name: &str) -> Result<Box<RawValue>, DomainError> {
    fields.remove(name).ok_or_else(|| DomainError::invalid(name, format!("{name} is required")))
}

fn string(raw: &RawValue, name: &str) -> Result<String, DomainError> {
    serde_json::from_str(raw.get()).map_err(|_| DomainError::invalid(name, format!("{name} must be a string")))
}

fn nullable_string(raw: &RawValue, name: &str) -> Result<Option<String>, DomainError> {
    serde_json::from_str(raw.get()).map_err(|_| DomainError::invalid(name, format!("{name} must be a string or null")))
}

fn boolean(raw: &RawValue, name: &str) -> Result<bool, DomainError> {
    serde_json::from_str(raw.get()).map_err(|_| DomainError::invalid(name, format!("{name} must be true or false")))
}

fn max_redemptions(raw: &RawValue) -> Result<Option<MaxRedemptions>, DomainError> {
    let value: Option<i64> = serde_json::from_str(raw.get()).map_err(|_| {
        DomainError::invalid("max_redemptions", "max_redemptions must be null or an integer of at least 1")
    })?;
    value.map(MaxRedemptions::new).transpose()
}

fn refuse_leftovers(fields: Fields) -> Result<(), DomainError> {
    match fields.keys().next() {
        None => Ok(()),
        Some(name) if READ_ONLY.contains(&name.as_str()) => {
            Err(DomainError::invalid(name, format!("{name} is read-only")))
        }
        Some(name) => Err(DomainError::invalid(name, format!("unknown field {name:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn create(body: &str) -> Result<NewPromoCode, DomainError> {
        NewPromoCode::from_json(body.as_bytes(), now())
    }

    fn param_of(result: Result<impl std::fmt::Debug, DomainError>) -> String {
        result.unwrap_err().param().unwrap_or("<none>").to_owned()
    }

    const VALID: &str = r#"{"code":"summer25","owner":"user-123","discount_percentage":12.5,"expires_at":"2026-12-31T23:59:59Z","description":"Summer campaign"}"#;

    #[test]
    fn a_create_body_parses_into_a_new_promo_code() {
        let new = create(VALID).unwrap();
        assert_eq!(new.code.as_str(), "SUMMER25");
        assert_eq!(new.owner.as_str(), "user-123");
        assert_eq!(new.discount.basis_points(), 1250);
        assert_eq!(new.description.unwrap().as_str(), "Summer campaign");
        assert!(new.active);
        assert_eq!(new.max_redemptions, None);
    }

    #[test]
    fn a_create_without_code_gets_a_generated_one() {
        let new = create(r#"{"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(new.code.as_str().len(), 12);
        assert!(new.code_generated);
        assert!(!create(VALID).unwrap().code_generated);
    }

    #[test]
    fn a_create_names_each_missing_required_field() {
        assert_eq!(param_of(create(r#"{"discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z"}"#)), "owner");
        assert_eq!(param_of(create(r#"{"owner":"u","expires_at":"2027-01-01T00:00:00Z"}"#)), "discount_percentage");
        assert_eq!(param_of(create(r#"{"owner":"u","discount_percentage":5}"#)), "expires_at");
    }

    #[test]
    fn a_create_refuses_wrong_types_with_the_field_named() {
        let cases = [
            (r#"{"owner":5,"discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z"}"#, "owner"),
            (r#"{"owner":"u","discount_percentage":"5","expires_at":"2027-01-01T00:00:00Z"}"#, "discount_percentage"),
            (r#"{"owner":"u","discount_percentage":5,"expires_at":1}"#, "expires_at"),
            (r#"{"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z","active":"yes"}"#, "active"),
            (
                r#"{"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z","max_redemptions":0}"#,
                "max_redemptions",
            ),
            (
                r#"{"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z","max_redemptions":1.5}"#,
                "max_redemptions",
            ),
            (r#"{"code":null,"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z"}"#, "code"),
        ];
        for (body, param) in cases {
            assert_eq!(param_of(create(body)), param, "{body}");
        }
    }

    #[test]
    fn a_create_refuses_a_past_expiry() {
        let body = r#"{"owner":"u","discount_percentage":5,"expires_at":"2026-06-01T09:59:59Z"}"#;
        assert_eq!(param_of(create(body)), "expires_at");
    }

    #[test]
    fn a_create_refuses_unknown_and_read_only_fields() {
        let unknown = r#"{"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z","colour":"red"}"#;
        assert_eq!(param_of(create(unknown)), "colour");
        for field in READ_ONLY {
            let body =
                format!(r#"{{"owner":"u","discount_percentage":5,"expires_at":"2027-01-01T00:00:00Z","{field}":1}}"#);
            let err = create(&body).unwrap_err();
            assert_eq!(err.param(), Some(field));
            assert!(err.to_string().contains("read-only"));
        }
    }

    #[test]
    fn malformed_json_is_malformed_not_invalid() {
        for body in ["", "{", "[1]", "\"x\"", "null", "{\"owner\":}"] {
            assert!(matches!(create(body), Err(DomainError::Malformed { .. })), "{body:?}");
        }
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patch = PromoCodePatch::from_json(br#"{"discount_percentage":20,"description":null}"#).unwrap();
        assert_eq!(patch.discount.unwrap().basis_points(), 2000);
        assert_eq!(patch.description, Some(None));
        assert_eq!(patch.owner, None);
        assert_eq!(patch.expires_at, None);
        assert_eq!(patch.max_redemptions, None);
    }

    #[test]
    fn a_patch_may_end_a_campaign_now() {
        let patch =
            PromoCodePatch::from_json(br#"{"expires_at":"2020-01-01T00:00:00Z","max_redemptions":null}"#).unwrap();
        assert!(patch.expires_at.is_some());
        assert_eq!(patch.max_redemptions, Some(None));
    }

    #[test]
    fn an_empty_patch_a_code_change_and_read_only_fields_are_refused() {
        assert_eq!(param_of(PromoCodePatch::from_json(b"{}")), "body");
        assert_eq!(param_of(PromoCodePatch::from_json(br#"{"code":"OTHER1"}"#)), "code");
        assert_eq!(param_of(PromoCodePatch::from_json(br#"{"version":3}"#)), "version");
        assert_eq!(param_of(PromoCodePatch::from_json(br#"{"owner":null}"#)), "owner");
        assert_eq!(param_of(PromoCodePatch::from_json(br#"{"bogus":true}"#)), "bogus");
    }

    #[test]
    fn a_promo_code_renders_the_contract_shape() {
        let code = PromoCode {
            code: Code::parse("SUMMER25").unwrap(),
            owner: Owner::parse("user-123").unwrap(),
            discount: Discount::from_basis_points(1234).unwrap(),
            expires_at: Expiry::parse("2026-12-31T23:59:59Z").unwrap(),
            description: None,
            active: true,
            max_redemptions: Some(MaxRedemptions::new(3).unwrap()),
            times_redeemed: 0,
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(
            json,
            r#"{"code":"SUMMER25","owner":"user-123","discount_percentage":12.34,"expires_at":"2026-12-31T23:59:59Z","description":null,"active":true,"max_redemptions":3,"times_redeemed":0,"created_at":"2026-06-01T10:00:00Z","updated_at":"2026-06-01T10:00:00Z","version":1}"#
        );
        assert_eq!(code.etag(), "\"1\"");
    }
}
