//! Delivering the response to the ResponseURL.

use std::sync::{Once, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use super::ResponseUrl;

/// Why a response could not be delivered. Never contains the URL.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the ResponseURL answered HTTP {status} on every one of {attempts} attempts")]
    Status { status: u16, attempts: u32 },
    #[error("the ResponseURL could not be reached in {attempts} attempts: {last}")]
    Transport { attempts: u32, last: String },
    #[error("the ResponseURL is not a valid http(s) URL")]
    BadUrl,
    #[error("the ResponseURL's host is neither CloudFormation's response bucket for this region nor allowed by STAGEWIRE_RESPONSE_HOSTS: nothing was sent")]
    ForeignHost,
}

impl SendError {
    /// How many PUTs were made before giving up.
    pub fn attempts(&self) -> u32 {
        match self {
            SendError::Status { attempts, .. } | SendError::Transport { attempts, .. } => *attempts,
            SendError::BadUrl | SendError::ForeignHost => 0,
        }
    }
}

/// Delivers responses: one PUT with an empty Content-Type and the exact length, retried with
/// full-jitter exponential backoff on transport errors and non-2xx answers, never following a
/// redirect, bounded in attempts and by the deadline.
///
/// Every sender of a process shares one HTTP client, whose TLS roots take milliseconds to load:
/// it is built on a thread of its own from the moment the first sender is made, beside the
/// function's start-up and its first AWS calls, and the first PUT waits for it only if it is
/// not ready yet.
#[derive(Clone)]
pub struct Sender {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub attempt_timeout: Duration,
}

impl Default for Sender {
    fn default() -> Self {
        Sender::new(5, Duration::from_millis(250), Duration::from_secs(10))
    }
}

impl Sender {
    pub fn new(max_attempts: u32, base_delay: Duration, attempt_timeout: Duration) -> Self {
        static WARMING: Once = Once::new();
        WARMING.call_once(|| {
            std::thread::spawn(http_client);
        });
        Sender {
            max_attempts: max_attempts.max(1),
            base_delay,
            attempt_timeout,
        }
    }

    /// Send `body`; the answer's HTTP status and the attempts made, on success. Gives up at
    /// `deadline`.
    pub async fn send(
        &self,
        url: &ResponseUrl,
        body: Vec<u8>,
        deadline: Instant,
    ) -> Result<(u16, u32), SendError> {
        let parsed = reqwest::Url::parse(url.expose()).map_err(|_| SendError::BadUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SendError::BadUrl);
        }
        let mut last = Failed::Transport(String::new());
        let mut attempts = 0;
        while attempts < self.max_attempts {
            attempts += 1;
            match self.attempt(url, &parsed, &body, deadline).await {
                Ok(status) => return Ok((status, attempts)),
                Err(failed) => last = failed,
            }
            if attempts >= self.max_attempts {
                break;
            }
            let cap = self.base_delay.saturating_mul(1 << attempts.min(10));
            let delay = cap.mul_f64(fastrand::f64());
            if Instant::now() + delay >= deadline {
                break;
            }
            tokio::time::sleep(delay).await;
        }
        Err(match last {
            Failed::Status(status) => SendError::Status { status, attempts },
            Failed::Transport(last) => SendError::Transport { attempts, last },
        })
    }

    /// One PUT: the success status, or how it failed (a transport error scrubbed of the URL).
    async fn attempt(
        &self,
        url: &ResponseUrl,
        parsed: &reqwest::Url,
        body: &[u8],
        deadline: Instant,
    ) -> Result<u16, Failed> {
        let left = deadline.saturating_duration_since(Instant::now());
        let res = http_client()
            .put(parsed.clone())
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(body.to_vec())
            .timeout(
                self.attempt_timeout
                    .min(left.max(Duration::from_millis(100))),
            )
            .send()
            .await;
        match res {
            Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
            Ok(r) => {
                tracing::warn!(status = r.status().as_u16(), "response PUT refused");
                Err(Failed::Status(r.status().as_u16()))
            }
            Err(e) => {
                let error = url.scrub(&e.without_url().to_string());
                tracing::warn!(%error, "response PUT failed");
                Err(Failed::Transport(error))
            }
        }
    }
}

/// The client responses go through, built once per process: no redirects followed.
fn http_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// How one attempt failed.
enum Failed {
    Status(u16),
    Transport(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_that_is_not_http_is_refused_before_any_attempt() {
        let deadline = Instant::now() + Duration::from_secs(1);
        for url in ["ftp://h/x?sig=S", "not a url"] {
            let err = Sender::default()
                .send(&ResponseUrl::new(url), Vec::new(), deadline)
                .await
                .unwrap_err();
            assert!(matches!(err, SendError::BadUrl), "{err:?}");
            assert_eq!(err.attempts(), 0);
            assert!(!err.to_string().contains("sig=S"), "{err}");
        }
    }

    #[test]
    fn attempts_are_kept_on_failure() {
        let status = SendError::Status {
            status: 403,
            attempts: 3,
        };
        let transport = SendError::Transport {
            attempts: 2,
            last: "connection refused".into(),
        };
        assert_eq!(status.attempts(), 3);
        assert_eq!(transport.attempts(), 2);
    }
}
