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

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use synth_common::framing::Wire;
use synth_common::http::{self, Reply};
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
    let task = http::serve(listener, move |method, path| answer(method, path, &version));
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|v| *v).await;
        task.abort();
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

fn answer(method: &str, path: &str, version: &Bytes) -> Reply {
    match (method, path) {
        ("GET", "/healthz") => Reply::text(200, "Ok"),
        ("GET", "/version") => Reply {
            status: 200,
            content_type: "application/json",
            body: version.clone(),
        },
        _ => Reply::text(404, "not found: try GET /healthz or GET /version\n"),
    }
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
