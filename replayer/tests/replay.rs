//! Runs of synth-replay against the in-process relay: what reaches whom, rates,
//! decodability, key-frame requests, tokens, metrics and the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use synth_common::wire::{self, media_type, packet_type};
use synth_relay::{Relay, RelayConfig};
use synth_replayer::run;

use crate::support::{quiet, settings, within, Probe};

const ROOMS: &str = r#"
duration: 4s
ramp_up_delay_ms: 0
clients:
  - {user_id: a1, meeting_id: room-a}
  - {user_id: a2, meeting_id: room-a}
  - {user_id: a3, meeting_id: room-a}
  - {user_id: b1, meeting_id: room-b}
"#;

async fn relay() -> Relay {
    within(10, "relay start", Relay::start(RelayConfig::default()))
        .await
        .expect("relay starts")
}

/// 3 clients in one meeting, 1 in another, plus a probe in the first that
/// records the video of a1 and asks a2 for a key frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_rates_decoding_and_keyframes() {
    let relay = relay().await;
    let s = settings(ROOMS, &relay);
    let (metrics_tx, metrics_rx) = tokio::sync::oneshot::channel();
    let mut s = s;
    s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let opts = run::Options {
        metrics_bound: Some(metrics_tx),
        ..quiet()
    };
    // The probe is in the room before the clients start, so it sees a1's
    // first (and, in this pack, only scheduled) key frame.
    let mut probe = Probe::join(&relay, "probe", "room-a").await;
    let run = tokio::spawn(run::run(s, opts, std::future::pending()));
    let metrics_addr = within(10, "metrics bound", metrics_rx).await.unwrap();

    // Mid-run: scrape /metrics, then ask a2 for a key frame.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // What the relay counted, then what the replayer says it sent: the scrape
    // can only be ahead, by what was sent or in flight in between.
    let relay_mid = relay.stats().total();
    let scraped = within(5, "scrape", scrape(metrics_addr, "/metrics")).await;
    assert!(
        scraped.contains("synth_clients{state=\"connected\"} 4"),
        "{scraped}"
    );
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
        assert!(
            sent - (counted as f64) < 200.0,
            "{media}: scraped {sent}, relay {counted}"
        );
    }
    let sent_audio = metric(&scraped, "synth_packets_sent_total{media=\"audio\"}");
    assert!(sent_audio > 100.0, "audio flowing mid-run: {sent_audio}");
    assert!(scrape(metrics_addr, "/healthz").await.starts_with("ok"));
    let asked = Instant::now();
    probe
        .send(&wire::keyframe_request("probe", "a2", 0.0))
        .await;

    let outcome = within(30, "run", run).await.unwrap().expect("run succeeds");
    let relay_stats = relay.stats();
    let r = &outcome.report;
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(r.clients.planned, 4);
    assert_eq!(r.clients.connected, 4);
    assert_eq!(r.audio.received.gaps + r.video.received.gaps, 0);

    // The report's sent counts equal what the relay received, exactly.
    for u in ["a1", "a2", "a3", "b1"] {
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

    // a2 was asked once and answered once.
    let a2 = &outcome.metrics.clients[1];
    assert_eq!(a2.keyframe_requests.load(Relaxed), 1);
    assert_eq!(a2.keyframes_answered.load(Relaxed), 1);

    // Media from the probe's recording: a1's video decodes from the first key frame,
    // and a2 answered the key-frame request at once.
    let mut a1_video = BTreeMap::new();
    let mut a2_key_after_request = None;
    let mut senders = BTreeSet::new();
    while let Ok((at, bytes)) = probe.packets.try_recv() {
        let p = wire::parse(&bytes).unwrap();
        if p.packet_type != packet_type::MEDIA {
            continue;
        }
        let media = wire::parse_media(p.data).unwrap();
        if media.media_type != media_type::VIDEO && media.media_type != media_type::AUDIO {
            continue;
        }
        let from = String::from_utf8(p.user_id.to_vec()).unwrap();
        senders.insert(from.clone());
        if media.media_type == media_type::VIDEO {
            if from == "a1" {
                a1_video.insert(
                    media.sequence.unwrap(),
                    (media.is_key(), media.data.to_vec()),
                );
            }
            if from == "a2" && media.is_key() && at > asked && a2_key_after_request.is_none() {
                a2_key_after_request = Some(at - asked);
            }
        }
    }
    assert_eq!(
        senders,
        ["a1", "a2", "a3"].map(String::from).into(),
        "the probe hears exactly the other members of room-a"
    );
    let first_key = a1_video
        .iter()
        .find(|(_, (key, _))| *key)
        .map(|(s, _)| *s)
        .expect("a key frame from a1");
    let mut decoder = synth_encoder::vp9::Decoder::new().unwrap();
    let mut decoded = 0;
    for (expect, (seq, (_, frame))) in (first_key..).zip(a1_video.range(first_key..)) {
        assert_eq!(*seq, expect, "consecutive sequence numbers");
        let size = decoder.decode(frame).expect("VP9 frame decodes");
        assert_eq!(size, Some((160, 90)));
        decoded += 1;
    }
    assert!(decoded > 60, "decoded {decoded} frames");
    let answered = a2_key_after_request.expect("a2 sent a key frame after the request");
    // The pack's only scheduled key frame is frame 0 of a 4 s loop, and the
    // request comes 1.5 s into a 4 s run: a key frame within 1 s of it can
    // only be the answer.
    assert!(answered < Duration::from_secs(1), "{answered:?}");
    relay.shutdown().await;
}

/// Client-side view: each client's received media came from exactly the other
/// members of its meeting, with consecutive sequence numbers, and every client
/// sent audio at 50 packets/s and video at the pack's 30 fps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_hears_exactly_its_meeting() {
    let relay = relay().await;
    let s = settings(ROOMS, &relay);
    let plan = s.clients.clone();
    let outcome = within(30, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .expect("run");
    let r = &outcome.report;
    assert_eq!(r.clients.connected, 4);
    for (c, stats) in plan.iter().zip(&outcome.metrics.clients) {
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
            let missing = [counts[0].missing(), counts[1].missing()];
            assert_eq!(missing, [0, 0], "{} from {from}", c.user_id);
            // Everything the sender sent while both were in the room arrived:
            // at most the first second of packets precedes the receiver's join.
            let sender = plan.iter().position(|o| &o.user_id == from).unwrap();
            let sent = outcome.metrics.clients[sender].sent_packets[0].load(Relaxed);
            assert!(
                counts[0].received <= sent && counts[0].received + 50 >= sent,
                "{} from {from}: {} of {sent}",
                c.user_id,
                counts[0].received
            );
        }
        // Rates over the client's active time.
        let active = stats.media_active().as_secs_f64();
        let audio = stats.sent_packets[0].load(Relaxed) as f64;
        let video = stats.sent_packets[1].load(Relaxed) as f64;
        let audio_rate = (audio - 1.0) / active;
        let video_rate = (video - 1.0) / active;
        assert!(
            (audio_rate - 50.0).abs() / 50.0 < 0.02,
            "{}: audio {audio_rate:.2}/s",
            c.user_id
        );
        assert!(
            (video_rate - 30.0).abs() / 30.0 < 0.02,
            "{}: video {video_rate:.2}/s",
            c.user_id
        );
    }
    relay.shutdown().await;
}

async fn scrape(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no metric {name}"))
}
