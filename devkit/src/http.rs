//! Small HTTP/1 server and client helpers on hyper, shared by the local servers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::DevkitError;

/// The response body type of every local server.
pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

/// A body holding `bytes` in full.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// Returned by a handler to close the connection without sending any response.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// A running server; dropping it stops the accept loop and every open connection.
#[derive(Debug)]
pub(crate) struct ServerHandle {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1 on a free port and serves each request with `handler`.
pub(crate) async fn serve<F, Fut>(what: &str, handler: F) -> Result<ServerHandle, DevkitError>
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, DropConnection>> + Send + 'static,
{
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| DevkitError::io(format!("binding the {what} listener"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DevkitError::io(format!("reading the {what} address"), e))?;
    let handler = Arc::new(handler);
    let task = tokio::spawn(async move {
        // Connection tasks live in this set so that aborting the accept loop ends them too.
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let handler = Arc::clone(&handler);
            connections.spawn(async move {
                let service = service_fn(move |req| {
                    let handler = Arc::clone(&handler);
                    async move { handler(req).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(ServerHandle { addr, task })
}

/// Splits `http://host:port[/...]` into `host:port`.
pub(crate) fn authority_of(endpoint: &str) -> Result<String, DevkitError> {
    let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
        DevkitError::Invalid(format!("only http:// endpoints are supported: {endpoint}"))
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(DevkitError::Invalid(format!(
            "endpoint has no host: {endpoint}"
        )));
    }
    if authority.contains(':') {
        Ok(authority.to_string())
    } else {
        Ok(format!("{authority}:80"))
    }
}

/// Sends one request on a new connection to `authority` and returns the streaming response.
pub(crate) async fn send<B>(
    authority: &str,
    req: Request<B>,
) -> Result<Response<Incoming>, DevkitError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| DevkitError::io(format!("connecting to {authority}"), e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| DevkitError::http(format!("handshaking with {authority}"), e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| DevkitError::http(format!("sending a request to {authority}"), e))
}

/// Sends a small request to `endpoint` and collects the answer: `(status, body)`.
pub(crate) async fn call(
    endpoint: &str,
    method: hyper::Method,
    path: &str,
    body: impl Into<Bytes>,
) -> Result<(u16, Bytes), DevkitError> {
    let authority = authority_of(endpoint)?;
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, &authority)
        .body(Full::new(body.into()))
        .map_err(|e| DevkitError::Invalid(format!("request to {endpoint}{path}: {e}")))?;
    let resp = send(&authority, req).await?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| DevkitError::http(format!("reading the answer of {endpoint}{path}"), e))?
        .to_bytes();
    Ok((status, body))
}
