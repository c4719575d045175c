//! A load generator: `rate` GET requests per second to one URL, each on its own connection,
//! counting what was sent, what failed (anything but a `200` with the expected body) and the
//! window in which failures happened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

/// What a run of the load generator saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests sent (and answered or given up on).
    pub sent: u64,
    /// Requests without a `200` and the expected body.
    pub failed: u64,
    /// From the first failed request's start to the last one's.
    pub failing_window: Option<Duration>,
    /// When the first failure started, from the start of the run.
    pub first_failure: Option<Duration>,
    /// Answers by status (`0`: no answer at all).
    pub statuses: BTreeMap<u16, u64>,
}

impl LoadReport {
    /// The failing window in seconds, `0` when nothing failed.
    pub fn window_secs(&self) -> f64 {
        self.failing_window.map_or(0.0, |d| d.as_secs_f64())
    }
}

#[derive(Default)]
struct Tally {
    sent: u64,
    failed: u64,
    first: Option<Duration>,
    last: Option<Duration>,
    statuses: BTreeMap<u16, u64>,
}

/// A running load generator.
pub struct Load {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    tally: Arc<Mutex<Tally>>,
}

impl Load {
    /// Send `rate` requests per second to `url` (`http://host:port/path`) until stopped; a
    /// request fails unless it gets `200` with `expected` as its body within `timeout`.
    pub fn start(url: &str, rate: u32, expected: &str, timeout: Duration) -> Load {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (url, expected) = (url.to_string(), expected.to_string());
        let t = tally.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut ticks =
                tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut inflight = JoinSet::new();
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => break,
                }
                while inflight.try_join_next().is_some() {}
                let (url, expected, t) = (url.clone(), expected.clone(), t.clone());
                let at = start.elapsed();
                inflight.spawn(async move {
                    let (endpoint, path) = split(&url);
                    let answer = tokio::time::timeout(
                        timeout,
                        crate::http::call(endpoint, hyper::Method::GET, path, ""),
                    )
                    .await;
                    let (status, ok) = match answer {
                        Ok(Ok((status, body))) => {
                            (status, status == 200 && body == expected.as_bytes())
                        }
                        _ => (0, false),
                    };
                    let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                    t.sent += 1;
                    *t.statuses.entry(status).or_default() += 1;
                    if !ok {
                        t.failed += 1;
                        t.first = Some(t.first.map_or(at, |f| f.min(at)));
                        t.last = Some(t.last.map_or(at, |l| l.max(at)));
                    }
                });
            }
            while inflight.join_next().await.is_some() {}
        });
        Load { stop, task, tally }
    }

    /// Stop sending, wait for the requests in flight, and report.
    pub async fn stop(self) -> LoadReport {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        LoadReport {
            sent: t.sent,
            failed: t.failed,
            failing_window: match (t.first, t.last) {
                (Some(f), Some(l)) => Some(l - f),
                _ => None,
            },
            first_failure: t.first,
            statuses: t.statuses.clone(),
        }
    }
}

/// `http://host:port/path` into (`http://host:port`, `/path`).
fn split(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, "/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split("http://127.0.0.1:9/prod/helloworld"),
            ("http://127.0.0.1:9", "/prod/helloworld")
        );
        assert_eq!(split("http://127.0.0.1:9"), ("http://127.0.0.1:9", "/"));
    }

    #[tokio::test]
    async fn counts_failures_and_their_window() {
        let lbs = crate::lbs::LocalLoadBalancers::new();
        let addr = lbs.start("x.elb", true).await.unwrap();
        let load = Load::start(
            &format!("http://{addr}/"),
            100,
            crate::lbs::HELLO,
            Duration::from_secs(1),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        lbs.set_healthy("x.elb", false);
        tokio::time::sleep(Duration::from_millis(200)).await;
        lbs.set_healthy("x.elb", true);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = load.stop().await;
        assert!(r.sent >= 40, "{r:?}");
        assert!(r.failed >= 10 && r.failed < r.sent, "{r:?}");
        let w = r.window_secs();
        assert!((0.1..0.4).contains(&w), "{r:?}");
        assert!(r.statuses.contains_key(&503));
    }
}
