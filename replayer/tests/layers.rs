//! Simulcast and views (upstream `RnD`'s layers): every layer a sender
//! sends arrives with numbers of its own, and a receiver that shows fewer
//! tiles or asks for one layer gets only that, with its loss still exact,
//! on both wires.

use synth_common::framing::Wire;
use synth_relay::{Relay, RelayConfig, RelayStats};
use synth_replayer::run;
use synth_report::model::Report;

use crate::support::{pack_two, quiet, settings_with_pack, within};

async fn relay(wire: Wire) -> Relay {
    within(
        10,
        "relay start",
        Relay::start(RelayConfig {
            wire,
            ..RelayConfig::default()
        }),
    )
    .await
    .expect("relay starts")
}

/// A run of meetings of three simulcast senders on `wire`, each client
/// with `view` (YAML, or empty), against a relay of that wire.
async fn run_meetings(wire: Wire, view: &str) -> (Report, RelayStats) {
    let relay = relay(wire).await;
    let w = match wire {
        Wire::Framed => "framed",
        Wire::PerPacket => "per_packet",
    };
    let yaml = format!(
        r#"
duration: 4s
ramp_up_delay_ms: 20
wire: {w}
groups:
  - {{count: 6, user_id: "s{{index}}", meeting_id: "sm{{meeting}}", meeting_size: 3, simulcast: true{view}}}
"#
    );
    let s = settings_with_pack(&yaml, &relay, pack_two());
    let o = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .expect("run");
    (o.report, relay.shutdown().await)
}

fn exact(r: &Report) {
    for m in [&r.audio, &r.video] {
        assert!(m.received.exact.expected > 0, "{:?}", m.received);
        assert_eq!(m.received.exact.lost, 0, "{:?}", m.received);
        assert_eq!(m.received.lost, 0);
    }
    assert!(r.passed, "{:?}", r.thresholds);
}

/// Without a view every layer of every peer arrives: layer 1 as often as
/// layer 0, nothing missing in either, nothing unasked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_layer_arrives_with_numbers_of_its_own() {
    for wire in [Wire::PerPacket, Wire::Framed] {
        let (r, _) = run_meetings(wire, "").await;
        exact(&r);
        let l = r.layers.as_ref().expect("a layers section");
        assert_eq!(l.senders, 6);
        assert!(l.sent[0] > 0 && l.sent[1] == l.sent[0], "{l:?}");
        assert_eq!(l.sent[2], 0, "two renditions, two layers");
        // Each layer-0 packet reaches the two peers of its meeting, and so
        // does its layer-1 twin.
        let owed = r.video.received.exact.expected;
        assert!(
            l.received[0] >= owed && l.received[0] <= 2 * l.sent[0],
            "{l:?}"
        );
        assert_eq!(l.received[1], l.received[0], "{l:?}");
        assert_eq!(l.upper_missing, 0);
        assert_eq!(l.unrequested, 0);
        assert!(l.receivers.is_empty(), "nobody has a view");
    }
}

/// One tile at `low`: each receiver gets layer 0 of one peer of its two,
/// its loss still exact; what the relay sent it before the view took hold
/// is counted as not asked for, and everything the relay sent is accounted
/// for. A publisher every peer asks layer 0 of is hinted down after 2 s
/// and sheds its other layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_gets_what_it_asked_for_and_its_loss_stays_exact() {
    for wire in [Wire::PerPacket, Wire::Framed] {
        let (r, relay) = run_meetings(wire, ", view: {tiles: 1, layer: low}").await;
        exact(&r);
        let l = r.layers.as_ref().expect("a layers section");
        assert_eq!(l.receivers.len(), 6, "{l:?}");
        assert_eq!((l.viewports_sent > 0, l.preferences_sent > 0), (true, true));
        assert_eq!(l.received[1], 0, "layer 1 was never asked for: {l:?}");
        for rc in &l.receivers {
            assert!(rc.layers[0] > 0, "{rc:?}");
        }
        // One peer of two in view: about half of layer 0 is owed.
        let sent0 = l.sent[0];
        assert!(l.received[0] <= sent0 + sent0 / 10, "{l:?}");
        // What the relay sent as video is what arrived, asked for or not.
        let relayed: u64 = relay
            .per_user
            .values()
            .map(|u| u.sent_video_layers.iter().sum::<u64>())
            .sum();
        assert_eq!(
            relayed,
            l.received.iter().sum::<u64>() + l.unrequested,
            "{l:?}"
        );
        assert!(relay.viewport_filtered > 0 && relay.layer_filtered > 0);
        // A publisher both its peers show is hinted down to layer 0 after
        // 2 s and sheds layer 1; one a peer does not show keeps it (that
        // peer has no preference for it: every layer, as upstream counts).
        assert!(l.sheds >= 1 && l.sheds <= 6, "{l:?}");
        assert!(l.sent[1] < l.sent[0], "{l:?}");
    }
}
