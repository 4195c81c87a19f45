//! The relay against docs/src/protocol.md: in-process on port 0, clients made directly
//! with `web_transport_quinn`, every await under a timeout.
//!
//! Nothing here is timed (but for generous bounds on how long a configured
//! stall lasted). Counts are asserted once the relay has counted
//! them ([`Target::stats_when`]), and "nothing else arrived" is asserted at a
//! marker ([`Peer::settle`]): the echo of an RTT probe sent once the relay
//! has counted what the test sent, which comes back behind everything the
//! relay had queued for that session. Rate limits and the leave grace period
//! are tested on explicit instants in the relay's unit tests (`session.rs`);
//! its throughput is measured by `benches/benches/relay.rs`.
//!
//! The scenarios take a [`Target`], so the same checks can be run against the
//! real upstream server: set `SYNTH_UPSTREAM_URL=https://127.0.0.1:4433` (and
//! `SYNTH_UPSTREAM_JWT_SECRET` to its `JWT_SECRET`) and run the ignored
//! `upstream_*` tests. Checks of the relay's own counters run only in-process.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use protobuf::Message;
use synth_common::jwt::{self, Claims};
use synth_common::wire::{self, media_type, packet_type, MediaFields, MediaPrefix};
use synth_relay::{Relay, RelayConfig, RelayStats, Stall};
use tokio::sync::mpsc;
use url::Url;
use videocall_types::protos::media_packet::MediaPacket;
use videocall_types::protos::meeting_packet::meeting_packet::MeetingEventType;
use videocall_types::protos::meeting_packet::MeetingPacket;
use videocall_types::protos::packet_wrapper::PacketWrapper;
use web_transport_quinn::{Client, ClientBuilder, Session};

/// Bound on every single wait: it only turns a hang into a failure.
pub(crate) const T: Duration = Duration::from_secs(20);
/// Upstream subscribes a new session to its room a moment after accepting it
/// and shows no sign of when; the only pause in these tests, and only against upstream.
const UPSTREAM_SUBSCRIBE: Duration = Duration::from_millis(200);
pub(crate) const SECRET: &[u8] = b"relay-test-secret";
/// Heartbeat flags of a participant sending audio and video, talking.
pub(crate) const TALKING: wire::HeartbeatFlags = wire::HeartbeatFlags {
    audio: true,
    video: true,
    screen: false,
    speaking: true,
};

pub(crate) async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Where the scenarios connect: the in-process relay, or upstream.
pub(crate) struct Target {
    pub(crate) base: Url,
    pub(crate) client: Client,
    pub(crate) relay: Option<Relay>,
    pub(crate) secret: Option<Vec<u8>>,
    /// How long PARTICIPANT_LEFT may take.
    left_within: Duration,
    /// Appended to room names: upstream keeps a user "present" for 2 s after
    /// it leaves, so runs back to back must not share rooms.
    room_tag: String,
}

impl Target {
    pub(crate) async fn relay(cfg: RelayConfig) -> Target {
        let secret = cfg.jwt_secret.clone();
        let left_within = cfg.leave_grace + T;
        let relay = within("relay start", Relay::start(cfg)).await.unwrap();
        let client = ClientBuilder::new()
            .with_server_certificate_hashes(vec![relay.cert_sha256().to_vec()])
            .unwrap();
        Target {
            base: relay.url().parse().unwrap(),
            client,
            relay: Some(relay),
            secret,
            left_within,
            room_tag: String::new(),
        }
    }

    pub(crate) async fn default_relay() -> Target {
        Target::relay(RelayConfig {
            leave_grace: Duration::ZERO,
            ..RelayConfig::default()
        })
        .await
    }

    fn upstream() -> Option<Target> {
        let base: Url = std::env::var("SYNTH_UPSTREAM_URL").ok()?.parse().ok()?;
        // Tests only ever talk to this machine.
        let loopback = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        assert!(
            loopback,
            "SYNTH_UPSTREAM_URL must be a loopback address, not {base}"
        );
        let client = ClientBuilder::new()
            .dangerous()
            .with_no_certificate_verification()
            .unwrap();
        Some(Target {
            base,
            client,
            relay: None,
            secret: std::env::var("SYNTH_UPSTREAM_JWT_SECRET")
                .ok()
                .map(String::into_bytes),
            left_within: synth_relay::DEFAULT_LEAVE_GRACE + T,
            room_tag: format!("-{}", std::process::id()),
        })
    }

    pub(crate) fn path_url(&self, user: &str, room: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(&format!("/lobby/{user}/{room}{}", self.room_tag));
        u
    }

    pub(crate) fn token_url(&self, token: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path("/lobby");
        u.query_pairs_mut().append_pair("token", token);
        u
    }

    pub(crate) async fn join(&self, user: &str, room: &str) -> Peer {
        Peer::connect(&self.client, self.path_url(user, room))
            .await
            .unwrap_or_else(|e| panic!("{user} joining {room}: {e}"))
    }

    /// The relay's stats once `done` holds for them (the relay may still be
    /// counting the last packets when a client has sent them).
    pub(crate) async fn stats_when(
        &self,
        done: impl Fn(&RelayStats) -> bool,
    ) -> Option<RelayStats> {
        let relay = self.relay.as_ref()?;
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let s = relay.stats();
            if done(&s) {
                return Some(s);
            }
            if tokio::time::Instant::now() > deadline {
                panic!("relay stats never got there: {s:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the meetings have these members (sessions join their
    /// room as they are accepted, not when they first send).
    pub(crate) async fn members(&self, sizes: &[(&str, u64)]) {
        if self.relay.is_none() {
            tokio::time::sleep(UPSTREAM_SUBSCRIBE).await;
            return;
        }
        self.stats_when(|s| {
            sizes
                .iter()
                .all(|(room, n)| s.meetings.get(*room) == Some(n))
        })
        .await;
    }

    pub(crate) async fn close(self) {
        if let Some(r) = self.relay {
            within("relay shutdown", r.shutdown()).await;
        }
    }
}

/// One received packet.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) bytes: Bytes,
    pub(crate) datagram: bool,
    /// The index of the server's uni stream it came on (None for a datagram).
    stream: Option<u64>,
}

/// What a session's background readers hand on.
enum Arrival {
    Packet(Got),
    /// A stream that ended before its packet did: it has arrived all the same.
    Unreadable(u64),
    Closed,
}

/// Which of the server's uni streams have arrived, by index: streams are
/// read concurrently, so a small one can overtake a big one opened before it.
#[derive(Debug, Default)]
struct StreamOrder {
    /// Every stream from the first of the greeting up to (not including)
    /// this one has arrived; `None` until the greeting is in.
    complete_below: Option<u64>,
    /// Streams that arrived at or above `complete_below`.
    ahead: BTreeSet<u64>,
}

impl StreamOrder {
    fn arrived(&mut self, index: u64) {
        if self.complete_below.is_some_and(|n| index < n) {
            return;
        }
        self.ahead.insert(index);
        self.advance();
    }

    /// The greeting's first stream: the server opens this session's streams from it on.
    fn start_at(&mut self, first: u64) {
        self.ahead.retain(|&i| i >= first);
        self.complete_below = Some(first);
        self.advance();
    }

    fn advance(&mut self) {
        if let Some(n) = &mut self.complete_below {
            while self.ahead.remove(n) {
                *n += 1;
            }
        }
    }

    /// Whether stream `index` and every one opened before it has arrived.
    fn complete_through(&self, index: u64) -> bool {
        self.complete_below.is_some_and(|n| n > index)
    }
}

impl Got {
    pub(crate) fn wrapper(&self) -> PacketWrapper {
        PacketWrapper::parse_from_bytes(&self.bytes).expect("a PacketWrapper")
    }

    pub(crate) fn packet_type(&self) -> i32 {
        self.wrapper().packet_type.value()
    }

    /// The meeting event and its target user, for MEETING packets.
    pub(crate) fn meeting(&self) -> Option<(MeetingEventType, String)> {
        let w = self.wrapper();
        if w.packet_type.value() != packet_type::MEETING {
            return None;
        }
        let m = MeetingPacket::parse_from_bytes(&w.data).ok()?;
        Some((
            m.event_type.enum_value().ok()?,
            String::from_utf8_lossy(&m.target_user_id).into_owned(),
        ))
    }

    pub(crate) fn media(&self) -> Option<MediaPacket> {
        let w = self.wrapper();
        (w.packet_type.value() == packet_type::MEDIA)
            .then(|| MediaPacket::parse_from_bytes(&w.data).ok())
            .flatten()
    }

    /// One line for traces: transport, type, sender, event or media type.
    fn describe(&self) -> String {
        let how = if self.datagram { "dgram" } else { "uni" };
        let Ok(w) = PacketWrapper::parse_from_bytes(&self.bytes) else {
            return format!("{how} opaque, {} bytes", self.bytes.len());
        };
        let detail = match (self.meeting(), self.media()) {
            (Some((e, who)), _) => format!("{e:?} {who} sid={}", w.session_id),
            (_, Some(m)) => format!("{:?} sid={}", m.media_type, w.session_id),
            _ => format!("sid={}", w.session_id),
        };
        format!("{how} {:?} from {:?} {detail}", w.packet_type, self.user())
    }

    pub(crate) fn user(&self) -> String {
        String::from_utf8_lossy(&self.wrapper().user_id).into_owned()
    }
}

/// A test participant: a session and everything it received.
pub(crate) struct Peer {
    session: Session,
    rx: mpsc::UnboundedReceiver<Arrival>,
    /// Packets that overtook the greeting (datagrams can), delivered first.
    early: VecDeque<Got>,
    /// For traces: the URL's path.
    name: String,
    /// The user id the server admitted (MEETING_STARTED's creator).
    pub(crate) user: String,
    pub(crate) session_id: u64,
    streams: StreamOrder,
    /// RTT probes sent by [`Peer::settle`], each with its own timestamp.
    probes: u32,
}

impl Peer {
    /// Connects, drains everything in the background, and reads the greeting.
    pub(crate) async fn connect(client: &Client, url: Url) -> anyhow::Result<Peer> {
        let name = url.path().trim_start_matches("/lobby/").to_string();
        let session = within("connect", client.connect(url)).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let s = session.clone();
        let streams = tx.clone();
        tokio::spawn(async move {
            while let Ok(mut r) = s.accept_uni().await {
                let tx = streams.clone();
                let index = r.quic_id().index();
                tokio::spawn(async move {
                    let _ = tx.send(match r.read_to_end(8 << 20).await {
                        Ok(b) => Arrival::Packet(Got {
                            bytes: b.into(),
                            datagram: false,
                            stream: Some(index),
                        }),
                        Err(_) => Arrival::Unreadable(index),
                    });
                });
            }
        });
        let s = session.clone();
        tokio::spawn(async move {
            while let Ok(bytes) = s.read_datagram().await {
                let _ = tx.send(Arrival::Packet(Got {
                    bytes,
                    datagram: true,
                    stream: None,
                }));
            }
        });
        let mut p = Peer {
            session,
            rx,
            early: VecDeque::new(),
            name,
            user: String::new(),
            session_id: 0,
            streams: StreamOrder::default(),
            probes: 0,
        };
        // SESSION_ASSIGNED and MEETING_STARTED, each on a stream, in either order.
        let (mut assigned, mut started) = (None, None);
        let mut first_stream = u64::MAX;
        let mut early = VecDeque::new();
        while assigned.is_none() || started.is_none() {
            let g = p.next().await;
            let started_now = g.meeting().map(|m| m.0) == Some(MeetingEventType::MEETING_STARTED);
            match g.packet_type() {
                packet_type::SESSION_ASSIGNED => assigned = Some(g.wrapper().session_id),
                packet_type::MEETING if started_now => {
                    let m = MeetingPacket::parse_from_bytes(&g.wrapper().data).unwrap();
                    started = Some(String::from_utf8_lossy(&m.creator_id).into_owned());
                }
                _ => {
                    early.push_back(g);
                    continue;
                }
            }
            assert!(!g.datagram, "greeting on a uni stream");
            first_stream = first_stream.min(g.stream.unwrap());
        }
        p.streams.start_at(first_stream);
        p.early = early;
        p.session_id = assigned.unwrap();
        p.user = started.unwrap();
        assert_ne!(p.session_id, 0);
        Ok(p)
    }

    pub(crate) async fn send(&self, bytes: &[u8]) {
        within("send", async {
            let mut s = self.session.open_uni().await.unwrap();
            s.write_all(bytes).await.unwrap();
            s.finish().unwrap();
        })
        .await
    }

    pub(crate) fn send_datagram(&self, bytes: &[u8]) {
        self.session
            .send_datagram(Bytes::copy_from_slice(bytes))
            .unwrap();
    }

    async fn arrival(&mut self) -> Arrival {
        if let Some(g) = self.early.pop_front() {
            return Arrival::Packet(g);
        }
        let a = self.rx.recv().await.unwrap_or(Arrival::Closed);
        match &a {
            Arrival::Packet(g) => {
                if let Some(i) = g.stream {
                    self.streams.arrived(i);
                }
                if std::env::var("SYNTH_TEST_TRACE").is_ok() {
                    eprintln!("[{}] {}", self.name, g.describe());
                }
            }
            Arrival::Unreadable(i) => self.streams.arrived(*i),
            Arrival::Closed => {}
        }
        a
    }

    async fn recv(&mut self) -> Option<Got> {
        loop {
            match self.arrival().await {
                Arrival::Packet(g) => return Some(g),
                Arrival::Unreadable(_) => {}
                Arrival::Closed => return None,
            }
        }
    }

    pub(crate) async fn next(&mut self) -> Got {
        within("next packet", self.recv())
            .await
            .expect("session open")
    }

    /// Waits for a packet matching `want`, returning it and what came before it.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        want: impl Fn(&Got) -> bool,
    ) -> (Got, Vec<Got>) {
        let mut before = Vec::new();
        within(what, async {
            loop {
                let g = self.recv().await.expect("session open");
                if want(&g) {
                    return (g, before);
                }
                before.push(g);
            }
        })
        .await
    }

    /// Everything that arrives until the echo of an RTT probe sent now, and
    /// until `done` holds for it.
    ///
    /// The relay queues the echo behind whatever it had already queued for
    /// this session, and every stream the server opened before the echo's is
    /// waited for (streams are read concurrently), so once the relay has
    /// counted what the test sent, nothing it relayed of that can come later.
    /// Datagrams keep no order against streams: callers that expect some
    /// wait for them with `done`. Upstream relays through NATS, a path the
    /// echo does not take, so there `done` must name everything expected.
    pub(crate) async fn settle(&mut self, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        self.probes += 1;
        let probe = wire::rtt(&self.user, self.probes as f64);
        self.send(&probe).await;
        within(what, async {
            let mut echo = None;
            let mut got = Vec::new();
            loop {
                if echo.is_some_and(|e| self.streams.complete_through(e)) && done(&got) {
                    return got;
                }
                match self.arrival().await {
                    Arrival::Packet(g) if echo.is_none() && g.bytes[..] == probe[..] => {
                        assert!(!g.datagram, "stream probe echoed on a stream");
                        echo = g.stream;
                    }
                    Arrival::Packet(g) => got.push(g),
                    Arrival::Unreadable(_) => {}
                    Arrival::Closed => panic!("{what}: session closed"),
                }
            }
        })
        .await
    }

    pub(crate) fn close(&self) {
        self.session.close(0, b"bye");
    }
}

pub(crate) fn audio(p: &mut MediaPrefix, seq: u64) -> Vec<u8> {
    media(p, media_type::AUDIO, seq, true, 80)
}

pub(crate) fn media(p: &mut MediaPrefix, mt: i32, seq: u64, key: bool, len: usize) -> Vec<u8> {
    let frame: Vec<u8> = (0..len).map(|i| (i * 7 + seq as usize) as u8).collect();
    media_frame(p, mt, seq, key, &frame)
}

/// A media packet carrying `frame`.
pub(crate) fn media_frame(
    p: &mut MediaPrefix,
    mt: i32,
    seq: u64,
    key: bool,
    frame: &[u8],
) -> Vec<u8> {
    let f = MediaFields {
        media_type: mt,
        sequence: seq,
        timestamp_ms: 1_700_000_000_000.0 + seq as f64,
        duration_ms: 33.3,
        key,
        layer: 0,
    };
    let mut v = p.build(&f, frame.len()).to_vec();
    v.extend_from_slice(frame);
    v
}

pub(crate) fn is_joined(user: &str) -> impl Fn(&Got) -> bool + '_ {
    move |g| g.meeting() == Some((MeetingEventType::PARTICIPANT_JOINED, user.to_string()))
}

// ---------------------------------------------------------------------------
// Scenarios

/// 3 in room A, 1 in room B: each packet reaches exactly the other members of
/// its meeting, never its sender, with the sender's session id filled in.
async fn meeting_isolation(t: &Target) {
    let names = ["a1", "a2", "a3", "b1"];
    let room = |u: &str| {
        if u.starts_with('a') {
            "room-a"
        } else {
            "room-b"
        }
    };
    let mut peers = Vec::new();
    for u in names {
        peers.push(t.join(u, room(u)).await);
    }
    let sids: BTreeMap<String, u64> = names
        .iter()
        .zip(&peers)
        .map(|(u, p)| (u.to_string(), p.session_id))
        .collect();

    // Every session in its room before anyone is announced.
    t.members(&[("room-a", 3), ("room-b", 1)]).await;
    // Activate everyone, then wait until each A member has seen all three joins.
    for (u, p) in names.iter().zip(&peers) {
        p.send(&wire::connection(u, room(u))).await;
    }
    for p in &mut peers[..3] {
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 3 {
            let (g, _) = p
                .until("PARTICIPANT_JOINED", |g| {
                    g.meeting()
                        .is_some_and(|m| m.0 == MeetingEventType::PARTICIPANT_JOINED)
                })
                .await;
            seen.insert(g.meeting().unwrap().1);
        }
        assert_eq!(seen, ["a1", "a2", "a3"].map(String::from).into());
    }

    // Each sends 20 audio packets, 5 video frames (one of 200 kB, read in
    // many chunks) and a heartbeat.
    let mut sent: BTreeMap<String, (u64, u64)> = BTreeMap::new(); // audio bytes, video bytes
    for (u, p) in names.iter().zip(&peers) {
        let mut pre = MediaPrefix::new(u);
        let (mut ab, mut vb) = (0u64, 0u64);
        for seq in 0..20 {
            let a = audio(&mut pre, seq);
            ab += a.len() as u64;
            p.send(&a).await;
        }
        for seq in 0..5 {
            let len = if seq == 2 { 200_000 } else { 2_000 };
            let v = media(&mut pre, media_type::VIDEO, seq, seq == 0, len);
            vb += v.len() as u64;
            p.send(&v).await;
        }
        p.send(&wire::heartbeat(u, 1.0, TALKING)).await;
        sent.insert(u.to_string(), (ab, vb));
    }
    // Everything counted (and so relayed) before anyone looks: the marker
    // each receiver sends then comes back behind all of it.
    let s = t
        .stats_when(|s| {
            names.iter().all(|u| {
                s.per_user.get(*u).is_some_and(|st| {
                    (st.audio_packets, st.video_packets, st.heartbeats) == (20, 5, 1)
                })
            })
        })
        .await;

    for (i, p) in peers.iter_mut().enumerate() {
        let me = names[i];
        let others: Vec<&str> = names
            .iter()
            .copied()
            .filter(|u| *u != me && room(u) == room(me))
            .collect();
        let want = 26 * others.len();
        let is_media = |g: &&Got| g.media().is_some();
        let got: Vec<Got> = p
            .settle("the others' media", |got| {
                got.iter().filter(is_media).count() >= want
            })
            .await
            .into_iter()
            .filter(|g| g.media().is_some())
            .collect();
        assert_eq!(got.len(), want, "{me} got {} media packets", got.len());
        let mut per: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for g in &got {
            assert!(!g.datagram, "media on uni streams");
            let w = g.wrapper();
            let from = g.user();
            assert_ne!(from, me, "{me} got its own packet");
            assert!(others.contains(&from.as_str()), "{me} got {from}'s packet");
            assert_eq!(w.session_id, sids[&from], "session id of {from} filled in");
            let m = g.media().unwrap();
            let e = per.entry(from).or_default();
            match m.media_type.value() {
                media_type::AUDIO => e.0 += 1,
                media_type::VIDEO => e.1 += 1,
                _ => e.2 += 1,
            }
        }
        for o in &others {
            assert_eq!(per[*o], (20, 5, 1), "{me} from {o}");
        }
    }

    // The relay counted exactly what was sent.
    if let Some(s) = s {
        assert_eq!(s.sessions_accepted, 4);
        assert_eq!(s.meetings.get("room-a"), Some(&3));
        for u in names {
            let st = &s.per_user[u];
            assert_eq!(st.meeting, room(u));
            assert_eq!((st.audio_packets, st.audio_bytes), (20, sent[u].0), "{u}");
            assert_eq!((st.video_packets, st.video_bytes), (5, sent[u].1), "{u}");
            assert_eq!(
                (st.video_keyframes, st.heartbeats, st.connection_packets),
                (1, 1, 1)
            );
            // The 200 kB frame may finish after the smaller ones sent after it
            // (streams are read concurrently, as upstream does), so video may
            // arrive out of order; nothing may be missing.
            assert_eq!((st.audio_seq.missing(), st.video_seq.missing()), (0, 0));
            assert_eq!((st.audio_seq.duplicate, st.video_seq.duplicate), (0, 0));
            assert_eq!((st.audio_seq.first, st.audio_seq.last), (Some(0), Some(19)));
            assert_eq!((st.video_seq.first, st.video_seq.last), (Some(0), Some(4)));
            // 27 packets (CONNECTION included) to each other member.
            let others = if room(u) == "room-a" { 2 } else { 0 };
            assert_eq!(st.relayed_to, 27 * others, "{u}");
            assert_eq!(st.relay_drops, 0);
        }
    }
    for p in &peers {
        p.close();
    }
}

/// RTT probes are echoed on their own transport and do not activate; a
/// session receives before its own first packet, but is relayed to others
/// (and announced) only from its first non-RTT packet on.
async fn activation_and_rtt(t: &Target) {
    let mut a = t.join("act-a", "room-act").await;
    let mut b = t.join("act-b", "room-act").await;
    // As upstream: the newcomer hears about members already connected.
    b.until("existing PARTICIPANT_JOINED", is_joined("act-a"))
        .await;

    let probe = wire::rtt("act-a", 12345.0);
    a.send(&probe).await;
    let (echo, _) = a.until("RTT echo", |g| g.media().is_some()).await;
    assert_eq!(&echo.bytes[..], &probe[..], "echoed as sent");
    assert!(!echo.datagram, "stream probe echoed on a stream");
    // The keep-alive goes first, so the relay has read it once the probe is echoed.
    a.send_datagram(b"ping");
    a.send_datagram(&probe);
    let (echo, _) = a.until("datagram RTT echo", |g| g.media().is_some()).await;
    assert!(echo.datagram, "datagram probe echoed as a datagram");
    if let Some(s) = t
        .stats_when(|s| s.per_user.get("act-a").is_some_and(|u| u.rtt == 2))
        .await
    {
        assert_eq!(
            s.per_user["act-a"].relayed_to, 0,
            "RTT and ping not relayed"
        );
    }
    let got = b.settle("a's probes and ping", |_| true).await;
    assert!(got.is_empty(), "RTT and ping are not relayed: {got:?}");

    // b has sent only an RTT probe (which does not activate) and still receives a's packets.
    let hb = wire::heartbeat("act-a", 1.0, TALKING);
    a.send(&hb).await;
    t.stats_when(|s| s.per_user.get("act-a").is_some_and(|u| u.heartbeats == 1))
        .await;
    let mut got = b
        .settle("a's heartbeat and JOINED", |got| {
            got.iter().any(|g| g.media().is_some()) && got.iter().any(is_joined("act-a"))
        })
        .await;
    got.sort_by_key(|g| g.datagram);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0].media().unwrap().media_type.value(),
        media_type::HEARTBEAT
    );
    assert!(
        is_joined("act-a")(&got[1]) && got[1].datagram,
        "JOINED as a datagram"
    );
    a.until("own PARTICIPANT_JOINED", is_joined("act-a")).await;

    // Only now is b announced and relayed.
    let mut pre = MediaPrefix::new("act-b");
    b.send(&audio(&mut pre, 1)).await;
    let (g, _) = a.until("b's audio", |g| g.media().is_some()).await;
    assert_eq!(g.user(), "act-b");
    a.close();
    b.close();
}

/// PARTICIPANT_JOINED on activation (to the joiner too), PARTICIPANT_LEFT when
/// a session closes, and a reconnection within the grace period announced to nobody.
async fn joined_and_left(t: &Target) {
    let mut a = t.join("jl-a", "room-jl").await;
    a.send(&wire::connection("jl-a", "room-jl")).await;
    a.until("a joined", is_joined("jl-a")).await;
    let mut b = t.join("jl-b", "room-jl").await;
    b.send(&wire::connection("jl-b", "room-jl")).await;
    let (j, _) = a.until("b joined, at a", is_joined("jl-b")).await;
    assert!(j.datagram);
    let w = MeetingPacket::parse_from_bytes(&j.wrapper().data).unwrap();
    assert_eq!(w.session_id, b.session_id);
    assert_eq!(w.display_name, b"jl-b");
    b.until("b joined, at b", is_joined("jl-b")).await;

    b.close();
    let left = |g: &Got| g.meeting() == Some((MeetingEventType::PARTICIPANT_LEFT, "jl-b".into()));
    tokio::time::timeout(t.left_within, a.until("b left", left))
        .await
        .expect("PARTICIPANT_LEFT in time");
    a.close();
}

/// KEYFRAME_REQUEST goes to the room, at most two a second per sender.
///
/// Of three requests sent back to back at most one can be limited, however
/// long they take (two pass in any window); which ones were is the relay's
/// count. The two-a-second rule itself is tested on explicit instants in
/// `session.rs`.
async fn keyframe_requests(t: &Target) {
    let mut a = t.join("kf-a", "room-kf").await;
    let b = t.join("kf-b", "room-kf").await;
    a.send(&wire::connection("kf-a", "room-kf")).await;
    for _ in 0..3 {
        b.send(&wire::keyframe_request("kf-b", "kf-a", 1.0)).await;
    }
    let limited = t
        .stats_when(|s| {
            s.per_user
                .get("kf-b")
                .is_some_and(|u| u.keyframe_requests == 3)
        })
        .await
        .map(|s| s.per_user["kf-b"].keyframe_requests_limited);
    let is_request = |g: &&Got| {
        g.media()
            .is_some_and(|m| m.media_type.value() == media_type::KEYFRAME_REQUEST)
    };
    let relayed = 3 - limited.unwrap_or(1) as usize;
    let got: Vec<Got> = a
        .settle("the key-frame requests", |got| {
            got.iter().filter(is_request).count() >= relayed
        })
        .await
        .into_iter()
        .filter(|g| is_request(&g))
        .collect();
    assert!(limited.is_none_or(|n| n <= 1), "limited {limited:?} of 3");
    if limited.is_some() {
        assert_eq!(got.len(), relayed, "all the relay let through, no more");
    }
    assert!((2..=3).contains(&got.len()), "{} of 3 relayed", got.len());
    assert_eq!(
        got[0].media().unwrap().user_id,
        b"kf-a",
        "target in MediaPacket.user_id"
    );
    a.close();
    b.close();
}

/// Ids outside `[A-Za-z0-9_-]` are refused.
async fn bad_ids_refused(t: &Target) {
    for (user, room) in [("a.b", "room"), ("ok", "me@x")] {
        match Peer::connect(&t.client, t.path_url(user, room)).await {
            Ok(_) => panic!("{user}/{room} accepted"),
            Err(e) if std::env::var("SYNTH_TEST_TRACE").is_ok() => eprintln!("refused: {e:#}"),
            Err(_) => {}
        }
    }
    // A space is fine: it becomes '_'.
    let p = t.join("with%20space", "room-sp").await;
    p.close();
}

/// Tokens: one minted with the right secret is accepted (ids from the
/// claims); a wrong secret, an expired token, a wrong issuer and no
/// `room_join` are refused; an observer receives but its media is dropped.
async fn tokens(t: &Target) {
    let secret = t.secret.clone().expect("a JWT secret");
    let ttl = Duration::from_secs(600);
    let room = format!("room-tok{}", t.room_tag);
    let good = Claims::participant("tok-a", &room, ttl);
    let mut a = Peer::connect(&t.client, t.token_url(&jwt::mint(&good, &secret)))
        .await
        .expect("a good token is accepted");

    let mut expired = good.clone();
    expired.exp -= 3600;
    let mut wrong_iss = good.clone();
    wrong_iss.iss = "someone-else".into();
    let mut no_join = good.clone();
    no_join.room_join = false;
    for (what, token) in [
        ("wrong secret", jwt::mint(&good, b"not-the-secret")),
        ("expired", jwt::mint(&expired, &secret)),
        ("wrong issuer", jwt::mint(&wrong_iss, &secret)),
        ("no room_join", jwt::mint(&no_join, &secret)),
    ] {
        let r = Peer::connect(&t.client, t.token_url(&token)).await;
        assert!(r.is_err(), "{what} accepted");
    }

    let mut obs = good.clone();
    obs.sub = "tok-obs".into();
    obs.room_join = false;
    obs.observer = true;
    let mut o = Peer::connect(&t.client, t.token_url(&jwt::mint(&obs, &secret)))
        .await
        .expect("an observer token is accepted");
    let mut pre = MediaPrefix::new("tok-obs");
    o.send(&audio(&mut pre, 0)).await;
    t.stats_when(|s| {
        s.per_user
            .get("tok-obs")
            .is_some_and(|u| u.audio_packets == 1)
    })
    .await;
    let got = a.settle("the observer's audio", |_| true).await;
    assert!(
        got.iter().all(|g| g.media().is_none()),
        "observer media dropped: {got:?}"
    );
    let mut pre = MediaPrefix::new("tok-a");
    a.send(&audio(&mut pre, 0)).await;
    let (g, _) = o
        .until("a's audio at the observer", |g| g.media().is_some())
        .await;
    assert_eq!(g.user(), "tok-a");
    a.close();
    o.close();
}

/// A receiver that never accepts streams does not hold up the others, and
/// the meeting is told with CONGESTION (the slow receiver's user id, the
/// sender's session id): the sender and the third member each get it, as a
/// datagram (regression: the relay told the sender only).
async fn slow_receiver(t: &Target) {
    let mut a = t.join("sl-a", "room-sl").await;
    let mut fast = t.join("sl-fast", "room-sl").await;
    // After its 100 stream credits the server's writer to this session blocks
    // and its queue of 256 fills.
    let _slow = within(
        "slow connect",
        t.client.connect(t.path_url("sl-slow", "room-sl")),
    )
    .await
    .unwrap();
    t.members(&[("room-sl", 3)]).await;
    let mut pre = MediaPrefix::new("sl-a");
    let n = 600;
    for seq in 0..n {
        a.send(&audio(&mut pre, seq)).await;
    }
    let is_congestion = |g: &Got| g.packet_type() == packet_type::CONGESTION;
    let mut got = 0;
    let mut at_fast = None;
    while got < n {
        let g = fast.next().await;
        if g.media().is_some() {
            got += 1;
        } else if is_congestion(&g) {
            at_fast.get_or_insert(g);
        }
    }
    let at_fast = match at_fast {
        Some(g) => g,
        None => {
            fast.until("CONGESTION at the third member", is_congestion)
                .await
                .0
        }
    };
    let (at_a, _) = a.until("CONGESTION at the sender", is_congestion).await;
    for c in [at_a, at_fast] {
        assert_eq!(c.user(), "sl-slow", "names the congested receiver");
        assert_eq!(c.wrapper().session_id, a.session_id, "and the sender");
        assert!(c.datagram, "as a datagram");
    }
    a.close();
    fast.close();
}

/// Audio, video and heartbeat counts of the media among `got`.
fn media_counts(got: &[Got]) -> (u64, u64, u64) {
    let mut c = (0, 0, 0);
    for g in got {
        match g.media().map(|m| m.media_type.value()) {
            Some(media_type::AUDIO) => c.0 += 1,
            Some(media_type::VIDEO) => c.1 += 1,
            Some(media_type::HEARTBEAT) => c.2 += 1,
            _ => {}
        }
    }
    c
}

/// Each of `users` (one meeting) sends `n` audio packets, `n` video frames
/// and 5 heartbeats; each receives exactly what was sent to it less what the
/// relay counts as dropped for it (`dropped_audio`, `dropped_video`), all the
/// heartbeats, and nothing more. Returns the relay's stats.
async fn drops_match_what_receivers_miss(t: &Target, users: &[&str], n: u64) -> RelayStats {
    let room = "room-drop";
    let mut peers = Vec::new();
    for u in users {
        peers.push(t.join(u, room).await);
    }
    t.members(&[(room, users.len() as u64)]).await;
    for (u, p) in users.iter().zip(&peers) {
        let mut pre = MediaPrefix::new(u);
        for seq in 0..n {
            p.send(&audio(&mut pre, seq)).await;
            p.send(&media(&mut pre, media_type::VIDEO, seq, seq % 10 == 0, 600))
                .await;
        }
        for _ in 0..5 {
            p.send(&wire::heartbeat(u, 1.0, TALKING)).await;
        }
    }
    // Once everything is counted it has been relayed or dropped: the
    // receivers' counts are final and each marker comes back behind it all.
    let s = t
        .stats_when(|s| {
            users.iter().all(|u| {
                s.per_user.get(*u).is_some_and(|st| {
                    (st.audio_packets, st.video_packets, st.heartbeats) == (n, n, 5)
                })
            })
        })
        .await
        .expect("an in-process relay");
    assert_eq!(s.relay_drops, 0, "no queue overflowed");
    let others = users.len() as u64 - 1;
    for (me, p) in users.iter().zip(&mut peers) {
        let st = &s.per_user[*me];
        let want = (
            others * n - st.dropped_audio,
            others * n - st.dropped_video,
            others * 5,
        );
        let got = p
            .settle("the others' media", |got| {
                let c = media_counts(got);
                c.0 >= want.0 && c.1 >= want.1 && c.2 >= want.2
            })
            .await;
        assert_eq!(
            media_counts(&got),
            want,
            "{me} received what was sent to it less what the relay dropped for it"
        );
        // Dropped for a receiver, still received from the sender.
        assert_eq!((st.audio_seq.missing(), st.video_seq.missing()), (0, 0));
        assert_eq!(st.stalled_deliveries, 0, "no stall configured");
    }
    let dropped = s.injected_drops.audio + s.injected_drops.video;
    let t = s.total();
    assert_eq!(
        (s.injected_drops.audio, s.injected_drops.video),
        (t.dropped_audio, t.dropped_video),
        "totals are the users' sums"
    );
    // Every delivery was either made or dropped on purpose, never both.
    let deliveries = users.len() as u64 * others * (2 * n + 5);
    assert_eq!(t.relayed_to + dropped, deliveries);
    for p in &peers {
        p.close();
    }
    s
}

/// `drops_match_what_receivers_miss` at a drop rate of 0.1: each receiver
/// lost some audio and some video, about a tenth of what was sent to it.
async fn a_tenth_dropped(users: &[&str], seed: u64) {
    let t = Target::relay(RelayConfig {
        drop_rate: 0.1,
        drop_seed: seed,
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    let n = 150;
    let s = drops_match_what_receivers_miss(&t, users, n).await;
    let others = users.len() as u64 - 1;
    for u in users {
        let st = &s.per_user[*u];
        assert!(st.dropped_audio > 0 && st.dropped_video > 0, "{u}: {st:?}");
        let rate = (st.dropped_audio + st.dropped_video) as f64 / (2 * n * others) as f64;
        assert!((0.03..0.2).contains(&rate), "{u}: rate {rate}");
    }
    t.close().await;
}

// ---------------------------------------------------------------------------
// In-process relay

#[tokio::test]
async fn greeting_on_accept() {
    let t = Target::default_relay().await;
    // `join` asserts SESSION_ASSIGNED and MEETING_STARTED arrive unasked.
    let mut p = t.join("greet", "room-g").await;
    let s = t.stats_when(|s| s.sessions_accepted == 1).await.unwrap();
    assert_eq!(s.per_user["greet"].meeting, "room-g");
    // An RTT probe does not activate: its echo is all that follows the greeting.
    let got = p.settle("anything after the greeting", |_| true).await;
    assert!(
        got.is_empty(),
        "nothing else before the first packet: {got:?}"
    );
    p.close();
    t.close().await;
}

#[tokio::test]
async fn relays_within_meeting_only() {
    let t = Target::default_relay().await;
    meeting_isolation(&t).await;
    t.close().await;
}

#[tokio::test]
async fn rtt_echo_and_activation() {
    let t = Target::default_relay().await;
    activation_and_rtt(&t).await;
    t.close().await;
}

#[tokio::test]
async fn participant_joined_and_left() {
    let t = Target::default_relay().await;
    joined_and_left(&t).await;
    t.close().await;
}

/// A user back within the grace period is announced neither as gone nor as
/// new. The grace period is far longer than the test, so the reconnection is
/// always within it; that none is announced when it runs out is tested with
/// a paused clock in `session.rs`.
#[tokio::test]
async fn reconnection_within_grace_is_silent() {
    let t = Target::relay(RelayConfig {
        leave_grace: Duration::from_secs(600),
        ..RelayConfig::default()
    })
    .await;
    let mut a = t.join("rc-a", "room-rc").await;
    let b = t.join("rc-b", "room-rc").await;
    a.send(&wire::connection("rc-a", "room-rc")).await;
    b.send(&wire::connection("rc-b", "room-rc")).await;
    let (_, before) = a.until("b joined", is_joined("rc-b")).await;
    b.close();
    t.stats_when(|s| s.sessions_active == 1).await;
    let b2 = t.join("rc-b", "room-rc").await;
    b2.send(&wire::connection("rc-b", "room-rc")).await;
    t.stats_when(|s| {
        s.per_user
            .get("rc-b")
            .is_some_and(|u| u.connection_packets == 2)
    })
    .await;
    // A JOINED for b2 would go out just before its CONNECTION, both as
    // datagrams: wait for that CONNECTION too.
    let from_b = |got: &[Got]| {
        got.iter()
            .filter(|g| g.packet_type() == packet_type::CONNECTION && g.user() == "rc-b")
            .count()
    };
    let seen = from_b(&before);
    let got = a
        .settle("b's reconnection", |got| seen + from_b(got) == 2)
        .await;
    assert!(
        got.iter().all(|g| g.meeting().is_none()),
        "no JOINED/LEFT for a reconnection: {got:?}"
    );
    a.close();
    b2.close();
    t.close().await;
}

#[tokio::test]
async fn keyframe_requests_rate_limited() {
    let t = Target::default_relay().await;
    keyframe_requests(&t).await;
    t.close().await;
}

#[tokio::test]
async fn bad_id_in_path_refused() {
    let t = Target::default_relay().await;
    bad_ids_refused(&t).await;
    let s = t.stats_when(|s| s.sessions_rejected == 2).await.unwrap();
    assert_eq!(s.rejections.get("bad_id"), Some(&2));
    let e = Peer::connect(&t.client, t.path_url("x", "y").join("/other/x/y").unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("403"), "refused with 403: {e}");
    t.close().await;
}

/// `max_sessions`: while N sessions are open the next is refused with 403
/// (counted as `max_sessions`); once one closes, a new one gets in.
#[tokio::test]
async fn max_sessions_refuses_beyond_n_until_one_closes() {
    let t = Target::relay(RelayConfig {
        max_sessions: Some(2),
        ..RelayConfig::default()
    })
    .await;
    let a = t.join("cap-a", "cap").await;
    let b = t.join("cap-b", "cap").await;
    let e = Peer::connect(&t.client, t.path_url("cap-c", "cap"))
        .await
        .err()
        .expect("a third session is refused")
        .to_string();
    assert!(e.contains("403"), "refused with 403: {e}");
    let s = t.stats_when(|s| s.sessions_rejected == 1).await.unwrap();
    assert_eq!(s.rejections.get("max_sessions"), Some(&1));
    a.close();
    // The seat is given back when the relay sees the session end.
    let c = within("a seat after a close", async {
        loop {
            if let Ok(p) = Peer::connect(&t.client, t.path_url("cap-c", "cap")).await {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    c.close();
    b.close();
    t.close().await;
}

#[tokio::test]
async fn token_form() {
    let t = Target::relay(RelayConfig {
        jwt_secret: Some(SECRET.to_vec()),
        require_token: true,
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    tokens(&t).await;
    assert!(
        Peer::connect(&t.client, t.path_url("tok-b", "room-tok"))
            .await
            .is_err(),
        "path form refused when tokens are required"
    );
    let s = t.stats_when(|s| s.sessions_rejected == 5).await.unwrap();
    let r = &s.rejections;
    assert_eq!(r.get("token_bad_signature"), Some(&1), "{r:?}");
    assert_eq!(r.get("token_expired"), Some(&1), "{r:?}");
    assert_eq!(r.get("token_wrong_issuer"), Some(&1), "{r:?}");
    assert_eq!(r.get("token_no_room_join"), Some(&1), "{r:?}");
    assert_eq!(r.get("token_required"), Some(&1), "{r:?}");
    assert_eq!(s.per_user["tok-obs"].relayed_to, 0);
    assert_eq!(
        s.per_user["tok-obs"].audio_packets, 1,
        "counted, not relayed"
    );
    t.close().await;
}

#[tokio::test]
async fn path_form_with_secret_still_accepted() {
    let t = Target::relay(RelayConfig {
        jwt_secret: Some(SECRET.to_vec()),
        ..RelayConfig::default()
    })
    .await;
    let p = t.join("pf", "room-pf").await;
    let tok = jwt::mint(
        &Claims::participant("pf2", "room-pf", Duration::from_secs(60)),
        SECRET,
    );
    let q = Peer::connect(&t.client, t.token_url(&tok)).await.unwrap();
    assert!(t.secret.is_some());
    p.close();
    q.close();
    t.close().await;
}

#[tokio::test]
async fn drain_only_counts_without_relaying() {
    let t = Target::relay(RelayConfig {
        drain_only: true,
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    let a = t.join("dr-a", "room-dr").await;
    let mut b = t.join("dr-b", "room-dr").await;
    let mut pre = MediaPrefix::new("dr-a");
    let mut bytes = 0;
    // Audio with two gaps (4, 7 and 8 missing), video with one.
    for seq in [1, 2, 3, 5, 6, 9] {
        let p = audio(&mut pre, seq);
        bytes += p.len() as u64;
        a.send(&p).await;
    }
    for seq in [10, 11, 13] {
        a.send(&media(&mut pre, media_type::VIDEO, seq, seq == 10, 1500))
            .await;
    }
    a.send(&[0xff, 0xff, 0xff]).await; // malformed: counted, dropped
    a.send_datagram(&wire::connection("dr-a", "room-dr"));

    let s = t
        .stats_when(|s| {
            s.per_user.get("dr-a").is_some_and(|u| {
                u.video_packets == 3 && u.malformed == 1 && u.connection_packets == 1
            })
        })
        .await
        .unwrap();
    let u = &s.per_user["dr-a"];
    assert_eq!((u.audio_packets, u.audio_bytes), (6, bytes));
    assert_eq!((u.audio_seq.received, u.audio_seq.missing()), (6, 3));
    assert_eq!((u.video_seq.received, u.video_seq.missing()), (3, 1));
    assert_eq!((u.audio_seq.first, u.audio_seq.last), (Some(1), Some(9)));
    assert_eq!((u.video_keyframes, u.datagrams), (1, 1));
    assert_eq!(u.relayed_to, 0);
    let got = b
        .settle("a's packets", |got| got.iter().any(is_joined("dr-a")))
        .await;
    assert!(
        got.iter().all(|g| g.meeting().is_some()),
        "only meeting events in drain-only mode: {got:?}"
    );
    a.close();
    t.close().await;
}

#[tokio::test]
async fn slow_receiver_does_not_hold_up_others() {
    let t = Target::default_relay().await;
    slow_receiver(&t).await;
    let s = t
        .stats_when(|s| {
            s.per_user
                .get("sl-a")
                .is_some_and(|u| u.audio_packets == 600)
        })
        .await
        .unwrap();
    let u = &s.per_user["sl-a"];
    assert!(u.relay_drops > 0, "the slow receiver's queue overflowed");
    assert_eq!(u.relayed_to + u.relay_drops, 2 * 600);
    assert!(s.congestion_sent >= 1);
    // Each notice went to all three: the sender and the third member sent
    // it, and the slow receiver's full queue dropped its copy.
    let s = t
        .stats_when(|s| {
            ["sl-a", "sl-fast"]
                .iter()
                .all(|u| s.per_user[*u].sent_by_type.congestion.datagram == s.congestion_sent)
        })
        .await
        .unwrap();
    assert_eq!(
        s.relay_drops,
        s.per_user["sl-a"].relay_drops + s.congestion_sent
    );
    t.close().await;
}

#[tokio::test]
async fn drop_rate_three_participants_exact_counts() {
    a_tenth_dropped(&["dr3-a", "dr3-b", "dr3-c"], 1).await;
}

#[tokio::test]
async fn drop_rate_two_participants_exact_counts() {
    a_tenth_dropped(&["dr2-a", "dr2-b"], 7).await;
}

#[tokio::test]
async fn drop_rate_zero_drops_nothing() {
    let t = Target::default_relay().await;
    let s = drops_match_what_receivers_miss(&t, &["dr0-a", "dr0-b", "dr0-c"], 30).await;
    assert_eq!((s.injected_drops.audio, s.injected_drops.video), (0, 0));
    assert!(s.stalls.is_empty());
    t.close().await;
}

#[tokio::test]
async fn drop_rate_outside_0_to_1_refused() {
    for drop_rate in [1.5, -0.1, f64::NAN] {
        let e = Relay::start(RelayConfig {
            drop_rate,
            ..RelayConfig::default()
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("drop rate"), "{e}");
    }
}

/// A stall of 1 s: while it lasts the relay reads (and so relays) nothing;
/// once over, everything sent meanwhile is read and relayed, nothing lost,
/// and the deliveries it held back are counted as stalled.
#[tokio::test]
async fn stall_holds_back_then_relays_everything() {
    let t = Target::relay(RelayConfig {
        stall: Some(Stall {
            after: Duration::from_millis(300),
            duration: Duration::from_secs(1),
        }),
        leave_grace: Duration::ZERO,
        ..RelayConfig::default()
    })
    .await;
    let users = ["st-a", "st-b"];
    let mut peers = Vec::new();
    for u in users {
        peers.push(t.join(u, "room-st").await);
    }
    t.members(&[("room-st", 2)]).await;
    t.stats_when(|s| !s.stalls.is_empty()).await;
    // 60 streams each: within the relay's 100 concurrent streams, so no
    // send waits for the stall to end.
    let n = 30;
    for (u, p) in users.iter().zip(&peers) {
        let mut pre = MediaPrefix::new(u);
        for seq in 0..n {
            p.send(&audio(&mut pre, seq)).await;
            p.send(&media(&mut pre, media_type::VIDEO, seq, seq == 0, 1200))
                .await;
        }
    }
    let relay = t.relay.as_ref().unwrap();
    let during = relay.stats();
    // Still stalled after that snapshot: it was taken, and everything sent,
    // while the relay read nothing.
    let sent_during = relay.stats().stalls[0].end_unix_ms.is_none();
    if sent_during {
        for u in users {
            let st = &during.per_user[u];
            assert_eq!(
                (st.audio_packets, st.video_packets, st.relayed_to),
                (0, 0, 0),
                "{u}: nothing read during the stall"
            );
        }
    } else {
        eprintln!(
            "the stall was over before everything was sent: what it held back is not checked"
        );
    }

    let s = t
        .stats_when(|s| {
            s.stalls[0].end_unix_ms.is_some()
                && users.iter().all(|u| {
                    s.per_user
                        .get(*u)
                        .is_some_and(|st| (st.audio_packets, st.video_packets) == (n, n))
                })
        })
        .await
        .unwrap();
    assert_eq!(s.stalls.len(), 1, "{:?}", s.stalls);
    let ms = s.stalls[0].duration_ms().unwrap();
    assert!((1000..5000).contains(&ms), "stalled {ms} ms");
    assert_eq!(s.relay_drops, 0);
    for (me, p) in users.iter().zip(&mut peers) {
        let got = p
            .settle("the other's media", |got| {
                let c = media_counts(got);
                (c.0, c.1) >= (n, n)
            })
            .await;
        assert_eq!(media_counts(&got), (n, n, 0), "{me}: everything relayed");
        let st = &s.per_user[*me];
        assert_eq!((st.audio_seq.missing(), st.video_seq.missing()), (0, 0));
        assert_eq!(st.relayed_to, 2 * n, "{me}");
        assert_eq!((st.dropped_audio, st.dropped_video), (0, 0));
        assert!(st.stalled_deliveries <= 2 * n, "{me}: {st:?}");
        if sent_during {
            assert!(st.stalled_deliveries > 0, "{me}: {st:?}");
        }
        eprintln!("{me}: {} stalled deliveries", st.stalled_deliveries);
    }
    for p in &peers {
        p.close();
    }
    t.close().await;
}

/// The fault flags' checks: one line naming the flag, and no relay started.
#[test]
fn cli_refuses_bad_fault_flags() {
    use std::process::Command;
    for (args, names) in [
        (&["--drop-rate", "1.5"][..], "--drop-rate"),
        (&["--stall-for", "1s"][..], "--stall-after"),
        (&["--stall-after", "1s"][..], "--stall-for"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_synth-relay"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: started");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

/// `synth-relay` (as `synth-replay relay`): one JSON line with the URL and the certificate hash
/// on stdout, serves until SIGTERM, then writes the stats file.
#[tokio::test]
async fn cli_prints_url_and_hash_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("relay-stats.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_synth-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--leave-grace",
            "0s",
            "--stats-json",
        ])
        .arg(&stats_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = within(
        "the relay's first line",
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        }),
    )
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    let url: Url = v["url"].as_str().unwrap().parse().unwrap();
    let hash = v["cert_sha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    let hash: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hash[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let client = ClientBuilder::new()
        .with_server_certificate_hashes(vec![hash])
        .unwrap();
    let mut u = url.clone();
    u.set_path("/lobby/cli-a/room-cli");
    let p = Peer::connect(&client, u.clone())
        .await
        .expect("pinned by the printed hash");
    u.set_path("/lobby/cli-b/room-cli");
    let mut q = Peer::connect(&client, u).await.unwrap();
    p.send(&wire::heartbeat("cli-a", 1.0, TALKING)).await;
    // Once relayed, it has been counted.
    q.until("the heartbeat", |g| g.media().is_some()).await;
    p.close();
    q.close();

    // SAFETY: kill() with a valid pid and signal number has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = within(
        "exit after SIGTERM",
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains("2 accepted"), "summary on stderr: {stderr}");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_path).unwrap()).unwrap();
    assert_eq!(stats["sessions_accepted"], 2);
    assert_eq!(stats["per_user"]["cli-a"]["heartbeats"], 1);
    // The fault counters are there, at nothing.
    let b = &stats["per_user"]["cli-b"];
    for field in ["dropped_audio", "dropped_video", "stalled_deliveries"] {
        assert_eq!(b[field], 0, "{field}");
    }
    assert_eq!(
        stats["injected_drops"],
        serde_json::json!({"audio": 0, "video": 0})
    );
    assert_eq!(stats["stalls"], serde_json::json!([]));
}

// ---------------------------------------------------------------------------
// The same scenarios against the real server (see the module doc).

async fn upstream_or_skip() -> Option<Target> {
    let t = Target::upstream();
    if t.is_none() {
        eprintln!("SYNTH_UPSTREAM_URL not set: skipped");
    }
    t
}

#[tokio::test]
#[ignore = "needs a running upstream server (SYNTH_UPSTREAM_URL)"]
async fn upstream_scenarios() {
    let Some(t) = upstream_or_skip().await else {
        return;
    };
    meeting_isolation(&t).await;
    activation_and_rtt(&t).await;
    joined_and_left(&t).await;
    keyframe_requests(&t).await;
    bad_ids_refused(&t).await;
    slow_receiver(&t).await;
}

#[tokio::test]
#[ignore = "needs a running upstream server with JWT_SECRET (SYNTH_UPSTREAM_JWT_SECRET)"]
async fn upstream_token_form() {
    let Some(t) = upstream_or_skip().await else {
        return;
    };
    tokens(&t).await;
}
