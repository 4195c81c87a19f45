//! Hostile networks per participant (`network:` on a group): the socket
//! wrapper drops and delays datagrams under QUIC, QUIC recovers and its RTT
//! shows the delay, and a group without a network has no wrapper at all.

use synth_relay::{Relay, RelayConfig};
use synth_replayer::run;
use synth_report::score::Band;

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

/// `adapt: true`. Under a 300 kb/s uplink cap a client starting on the
/// 500 kb/s rendition steps down to the 150 kb/s one (at a key frame) and
/// spends most of the run there, its video target follows the time per
/// rendition, and its audio all arrives. The five other adapting clients of
/// its room, without impairment, never switch: what the capped one lives
/// through is not theirs (nor is any CONGESTION about its packets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapting_client_steps_down_under_a_cap_and_keeps_its_audio() {
    use std::sync::atomic::Ordering::Relaxed;
    let r = relay().await;
    let pack = crate::support::pack_two();
    // Long enough that the step down (seen within 3 to 5 s, the later on a
    // loaded machine) leaves most of the run to the low rendition.
    let s = crate::support::settings_with_pack(
        r#"
duration: 16s
ramp_up_delay_ms: 0
groups:
  - count: 1
    user_id: "capped-{index}"
    meeting_id: "adapt-room"
    rendition: video-320x180
    adapt: true
    network: {uplink: {rate_kbps: 300}}
  - count: 5
    user_id: "free-{index}"
    meeting_id: "adapt-room"
    rendition: video-320x180
    adapt: true
"#,
        &r,
        pack,
    );
    let o = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    assert_eq!(rep.clients.connected, 6);
    let times = |i: usize| -> std::collections::BTreeMap<String, f64> {
        o.metrics.clients[i]
            .renditions
            .lock()
            .unwrap()
            .iter()
            .map(|t| (t.name.clone(), t.us as f64 / 1e6))
            .collect()
    };
    let capped = &o.metrics.clients[0];
    let (hi, lo) = ("video-320x180", "video-160x90");
    // The capped client went down, and spent most of its time on the low rendition.
    let t = times(0);
    assert!(capped.switches[0].load(Relaxed) >= 1, "{t:?}");
    let (t_hi, t_lo) = (t[hi], t.get(lo).copied().unwrap_or(0.0));
    assert!(t_lo > t_hi, "time per rendition {t:?}");
    assert!(t_hi > 0.0, "it started on {hi}: {t:?}");
    // The free ones never switched: all their time on the rendition they
    // started on.
    let mut free_hi = 0.0;
    for i in 1..6 {
        let (free, f) = (&o.metrics.clients[i], times(i));
        assert_eq!(
            (
                free.switches[0].load(Relaxed),
                free.switches[1].load(Relaxed)
            ),
            (0, 0),
            "free-{}: {f:?}",
            i - 1
        );
        assert_eq!(f.keys().collect::<Vec<_>>(), vec![hi], "{f:?}");
        free_hi += f[hi];
    }
    // The report's section sums the six clients.
    let a = rep.adaptation.as_ref().expect("an adaptation section");
    assert_eq!(a.clients, 6);
    assert_eq!(
        (a.switches_down, a.switches_up),
        (
            capped.switches[0].load(Relaxed),
            capped.switches[1].load(Relaxed)
        )
    );
    let sum = a.time_per_rendition_s[hi] + a.time_per_rendition_s[lo];
    assert!((sum - (t_hi + t_lo + free_hi)).abs() < 0.01, "{a:?}");
    // The video target follows the time per rendition: below the 500 kb/s
    // rendition's pack bitrate, above the 150 kb/s one's.
    let reader = synth_common::pack::Reader::open(pack).unwrap();
    let bps = |name: &str| reader.bitrate_bps(reader.track_by_name(name).unwrap()) / 1000.0;
    let target = rep.video.sent.target_kbps.unwrap();
    assert!(bps(lo) < target && target < bps(hi), "{target} kb/s");
    // Audio: the relay received every audio packet the capped client sent.
    let sent = |c: &synth_replayer::metrics::ClientStats, m: usize| c.sent_packets[m].load(Relaxed);
    let stats = settled(
        10,
        || r.stats(),
        |s| s.total().audio_packets == rep.audio.sent.packets,
    )
    .await;
    let u = &stats.per_user["capped-0"];
    assert!(sent(capped, 0) > 0);
    assert_eq!(u.audio_packets, sent(capped, 0));
    assert_eq!(u.audio_seq.missing(), 0, "no audio missing");
    assert_eq!(stats.total().audio_packets, rep.audio.sent.packets);
    crate::cli::validate_against_schema(&serde_json::to_value(rep).unwrap());
    assert!(
        rep.summary().contains("adapt    6 adapting client(s)"),
        "{}",
        rep.summary()
    );
}

/// A congested room: a viewer whose downlink carries 100 kb/s makes the
/// relay drop what it cannot deliver to it and tell the whole room, as
/// upstream does. Each sender counts the CONGESTION about its own packets;
/// the viewers, which send no media, count none of their own, and the one
/// whose link keeps up sees the room's (the slow one's copies mostly drop
/// at its full queue, as upstream's would). That viewer is a `bot`: a
/// browser viewer's DIAGNOSTICS (8 a second here) are relayed, and those
/// the slow viewer's full queue drops are rightly its own CONGESTION.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_counts_no_congestion_of_its_own_in_a_congested_room() {
    use std::sync::atomic::Ordering::Relaxed;
    let r = relay().await;
    let pack = crate::support::pack_two();
    let s = crate::support::settings_with_pack(
        r#"
duration: 8s
ramp_up_delay_ms: 0
groups:
  - count: 2
    user_id: "sender-{index}"
    meeting_id: "congested"
    rendition: video-320x180
  - count: 1
    user_id: "slow-{index}"
    meeting_id: "congested"
    role: viewer
    network: {downlink: {rate_kbps: 100}}
  - count: 1
    user_id: "viewer-{index}"
    meeting_id: "congested"
    role: viewer
    client_profile: bot
"#,
        &r,
        pack,
    );
    let o = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    assert_eq!(o.report.clients.connected, 4);
    let relay_told = r.stats().congestion_sent;
    assert!(
        relay_told > 0,
        "the relay dropped packets for the viewer and said so"
    );
    let (senders, slow, viewer) = (
        &o.metrics.clients[..2],
        &o.metrics.clients[2],
        &o.metrics.clients[3],
    );
    for v in [slow, viewer] {
        assert_eq!(
            v.congestion.load(Relaxed),
            0,
            "none is about a viewer's packets"
        );
    }
    assert!(
        viewer.room_congestion.load(Relaxed) > 0,
        "it saw the room's"
    );
    let own: u64 = senders.iter().map(|c| c.congestion.load(Relaxed)).sum();
    assert!(own > 0, "the senders were told of their own packets");
    let sig = &o.report.server_signals;
    assert_eq!(sig.congestion_received, own);
    assert!(sig.room_congestion_seen >= viewer.room_congestion.load(Relaxed));
}

/// Scores, bands and scoped thresholds in one run: a group on the `3g`
/// profile (750 kbit/s each way, less than its meeting's video needs) is
/// red and scores below a group on good Wi-Fi in a meeting of its own; thresholds scoped to the impaired group fail and those scoped to
/// the good one hold, and the JUnit file says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impaired_group_scores_red_and_fails_its_own_thresholds() {
    let r = relay().await;
    let dir = std::env::temp_dir().join(format!("synth-verdicts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("verdicts.xml");
    let csv = dir.join("participants.csv");
    let s = settings(
        &format!(
            r#"
duration: 6s
ramp_up_delay_ms: 0
seed: 3
junit: {junit}
participants: {csv}
groups:
  - {{name: wifi, count: 3, user_id: "w-{{index}}", meeting_id: "room-w", network: good_wifi}}
  - {{name: bad, count: 3, user_id: "b-{{index}}", meeting_id: "room-b", network: 3g}}
thresholds:
  audio_concealment{{group=wifi}}: "< 0.05"
  audio_concealment{{group=bad}}: "< 0.05"
  "share(audio_mos >= 3.5){{group=wifi}}": ">= 1"
  "share(audio_mos >= 3.5){{group=bad}}": ">= 1"
"#,
            junit = junit.display(),
            csv = csv.display()
        ),
        &r,
    );
    let o = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    assert_eq!(rep.clients.connected, 6);
    let scores = rep.scores.as_ref().expect("the run was scored");
    assert_eq!(scores.participants.len(), 6);
    for p in &scores.participants {
        let (audio, verdict) = (p.audio_mos.expect("heard audio"), p.verdict);
        if p.group == "wifi" {
            assert_eq!(p.network.as_deref(), Some("good_wifi"));
            assert_eq!(
                (p.bands.a, p.bands.v),
                (Some(Band::Green), Some(Band::Green)),
                "{p:?}"
            );
            assert_ne!(verdict, Some(Band::Red), "{p:?}");
            assert!(audio >= 3.5, "{p:?}");
        } else {
            assert_eq!(
                (p.group.as_str(), p.network.as_deref()),
                ("bad", Some("3g"))
            );
            assert_eq!(verdict, Some(Band::Red), "{p:?}");
            assert!(audio < 3.5, "{p:?}");
        }
    }
    let median = |g: &str| scores.groups[g].audio_mos.p50.unwrap();
    assert!(median("bad") < median("wifi"));
    // The scoped verdicts: the good group's hold, the impaired group's fail.
    let verdict = |name: &str| {
        let v = rep.thresholds.iter().find(|v| v.name == name).unwrap();
        (v.pass, v.actual)
    };
    assert!(verdict("audio_concealment{group=wifi}").0);
    let (pass, actual) = verdict("audio_concealment{group=bad}");
    assert!(!pass && actual.unwrap() >= 0.05, "{actual:?}");
    assert_eq!(
        verdict("share(audio_mos >= 3.5){group=wifi}"),
        (true, Some(1.0))
    );
    assert_eq!(
        verdict("share(audio_mos >= 3.5){group=bad}"),
        (false, Some(0.0))
    );
    assert!(!rep.passed);
    // The group's figures are in the report, and the JUnit file names the
    // failing cases with both values.
    let bad = rep.scope("group", "bad").unwrap();
    assert_eq!(bad.clients, 3);
    assert_eq!(bad.figures["audio_concealment"], actual);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let case = |name: &str| {
        let at = xml
            .find(&format!("<testcase name=\"{name}"))
            .unwrap_or_else(|| panic!("{name}: {xml}"));
        let rest = &xml[at..];
        // A passing case closes itself (`.../>`), a failing one holds its
        // `<failure>`: cut at whichever ends the case first.
        let open_end = rest.find('>').unwrap();
        let end = if rest[..=open_end].ends_with("/>") {
            open_end
        } else {
            rest.find("</testcase>").unwrap()
        };
        rest[..end].to_string()
    };
    assert!(!case("audio_concealment{group=wifi}").contains("<failure"));
    let failed = case("audio_concealment{group=bad}");
    assert!(failed.contains("<failure message=\"actual "), "{failed}");
    assert!(failed.contains("wanted &lt; 0.05"), "{failed}");
    assert!(case("share(audio_mos &gt;= 3.5){group=bad}").contains("<failure"));
    // The participants file: a header and six rows, the impaired group's
    // red participants first.
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 7, "{text}");
    assert_eq!(
        &rows[0][..5],
        ["id", "group", "meeting", "network", "verdict"]
    );
    for row in &rows[1..4] {
        assert_eq!((row[1], row[3], row[4]), ("bad", "3g", "red"), "{text}");
    }
    for row in &rows[4..] {
        assert_eq!((row[1], row[3]), ("wifi", "good_wifi"), "{text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
