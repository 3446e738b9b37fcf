//! The one error type of the domain: which input was wrong, and how.

/// Why a piece of input was refused.
///
/// The split mirrors the contract's error table: `Malformed` is input that does not parse at all
/// (400 `invalid_request`), `Invalid` is input that parses but breaks a rule (422
/// `validation_failed`). Both name the offending parameter so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{message}")]
    Invalid { param: String, message: String },
    #[error("{message}")]
    Malformed { param: Option<String>, message: String },
}

impl DomainError {
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid { param: param.to_owned(), message: message.into() }
    }

    pub(crate) fn malformed(param: Option<&str>, message: impl Into<String>) -> Self {
        DomainError::Malformed { param: param.map(str::to_owned), message: message.into() }
    }

    /// The request parameter or body field the error is about, if any.
    pub fn param(&self) -> Option<&str> {
        match self {
            DomainError::Invalid { param, .. } => Some(param),
            DomainError::Malformed { param, .. } => param.as_deref(),
        }
    }
}
