//! The Python tools the commands need (cargo-lambda and zig, later moto and schemathesis),
//! installed into `target/venv` from `tools/requirements.txt`, pinned, once per change of that file.

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
