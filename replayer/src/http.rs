//! The Prometheus endpoint: `GET /metrics` (text format 0.0.4) and `GET /healthz`
//! (200 once the pack is read and the clients are starting, 503 before);
//! and [`get`], the plain HTTP/1.0 GET with which the run asks a
//! Prometheus server its queries and a server its `/version`.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use synth_common::http::{self, Reply};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// Binds `addr` and serves the metrics until the returned task is aborted.
/// Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
    let local = listener.local_addr()?;
    let task = http::serve(listener, move |method, path| answer(method, path, &metrics));
    Ok((local, task))
}

fn answer(method: &str, path: &str, metrics: &Metrics) -> Reply {
    match (method, path) {
        ("GET", "/metrics") => Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: Bytes::from(metrics.render()),
        },
        ("GET", "/healthz") if metrics.ready.load(Relaxed) => Reply::text(200, "ok\n"),
        ("GET", "/healthz") => Reply::text(503, "starting\n"),
        _ => Reply::text(404, "not found: try /metrics or /healthz\n"),
    }
}

/// `GET` of `request_target` (path and query) from `addr` (`host:port`)
/// over plain HTTP/1.0, `Host: authority`, reading at most `max` bytes;
/// the status code and the body. Errors are one line saying which step
/// failed.
pub async fn get(
    addr: &str,
    authority: &str,
    request_target: &str,
    accept: &str,
    max: u64,
) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let request = format!(
        "GET {request_target} HTTP/1.0\r\nHost: {authority}\r\nAccept: {accept}\r\nUser-Agent: synth-replay\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut answer = Vec::new();
    s.take(max)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("reading from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("an answer without HTTP headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("an answer without an HTTP status")?;
    Ok((status, body.to_owned()))
}
