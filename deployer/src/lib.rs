//! The deployer: an environment file becomes a desired state, which is compared with what the
//! AWS account holds (a pure diff: the plan), which is then applied in dependency order.
//!
//! Data flows one way: `config` (YAML) -> desired -> plan -> apply. State lives in AWS itself
//! (deterministic names and tags), so there is no state file to lose or lock.
//! `promote` and `release` build on it: promotion deploys code fetched from another
//! environment, releases move the `live` aliases (with an optional canary) and roll them back.

pub mod apply;
pub mod aws;
pub mod config;
pub mod desired;
pub mod diff;
pub mod error;
pub mod gateway_answers;
pub mod invoke;
pub mod logs;
pub mod migrate;
pub mod names;
pub mod observe;
pub mod outputs;
pub mod plan;
pub mod progress;
pub mod promote;
pub mod release;
pub mod tags;
