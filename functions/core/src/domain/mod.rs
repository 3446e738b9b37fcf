//! The promo-code domain: types that parse, never half-valid.
//!
//! Every rule of CONTRACT.md "The promo code" and "List" lives here, once. A value of one of
//! these types is valid by construction: fields are private and constructors return `Result`.

mod code;
mod cursor;
mod decimal;
mod discount;
mod error;
mod events;
mod expiry;
mod list;
mod promo_code;
mod redemption;
mod text;

pub use code::Code;
pub use cursor::Cursor;
pub(crate) use cursor::SortValue;
pub use discount::Discount;
pub use error::DomainError;
pub use events::{AuditEvent, EventsQuery};
pub use expiry::{Expiry, format_timestamp};
pub use list::{CodePrefix, Filters, ListQuery, SortDirection, SortKey, SortOrder, Status};
pub use promo_code::{MaxRedemptions, NewPromoCode, PromoCode, PromoCodePatch};
pub use redemption::{OrderId, Redemption, Unusable};
pub use text::{Description, Owner, has_control_characters};
