//! What the AWS commands share: the environment file, the zips for it, the SDK clients.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use deployer::apply::Zip;
use deployer::aws::Clients;
use deployer::config::{ENVIRONMENTS_DIR, EnvName, EnvironmentSpec};
use promo_core::routes::FUNCTION_CRATES;
use xshell::Shell;

use crate::build::{self, Arch};
use crate::workspace_root;

pub fn load(name: &str) -> anyhow::Result<(EnvName, EnvironmentSpec)> {
    let env = EnvName::parse(name)?;
    let spec = EnvironmentSpec::load(&workspace_root().join(ENVIRONMENTS_DIR), &env)?;
    Ok((env, spec))
}

/// Builds the zips every function of `spec` needs, for the architectures it uses.
pub fn zips(spec: &EnvironmentSpec) -> anyhow::Result<BTreeMap<String, Zip>> {
    let sh = Shell::new()?;
    let arch_of = |function: &str| match spec.function_settings(function).architecture {
        deployer::config::Architecture::X86_64 => Arch::X86_64,
        deployer::config::Architecture::Arm64 => Arch::Arm64,
    };
    let archs: BTreeSet<&str> = FUNCTION_CRATES.iter().map(|f| arch_of(f).name()).collect();
    let mut built = BTreeMap::new();
    for arch in [Arch::X86_64, Arch::Arm64] {
        if archs.contains(arch.name()) {
            built.insert(arch.name(), build::build(&sh, arch)?);
        }
    }
    FUNCTION_CRATES
        .iter()
        .map(|f| {
            let artifact = built[arch_of(f).name()]
                .iter()
                .find(|a| a.function == *f)
                .with_context(|| format!("no zip built for {f}"))?;
            Ok((f.to_string(), Zip { path: artifact.zip.clone(), code_sha256: artifact.code_sha256() }))
        })
        .collect()
}

/// SDK clients for the environment's region, from the standard chain (AWS_PROFILE,
/// credentials, AWS_ENDPOINT_URL for an emulator).
pub async fn clients(spec: &EnvironmentSpec) -> Clients {
    Clients::new(&spec.region).await
}

/// A protected environment needs `--yes`.
pub fn check_protected(env: &EnvName, spec: &EnvironmentSpec, yes: bool, what: &str) -> anyhow::Result<()> {
    if spec.protected && !yes {
        anyhow::bail!("environment {env} is protected: {what} needs --yes");
    }
    Ok(())
}

/// A deployer error with its whole cause, the AWS service's code, message and request id included.
pub fn explained(error: deployer::error::DeployError) -> anyhow::Error {
    anyhow::anyhow!(error.report())
}
