//! `cargo xtask token`: prints a JWT that the local stack accepts, for curl and demos.

use crate::local::{LocalConfig, sign_token};

#[derive(clap::Args)]
pub struct Args {
    /// The subject: the user the token speaks for (a promo code's `owner`).
    #[arg(long)]
    pub sub: String,
    /// Include the admin scope, for the back-office routes.
    #[arg(long)]
    pub admin: bool,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let local = LocalConfig::load()?;
    println!("{}", sign_token(&local, &args.sub, args.admin, args.ttl)?);
    Ok(())
}
