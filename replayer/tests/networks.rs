//! Hostile networks per participant (`network:` on a group): the socket
//! wrapper drops and delays datagrams under QUIC, QUIC recovers and its RTT
//! shows the delay, and a group without a network has no wrapper at all.

use synth_relay::{Relay, RelayConfig};
use synth_replayer::run;

use crate::support::{quiet, settings, settled, within};

async fn relay() -> Relay {
    within(10, "relay start", Relay::start(RelayConfig::default()))
        .await
        .expect("relay starts")
}

/// 5 % uplink loss: the impairment drops datagrams (the report counts them,
/// and QUIC declared packets lost), yet the relay receives every media
/// packet the clients sent — QUIC sent the lost ones again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uplink_loss_is_recovered_by_quic_and_counted() {
    let r = relay().await;
    let s = settings(
        r#"
duration: 3s
ramp_up_delay_ms: 0
seed: 7
groups:
  - count: 2
    user_id: "lossy-{index}"
    meeting_id: "net-loss"
    network: {uplink: {loss: 0.05}}
  - count: 1
    user_id: "plain-{index}"
    meeting_id: "net-loss"
"#,
        &r,
    );
    let o = within(30, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    assert_eq!(rep.clients.connected, 3);
    // Only the group with a network has an entry: the plain one has no wrapper.
    assert_eq!(rep.networks.len(), 1, "{:?}", rep.networks);
    let n = &rep.networks[0];
    assert_eq!(
        (n.group.as_str(), n.profile.as_str(), n.clients),
        ("lossy-{index}", "inline", 2)
    );
    assert!(n.uplink.dropped_loss > 0, "{n:?}");
    let share = n.uplink.dropped_loss as f64 / n.uplink.datagrams as f64;
    assert!((0.02..0.10).contains(&share), "{share}: {n:?}");
    assert_eq!(n.downlink.dropped_loss, 0);
    assert!(n.quic.lost_packets > 0, "QUIC saw the loss: {n:?}");
    assert!(n.quic.samples > 0);
    // Every media packet sent reached the relay, per user.
    let stats = settled(
        10,
        || r.stats(),
        |s| {
            let t = s.total();
            (t.audio_packets, t.video_packets) == (rep.audio.sent.packets, rep.video.sent.packets)
        },
    )
    .await;
    let total = stats.total();
    assert_eq!(total.audio_packets, rep.audio.sent.packets);
    assert_eq!(total.video_packets, rep.video.sent.packets);
    for (i, c) in o.metrics.clients.iter().enumerate().take(2) {
        let u = &stats.per_user[&format!("lossy-{i}")];
        let sent = |m: usize| c.sent_packets[m].load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            (u.audio_packets, u.video_packets),
            (sent(0), sent(1)),
            "lossy-{i}"
        );
        assert_eq!(
            u.audio_seq.missing() + u.video_seq.missing(),
            0,
            "lossy-{i}"
        );
    }
    assert!(rep.audio.sent.packets > 0);
    crate::cli::validate_against_schema(&serde_json::to_value(rep).unwrap());
    assert!(rep
        .summary()
        .contains("network  lossy-{index} (inline, 2 clients)"));
}

/// 200 ms added (100 ms each way): QUIC's RTT in the report rises by about
/// 200 ms over a group in the same run whose network adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_delay_shows_in_quic_rtt() {
    let r = relay().await;
    let s = settings(
        r#"
duration: 3s
ramp_up_delay_ms: 0
networks:
  slow: {uplink: {delay: 100ms}, downlink: {delay: 100ms}}
groups:
  - {count: 2, user_id: "slow-{index}", meeting_id: "net-rtt", network: slow}
  - {count: 2, user_id: "base-{index}", meeting_id: "net-rtt", network: {}}
"#,
        &r,
    );
    let o = within(30, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    assert_eq!(rep.clients.connected, 4);
    let by = |g: &str| rep.networks.iter().find(|n| n.group == g).unwrap();
    let (slow, base) = (by("slow-{index}"), by("base-{index}"));
    assert_eq!(slow.profile, "slow");
    let rise = slow.quic.rtt_ms_mean.unwrap() - base.quic.rtt_ms_mean.unwrap();
    assert!(
        (160.0..240.0).contains(&rise),
        "RTT rose by {rise} ms: {slow:?} vs {base:?}"
    );
    // The wrapper's own account agrees: 100 ms added to each passed datagram.
    for l in [&slow.uplink, &slow.downlink] {
        assert!((95.0..130.0).contains(&l.mean_added_delay_ms), "{l:?}");
        assert_eq!(l.dropped_loss + l.dropped_queue + l.reordered, 0);
    }
    assert_eq!(base.uplink.delayed + base.downlink.delayed, 0);
    assert!(base.uplink.passed > 0 && base.downlink.passed > 0);
}
