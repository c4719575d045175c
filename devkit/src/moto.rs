//! A moto server (the AWS emulator) for tests, and an SDK configuration pointed at it.
//!
//! [`MotoServer::start`] spawns `<workspace>/.venv/bin/python` (or `python3` when the venv is
//! missing; `STAGEWIRE_PYTHON` overrides both) running a small wrapper around `moto.server`.
//! The wrapper watches its parent process and exits when the parent is gone, so no server
//! outlives the test binary that started it, even when that binary is killed. The server's
//! output goes to a log file in the system temporary directory.
//!
//! [`shared`] gives one server per test binary; with `STAGEWIRE_MOTO_ENDPOINT` set it uses that
//! endpoint (for example one started by `.ci/run`) and spawns nothing.

use std::fs::File;
use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use hyper::Method;
use tokio::sync::OnceCell;

use crate::error::error_chain;
use crate::{http, workspace_root, DevkitError};

/// Environment variable naming an already running moto endpoint for [`shared`].
pub const ENDPOINT_ENV: &str = "STAGEWIRE_MOTO_ENDPOINT";
/// Environment variable naming the Python interpreter to run moto with.
pub const PYTHON_ENV: &str = "STAGEWIRE_PYTHON";
/// How long [`MotoServer::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The region every devkit SDK configuration uses.
pub const REGION: &str = "us-east-1";

/// Runs moto's server and exits when the parent process dies (its parent pid changes).
const WRAPPER: &str = r#"
import os, sys, threading, time
parent = os.getppid()
def watch_parent():
    while True:
        time.sleep(0.25)
        if os.getppid() != parent:
            os._exit(0)
threading.Thread(target=watch_parent, daemon=True).start()
from moto.server import main
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
"#;

/// A moto server on 127.0.0.1: a child process (killed on drop) or an external endpoint.
#[derive(Debug)]
pub struct MotoServer {
    endpoint: String,
    child: Option<Mutex<Child>>,
    log_path: Option<PathBuf>,
}

impl MotoServer {
    /// Spawns moto on a free port and waits until `GET /moto-api/` answers (at most 30 s).
    pub async fn start() -> Result<MotoServer, DevkitError> {
        let mut last_error = None;
        for python in python_candidates() {
            // A port picked free can be taken before moto binds it: try a few.
            for _ in 0..2 {
                match Self::start_once(&python).await {
                    Ok(server) => return Ok(server),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        Err(last_error.unwrap_or_else(|| DevkitError::Moto("could not start".into())))
    }

    async fn start_once(python: &PathBuf) -> Result<MotoServer, DevkitError> {
        let port = free_port()?;
        let log_path = std::env::temp_dir().join(format!("stagewire-moto-{port}.log"));
        let log = File::create(&log_path)
            .map_err(|e| DevkitError::io(format!("creating {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| DevkitError::io("duplicating the moto log handle", e))?;
        let child = Command::new(python)
            .arg("-c")
            .arg(WRAPPER)
            .arg(port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| DevkitError::io(format!("spawning {} for moto", python.display()), e))?;
        let server = MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(Mutex::new(child)),
            log_path: Some(log_path),
        };
        server.wait_ready(START_TIMEOUT).await?;
        Ok(server)
    }

    /// Uses a moto server that is already running at `endpoint`; nothing is spawned or killed.
    pub fn external(endpoint: impl Into<String>) -> MotoServer {
        MotoServer {
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            child: None,
            log_path: None,
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The process id of the spawned server (`None` for an external endpoint).
    pub fn pid(&self) -> Option<u32> {
        let child = self.child.as_ref()?;
        let child = child.lock().unwrap_or_else(|p| p.into_inner());
        Some(child.id())
    }

    /// The file holding the server's output, when this server was spawned here.
    pub fn log_path(&self) -> Option<&PathBuf> {
        self.log_path.as_ref()
    }

    /// Forgets every resource moto holds (`POST /moto-api/reset`).
    pub async fn reset(&self) -> Result<(), DevkitError> {
        let (status, body) =
            http::call(&self.endpoint, Method::POST, "/moto-api/reset", "").await?;
        if status == 200 {
            Ok(())
        } else {
            Err(DevkitError::Moto(format!(
                "reset answered {status}: {}",
                String::from_utf8_lossy(&body)
            )))
        }
    }

    /// An SDK configuration for this server (see [`sdk_config`]).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), DevkitError> {
        let started = Instant::now();
        loop {
            if let Ok((status, _)) = http::call(&self.endpoint, Method::GET, "/moto-api/", "").await
            {
                if status < 500 {
                    return Ok(());
                }
            }
            if let Some(exit) = self.exit_status() {
                return Err(DevkitError::Moto(format!(
                    "the server exited with {exit} before answering; output:\n{}",
                    self.log_tail()
                )));
            }
            if started.elapsed() > timeout {
                return Err(DevkitError::Moto(format!(
                    "no answer from {} within {timeout:?}; output:\n{}",
                    self.endpoint,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn exit_status(&self) -> Option<std::process::ExitStatus> {
        let child = self.child.as_ref()?;
        let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
        child.try_wait().ok().flatten()
    }

    fn log_tail(&self) -> String {
        let Some(path) = &self.log_path else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

static SHARED: OnceCell<MotoServer> = OnceCell::const_new();

/// One moto server for the whole test binary, started on first use.
///
/// With `STAGEWIRE_MOTO_ENDPOINT` set, that endpoint is used and nothing is spawned.
/// The spawned server exits by itself when the test binary ends.
///
/// # Panics
/// When the server cannot be started (use [`try_shared`] to get the error instead).
pub async fn shared() -> &'static MotoServer {
    match try_shared().await {
        Ok(server) => server,
        Err(e) => panic!("cannot start the shared moto server: {}", error_chain(&e)),
    }
}

/// Like [`shared`], returning the start error instead of panicking.
pub async fn try_shared() -> Result<&'static MotoServer, DevkitError> {
    SHARED
        .get_or_try_init(|| async {
            match std::env::var(ENDPOINT_ENV) {
                Ok(endpoint) if !endpoint.trim().is_empty() => {
                    Ok(MotoServer::external(endpoint.trim()))
                }
                _ => MotoServer::start().await,
            }
        })
        .await
}

/// An SDK configuration for a local emulator at `endpoint`.
///
/// Region `us-east-1`, static dummy credentials (no credential-chain probing), the given
/// endpoint URL, at most 3 attempts per call with a 10 ms initial backoff, and the latest
/// behavior version.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "AKIDSTAGEWIREDEVKIT",
            "stagewire-devkit-dummy-secret",
            None,
            None,
            "stagewire-devkit",
        ))
        .endpoint_url(endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(10))
                .with_max_backoff(Duration::from_millis(200)),
        )
        .load()
        .await
}

/// The environment of a process (a function binary, the CLI) whose AWS calls go to the local
/// emulator (or a proxy in front of it) at `endpoint`: the endpoint URL, region
/// `us-east-1`, dummy credentials and no instance-metadata probing.
pub fn process_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "AKIDSTAGEWIREDEVKIT"),
        ("AWS_SECRET_ACCESS_KEY", "stagewire-devkit-dummy-secret"),
        ("AWS_SESSION_TOKEN", "stagewire-devkit-dummy-token"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        // The local response receivers (see the README's STAGEWIRE_RESPONSE_HOSTS).
        ("STAGEWIRE_RESPONSE_HOSTS", "127.0.0.1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The interpreter to run moto with: `STAGEWIRE_PYTHON`, the workspace venv, or `python3`.
pub fn python_interpreter() -> PathBuf {
    if let Ok(python) = std::env::var(PYTHON_ENV) {
        if !python.trim().is_empty() {
            return PathBuf::from(python);
        }
    }
    let venv = workspace_root().join(".venv").join("bin").join("python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// `STAGEWIRE_PYTHON` alone when set; otherwise the venv's interpreter, then `python3`.
fn python_candidates() -> Vec<PathBuf> {
    let first = python_interpreter();
    let fallback = PathBuf::from("python3");
    let explicit = std::env::var(PYTHON_ENV).is_ok_and(|p| !p.trim().is_empty());
    if explicit || first == fallback {
        vec![first]
    } else {
        vec![first, fallback]
    }
}

fn free_port() -> Result<u16, DevkitError> {
    let listener = StdTcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| DevkitError::io("finding a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| DevkitError::io("finding a free port", e))?
        .port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper exits when its parent does: a shell starts it in the background and exits.
    #[test]
    fn wrapper_exits_when_its_parent_dies() {
        let python = python_candidates()
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import moto.server"])
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("a python with moto");
        let port = free_port().unwrap();
        // The shell starts the wrapper in the background, prints its pid and waits for its
        // standard input to close.
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -c "$1" "$2" >/dev/null 2>&1 </dev/null & echo $!; read _"#)
            .arg(&python)
            .arg(WRAPPER)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shell.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let pid: u32 = line.trim().parse().unwrap();
        let up_deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < up_deadline, "the wrapper never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(shell.stdin.take());
        shell.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let gone = status.is_empty() || status.contains("State:\tZ");
            if gone {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto wrapper {pid} outlived its parent"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[tokio::test]
    async fn external_endpoint_spawns_nothing() {
        let server = MotoServer::external("http://127.0.0.1:1/");
        assert_eq!(server.endpoint(), "http://127.0.0.1:1");
        assert_eq!(server.pid(), None);
        assert!(server.reset().await.is_err());
    }
}
