//! A throwaway PostgreSQL cluster made with the system's own `initdb` and `postgres`.
//!
//! Tests and `cargo xtask dev` need a real PostgreSQL without asking the user to run one. This
//! crate finds the server binaries, makes a cluster in a directory it owns (as the unprivileged
//! `postgres` user when running as root, since PostgreSQL refuses to run as root), starts it on
//! a free loopback port with durability switched off, and stops it again: on drop, and through
//! the kernel's parent-death signal when the owning process dies without dropping it.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The superuser every cluster is made with; it authenticates with `trust` on loopback only.
pub const SUPERUSER: &str = "postgres";

/// Where to get the binaries when they are missing.
const INSTALL_HINT: &str = "install the Debian package `postgresql` (apt-get install postgresql), \
                            or set DATABASE_URL to use a server you already run";

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
const TEMP_PREFIX: &str = "ephemeral-pg-";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin: {INSTALL_HINT}"
    )]
    BinariesMissing,
    #[error(
        "running as root, but PostgreSQL refuses to run as root and there is no unprivileged user {0:?} to run it as: create one (useradd --system {0}), or set EPHEMERAL_PG_USER"
    )]
    NoUnprivilegedUser(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("initdb failed ({status}):\n{output}")]
    InitdbFailed { status: String, output: String },
    #[error("port {0} on 127.0.0.1 is already in use")]
    PortBusy(u16),
    #[error("postgres did not start within {timeout:?}; its log ends with:\n{log}")]
    StartFailed { timeout: Duration, log: String },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The server binaries of one PostgreSQL installation.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

/// Finds `initdb` and `postgres` of the same installation: `PG_BIN_DIR`, then `PATH`, then the
/// newest `/usr/lib/postgresql/<version>/bin` (where Debian keeps them off `PATH`).
pub fn find_binaries() -> Result<Binaries, Error> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            // Follow a symlinked initdb to its installation, so postgres comes from the same one.
            match fs::canonicalize(dir.join("initdb")) {
                Ok(real) => candidates.extend(real.parent().map(Path::to_path_buf)),
                Err(_) => candidates.push(dir),
            }
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort();
    candidates.extend(versioned.into_iter().rev().map(|(_, dir)| dir));

    candidates
        .into_iter()
        .map(|dir| Binaries { initdb: dir.join("initdb"), postgres: dir.join("postgres") })
        .find(|b| is_executable(&b.initdb) && is_executable(&b.postgres))
        .ok_or(Error::BinariesMissing)
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// How to start a cluster.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep the data here across runs (made on first use). `None`: a temporary directory,
    /// deleted when the cluster stops.
    pub data_dir: Option<PathBuf>,
    /// Listen on this port of 127.0.0.1; `None`: any free port.
    pub port: Option<u16>,
    /// `max_connections` of the server.
    pub max_connections: Option<u32>,
}

/// The user the server processes run as, when we are root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

/// A running PostgreSQL cluster. Dropping it stops the server and removes a temporary data dir.
#[derive(Debug)]
pub struct Cluster {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    temporary: bool,
}

impl Cluster {
    /// Makes (if needed) and starts a cluster. The thread calling this must outlive the cluster:
    /// the server gets SIGQUIT from the kernel when that thread ends, so a test binary that exits
    /// without running destructors still leaves no server behind.
    pub fn start(options: Options) -> Result<Cluster, Error> {
        let binaries = find_binaries()?;
        let run_as = run_as()?;
        let (data_dir, temporary) = match options.data_dir.clone() {
            Some(dir) => (dir, false),
            None => (new_temp_dir(run_as)?, true),
        };
        let result = Self::start_in(&binaries, run_as, &data_dir, &options);
        if result.is_err() && temporary {
            let _ = fs::remove_dir_all(&data_dir);
        }
        result.map(|(child, port)| Cluster { child, port, data_dir, temporary })
    }

    fn start_in(
        binaries: &Binaries,
        run_as: Option<RunAs>,
        data_dir: &Path,
        options: &Options,
    ) -> Result<(Child, u16), Error> {
        if !data_dir.join("PG_VERSION").exists() {
            initdb(binaries, run_as, data_dir)?;
        }
        // A free port can be taken between our probe and the server's bind: try a few.
        let attempts = if options.port.is_some() { 1 } else { 5 };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match options.port {
                Some(port) => {
                    if TcpListener::bind(("127.0.0.1", port)).is_err() {
                        return Err(Error::PortBusy(port));
                    }
                    port
                }
                None => free_port()?,
            };
            match start_postgres(binaries, run_as, data_dir, port, options.max_connections.unwrap_or(300)) {
                Ok(child) => return Ok((child, port)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(Error::StartFailed { timeout: START_TIMEOUT, log: String::new() }))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's process id (the postmaster).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connection URL for `database`, as the superuser, over TCP on loopback.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server: a fast shutdown (SIGINT), then SIGKILL if it has not ended in time.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(self.child.id(), libc::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if self.temporary {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid we spawned and a valid signal number has no memory effects.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// The unprivileged user to run the server as, when we are root (PostgreSQL refuses root).
fn run_as() -> Result<Option<RunAs>, Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::env::var("EPHEMERAL_PG_USER").unwrap_or_else(|_| SUPERUSER.to_owned());
    let c_name = std::ffi::CString::new(name.clone()).map_err(|_| Error::NoUnprivilegedUser(name.clone()))?;
    // SAFETY: getpwnam reads a NUL-terminated name; we copy the two fields out at once, before
    // any other call could reuse its static buffer.
    let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
    if entry.is_null() {
        return Err(Error::NoUnprivilegedUser(name));
    }
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    if uid == 0 {
        return Err(Error::NoUnprivilegedUser(name));
    }
    Ok(Some(RunAs { uid, gid }))
}

fn chown(path: &Path, run_as: Option<RunAs>) -> Result<(), Error> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(io_error(format!("cannot hand {} to the postgres user", path.display())))?;
    }
    Ok(())
}

/// A command that runs as the unprivileged user when we are root, and dies with its parent thread.
fn server_command(program: &Path, run_as: Option<RunAs>) -> Command {
    let mut command = Command::new(program);
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }
    command.env_remove("PGDATA").env("LC_ALL", "C");
    // SAFETY: prctl and getppid are async-signal-safe; the closure allocates nothing. It runs
    // after the uid change, which would otherwise clear the parent-death signal.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl: then no signal would ever come.
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    command
}

fn initdb(binaries: &Binaries, run_as: Option<RunAs>, data_dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(data_dir).map_err(io_error(format!("cannot create {}", data_dir.display())))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error(format!("cannot restrict {}", data_dir.display())))?;
    chown(data_dir, run_as)?;
    let output = server_command(&binaries.initdb, run_as)
        .arg("--pgdata")
        .arg(data_dir)
        .args(["--username", SUPERUSER, "--auth", "trust", "--encoding", "UTF8", "--locale", "C", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .map_err(io_error(format!("cannot run {}", binaries.initdb.display())))?;
    if !output.status.success() {
        return Err(Error::InitdbFailed {
            status: output.status.to_string(),
            output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        });
    }
    Ok(())
}

fn start_postgres(
    binaries: &Binaries,
    run_as: Option<RunAs>,
    data_dir: &Path,
    port: u16,
    max_connections: u32,
) -> Result<Child, Error> {
    let log_path = data_dir.join("postgres.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io_error(format!("cannot open {}", log_path.display())))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut child = server_command(&binaries.postgres, run_as)
        .arg("-D")
        .arg(data_dir)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        // Throwaway data: durability buys nothing and costs every test a flush.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .args(["-c", &format!("max_connections={max_connections}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io_error("cannot share the log file"))?)
        .stderr(log)
        .spawn()
        .map_err(io_error(format!("cannot run {}", binaries.postgres.display())))?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            let log = read_from(&log_path, log_start);
            if log.contains("could not bind") || log.contains("Address already in use") {
                return Err(Error::PortBusy(port));
            }
            return Err(Error::StartFailed { timeout: START_TIMEOUT, log });
        }
        if is_ready(data_dir, child.id()) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::StartFailed { timeout: START_TIMEOUT, log: read_from(&log_path, log_start) });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The postmaster writes "ready" on the 8th line of postmaster.pid once it accepts
/// connections; this is how pg_ctl waits too.
fn is_ready(data_dir: &Path, pid: u32) -> bool {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().and_then(|l| l.trim().parse::<u32>().ok()) == Some(pid)
        && lines.get(7).map(|l| l.trim()) == Some("ready")
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let _ = file.read_to_string(&mut text);
    }
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(io_error("cannot find a free port"))?;
    listener.local_addr().map(|a| a.port()).map_err(io_error("cannot find a free port"))
}

/// A fresh temporary directory, `ephemeral-pg-<pid>-<n>`; first removes those left by
/// processes that no longer exist (a test binary that was killed never runs its destructors).
fn new_temp_dir(run_as: Option<RunAs>) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    remove_stale_temp_dirs();
    let dir = base.join(format!("{TEMP_PREFIX}{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
    chown(&dir, run_as)?;
    Ok(dir)
}

/// Removes the temporary cluster directories of processes that no longer exist.
pub fn remove_stale_temp_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive =
            unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A server for a whole test binary: `DATABASE_URL` when set, else one ephemeral cluster that
/// lives as long as the process. Returns the URL of its `postgres` database; tests create their
/// own databases on it.
pub fn shared_server_url() -> Result<String, String> {
    static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                return Ok(url);
            }
            // The cluster is started by, and parked in, a thread of its own that never ends, so
            // the parent-death signal arrives exactly when the test process exits.
            let (tx, rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new().name("ephemeral-pg".into()).spawn(move || {
                match Cluster::start(Options::default()) {
                    Ok(cluster) => {
                        let _ = tx.send(Ok(cluster.url("postgres")));
                        loop {
                            std::thread::park();
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
            match spawned {
                Ok(_) => rx.recv().unwrap_or_else(|_| Err("the ephemeral-pg thread died".into())),
                Err(e) => Err(format!("cannot start the ephemeral-pg thread: {e}")),
            }
        })
        .clone()
}

/// Whether a directory name is one of this crate's temporary clusters (for leak checks).
pub fn is_temp_cluster_dir(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_accepts_tcp_and_stops_without_leaving_its_directory() {
        let cluster = Cluster::start(Options::default()).expect("start");
        let dir = cluster.data_dir().to_path_buf();
        let pid = cluster.pid();
        assert!(std::net::TcpStream::connect(("127.0.0.1", cluster.port())).is_ok());
        cluster.stop();
        assert!(!dir.exists(), "{} left behind", dir.display());
        // SAFETY: signal 0 only probes for the process.
        assert_ne!(unsafe { libc::kill(pid as libc::pid_t, 0) }, 0, "postgres {pid} still running");
    }

    #[test]
    fn a_kept_data_dir_survives_a_restart() {
        let parent = std::env::temp_dir().join(format!("{TEMP_PREFIX}{}-kept", std::process::id()));
        let _ = fs::remove_dir_all(&parent);
        fs::create_dir_all(&parent).unwrap();
        chown(&parent, run_as().unwrap()).unwrap();
        let data_dir = parent.join("data");
        let options = Options { data_dir: Some(data_dir.clone()), ..Options::default() };
        Cluster::start(options.clone()).expect("first start").stop();
        assert!(data_dir.join("PG_VERSION").exists());
        let again = Cluster::start(options).expect("second start");
        assert!(std::net::TcpStream::connect(("127.0.0.1", again.port())).is_ok());
        again.stop();
        assert!(data_dir.join("PG_VERSION").exists());
        fs::remove_dir_all(&parent).unwrap();
    }

    #[test]
    fn a_busy_port_is_a_clear_error() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = Cluster::start(Options { port: Some(port), ..Options::default() }).unwrap_err();
        assert!(matches!(err, Error::PortBusy(p) if p == port), "{err}");
    }
}
