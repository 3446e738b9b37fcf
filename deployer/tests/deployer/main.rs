//! The deployer's integration tests: environment files, and deploys through the real AWS SDK
//! against the project's emulator (tools/emulator.py) on loopback.

mod config;
mod convergence;
mod data_plane;
mod deploy;
mod helpers;
mod ownership;
mod real_account;
