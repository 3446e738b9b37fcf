//! `cargo xtask token`: prints a JWT that the local stack accepts, for curl and demos.

use crate::local::{LocalConfig, sign_token};

#[derive(clap::Args)]
pub struct Args {
    /// The subject: the user the token speaks for (a promo code's `owner`).
    #[arg(long, required_unless_present = "jwks")]
    pub sub: Option<String>,
    /// Include the admin scope, for the back-office routes.
    #[arg(long)]
    pub admin: bool,
    /// Print the local issuer's public keys (a JWKS) instead, for whatever else must trust it.
    #[arg(long, conflicts_with_all = ["sub", "admin"])]
    pub jwks: bool,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.jwks {
        println!("{}", serde_json::to_string(&crate::local::local_jwks()?)?);
        return Ok(());
    }
    let local = LocalConfig::load()?;
    let sub = args.sub.unwrap_or_default();
    println!("{}", sign_token(&local, &sub, args.admin, args.ttl)?);
    Ok(())
}
