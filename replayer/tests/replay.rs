//! Runs of synth-replay against the in-process relay: what reaches whom, rates,
//! decodability, key-frame requests, tokens, metrics and the report.
//!
//! The runs end when the test has seen what it needs (`run::Options::stop`),
//! not after a time, and counts are compared once the relay has counted them.
//! Send rates are checked on the schedule itself, at explicit instants.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use synth_common::pack::{Reader, TrackKind};
use synth_common::wire::{self, media_type, packet_type, MediaPrefix};
use synth_relay::{Relay, RelayConfig, RelayStats};
use synth_replayer::metrics::Media;
use synth_replayer::pacer::{Heads, Lane};
use synth_replayer::run;
use tokio::sync::oneshot;

use crate::support::{
    metric, pack, quiet, run_in_background, scrape, scraped, settings, settled, stopped, until,
    within, Probe, PACK_SECONDS,
};

const ROOMS: &str = r#"
duration: 4s
ramp_up_delay_ms: 0
clients:
  - {user_id: a1, meeting_id: room-a}
  - {user_id: a2, meeting_id: room-a}
  - {user_id: a3, meeting_id: room-a}
  - {user_id: b1, meeting_id: room-b}
"#;
const USERS: [&str; 4] = ["a1", "a2", "a3", "b1"];

/// A run's length when `stop` ends it: far beyond any test.
const UNTIL_STOPPED: Duration = Duration::from_secs(3600);

async fn relay() -> Relay {
    within(10, "relay start", Relay::start(RelayConfig::default()))
        .await
        .expect("relay starts")
}

/// An audio or video packet the probe received.
struct Seen {
    from: String,
    video: bool,
    seq: u64,
    key: bool,
    frame: Vec<u8>,
}

fn seen(bytes: &[u8]) -> Option<Seen> {
    let p = wire::parse(bytes).expect("a PacketWrapper");
    if p.packet_type != packet_type::MEDIA {
        return None;
    }
    let m = wire::parse_media(p.data).expect("a MediaPacket");
    let video = match m.media_type {
        media_type::VIDEO => true,
        media_type::AUDIO => false,
        _ => return None,
    };
    Some(Seen {
        from: String::from_utf8(p.user_id.to_vec()).unwrap(),
        video,
        seq: m.sequence?,
        key: m.is_key(),
        frame: m.data.to_vec(),
    })
}

/// The sequence numbers of a2's key frames among `packets`.
fn a2_keys(packets: &[Vec<u8>]) -> Vec<u64> {
    packets
        .iter()
        .filter_map(|p| seen(p))
        .filter(|m| m.from == "a2" && m.video && m.key)
        .map(|m| m.seq)
        .collect()
}

/// 3 clients in one meeting, 1 in another, plus a probe in the first that
/// records the video of a1 and asks a2 for a key frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_rates_decoding_and_keyframes() {
    let relay = relay().await;
    let mut s = settings(ROOMS, &relay);
    s.duration = UNTIL_STOPPED;
    // The probe is in the room before the clients start, so it sees all of
    // a1's video and a2's first (in this pack, only scheduled) key frame.
    let mut probe = Probe::join(&relay, "probe", "room-a").await;
    let (run, metrics_addr, stop_tx) = run_in_background(s).await;

    // Mid-run. The whole of it is bounded well inside the pack's loop, so a2
    // cannot reach a scheduled key frame other than its first.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let (relay_mid, scraped) = within(PACK_SECONDS - 10, "the middle of the run", async {
        // Once the relay has counted audio and video from every client: what
        // the relay counted, then what the replayer says it sent. The scrape
        // can only be ahead.
        let relay_mid = until(15, "media from every client", || {
            let s = relay.stats();
            USERS
                .iter()
                .all(|u| {
                    s.per_user
                        .get(*u)
                        .is_some_and(|c| c.audio_packets > 0 && c.video_packets > 0)
                })
                .then(|| s.total())
        })
        .await;
        // And once each client of room-a has heard its two peers: a peer
        // that sent nothing between a client's join and the stop (a loaded
        // machine's stall) would owe it nothing and show it nothing.
        let scraped = scraped(metrics_addr, "each client hearing its peers", |t| {
            metric(t, "synth_join_visibility_seconds_count") >= 6.0
        })
        .await;
        assert!(scrape(metrics_addr, "/healthz").await.starts_with("ok"));
        // Ask a2 for a key frame; what the probe had until then is kept apart.
        while let Ok(p) = probe.packets.try_recv() {
            before.push(p);
        }
        probe
            .send(&wire::keyframe_request("probe", "a2", 0.0))
            .await;
        // Until the key frames of a2 and, as browsers answer every request
        // of the room, of a1 and a3 have come (the pack schedules none but
        // its first in this run's time).
        let mut answered = std::collections::BTreeSet::new();
        while answered.len() < 3 {
            let p = probe.packets.recv().await.expect("the probe is open");
            if let Some(m) = seen(&p).filter(|m| m.video && m.key && m.seq > 0) {
                answered.insert(m.from.clone());
            }
            after.push(p);
        }
        (relay_mid, scraped)
    })
    .await;
    stop_tx.send(()).unwrap();

    assert!(
        scraped.contains("synth_clients{state=\"connected\"} 4"),
        "{scraped}"
    );
    let mut sent_mid = Vec::new();
    for (media, counted) in [
        ("audio", relay_mid.audio_packets),
        ("video", relay_mid.video_packets),
    ] {
        let sent = metric(
            &scraped,
            &format!("synth_packets_sent_total{{media=\"{media}\"}}"),
        );
        assert!(
            sent >= counted as f64,
            "{media}: scraped {sent} < relay {counted}"
        );
        sent_mid.push(sent);
    }

    let outcome = within(30, "run", run).await.unwrap().expect("run succeeds");
    let r = &outcome.report;
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(r.clients.planned, 4);
    assert_eq!(r.clients.connected, 4);
    // A clean run that ends normally: nothing lost, every sent packet
    // acknowledged, and the loss checked against what was really sent.
    for m in [&r.audio, &r.video] {
        assert_eq!(m.received.lost, 0, "{m:?}");
        assert_eq!(m.received.exact.pairs, 6, "3 × 2 in room-a: {m:?}");
        assert!(m.received.exact.expected > 0, "{m:?}");
        assert_eq!(m.sent.unacked, 0, "{m:?}");
        assert_eq!(m.received.corrupted, 0, "{m:?}");
    }
    // The mid-run scrape lies between the relay's count before it and the end.
    assert!(sent_mid[0] <= r.audio.sent.packets as f64);
    assert!(sent_mid[1] <= r.video.sent.packets as f64);

    // The report's sent counts equal what the relay received, exactly.
    let relay_stats = settled(
        10,
        || relay.stats(),
        |s| {
            let t = s.total();
            (t.audio_packets, t.video_packets, t.heartbeats)
                == (
                    r.audio.sent.packets,
                    r.video.sent.packets,
                    r.heartbeats.sent,
                )
        },
    )
    .await;
    for u in USERS {
        let rs = &relay_stats.per_user[u];
        assert_eq!(
            rs.audio_seq.missing() + rs.video_seq.missing(),
            0,
            "{u}: relay missed packets"
        );
        assert_eq!(rs.meeting, if u == "b1" { "room-b" } else { "room-a" });
    }
    let total = relay_stats.total();
    assert_eq!(r.audio.sent.packets, total.audio_packets);
    assert_eq!(r.video.sent.packets, total.video_packets);
    assert_eq!(r.heartbeats.sent, total.heartbeats);

    // a2 was asked once and answered once; as browsers, a1 and a3 heard
    // the request too and answered it all the same (upstream's web client
    // does not look at whom a request asks).
    let a2 = &outcome.metrics.clients[1];
    assert_eq!(a2.keyframe_requests.load(Relaxed), 1);
    assert_eq!(a2.keyframes_answered.load(Relaxed), 1);
    let sig = &r.server_signals;
    assert_eq!(
        (sig.keyframe_requests_received, sig.keyframes_answered),
        (1, 3)
    );
    assert_eq!(sig.keyframe_answer_ms.count, 3, "each answer was timed");
    // Every client of room-a saw its two peers (join visibility), b1 none.
    assert_eq!(sig.join_visibility_ms.count, 6);
    // The figures thresholds read exist for a run like this one.
    for name in [
        "audio_lost",
        "video_late",
        "audio_concealment",
        "video_freeze_share",
        "video_fps_p5",
        "audio_jitter_p99_ms",
        "keyframe_answer_p99_ms",
        "join_visibility_p99_ms",
        "generator_saturated",
        "audio_unacked",
        "corrupted_frames",
    ] {
        assert!(r.figure(name).is_some(), "{name}");
    }

    // The probe's recording, once it holds all of a1's video the relay counted.
    let a1_counted = relay_stats.per_user["a1"].video_packets;
    assert_eq!(
        outcome.metrics.clients[0].sent_packets[Media::Video as usize].load(Relaxed),
        a1_counted
    );
    let is_a1_video = |p: &Vec<u8>| seen(p).is_some_and(|m| m.from == "a1" && m.video);
    let mut rest = Vec::new();
    let mut a1_seen = before
        .iter()
        .chain(&after)
        .filter(|p| is_a1_video(p))
        .count() as u64;
    within(10, "all of a1's video at the probe", async {
        while a1_seen < a1_counted {
            let p = probe.packets.recv().await.expect("the probe is open");
            a1_seen += is_a1_video(&p) as u64;
            rest.push(p);
        }
    })
    .await;
    let media: Vec<Seen> = before
        .iter()
        .chain(&after)
        .chain(&rest)
        .filter_map(|p| seen(p))
        .collect();
    let senders: BTreeSet<&str> = media.iter().map(|m| m.from.as_str()).collect();
    assert_eq!(
        senders,
        ["a1", "a2", "a3"].into(),
        "the probe hears exactly the other members of room-a"
    );
    // a1's video: every frame the relay counted, consecutive from its first
    // (key) frame, each decoding to its size.
    let a1_video: BTreeMap<u64, (bool, &[u8])> = media
        .iter()
        .filter(|m| m.from == "a1" && m.video)
        .map(|m| (m.seq, (m.key, &m.frame[..])))
        .collect();
    assert_eq!(
        a1_video.len() as u64,
        a1_counted,
        "each of a1's frames once"
    );
    assert_eq!(
        a1_video.first_key_value().map(|(s, (k, _))| (*s, *k)),
        Some((0, true))
    );
    let mut decoder = synth_encoder::vp9::Decoder::new().unwrap();
    for (expect, (seq, (_, frame))) in (0..).zip(&a1_video) {
        assert_eq!(*seq, expect, "consecutive sequence numbers");
        let size = decoder.decode(frame).expect("VP9 frame decodes");
        assert_eq!(size, Some((160, 90)));
    }
    // a2's key frames: before the request at most its first; after it, the
    // answer. The pack's only scheduled key frame is frame 0 of a loop longer
    // than this run, so a key frame with any other sequence number is one.
    let early = a2_keys(&before);
    assert!(
        early.iter().all(|&s| s == 0),
        "a2's key frames before the request: {early:?}"
    );
    let late = a2_keys(&after);
    assert!(
        late.iter().any(|&s| s > 0),
        "a2 answered the request: {late:?}"
    );
    relay.shutdown().await;
}

/// Client-side view: each client's received media came from exactly the other
/// members of its meeting, with consecutive sequence numbers, and each sent
/// exactly what the relay counted from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_hears_exactly_its_meeting() {
    let relay = relay().await;
    let mut s = settings(ROOMS, &relay);
    s.duration = UNTIL_STOPPED;
    let plan = s.clients.clone();
    let (stop_tx, stop_rx) = oneshot::channel();
    let opts = run::Options { ..quiet() };
    let run = tokio::spawn(run::run(s, opts, stopped(stop_rx)));
    // Once all four are in their meetings, 50 more audio packets from each (a
    // second of its media), every one relayed to all the other members: then stop.
    let audio = |s: &RelayStats, u: &str| s.per_user.get(u).map_or(0, |c| c.audio_packets);
    let joined = until(20, "all four in their meetings", || {
        let s = relay.stats();
        (s.meetings.get("room-a") == Some(&3) && s.meetings.get("room-b") == Some(&1)).then_some(s)
    })
    .await;
    until(20, "50 more audio packets from each", || {
        let s = relay.stats();
        USERS
            .iter()
            .all(|u| audio(&s, u) >= audio(&joined, u) + 50)
            .then_some(())
    })
    .await;
    stop_tx.send(()).unwrap();
    let outcome = within(30, "run", run).await.unwrap().expect("run");
    let r = &outcome.report;
    assert_eq!(r.clients.connected, 4);
    let clients = &outcome.metrics.clients;
    let sent = |i: usize, m: Media| clients[i].sent_packets[m as usize].load(Relaxed);

    // Each client sent exactly what the relay counted from it.
    let relay_stats = settled(
        10,
        || relay.stats(),
        |s| {
            plan.iter().enumerate().all(|(i, c)| {
                s.per_user.get(&c.user_id).is_some_and(|u| {
                    (u.audio_packets, u.video_packets)
                        == (sent(i, Media::Audio), sent(i, Media::Video))
                })
            })
        },
    )
    .await;
    for (i, c) in plan.iter().enumerate() {
        let u = &relay_stats.per_user[&c.user_id];
        assert_eq!(
            (u.audio_packets, u.video_packets),
            (sent(i, Media::Audio), sent(i, Media::Video)),
            "{}: relay counted (audio, video) of what it sent",
            c.user_id
        );
    }

    let mut heard_from: BTreeMap<String, u64> = BTreeMap::new();
    for (c, stats) in plan.iter().zip(clients) {
        let heard = stats.peers.lock().unwrap().clone();
        let want: BTreeSet<String> = plan
            .iter()
            .filter(|o| o.meeting_id == c.meeting_id && o.user_id != c.user_id)
            .map(|o| o.user_id.clone())
            .collect();
        assert_eq!(
            heard.keys().cloned().collect::<BTreeSet<_>>(),
            want,
            "{}",
            c.user_id
        );
        for (from, counts) in &heard {
            let counts = counts.media.map(|m| m.seq);
            let missing = [counts[0].missing(), counts[1].missing()];
            assert_eq!(missing, [0, 0], "{} from {from}", c.user_id);
            let packets = [counts[0].received, counts[1].received];
            let sender = plan.iter().position(|o| &o.user_id == from).unwrap();
            assert!(
                packets[0] <= sent(sender, Media::Audio)
                    && packets[1] <= sent(sender, Media::Video),
                "{} from {from}: {:?} of ({}, {})",
                c.user_id,
                packets,
                sent(sender, Media::Audio),
                sent(sender, Media::Video)
            );
            *heard_from.entry(from.clone()).or_default() += packets[0] + packets[1];
        }
    }
    // Nobody received more of a sender's media than the relay delivered of it.
    for (from, got) in &heard_from {
        let delivered = relay_stats.per_user[from].relayed_to;
        assert!(
            *got <= delivered,
            "{from}: {got} received, {delivered} delivered"
        );
    }
    relay.shutdown().await;
}

/// The rates a client sends at are its schedule's: with each packet sent
/// when due, audio is due every 20 ms (50 a second) and video every 1/30 s,
/// exactly and without drift across the pack's loop. Checked on explicit
/// instants; the runs above check that what is sent arrives.
#[test]
fn clients_send_audio_50_and_video_30_times_a_second() {
    let pack = Reader::open(pack()).unwrap();
    let audio = pack.first_track(TrackKind::Audio).unwrap();
    let video = pack.track_by_name("video-160x90").unwrap();
    let t0 = Instant::now();
    for (track, media, per_second) in [(audio, Media::Audio, 50), (video, Media::Video, 30)] {
        let frames = pack.frame_count(track) as u64;
        assert_eq!(
            frames,
            PACK_SECONDS * per_second,
            "{media:?} frames in the loop"
        );
        let mut lane = Lane::new(&pack, track, media, t0);
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        // Over two loops and a bit, each packet sent when due.
        for i in 0..2 * frames + 7 {
            let due = lane.due();
            assert_eq!(
                due - t0,
                Duration::from_nanos(i * 1_000_000_000 / per_second),
                "{media:?} packet {i}"
            );
            let p = lane
                .next_packet(&pack, &mut prefix, &mut heads, due, 1.7e12)
                .unwrap();
            assert_eq!(p.lateness, Duration::ZERO);
        }
    }
}

/// Regression: a client let the server open 1024 uni streams at once, and a
/// stream's credit returns only once it is read, so a client that fell behind
/// (a saturated machine) held up to 1024 unread packets a session in quinn:
/// 1.4 GB at 300 clients. A client that reads nothing now holds at most
/// `MAX_INCOMING_STREAMS`; the relay's queue takes 256 more, and it drops the
/// rest, as the videocall-rs server does for a slow receiver.
#[tokio::test]
async fn a_client_that_reads_nothing_holds_at_most_max_incoming_streams() {
    use synth_replayer::config::Trust;
    use synth_replayer::transport::{self, Liveness, MAX_INCOMING_STREAMS};
    const SENT: u64 = 1200;
    let relay = relay().await;
    let url: url::Url = format!("{}/lobby/slow/room", relay.url()).parse().unwrap();
    let live = Liveness {
        keep_alive: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(10),
    };
    let (client, _) = transport::client(
        &Trust::Pinned(vec![relay.cert_sha256()]),
        transport::bind_for(&url),
        live,
        None,
    )
    .unwrap();
    let slow = within(10, "slow client connects", client.connect(url))
        .await
        .unwrap();
    // Joins the room, then never accepts a stream.
    let mut s = within(5, "open_uni", slow.open_uni()).await.unwrap();
    within(5, "write", s.write_all(&wire::connection("slow", "room")))
        .await
        .unwrap();
    s.finish().unwrap();
    until(10, "the relay counts slow's CONNECTION", || {
        relay.stats().per_user.get("slow").map(|_| ())
    })
    .await;
    let a = Probe::join(&relay, "a", "room").await;
    let mut prefix = MediaPrefix::new("a");
    for seq in 0..SENT {
        let f = wire::MediaFields {
            media_type: media_type::AUDIO,
            sequence: seq,
            timestamp_ms: 1.0,
            duration_ms: 20.0,
            key: true,
            layer: 0,
        };
        let mut p = prefix.build(&f, 3).to_vec();
        p.extend_from_slice(&[1, 2, 3]);
        a.send(&p).await;
    }
    let s = until(20, "the relay counts every packet of a", || {
        let s = relay.stats();
        (s.per_user.get("a")?.audio_packets == SENT).then_some(s)
    })
    .await;
    let a = &s.per_user["a"];
    // Held by slow's quinn (its greeting took two of the streams), one in the
    // relay's writer, and the writer's queue.
    let most = MAX_INCOMING_STREAMS as u64 + 1 + 256;
    assert!(
        a.relayed_to <= most,
        "{} of a's packets were queued for slow, more than {most}",
        a.relayed_to
    );
    // Its CONNECTION packet was relayed too.
    assert_eq!(
        a.relayed_to + a.relay_drops,
        SENT + 1,
        "each queued or dropped"
    );
    assert!(a.relay_drops > 0);
    drop(slow);
}
