//! Before the run: the server's `GET /version` on its health port, and the
//! wire the clients speak, chosen from the config and that answer
//! (`wire: auto` reads the branch: upstream's `RnD` frames its packets on
//! persistent streams, `main` sends one per stream).

use std::time::Duration;

use synth_report::model::{ServerVersion, WireReport};

use crate::config::{WireChoice, WireSettings};

/// How long the server has to answer `/version`.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(2);

/// The most of an answer read.
const MAX_ANSWER: u64 = 64 * 1024;

pub use synth_common::framing::Wire;

/// The server's `/version` at `health` (`http://host:port`).
pub async fn ask(health: &url::Url) -> Result<ServerVersion, String> {
    let host = health.host_str().ok_or("health_url has no host")?;
    let port = health.port_or_known_default().unwrap_or(80);
    let addr = format!("{host}:{port}");
    let target = health
        .join("version")
        .map_err(|e| format!("health_url: {e}"))?;
    let get = crate::http::get(&addr, &addr, target.path(), "application/json", MAX_ANSWER);
    let (status, body) = tokio::time::timeout(VERSION_TIMEOUT, get)
        .await
        .map_err(|_| format!("no answer from {target} within {VERSION_TIMEOUT:?}"))??;
    if status != 200 {
        return Err(format!("{target} answered HTTP {status}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{target} answered what is not its JSON: {e}"))
}

/// The wire for `settings` given the server's answer (`None`: not asked),
/// and what the report says of it.
pub fn choose(
    settings: &WireSettings,
    answer: Option<Result<ServerVersion, String>>,
    observer_token: bool,
) -> (Wire, WireReport) {
    let (version, error) = match answer {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let (wire, chosen_by) = match settings.choice {
        WireChoice::PerPacket => (Wire::PerPacket, "config"),
        WireChoice::Framed => (Wire::Framed, "config"),
        WireChoice::Auto => match version.as_ref().and_then(wire_of) {
            Some(w) => (w, "version"),
            None => (Wire::PerPacket, "default"),
        },
    };
    let report = WireReport {
        used: wire.as_str().into(),
        chosen_by: chosen_by.into(),
        server_version: version,
        version_error: error,
        observer_token,
    };
    (wire, report)
}

/// The wire a `/version` answer says: its own `wire` field (the relay
/// gives one), else from upstream's branch (`RnD` frames, `main` does
/// not); `None` for another branch.
pub fn wire_of(v: &ServerVersion) -> Option<Wire> {
    match v.wire.as_deref() {
        Some("framed") => return Some(Wire::Framed),
        Some("per_packet") => return Some(Wire::PerPacket),
        _ => {}
    }
    let branch = v.git_branch.as_deref()?;
    if branch.eq_ignore_ascii_case("rnd") {
        Some(Wire::Framed)
    } else if branch == "main" {
        Some(Wire::PerPacket)
    } else {
        None
    }
}

/// The line the run prints about its wire before it starts.
pub fn line(r: &WireReport) -> String {
    let said = match (&r.server_version, &r.version_error) {
        (Some(v), _) => format!("/version: {}", v.line()),
        (None, Some(e)) => format!("/version did not answer: {e}"),
        (None, None) => "/version not asked".into(),
    };
    let why = match r.chosen_by.as_str() {
        "config" => "as the config says",
        "version" => "as the server's /version says",
        _ => "auto without an answer keeps per_packet",
    };
    format!("wire: {} ({why}; {said})", r.used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(branch: Option<&str>, wire: Option<&str>) -> ServerVersion {
        ServerVersion {
            service: Some("webtransport-relay".into()),
            git_branch: branch.map(str::to_owned),
            wire: wire.map(str::to_owned),
            ..ServerVersion::default()
        }
    }

    fn settings(choice: WireChoice) -> WireSettings {
        WireSettings {
            choice,
            health_url: Some("http://127.0.0.1:5321/".parse().unwrap()),
        }
    }

    #[test]
    fn auto_follows_the_branch_or_keeps_per_packet() {
        let auto = settings(WireChoice::Auto);
        let (w, r) = choose(&auto, Some(Ok(v(Some("RnD"), None))), false);
        assert_eq!((w, r.chosen_by.as_str()), (Wire::Framed, "version"));
        let (w, _) = choose(&auto, Some(Ok(v(Some("main"), None))), false);
        assert_eq!(w, Wire::PerPacket);
        let (w, r) = choose(&auto, Some(Ok(v(Some("feature-x"), None))), false);
        assert_eq!((w, r.chosen_by.as_str()), (Wire::PerPacket, "default"));
        let (w, r) = choose(&auto, Some(Err("connecting: refused".into())), true);
        assert_eq!((w, r.chosen_by.as_str()), (Wire::PerPacket, "default"));
        assert_eq!(r.version_error.as_deref(), Some("connecting: refused"));
        assert!(r.observer_token);
        assert!(line(&r).starts_with("wire: per_packet (auto without an answer keeps per_packet; /version did not answer: connecting: refused"));
        // The relay says its wire outright.
        let (w, _) = choose(&auto, Some(Ok(v(None, Some("framed")))), false);
        assert_eq!(w, Wire::Framed);
    }

    #[test]
    fn the_config_wins_and_the_answer_is_kept() {
        let (w, r) = choose(
            &settings(WireChoice::PerPacket),
            Some(Ok(v(Some("RnD"), None))),
            false,
        );
        assert_eq!((w, r.chosen_by.as_str()), (Wire::PerPacket, "config"));
        assert_eq!(r.server_version.unwrap().git_branch.as_deref(), Some("RnD"));
    }

    /// A stand-in health port: `/version` answered as upstream's server does.
    #[tokio::test]
    async fn asks_over_plain_http() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = vec![0u8; 1024];
            let n = s.read(&mut req).await.unwrap();
            let body = r#"{"service":"webtransport-relay","version":"1.0.1","git_sha":"58c81a50","git_branch":"RnD","build_timestamp":"2026-12-07T14:17:45Z"}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&req[..n]).into_owned()
        });
        let url: url::Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let v = ask(&url).await.unwrap();
        assert_eq!(v.git_branch.as_deref(), Some("RnD"));
        assert_eq!(v.git_sha.as_deref(), Some("58c81a50"));
        let req = server.await.unwrap();
        assert!(req.starts_with("GET /version HTTP/1.0\r\n"), "{req}");
        // Nothing listening: one line saying so.
        let closed: url::Url = "http://127.0.0.1:9/".parse().unwrap();
        let e = ask(&closed).await.unwrap_err();
        assert!(e.contains("127.0.0.1:9"), "{e}");
    }
}
