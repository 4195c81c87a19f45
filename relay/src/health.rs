//! The relay's health port (`--health-listen`): plain HTTP/1.1 answering
//! `GET /healthz` and `GET /version`, as upstream's WebTransport server does
//! on `HEALTH_LISTEN_URL` (`actix-api/src/bin/webtransport_server.rs`
//! `health_responder`, `actix-api/src/version.rs` `build_info`).
//!
//! `/healthz` answers `Ok`, upstream's body. `/version` answers JSON with
//! what this relay can say truthfully: `service` (`synth-relay`), `version`
//! (the crate's) and `wire` (`per_packet` or `framed`), so a script can tell
//! which wire a relay speaks as it tells a real server's line by its
//! `/version`. Upstream's answer also has `git_sha`, `git_branch` and
//! `build_timestamp`, stamped by its build; this build stamps none, so they
//! are left out rather than made up.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use synth_common::framing::Wire;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What `/version` names the service.
pub(crate) const SERVICE: &str = "synth-relay";

/// Binds `addr` and serves until `shutdown` turns true; returns the bound
/// address (useful with port 0).
pub(crate) async fn serve(
    addr: SocketAddr,
    wire: Wire,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the health port (--health-listen) on {addr}"))?;
    let local = listener.local_addr().context("health port address")?;
    let version = Bytes::from(version_json(wire));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.wait_for(|v| *v) => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Out of descriptors, or a connection reset before it was
                // taken: the next one may do, after a pause (out of
                // descriptors, accept fails at once and would spin).
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let version = version.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| answer(req, version.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(local)
}

/// The body of `GET /version`.
pub(crate) fn version_json(wire: Wire) -> String {
    serde_json::json!({
        "service": SERVICE,
        "version": env!("CARGO_PKG_VERSION"),
        "wire": wire,
    })
    .to_string()
}

async fn answer(
    req: Request<Incoming>,
    version: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, ctype, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET", "/healthz") => (StatusCode::OK, "text/plain", Bytes::from_static(b"Ok")),
        ("GET", "/version") => (StatusCode::OK, "application/json", version),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: try GET /healthz or GET /version\n"),
        ),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_the_service_its_version_and_wire_and_nothing_made_up() {
        let v: serde_json::Value = serde_json::from_str(&version_json(Wire::Framed)).unwrap();
        assert_eq!(v["service"], "synth-relay");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["wire"], "framed");
        assert_eq!(v.as_object().unwrap().len(), 3, "no git sha we do not have");
        let v: serde_json::Value = serde_json::from_str(&version_json(Wire::PerPacket)).unwrap();
        assert_eq!(v["wire"], "per_packet");
    }
}
