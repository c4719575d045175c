//! Local stand-ins for load balancers: one HTTP server per load balancer DNS name, and the
//! resolver that maps those names to the servers' ports (the DNS of the test bench). A load
//! balancer can also be named by its ARN, as a VPC link names the network load balancer it
//! targets.
//!
//! A load balancer answers `{ "hello" : "world" }` (the helloworld service behind it) while it has
//! a healthy target, `503` while it has none (as an ALB does), and refuses connections once
//! deleted. A healthy load balancer can be made to answer a share of its requests `500` from
//! its target ([`LocalLoadBalancers::set_error_share`]), picked evenly: after `n` requests under
//! a share `s`, exactly `floor(n * s)` were answered 500 (at 1/3, every third request), which is
//! what ELB counts as `HTTPCode_Target_5XX_Count`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hyper::{Response, StatusCode};

use crate::http::{full, serve, ServerHandle};
use crate::DevkitError;

/// What the helloworld service answers.
pub const HELLO: &str = r#"{ "hello" : "world" }"#;

struct Lb {
    healthy: Arc<AtomicBool>,
    /// The `Host` header of the last request.
    host: Arc<Mutex<Option<String>>>,
    served: Arc<AtomicU64>,
    /// The share of requests answered 500, and the requests since it was set.
    errors: Arc<Mutex<ErrorShare>>,
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

/// A load balancer's share of 500s and what it answered.
#[derive(Debug, Default)]
struct ErrorShare {
    share: f64,
    /// Healthy requests since the share was set.
    n: u64,
    /// Requests answered (any status), and 500s from the target, since the start.
    requests: u64,
    errors: u64,
}

impl ErrorShare {
    /// Counts one request; whether its target answers 500 (only a healthy one does).
    fn draw(&mut self, healthy: bool) -> bool {
        self.requests += 1;
        let failed = healthy && {
            self.n += 1;
            crate::gateway::even_pick(self.n, self.share)
        };
        self.errors += u64::from(failed);
        failed
    }
}

/// What the helloworld service answers when it fails.
pub const TARGET_ERROR: &str = r#"{"message": "helloworld failed"}"#;

/// The local load balancers, by DNS name (case-insensitive, as DNS is).
#[derive(Clone, Default)]
pub struct LocalLoadBalancers {
    lbs: Arc<Mutex<HashMap<String, Lb>>>,
    /// ARN to DNS name.
    arns: Arc<Mutex<HashMap<String, String>>>,
}

impl LocalLoadBalancers {
    /// No load balancers yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lb>> {
        self.lbs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start the load balancer `dns`, with or without a healthy target.
    pub async fn start(&self, dns: &str, healthy: bool) -> Result<SocketAddr, DevkitError> {
        let healthy_flag = Arc::new(AtomicBool::new(healthy));
        let served = Arc::new(AtomicU64::new(0));
        let host = Arc::new(Mutex::new(None));
        let errors = Arc::new(Mutex::new(ErrorShare::default()));
        let (h, s, last_host) = (healthy_flag.clone(), served.clone(), host.clone());
        let e = errors.clone();
        let server = serve("load balancer", move |req| {
            let seen = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            *last_host.lock().unwrap_or_else(|e| e.into_inner()) = seen;
            let ok = h.load(Ordering::SeqCst);
            let failed = e.lock().unwrap_or_else(|p| p.into_inner()).draw(ok);
            if ok && !failed {
                s.fetch_add(1, Ordering::Relaxed);
            }
            async move {
                let (status, body) = if failed {
                    (StatusCode::INTERNAL_SERVER_ERROR, TARGET_ERROR)
                } else if ok {
                    (StatusCode::OK, HELLO)
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                    )
                };
                Ok(Response::builder()
                    .status(status)
                    .header(
                        hyper::header::CONTENT_TYPE,
                        if ok || failed {
                            "application/json"
                        } else {
                            "text/html"
                        },
                    )
                    .body(full(body))
                    .unwrap_or_default())
            }
        })
        .await?;
        let addr = server.addr();
        self.lock().insert(
            dns.to_ascii_lowercase(),
            Lb {
                healthy: healthy_flag,
                host,
                served,
                errors,
                addr,
                server: Some(server),
            },
        );
        Ok(addr)
    }

    /// Give the load balancer `dns` a healthy target, or take its last one away.
    pub fn set_healthy(&self, dns: &str, healthy: bool) {
        if let Some(lb) = self.lock().get(&dns.to_ascii_lowercase()) {
            lb.healthy.store(healthy, Ordering::SeqCst);
        }
    }

    /// From now on, the target behind the load balancer `dns` answers `share` (0 to 1) of its
    /// requests `500`, evenly (see the module docs); 0 stops it.
    pub fn set_error_share(&self, dns: &str, share: f64) {
        if let Some(lb) = self.lock().get(&dns.to_ascii_lowercase()) {
            let mut e = lb.errors.lock().unwrap_or_else(|p| p.into_inner());
            e.share = share.clamp(0.0, 1.0);
            e.n = 0;
        }
    }

    /// How many requests the load balancer `dns` received, and how many its target answered
    /// `500` (ELB's `RequestCount` and `HTTPCode_Target_5XX_Count`).
    pub fn request_counts(&self, dns: &str) -> (u64, u64) {
        self.lock()
            .get(&dns.to_ascii_lowercase())
            .map_or((0, 0), |lb| {
                let e = lb.errors.lock().unwrap_or_else(|p| p.into_inner());
                (e.requests, e.errors)
            })
    }

    /// Delete the load balancer `dns`: its port refuses connections from now on (the name
    /// still resolves, to nothing that answers).
    pub fn delete(&self, dns: &str) {
        if let Some(lb) = self.lock().get_mut(&dns.to_ascii_lowercase()) {
            lb.server = None;
        }
    }

    /// Whether `dns` is a running load balancer.
    pub fn is_running(&self, dns: &str) -> bool {
        self.lock()
            .get(&dns.to_ascii_lowercase())
            .is_some_and(|lb| lb.server.is_some())
    }

    /// How many `200`s the load balancer `dns` answered.
    pub fn served(&self, dns: &str) -> u64 {
        self.lock()
            .get(&dns.to_ascii_lowercase())
            .map_or(0, |lb| lb.served.load(Ordering::Relaxed))
    }

    /// The `Host` header of the last request the load balancer `dns` received.
    pub fn last_host(&self, dns: &str) -> Option<String> {
        let lbs = self.lock();
        let lb = lbs.get(&dns.to_ascii_lowercase())?;
        let host = lb.host.lock().unwrap_or_else(|e| e.into_inner()).clone();
        host
    }

    /// Name the load balancer `dns` by its ARN too (a VPC link's target).
    pub fn name_arn(&self, arn: &str, dns: &str) {
        self.arns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(arn.to_string(), dns.to_ascii_lowercase());
    }

    /// The DNS name of the load balancer named `arn` with [`LocalLoadBalancers::name_arn`].
    pub fn dns_of(&self, arn: &str) -> Option<String> {
        self.arns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(arn)
            .cloned()
    }

    /// The address of the load balancer named `arn`; `None` for an ARN nobody named.
    pub fn resolve_arn(&self, arn: &str) -> Option<SocketAddr> {
        self.resolve(&self.dns_of(arn)?)
    }

    /// The address a DNS name resolves to; `None` for a name nobody knows.
    pub fn resolve(&self, host: &str) -> Option<SocketAddr> {
        self.lock()
            .get(&host.to_ascii_lowercase())
            .map(|lb| lb.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_while_healthy_503_without_targets_refuses_once_deleted() {
        let lbs = LocalLoadBalancers::new();
        let addr = lbs
            .start("A-1.us-east-1.elb.amazonaws.com", false)
            .await
            .unwrap();
        assert_eq!(lbs.resolve("a-1.us-east-1.elb.amazonaws.com"), Some(addr));
        let url = format!("http://{addr}");
        let (status, _) = crate::http::call(&url, hyper::Method::GET, "/", "")
            .await
            .unwrap();
        assert_eq!(status, 503);
        lbs.set_healthy("a-1.us-east-1.elb.amazonaws.com", true);
        let (status, body) = crate::http::call(&url, hyper::Method::GET, "/", "")
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (200, HELLO.as_bytes()));
        assert_eq!(lbs.served("a-1.us-east-1.elb.amazonaws.com"), 1);
        assert_eq!(
            lbs.last_host("a-1.us-east-1.elb.amazonaws.com"),
            Some(addr.to_string())
        );
        lbs.delete("a-1.us-east-1.elb.amazonaws.com");
        tokio::task::yield_now().await;
        assert!(crate::http::call(&url, hyper::Method::GET, "/", "")
            .await
            .is_err());
        assert!(!lbs.is_running("a-1.us-east-1.elb.amazonaws.com"));
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/a/1";
        assert_eq!(lbs.resolve_arn(arn), None);
        lbs.name_arn(arn, "A-1.us-east-1.elb.amazonaws.com");
        assert_eq!(lbs.resolve_arn(arn), Some(addr));
    }

    #[tokio::test]
    async fn an_error_share_answers_every_third_request_500() {
        let lbs = LocalLoadBalancers::new();
        let dns = "b-1.us-east-1.elb.amazonaws.com";
        let url = format!("http://{}", lbs.start(dns, true).await.unwrap());
        lbs.set_error_share(dns, 1.0 / 3.0);
        let mut statuses = Vec::new();
        for _ in 0..9 {
            let (status, _) = crate::http::call(&url, hyper::Method::GET, "/", "")
                .await
                .unwrap();
            statuses.push(status);
        }
        assert_eq!(statuses, [200, 200, 500, 200, 200, 500, 200, 200, 500]);
        assert_eq!(lbs.request_counts(dns), (9, 3));
        assert_eq!(lbs.served(dns), 6);
        lbs.set_error_share(dns, 0.0);
        let (status, body) = crate::http::call(&url, hyper::Method::GET, "/", "")
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (200, HELLO.as_bytes()));
        assert_eq!(lbs.request_counts(dns), (10, 3));
    }
}
