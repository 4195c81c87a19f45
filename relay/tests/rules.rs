//! Upstream main's rules that matter for load, on loopback: DIAGNOSTICS to
//! the meeting as datagrams, HEALTH counted and never relayed, inbound
//! datagrams dropped beyond the session's mailbox, packets that do not parse
//! forwarded, observers told of nobody, MEETING_STARTED when the first
//! participant joins. (CONGESTION to the whole meeting is in `relay.rs`'s
//! `slow_receiver`, which also runs against upstream.) Each names the
//! upstream code it follows in `docs/src/protocol.md`.

use std::time::Duration;

use protobuf::Message;
use synth_common::jwt::{self, Claims};
use synth_common::wire::{self, packet_type};
use synth_relay::{RelayConfig, RelayStats, Stall};
use videocall_types::protos::diagnostics_packet::{DiagnosticsPacket, VideoMetrics};
use videocall_types::protos::health_packet::HealthPacket;
use videocall_types::protos::media_packet::media_packet::MediaType;
use videocall_types::protos::meeting_packet::meeting_packet::MeetingEventType;
use videocall_types::protos::packet_wrapper::packet_wrapper::PacketType;
use videocall_types::protos::packet_wrapper::PacketWrapper;

use super::relay::{is_joined, Got, Peer, Target, SECRET, TALKING};

/// A wrapper as a browser sends it: `session_id` 0.
fn wrapper(packet_type: PacketType, user: &str, data: Vec<u8>) -> Vec<u8> {
    PacketWrapper {
        packet_type: packet_type.into(),
        user_id: user.as_bytes().to_vec(),
        data,
        ..Default::default()
    }
    .write_to_bytes()
    .unwrap()
}

/// DIAGNOSTICS as a browser fills it: about a peer's session (`sender_id`),
/// from the reporter (`target_id`), with the fps and bitrate it received.
fn diagnostics(user: &str, about_session: u64) -> Vec<u8> {
    let d = DiagnosticsPacket {
        sender_id: about_session.to_string(),
        target_id: user.to_string(),
        timestamp_ms: 1_700_000_000_000,
        media_type: MediaType::VIDEO.into(),
        video_metrics: protobuf::MessageField::some(VideoMetrics {
            fps_received: 29.5,
            bitrate_kbps: 480,
            ..Default::default()
        }),
        ..Default::default()
    };
    wrapper(PacketType::DIAGNOSTICS, user, d.write_to_bytes().unwrap())
}

/// HEALTH as a browser fills it (no peers).
fn health(user: &str, meeting: &str) -> Vec<u8> {
    let h = HealthPacket {
        session_id: "session_1700000000".into(),
        meeting_id: meeting.into(),
        reporting_user_id: user.as_bytes().to_vec(),
        timestamp_ms: 1_700_000_000_000,
        reporting_audio_enabled: true,
        reporting_video_enabled: true,
        ..Default::default()
    };
    wrapper(PacketType::HEALTH, user, h.write_to_bytes().unwrap())
}

/// An observer of `room`, admitted with a token.
async fn observer(t: &Target, sub: &str, room: &str) -> Peer {
    let mut c = Claims::participant(sub, room, Duration::from_secs(600));
    c.observer = true;
    c.room_join = false;
    Peer::connect(&t.client, t.token_url(&jwt::mint(&c, SECRET)))
        .await
        .expect("an observer token is accepted")
}

async fn relay_with_secret() -> Target {
    Target::relay(RelayConfig {
        jwt_secret: Some(SECRET.to_vec()),
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await
}

fn is_type(t: i32) -> impl Fn(&Got) -> bool {
    move |g| g.packet_type() == t
}

fn is_started(g: &Got) -> bool {
    g.meeting().map(|m| m.0) == Some(MeetingEventType::MEETING_STARTED)
}

/// DIAGNOSTICS, sent on a stream as browsers do, reach every other member
/// as a datagram with the sender's session id: a member that has sent
/// nothing yet and an observer too (upstream: `chat_server.rs`
/// `ClientMessage` publishes it, every session subscribed to the room gets
/// it, `wt_chat_session.rs` `send_auto` sends it as a datagram).
#[tokio::test]
async fn diagnostics_reach_the_meeting_as_datagrams() {
    let t = relay_with_secret().await;
    let a = t.join("dg-a", "room-dg").await;
    let mut quiet = t.join("dg-quiet", "room-dg").await;
    let mut o = observer(&t, "dg-o", "room-dg").await;
    t.members(&[("room-dg", 3)]).await;
    let d = diagnostics("dg-a", quiet.session_id);
    a.send(&d).await;
    for p in [&mut quiet, &mut o] {
        let (g, _) = p
            .until("DIAGNOSTICS", is_type(packet_type::DIAGNOSTICS))
            .await;
        assert!(g.datagram, "as a datagram");
        let w = g.wrapper();
        assert_eq!(
            (w.user_id.as_slice(), w.session_id),
            (&b"dg-a"[..], a.session_id)
        );
        let inner = DiagnosticsPacket::parse_from_bytes(&w.data).unwrap();
        assert_eq!(inner.video_metrics.bitrate_kbps, 480, "unchanged");
    }
    let s = t
        .stats_when(|s| {
            s.per_user["dg-o"].sent_by_type.diagnostics.datagram == 1
                && s.per_user["dg-quiet"].sent_by_type.diagnostics.datagram == 1
        })
        .await
        .unwrap();
    let u = &s.per_user["dg-a"];
    assert_eq!((u.diagnostics, u.other, u.relayed_to), (1, 0, 2));
    assert_eq!(u.received_by_type.diagnostics.stream, 1);
    assert_eq!(s.per_user["dg-a"].sent_by_type.diagnostics.total(), 0);
    t.close().await;
}

/// HEALTH is accepted, activates the session (its PARTICIPANT_JOINED goes
/// out), is counted per user, and reaches nobody (upstream:
/// `session_logic.rs` `handle_inbound` hands it to `health_processor`,
/// `InboundAction::Processed`).
#[tokio::test]
async fn health_is_counted_and_never_relayed() {
    let t = Target::default_relay().await;
    let a = t.join("hl-a", "room-hl").await;
    let mut b = t.join("hl-b", "room-hl").await;
    t.members(&[("room-hl", 2)]).await;
    let h = health("hl-a", "room-hl");
    a.send(&h).await;
    a.send_datagram(&h);
    let s = t
        .stats_when(|s| s.per_user.get("hl-a").is_some_and(|u| u.health == 2))
        .await
        .unwrap();
    let got = b
        .settle("a's JOINED", |got| got.iter().any(is_joined("hl-a")))
        .await;
    assert!(
        got.iter().all(|g| g.meeting().is_some()),
        "only a's JOINED: {got:?}"
    );
    let u = &s.per_user["hl-a"];
    assert_eq!((u.relayed_to, u.other), (0, 0));
    let by = u.received_by_type.health;
    assert_eq!((by.stream, by.datagram), (1, 1));
    assert!(
        u.session_log[0].joined_unix_ms.is_some(),
        "HEALTH activates"
    );
    t.close().await;
}

/// `n` heartbeat datagrams (a browser's) sent by `dgm-a` while every reader
/// is stalled, the relay running with `mailbox`: the stats once all were
/// counted or dropped, and whether they were all sent during the stall.
async fn datagrams_during_a_stall(mailbox: usize, n: u64) -> (RelayStats, bool, Peer, Target) {
    let t = Target::relay(RelayConfig {
        mailbox,
        stall: Some(Stall {
            after: Duration::from_millis(300),
            duration: Duration::from_secs(1),
        }),
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    let a = t.join("dgm-a", "room-dgm").await;
    let b = t.join("dgm-b", "room-dgm").await;
    t.members(&[("room-dgm", 2)]).await;
    t.stats_when(|s| !s.stalls.is_empty()).await;
    let hb = wire::heartbeat("dgm-a", 1.0, TALKING);
    for _ in 0..n {
        a.send_datagram(&hb);
    }
    let relay = t.relay.as_ref().unwrap();
    // Give the datagrams time to arrive, within the stall.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = relay.stats().stalls[0].end_unix_ms.is_none();
    let s = t
        .stats_when(|s| {
            s.stalls[0].end_unix_ms.is_some()
                && s.per_user
                    .get("dgm-a")
                    .is_some_and(|u| u.heartbeats + u.mailbox_drops == n)
        })
        .await
        .unwrap();
    a.close();
    (s, during, b, t)
}

/// Inbound datagrams beyond the session's mailbox of 16 are dropped,
/// counted, and tell nobody: no CONGESTION (upstream:
/// `webtransport/bridge.rs` `spawn_datagram_reader`, one actix address
/// reused with `try_send` into the session's 16-message mailbox). Without a
/// mailbox QUIC holds them all until the reader is back.
#[tokio::test]
async fn datagrams_beyond_the_mailbox_are_dropped_and_counted() {
    let n = 50;
    let (s, during, mut b, t) = datagrams_during_a_stall(16, n).await;
    let u = &s.per_user["dgm-a"];
    if during {
        assert_eq!((u.heartbeats, u.mailbox_drops), (16, n - 16), "{u:?}");
    } else {
        eprintln!("the stall was over before the datagrams were in: the split is not checked");
        assert!(u.heartbeats >= 16, "{u:?}");
    }
    assert_eq!(s.mailbox_drops, u.mailbox_drops);
    assert_eq!((s.congestion_sent, s.relay_drops), (0, 0));
    assert_eq!(u.received_by_type.heartbeat.datagram, u.heartbeats);
    let heartbeats = u.heartbeats as usize;
    let got = b
        .settle("a's heartbeats", |got| {
            got.iter().filter(|g| g.media().is_some()).count() >= heartbeats
        })
        .await;
    assert_eq!(
        got.iter().filter(|g| g.media().is_some()).count(),
        heartbeats
    );
    assert!(
        !got.iter().any(is_type(packet_type::CONGESTION)),
        "no CONGESTION for mailbox drops"
    );
    t.close().await;

    let (s, during, _b, t) = datagrams_during_a_stall(0, n).await;
    let u = &s.per_user["dgm-a"];
    if during {
        assert_eq!((u.heartbeats, u.mailbox_drops), (n, 0), "no mailbox: {u:?}");
    }
    assert_eq!(s.mailbox_drops, 0);
    t.close().await;
}

/// Packets that do not parse are forwarded to the meeting, counted as
/// malformed (upstream: `packet_handler.rs` `classify_packet` returns
/// `Data` for them; `chat_server.rs` publishes a wrapper it cannot parse
/// unchanged): a broken wrapper unchanged, as a datagram; a MEDIA wrapper
/// whose MediaPacket does not parse (encrypted media) as media, on a
/// stream, with the sender's session id.
#[tokio::test]
async fn packets_that_do_not_parse_are_forwarded() {
    let t = Target::default_relay().await;
    let a = t.join("op-a", "room-op").await;
    let mut b = t.join("op-b", "room-op").await;
    t.members(&[("room-op", 2)]).await;
    let broken = [0xff_u8, 0xff, 0xff];
    let encrypted = wrapper(PacketType::MEDIA, "op-a", vec![0xff; 40]);
    a.send(&broken).await;
    a.send(&encrypted).await;
    let (g, _) = b
        .until("the broken packet", |g| g.bytes[..] == broken[..])
        .await;
    assert!(g.datagram, "small and not media: a datagram");
    let is_encrypted = |g: &Got| {
        PacketWrapper::parse_from_bytes(&g.bytes)
            .is_ok_and(|w| w.packet_type.value() == packet_type::MEDIA && g.media().is_none())
    };
    let (g, _) = b.until("the encrypted media", is_encrypted).await;
    assert!(!g.datagram, "media: a stream");
    let w = g.wrapper();
    assert_eq!((w.data, w.session_id), (vec![0xff; 40], a.session_id));
    let s = t
        .stats_when(|s| s.per_user.get("op-a").is_some_and(|u| u.malformed == 2))
        .await
        .unwrap();
    let u = &s.per_user["op-a"];
    assert_eq!(u.relayed_to, 2);
    assert_eq!(u.received_by_type.unparsed.stream, 1);
    assert_eq!(u.received_by_type.media_unparsed.stream, 1);
    t.close().await;
}

/// An observer is told of nobody already in the meeting (upstream:
/// `chat_server.rs` `JoinRoom` sends the member list to non-observers only).
#[tokio::test]
async fn an_observer_gets_no_member_list() {
    let t = relay_with_secret().await;
    let mut a = t.join("ol-a", "room-ol").await;
    a.send(&wire::connection("ol-a", "room-ol")).await;
    a.until("a joined", is_joined("ol-a")).await;
    let mut o = observer(&t, "ol-o", "room-ol").await;
    let got = o.settle("anything after the greeting", |_| true).await;
    assert!(got.is_empty(), "no PARTICIPANT_JOINED for a: {got:?}");
    // A participant joining now is told of a.
    let mut b = t.join("ol-b", "room-ol").await;
    b.until("b told of a", is_joined("ol-a")).await;
    t.close().await;
}

/// When the first participant joins, MEETING_STARTED also goes to the
/// meeting, as a datagram: the observers already there get it (upstream:
/// `chat_server.rs` `JoinRoom` publishes it on `room.{room}.system` when no
/// participant was there, before the newcomer subscribes). Later joiners
/// cause none, and a participant gets only its greeting's.
#[tokio::test]
async fn the_first_participant_starts_the_meeting_for_the_observers() {
    let t = relay_with_secret().await;
    let mut o = observer(&t, "ms-o", "room-ms").await;
    let mut a = t.join("ms-a", "room-ms").await;
    let (g, _) = o.until("MEETING_STARTED", is_started).await;
    assert!(g.datagram, "as a datagram");
    let m =
        videocall_types::protos::meeting_packet::MeetingPacket::parse_from_bytes(&g.wrapper().data)
            .unwrap();
    assert_eq!(m.creator_id, b"ms-a");
    let mut b = t.join("ms-b", "room-ms").await;
    t.members(&[("room-ms", 3)]).await;
    for p in [&mut o, &mut a, &mut b] {
        let got = p.settle("after the joins", |_| true).await;
        assert!(
            !got.iter().any(is_started),
            "no other MEETING_STARTED: {got:?}"
        );
    }
    t.close().await;
}
