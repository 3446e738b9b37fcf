//! A Lambda Runtime API emulator on loopback: release `bootstrap` processes (the real
//! functions, unpacked from their zips) poll it for events exactly as they poll Lambda's, and
//! post their responses to it. Any number of instances share one queue of invocations, so N
//! instances with N callers is Lambda at concurrency N. One emulator per measurement: dropping
//! it ends every connection, so a killed instance's pending poll cannot take a later event.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

/// A function's answer to one invocation.
#[derive(Debug)]
pub struct Reply {
    pub at: Instant,
    /// The API Gateway response's `statusCode`; 200 for a function answering plain JSON.
    pub status: u16,
    pub body: String,
}

struct Invocation {
    id: String,
    event: String,
    reply: oneshot::Sender<anyhow::Result<Reply>>,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<anyhow::Result<Reply>>>>,
    first_poll: Mutex<Option<Instant>>,
}

pub struct RuntimeApi {
    /// `host:port`, as `AWS_LAMBDA_RUNTIME_API` wants it.
    pub address: String,
    sender: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    tasks: tokio::task::JoinSet<()>,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<RuntimeApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            first_poll: Mutex::new(None),
        });
        let mut tasks = tokio::task::JoinSet::new();
        let accept_shared = shared.clone();
        tasks.spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| handle(shared.clone(), request));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(RuntimeApi { address, sender, shared, tasks })
    }

    /// Queues an event for the next instance that polls, and waits for its answer.
    pub async fn invoke(&self, event: String) -> anyhow::Result<Reply> {
        let (reply, answer) = oneshot::channel();
        let id = format!("{:032x}", rand::random::<u128>());
        self.sender.send(Invocation { id, event, reply }).map_err(|_| anyhow::anyhow!("the runtime API stopped"))?;
        tokio::time::timeout(Duration::from_secs(30), answer)
            .await
            .context("no function answered within 30 s")?
            .context("the runtime API dropped the invocation")?
    }

    /// When an instance first asked for an event: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.first_poll.lock().ok().and_then(|p| *p)
    }

    /// Execs one instance of a function: the Lambda environment plus `env`.
    pub fn spawn(&self, bootstrap: &Path, env: &HashMap<String, String>) -> anyhow::Result<tokio::process::Child> {
        self.spawn_program(&Program::bootstrap(bootstrap), env)
    }

    /// Execs one instance of any program that speaks the Runtime API (ours, or the Node.js
    /// peer under node).
    pub fn spawn_program(
        &self,
        program: &Program,
        env: &HashMap<String, String>,
    ) -> anyhow::Result<tokio::process::Child> {
        let bootstrap = &program.path;
        tokio::process::Command::new(bootstrap)
            .args(&program.args)
            .env_clear()
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", "promo-codes-bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/promo-codes-bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", "us-east-1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bootstrap.display()))
    }
}

/// What an instance runs: an executable and its arguments.
#[derive(Debug, Clone)]
pub struct Program {
    pub path: PathBuf,
    pub args: Vec<PathBuf>,
}

impl Program {
    /// A release `bootstrap`, as Lambda's `provided.al2023` runtime execs it.
    pub fn bootstrap(path: &Path) -> Program {
        Program { path: path.to_owned(), args: Vec::new() }
    }

    /// `node <script>`, with node found on PATH.
    pub fn node(script: &Path) -> anyhow::Result<Program> {
        let path = std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("node")).find(|p| p.is_file()))
            .context("node is not on PATH: install the Debian package `nodejs` (Node 20 or later)")?;
        Ok(Program { path, args: vec![script.to_owned()] })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Extracts `bootstrap` from a function's zip into `dir`, executable.
pub fn unpack(zip: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let file = std::fs::File::open(zip).with_context(|| format!("opening {}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(file).with_context(|| format!("reading {}", zip.display()))?;
    let mut entry = archive.by_name("bootstrap").with_context(|| format!("{} has no bootstrap", zip.display()))?;
    let path = dir.join("bootstrap");
    let mut out = std::fs::File::create(&path)?;
    std::io::copy(&mut entry, &mut out)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// The Runtime API's calls: next, and an invocation's response or error.
async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if path == "/2018-06-01/runtime/invocation/next" {
        if let Ok(mut first) = shared.first_poll.lock() {
            first.get_or_insert_with(Instant::now);
        }
        let Some(invocation) = shared.queue.lock().await.recv().await else {
            return Ok(status(410));
        };
        if let Ok(mut waiting) = shared.waiting.lock() {
            waiting.insert(invocation.id.clone(), invocation.reply);
        }
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        let response = Response::builder()
            .header("Lambda-Runtime-Aws-Request-Id", &invocation.id)
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:promo-codes-bench",
            )
            .header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000001;Sampled=0")
            .body(Full::new(Bytes::from(invocation.event)))
            .unwrap_or_default();
        return Ok(response);
    }
    let at = Instant::now();
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    // /2018-06-01/runtime/invocation/<id>/response or /error; /init/error has no id.
    let mut parts = path.trim_start_matches("/2018-06-01/runtime/").split('/');
    let id = match (parts.next(), parts.next()) {
        (Some("invocation"), Some(id)) => id.to_owned(),
        _ => String::new(),
    };
    let reply = shared.waiting.lock().ok().and_then(|mut w| w.remove(&id));
    if let Some(reply) = reply {
        let answer = if path.ends_with("/response") {
            let status = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("statusCode").and_then(serde_json::Value::as_u64))
                .map_or(200, |s| s as u16);
            Ok(Reply { at, status, body })
        } else {
            Err(anyhow::anyhow!("the function reported an error: {body}"))
        };
        let _ = reply.send(answer);
    } else if path.ends_with("/init/error") {
        eprintln!("    a function failed its init: {body}");
    }
    Ok(status(202))
}

fn status(code: u16) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::ACCEPTED);
    response
}

/// Fails unless a reply has the expected status.
pub fn expect(what: &str, reply: &Reply, status: u16) -> anyhow::Result<()> {
    if reply.status != status {
        bail!("{what} answered {}, expected {status}: {}", reply.status, reply.body);
    }
    Ok(())
}
