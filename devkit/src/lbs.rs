//! Local stand-ins for load balancers: one HTTP server per load balancer DNS name, and the
//! resolver that maps those names to the servers' ports (the DNS of the test bench). A load
//! balancer can also be named by its ARN, as a VPC link names the network load balancer it
//! targets.
//!
//! A load balancer answers `{ "hello" : "world" }` (the helloworld service behind it) while it has
//! a healthy target, `503` while it has none (as an ALB does), and refuses connections once
//! deleted.

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
    addr: SocketAddr,
    server: Option<ServerHandle>,
}

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
        let (h, s, last_host) = (healthy_flag.clone(), served.clone(), host.clone());
        let server = serve("load balancer", move |req| {
            let seen = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            *last_host.lock().unwrap_or_else(|e| e.into_inner()) = seen;
            let ok = h.load(Ordering::SeqCst);
            if ok {
                s.fetch_add(1, Ordering::Relaxed);
            }
            async move {
                let (status, body) = if ok {
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
                        if ok { "application/json" } else { "text/html" },
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
}
