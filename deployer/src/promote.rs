//! Promotion's first half: the exact code an environment's `live` aliases run, downloaded from
//! Lambda (GetFunction's `Code.Location`) and checked against its `CodeSha256`. The second half
//! is an ordinary deploy of the target with these zips.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::apply::Zip;
use crate::aws::Clients;
use crate::config::{EnvName, EnvironmentSpec};
use crate::desired::LiveAlias;
use crate::error::{DeployError, aws as aws_error, io};
use crate::names::{ALIAS, Names};
use crate::observe::observe;

/// Lambda's own limit for a zip uploaded directly: anything bigger is not a function's code.
const MAX_ZIP_BYTES: u64 = 50 * 1024 * 1024;

/// Downloads the code of every function `live` serves in `source`, into `dir`, verified.
/// Refuses a source that is not what its last deploy left: a canary still running, or `$LATEST`
/// changed behind the deployer's back, or a function missing. Refuses code built for another
/// architecture than the target runs.
pub async fn fetch_live_code(
    clients: &Clients,
    source: &EnvName,
    source_spec: &EnvironmentSpec,
    target_spec: &EnvironmentSpec,
    dir: &Path,
) -> Result<BTreeMap<String, Zip>, DeployError> {
    let observed = observe(clients, source, source_spec).await?;
    let names = Names::new(source);
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut zips = BTreeMap::new();
    for crate_name in promo_shared::routes::FUNCTION_CRATES {
        let function = names.function(crate_name);
        let resource = observed.state.functions.iter().find(|f| f.name == function).ok_or_else(|| {
            DeployError::Refused(format!("{source} has no function {function}: deploy {source} first"))
        })?;
        match resource.live {
            LiveAlias::Current => {}
            LiveAlias::Canary => {
                return Err(DeployError::Refused(format!(
                    "{function} is in the middle of a canary: finish it (`deploy --env {source}`) or undo it \
                     (`rollback --env {source}`) before promoting"
                )));
            }
            _ => {
                return Err(DeployError::Refused(format!(
                    "{function} differs from what {source} was deployed as (its live version is not its latest \
                     code and configuration): deploy {source} again, then promote"
                )));
            }
        }
        let alias = clients
            .lambda
            .get_alias()
            .function_name(&function)
            .name(ALIAS)
            .send()
            .await
            .map_err(aws_error(format!("reading the live alias of {function}")))?;
        let version = alias.function_version().unwrap_or_default();
        let live = clients
            .lambda
            .get_function()
            .function_name(&function)
            .qualifier(version)
            .send()
            .await
            .map_err(aws_error(format!("reading version {version} of {function}")))?;
        let config = live.configuration();
        let expected = config.and_then(|c| c.code_sha256()).unwrap_or_default().to_owned();
        let architecture = config.and_then(|c| c.architectures().first()).map(|a| a.as_str().to_owned());
        let wanted = target_spec.function_settings(crate_name).architecture.name();
        if architecture.as_deref() != Some(wanted) {
            return Err(DeployError::Refused(format!(
                "{function} runs {} code but the target wants {wanted}: promotion copies code, it cannot \
                 change its architecture; make both environments use the same one",
                architecture.as_deref().unwrap_or("unknown")
            )));
        }
        let location = live
            .code()
            .and_then(|c| c.location())
            .ok_or_else(|| DeployError::Refused(format!("Lambda gave no code location for {function}")))?;
        let (download_agent, url) = (agent.clone(), location.to_owned());
        let downloaded = tokio::task::spawn_blocking(move || download(&download_agent, &url))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let bytes = downloaded.map_err(|message| {
            // The location is a presigned URL: its query string is a credential, never shown.
            let shown = location.split('?').next().unwrap_or_default();
            DeployError::Refused(format!("downloading the code of {function} from {shown}: {message}"))
        })?;
        let actual = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
        if actual != expected {
            return Err(DeployError::Refused(format!(
                "the code downloaded for {function} has SHA-256 {actual}, but Lambda says version {version} is \
                 {expected}: refusing to promote it"
            )));
        }
        let path = dir.join(format!("{crate_name}.zip"));
        std::fs::write(&path, &bytes).map_err(io(format!("writing {}", path.display())))?;
        zips.insert(crate_name.to_string(), Zip { path, code_sha256: actual });
    }
    Ok(zips)
}

fn download(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut bytes = Vec::new();
    response.into_body().into_reader().take(MAX_ZIP_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_ZIP_BYTES {
        return Err(format!("more than {MAX_ZIP_BYTES} bytes"));
    }
    Ok(bytes)
}
