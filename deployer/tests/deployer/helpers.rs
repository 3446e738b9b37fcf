//! What the deployer's tests share: an emulator per test, environment files under any name,
//! zips to deploy, and a few reads of what was deployed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use deployer::apply::Zip;
use deployer::aws::Clients;
use deployer::config::{EnvName, EnvironmentSpec};
use sha2::{Digest, Sha256};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The emulator (tools/emulator.py) on a free loopback port, stopped when dropped. Each test
/// starts its own, so environments and counts never mix.
pub fn emulator() -> aws_emulator::Emulator {
    aws_emulator::Emulator::start().unwrap_or_else(|e| panic!("{e}"))
}

/// SDK clients for the emulator, counting their calls.
pub async fn clients(emulator: &aws_emulator::Emulator) -> Clients {
    Clients::for_emulator("us-east-1", &emulator.url).await
}

/// environments/emulator.yaml as environment `name`.
pub fn spec_named(name: &str) -> (EnvName, EnvironmentSpec) {
    let text = std::fs::read_to_string(root().join("environments/emulator.yaml")).unwrap();
    (EnvName::parse(name).unwrap(), EnvironmentSpec::parse(Path::new("emulator.yaml"), &text).unwrap())
}

/// Zips for every function: cargo-lambda's when `cargo xtask test` built them and `salt` is
/// empty, otherwise stand-ins named by `salt` (see [`stand_in`]).
pub fn zips(dir: &Path, salt: &str) -> BTreeMap<String, Zip> {
    let built = root().join("target/lambda/x86_64");
    promo_shared::routes::FUNCTION_CRATES
        .iter()
        .map(|f| {
            let real = built.join(format!("{f}.zip"));
            let zip = if real.exists() && salt.is_empty() {
                zip_at(real)
            } else if *f == "migrate" {
                stand_in(dir, &format!("{f}{salt}"), &serde_json::json!({ "applied": migration_versions() }))
            } else {
                let body = serde_json::json!({ "build": format!("{f}{salt}") }).to_string();
                stand_in(dir, &format!("{f}{salt}"), &serde_json::json!({ "statusCode": 200, "body": body }))
            };
            (f.to_string(), zip)
        })
        .collect()
}

pub fn zips_with_salt(dir: &Path, function: &str, salt: &str) -> Zip {
    zips(dir, salt).remove(function).unwrap()
}

/// A stand-in function named `build`: a `bootstrap` (Python, which the machine has) that serves
/// Lambda's Runtime API as a real function does and answers every event with `answer`. Stand-ins
/// differ in code, so each build is a new version; an HTTP stand-in's body names its build, so a
/// caller sees which version answered.
pub fn stand_in(dir: &Path, build: &str, answer: &serde_json::Value) -> Zip {
    let script = format!(
        r#"#!/usr/bin/env python3
# Stand-in function {build}: answers each event through Lambda's Runtime API.
import os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
answer = {answer:?}.encode()
while True:
    with urllib.request.urlopen(api + "next") as event:
        request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
        event.read()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=answer, method="POST")).read()
"#,
        answer = answer.to_string()
    );
    stand_in_script(dir, build, &script)
}

/// A function whose `bootstrap` is `script` (a misbehaving one, say).
pub fn stand_in_script(dir: &Path, build: &str, script: &str) -> Zip {
    let path = dir.join(format!("{build}.zip"));
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let executable = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    writer.start_file("bootstrap", executable).unwrap();
    writer.write_all(script.as_bytes()).unwrap();
    writer.finish().unwrap();
    zip_at(path)
}

fn zip_at(path: PathBuf) -> Zip {
    let sha = Sha256::digest(std::fs::read(&path).unwrap());
    let code_sha256 = base64::engine::general_purpose::STANDARD.encode(sha);
    Zip { path, code_sha256 }
}

/// The versions under migrations/, as the real migrate function reports them.
pub fn migration_versions() -> Vec<i64> {
    let mut versions: Vec<i64> = std::fs::read_dir(root().join("migrations"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.split('_').next()?.parse().ok())
        .collect();
    versions.sort_unstable();
    versions
}

/// A directory for a test's stand-in zips, removed when the test ends.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("promo-deployer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub use deployer::progress::quiet;

/// The code and configuration `live` serves for one function.
pub async fn live_config(
    clients: &Clients,
    function: &str,
) -> aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput {
    clients.lambda.get_function_configuration().function_name(function).qualifier("live").send().await.unwrap()
}

/// One request to a deployed API (`api_url` + `path`): the status and the body.
pub fn call_api(api_url: &str, method: &str, path: &str) -> (u16, String) {
    let answer = request_api(api_url, method, path);
    (answer.status, answer.body)
}

/// What a deployed API answered.
pub struct ApiAnswer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl ApiAnswer {
    /// The body as the contract's error: (code, request_id), after checking its shape.
    pub fn error(&self) -> (String, String) {
        let body: serde_json::Value =
            serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body));
        let error = body["error"].as_object().unwrap_or_else(|| panic!("not an error body: {}", self.body));
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "request_id"], "{}", self.body);
        assert!(error["message"].is_string() && error["param"].is_null(), "{}", self.body);
        (
            error["code"].as_str().unwrap_or_default().to_owned(),
            error["request_id"].as_str().unwrap_or_default().to_owned(),
        )
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request to a deployed API, with its headers in the answer.
pub fn request_api(api_url: &str, method: &str, path: &str) -> ApiAnswer {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let request = ureq::http::Request::builder().method(method).uri(format!("{api_url}{path}")).body(()).unwrap();
    let mut response = agent.run(request).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let body = response.body_mut().read_to_string().unwrap_or_default();
    ApiAnswer { status: response.status().as_u16(), headers: response.headers().clone(), body }
}

/// Which stand-in build answered each of `n` calls (see [`stand_in`]), counted.
pub fn builds_answering(api_url: &str, method: &str, path: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let (status, body) = call_api(api_url, method, path);
        assert_eq!(status, 200, "{method} {path}: {body}");
        let build: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        *seen.entry(build["build"].as_str().unwrap_or_default().to_owned()).or_insert(0) += 1;
    }
    seen
}
