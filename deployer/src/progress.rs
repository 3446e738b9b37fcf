//! What a long-running command reports as it goes, for a person to follow: a terminal shows
//! waits as spinners, a CI log as timestamped lines (xtask decides how).

use std::time::Duration;

/// One thing to report, with a duration: how long the step took, or how long the wait has lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A step finished, such as "created lambda function promo-codes-dev-list".
    Done(&'a str),
    /// Still waiting on AWS, such as "aurora cluster promo-codes-dev: creating".
    Waiting(&'a str),
}

/// Hears of every event.
pub type Progress<'a> = &'a dyn Fn(Event<'_>, Duration);

/// A progress that reports nothing.
pub fn quiet(_: Event<'_>, _: Duration) {}
