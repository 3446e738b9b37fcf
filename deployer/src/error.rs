//! Why a deployment stopped. An AWS failure keeps the SDK's error as its source, so the
//! service's code, message and request id reach the user (see [`DeployError::report`]).

use aws_smithy_types::error::display::DisplayErrorContext;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An AWS call failed: `what` we were doing, and the SDK's error.
    #[error("{what}")]
    Aws {
        what: String,
        #[source]
        source: Source,
    },
    /// The deployer will not go on: the message says why, and what to change.
    #[error("{0}")]
    Refused(String),
    /// A file could not be read or written.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A function answered, but not what the deployer needs (migrate without its versions).
    #[error("{0}")]
    Function(String),
    /// A bug in the deployer: a value that should be known by now is not.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DeployError {
    /// The whole message: what failed and every cause, the SDK's with its error context
    /// (service code, message, request id).
    pub fn report(&self) -> String {
        match self {
            DeployError::Aws { what, source } => format!("{what}: {}", DisplayErrorContext(source.as_ref())),
            DeployError::Io { what, source } => format!("{what}: {source}"),
            other => other.to_string(),
        }
    }
}

/// Wraps an SDK error with what we were doing.
pub fn aws<E>(what: impl Into<String>) -> impl FnOnce(E) -> DeployError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let what = what.into();
    move |error| DeployError::Aws { what, source: Box::new(error) }
}

/// Wraps an I/O error with what we were doing.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DeployError {
    let what = what.into();
    move |source| DeployError::Io { what, source }
}
