//! The report stays true when the server misbehaves: a relay told to drop
//! packets, to stall, or killed outright and restarted. Every assertion is an
//! exact count, or a bound far from what a loaded machine could reach; none
//! measures speed.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use synth_relay::{Relay, RelayConfig, Stall};
use synth_replayer::metrics::State;
use synth_replayer::run;
use synth_report::score::Band;

use crate::support::{
    metric, pack, quiet, run_in_background, scraped, settings, settings_at, within,
};

/// Two meetings of three, every client sending audio and video.
const SIX: &str = r#"
duration: 4s
ramp_up_delay_ms: 20
groups:
  - {count: 6, user_id: "f{index}", meeting_id: "fm{meeting}", meeting_size: 3}
"#;

/// A relay that drops 5 % of the media it relays: the report's lost packets
/// are exactly the relay's drops, per media and per receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_packets_are_lost_exactly() {
    let relay = Relay::start(RelayConfig {
        drop_rate: 0.05,
        drop_seed: 7,
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    let s = settings(SIX, &relay);
    let plan: Vec<String> = s.clients.iter().map(|c| c.user_id.clone()).collect();
    let outcome = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .expect("run");
    let stats = relay.shutdown().await;
    let r = &outcome.report;
    assert_eq!(r.clients.connected, 6);
    let dropped = |u: &str| {
        stats
            .per_user
            .get(u)
            .map_or((0, 0), |s| (s.dropped_audio, s.dropped_video))
    };
    let total = plan.iter().fold((0, 0), |t, u| {
        let d = dropped(u);
        (t.0 + d.0, t.1 + d.1)
    });
    assert!(total.0 > 0 && total.1 > 0, "the relay dropped {total:?}");
    // Only the injected drops: no delivery was lost to a full queue.
    assert_eq!(stats.relay_drops, 0, "the relay's queues overflowed");
    assert_eq!(
        (r.audio.received.lost, r.video.received.lost),
        total,
        "report lost (audio, video) == relay dropped"
    );
    // Every loss is checked against what the senders sent: none inferred.
    assert_eq!(r.audio.received.exact.lost, r.audio.received.lost);
    assert_eq!(r.video.received.exact.lost, r.video.received.lost);
    // Per receiver, too.
    for (i, user) in plan.iter().enumerate() {
        let peers = outcome.metrics.clients[i].peers.lock().unwrap().clone();
        let mut lost = [0u64; 2];
        for (from, view) in &peers {
            let s = plan.iter().position(|u| u == from).unwrap();
            for (m, l) in lost.iter_mut().enumerate() {
                let next = outcome.metrics.clients[s].next_seq[m]
                    .load(std::sync::atomic::Ordering::Relaxed);
                let from = view.expect_from.expect("a peer of this process")[m];
                *l += synth_common::quality::Exact::check(&view.media[m].seq, from, next).lost;
            }
        }
        let d = dropped(user);
        assert_eq!(
            (lost[0], lost[1]),
            d,
            "{user}: lost (audio, video) == relay dropped"
        );
    }
    // Dropped packets are concealed audio slots.
    let c = r.audio.received.concealment.clone().unwrap();
    assert!(c.concealed >= total.0, "{c:?}");
    // And the scores move with them: 5 % of the audio lost is past band
    // A's 1 % (yellow at least), and the E-model takes it off every MOS
    // (4.18 on loopback without loss).
    let scores = r.scores.as_ref().expect("the run was scored");
    assert_eq!(scores.participants.len(), 6);
    for p in &scores.participants {
        assert!(
            matches!(p.bands.a, Some(Band::Yellow | Band::Red)),
            "{}: {:?}",
            p.id,
            p.inputs
        );
        assert!(p.audio_mos.unwrap() < 4.0, "{p:?}");
    }
}

/// Two meetings of two; the relay stops reading and relaying for 1 s in
/// the middle: every receiver sees one freeze of about that long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_is_one_freeze_per_receiver() {
    // The stall's clock starts with the relay: the pack is built first (the
    // first test of a process to need it builds it, which took longer than
    // the 2.5 s, and the stall came before the clients).
    pack();
    let relay = Relay::start(RelayConfig {
        stall: Some(Stall {
            after: Duration::from_millis(2500),
            duration: Duration::from_secs(1),
        }),
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    let yaml = r#"
duration: 6s
ramp_up_delay_ms: 20
groups:
  - {count: 4, user_id: "s{index}", meeting_id: "sm{meeting}", meeting_size: 2}
"#;
    let s = settings(yaml, &relay);
    let outcome = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .expect("run");
    let stats = relay.shutdown().await;
    assert_eq!(stats.stalls.len(), 1, "{:?}", stats.stalls);
    let r = &outcome.report;
    assert_eq!(r.clients.connected, 4);
    let mut pairs = 0;
    for c in outcome.metrics.clients.iter() {
        for (from, view) in c.peers.lock().unwrap().iter() {
            let f = view.media[1].freezes;
            // One freeze as long as the stall; a loaded test machine may
            // add short ones of its own, never another of a second.
            assert!(
                f.longest_ms >= 900.0 && f.longest_ms < 4000.0,
                "from {from}: about the stall's 1 s: {f:?}"
            );
            assert!(
                f.total_ms - f.longest_ms < 900.0,
                "from {from}: one freeze as long as the stall: {f:?}"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 4);
    let fr = r.video.received.freezes.clone().unwrap();
    assert!(fr.count >= 4 && fr.receivers_with_freezes == 4, "{fr:?}");
    assert!(fr.share.is_some_and(|s| s > 0.0 && s < 1.0), "{fr:?}");
    // Audio held up for a second missed its playout.
    let c = r.audio.received.concealment.clone().unwrap();
    assert!(c.concealed > 0 && c.share.is_some_and(|s| s < 1.0), "{c:?}");
    // Nothing was lost: the stall delayed, it did not drop.
    assert_eq!((r.audio.received.lost, r.video.received.lost), (0, 0));
    // A second frozen in about five watched is far past band V's 3 %:
    // every participant is red, and its video score pays for the frozen
    // time (a clean loopback run scores 4.5 and more).
    let scores = r.scores.as_ref().expect("the run was scored");
    assert_eq!(scores.participants.len(), 4);
    for p in &scores.participants {
        assert_eq!(p.bands.v, Some(Band::Red), "{}: {:?}", p.id, p.inputs);
        assert_eq!(p.verdict, Some(Band::Red));
        assert!(p.video_score.unwrap() < 4.5, "{p:?}");
    }
}

/// A free UDP port on loopback (bound and released; the relay binds it next).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `synth-replay relay` on `port` with the given certificate, as a child;
/// returns it once it printed its address.
fn relay_child(port: u16, cert: &std::path::Path, key: &std::path::Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_synth-replay"))
        .args([
            "relay",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--leave-grace",
            "0s",
        ])
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting synth-replay relay");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the relay prints its address");
    assert!(line.contains("\"url\""), "{line}");
    child
}

fn kill9(child: &mut Child) {
    // SAFETY: kill(2) with a pid we own; no memory is touched.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// A relay killed with SIGKILL (no close reaches the clients) and restarted
/// on the same address with the same certificate: the clients see it dead
/// within their idle timeout (stalled first), are back soon after the
/// restart, and the outage shows as lost (receivers) and unacknowledged
/// (senders), never as 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relay_is_seen_and_the_outage_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let pin = synth_common::fingerprint::sha256(cert.cert.der());
    let port = free_udp_port();
    let mut first = relay_child(port, &cert_pem, &key_pem);

    let yaml = r#"
duration: 60s
ramp_up_delay_ms: 20
keep_alive: 300ms
idle_timeout: 3s
stall_after: 1s
groups:
  - {count: 4, user_id: "k{index}", meeting_id: "km{meeting}", meeting_size: 2}
"#;
    let s = settings_at(yaml, format!("https://127.0.0.1:{port}"), pin);
    let (run, addr, stop) = run_in_background(s).await;
    let state = |text: &str, s: &str| metric(text, &format!("synth_clients{{state=\"{s}\"}}"));
    scraped(addr, "all four connected", |t| state(t, "connected") == 4.0).await;
    kill9(&mut first);
    // Seen as stalled, then as dead: every client reconnecting.
    scraped(addr, "a client stalled", |t| state(t, "stalled") > 0.0).await;
    scraped(addr, "every client reconnecting", |t| {
        metric(t, "synth_reconnects_total") >= 4.0
    })
    .await;
    let mut second = relay_child(port, &cert_pem, &key_pem);
    let text = scraped(addr, "all four back", |t| state(t, "connected") == 4.0).await;
    // Some media through the new relay, then the end.
    let audio = "synth_packets_received_total{media=\"audio\"}";
    let before = metric(&text, audio);
    scraped(addr, "media flows again", |t| {
        metric(t, audio) > before + 200.0
    })
    .await;
    stop.send(()).unwrap();
    let outcome = within(60, "run", run).await.unwrap().expect("run");
    kill9(&mut second);
    let r = &outcome.report;
    assert_eq!(r.clients.connected, 4);
    assert!(r.clients.reconnects >= 4, "{:?}", r.clients);
    assert!(r.clients.stalls >= 1, "{:?}", r.clients);
    // Issue #24: a server that went silent is our idle timeout, every time
    // (web-transport-quinn's own close masks QUIC's reason: the silence
    // before the end tells it).
    let ends = &r.clients.session_ends;
    assert_eq!(ends.idle_timeout, r.clients.reconnects, "{ends:?}");
    for (name, m) in [("audio", &r.audio), ("video", &r.video)] {
        let causes = m.received.lost_causes.expect("exact pairs");
        assert_eq!(
            causes.while_connected + causes.while_down,
            m.received.exact.lost,
            "{name}"
        );
        assert!(
            m.received.lost > 0,
            "{name}: the outage is lost: {:?}",
            m.received
        );
        assert_eq!(m.received.exact.lost, m.received.lost, "{name}");
        assert!(m.received.exact.lost < m.received.exact.expected, "{name}");
        assert!(
            m.sent.unacked > 0,
            "{name}: written into the dead session: {:?}",
            m.sent
        );
        assert_eq!(m.sent.acked + m.sent.unacked, m.sent.packets, "{name}");
    }
    let states: BTreeMap<_, _> = outcome
        .metrics
        .clients
        .iter()
        .map(|c| (format!("{:?}", c.state()), ()))
        .collect();
    assert_eq!(
        states.keys().collect::<Vec<_>>(),
        [&format!("{:?}", State::Done)]
    );
}

/// Issue #24: a receiver whose link goes down for 3 s sees its session end
/// by its own idle timeout and reconnects; the media its peer sent from
/// then until it was back are lost "while down", the rest "while
/// connected", and every session end is counted once with its cause, in
/// the report and on the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_and_back_splits_the_loss_and_names_its_end() {
    let relay = Relay::start(RelayConfig::default()).await.unwrap();
    let s = settings(
        r#"
duration: 10s
ramp_up_delay_ms: 20
keep_alive: 200ms
idle_timeout: 1s
timeline_interval: 1s
groups:
  - {count: 1, user_id: "steady-{index}", meeting_id: "dn"}
  - count: 1
    user_id: "dropped-{index}"
    meeting_id: "dn"
    network: {schedule: [{at: 2s, down: 3s}]}
"#,
        &relay,
    );
    let outcome = within(60, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .expect("run");
    relay.shutdown().await;
    let r = &outcome.report;
    assert_eq!(r.clients.connected, 2);
    let ends = &r.clients.session_ends;
    // The dropped client noticed by its idle timeout (its reconnection
    // attempts while the link was down are failed attempts, not ends).
    assert!(
        ends.idle_timeout >= 1,
        "{ends:?} {:?}",
        r.clients.server_close_reasons
    );
    assert_eq!((ends.server_closed, ends.reset), (0, 0), "{ends:?}");
    assert_eq!(ends.unplanned(), r.clients.reconnects, "{ends:?}");
    assert!((1..=2).contains(&ends.planned), "{ends:?}");
    assert!(r.clients.server_close_reasons.is_empty());
    // The timeline's intervals add up to the report's counts.
    let t = r.timeline.as_ref().expect("a timeline");
    let mut summed = synth_report::model::SessionEnds::default();
    for s in &t.samples {
        summed.add(&s.session_ends);
    }
    assert_eq!(&summed, ends);
    // The dropped client's view of the steady one: a span while it was
    // down, closed when it was back.
    let steady = &outcome.metrics.clients[0];
    let view = outcome.metrics.clients[1].peers.lock().unwrap()["steady-0"];
    let mut down_total = 0;
    for (m, name) in [(0, "audio"), (1, "video")] {
        let d = view.down[m];
        assert_eq!(d.open_from, None, "{name}: back up: {d:?}");
        assert!(
            d.closed > 0,
            "{name}: the steady client sent while it was down: {d:?}"
        );
        let until = steady.next_seq[m].load(std::sync::atomic::Ordering::Relaxed);
        let e = synth_common::quality::Exact::check(
            &view.media[m].seq,
            view.expect_from.unwrap()[m],
            until,
        );
        let missed = d.missed(until, e.lost);
        assert!(missed > 0 && missed <= d.closed, "{name}: {d:?} {e:?}");
        down_total += missed;
        let rx = if m == 0 {
            &r.audio.received
        } else {
            &r.video.received
        };
        let causes = rx
            .lost_causes
            .expect("senders of this process were checked");
        assert_eq!(rx.exact.lost, rx.lost, "{name}: every loss is exact");
        assert_eq!(
            causes.while_connected + causes.while_down,
            rx.exact.lost,
            "{name}: {causes:?}"
        );
        // Only the dropped client was ever down.
        assert_eq!(causes.while_down, missed, "{name}: {causes:?}");
    }
    assert_eq!(r.meetings[0].lost_while_down, down_total);
    // The steady client never went down: nothing of what it missed of the
    // dropped one (written into a dead session) counts as while down.
    let view = outcome.metrics.clients[0].peers.lock().unwrap()["dropped-0"];
    assert_eq!(view.down, [synth_replayer::metrics::Down::default(); 2]);
    assert!(
        r.summary().contains("ends     session ends: "),
        "{}",
        r.summary()
    );
}
