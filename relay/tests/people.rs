//! Meetings that behave like people, as the relay records them for
//! `--stats-json`: sessions that join, leave and rejoin; heartbeat flags
//! (muting, the camera, speaking turns) and the media counted by the state
//! they announce; screen share; observers, whose media is dropped.
//!
//! Packets on separate streams may be read in any order, so wherever order
//! matters a test waits until the relay has counted one step before it
//! sends the next.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

use synth_common::jwt::{self, Claims};
use synth_common::wire::{self, media_type, HeartbeatFlags, MediaPrefix};
use synth_relay::{Identity, RelayConfig, RelayStats, SessionEnd, SessionRecord, UserStats};

use super::relay::{audio, media, within, Peer, Target, SECRET};

fn user<'a>(s: &'a RelayStats, id: &str) -> Option<&'a UserStats> {
    s.per_user.get(id)
}

fn log<'a>(s: &'a RelayStats, id: &str) -> &'a [SessionRecord] {
    user(s, id).map_or(&[], |u| &u.session_log[..])
}

fn flags(audio: bool, video: bool, screen: bool, speaking: bool) -> HeartbeatFlags {
    HeartbeatFlags {
        audio,
        video,
        screen,
        speaking,
    }
}

/// `user`'s second session: joins `room`, sends its CONNECTION packet, and
/// is back in the meeting (the stats once its entry says so).
async fn rejoin(t: &Target, user: &str, room: &str) -> (Peer, RelayStats) {
    let p = t.join(user, room).await;
    p.send(&wire::connection(user, room)).await;
    let s = t
        .stats_when(|s| {
            log(s, user)
                .get(1)
                .is_some_and(|r| r.joined_unix_ms.is_some())
        })
        .await
        .unwrap();
    (p, s)
}

/// A joins, leaves (closes its session) and joins again: two entries, the
/// first closed, the second running until the relay shuts down. A session
/// that never sends anything never joins.
#[tokio::test]
async fn session_log_has_a_join_a_leave_and_a_rejoin() {
    let mut t = Target::default_relay().await;
    let a = t.join("pl-a", "room-pl").await;
    let _b = t.join("pl-b", "room-pl").await;
    let _idle = t.join("pl-idle", "room-pl").await;
    a.send(&wire::connection("pl-a", "room-pl")).await;
    t.stats_when(|s| {
        log(s, "pl-a")
            .first()
            .is_some_and(|r| r.joined_unix_ms.is_some())
    })
    .await;
    let first = a.session_id;
    a.close();
    t.stats_when(|s| {
        log(s, "pl-a")
            .first()
            .is_some_and(|r| r.left_unix_ms.is_some())
    })
    .await;

    let (a2, s) = rejoin(&t, "pl-a", "room-pl").await;
    let l = log(&s, "pl-a");
    assert_eq!(l.len(), 2, "{l:#?}");
    let (j0, left0) = (l[0].joined_unix_ms.unwrap(), l[0].left_unix_ms.unwrap());
    assert_eq!((l[0].session_id, l[0].end), (first, SessionEnd::Closed));
    assert!(l[0].accepted_unix_ms <= j0 && j0 <= left0, "{l:#?}");
    assert_eq!(l[0].meeting, "room-pl");
    assert!(!l[0].observer);
    assert_eq!(l[1].session_id, a2.session_id);
    assert!(l[1].joined_unix_ms.unwrap() >= left0, "{l:#?}");
    assert_eq!((l[1].left_unix_ms, l[1].end), (None, SessionEnd::Running));
    let u = user(&s, "pl-a").unwrap();
    assert_eq!((u.sessions, u.session_log_dropped), (2, 0));
    let idle = log(&s, "pl-idle");
    assert_eq!(idle.len(), 1);
    assert_eq!(idle[0].joined_unix_ms, None, "sent nothing: never joined");

    // Still open when the relay stops: running, with the time it ended.
    let relay = t.relay.take().unwrap();
    let s = within("relay shutdown", relay.shutdown()).await;
    let l = log(&s, "pl-a");
    assert_eq!(l.len(), 2);
    assert_eq!(l[1].end, SessionEnd::Running);
    assert!(l[1].left_unix_ms.is_some());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["per_user"]["pl-a"]["session_log"][0]["end"], "closed");
}

/// A client that joins `url`, sends a CONNECTION packet and then, unless
/// `quic_close`, vanishes without a close, as a killed process or a cut
/// network does: its runtime is dropped with the connection in it. Its
/// 300 ms idle timeout is the session's (the smaller side's wins), so the
/// relay gives up on it quickly. With `quic_close` it closes QUIC without
/// WebTransport's close capsule, as a dropped session does.
fn join_and_leave(
    url: url::Url,
    cert: CertificateDer<'static>,
    user: &str,
    room: &str,
    quic_close: bool,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The relay's self-signed certificate, trusted as a root: this client
    // needs its own QUIC configuration, which web_transport_quinn's builder
    // does not expose.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    crypto.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_millis(300).try_into().unwrap()));
    config.transport_config(Arc::new(transport));
    let session = rt.block_on(async {
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = web_transport_quinn::Client::new(endpoint.clone(), config);
        let session = within("vanishing client connect", client.connect(url))
            .await
            .unwrap();
        let mut s = session.open_uni().await.unwrap();
        s.write_all(&wire::connection(user, room)).await.unwrap();
        s.finish().unwrap();
        // Until the relay has the packet: acknowledged.
        within("CONNECTION acknowledged", s.stopped()).await.ok();
        if quic_close {
            quinn::Connection::close(&session, 0u32.into(), b"gone");
            // Until the close is sent and the connection drained.
            within("QUIC close", endpoint.wait_idle()).await;
        }
        session
    });
    // Neither closed nor dropped where a driver could still send a close.
    rt.shutdown_background();
    std::mem::forget(session);
}

/// A client that vanishes without closing is logged as lost; its user's
/// next session is a new entry. One that closes QUIC without WebTransport's
/// capsule has closed all the same.
#[tokio::test]
async fn a_vanished_session_is_lost() {
    let id = Identity::self_signed().unwrap();
    let cert = id.chain[0].clone();
    let t = Target::relay(RelayConfig {
        cert: Some(id),
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    for (user, quic_close) in [("pl-gone", false), ("pl-quic", true)] {
        let mut url = t.base.clone();
        url.set_path(&format!("/lobby/{user}/room-gone"));
        let (user, cert) = (user.to_string(), cert.clone());
        tokio::task::spawn_blocking(move || {
            join_and_leave(url, cert, &user, "room-gone", quic_close)
        })
        .await
        .unwrap();
    }
    let s = t
        .stats_when(|s| {
            log(s, "pl-quic")
                .first()
                .is_some_and(|r| r.left_unix_ms.is_some())
        })
        .await
        .unwrap();
    assert_eq!(log(&s, "pl-quic")[0].end, SessionEnd::Closed);
    let s = t
        .stats_when(|s| {
            log(s, "pl-gone")
                .first()
                .is_some_and(|r| r.left_unix_ms.is_some())
        })
        .await
        .unwrap();
    let l = log(&s, "pl-gone");
    assert_eq!(l[0].end, SessionEnd::Lost, "{l:#?}");
    assert!(l[0].joined_unix_ms.is_some());
    let (_back, s) = rejoin(&t, "pl-gone", "room-gone").await;
    assert_eq!(log(&s, "pl-gone")[1].end, SessionEnd::Running);
    t.close().await;
}

/// A speaks, pauses, mutes and turns the camera off, then comes back:
/// heartbeats counted by flag, changes logged, audio and video counted by
/// the state the last heartbeat announced, time summed per state.
#[tokio::test]
async fn heartbeat_flags_and_media_by_state() {
    let t = Target::default_relay().await;
    let a = t.join("hb-a", "room-hb").await;
    let mut pre = MediaPrefix::new("hb-a");
    let (mut sent_audio, mut sent_video, mut sent_hb) = (0u64, 0u64, 0u64);
    // One audio packet before any heartbeat.
    a.send(&audio(&mut pre, 0)).await;
    sent_audio += 1;
    let steps = [
        (flags(true, true, false, true), 3, 1),
        (flags(true, true, false, false), 2, 0),
        (flags(false, false, false, false), 1, 2),
        (flags(false, false, false, false), 0, 0),
        (flags(true, true, false, true), 1, 1),
    ];
    for (f, n_audio, n_video) in steps {
        a.send(&wire::heartbeat("hb-a", 1.0, f)).await;
        sent_hb += 1;
        t.stats_when(|s| user(s, "hb-a").is_some_and(|u| u.heartbeats == sent_hb))
            .await;
        for _ in 0..n_audio {
            a.send(&audio(&mut pre, sent_audio)).await;
            sent_audio += 1;
        }
        for _ in 0..n_video {
            let key = sent_video == 0;
            a.send(&media(&mut pre, media_type::VIDEO, sent_video, key, 100))
                .await;
            sent_video += 1;
        }
        t.stats_when(|s| {
            user(s, "hb-a")
                .is_some_and(|u| u.audio_packets == sent_audio && u.video_packets == sent_video)
        })
        .await;
        // Time between heartbeats must show.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = t.stats_when(|_| true).await.unwrap();
    let u = user(&s, "hb-a").unwrap();
    assert_eq!(u.heartbeats, 5);
    assert_eq!(
        (
            u.heartbeats_audio,
            u.heartbeats_video,
            u.heartbeats_screen,
            u.heartbeats_speaking
        ),
        (3, 3, 0, 2)
    );
    assert_eq!(
        (
            u.audio_before_heartbeat,
            u.audio_while_speaking,
            u.audio_while_not_speaking,
            u.audio_while_muted
        ),
        (1, 4, 2, 1)
    );
    assert_eq!(u.video_while_camera_off, 2);
    let seen: Vec<(bool, bool, bool, bool)> = u
        .flag_changes
        .iter()
        .map(|c| (c.audio, c.video, c.screen, c.speaking))
        .collect();
    assert_eq!(
        seen,
        [
            (true, true, false, true),
            (true, true, false, false),
            (false, false, false, false),
            (true, true, false, true),
        ],
        "the repeated muted heartbeat is no change"
    );
    // Every millisecond from the first heartbeat to the last is in one state.
    let span = u.flag_changes[3].unix_ms - u.flag_changes[0].unix_ms;
    assert_eq!(u.speaking_ms + u.not_speaking_ms + u.muted_ms, span);
    assert!(
        u.speaking_ms > 0 && u.not_speaking_ms > 0 && u.muted_ms > 0,
        "{u:#?}"
    );
    t.close().await;
}

/// SCREEN frames are relayed like video and counted apart from it, and a
/// frame after a heartbeat with `screen_enabled` false is counted.
#[tokio::test]
async fn screen_share_is_relayed_and_counted() {
    let t = Target::default_relay().await;
    let a = t.join("sc-a", "room-sc").await;
    let mut b = t.join("sc-b", "room-sc").await;
    t.members(&[("room-sc", 2)]).await;
    let mut pre = MediaPrefix::new("sc-a");
    a.send(&wire::heartbeat(
        "sc-a",
        1.0,
        flags(true, true, true, false),
    ))
    .await;
    t.stats_when(|s| user(s, "sc-a").is_some_and(|u| u.heartbeats == 1))
        .await;
    for seq in 0..3 {
        a.send(&media(&mut pre, media_type::SCREEN, seq, seq == 0, 900))
            .await;
    }
    t.stats_when(|s| user(s, "sc-a").is_some_and(|u| u.screen_packets == 3))
        .await;
    a.send(&wire::heartbeat(
        "sc-a",
        1.0,
        flags(true, true, false, false),
    ))
    .await;
    t.stats_when(|s| user(s, "sc-a").is_some_and(|u| u.heartbeats == 2))
        .await;
    a.send(&media(&mut pre, media_type::SCREEN, 3, false, 900))
        .await;
    let s = t
        .stats_when(|s| user(s, "sc-a").is_some_and(|u| u.screen_packets == 4))
        .await
        .unwrap();
    let got = b
        .settle("a's screen frames at b", |got| {
            got.iter()
                .filter(|g| {
                    g.media()
                        .is_some_and(|m| m.media_type.value() == media_type::SCREEN)
                })
                .count()
                == 4
        })
        .await;
    for g in got.iter().filter(|g| g.media().is_some()) {
        assert_eq!(g.user(), "sc-a");
    }
    let u = user(&s, "sc-a").unwrap();
    assert_eq!((u.screen_keyframes, u.screen_while_not_sharing), (1, 1));
    assert_eq!((u.screen_seq.received, u.screen_seq.missing()), (4, 0));
    assert_eq!((u.video_packets, u.other), (0, 0));
    assert!(u.screen_bytes > 4 * 900);
    // Two heartbeats and four frames, each to b.
    assert_eq!(u.relayed_to, 6);
    t.close().await;
}

/// Observers (`observer: true`, with `room_join` false or true) are
/// admitted and receive everything; what they send is counted, heartbeats
/// by flag too, and none of it is relayed (as upstream), but RTT is echoed.
#[tokio::test]
async fn observer_media_is_dropped_and_counted() {
    let t = Target::relay(RelayConfig {
        jwt_secret: Some(SECRET.to_vec()),
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    let ttl = Duration::from_secs(600);
    let connect = |sub: &str, observer: bool, room_join: bool| {
        let mut c = Claims::participant(sub, "room-ob", ttl);
        c.observer = observer;
        c.room_join = room_join;
        Peer::connect(&t.client, t.token_url(&jwt::mint(&c, SECRET)))
    };
    let mut a = connect("ob-a", false, true).await.unwrap();
    let mut o = connect("ob-o", true, false).await.unwrap();
    let mut o2 = connect("ob-o2", true, true).await.unwrap();
    t.members(&[("room-ob", 3)]).await;

    let mut pre = MediaPrefix::new("ob-o");
    o.send(&wire::connection("ob-o", "room-ob")).await;
    o.send(&wire::heartbeat(
        "ob-o",
        1.0,
        flags(false, false, false, false),
    ))
    .await;
    o.send(&audio(&mut pre, 0)).await;
    o.send(&media(&mut pre, media_type::VIDEO, 0, true, 100))
        .await;
    o.send(&media(&mut pre, media_type::SCREEN, 0, true, 100))
        .await;
    o.send(&wire::keyframe_request("ob-o", "ob-a", 1.0)).await;
    let mut pre2 = MediaPrefix::new("ob-o2");
    o2.send(&audio(&mut pre2, 0)).await;
    let s = t
        .stats_when(|s| {
            user(s, "ob-o").is_some_and(|u| u.observer_media_dropped == 6)
                && user(s, "ob-o2").is_some_and(|u| u.observer_media_dropped == 1)
        })
        .await
        .unwrap();
    // The RTT probe settle sends is echoed to the observer.
    o.settle("the observer's RTT echo", |_| true).await;
    let got = a.settle("the observers' packets", |_| true).await;
    assert!(
        got.iter().all(|g| !g.user().starts_with("ob-o")),
        "nothing of the observers reached a: {:?}",
        got.iter().map(|g| g.user()).collect::<Vec<_>>()
    );
    let u = user(&s, "ob-o").unwrap();
    assert_eq!((u.heartbeats, u.audio_packets, u.video_packets), (1, 1, 1));
    assert_eq!((u.screen_packets, u.keyframe_requests), (1, 1));
    assert_eq!((u.relayed_to, u.audio_while_muted), (0, 1));
    assert_eq!(u.flag_changes.len(), 1);
    assert!(log(&s, "ob-o")[0].observer && log(&s, "ob-o2")[0].observer);
    assert!(!log(&s, "ob-a")[0].observer);

    // Both observers receive a's audio.
    let mut pre = MediaPrefix::new("ob-a");
    a.send(&audio(&mut pre, 0)).await;
    for p in [&mut o, &mut o2] {
        let (g, _) = p
            .until("a's audio at an observer", |g| g.media().is_some())
            .await;
        assert_eq!(g.user(), "ob-a");
    }
    assert_eq!(
        t.stats_when(|_| true).await.unwrap().per_user["ob-a"].observer_media_dropped,
        0
    );
    t.close().await;
}
