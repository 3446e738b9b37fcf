//! `cargo xtask build`: every function as a Lambda zip (cargo-lambda, `provided.al2023`), with
//! its path, size and SHA-256. Zips are written here, not by cargo-lambda, so that they are
//! byte-for-byte reproducible: one entry, `bootstrap`, mode 0755, a fixed 1980-01-01 timestamp.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use promo_core::routes::FUNCTION_CRATES;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::tools::{path_with, python_tools};
use crate::workspace_root;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The Lambda architecture to build for.
    #[arg(long, value_enum, default_value = "x86_64")]
    pub arch: Arch,
    /// Print the artifacts as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One built function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub function: String,
    pub zip: PathBuf,
    pub size: u64,
    /// Lowercase hex, as `sha256sum` prints it.
    pub sha256: String,
}

impl Artifact {
    /// The digest as Lambda reports it in `CodeSha256`: base64 of the raw SHA-256.
    pub fn code_sha256(&self) -> String {
        let raw: Vec<u8> = (0..self.sha256.len() / 2)
            .filter_map(|i| u8::from_str_radix(&self.sha256[2 * i..2 * i + 2], 16).ok())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(raw)
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let artifacts = build(&sh, args.arch)?;
    if args.json {
        let list: Vec<_> = artifacts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "function": a.function, "zip": a.zip, "size": a.size,
                    "sha256": a.sha256, "code_sha256": a.code_sha256(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for a in &artifacts {
            println!("{:<9} {:>9} bytes  sha256 {}  {}", a.function, a.size, a.sha256, a.zip.display());
        }
    }
    Ok(())
}

/// Builds every function for `arch` and zips it; returns the artifacts in `FUNCTION_CRATES` order.
pub fn build(sh: &Shell, arch: Arch) -> anyhow::Result<Vec<Artifact>> {
    let root = workspace_root();
    sh.change_dir(&root);
    let bin = python_tools(sh)?;
    let lambda_dir = root.join("target/lambda").join(arch.name());
    let target = arch.target();
    let packages: Vec<String> = FUNCTION_CRATES.iter().flat_map(|f| ["--package".to_owned(), f.to_string()]).collect();
    eprintln!("==> cargo lambda build --release --target {target} ({})", FUNCTION_CRATES.join(", "));
    cmd!(sh, "cargo lambda build --release --locked --target {target} --lambda-dir {lambda_dir} {packages...}")
        .env("PATH", path_with(&bin))
        .run()
        .context("cargo lambda build failed")?;

    FUNCTION_CRATES
        .iter()
        .map(|function| {
            let bootstrap = lambda_dir.join(function).join("bootstrap");
            let binary = std::fs::read(&bootstrap).with_context(|| format!("reading {}", bootstrap.display()))?;
            let bytes = zip_bootstrap(&binary)?;
            let zip = lambda_dir.join(format!("{function}.zip"));
            std::fs::write(&zip, &bytes).with_context(|| format!("writing {}", zip.display()))?;
            Ok(Artifact {
                function: function.to_string(),
                zip,
                size: bytes.len() as u64,
                sha256: hex(&Sha256::digest(&bytes)),
            })
        })
        .collect()
}

/// A zip holding one executable `bootstrap`, the same bytes for the same binary every time.
pub fn zip_bootstrap(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut writer = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(9))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755);
    writer.start_file("bootstrap", options)?;
    writer.write_all(binary)?;
    Ok(writer.finish()?.into_inner())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_same_binary_always_gives_the_same_zip() {
        let binary: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let first = zip_bootstrap(&binary).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(zip_bootstrap(&binary).unwrap(), first);
    }

    #[test]
    fn the_zip_holds_one_executable_bootstrap() {
        let bytes = zip_bootstrap(b"\x7fELF pretend").unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, b"\x7fELF pretend");
    }

    #[test]
    fn code_sha256_is_the_base64_lambda_reports() {
        let artifact =
            Artifact { function: "f".into(), zip: PathBuf::new(), size: 0, sha256: hex(&Sha256::digest(b"abc")) };
        assert_eq!(artifact.code_sha256(), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    }
}
