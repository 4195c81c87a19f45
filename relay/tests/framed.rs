//! The relay on the framed wire (`--wire framed`, upstream RnD): test
//! clients that keep one persistent uni stream per kind, as upstream RnD's
//! client does, and read the relay's frames with `FrameReader`; clients of
//! the other wire against each relay; and the health port.
//!
//! As in `relay.rs`, every wait is under a timeout and counts are asserted
//! once the relay has counted them. That nothing more arrived than expected
//! is checked against what the relay says it sent (`sent_by_type`, counted
//! by its writer as it hands each packet to QUIC).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use synth_common::framing::{self, FrameError, FrameReader, Wire};
use synth_common::wire::{self, media_type, packet_type, MediaPrefix, MeetingEvent};
use synth_relay::RelayConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use web_transport_quinn::{SendStream, Session};

use crate::relay::{audio, media, within, Target, TALKING};

/// A client's persistent streams, as upstream RnD's client keys them
/// (`MediaStreamKey`: audio, video, screen, control).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lane {
    Audio,
    Video,
    Screen,
    Control,
}

/// One packet received: a frame (with the index of the relay's stream it
/// came on) or a datagram.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) bytes: Bytes,
    stream: Option<u64>,
}

enum In {
    Got(Got),
    Broken(FrameError),
}

/// A participant on the framed wire.
pub(crate) struct FramedPeer {
    pub(crate) session: Session,
    rx: mpsc::UnboundedReceiver<In>,
    /// What arrived before the greeting was complete (datagrams can).
    early: VecDeque<Got>,
    lanes: [Option<SendStream>; 4],
    pub(crate) session_id: u64,
    /// The relay's stream the greeting came on: its control stream.
    control: u64,
}

/// Reads every frame of the relay's stream `r` (index `index`) into `tx`.
async fn read_frames(
    mut r: web_transport_quinn::RecvStream,
    index: u64,
    tx: mpsc::UnboundedSender<In>,
) {
    let mut frames = FrameReader::new();
    loop {
        match r.read_chunk(64 * 1024, true).await {
            Ok(Some(chunk)) => {
                frames.push(&chunk.bytes);
                loop {
                    match frames.next() {
                        Ok(Some(bytes)) => {
                            let got = Got {
                                bytes,
                                stream: Some(index),
                            };
                            let _ = tx.send(In::Got(got));
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(In::Broken(e));
                            return;
                        }
                    }
                }
            }
            Ok(None) => {
                if let Err(e) = frames.finish() {
                    let _ = tx.send(In::Broken(e));
                }
                return;
            }
            Err(_) => return,
        }
    }
}

impl FramedPeer {
    /// Connects, reads everything in the background, and checks the
    /// greeting: SESSION_ASSIGNED then MEETING_STARTED, in that order, on
    /// one stream.
    pub(crate) async fn join(t: &Target, user: &str, room: &str) -> FramedPeer {
        let session = within("connect", t.client.connect(t.path_url(user, room)))
            .await
            .unwrap_or_else(|e| panic!("{user} joining {room}: {e}"));
        let (tx, rx) = mpsc::unbounded_channel();
        let (s, streams) = (session.clone(), tx.clone());
        tokio::spawn(async move {
            while let Ok(r) = s.accept_uni().await {
                let index = r.quic_id().index();
                tokio::spawn(read_frames(r, index, streams.clone()));
            }
        });
        let s = session.clone();
        tokio::spawn(async move {
            while let Ok(bytes) = s.read_datagram().await {
                let _ = tx.send(In::Got(Got {
                    bytes,
                    stream: None,
                }));
            }
        });
        let mut p = FramedPeer {
            session,
            rx,
            early: VecDeque::new(),
            lanes: Default::default(),
            session_id: 0,
            control: 0,
        };
        let mut greeting = Vec::new();
        let mut early = VecDeque::new();
        while greeting.len() < 2 {
            let g = p.next().await;
            if g.stream.is_some() {
                greeting.push(g);
            } else {
                early.push_back(g);
            }
        }
        let assigned = wire::parse(&greeting[0].bytes).unwrap();
        assert_eq!(assigned.packet_type, packet_type::SESSION_ASSIGNED);
        let started = wire::parse(&greeting[1].bytes).unwrap();
        assert_eq!(started.packet_type, packet_type::MEETING);
        assert_eq!(wire::parse_meeting(started.data), Ok(MeetingEvent::Started));
        assert_eq!(greeting[0].stream, greeting[1].stream, "one control stream");
        p.session_id = assigned.session_id;
        p.control = greeting[0].stream.unwrap();
        p.early = early;
        p
    }

    pub(crate) async fn next(&mut self) -> Got {
        if let Some(g) = self.early.pop_front() {
            return g;
        }
        match within("next packet", self.rx.recv()).await {
            Some(In::Got(g)) => g,
            Some(In::Broken(e)) => panic!("the relay broke its framing: {e}"),
            None => panic!("session closed"),
        }
    }

    /// Writes `bytes` as they are on `lane`'s stream (opened at its first use).
    async fn write(&mut self, lane: Lane, bytes: &[u8]) {
        let (session, slot) = (&self.session, &mut self.lanes[lane as usize]);
        within("send", async {
            if slot.is_none() {
                *slot = Some(session.open_uni().await.unwrap());
            }
            slot.as_mut().unwrap().write_all(bytes).await.unwrap();
        })
        .await
    }

    /// Sends `packets` as frames on `lane`'s stream, in one write.
    pub(crate) async fn send(&mut self, lane: Lane, packets: &[&[u8]]) {
        let mut out = Vec::new();
        for p in packets {
            framing::frame(p, &mut out);
        }
        self.write(lane, &out).await
    }

    /// Everything that arrives until `done` holds for it.
    async fn until(&mut self, what: &str, done: impl Fn(&Received) -> bool) -> Received {
        let mut r = Received::default();
        while !done(&r) {
            let g = within(what, self.next()).await;
            r.add(g);
        }
        r
    }
}

/// Packets of one sender and kind as they arrived: each one's sequence
/// number and the stream it came on.
type Arrivals = Vec<(Option<u64>, Option<u64>)>;

/// What a peer received, by sender and kind.
#[derive(Debug, Default)]
struct Received {
    /// Per (sender, media type).
    media: BTreeMap<(String, i32), Arrivals>,
    /// Per (sender, packet type) of the rest, each packet's stream.
    other: BTreeMap<(String, i32), Vec<Option<u64>>>,
    /// Every stream index seen.
    streams: BTreeSet<u64>,
}

impl Received {
    fn add(&mut self, g: Got) {
        if let Some(s) = g.stream {
            self.streams.insert(s);
        }
        let p = wire::parse(&g.bytes).expect("a PacketWrapper");
        let user = String::from_utf8_lossy(p.user_id).into_owned();
        match wire::parse_media(p.data) {
            Ok(m) if p.packet_type == packet_type::MEDIA => self
                .media
                .entry((user, m.media_type))
                .or_default()
                .push((m.sequence, g.stream)),
            _ => self
                .other
                .entry((user, p.packet_type))
                .or_default()
                .push(g.stream),
        }
    }

    fn count(&self, user: &str, mt: i32) -> usize {
        self.media.get(&(user.to_string(), mt)).map_or(0, Vec::len)
    }

    /// The sequence numbers of `user`'s `mt` packets, in arrival order, and
    /// the one stream they all came on.
    fn in_order(&self, user: &str, mt: i32) -> (Vec<u64>, u64) {
        let got = &self.media[&(user.to_string(), mt)];
        let streams: BTreeSet<Option<u64>> = got.iter().map(|(_, s)| *s).collect();
        assert_eq!(streams.len(), 1, "{user} {mt}: one stream, {streams:?}");
        let stream = streams.into_iter().next().unwrap().expect("not a datagram");
        (got.iter().map(|(seq, _)| seq.unwrap()).collect(), stream)
    }
}

async fn framed_relay(cfg: RelayConfig) -> Target {
    Target::relay(RelayConfig {
        wire: Wire::Framed,
        leave_grace: Duration::ZERO,
        ..cfg
    })
    .await
}

/// Three framed participants: what each sends reaches the two others
/// exactly, every kind in order on a stream of its own (the control stream
/// being the greeting's), with frames split across writes and several in
/// one write; and the relay sent each receiver exactly that.
#[tokio::test]
async fn a_framed_relay_relays_between_framed_clients_exactly() {
    let t = framed_relay(RelayConfig::default()).await;
    let room = "fr-room";
    let users = ["fr-a", "fr-b", "fr-c"];
    let mut peers = Vec::new();
    for u in users {
        peers.push(FramedPeer::join(&t, u, room).await);
    }
    t.members(&[(room, 3)]).await;
    let (n_audio, n_video, n_screen, n_hb) = (40u64, 8u64, 4u64, 3usize);
    for (u, p) in users.iter().zip(&mut peers) {
        p.send(Lane::Control, &[&wire::connection(u, room)]).await;
        let mut pre = MediaPrefix::new(u);
        // Audio two frames a write.
        for seq in (0..n_audio).step_by(2) {
            let (a0, a1) = (audio(&mut pre, seq), audio(&mut pre, seq + 1));
            p.send(Lane::Audio, &[&a0, &a1]).await;
        }
        for seq in 0..n_video {
            let len = if seq == 3 { 200_000 } else { 2_000 };
            let v = media(&mut pre, media_type::VIDEO, seq, seq == 0, len);
            p.send(Lane::Video, &[&v]).await;
        }
        // Screen frames split inside the length and inside the payload,
        // each piece written on its own a moment apart.
        for seq in 0..n_screen {
            let v = media(&mut pre, media_type::SCREEN, seq, seq == 0, 3_000);
            let mut bytes = Vec::new();
            framing::frame(&v, &mut bytes);
            for piece in [&bytes[..2], &bytes[2..10], &bytes[10..]] {
                p.write(Lane::Screen, piece).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        for _ in 0..n_hb {
            p.send(Lane::Control, &[&wire::heartbeat(u, 1.0, TALKING)])
                .await;
        }
    }
    let s = t
        .stats_when(|s| {
            users.iter().all(|u| {
                s.per_user.get(*u).is_some_and(|st| {
                    (
                        st.audio_packets,
                        st.video_packets,
                        st.screen_packets,
                        st.heartbeats,
                    ) == (n_audio, n_video, n_screen, n_hb as u64)
                })
            })
        })
        .await
        .unwrap();
    assert_eq!((s.relay_drops, s.malformed_streams), (0, 0));

    for (i, p) in peers.iter_mut().enumerate() {
        let me = users[i];
        let others: Vec<&str> = users.iter().copied().filter(|u| *u != me).collect();
        let got = p
            .until("the others' packets", |r| {
                others.iter().all(|o| {
                    r.count(o, media_type::AUDIO) == n_audio as usize
                        && r.count(o, media_type::VIDEO) == n_video as usize
                        && r.count(o, media_type::SCREEN) == n_screen as usize
                        && r.count(o, media_type::HEARTBEAT) == n_hb
                })
            })
            .await;
        let mut lanes = BTreeSet::new();
        for o in &others {
            for (mt, n) in [
                (media_type::AUDIO, n_audio),
                (media_type::VIDEO, n_video),
                (media_type::SCREEN, n_screen),
            ] {
                let (seqs, stream) = got.in_order(o, mt);
                assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "{me} from {o}, {mt}");
                assert_ne!(stream, p.control, "{mt} has a stream of its own");
                lanes.insert((mt, stream));
            }
            let hb = &got.media[&(o.to_string(), media_type::HEARTBEAT)];
            assert!(
                hb.iter().all(|(_, s)| *s == Some(p.control)),
                "heartbeats are control"
            );
        }
        // One stream per kind, whoever sent: the relay opened three besides control.
        let kinds: BTreeSet<i32> = lanes.iter().map(|(mt, _)| *mt).collect();
        let streams: BTreeSet<u64> = lanes.iter().map(|(_, s)| *s).collect();
        assert_eq!((kinds.len(), streams.len()), (3, 3), "{me}: {lanes:?}");
        assert!(got.streams.len() <= 4, "{me}: {:?}", got.streams);

        // The relay sent this receiver exactly what it received.
        let sent = &s.per_user[me].sent_by_type;
        let k = others.len() as u64;
        assert_eq!(sent.audio.stream, k * n_audio, "{me}");
        assert_eq!(sent.video.stream, k * n_video, "{me}");
        assert_eq!(sent.screen.stream, k * n_screen, "{me}");
        assert_eq!(sent.heartbeat.stream, k * n_hb as u64, "{me}");
        assert_eq!((sent.audio.datagram, sent.video.datagram), (0, 0));
    }
    let s = t.relay.as_ref().unwrap().stats();
    for u in users {
        let sent = s.per_user[u].sent_by_type;
        assert_eq!(sent.session_assigned.stream, 1, "{u}: the greeting, framed");
    }
    t.close().await;
}

/// `--drop-rate` on the framed wire: a receiver misses exactly the packets
/// the relay counts as dropped for it, and gets everything else in order.
#[tokio::test]
async fn drops_on_the_framed_wire_are_exact() {
    let t = framed_relay(RelayConfig {
        drop_rate: 0.2,
        drop_seed: 7,
        ..RelayConfig::default()
    })
    .await;
    let room = "fd-room";
    let mut a = FramedPeer::join(&t, "fd-a", room).await;
    let mut b = FramedPeer::join(&t, "fd-b", room).await;
    t.members(&[(room, 2)]).await;
    let n = 150u64;
    let mut pre = MediaPrefix::new("fd-a");
    for seq in 0..n {
        a.send(Lane::Audio, &[&audio(&mut pre, seq)]).await;
        let v = media(&mut pre, media_type::VIDEO, seq, seq % 10 == 0, 600);
        a.send(Lane::Video, &[&v]).await;
    }
    for _ in 0..5 {
        a.send(Lane::Control, &[&wire::heartbeat("fd-a", 1.0, TALKING)])
            .await;
    }
    let s = t
        .stats_when(|s| {
            s.per_user
                .get("fd-a")
                .is_some_and(|st| (st.audio_packets, st.video_packets, st.heartbeats) == (n, n, 5))
        })
        .await
        .unwrap();
    let at_b = &s.per_user["fd-b"];
    let (da, dv) = (at_b.dropped_audio, at_b.dropped_video);
    assert!(da > 0 && dv > 0, "{da} {dv}");
    assert_eq!(s.relay_drops, 0);
    let want = ((n - da) as usize, (n - dv) as usize);
    let got = b
        .until("a's packets less the drops", |r| {
            (
                r.count("fd-a", media_type::AUDIO),
                r.count("fd-a", media_type::VIDEO),
            ) == want
                && r.count("fd-a", media_type::HEARTBEAT) == 5
        })
        .await;
    for (mt, dropped) in [(media_type::AUDIO, da), (media_type::VIDEO, dv)] {
        let (seqs, _) = got.in_order("fd-a", mt);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
        assert_eq!(seqs[0], 0, "a sender's first packet is never dropped");
        assert_eq!(n - seqs.len() as u64, dropped, "missing = dropped");
    }
    let sent = &s.per_user["fd-b"].sent_by_type;
    assert_eq!(
        (sent.audio.stream, sent.video.stream),
        (n - da, n - dv),
        "the relay sent b exactly that"
    );
    let a_stats = &s.per_user["fd-a"];
    assert_eq!(a_stats.relayed_to + da + dv, 2 * n + 5);
    a.session.close(0, b"bye");
    b.session.close(0, b"bye");
    t.close().await;
}

/// A one-packet-per-stream client against a framed relay: each of its
/// packets reads as a huge length (or, shorter than a length, a truncated
/// one), its streams are closed and counted, and nothing of it is relayed.
#[tokio::test]
async fn a_per_packet_client_gets_nothing_relayed_by_a_framed_relay() {
    let t = framed_relay(RelayConfig::default()).await;
    let room = "pp-room";
    let pp = within("connect", t.client.connect(t.path_url("pp-old", room)))
        .await
        .unwrap();
    let mut b = FramedPeer::join(&t, "pp-b", room).await;
    t.members(&[(room, 2)]).await;
    let mut pre = MediaPrefix::new("pp-old");
    let mut packets = vec![wire::connection("pp-old", room)];
    for seq in 0..3 {
        packets.push(audio(&mut pre, seq));
    }
    packets.push(vec![8, 3]);
    for p in &packets {
        within("send", async {
            let mut s = pp.open_uni().await.unwrap();
            // The relay may stop the stream at its first bytes.
            let _ = s.write_all(p).await;
            let _ = s.finish();
        })
        .await;
    }
    let n = packets.len() as u64;
    let s = t
        .stats_when(|s| {
            s.per_user
                .get("pp-old")
                .is_some_and(|u| u.malformed_streams == n)
        })
        .await
        .unwrap();
    let u = &s.per_user["pp-old"];
    assert_eq!(s.malformed_streams, n);
    assert_eq!((u.malformed, u.received_by_type.unparsed.stream), (n, n));
    assert_eq!(
        (u.connection_packets, u.audio_packets, u.relayed_to),
        (0, 0, 0)
    );
    assert_eq!(u.session_log[0].joined_unix_ms, None, "never activated");
    // b hears nothing from it but that it is there (a member from accept on).
    b.send(Lane::Control, &[&wire::connection("pp-b", room)])
        .await;
    let s = t
        .stats_when(|s| s.per_user["pp-b"].connection_packets == 1)
        .await
        .unwrap();
    let sent = s.per_user["pp-b"].sent_by_type;
    assert_eq!((sent.connection.total(), sent.audio.total()), (0, 0));
    t.close().await;
}

/// A framed client against a one-packet-per-stream relay (today's): the
/// stream's frames, read to its end as one packet, do not parse (a frame
/// starts with a zero byte, which no protobuf field does); the relay counts
/// it as malformed and forwards it as opaque data, as upstream main does.
#[tokio::test]
async fn a_framed_client_against_a_per_packet_relay_is_counted_as_malformed() {
    let t = Target::default_relay().await;
    let room = "fc-room";
    let fc = within("connect", t.client.connect(t.path_url("fc-new", room)))
        .await
        .unwrap();
    let mut b = t.join("fc-b", room).await;
    t.members(&[(room, 2)]).await;
    let mut pre = MediaPrefix::new("fc-new");
    let mut bytes = Vec::new();
    framing::frame(&wire::connection("fc-new", room), &mut bytes);
    framing::frame(&audio(&mut pre, 0), &mut bytes);
    framing::frame(&audio(&mut pre, 1), &mut bytes);
    within("send", async {
        let mut s = fc.open_uni().await.unwrap();
        s.write_all(&bytes).await.unwrap();
        s.finish().unwrap();
    })
    .await;
    let s = t
        .stats_when(|s| s.per_user.get("fc-new").is_some_and(|u| u.malformed == 1))
        .await
        .unwrap();
    let u = &s.per_user["fc-new"];
    assert_eq!(u.received_by_type.unparsed.stream, 1);
    assert_eq!((u.audio_packets, u.malformed_streams), (0, 0));
    let (g, _) = b
        .until("the frames, forwarded unchanged", |g| {
            g.bytes[..] == bytes[..]
        })
        .await;
    assert!(g.datagram, "opaque and small: a datagram");
    fc.close(0, b"bye");
    b.close();
    t.close().await;
}

/// One HTTP/1.1 GET: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    within("GET", async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
        let body = buf.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    })
    .await
}

/// `--health-listen`: `/healthz` answers upstream's `Ok`, `/version` names
/// the service, its version and the wire; nothing else is served.
#[tokio::test]
async fn the_health_port_tells_the_wire() {
    for wire in Wire::ALL {
        let t = Target::relay(RelayConfig {
            wire,
            health_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..RelayConfig::default()
        })
        .await;
        let addr = t.relay.as_ref().unwrap().health_addr().expect("bound");
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        assert_eq!(get(addr, "/healthz").await, (200, "Ok".to_string()));
        let (status, body) = get(addr, "/version").await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["service"], "synth-relay");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["wire"], wire.to_string());
        assert_eq!(get(addr, "/metrics").await.0, 404);
        t.close().await;
    }
    let t = Target::default_relay().await;
    assert_eq!(
        t.relay.as_ref().unwrap().health_addr(),
        None,
        "off by default"
    );
    t.close().await;
}
