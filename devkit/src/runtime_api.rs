//! A minimal AWS Lambda Runtime API, as Lambda runs it, to drive real function binaries.
//!
//! [`RuntimeApi`] serves the endpoints a runtime client uses (`invocation/next`, `.../response`,
//! `.../error`, `init/error`) on 127.0.0.1. [`RuntimeApi::invoke`] queues an event, hands it
//! to the next poll with a deadline of delivery + timeout, and waits for the function's answer.
//! [`LambdaProcess`] runs a function binary against it with the environment Lambda provides,
//! capturing its output lines and exposing its pid, spawn instant and peak resident memory.

use std::collections::HashMap;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::http::{self, Body, DropConnection, ServerHandle};
use crate::DevkitError;

/// The API version prefix of every Runtime API path.
pub const PREFIX: &str = "/2018-06-01/runtime";
/// How long [`RuntimeApi::invoke`] waits for a poll to take its event.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The ARN sent as `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:stagewire-devkit";

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body of `POST .../response` (JSON, or a JSON string when the body is not JSON).
    Response(Value),
    /// The body of `POST .../error`.
    Error(Value),
}

/// One finished invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The `Lambda-Runtime-Aws-Request-Id` it was delivered with.
    pub request_id: String,
    /// The function's answer.
    pub outcome: Outcome,
    /// From delivery (the `next` poll that took the event) to the answer.
    pub duration: Duration,
}

impl Invocation {
    /// The response body, when the function answered without error.
    pub fn response(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Response(v) => Some(v),
            Outcome::Error(_) => None,
        }
    }
}

struct Pending {
    request_id: String,
    event: Value,
    timeout: Duration,
    delivered: oneshot::Sender<Instant>,
}

struct Shared {
    queue_tx: mpsc::UnboundedSender<Pending>,
    queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    outcomes: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<Value>>,
}

/// A local Lambda Runtime API server.
pub struct RuntimeApi {
    server: ServerHandle,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Starts the server on a free port.
    pub async fn start() -> Result<RuntimeApi, DevkitError> {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            outcomes: Mutex::new(HashMap::new()),
            first_poll: watch::Sender::new(None),
            init_error: watch::Sender::new(None),
        });
        let handler_shared = Arc::clone(&shared);
        let server = http::serve("runtime API", move |req| {
            let shared = Arc::clone(&handler_shared);
            async move { Ok::<_, DropConnection>(handle(&shared, req).await) }
        })
        .await?;
        Ok(RuntimeApi { server, shared })
    }

    /// `127.0.0.1:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.server.addr().to_string()
    }

    /// Queues `event` and waits for the function's answer.
    ///
    /// The event waits at most [`DELIVERY_TIMEOUT`] for a poll (or until the function reports
    /// an init error); once delivered, its deadline is delivery + `timeout`, and an answer
    /// later than that is a [`DevkitError::Timeout`].
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Invocation, DevkitError> {
        let request_id = new_request_id();
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let (delivered_tx, delivered_rx) = oneshot::channel();
        lock(&self.shared.outcomes).insert(request_id.clone(), outcome_tx);
        let forget = || {
            lock(&self.shared.outcomes).remove(&request_id);
        };
        let pending = Pending {
            request_id: request_id.clone(),
            event,
            timeout,
            delivered: delivered_tx,
        };
        if self.shared.queue_tx.send(pending).is_err() {
            forget();
            return Err(DevkitError::Invalid(
                "the runtime API queue is closed".into(),
            ));
        }
        let mut init_error = self.shared.init_error.subscribe();
        let delivered_at = tokio::select! {
            delivered = tokio::time::timeout(DELIVERY_TIMEOUT, delivered_rx) => match delivered {
                Ok(Ok(at)) => at,
                _ => {
                    forget();
                    return Err(DevkitError::Timeout {
                        what: format!("a poll of invocation/next to take request {request_id}"),
                        after: DELIVERY_TIMEOUT,
                    });
                }
            },
            _ = init_error.wait_for(Option::is_some) => {
                forget();
                let error = self.init_error().unwrap_or(Value::Null);
                return Err(DevkitError::Invalid(format!("the function reported an init error: {error}")));
            }
        };
        let deadline = tokio::time::Instant::from_std(delivered_at + timeout);
        match tokio::time::timeout_at(deadline, outcome_rx).await {
            Ok(Ok(outcome)) => Ok(Invocation {
                request_id,
                outcome,
                duration: delivered_at.elapsed(),
            }),
            _ => {
                forget();
                Err(DevkitError::Timeout {
                    what: format!("the answer to request {request_id}"),
                    after: timeout,
                })
            }
        }
    }

    /// The instant of the first `invocation/next` poll, waiting at most `timeout` for it.
    pub async fn first_poll(&self, timeout: Duration) -> Option<Instant> {
        let mut rx = self.shared.first_poll.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(at)) => *at,
            _ => *self.shared.first_poll.borrow(),
        }
    }

    /// The body of `POST /runtime/init/error`, once the function sent one.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.borrow().clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn new_request_id() -> String {
    let mut rng = fastrand::Rng::new();
    let hex = |rng: &mut fastrand::Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!(
        "{}-{}-4{}-a{}-{}",
        hex(&mut rng, 8),
        hex(&mut rng, 4),
        hex(&mut rng, 3),
        hex(&mut rng, 3),
        hex(&mut rng, 12)
    )
}

fn trace_id() -> String {
    let mut rng = fastrand::Rng::new();
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "Root=1-{secs:08x}-{:012x}{:012x};Parent={:016x};Sampled=0",
        rng.u64(..) & 0xffff_ffff_ffff,
        rng.u64(..) & 0xffff_ffff_ffff,
        rng.u64(..)
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(http::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({ "errorType": error_type, "errorMessage": message }),
    )
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let Some(route) = path.strip_prefix(PREFIX) else {
        return error_response(StatusCode::NOT_FOUND, "NotFound", "unknown path");
    };
    let segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(shared).await,
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let body = read_body(req).await;
            let outcome = if *kind == "response" {
                Outcome::Response(body)
            } else {
                Outcome::Error(body)
            };
            let sender = lock(&shared.outcomes).remove(*id);
            match sender {
                Some(sender) => {
                    let _ = sender.send(outcome);
                    json_response(StatusCode::ACCEPTED, &json!({ "status": "OK" }))
                }
                None => error_response(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestID",
                    "no pending invocation has this request id",
                ),
            }
        }
        (&Method::POST, ["init", "error"]) => {
            let body = read_body(req).await;
            shared.init_error.send_replace(Some(body));
            json_response(StatusCode::ACCEPTED, &json!({ "status": "OK" }))
        }
        _ => error_response(StatusCode::NOT_FOUND, "NotFound", "unknown path or method"),
    }
}

async fn read_body(req: Request<Incoming>) -> Value {
    let raw: Bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()))
}

async fn next(shared: &Shared) -> Response<Body> {
    shared.first_poll.send_if_modified(|first| {
        if first.is_none() {
            *first = Some(Instant::now());
            true
        } else {
            false
        }
    });
    loop {
        let pending = {
            let mut queue = shared.queue_rx.lock().await;
            queue.recv().await
        };
        let Some(pending) = pending else {
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "Closed", "queue closed");
        };
        // The invoker gave up waiting for delivery: skip the event.
        if pending.delivered.is_closed() {
            continue;
        }
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(pending.timeout)
            .as_millis();
        let _ = pending.delivered.send(Instant::now());
        let mut response = json_response(StatusCode::OK, &pending.event);
        let headers = response.headers_mut();
        let pairs = [
            ("lambda-runtime-aws-request-id", pending.request_id.clone()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                FUNCTION_ARN.to_string(),
            ),
            ("lambda-runtime-trace-id", trace_id()),
        ];
        for (name, value) in pairs {
            if let Ok(value) = header::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        return response;
    }
}

/// A function binary running under its own [`RuntimeApi`], as [`Function::launch`] starts it.
#[derive(Debug)]
pub struct Function {
    /// The Runtime API the function polls; [`RuntimeApi::invoke`] sends it events.
    pub api: RuntimeApi,
    /// The running process.
    pub process: LambdaProcess,
    /// From the spawn to the first poll: the cold init.
    pub init: Duration,
}

impl Function {
    /// Starts a Runtime API, spawns `binary` against it with `env` (see
    /// [`LambdaProcess::spawn`]) and waits at most `timeout` for its first poll.
    pub async fn launch(
        binary: &Path,
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Function, DevkitError> {
        Function::launch_with(&[], binary, env, timeout).await
    }

    /// As [`Function::launch`], with `binary` started through `launcher` (see
    /// [`LambdaProcess::spawn_with`]).
    pub async fn launch_with(
        launcher: &[String],
        binary: &Path,
        env: &[(String, String)],
        timeout: Duration,
    ) -> Result<Function, DevkitError> {
        let api = RuntimeApi::start().await?;
        let process = LambdaProcess::spawn_with(launcher, binary, &api, env)?;
        let Some(first_poll) = api.first_poll(timeout).await else {
            return Err(DevkitError::NotStarted {
                binary: binary.to_path_buf(),
                after: timeout,
                output: process.logs(),
            });
        };
        let init = first_poll.saturating_duration_since(process.spawned_at());
        Ok(Function { api, process, init })
    }
}

/// A function binary running against a [`RuntimeApi`]; killed on drop.
#[derive(Debug)]
pub struct LambdaProcess {
    child: Child,
    pid: Option<u32>,
    spawned_at: Instant,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl LambdaProcess {
    /// Spawns `binary` with the environment Lambda gives a function, then `env` on top.
    ///
    /// Set by default: `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME` (the binary's file
    /// name), `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`, `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`, `AWS_LAMBDA_LOG_STREAM_NAME`, and, as Lambda provides them,
    /// `AWS_REGION`/`AWS_DEFAULT_REGION=us-east-1` and dummy `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. The rest of the environment is inherited.
    /// Standard output and standard error lines are collected into [`LambdaProcess::logs`].
    /// Must be called within a tokio runtime.
    pub fn spawn(
        binary: &Path,
        runtime_api: &RuntimeApi,
        env: &[(String, String)],
    ) -> Result<LambdaProcess, DevkitError> {
        Self::spawn_with(&[], binary, runtime_api, env)
    }

    /// As [`LambdaProcess::spawn`], with `binary` started through `launcher`: the program
    /// and arguments put before it, for example `qemu-aarch64 -L /usr/aarch64-linux-gnu` to run
    /// an arm64 Lambda package (`.aws-sam/build/<Function>/bootstrap`) under user-mode
    /// emulation. An empty launcher runs `binary` itself. The function name is the binary's
    /// file name, or its directory's name when the file is called `bootstrap`.
    pub fn spawn_with(
        launcher: &[String],
        binary: &Path,
        runtime_api: &RuntimeApi,
        env: &[(String, String)],
    ) -> Result<LambdaProcess, DevkitError> {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty() && n != "bootstrap")
            .or_else(|| {
                binary
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "function".to_string());
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]00000000000000000000000000000000",
            )
            .env("AWS_REGION", crate::moto::REGION)
            .env("AWS_DEFAULT_REGION", crate::moto::REGION)
            .env("AWS_ACCESS_KEY_ID", "AKIDSTAGEWIREDEVKIT")
            .env("AWS_SECRET_ACCESS_KEY", "stagewire-devkit-dummy-secret")
            .env("AWS_SESSION_TOKEN", "stagewire-devkit-dummy-token")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = command.spawn().map_err(|e| {
            let shown = launcher
                .iter()
                .cloned()
                .chain([binary.display().to_string()])
                .collect::<Vec<_>>()
                .join(" ");
            DevkitError::io(format!("spawning {shown}"), e)
        })?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(collect_lines(stdout, Arc::clone(&logs))));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(collect_lines(stderr, Arc::clone(&logs))));
        }
        Ok(LambdaProcess {
            pid: child.id(),
            child,
            spawned_at,
            logs,
            readers,
        })
    }

    /// The instant just before the process was spawned.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Every output line so far (standard output and standard error, in arrival order).
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).clone()
    }

    /// All output so far as one string.
    pub fn log_text(&self) -> String {
        lock(&self.logs).join("\n")
    }

    /// Waits until an output line contains `needle`; false after `timeout`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if lock(&self.logs).iter().any(|line| line.contains(needle)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Peak resident set size in KiB (`VmHWM` of `/proc/<pid>/status`), while the process lives.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, DevkitError> {
        self.child
            .try_wait()
            .map_err(|e| DevkitError::io("checking the function process", e))
    }

    /// Kills the process, waits for it and for its output to be collected.
    pub async fn kill(&mut self) -> Result<(), DevkitError> {
        if self.try_wait()?.is_none() {
            self.child
                .kill()
                .await
                .map_err(|e| DevkitError::io("killing the function process", e))?;
        }
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        Ok(())
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn collect_lines<R: AsyncRead + Unpin>(stream: R, logs: Arc<Mutex<Vec<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        lock(&logs).push(line);
    }
}
