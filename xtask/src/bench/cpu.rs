//! What Lambda bills and how it rations: a process's CPU time (user + system, from its own
//! accounting), and a CPU share held to what Lambda gives a memory size, by a CFS quota on a
//! cgroup v1 `cpu` controller.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// The memory size that gets one full vCPU (Lambda's documentation: "at 1,769 MB, a function
/// has the equivalent of one vCPU").
pub const ONE_VCPU_MB: u64 = 1769;
/// The scheduling period of the quota. Lambda does not document its own; a short period keeps
/// a throttled request's wait short (the Linux default, 100 ms, would make p99 at 128 MB a
/// wait of ~93 ms for any request that crosses its 7 ms budget).
pub const PERIOD_US: u64 = 20_000;
const CGROUP_CPU: &str = "/sys/fs/cgroup/cpu";

/// User + system CPU time of process `pid`, all its threads, dead ones included.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // pid (comm) state ppid ...: comm may hold spaces, so count fields after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("an unreadable /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |field: usize| -> anyhow::Result<u64> {
        // Fields are numbered from 1 with pid; `rest` starts at field 3 (state).
        fields.get(field - 3).context("a short /proc/<pid>/stat")?.parse::<u64>().context("a field of /proc/<pid>/stat")
    };
    let (user, system) = (ticks(14)?, ticks(15)?);
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_secs_f64((user + system) as f64 / per_second as f64))
}

/// A cgroup that holds its processes to the CPU Lambda gives `memory_mb`. Removed on drop (its
/// processes must have exited by then).
pub struct CpuShare {
    pub memory_mb: u64,
    dir: PathBuf,
}

impl CpuShare {
    /// The share, or why it cannot be made here (no cgroup v1 `cpu` controller, or not
    /// writable): the bench then reports the rows as skipped, with this reason.
    pub fn create(memory_mb: u64) -> Result<CpuShare, String> {
        let root = PathBuf::from(CGROUP_CPU);
        if !root.join("cpu.cfs_quota_us").exists() {
            return Err(format!("{CGROUP_CPU} is not a cgroup v1 cpu controller on this machine"));
        }
        let dir = root.join(format!("promo-codes-bench-{}-{memory_mb}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e} (it needs root)", dir.display()))?;
        let share = CpuShare { memory_mb, dir };
        let quota = PERIOD_US * memory_mb / ONE_VCPU_MB;
        share.write("cpu.cfs_period_us", PERIOD_US)?;
        share.write("cpu.cfs_quota_us", quota)?;
        Ok(share)
    }

    /// Moves process `pid`, with all its threads, into the share.
    pub fn hold(&self, pid: u32) -> anyhow::Result<()> {
        self.write("cgroup.procs", u64::from(pid)).map_err(anyhow::Error::msg)
    }

    /// The fraction of one vCPU.
    pub fn fraction(&self) -> f64 {
        self.memory_mb as f64 / ONE_VCPU_MB as f64
    }

    fn write(&self, file: &str, value: u64) -> Result<(), String> {
        let path = self.dir.join(file);
        std::fs::write(&path, value.to_string()).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

impl Drop for CpuShare {
    fn drop(&mut self) {
        // A cgroup is removed with rmdir once empty; its processes may take a moment to go.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_what_this_process_burns() {
        let pid = std::process::id();
        let before = cpu_time(pid).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        let burnt = cpu_time(pid).unwrap() - before;
        assert!(burnt >= Duration::from_millis(200), "300 ms of spinning counted as {burnt:?}");
    }
}
