//! Deadlines: when the work must stop so that the response still goes out in time.

use std::time::Duration;

use tokio::time::Instant;

/// Timing policy: how much of the time left is kept for answering.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Longest time kept back to send the response.
    pub max_reserve: Duration,
    /// Shortest time kept back.
    pub min_reserve: Duration,
    /// Pause between two target-health checks while a switch waits for a load balancer.
    pub health_poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            max_reserve: Duration::from_secs(10),
            min_reserve: Duration::from_millis(300),
            health_poll: crate::wait::DEFAULT_INTERVAL,
        }
    }
}

impl Timing {
    /// When the work must stop: the earlier of the Lambda deadline and the ServiceTimeout,
    /// less a fifth of the time left (between `min_reserve` and `max_reserve`) for answering.
    pub fn work_deadline(
        &self,
        start: Instant,
        lambda_deadline: Instant,
        service_timeout: Option<Duration>,
    ) -> Instant {
        let hard = match service_timeout {
            Some(t) => lambda_deadline.min(start + t),
            None => lambda_deadline,
        };
        let total = hard.saturating_duration_since(start);
        let reserve = (total / 5).clamp(self.min_reserve, self.max_reserve);
        start + total.saturating_sub(reserve)
    }
}

/// The `Instant` of a deadline given in Unix epoch milliseconds (the Lambda context's).
pub fn deadline_instant(epoch_ms: u64) -> Instant {
    let now_ms = crate::now_ms().max(0) as u64;
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_deadline_keeps_a_reserve() {
        let t = Timing::default();
        let start = Instant::now();
        let d = t.work_deadline(start, start + Duration::from_secs(300), None);
        assert_eq!(d - start, Duration::from_secs(290));
        let d = t.work_deadline(
            start,
            start + Duration::from_secs(300),
            Some(Duration::from_secs(60)),
        );
        assert_eq!(d - start, Duration::from_secs(50));
        let d = t.work_deadline(start, start + Duration::from_secs(1), None);
        assert_eq!(d - start, Duration::from_millis(700));
    }
}
