//! Upstream's two wires: a run on the framed wire against a framed relay
//! is as exact as on the per-packet wire (nothing lost clean; lost equal to
//! the relay's drops), and a run on the wrong wire never passes.

use synth_common::framing::Wire;
use synth_relay::{Relay, RelayConfig};
use synth_replayer::run;

use crate::support::{quiet, settings, within};

const SIX: &str = r#"
duration: 4s
ramp_up_delay_ms: 20
wire: framed
groups:
  - {count: 6, user_id: "w{index}", meeting_id: "wm{meeting}", meeting_size: 3}
"#;

async fn framed_relay(drop_rate: f64) -> Relay {
    within(
        10,
        "relay start",
        Relay::start(RelayConfig {
            wire: Wire::Framed,
            drop_rate,
            drop_seed: 7,
            health_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..RelayConfig::default()
        }),
    )
    .await
    .expect("relay starts")
}

/// `yaml` with the relay's health port as `health_url` (so `/version` is asked).
fn asking(yaml: &str, relay: &Relay) -> String {
    let at = relay
        .health_addr()
        .expect("the relay serves its health port");
    format!("{yaml}health_url: http://{at}/\n")
}

/// A run of `yaml` against `relay`.
async fn run_on(yaml: &str, relay: &Relay) -> run::Outcome {
    within(
        60,
        "run",
        run::run(settings(yaml, relay), quiet(), std::future::pending()),
    )
    .await
    .expect("run")
}

/// Clean: everything sent arrives, every packet acknowledged (each
/// persistent stream whole, at the end), nothing malformed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framed_run_is_exact() {
    let relay = framed_relay(0.0).await;
    let o = run_on(SIX, &relay).await;
    let stats = relay.shutdown().await;
    let r = &o.report;
    assert_eq!(r.clients.connected, 6);
    let wire = r.wire.as_ref().unwrap();
    assert_eq!(
        (wire.used.as_str(), wire.chosen_by.as_str()),
        ("framed", "config")
    );
    for m in [&r.audio, &r.video] {
        assert!(m.received.exact.expected > 0);
        assert_eq!(m.received.lost, 0, "{:?}", m.received);
        assert_eq!(m.received.exact.lost, 0);
        assert_eq!(m.sent.unacked, 0, "{:?}", m.sent);
        assert_eq!(m.sent.acked, m.sent.packets);
    }
    assert_eq!(stats.malformed_streams, 0);
    assert!(r.passed, "{:?}", r.thresholds);
    let d = r
        .thresholds
        .iter()
        .find(|v| v.name == "delivered_share")
        .unwrap();
    assert_eq!((d.actual, d.pass), (Some(1.0), true));
}

/// The relay drops 5 %: the report's lost are exactly its drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_losses_are_the_relays_drops() {
    let relay = framed_relay(0.05).await;
    let s = settings(SIX, &relay);
    let users: Vec<String> = s.clients.iter().map(|c| c.user_id.clone()).collect();
    let o = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .expect("run");
    let stats = relay.shutdown().await;
    let dropped = users.iter().fold((0, 0), |t, u| {
        let d = stats
            .per_user
            .get(u)
            .map_or((0, 0), |s| (s.dropped_audio, s.dropped_video));
        (t.0 + d.0, t.1 + d.1)
    });
    assert!(dropped.0 > 0 && dropped.1 > 0, "{dropped:?}");
    assert_eq!(stats.relay_drops, 0);
    let r = &o.report;
    assert_eq!((r.audio.received.lost, r.video.received.lost), dropped);
    assert_eq!(r.audio.received.exact.lost, dropped.0);
}

/// Per-packet clients against a framed relay: every stream is malformed
/// there, nothing is relayed, and the run fails on the built-in
/// `delivered_share` with one line naming the likely cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_wire_never_passes() {
    let relay = framed_relay(0.0).await;
    let yaml = asking(&SIX.replace("wire: framed", "wire: per_packet"), &relay);
    let o = run_on(&yaml, &relay).await;
    let stats = relay.shutdown().await;
    let r = &o.report;
    assert_eq!(r.clients.connected, 6, "they connect");
    assert!(stats.malformed_streams > 0);
    assert_eq!(r.audio.received.packets + r.video.received.packets, 0);
    assert!(!r.passed);
    assert_eq!(o.exit_code, run::EXIT_THRESHOLD);
    let d = r
        .thresholds
        .iter()
        .find(|v| v.name == "delivered_share")
        .unwrap();
    assert_eq!(
        (d.expr.as_str(), d.actual, d.pass),
        (">= 0.01 (built in)", Some(0.0), false)
    );
    let line = r.nothing_delivered().unwrap();
    assert!(
        line.starts_with(
            "nothing delivered: 0.00 % of the media expected arrived in time; likely cause: the wire: the server speaks framed (/version: synth-relay "
        ),
        "{line}"
    );
    assert!(
        line.ends_with("and this run spoke per_packet; set wire: framed (or auto)"),
        "{line}"
    );
    assert!(r.summary().contains(&format!("FAILED   {line}")));
}

/// `wire: auto` asks the server's `/version` and speaks what it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_speaks_the_wire_the_server_names() {
    let relay = framed_relay(0.0).await;
    let yaml = asking(&SIX.replace("wire: framed", "wire: auto"), &relay);
    let o = run_on(&yaml, &relay).await;
    relay.shutdown().await;
    let r = &o.report;
    let w = r.wire.as_ref().unwrap();
    assert_eq!(
        (w.used.as_str(), w.chosen_by.as_str()),
        ("framed", "version")
    );
    let v = w.server_version.as_ref().unwrap();
    assert_eq!(
        (v.service.as_deref(), v.wire.as_deref()),
        (Some("synth-relay"), Some("framed"))
    );
    assert_eq!(r.audio.received.exact.lost + r.video.received.exact.lost, 0);
    assert!(r.audio.received.packets > 0);
    assert!(r.passed, "{:?}", r.thresholds);
}
