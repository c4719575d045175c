//! Client-side pacing of API Gateway calls: a token bucket at the account's default quota for
//! the management API (10 requests per second, burst 40), so that a burst of work (thirty
//! bindings at once, a full reconcile of a thousand stages) spreads itself out instead of
//! relying on throttling and retries. Throttles caused by other clients of the same account are
//! still retried with backoff by the SDK.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// API Gateway's default management-API rate per account and region.
pub const APIGATEWAY_RATE: f64 = 10.0;
/// API Gateway's default burst.
pub const APIGATEWAY_BURST: f64 = 40.0;
/// API Gateway's `CreateDeployment` rate: one call every 5 seconds.
pub const DEPLOYMENT_RATE: f64 = 0.2;

#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
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
            state: Mutex::new((burst, Instant::now())),
            waited: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// API Gateway's default quota.
    pub fn apigateway() -> Self {
        Pacer::new(APIGATEWAY_RATE, APIGATEWAY_BURST)
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
                let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
                s.0 = (s.0 + refill).min(self.burst);
                s.1 = now;
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    self.waited
                        .store(waited, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                Duration::from_secs_f64((1.0 - s.0) / self.rate)
            };
            waited = true;
            tokio::time::sleep(wait).await;
        }
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
        // 5 from the burst, then 10 at 100/s: at least 100 ms.
        let paced = start.elapsed();
        assert!(paced >= Duration::from_millis(95), "took {paced:?}");
        let s = pacer.state.lock().await;
        assert!(s.0 < 1.0, "the bucket is drained");
    }
}
