//! Client-side pacing of API Gateway calls: a token bucket at the account's default quota for
//! the management API (10 requests per second, burst 40), so that a burst of work (thirty
//! bindings at once, a full reconcile of a thousand stages) spreads itself out instead of
//! relying on throttling and retries. A call throttled anyway (other clients of the same account,
//! such as sibling sandboxes, use its quota) is not retried by the SDK ([`ThrottlesToPacer`]):
//! [`Pacer::call`] slows down and waits before making it again, so that one throttled answer
//! costs one call, not the SDK's quick retries into a quota that is still spent.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority, RetryReason,
};
use tokio::sync::Mutex;

use crate::ports::{AwsError, ErrorKind};
use tokio::time::Instant;

/// API Gateway's default management-API rate per account and region.
pub const APIGATEWAY_RATE: f64 = 10.0;
/// API Gateway's default burst.
pub const APIGATEWAY_BURST: f64 = 40.0;
/// API Gateway's `CreateDeployment` rate: one call every 5 seconds.
pub const DEPLOYMENT_RATE: f64 = 0.2;

/// Attempts at a call the account's quota keeps throttling, after the SDK's own retries (the
/// caller's deadline usually ends the wait first).
pub const THROTTLED_ATTEMPTS: u32 = 20;
/// The slowest this pacer goes after throttled answers, in calls per second.
const MIN_RATE: f64 = 0.5;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// The current rate: the configured one, lowered by throttled answers.
    rate: f64,
}

#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
    waited: std::sync::atomic::AtomicBool,
}

impl Pacer {
    /// `rate` calls per second on average, at most `burst` at once.
    pub fn new(rate: f64, burst: f64) -> Self {
        let rate = rate.max(0.001);
        let burst = burst.max(1.0);
        Pacer {
            rate,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
                rate,
            }),
            waited: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// API Gateway's default quota.
    pub fn apigateway() -> Self {
        Pacer::new(APIGATEWAY_RATE, APIGATEWAY_BURST)
    }

    /// One of `workers` equal shares of API Gateway's default quota (rate and burst), so that
    /// that many processes pacing themselves so stay within the account's quota together.
    pub fn apigateway_share(workers: u32) -> Self {
        let n = f64::from(workers.max(1));
        Pacer::new(APIGATEWAY_RATE / n, APIGATEWAY_BURST / n)
    }

    /// API Gateway's `CreateDeployment` quota: one call every 5 seconds.
    pub fn deployments() -> Self {
        Pacer::new(DEPLOYMENT_RATE, 1.0)
    }

    /// Whether the last [`Pacer::acquire`] had to wait for its token.
    pub fn waited(&self) -> bool {
        self.waited.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait for a token.
    pub async fn acquire(&self) {
        let mut waited = false;
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(s.at).as_secs_f64() * s.rate;
                s.tokens = (s.tokens + refill).min(self.burst);
                s.at = now;
                if s.tokens >= 1.0 {
                    s.tokens -= 1.0;
                    self.waited
                        .store(waited, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                Duration::from_secs_f64((1.0 - s.tokens) / s.rate)
            };
            waited = true;
            tokio::time::sleep(wait).await;
        }
    }

    /// Other clients of the account are using its quota: halve this pacer's rate (down to
    /// [`MIN_RATE`]) and spend the tokens it holds.
    pub async fn throttled(&self) {
        let mut s = self.state.lock().await;
        s.rate = (s.rate / 2.0).max(MIN_RATE.min(self.rate));
        s.tokens = s.tokens.min(0.0);
    }

    /// A call went through: win back some of the configured rate.
    pub async fn succeeded(&self) {
        let mut s = self.state.lock().await;
        s.rate = (s.rate + 0.5).min(self.rate);
    }

    /// Makes `call` at this pacer's rate. A throttled answer (the account's quota is met by
    /// other clients, such as sibling sandboxes; the SDK does not retry it) slows this pacer
    /// and waits a jittered 1-3 s before trying again, so that concurrent sandboxes back off
    /// instead of hammering the quota.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.acquire().await;
            match call().await {
                Ok(out) => {
                    self.succeeded().await;
                    return Ok(out);
                }
                Err(e) if e.is(ErrorKind::Throttled) && attempt < THROTTLED_ATTEMPTS => {
                    self.throttled().await;
                    let wait = Duration::from_millis(1000 + fastrand::u64(..2000));
                    tracing::warn!(
                        operation = e.operation,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        "throttled by the account's quota: slowing down"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A retry classifier for the API Gateway clients: a throttled answer is not retried by the
/// SDK (the pacer backs off instead); every other verdict of the SDK's classifiers stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThrottlesToPacer;

impl ClassifyRetry for ThrottlesToPacer {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        match previous {
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: aws_smithy_types::retry::ErrorKind::ThrottlingError,
                ..
            }) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "stagewire: API Gateway throttles left to the pacer"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_then_paces() {
        let pacer = Pacer::new(100.0, 5.0);
        let start = Instant::now();
        for _ in 0..15 {
            pacer.acquire().await;
        }
        // 5 from the burst, then 10 at 100/s: at least 100 ms (a lower bound, which a loaded
        // machine cannot break; without pacing the calls take no time at all).
        let paced = start.elapsed();
        assert!(paced >= Duration::from_millis(95), "took {paced:?}");
    }
}
