//! One synthetic participant: connect, send the pack's frames on schedule,
//! drain and measure what the server relays, reconnect when the session drops.
//!
//! A client is two tasks on one session: the sender (this module's
//! `Sender`, woken only when a packet is due: ~60 wake-ups a second for
//! 50 audio + 30 video packets) and the receiver, which drains uni streams and
//! datagrams and counts them. Both write only to the client's own
//! [`ClientStats`] and to sharded histograms.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use protobuf::Message;
use rand::Rng;
use synth_common::pack::Reader;
use synth_common::wire::{self, media_type, packet_type, MediaPrefix};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{sleep_until, timeout};
use web_transport_quinn::{ClientError, SendStream, Session};

use crate::config::{ClientPlan, Credentials};
use crate::metrics::{ClientStats, FailReason, Media, Metrics, PeerCounts, State};
use crate::pacer::{Heads, Lane};
use crate::sequence::Tracker;

/// Run-wide context shared by every client.
#[derive(Debug)]
pub struct Shared {
    /// The pack, mapped once.
    pub pack: Arc<Reader>,
    /// `https://host:port` of the server.
    pub server: url::Url,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// Attempts for a client's first connection.
    pub connect_attempts: u32,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// How early a video frame may go to share a wake-up with an audio packet.
    pub batch_window: Duration,
    /// Limits handshakes in flight.
    pub connect_slots: Semaphore,
    /// Measurements.
    pub metrics: Arc<Metrics>,
    /// Every user id of this process, to tell our own senders (same clock) from others.
    pub ours: HashSet<Box<[u8]>>,
    /// The pack's audio track.
    pub audio_track: Option<usize>,
    /// Flips to `true` when the run must stop.
    pub stop: watch::Receiver<bool>,
}

/// A client's part of the plan, with its tracks resolved.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The plan entry.
    pub plan: ClientPlan,
    /// Video track to send, if video is on.
    pub video_track: Option<usize>,
    /// When to start (ramp-up).
    pub start_at: Instant,
    /// Offset of this client's media schedule, so clients don't fire together.
    pub phase: Duration,
}

/// How a session ended.
enum End {
    /// The run is over.
    Stopped,
    /// The session dropped; try again.
    Lost(String),
}

/// What a failed connection attempt means.
#[derive(Debug)]
pub struct ConnectFailure {
    /// Metric label.
    pub reason: FailReason,
    /// One line for the log.
    pub message: String,
}

/// The URL a client connects to: path form, or token form when credentials are set.
pub fn session_url(
    server: &url::Url,
    plan: &ClientPlan,
    credentials: &Credentials,
) -> anyhow::Result<url::Url> {
    let mut u = server.clone();
    match credentials {
        Credentials::None => {
            // Ids are [A-Za-z0-9_ -]: only the space needs escaping.
            u.set_path(&format!(
                "/lobby/{}/{}",
                plan.user_id.replace(' ', "%20"),
                plan.meeting_id.replace(' ', "%20")
            ));
        }
        Credentials::Token(t) => {
            u.set_path("/lobby");
            u.query_pairs_mut().clear().append_pair("token", t);
        }
        Credentials::Mint { secret, ttl } => {
            let claims =
                synth_common::jwt::Claims::participant(&plan.user_id, &plan.meeting_id, *ttl);
            let token = synth_common::jwt::mint(&claims, secret);
            u.set_path("/lobby");
            u.query_pairs_mut().clear().append_pair("token", &token);
        }
    }
    Ok(u)
}

/// Sorts a connection error into a metric reason and a one-line message.
pub fn classify(e: &ClientError, url: &url::Url) -> ConnectFailure {
    use quinn::ConnectionError as C;
    use web_transport_quinn::ConnectError as H;
    let shown = redact(url);
    let (reason, what) = match e {
        ClientError::HttpError(H::ConnectionError(C::TimedOut))
        | ClientError::Connection(C::TimedOut) => (FailReason::Timeout, "timed out".to_string()),
        ClientError::HttpError(H::ErrorStatus(s)) => {
            (FailReason::Rejected, format!("rejected with HTTP status {s}"))
        }
        // The videocall server refuses a session by ending the CONNECT stream.
        ClientError::HttpError(other) => (
            FailReason::Rejected,
            format!("rejected by the server ({other}): check the ids, the token and the server's meeting rules"),
        ),
        ClientError::Rustls(err) => (FailReason::Tls, format!("TLS: {err}")),
        ClientError::Connection(C::TransportError(t))
            if t.code.to_string().contains("crypto") || t.to_string().contains("certificate") =>
        {
            (FailReason::Tls, format!("TLS handshake failed: {t}"))
        }
        ClientError::Connection(C::ConnectionClosed(c)) if c.error_code.to_string().contains("crypto") => {
            (FailReason::Tls, format!("TLS handshake refused by the server: {c}"))
        }
        other => (FailReason::Transport, other.to_string()),
    };
    ConnectFailure {
        reason,
        message: format!("{shown}: {what}"),
    }
}

/// The URL without its token, for logs.
pub fn redact(u: &url::Url) -> String {
    if u.query().is_some_and(|q| q.contains("token=")) {
        let mut c = u.clone();
        c.set_query(Some("token=REDACTED"));
        c.to_string()
    } else {
        u.to_string()
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs one client until the run stops, connecting through `endpoint` (the
/// QUIC endpoint of the client's thread). Never returns an error: failures are
/// counted in metrics and logged.
pub async fn run(shared: Arc<Shared>, endpoint: web_transport_quinn::Client, spec: Spec) {
    let stats = shared.metrics.clients[spec.plan.index].clone();
    let mut stop = shared.stop.clone();
    tokio::select! {
        _ = sleep_until(spec.start_at.into()) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    stats.set_state(State::Connecting);
    let mut sender = Sender::new(&shared, &spec);
    let url = match session_url(&shared.server, &spec.plan, &shared.credentials) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(user = %spec.plan.user_id, "cannot build the session URL: {e:#}");
            stats.set_state(State::Failed);
            return;
        }
    };
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        // The connect time is the handshake's, not the wait for a slot.
        let (attempt, took) = {
            let _slot = shared.connect_slots.acquire().await;
            let started = Instant::now();
            let r = timeout(shared.connect_timeout, endpoint.connect(url.clone())).await;
            (r, started.elapsed())
        };
        let session = match attempt {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let f = classify(&e, &url);
                if fail(&shared, &stats, &spec, f, &mut failures, &mut stop).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                let f = ConnectFailure {
                    reason: FailReason::Timeout,
                    message: format!(
                        "{}: no session within {:?} (is a server listening there?)",
                        redact(&url),
                        shared.connect_timeout
                    ),
                };
                if fail(&shared, &stats, &spec, f, &mut failures, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        shared
            .metrics
            .connect
            .record(took.as_micros() as u64, spec.plan.index);
        failures = 0;
        stats.set_state(State::Connected);
        match run_session(&shared, &spec, &stats, &mut sender, session).await {
            End::Stopped => break,
            End::Lost(why) => {
                tracing::warn!(user = %spec.plan.user_id, "session lost: {why}; reconnecting");
                stats.reconnects.fetch_add(1, Relaxed);
                stats.set_state(State::Reconnecting);
                if backoff(1, &mut stop).await {
                    break;
                }
            }
        }
    }
    if stats.state() != State::Failed as u8 {
        stats.set_state(State::Done);
    }
}

/// Counts a failed attempt; returns true when the client gives up (or the run stops).
async fn fail(
    shared: &Shared,
    stats: &ClientStats,
    spec: &Spec,
    f: ConnectFailure,
    failures: &mut u32,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    shared.metrics.connect_failed(f.reason);
    *failures += 1;
    let ever = stats.ever_connected.load(Relaxed);
    let give_up = f.reason == FailReason::Rejected
        || f.reason == FailReason::Tls
        || (!ever && *failures >= shared.connect_attempts);
    if give_up {
        // One line per client would flood a large run: the run reports the
        // first failure and the counts by reason.
        tracing::debug!(user = %spec.plan.user_id, "giving up: {}", f.message);
        if let Ok(mut first) = shared.metrics.first_failure.lock() {
            first.get_or_insert(f.message.clone());
        }
        stats.set_state(State::Failed);
        return true;
    }
    tracing::debug!(user = %spec.plan.user_id, attempt = *failures, "{}; retrying", f.message);
    if ever {
        stats.set_state(State::Reconnecting);
    }
    backoff(*failures, stop).await
}

/// Exponential backoff with jitter: 250 ms × 2^(n-1), at most 10 s, ±50 %.
/// Returns true if the run stopped while waiting.
async fn backoff(n: u32, stop: &mut watch::Receiver<bool>) -> bool {
    let base = Duration::from_millis(250).saturating_mul(1 << n.saturating_sub(1).min(6));
    let base = base.min(Duration::from_secs(10));
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    tokio::select! {
        _ = tokio::time::sleep(base.mul_f64(jitter)) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// A client's send state, kept across reconnects so sequence numbers and
/// timestamps keep rising.
struct Sender {
    user_id: String,
    prefix: MediaPrefix,
    heads: Heads,
    audio: Option<Lane>,
    video: Option<Lane>,
    next_heartbeat: Instant,
    keyframe: Arc<Notify>,
    /// The last streams sent, awaited at the end so nothing written is lost.
    tail: VecDeque<SendStream>,
}

impl Sender {
    fn new(shared: &Shared, spec: &Spec) -> Sender {
        let start = spec.start_at + spec.phase;
        let pack = &shared.pack;
        Sender {
            user_id: spec.plan.user_id.clone(),
            prefix: MediaPrefix::new(&spec.plan.user_id),
            heads: Heads::default(),
            audio: shared
                .audio_track
                .filter(|_| spec.plan.audio)
                .map(|t| Lane::new(pack, t, Media::Audio, start)),
            video: spec
                .video_track
                .filter(|_| spec.plan.video)
                .map(|t| Lane::new(pack, t, Media::Video, start)),
            next_heartbeat: start,
            keyframe: Arc::new(Notify::new()),
            tail: VecDeque::with_capacity(TAIL),
        }
    }

    fn next_due(&self) -> Instant {
        let mut due = self.next_heartbeat;
        for lane in [&self.audio, &self.video].into_iter().flatten() {
            due = due.min(lane.due());
        }
        due
    }
}

/// Sends one packet on its own uni stream.
async fn send_packet(session: &Session, chunks: &mut [Bytes]) -> Result<SendStream, String> {
    let mut s = session.open_uni().await.map_err(|e| e.to_string())?;
    s.write_all_chunks(chunks)
        .await
        .map_err(|e| e.to_string())?;
    s.finish().map_err(|e| e.to_string())?;
    Ok(s)
}

/// Streams kept open-handed at the end of a session, to wait for their acknowledgement.
const TAIL: usize = 4;

fn keep(tail: &mut VecDeque<SendStream>, s: SendStream) {
    if tail.len() == TAIL {
        tail.pop_front();
    }
    tail.push_back(s);
}

/// Sends the lane's due frame; the lane moves on to the next one.
// The lane, the prefix and the tail are disjoint borrows of one Sender.
#[allow(clippy::too_many_arguments)]
async fn send_frame(
    shared: &Shared,
    session: &Session,
    prefix: &mut MediaPrefix,
    heads: &mut Heads,
    lane: &mut Lane,
    tail: &mut VecDeque<SendStream>,
    stats: &ClientStats,
    shard: usize,
    now: Instant,
) -> Result<(), String> {
    let Some(p) = lane.next_packet(&shared.pack, prefix, heads, now, now_ms()) else {
        return Err("frame index out of range".into());
    };
    shared
        .metrics
        .lateness
        .record(p.lateness.as_micros() as u64, shard);
    let (total, payload, media) = (p.len(), p.data.len(), p.media);
    let stream = send_packet(session, &mut [p.head, p.data]).await?;
    keep(tail, stream);
    stats.sent(media, total);
    stats.sent_payload[media as usize].fetch_add(payload as u64, Relaxed);
    stats.mark_media_sent(shared.metrics.started);
    Ok(())
}

async fn run_session(
    shared: &Arc<Shared>,
    spec: &Spec,
    stats: &Arc<ClientStats>,
    sender: &mut Sender,
    session: Session,
) -> End {
    let mut stop = shared.stop.clone();
    let shard = spec.plan.index;
    let user = sender.user_id.clone();
    let connection = Bytes::from(wire::connection(&user, &spec.plan.meeting_id));
    let (done_tx, done_rx) = watch::channel(false);
    let receiver = tokio::spawn(receive(
        shared.clone(),
        session.clone(),
        stats.clone(),
        user.clone().into_bytes(),
        sender.keyframe.clone(),
        shard,
        done_rx,
    ));
    let len = connection.len();
    match send_packet(&session, &mut [connection]).await {
        Ok(s) => keep(&mut sender.tail, s),
        Err(e) => {
            let _ = done_tx.send(true);
            let _ = receiver.await;
            return End::Lost(e);
        }
    }
    stats.sent(Media::Other, len);
    // After a reconnect, resume on schedule from now rather than bursting.
    let now = Instant::now();
    for lane in [&mut sender.audio, &mut sender.video].into_iter().flatten() {
        lane.resume(now);
    }
    let mut force_key = false;
    // The futures the loop waits on are made once, not at every wake-up.
    let keyframe = sender.keyframe.clone();
    let stopped = async {
        while !*stop.borrow_and_update() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    let closed = session.closed();
    let notified = keyframe.notified();
    let sleep = tokio::time::sleep_until(sender.next_due().into());
    tokio::pin!(stopped, closed, notified, sleep);
    let end = loop {
        sleep.as_mut().reset(sender.next_due().into());
        tokio::select! {
            biased;
            _ = &mut stopped => break End::Stopped,
            e = &mut closed => break End::Lost(e.to_string()),
            _ = &mut notified => {
                force_key = true;
                notified.set(keyframe.notified());
            }
            _ = &mut sleep => {}
        }
        let now = Instant::now();
        if force_key {
            force_key = false;
            if let Some(lane) = sender.video.as_mut() {
                if lane.jump_to_keyframe(&shared.pack, now) {
                    stats.keyframes_answered.fetch_add(1, Relaxed);
                }
            }
        }
        let mut result = Ok(());
        // A video frame due within the batch window rides with an audio packet
        // sent now: one wake-up, shared datagrams and syscalls. Audio keeps its
        // exact 20 ms cadence; video frames go up to the window early.
        let audio_now = sender.audio.as_ref().is_some_and(|a| a.due() <= now);
        let video_by = if audio_now {
            now + shared.batch_window
        } else {
            now
        };
        for (lane, by) in [(&mut sender.audio, now), (&mut sender.video, video_by)] {
            let Some(lane) = lane.as_mut() else { continue };
            if result.is_ok() && lane.due() <= by {
                result = send_frame(
                    shared,
                    &session,
                    &mut sender.prefix,
                    &mut sender.heads,
                    lane,
                    &mut sender.tail,
                    stats,
                    shard,
                    now,
                )
                .await;
            }
        }
        if result.is_ok() && sender.next_heartbeat <= now {
            let hb = Bytes::from(wire::heartbeat(
                &user,
                now_ms(),
                sender.audio.is_some(),
                sender.video.is_some(),
            ));
            let len = hb.len();
            result = send_packet(&session, &mut [hb]).await.map(|s| {
                keep(&mut sender.tail, s);
                stats.sent(Media::Heartbeat, len);
            });
            sender.next_heartbeat += shared.heartbeat_interval;
            if sender.next_heartbeat < now {
                sender.next_heartbeat = now + shared.heartbeat_interval;
            }
        }
        if let Err(e) = result {
            stats.send_errors.fetch_add(1, Relaxed);
            break End::Lost(e);
        }
    };
    if matches!(end, End::Stopped) {
        // Let what was written reach the server before closing the session:
        // wait (briefly) until the last streams are acknowledged.
        let drain = async {
            for s in sender.tail.drain(..) {
                let _ = s.stopped().await;
            }
        };
        let _ = timeout(Duration::from_secs(2), drain).await;
        session.close(0, b"run finished");
    }
    sender.tail.clear();
    let _ = done_tx.send(true);
    let _ = receiver.await;
    end
}

/// Per-sender receive state: counts and sequence trackers for audio and video.
#[derive(Default)]
struct Peer {
    seq: [Tracker; 2],
    counts: PeerCounts,
}

/// The server reads at most this much of one stream; so do we.
const MAX_PACKET: usize = 4_000_000;

/// Reads one packet (a whole stream). A packet that arrives in one chunk (the
/// usual case) is returned without a copy; `None` on a reset or oversized stream.
async fn read_packet(s: &mut web_transport_quinn::RecvStream) -> Option<Bytes> {
    let first = match s.read_chunk(MAX_PACKET, true).await {
        Ok(Some(c)) => c.bytes,
        Ok(None) => return Some(Bytes::new()),
        Err(_) => return None,
    };
    let mut all = match s.read_chunk(MAX_PACKET, true).await {
        Ok(None) => return Some(first),
        Ok(Some(c)) => {
            let mut v = bytes::BytesMut::with_capacity(first.len() + c.bytes.len());
            v.extend_from_slice(&first);
            v.extend_from_slice(&c.bytes);
            v
        }
        Err(_) => return None,
    };
    loop {
        match s.read_chunk(MAX_PACKET, true).await {
            Ok(None) => return Some(all.freeze()),
            Ok(Some(c)) if all.len() + c.bytes.len() <= MAX_PACKET => {
                all.extend_from_slice(&c.bytes)
            }
            _ => return None,
        }
    }
}

/// Drains the session until it closes or `done` fires, then publishes the
/// per-sender counts into the client's stats.
async fn receive(
    shared: Arc<Shared>,
    session: Session,
    stats: Arc<ClientStats>,
    me: Vec<u8>,
    keyframe: Arc<Notify>,
    shard: usize,
    mut done: watch::Receiver<bool>,
) {
    let mut peers: HashMap<Box<[u8]>, Peer> = HashMap::new();
    // Each future is re-armed only when it completes, not at every packet.
    let accept = session.accept_uni();
    let datagram = session.read_datagram();
    let finished = done.changed();
    tokio::pin!(accept, datagram, finished);
    loop {
        let buf = tokio::select! {
            s = &mut accept => {
                accept.set(session.accept_uni());
                match s {
                    Ok(mut s) => match read_packet(&mut s).await {
                        Some(b) => b,
                        None => { stats.bad_packets.fetch_add(1, Relaxed); continue; }
                    },
                    Err(_) => break,
                }
            }
            d = &mut datagram => {
                datagram.set(session.read_datagram());
                match d {
                    Ok(d) => d,
                    Err(_) => break,
                }
            }
            _ = &mut finished => break,
        };
        handle(&shared, &stats, &me, &keyframe, &mut peers, &buf, shard);
    }
    // Holes still open when the session ends never arrived.
    for p in peers.values_mut() {
        for i in 0..2 {
            let open = p.seq[i].open_holes();
            if open > 0 {
                stats.gaps[i].fetch_add(open, Relaxed);
                p.counts.gaps[i] += open;
            }
        }
    }
    if let Ok(mut all) = stats.per_sender.lock() {
        for (id, p) in peers {
            let e = all
                .entry(String::from_utf8_lossy(&id).into_owned())
                .or_default();
            for i in 0..2 {
                e.packets[i] += p.counts.packets[i];
                e.bytes[i] += p.counts.bytes[i];
                e.gaps[i] += p.counts.gaps[i];
            }
        }
    }
}

fn handle(
    shared: &Shared,
    stats: &ClientStats,
    me: &[u8],
    keyframe: &Notify,
    peers: &mut HashMap<Box<[u8]>, Peer>,
    buf: &[u8],
    shard: usize,
) {
    let Ok(p) = wire::parse(buf) else {
        stats.bad_packets.fetch_add(1, Relaxed);
        return;
    };
    match p.packet_type {
        packet_type::MEDIA => {
            let Ok(m) = wire::parse_media(p.data) else {
                stats.bad_packets.fetch_add(1, Relaxed);
                return;
            };
            let media = match m.media_type {
                media_type::AUDIO => Media::Audio,
                media_type::VIDEO => Media::Video,
                media_type::HEARTBEAT => Media::Heartbeat,
                _ => Media::Other,
            };
            stats.received(media, buf.len());
            match media {
                Media::Audio | Media::Video => {
                    let i = media as usize;
                    let sender = if p.user_id.is_empty() {
                        m.user_id
                    } else {
                        p.user_id
                    };
                    if let Some(seq) = m.sequence {
                        let peer = match peers.get_mut(sender) {
                            Some(peer) => peer,
                            None => peers.entry(sender.into()).or_default(),
                        };
                        peer.counts.packets[i] += 1;
                        peer.counts.bytes[i] += buf.len() as u64;
                        let seen = peer.seq[i].see(seq);
                        if seen.lost > 0 {
                            stats.gaps[i].fetch_add(seen.lost, Relaxed);
                            peer.counts.gaps[i] += seen.lost;
                        }
                        if seen.reordered {
                            stats.reordered[i].fetch_add(1, Relaxed);
                        }
                    }
                    if shared.ours.contains(sender) && m.timestamp_ms > 0.0 {
                        let lat_ms = (now_ms() - m.timestamp_ms).max(0.0);
                        shared.metrics.latency[i].record((lat_ms * 1000.0) as u64, shard);
                    }
                }
                Media::Other if m.media_type == media_type::KEYFRAME_REQUEST && m.user_id == me => {
                    stats.keyframe_requests.fetch_add(1, Relaxed);
                    keyframe.notify_one();
                }
                _ => {}
            }
        }
        packet_type::MEETING => {
            stats.received(Media::Other, buf.len());
            use videocall_types::protos::meeting_packet::meeting_packet::MeetingEventType as E;
            if let Ok(mp) =
                videocall_types::protos::meeting_packet::MeetingPacket::parse_from_bytes(p.data)
            {
                match mp.event_type.enum_value() {
                    Ok(E::PARTICIPANT_JOINED) => {
                        stats.joined_events.fetch_add(1, Relaxed);
                    }
                    Ok(E::PARTICIPANT_LEFT) => {
                        stats.left_events.fetch_add(1, Relaxed);
                    }
                    _ => {}
                }
            }
        }
        _ => stats.received(Media::Other, buf.len()),
    }
}
