//! One accepted WebTransport session: greet it, read its packets, relay them.
//!
//! Each session has two tasks, three with a mailbox. The reader (this
//! module's [`serve`]) accepts uni streams and datagrams, reads the streams
//! concurrently without a task per stream ([`Inbound`]: each stream one
//! packet, or on the framed wire each stream a run of frames), counts every
//! packet into the session's own [`Tally`], and queues it for the other
//! members of the room. The writer drains the session's bounded queue, one
//! uni stream per stream packet like upstream main's bridge, or on the framed
//! wire one frame per packet on the receiver's persistent stream for its
//! kind ([`Lanes`]), like upstream RnD's. With `--mailbox N` a third
//! task reads the datagrams into a queue of N that the reader takes them
//! from, dropping (and counting) those that find it full ([`mailbox`]). A
//! session publishes to its room only after its first non-RTT packet
//! ("activation"), which also announces it with PARTICIPANT_JOINED; it
//! receives from the moment it is accepted, as a session of the upstream
//! server does once it has subscribed to its room.
//!
//! Injected faults (`fault`) act here: a drop where the reader would queue
//! a packet for one receiver, and the stall as the reader's own event: it
//! stops reading until the stall is over, then catches up on what is ready
//! before it waits for anything again.
//!
//! So does upstream RnD's simulcast (`layers`): a session's VIEWPORT and
//! LAYER_PREFERENCE set what it is spared, which every sender checks where
//! it would queue a media packet for it; and a publisher's own reader keeps
//! its LAYER_HINTs up to date ([`Sender::tend_hints`]), as do the readers
//! of the receivers whose preferences change ([`Sender::update_view`]).

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::clock;
use synth_common::framing::{self, FrameError, Wire, MAX_FRAME};
use synth_common::net::{FrameFail, FramedReads, ReadFail, Reads};
use synth_common::wire::{self, packet_type, MAX_STREAM_BYTES};
use tokio::sync::{mpsc, watch};
use web_transport_quinn::{RecvStream, SendStream, Session, SessionError, WriteError};

use super::capture::{self, Capture, Handles, Medium};
use super::fault::{Phase, SenderFaults};
use super::layers::{self, Verdict, Wanted};
use super::room::{Carry, Member, Offer, Outbound, View, QUEUE_LEN};
use super::route::{Kind, Lane, Type};
use super::stats::{
    Injected, SentCounts, SessionEnd, SessionRecord, Tally, UserStats, ViewUpdates, Withheld,
};
use super::Shared;

/// A session not heard from for this long is closed (upstream's `CLIENT_TIMEOUT`).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often liveness is checked (upstream's heartbeat interval).
const LIVENESS_CHECK: Duration = Duration::from_secs(5);

/// KEYFRAME_REQUESTs relayed per sender per window.
const KEYFRAME_MAX: u32 = 2;
const KEYFRAME_WINDOW: Duration = Duration::from_secs(1);

/// Drops of one sender's packets at one receiver, within [`CONGESTION_WINDOW`],
/// that make the relay send CONGESTION to the meeting (upstream's values).
const CONGESTION_DROPS: u32 = 5;
const CONGESTION_WINDOW: Duration = Duration::from_secs(1);
const CONGESTION_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Who a session is, as admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) user_id: String,
    pub(crate) room: String,
    pub(crate) display_name: String,
    pub(crate) observer: bool,
}

/// The part of a session that the relay's stats read.
#[derive(Debug)]
pub(crate) struct Live {
    /// The session as its room sees it: its join order (to merge sessions
    /// of one user oldest first) and what faults did to deliveries to it.
    pub(crate) member: Arc<Member>,
    pub(crate) tally: Mutex<Tally>,
    /// Inbound datagrams dropped at the full mailbox.
    mailbox_drops: AtomicU64,
}

impl Live {
    pub(crate) fn tally(&self) -> MutexGuard<'_, Tally> {
        // Counting cannot leave the tally torn; keep counting after a panic elsewhere.
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This session's counters per user, ready to merge: what it sent,
    /// and under its own user id what faults did to what it was sent, what
    /// it was sent and what was withheld from it, the hints it was sent as
    /// a publisher, and its datagrams the mailbox dropped.
    pub(crate) fn snapshot(&self) -> Vec<(String, UserStats)> {
        let mut users: Vec<_> = self.tally().snapshot().collect();
        if let Some((_, own)) = users.first_mut() {
            let m = &self.member;
            m.injected.add_to(own);
            m.sent.add_to(own);
            m.withheld.add_to(own);
            let (suppress, restore) = m.layers.hints_sent();
            own.hints_sent.suppress += suppress;
            own.hints_sent.restore += restore;
            own.mailbox_drops += self.mailbox_drops.load(Ordering::Relaxed);
        }
        users
    }
}

/// Serves one accepted session until it closes, the client goes silent, or the relay shuts down.
pub(crate) async fn serve(shared: Arc<Shared>, session: Session, who: Identity) {
    let (tx, rx) = mpsc::channel(QUEUE_LEN);
    let mut s = Sender::join(shared.clone(), &who, tx);
    let session_id = s.me.session_id;
    tracing::debug!(session_id, user = %who.user_id, room = %who.room, "session accepted");
    let writer = tokio::spawn(write_loop(session.clone(), rx, s.me.clone(), shared.wire));
    let mailbox = (shared.mailbox > 0).then(|| {
        let (tx, rx) = mpsc::channel(shared.mailbox);
        let task = tokio::spawn(mailbox(session.clone(), tx, s.live.clone()));
        (task, rx)
    });
    let (task, datagrams) = match mailbox {
        Some((task, rx)) => (Some(task), Some(rx)),
        None => (None, None),
    };
    let (end, why) = s
        .read_loop(&session, datagrams, shared.shutdown.subscribe())
        .await;
    s.live.tally().ended(clock::unix_ms_u64(), end);
    tracing::debug!(session_id, user = %who.user_id, why, "session ended");
    if let Some(task) = task {
        task.abort();
    }
    writer.abort();
    // Once the writer (and its queue) is gone, senders see this session as
    // closed and count no drop for it that its filed tally would miss.
    let _ = writer.await;
    s.finish(&who);
}

/// A session's reading side and its state as a sender.
struct Sender {
    shared: Arc<Shared>,
    me: Arc<Member>,
    view: View,
    live: Arc<Live>,
    suffix: Bytes,
    /// Whether PARTICIPANT_JOINED is to be broadcast on activation.
    announce: bool,
    active: bool,
    keyframes: Limiter,
    /// Drops of this sender's packets, per receiving session.
    congestion: HashMap<u64, Drops>,
    /// Receivers whose drops of this sender's packets call for CONGESTION,
    /// sent once the reader has yielded ([`Sender::tell_congestion`]).
    congested: Vec<Arc<Member>>,
    last_heard: Instant,
    /// `None` unless the relay injects faults: the only check they add per packet.
    faults: Option<SenderFaults>,
    /// This session's capture files (`--capture`).
    captures: Handles,
    /// When its last accepted VIEWPORT and LAYER_PREFERENCE were read.
    viewport_at: Option<Instant>,
    preference_at: Option<Instant>,
    /// It sent a media packet of a simulcast layer other than 0: from then
    /// on its reader keeps its LAYER_HINTs.
    simulcast: bool,
    /// The room's version when the reader last looked at its hints.
    hint_version: u64,
}

/// What woke a session's reader.
enum Event {
    Accepted(Result<RecvStream, SessionError>),
    Datagram(Result<Bytes, SessionError>),
    Read(Result<Bytes, StreamFail>),
    Tick,
    Stop,
    Stall(Phase),
}

/// A reader's part in the stall, until it is behind it.
enum Stalling {
    /// Watching for the stall to begin.
    Waiting(watch::Receiver<Phase>),
    /// The stall is over: reading what is ready, without waiting.
    CatchingUp,
}

/// The stall's next phase; never, without one to watch.
async fn phase_change(stall: &mut Option<Stalling>) -> Phase {
    if let Some(Stalling::Waiting(rx)) = stall {
        if rx.changed().await.is_ok() {
            return *rx.borrow_and_update();
        }
    }
    std::future::pending().await
}

/// An inbound datagram, or how reading them failed (the session's end).
type Datagram = Result<Bytes, SessionError>;

/// The session's next datagram: from its mailbox if it has one, else
/// straight from `direct` (a `read_datagram` future, renewed by the caller).
fn next_datagram<F: Future<Output = Datagram>>(
    cx: &mut Context<'_>,
    direct: Pin<&mut F>,
    mailbox: &mut Option<mpsc::Receiver<Datagram>>,
) -> Poll<Datagram> {
    match mailbox {
        None => direct.poll(cx),
        Some(rx) => match rx.poll_recv(cx) {
            Poll::Ready(Some(d)) => Poll::Ready(d),
            // The stage is gone only once it has handed on the session's
            // error, or when the session is over: the reader's other
            // sources tell it.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        },
    }
}

/// A session's mailbox stage (`--mailbox N`): reads its datagrams into
/// `tx`, a queue of N the reader takes them from, and drops (counting
/// them) those that find it full.
///
/// This is where upstream drops inbound packets (`webtransport/bridge.rs`
/// `spawn_datagram_reader`): one actix `Addr` reused for every datagram,
/// `let _ = try_send`, into the session actor's mailbox of 16 (actix's
/// `DEFAULT_CAPACITY`). Once a send leaves 16 messages queued that handle
/// parks, and every datagram after it is dropped, with no log, no metric and
/// no CONGESTION, until the actor has taken a message and unparked it.
/// Upstream's streams and NATS deliveries go into the same mailbox through
/// a fresh handle each (never refused), so they are never dropped there, but
/// they fill it; the relay has no such deliveries (senders queue straight
/// for their receivers' writers), so its mailbox holds only datagrams and
/// fills only when the session's reader falls behind its own datagrams.
async fn mailbox(session: Session, tx: mpsc::Sender<Datagram>, live: Arc<Live>) {
    loop {
        match session.read_datagram().await {
            Ok(d) => {
                // Own the bytes: as read, a datagram is a slice of the
                // batch it arrived in, which it would keep alive while it waits.
                match tx.try_send(Ok(Bytes::copy_from_slice(&d))) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        live.mailbox_drops.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Why a uni stream gave no (more) packets.
enum StreamFail {
    /// One packet per stream: longer than the limit, stopped and dropped.
    TooLong,
    /// Framed: its framing broke; stopped (if still open) and dropped.
    Framing(FrameError),
    /// Reset by the client, or the session ended.
    Reset,
}

/// A session's incoming uni streams being read, as the relay's wire has
/// them: each stream one packet (upstream main), or each a run of frames
/// (upstream RnD: persistent streams, `synth_common::framing`).
enum Inbound {
    PerPacket(Reads),
    Framed(FramedReads),
}

impl Inbound {
    fn new(wire: Wire) -> Inbound {
        match wire {
            Wire::PerPacket => Inbound::PerPacket(Reads::default()),
            Wire::Framed => Inbound::Framed(FramedReads::default()),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Inbound::PerPacket(r) => r.is_empty(),
            Inbound::Framed(r) => r.is_empty(),
        }
    }

    fn push(&mut self, stream: RecvStream) {
        match self {
            Inbound::PerPacket(r) => r.push(stream),
            Inbound::Framed(r) => r.push(stream),
        }
    }

    /// The next packet of any stream (a stream's end, or a frame).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, StreamFail>> {
        match self {
            Inbound::PerPacket(r) => r.poll_next(cx).map_err(|e| match e {
                ReadFail::TooLong => StreamFail::TooLong,
                ReadFail::Reset => StreamFail::Reset,
            }),
            Inbound::Framed(r) => r.poll_next(cx).map_err(|e| match e {
                FrameFail::Framing(e) => StreamFail::Framing(e),
                _ => StreamFail::Reset,
            }),
        }
    }
}

impl Sender {
    /// A new session of `who`: queues the greeting on `tx` (its writer's
    /// queue), joins the room, tells the newcomer who is there (or, the first
    /// participant, tells the observers the meeting started), and starts its tally.
    fn join(shared: Arc<Shared>, who: &Identity, tx: mpsc::Sender<Outbound>) -> Sender {
        let session_id = loop {
            let id: u64 = rand::random();
            if id != 0 {
                break id;
            }
        };
        // The greeting goes first, so it is ahead of anything relayed
        // (upstream: `wt_chat_session.rs` `started`, each on a stream).
        let started = wire::meeting_started(&who.room, &who.user_id, clock::unix_ms_u64());
        let greeting = [
            Outbound::stream(Type::SessionAssigned, wire::session_assigned(session_id)),
            Outbound::stream(Type::Meeting, started.clone()),
        ];
        for g in greeting {
            let _ = tx.try_send(g);
        }

        let order = shared.next_order();
        let me = Arc::new(Member {
            session_id,
            order,
            user_id: who.user_id.clone(),
            display_name: who.display_name.clone(),
            observer: who.observer,
            tx,
            injected: Injected::default(),
            sent: SentCounts::default(),
            layers: layers::Session::default(),
            withheld: Withheld::default(),
        });
        let joined = shared.rooms.join(&who.room, me.clone());
        // As upstream (`chat_server.rs` `JoinRoom`), for participants only:
        // the newcomer hears about everyone already there, ...
        if !who.observer {
            for m in &joined.existing {
                let p = wire::participant(&who.room, m.participant(), true);
                let _ = me
                    .tx
                    .try_send(Outbound::auto(Type::Meeting, p, Bytes::new(), false));
            }
        }
        // ... and the first one has MEETING_STARTED published to the room,
        // before it subscribes itself: it reaches the observers already there.
        if !who.observer && joined.existing.is_empty() {
            let out = Outbound::auto(Type::Meeting, started, Bytes::new(), false);
            shared.count_drops(joined.room.broadcast(&out, Some(session_id)));
        }
        let live = Arc::new(Live {
            member: me.clone(),
            tally: Mutex::new(Tally::new(
                &who.user_id,
                SessionRecord {
                    session_id,
                    meeting: who.room.clone(),
                    observer: who.observer,
                    accepted_unix_ms: clock::unix_ms_u64(),
                    ..SessionRecord::default()
                },
            )),
            mailbox_drops: AtomicU64::new(0),
        });
        shared.live().insert(session_id, live.clone());
        let faults = (shared.drop_rate > 0.0 || shared.stalls.is_some())
            .then(|| SenderFaults::new(shared.drop_rate, shared.drop_seed, order));
        let view = View::new(joined.room);
        Sender {
            suffix: wire::session_id_field(session_id),
            shared,
            hint_version: view.version(),
            view,
            announce: !joined.reconnection && !who.observer,
            me,
            live,
            active: false,
            keyframes: Limiter::default(),
            congestion: HashMap::new(),
            congested: Vec::new(),
            last_heard: Instant::now(),
            faults,
            captures: Handles::default(),
            viewport_at: None,
            preference_at: None,
            simulcast: false,
        }
    }

    /// Reads until the session ends: how (for the stats) and why (for the
    /// log). Datagrams come from `mailbox` if there is one, else straight
    /// from the session.
    async fn read_loop(
        &mut self,
        session: &Session,
        mut mailbox: Option<mpsc::Receiver<Datagram>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> (SessionEnd, &'static str) {
        let mut accept = pin!(session.accept_uni());
        let mut datagram = pin!(session.read_datagram());
        let mut reads = Inbound::new(self.shared.wire);
        let mut tick = tokio::time::interval(LIVENESS_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = shutdown.wait_for(|v| *v);
        let mut stop = pin!(stop);
        // `None` without a stall, and once this reader is past it.
        let mut stall = self
            .shared
            .stalls
            .as_ref()
            .map(|s| Stalling::Waiting(s.subscribe()));
        loop {
            let event = match &mut stall {
                // The stall begins (or is over) now: stop before the next packet.
                Some(Stalling::Waiting(rx)) if rx.has_changed().unwrap_or(false) => {
                    Event::Stall(*rx.borrow_and_update())
                }
                Some(Stalling::CatchingUp) => {
                    let ready = poll_fn(|cx| {
                        Poll::Ready(if stop.as_mut().poll(cx).is_ready() {
                            Some(Event::Stop)
                        } else if let Poll::Ready(r) = accept.as_mut().poll(cx) {
                            Some(Event::Accepted(r))
                        } else if let Poll::Ready(r) =
                            next_datagram(cx, datagram.as_mut(), &mut mailbox)
                        {
                            Some(Event::Datagram(r))
                        } else if let Poll::Ready(r) = reads.poll_next(cx) {
                            Some(Event::Read(r))
                        } else {
                            None
                        })
                    })
                    .await;
                    let Some(event) = ready else {
                        // Nothing held back is left: read as usual.
                        stall = None;
                        if let Some(f) = &mut self.faults {
                            f.catching_up = false;
                        }
                        continue;
                    };
                    // Everything is ready at once here: let other tasks run now and then.
                    tokio::task::coop::consume_budget().await;
                    event
                }
                _ => tokio::select! {
                    r = &mut accept => Event::Accepted(r),
                    r = poll_fn(|cx| next_datagram(cx, datagram.as_mut(), &mut mailbox)) => {
                        Event::Datagram(r)
                    }
                    r = poll_fn(|cx| reads.poll_next(cx)), if !reads.is_empty() => Event::Read(r),
                    _ = tick.tick() => Event::Tick,
                    _ = &mut stop => Event::Stop,
                    p = phase_change(&mut stall) => Event::Stall(p),
                },
            };
            match event {
                Event::Accepted(Ok(stream)) => {
                    reads.push(stream);
                    accept.set(session.accept_uni());
                }
                Event::Accepted(Err(e)) | Event::Datagram(Err(e)) => {
                    let peer_closed = quinn::Connection::stats(session).frame_rx.connection_close;
                    return end_of(&e, peer_closed > 0);
                }
                Event::Datagram(Ok(bytes)) => {
                    self.on_packet(bytes, true, Instant::now());
                    if mailbox.is_none() {
                        datagram.set(session.read_datagram());
                    }
                }
                Event::Read(Ok(bytes)) => self.on_packet(bytes, false, Instant::now()),
                Event::Read(Err(StreamFail::TooLong)) => {
                    self.last_heard = Instant::now();
                    let now = clock::unix_ms_u64();
                    self.live
                        .tally()
                        .count(None, MAX_STREAM_BYTES + 1, false, now);
                }
                Event::Read(Err(StreamFail::Framing(e))) => {
                    self.last_heard = Instant::now();
                    self.live.tally().broken_stream(clock::unix_ms_u64());
                    self.framing_broken(&e);
                }
                Event::Read(Err(StreamFail::Reset)) => {}
                Event::Tick => {
                    if self.last_heard.elapsed() > CLIENT_TIMEOUT {
                        session.close(0, b"no packets for 30 s");
                        return (SessionEnd::Lost, "timeout");
                    }
                }
                Event::Stop => {
                    session.close(0, b"relay shutting down");
                    return (SessionEnd::Running, "relay shutdown");
                }
                Event::Stall(Phase::Before) => {}
                Event::Stall(Phase::Stalled) => {
                    // Read nothing, QUIC going on underneath, until it is over.
                    let over = async {
                        if let Some(Stalling::Waiting(rx)) = &mut stall {
                            let _ = rx.wait_for(|p| *p == Phase::Over).await;
                        }
                    };
                    tokio::select! {
                        _ = over => {}
                        _ = &mut stop => {
                            session.close(0, b"relay shutting down");
                            return (SessionEnd::Running, "relay shutdown");
                        }
                    }
                    // Not heard from because not listened to.
                    self.last_heard = Instant::now();
                    stall = Some(Stalling::CatchingUp);
                    if let Some(f) = &mut self.faults {
                        f.catching_up = true;
                    }
                }
                // Over before this reader saw it begin (or begun before it was started).
                Event::Stall(Phase::Over) => stall = None,
            }
            if !self.congested.is_empty() {
                tokio::task::yield_now().await;
                self.tell_congestion(Instant::now());
            }
        }
    }

    /// Logs a uni stream closed for broken framing: the first of the relay
    /// at WARN (a client of the other wire sends nothing but such streams,
    /// one a packet), the others at DEBUG; all are counted.
    fn framing_broken(&self, e: &FrameError) {
        let (session_id, user) = (self.me.session_id, &self.me.user_id);
        if self.shared.first_framing_error() {
            tracing::warn!(
                session_id,
                %user,
                "closed a uni stream: {e}; the relay speaks the framed wire (--wire framed). \
                 Further ones are counted (malformed_streams), not logged"
            );
        } else {
            tracing::debug!(session_id, %user, "closed a uni stream: {e}");
        }
    }

    /// Counts and relays one packet that arrived at `now`.
    fn on_packet(&mut self, bytes: Bytes, datagram: bool, now: Instant) {
        self.last_heard = now;
        if datagram && bytes[..] == b"ping"[..] {
            return;
        }
        // As upstream's protobuf parse: an empty packet is a wrapper with
        // every field at its default.
        let parsed = wire::parse(&bytes).ok();
        let unix_ms = clock::unix_ms_u64();
        let mut tally = self.live.tally();
        let (kind, ty) = tally.count(parsed.as_ref(), bytes.len(), datagram, unix_ms);
        // Any packet but an RTT probe activates, as upstream's
        // `should_activate_on_action` (HEALTH, dropped or opaque ones too).
        if kind != Kind::Rtt && !self.active {
            self.active = true;
            tally.joined(unix_ms);
            if self.announce {
                let p = wire::participant(&self.view.room().name, self.me.participant(), true);
                let out = Outbound::auto(Type::Meeting, p, Bytes::new(), false);
                self.shared
                    .count_drops(self.view.room().broadcast(&out, None));
            }
        }
        if let (Some(cap), Some(p), Kind::Video | Kind::Screen) =
            (&self.shared.capture, &parsed, kind)
        {
            // Layer 0 only: simulcast's other layers are other encodes,
            // which one file cannot mix.
            if p.layer == 0 {
                capture_frame(cap, &mut self.captures, &self.me.user_id, kind, p);
            }
        }
        let (user_id, wrapper_session) = match &parsed {
            Some(p) => (p.user_id, p.session_id),
            None => (&b""[..], 0),
        };
        let media = match kind {
            Kind::Dropped => return,
            Kind::Rtt => {
                let echo = Outbound {
                    ty,
                    carry: if datagram {
                        Carry::Datagram(bytes.clone())
                    } else {
                        Carry::Stream(bytes.clone(), Bytes::new())
                    },
                    layer: 0,
                };
                if self.me.offer(echo) == Offer::Full {
                    self.shared.count_drops(1);
                }
                return;
            }
            // As upstream: an observer receives everything and publishes nothing.
            _ if self.me.observer => {
                tally.observer_dropped(user_id);
                return;
            }
            // This session's own state, relayed to nobody.
            Kind::Viewport | Kind::LayerPreference => {
                drop(tally);
                let data = parsed.as_ref().map_or(&[][..], |p| p.data);
                let outcome = self.update_view(kind, data, now);
                outcome(self.live.tally().view_updates(user_id));
                return;
            }
            _ if self.shared.drain_only => return,
            Kind::KeyframeRequest => {
                if !self.keyframes.allow(now) {
                    tally.keyframe_limited(user_id);
                    return;
                }
                true
            }
            Kind::Audio | Kind::Video | Kind::Screen | Kind::Media | Kind::OpaqueMedia => true,
            Kind::Other | Kind::Opaque => false,
        };
        // As upstream: the sender's session id goes into wrappers that have
        // none; what is not a wrapper goes out unchanged.
        let suffix = if wrapper_session == 0 && kind != Kind::Opaque {
            self.suffix.clone()
        } else {
            Bytes::new()
        };
        // A packet read in one chunk is a slice of the buffer quinn received
        // it in: a whole batch of datagrams (GRO), up to ~14 KB. Queued as
        // is, a 100-byte audio packet would hold that batch for as long as
        // it waits, 256 deep per receiver; a copy holds only itself (one copy
        // per packet, shared by every receiver).
        let layer = parsed.as_ref().map_or(0, |p| p.layer);
        let out = Outbound::auto(ty, Bytes::copy_from_slice(&bytes), suffix, media).of_layer(layer);
        // Upstream RnD's filters look at MEDIA wrappers that name their kind.
        let filter = match &parsed {
            Some(p)
                if p.packet_type == packet_type::MEDIA
                    && layers::filterable(p.media_kind, p.layer) =>
            {
                Some(p.media_kind)
            }
            _ => None,
        };
        let inject = match &mut self.faults {
            Some(f) => f.packet(kind),
            None => None,
        };
        let (mut queued, mut full) = (0u64, 0u64);
        for m in self.view.members() {
            if m.session_id == self.me.session_id {
                continue;
            }
            if let Some(media_kind) = filter {
                // One relaxed load for a receiver that asked for nothing.
                let verdict = m.layers.check(self.me.session_id, media_kind, layer);
                if verdict != Verdict::Forward {
                    if !m.tx.is_closed() {
                        m.withheld.count(verdict);
                    }
                    continue;
                }
            }
            let drop = match (&inject, &mut self.faults) {
                (Some(i), Some(f)) => f.drops(i, m.order),
                _ => None,
            };
            if let Some(track) = drop {
                // Dropped instead of queued. Not counted for a receiver that
                // is gone: it would not have had the packet anyway.
                if !m.tx.is_closed() {
                    m.injected.dropped(track);
                }
                continue;
            }
            match m.offer(out.clone()) {
                Offer::Queued => {
                    queued += 1;
                    if let (Some(i), Some(f)) = (&inject, &mut self.faults) {
                        f.delivered(i, m.order);
                    }
                    if inject.as_ref().is_some_and(|i| i.stalled) {
                        m.injected.stalled();
                    }
                }
                Offer::Full => {
                    full += 1;
                    // Upstream counts a drop against the session id in the
                    // wrapper; an opaque packet has none.
                    if kind != Kind::Opaque && record_drop(&mut self.congestion, m, now) {
                        self.congested.push(m.clone());
                    }
                }
                Offer::Closed => {}
            }
        }
        tally.relayed(user_id, queued, full);
        drop(tally);
        if full > 0 {
            self.shared.count_drops(full);
        }
        let started = !self.simulcast
            && layer != 0
            && parsed
                .as_ref()
                .is_some_and(|p| p.packet_type == packet_type::MEDIA);
        if started {
            self.simulcast = true;
            self.me.layers.set_simulcast();
        }
        if self.simulcast {
            self.tend_hints(started, now);
        }
    }

    /// Applies a VIEWPORT or LAYER_PREFERENCE (`kind`, its content `data`)
    /// of this session, read at `now`, as upstream RnD's interceptors do:
    /// one whose content does not parse changes nothing; one within 200 ms
    /// of the last accepted one of its type is dropped; any other replaces
    /// what the session wanted. A LAYER_PREFERENCE that changed what it
    /// wants of some publishers has their hints recomputed at once. Returns
    /// how to count it.
    fn update_view(&mut self, kind: Kind, data: &[u8], now: Instant) -> fn(&mut ViewUpdates) {
        let too_soon = |last: Option<Instant>| {
            last.is_some_and(|t| now.saturating_duration_since(t) < layers::MIN_UPDATE_INTERVAL)
        };
        let rate_limited: fn(&mut ViewUpdates) = |u| u.rate_limited += 1;
        let malformed: fn(&mut ViewUpdates) = |u| u.malformed += 1;
        if kind == Kind::Viewport {
            let Ok(ids) = synth_common::layers::parse_viewport(data) else {
                return malformed;
            };
            if too_soon(self.viewport_at) {
                return rate_limited;
            }
            self.viewport_at = Some(now);
            let viewport = Wanted::viewport_of(&ids, self.me.session_id);
            self.me.layers.set_viewport(viewport);
        } else {
            let Ok(entries) = synth_common::layers::parse_layer_preference(data) else {
                return malformed;
            };
            if too_soon(self.preference_at) {
                return rate_limited;
            }
            self.preference_at = Some(now);
            let changed = self.me.layers.set_layers(Wanted::layers_of(&entries));
            let members = self.view.members();
            let mut full = 0;
            for src in changed {
                let publisher = members
                    .iter()
                    .find(|m| m.session_id == src && m.layers.is_simulcast());
                if let Some(p) = publisher {
                    full += hint(p, members, now);
                }
            }
            self.shared.count_drops(full);
        }
        |u| u.accepted += 1
    }

    /// As a simulcast publisher, at each packet it relays: recomputes its
    /// LAYER_HINTs when they are due (`started`: its first packet of a
    /// layer other than 0; a join or a leave 300 ms ago; a lower union
    /// seen 2 s ago). A session that never sent such a packet never gets
    /// here: a meeting without simulcast pays nothing for hints.
    fn tend_hints(&mut self, started: bool, now: Instant) {
        // Fresh: the packet's fan-out just refreshed the view.
        let version = self.view.version();
        let room_changed = version != self.hint_version;
        self.hint_version = version;
        if started || self.me.layers.hints_due(now, room_changed) {
            let full = hint(&self.me, self.view.members(), now);
            self.shared.count_drops(full);
        }
    }

    /// Sends CONGESTION about each receiver in `congested` (dropping this
    /// sender's packets) to the whole meeting, this sender included, as
    /// upstream publishes it on the sender's subject, which every member
    /// receives (`session_logic.rs` `on_outbound_drop`, `chat_server.rs`
    /// `handle_msg`). Upstream publishes from a task of its own and the copy
    /// comes back through NATS, so the congested receiver gets it if its
    /// queue has room by then; the reader calls this once it has yielded.
    /// Where the packet finds a queue full, that is one more drop of this
    /// sender's packets there (upstream: the wrapper's session id is the
    /// sender's), which may call for CONGESTION about that receiver too.
    fn tell_congestion(&mut self, now: Instant) {
        let mut full = 0;
        while let Some(r) = self.congested.pop() {
            self.shared.count_congestion();
            let c = wire::congestion(&r.user_id, self.me.session_id);
            let out = Outbound::auto(Type::Congestion, c, Bytes::new(), false);
            for m in self.view.members() {
                if m.offer(out.clone()) == Offer::Full {
                    full += 1;
                    // A pair just told is quiet for a second: this ends.
                    if record_drop(&mut self.congestion, m, now) {
                        self.congested.push(m.clone());
                    }
                }
            }
        }
        self.shared.count_drops(full);
    }

    /// Leaves the room, schedules PARTICIPANT_LEFT, and files the tally.
    fn finish(mut self, who: &Identity) {
        self.captures.finish();
        let shared = &self.shared;
        let room = self.view.room().clone();
        shared.rooms.leave(&room, self.me.session_id);
        if !who.observer {
            shared
                .rooms
                .depart(&room.name, self.me.clone(), self.active);
            let (shared, me) = (self.shared.clone(), self.me.clone());
            let announce = move || {
                if let Some(room) =
                    shared
                        .rooms
                        .departure_due(&room.name, &me.user_id, me.session_id)
                {
                    let p = wire::participant(&room.name, me.participant(), false);
                    let out = Outbound::auto(Type::Meeting, p, Bytes::new(), false);
                    shared.count_drops(room.broadcast(&out, None));
                }
            };
            let grace = self.shared.leave_grace;
            if grace.is_zero() {
                announce();
            } else {
                tokio::spawn(async move {
                    tokio::time::sleep(grace).await;
                    announce();
                });
            }
        }
        shared.retire(self.me.session_id);
    }
}

/// Recomputes the LAYER_HINTs of `publisher` from what the other members
/// of its room (`members`, observers left out) want at `now`, and queues
/// any due to the whole room but its observers, the publisher included: a
/// small control packet, a datagram as upstream's `send_auto` makes it.
/// Upstream publishes a hint on the publisher's subject, which every member
/// hears (no unicast filter stops it); the publisher's session id in the
/// wrapper says whose it is. Returns the drops at full queues.
fn hint(publisher: &Member, members: &[Arc<Member>], now: Instant) -> u64 {
    let receivers = members
        .iter()
        .filter(|m| m.session_id != publisher.session_id && !m.observer)
        .map(|m| &m.layers);
    let mut full = 0;
    let (user, me) = (&publisher.user_id, publisher.session_id);
    publisher.layers.recompute(me, receivers, now, |hints| {
        let p = synth_common::layers::layer_hint(user, me, hints);
        let out = Outbound::auto(Type::LayerHint, p.into(), Bytes::new(), false);
        for m in members.iter().filter(|m| !m.observer) {
            if m.offer(out.clone()) == Offer::Full {
                full += 1;
            }
        }
    });
    full
}

/// Hands a VIDEO or SCREEN packet of the session of `user` to its capture file.
fn capture_frame(
    cap: &Capture,
    handles: &mut Handles,
    user: &str,
    kind: Kind,
    p: &wire::Packet<'_>,
) {
    let Ok(m) = wire::parse_media(p.data) else {
        return;
    };
    let medium = if kind == Kind::Screen {
        Medium::Screen
    } else {
        Medium::Video
    };
    let frame = capture::Frame {
        seq: m.sequence,
        timestamp_ms: m.timestamp_ms,
        key: m.is_key(),
        data: m.data,
    };
    handles.push(cap, user, medium, &frame);
}

/// How a session that failed with `e` ended, and why (for the log).
///
/// Closed: the client sent WebTransport's close capsule, or QUIC's
/// CONNECTION_CLOSE (`peer_closed`: a client whose session was dropped
/// closes that way). Lost: anything else (idle timeout, reset, transport
/// error). The error alone does not tell: when the CONNECT stream ends without
/// a capsule, `web_transport_quinn` closes the connection itself and reports
/// `LocallyClosed`, whatever happened, hence the count of CONNECTION_CLOSE
/// frames received.
fn end_of(e: &SessionError, peer_closed: bool) -> (SessionEnd, &'static str) {
    use quinn::ConnectionError as C;
    use web_transport_quinn::WebTransportError as W;
    match e {
        SessionError::WebTransportError(W::Closed(..)) => (SessionEnd::Closed, "closed"),
        SessionError::ConnectionError(C::ApplicationClosed(_) | C::ConnectionClosed(_)) => {
            (SessionEnd::Closed, "connection closed")
        }
        _ if peer_closed => (SessionEnd::Closed, "connection closed"),
        SessionError::ConnectionError(C::TimedOut) => (SessionEnd::Lost, "idle timeout"),
        SessionError::ConnectionError(C::Reset) => (SessionEnd::Lost, "reset"),
        _ => (SessionEnd::Lost, "lost"),
    }
}

/// Upstream's KEYFRAME_REQUEST limiter: at most [`KEYFRAME_MAX`] per window.
#[derive(Debug, Default)]
struct Limiter {
    count: u32,
    window_start: Option<Instant>,
}

impl Limiter {
    fn allow(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.duration_since(start) <= KEYFRAME_WINDOW => {}
            _ => {
                self.window_start = Some(now);
                self.count = 0;
            }
        }
        if self.count < KEYFRAME_MAX {
            self.count += 1;
            true
        } else {
            false
        }
    }
}

/// Records a drop of this sender's packet at `receiver`, in `drops` (per
/// receiving session); true when CONGESTION is due.
fn record_drop(drops: &mut HashMap<u64, Drops>, receiver: &Member, now: Instant) -> bool {
    drops
        .entry(receiver.session_id)
        .or_insert(Drops {
            count: 0,
            window_start: now,
            last_notify: None,
        })
        .record(now)
}

/// Drops of one sender's packets at one receiver (upstream's `SenderDropState`).
#[derive(Debug)]
struct Drops {
    count: u32,
    window_start: Instant,
    last_notify: Option<Instant>,
}

impl Drops {
    /// Records a drop; true when the sender is to be told (CONGESTION).
    fn record(&mut self, now: Instant) -> bool {
        if now.duration_since(self.window_start) > CONGESTION_WINDOW {
            self.count = 0;
            self.window_start = now;
        }
        self.count += 1;
        if self.count < CONGESTION_DROPS {
            return false;
        }
        if self
            .last_notify
            .is_some_and(|t| now.duration_since(t) < CONGESTION_MIN_INTERVAL)
        {
            return false;
        }
        self.last_notify = Some(now);
        self.count = 0;
        self.window_start = now;
        true
    }
}

/// Sends what is queued for one session, in order: datagrams as they come
/// (a uni stream when too big for the path), and the rest as the relay's
/// wire has it: a new uni stream per packet, or a frame on the session's
/// persistent stream for the packet's kind ([`Lanes`]). Counts each by type
/// into `me.sent` once handed to QUIC.
async fn write_loop(
    session: Session,
    mut rx: mpsc::Receiver<Outbound>,
    me: Arc<Member>,
    wire: Wire,
) {
    let mut lanes = (wire == Wire::Framed).then(Lanes::default);
    while let Some(out) = rx.recv().await {
        let (body, suffix) = match out.carry {
            Carry::Datagram(d) if d.len() <= session.max_datagram_size() => {
                // Errors: the connection is gone (the reader notices) or the
                // datagram was refused; either way there is nothing to retry.
                if session.send_datagram(d).is_ok() {
                    me.sent.count(out.ty, true, out.layer);
                }
                continue;
            }
            Carry::Datagram(d) => (d, Bytes::new()),
            Carry::Stream(b, s) => (b, s),
        };
        let sent = match &mut lanes {
            None => send_on_own_stream(&session, body, suffix).await,
            Some(lanes) => lanes.send(&session, Lane::of(out.ty), body, suffix).await,
        };
        match sent {
            Sent::Yes => me.sent.count(out.ty, false, out.layer),
            Sent::Lost => {}
            Sent::SessionGone => return,
        }
    }
}

/// What became of a packet given to a stream.
enum Sent {
    Yes,
    /// The receiver stopped the stream (or, framed, the packet could not be
    /// framed): only this packet is lost.
    Lost,
    /// The session is over.
    SessionGone,
}

/// Writes `body` then `suffix` on `stream`.
async fn write_packet(
    stream: &mut SendStream,
    body: Bytes,
    suffix: Bytes,
) -> Result<(), WriteError> {
    if suffix.is_empty() {
        stream.write_chunk(body).await
    } else {
        stream.write_all_chunks(&mut [body, suffix]).await
    }
}

/// One packet on a uni stream of its own (upstream main).
async fn send_on_own_stream(session: &Session, body: Bytes, suffix: Bytes) -> Sent {
    let Ok(mut stream) = session.open_uni().await else {
        return Sent::SessionGone;
    };
    match write_packet(&mut stream, body, suffix).await {
        Ok(()) => {
            let _ = stream.finish();
            Sent::Yes
        }
        Err(WriteError::Stopped(_) | WriteError::InvalidStopped(_)) => Sent::Lost,
        Err(_) => Sent::SessionGone,
    }
}

/// The framed wire's persistent uni streams to one session, one per
/// [`Lane`], each opened with its first packet and kept for the session
/// (upstream RnD's writer keeps one for everything and sends audio as
/// datagrams; its client keeps one per kind, which is what this follows).
#[derive(Default)]
struct Lanes([Option<SendStream>; Lane::COUNT]);

impl Lanes {
    /// Writes one packet as one frame on `lane`'s stream.
    async fn send(&mut self, session: &Session, lane: Lane, body: Bytes, suffix: Bytes) -> Sent {
        let len = body.len() + suffix.len();
        if len == 0 || len > MAX_FRAME {
            // The receiver would refuse it, and the rest of the stream with
            // it. Only a packet of the very limit plus a session id gets here.
            tracing::debug!(len, "not relayed: no frame can carry it");
            return Sent::Lost;
        }
        let slot = &mut self.0[lane as usize];
        let stream = match slot {
            Some(stream) => stream,
            None => match session.open_uni().await {
                Ok(stream) => slot.insert(stream),
                Err(_) => return Sent::SessionGone,
            },
        };
        let r = match stream.write_all(&framing::header(len)).await {
            Ok(()) => write_packet(stream, body, suffix).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => Sent::Yes,
            // The receiver stopped this lane, perhaps mid-frame: its next
            // packet opens a new stream, which starts on a frame.
            Err(WriteError::Stopped(_) | WriteError::InvalidStopped(_)) => {
                *slot = None;
                Sent::Lost
            }
            Err(_) => Sent::SessionGone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::HintsSent;
    use crate::RelayConfig;
    use protobuf::Message;
    use synth_common::layers::{layer_preference, viewport, Preference, FULL_LADDER};
    use synth_common::wire::{media_kind, media_type, packet_type, MediaFields, MediaPrefix};
    use videocall_types::protos::meeting_packet::meeting_packet::MeetingEventType;
    use videocall_types::protos::meeting_packet::MeetingPacket;

    /// Heartbeat flags of a participant sending audio and video, talking.
    const TALKING: wire::HeartbeatFlags = wire::HeartbeatFlags {
        audio: true,
        video: true,
        screen: false,
        speaking: true,
    };

    fn who(user: &str, room: &str) -> Identity {
        Identity {
            user_id: user.into(),
            room: room.into(),
            display_name: user.into(),
            observer: false,
        }
    }

    /// An observer session, as `session` makes a participant's.
    fn observer(
        shared: &Arc<Shared>,
        user: &str,
        room: &str,
        queue: usize,
    ) -> (Sender, mpsc::Receiver<Outbound>) {
        let who = Identity {
            observer: true,
            ..who(user, room)
        };
        join(shared, &who, queue)
    }

    /// A wrapper of `packet_type` from `user` around `data`, session id 0.
    fn wrapper(packet_type: i32, user: &str, data: &[u8]) -> Bytes {
        use videocall_types::protos::packet_wrapper::PacketWrapper;
        let w = PacketWrapper {
            packet_type: protobuf::EnumOrUnknown::from_i32(packet_type),
            user_id: user.as_bytes().to_vec(),
            data: data.to_vec(),
            ..Default::default()
        };
        w.write_to_bytes().unwrap().into()
    }

    /// A session as the relay holds it, without QUIC: its sending side and
    /// the queue its writer would drain (`queue` packets deep).
    fn session(
        shared: &Arc<Shared>,
        user: &str,
        room: &str,
        queue: usize,
    ) -> (Sender, mpsc::Receiver<Outbound>) {
        join(shared, &who(user, room), queue)
    }

    /// `who`'s session as the relay holds it, its queue `queue` packets deep.
    fn join(
        shared: &Arc<Shared>,
        who: &Identity,
        queue: usize,
    ) -> (Sender, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(queue);
        (Sender::join(shared.clone(), who, tx), rx)
    }

    /// What is queued for a session now, one short line a packet.
    fn queued(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        queued_carried(rx).into_iter().map(|(l, _)| l).collect()
    }

    /// What is queued for a session now, one short line a packet, and
    /// whether it is to go as a datagram.
    fn queued_carried(rx: &mut mpsc::Receiver<Outbound>) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        while let Ok(o) = rx.try_recv() {
            let (bytes, datagram) = match o.carry {
                Carry::Stream(body, suffix) => ([body, suffix].concat(), false),
                Carry::Datagram(d) => (d.to_vec(), true),
            };
            let Ok(p) = wire::parse(&bytes) else {
                out.push((format!("opaque {}", bytes.len()), datagram));
                continue;
            };
            let user = String::from_utf8_lossy(p.user_id);
            let line = match p.packet_type {
                packet_type::SESSION_ASSIGNED => "assigned".to_string(),
                packet_type::MEETING => {
                    let m = MeetingPacket::parse_from_bytes(p.data).unwrap();
                    let target = String::from_utf8_lossy(&m.target_user_id);
                    match m.event_type.enum_value() {
                        Ok(MeetingEventType::MEETING_STARTED) => "started".to_string(),
                        Ok(MeetingEventType::PARTICIPANT_JOINED) => format!("joined {target}"),
                        Ok(MeetingEventType::PARTICIPANT_LEFT) => format!("left {target}"),
                        e => format!("meeting {e:?}"),
                    }
                }
                packet_type::MEDIA => match wire::parse_media(p.data) {
                    Ok(m) if m.media_type == media_type::AUDIO => format!("audio {user}"),
                    Ok(m) if m.media_type == media_type::VIDEO => {
                        format!("video {user} L{}", p.layer)
                    }
                    Ok(m) if m.media_type == media_type::KEYFRAME_REQUEST => {
                        format!("keyframe request {user}")
                    }
                    Ok(m) => format!("media {} {user}", m.media_type),
                    Err(_) => format!("opaque media {user}"),
                },
                packet_type::CONNECTION => format!("connection {user}"),
                packet_type::DIAGNOSTICS => format!("diagnostics {user}"),
                packet_type::CONGESTION => format!("congestion {user} {}", p.session_id),
                packet_type::LAYER_HINT => {
                    let hints = synth_common::layers::parse_layer_hint(p.data).unwrap();
                    let entries: Vec<String> = hints
                        .iter()
                        .map(|h| match h.max_layer {
                            FULL_LADDER => format!("{}=all", h.kind),
                            n => format!("{}={n}", h.kind),
                        })
                        .collect();
                    format!("hint {user} {} {}", p.session_id, entries.join(","))
                }
                t => format!("packet {t} {user}"),
            };
            out.push((line, datagram));
        }
        out
    }

    fn audio(user: &str, seq: u64) -> Bytes {
        let f = MediaFields {
            media_type: media_type::AUDIO,
            sequence: seq,
            timestamp_ms: 1.0,
            duration_ms: 20.0,
            key: true,
            layer: 0,
        };
        let mut v = MediaPrefix::new(user).build(&f, 3).to_vec();
        v.extend_from_slice(&[1, 2, 3]);
        v.into()
    }

    /// A camera video packet of simulcast layer `layer`.
    fn video(user: &str, seq: u64, layer: u32) -> Bytes {
        let f = MediaFields {
            media_type: media_type::VIDEO,
            sequence: seq,
            timestamp_ms: 1.0,
            duration_ms: 33.0,
            key: seq == 0,
            layer,
        };
        wire::media_packet(user, &f, &[1, 2, 3]).into()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// What the reader does with a stream packet read at `at`: count and
    /// relay it, then, having yielded, send any CONGESTION it called for.
    fn read(s: &mut Sender, bytes: Bytes, at: Instant) {
        s.on_packet(bytes, false, at);
        s.tell_congestion(at);
    }

    #[test]
    fn a_close_is_closed_and_a_timeout_or_reset_is_lost() {
        use quinn::ConnectionError as C;
        use web_transport_quinn::WebTransportError as W;
        let app = C::ApplicationClosed(quinn::ApplicationClose {
            error_code: 0u32.into(),
            reason: Bytes::from_static(b"bye"),
        });
        let local = || SessionError::ConnectionError(C::LocallyClosed);
        for (e, peer_closed, end) in [
            (W::Closed(0, "bye".into()).into(), false, SessionEnd::Closed),
            (
                SessionError::ConnectionError(app),
                false,
                SessionEnd::Closed,
            ),
            (
                SessionError::ConnectionError(C::TimedOut),
                false,
                SessionEnd::Lost,
            ),
            (
                SessionError::ConnectionError(C::Reset),
                false,
                SessionEnd::Lost,
            ),
            // What web_transport_quinn reports once the CONNECT stream ends.
            (local(), true, SessionEnd::Closed),
            (local(), false, SessionEnd::Lost),
        ] {
            assert_eq!(end_of(&e, peer_closed).0, end, "{e}");
        }
    }

    #[test]
    fn keyframe_limiter() {
        let mut l = Limiter::default();
        let t = Instant::now();
        assert!(l.allow(t));
        assert!(l.allow(t + Duration::from_millis(10)));
        assert!(!l.allow(t + Duration::from_millis(900)));
        assert!(l.allow(t + Duration::from_millis(1001)));
    }

    #[test]
    fn congestion_after_five_drops_then_rate_limited() {
        let t = Instant::now();
        let mut d = Drops {
            count: 0,
            window_start: t,
            last_notify: None,
        };
        let fired: Vec<bool> = (0..12)
            .map(|i| d.record(t + Duration::from_millis(i * 10)))
            .collect();
        assert_eq!(fired.iter().filter(|f| **f).count(), 1);
        assert!(fired[4]);
        // A second later the window restarts: five more drops notify again.
        let later: Vec<bool> = (0..5)
            .map(|i| d.record(t + Duration::from_millis(1200 + i)))
            .collect();
        assert_eq!(later, [false, false, false, false, true]);
    }

    #[test]
    fn keyframe_requests_reach_the_room_at_most_two_a_second() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (_a, mut a_rx) = session(&shared, "a", "r", 16);
        let (mut b, _b_rx) = session(&shared, "b", "r", 16);
        assert_eq!(queued(&mut a_rx), ["assigned", "started"]);
        let t = Instant::now();
        let request = Bytes::from(wire::keyframe_request("b", "a", 1.0));
        for at in [0, 10, 20, 990] {
            b.on_packet(request.clone(), false, t + ms(at));
        }
        // The first request activates b; two pass within the second.
        assert_eq!(
            queued(&mut a_rx),
            ["joined b", "keyframe request b", "keyframe request b"]
        );
        // A second after the first, a new window.
        b.on_packet(request.clone(), false, t + ms(1001));
        assert_eq!(queued(&mut a_rx), ["keyframe request b"]);
        let s = &shared.stats().per_user["b"];
        assert_eq!((s.keyframe_requests, s.keyframe_requests_limited), (5, 2));
        assert_eq!(s.relayed_to, 3);
    }

    /// CONGESTION goes to the whole meeting as a datagram, the sender
    /// included (regression: it went to the sender only; upstream publishes
    /// it on the sender's subject, which every member receives).
    #[test]
    fn five_drops_at_a_full_queue_within_a_second_tell_the_whole_meeting() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        // Room for the greeting and one more packet, and never drained.
        let (_slow, mut slow_rx) = session(&shared, "slow", "r", 3);
        let (mut a, mut a_rx) = session(&shared, "a", "r", 64);
        let (_c, mut c_rx) = session(&shared, "c", "r", 64);
        assert_eq!(queued(&mut a_rx), ["assigned", "started", "joined slow"]);
        // Members not yet active are in the list a newcomer gets, as upstream's `room_members`.
        assert_eq!(
            queued(&mut c_rx),
            ["assigned", "started", "joined slow", "joined a"]
        );
        let sid = a.me.session_id;
        let congestion = (format!("congestion slow {sid}"), true);
        let t = Instant::now();
        for seq in 0..8 {
            read(&mut a, audio("a", seq), t + ms(seq));
        }
        // a's first packet announced it (the slow queue's last place); every
        // audio packet was then dropped there, and the fifth drop told the
        // meeting: a, c, and slow itself, whose full queue dropped it too.
        assert_eq!(
            queued_carried(&mut a_rx),
            [("joined a".to_string(), true), congestion.clone()]
        );
        let at_c = queued_carried(&mut c_rx);
        let lines: Vec<&str> = at_c.iter().map(|(l, _)| l.as_str()).collect();
        let audio_a = "audio a";
        assert_eq!(
            lines,
            [
                "joined a",
                audio_a,
                audio_a,
                audio_a,
                audio_a,
                audio_a,
                &congestion.0,
                audio_a,
                audio_a,
                audio_a
            ]
        );
        assert_eq!(at_c[6], congestion);
        let s = shared.stats();
        assert_eq!((s.relay_drops, s.congestion_sent), (9, 1));
        assert_eq!(s.per_user["a"].relay_drops, 8, "a's own packets");
        // After a second the count starts again: five more drops, one more CONGESTION.
        for seq in 8..13 {
            read(&mut a, audio("a", seq), t + ms(1200 + seq));
        }
        assert_eq!(queued_carried(&mut a_rx), std::slice::from_ref(&congestion));
        assert_eq!(queued(&mut c_rx).last(), Some(&congestion.0));
        assert_eq!(shared.stats().congestion_sent, 2);
        assert_eq!(queued(&mut slow_rx), ["assigned", "started", "joined a"]);
    }

    /// CONGESTION goes out once the reader has yielded, as upstream's comes
    /// back through NATS: a congested receiver whose writer took a packet
    /// meanwhile gets its own copy.
    #[test]
    fn a_congested_receiver_that_drained_meanwhile_gets_congestion_too() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (_slow, mut slow_rx) = session(&shared, "slow", "r", 3);
        let (mut a, _a_rx) = session(&shared, "a", "r", 64);
        let t = Instant::now();
        for seq in 0..5 {
            a.on_packet(audio("a", seq), false, t + ms(seq));
        }
        // The fifth drop called for CONGESTION; slow's writer sends one packet.
        assert_eq!(
            slow_rx.try_recv().map(|o| o.ty).ok(),
            Some(Type::SessionAssigned)
        );
        a.tell_congestion(t + ms(5));
        let sid = a.me.session_id;
        assert_eq!(
            queued_carried(&mut slow_rx)[1..],
            [
                ("joined a".to_string(), true),
                (format!("congestion slow {sid}"), true)
            ]
        );
        let s = shared.stats();
        assert_eq!((s.relay_drops, s.congestion_sent), (5, 1));
    }

    /// DIAGNOSTICS go to every other member, observers and members not yet
    /// active included, as datagrams (upstream's `send_auto`), with the
    /// sender's session id; one too big for a datagram takes a stream.
    #[test]
    fn diagnostics_reach_the_room_as_datagrams() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut a, mut a_rx) = session(&shared, "a", "r", 64);
        let (_b, mut b_rx) = session(&shared, "b", "r", 64);
        let (_o, mut o_rx) = observer(&shared, "o", "r", 64);
        queued(&mut a_rx);
        queued(&mut b_rx);
        queued(&mut o_rx);
        let t = Instant::now();
        a.on_packet(wrapper(packet_type::DIAGNOSTICS, "a", &[1; 100]), false, t);
        a.on_packet(wrapper(packet_type::DIAGNOSTICS, "a", &[1; 1200]), false, t);
        let want = [
            ("joined a".to_string(), true),
            ("diagnostics a".to_string(), true),
            ("diagnostics a".to_string(), false),
        ];
        assert_eq!(queued_carried(&mut b_rx), want);
        assert_eq!(queued_carried(&mut o_rx), want);
        assert_eq!(queued(&mut a_rx), ["joined a"], "never back to the sender");
        let u = &shared.stats().per_user["a"];
        assert_eq!((u.diagnostics, u.other, u.relayed_to), (2, 0, 4));
        assert_eq!(u.received_by_type.diagnostics.stream, 2);
    }

    /// HEALTH activates the session (PARTICIPANT_JOINED), is counted, and
    /// goes to nobody, from a participant or an observer.
    #[test]
    fn health_is_counted_and_never_relayed() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut a, mut a_rx) = session(&shared, "a", "r", 64);
        let (mut o, _o_rx) = observer(&shared, "o", "r", 64);
        let (_b, mut b_rx) = session(&shared, "b", "r", 64);
        queued(&mut a_rx);
        queued(&mut b_rx);
        let t = Instant::now();
        a.on_packet(wrapper(packet_type::HEALTH, "a", b"health"), false, t);
        a.on_packet(wrapper(packet_type::HEALTH, "a", b"health"), true, t);
        o.on_packet(wrapper(packet_type::HEALTH, "o", b"health"), false, t);
        assert_eq!(queued(&mut b_rx), ["joined a"]);
        assert_eq!(queued(&mut a_rx), ["joined a"]);
        let s = shared.stats();
        let u = &s.per_user["a"];
        assert_eq!((u.health, u.other, u.relayed_to), (2, 0, 0));
        let h = u.received_by_type.health;
        assert_eq!((h.stream, h.datagram), (1, 1));
        assert!(u.session_log[0].joined_unix_ms.is_some(), "activated");
        assert_eq!(s.per_user["o"].health, 1);
    }

    /// Packets that do not parse are forwarded, not dropped (regression:
    /// they were dropped; upstream's `classify_packet` calls them opaque
    /// data): a broken wrapper unchanged, as a datagram when small; a MEDIA
    /// wrapper whose MediaPacket does not parse (encrypted) as media, on a
    /// stream, with the sender's session id.
    #[test]
    fn packets_that_do_not_parse_are_forwarded() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut a, mut a_rx) = session(&shared, "a", "r", 64);
        let (_b, mut b_rx) = session(&shared, "b", "r", 64);
        let (mut o, _o_rx) = observer(&shared, "o", "r", 64);
        queued(&mut a_rx);
        queued(&mut b_rx);
        let t = Instant::now();
        let broken = Bytes::from_static(&[0xff, 0xff, 0xff]);
        let encrypted = wrapper(packet_type::MEDIA, "a", &[0xff; 40]);
        a.on_packet(broken.clone(), true, t);
        a.on_packet(Bytes::from(vec![0xff; 1300]), true, t);
        a.on_packet(encrypted.clone(), false, t);
        o.on_packet(broken.clone(), false, t);
        let mut got = Vec::new();
        while let Ok(out) = b_rx.try_recv() {
            got.push(out);
        }
        let lines: Vec<_> = got
            .iter()
            .map(|o| match &o.carry {
                Carry::Datagram(d) => ("dgram", [&d[..], &[]].concat()),
                Carry::Stream(b, s) => ("stream", [&b[..], &s[..]].concat()),
            })
            .collect();
        assert_eq!(lines.len(), 4, "JOINED, then a's three: {lines:?}");
        assert_eq!(lines[1], ("dgram", broken.to_vec()), "unchanged");
        assert_eq!((lines[2].0, lines[2].1.len()), ("stream", 1300));
        let p = wire::parse(&lines[3].1).unwrap();
        assert_eq!(lines[3].0, "stream");
        assert_eq!(
            (p.packet_type, p.data),
            (packet_type::MEDIA, &[0xff; 40][..])
        );
        assert_eq!(p.session_id, a.me.session_id);
        let s = shared.stats();
        let u = &s.per_user["a"];
        // To b and to the observer.
        assert_eq!((u.malformed, u.relayed_to), (3, 6));
        assert_eq!(u.received_by_type.unparsed.datagram, 2);
        assert_eq!(u.received_by_type.media_unparsed.stream, 1);
        assert_eq!(
            s.per_user["o"].observer_media_dropped, 1,
            "an observer's too are dropped"
        );
    }

    /// Drops of an opaque packet at a full queue call for no CONGESTION:
    /// there is no session id in it (upstream counts drops against the
    /// wrapper's session id, 0 there).
    #[test]
    fn drops_of_opaque_packets_tell_nobody() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (_slow, _slow_rx) = session(&shared, "slow", "r", 3);
        let (mut a, mut a_rx) = session(&shared, "a", "r", 64);
        queued(&mut a_rx);
        let t = Instant::now();
        for i in 0..10 {
            read(&mut a, Bytes::from_static(&[0xff, 0xff]), t + ms(i));
        }
        let s = shared.stats();
        assert_eq!((s.relay_drops, s.congestion_sent), (10, 0));
        assert_eq!(queued(&mut a_rx), ["joined a"]);
    }

    /// An observer is told of nobody already there (regression: it got
    /// the member list); the first participant's MEETING_STARTED goes to
    /// the observers already there, and not to later joiners.
    #[test]
    fn observers_get_no_member_list_and_hear_the_meeting_start() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (_o, mut o_rx) = observer(&shared, "o", "r", 64);
        let (_a, mut a_rx) = session(&shared, "a", "r", 64);
        let (_b, mut b_rx) = session(&shared, "b", "r", 64);
        let (_o2, mut o2_rx) = observer(&shared, "o2", "r", 64);
        assert_eq!(
            queued_carried(&mut o_rx),
            [
                ("assigned".to_string(), false),
                ("started".to_string(), false),
                ("started".to_string(), true),
            ]
        );
        // The first participant has its own greeting only: it is not yet
        // listening when its MEETING_STARTED is published.
        assert_eq!(queued(&mut a_rx), ["assigned", "started"]);
        assert_eq!(queued(&mut b_rx), ["assigned", "started", "joined a"]);
        assert_eq!(
            queued(&mut o2_rx),
            ["assigned", "started"],
            "no member list"
        );
    }

    /// Regression: relayed packets were slices of the buffer they arrived
    /// in (a GRO batch of datagrams), so each one queued for a slow receiver
    /// (256 deep) held a whole batch: at 300 clients on a saturated machine
    /// the relay's RSS grew to 1.9 GB. Queued packets now own their bytes.
    #[test]
    fn queued_packets_hold_only_their_own_bytes_not_the_received_batch() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut a, _a_rx) = session(&shared, "a", "r", 64);
        let (_b, mut b_rx) = session(&shared, "b", "r", 64);
        while b_rx.try_recv().is_ok() {}
        // One packet inside a larger received buffer, as quinn hands it on.
        let packet = audio("a", 0);
        let mut batch = vec![0u8; 14_000];
        batch[5_000..5_000 + packet.len()].copy_from_slice(&packet);
        let batch = Bytes::from(batch);
        let range = batch.as_ptr() as usize..batch.as_ptr() as usize + batch.len();
        a.on_packet(
            batch.slice(5_000..5_000 + packet.len()),
            false,
            Instant::now(),
        );
        let mut bodies = Vec::new();
        while let Ok(o) = b_rx.try_recv() {
            if let Carry::Stream(body, _) = o.carry {
                bodies.push(body);
            }
        }
        let relayed = bodies.last().expect("the audio packet reached b");
        assert_eq!(relayed[..], packet[..]);
        assert!(
            !range.contains(&(relayed.as_ptr() as usize)),
            "the queued packet still points into the received batch"
        );
    }

    #[test]
    fn injected_drops_are_counted_at_receivers_still_there() {
        let shared = Arc::new(Shared::new(&RelayConfig {
            drop_rate: 1.0,
            ..RelayConfig::default()
        }));
        let (mut a, _a_rx) = session(&shared, "a", "r", 64);
        let (_b, mut b_rx) = session(&shared, "b", "r", 64);
        let (_gone, gone_rx) = session(&shared, "gone", "r", 64);
        drop(gone_rx);
        let t = Instant::now();
        a.on_packet(audio("a", 0), false, t);
        a.on_packet(audio("a", 1), false, t);
        a.on_packet(wire::heartbeat("a", 1.0, TALKING).into(), false, t);
        // Everything but the second audio packet reaches b: a's JOINED (as
        // existing member, then on activation), the first audio packet
        // (never dropped) and the heartbeat.
        let got = queued(&mut b_rx);
        assert_eq!(got[2..], ["joined a", "joined a", "audio a", "media 4 a"]);
        let s = shared.stats();
        let b = &s.per_user["b"];
        assert_eq!((b.dropped_audio, b.dropped_video), (1, 0));
        assert_eq!(
            s.per_user["gone"].dropped_audio, 0,
            "no drop for a closed receiver"
        );
        assert_eq!(s.injected_drops.audio, 1);
        // Received from a all the same; delivered only where not dropped.
        let a = &s.per_user["a"];
        assert_eq!((a.audio_packets, a.relayed_to), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnection_within_the_grace_period_is_announced_to_nobody() {
        let grace = Duration::from_secs(2);
        let shared = Arc::new(Shared::new(&RelayConfig {
            leave_grace: grace,
            ..RelayConfig::default()
        }));
        let (_a, mut a_rx) = session(&shared, "a", "r", 64);
        let (mut b, _b_rx) = session(&shared, "b", "r", 64);
        let t = Instant::now();
        b.on_packet(wire::connection("b", "r").into(), false, t);
        assert_eq!(
            queued(&mut a_rx),
            ["assigned", "started", "joined b", "connection b"]
        );

        // b's session ends; the same user is back halfway through the grace period.
        b.finish(&who("b", "r"));
        tokio::time::sleep(grace / 2).await;
        let (mut b2, _b2_rx) = session(&shared, "b", "r", 64);
        b2.on_packet(wire::connection("b", "r").into(), false, t);
        // Past the end of b's grace period: neither LEFT nor a second JOINED.
        tokio::time::sleep(grace).await;
        assert_eq!(queued(&mut a_rx), ["connection b"]);

        // Gone for good: LEFT once the grace period is over, and not before.
        b2.finish(&who("b", "r"));
        tokio::time::sleep(grace - ms(1)).await;
        assert!(queued(&mut a_rx).is_empty());
        tokio::time::sleep(ms(2)).await;
        assert_eq!(queued(&mut a_rx), ["left b"]);
    }

    /// A LAYER_PREFERENCE of `user` asking for `layer` of each of `sessions`' video.
    fn prefer(user: &str, sessions: &[u64], layer: u32) -> Bytes {
        let e: Vec<Preference> = sessions
            .iter()
            .map(|&session_id| Preference {
                session_id,
                layer,
                kind: media_kind::VIDEO,
            })
            .collect();
        layer_preference(user, &e).into()
    }

    /// The audio and video queued for a session now.
    fn media(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
        queued(rx)
            .into_iter()
            .filter(|l| l.starts_with("audio ") || l.starts_with("video "))
            .collect()
    }

    /// Three layers of one frame of `user`'s video, read at `at`.
    fn ladder(s: &mut Sender, user: &str, seq: u64, at: Instant) {
        for layer in 0..3 {
            s.on_packet(video(user, seq, layer), false, at);
        }
    }

    /// VIEWPORT and LAYER_PREFERENCE are consumed, never relayed: a
    /// receiver's viewport withholds the video of publishers outside it (not
    /// their audio), its preference the layers of a publisher other than 0
    /// and the one wanted; each withheld packet is counted at the receiver,
    /// neither sent nor dropped.
    #[test]
    fn a_receiver_gets_what_it_asked_for_and_the_rest_is_counted_as_withheld() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut a, mut a_rx) = session(&shared, "a", "r", 64);
        let (mut b, mut b_rx) = session(&shared, "b", "r", 64);
        let (mut r, mut r_rx) = session(&shared, "r", "r", 64);
        let (sa, sb) = (a.me.session_id, b.me.session_id);
        let t = Instant::now();
        r.on_packet(viewport("r", &[sa]).into(), false, t);
        a.on_packet(audio("a", 0), false, t);
        b.on_packet(audio("b", 0), false, t);
        a.on_packet(video("a", 0, 0), false, t);
        b.on_packet(video("b", 0, 0), false, t);
        assert_eq!(media(&mut r_rx), ["audio a", "audio b", "video a L0"]);

        // Everyone's video again, and of a only layer 0; of b, layers 0 and 2.
        r.on_packet(viewport("r", &[]).into(), false, t + ms(200));
        r.on_packet(prefer("r", &[sa], 0), false, t + ms(200));
        let mut p = prefer("r", &[sb], 2).to_vec();
        // Sent again at once: dropped, so a's entry stands.
        r.on_packet(p.clone().into(), false, t + ms(300));
        ladder(&mut a, "a", 1, t + ms(400));
        ladder(&mut b, "b", 1, t + ms(400));
        assert_eq!(
            media(&mut r_rx),
            ["video a L0", "video b L0", "video b L1", "video b L2"]
        );
        p = prefer("r", &[sb], 2).to_vec();
        r.on_packet(p.into(), true, t + ms(400));
        ladder(&mut a, "a", 2, t + ms(500));
        ladder(&mut b, "b", 2, t + ms(500));
        assert_eq!(
            media(&mut r_rx),
            [
                "video a L0",
                "video a L1",
                "video a L2",
                "video b L0",
                "video b L2"
            ]
        );
        for rx in [&mut a_rx, &mut b_rx] {
            let got = queued(rx);
            assert!(!got.iter().any(|l| l.starts_with("packet")), "{got:?}");
        }

        let s = shared.stats();
        let u = &s.per_user["r"];
        assert_eq!((u.viewport_filtered, u.layer_filtered), (1, 3));
        assert_eq!((s.viewport_filtered, s.layer_filtered), (1, 3));
        let updates = ViewUpdates {
            accepted: 4,
            rate_limited: 1,
            malformed: 0,
        };
        assert_eq!((u.view_updates, s.view_updates), (updates, updates));
        let got = u.received_by_type;
        assert_eq!((got.viewport.stream, got.layer_preference.total()), (2, 3));
        assert_eq!(
            (u.other, u.relayed_to),
            (0, 0),
            "counted as updates, relayed to nobody"
        );
        assert_eq!(s.per_user["a"].video_layers, [3, 2, 2]);
        // Its 8 packets to b, and to r all but the 2 layers withheld.
        assert_eq!(s.per_user["a"].relayed_to, 8 + 6);
        assert_eq!(s.relay_drops, 0);
    }

    /// The bounds: a viewport of the receiver itself alone constrains
    /// nothing; a layer above 7 is skipped (every layer); content that does
    /// not parse changes nothing; an update of one type does not hold up
    /// one of the other.
    #[test]
    fn own_id_layers_above_7_and_malformed_updates_constrain_nothing() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut a, _a_rx) = session(&shared, "a", "r", 64);
        let (mut r, mut r_rx) = session(&shared, "r", "r", 64);
        let sa = a.me.session_id;
        let t = Instant::now();
        r.on_packet(viewport("r", &[r.me.session_id]).into(), false, t);
        r.on_packet(prefer("r", &[sa], 8), false, t);
        assert_eq!(r.me.layers.wanted(), Wanted::default());
        ladder(&mut a, "a", 0, t);
        assert_eq!(media(&mut r_rx), ["video a L0", "video a L1", "video a L2"]);
        let broken = wrapper(packet_type::VIEWPORT, "r", &[0x0a, 0x05, 0x01]);
        r.on_packet(broken, false, t + ms(500));
        let s = shared.stats();
        let u = &s.per_user["r"].view_updates;
        assert_eq!((u.accepted, u.rate_limited, u.malformed), (2, 0, 1));
        assert_eq!(s.per_user["r"].layer_filtered, 0);
    }

    /// A publisher of layers in a room of three whose two receivers want
    /// only its layer 0 is hinted down to layer 0 two seconds after the
    /// second asked (its own reader sends it, at its next packet), and not
    /// before; when one of them clears its preference, back up at once, by
    /// that receiver's reader. Audio and screen share are never hinted.
    #[test]
    fn a_lower_union_is_hinted_after_two_seconds_and_a_higher_one_at_once() {
        let shared = Arc::new(Shared::new(&RelayConfig::default()));
        let (mut p, mut p_rx) = session(&shared, "p", "r", 256);
        let (mut r1, _r1_rx) = session(&shared, "r1", "r", 1024);
        let (mut r2, _r2_rx) = session(&shared, "r2", "r", 1024);
        let sp = p.me.session_id;
        queued(&mut p_rx);
        let t = Instant::now();
        let hints = |rx: &mut mpsc::Receiver<Outbound>| -> Vec<String> {
            queued(rx)
                .into_iter()
                .filter(|l| l.starts_with("hint"))
                .collect()
        };
        ladder(&mut p, "p", 0, t);
        r1.on_packet(prefer("r1", &[sp], 0), false, t + ms(10));
        r2.on_packet(prefer("r2", &[sp], 0), false, t + ms(20));
        for i in 1..=100 {
            ladder(&mut p, "p", i, t + ms(20 + 20 * i - 1));
        }
        assert!(hints(&mut p_rx).is_empty(), "not before 2 s");
        ladder(&mut p, "p", 101, t + ms(2020));
        assert_eq!(hints(&mut p_rx), [format!("hint p {sp} 1=0")]);
        ladder(&mut p, "p", 102, t + ms(2040));
        assert!(hints(&mut p_rx).is_empty(), "once");
        r1.on_packet(layer_preference("r1", &[]).into(), false, t + ms(2100));
        assert_eq!(hints(&mut p_rx), [format!("hint p {sp} 1=all")]);
        let s = shared.stats();
        assert_eq!(
            s.hints_sent,
            HintsSent {
                suppress: 1,
                restore: 1
            }
        );
        let u = &s.per_user["p"];
        assert_eq!(u.hints_sent, s.hints_sent);
        assert_eq!(u.video_seq.received, 103, "layer 0's numbers");
        assert_eq!(u.video_layers, [103, 103, 103]);
        assert_eq!(s.per_user["r1"].view_updates.accepted, 2);
    }

    /// Joins and leaves recompute a publisher's hints 300 ms after its
    /// reader sees them; alone, its union is 0 (upstream's quirk): hinted
    /// down after 2 s. A session that never sent a layer above 0 is never
    /// hinted, however its receivers' preferences change; the room hears
    /// every hint.
    #[test]
    fn joins_and_leaves_recompute_hints_and_only_simulcast_publishers_get_them() {
        let shared = Arc::new(Shared::new(&RelayConfig {
            leave_grace: Duration::ZERO,
            ..RelayConfig::default()
        }));
        let (mut p, mut p_rx) = session(&shared, "p", "r", 256);
        let (mut plain, mut plain_rx) = session(&shared, "plain", "r", 256);
        let (sp, splain) = (p.me.session_id, plain.me.session_id);
        let hints = |rx: &mut mpsc::Receiver<Outbound>| -> Vec<String> {
            queued(rx)
                .into_iter()
                .filter(|l| l.starts_with("hint"))
                .collect()
        };
        let t = Instant::now();
        plain.on_packet(video("plain", 0, 0), false, t);
        p.on_packet(video("p", 0, 1), false, t);
        // plain wants p's layer 0: p's union is 0.
        plain.on_packet(prefer("plain", &[sp], 0), false, t);
        p.on_packet(video("p", 1, 1), false, t + ms(2000));
        assert_eq!(hints(&mut p_rx), [format!("hint p {sp} 1=0")]);
        // A newcomer without preferences: full ladder again, 300 ms after p saw it.
        let (newcomer, _n_rx) = session(&shared, "n", "r", 256);
        p.on_packet(video("p", 2, 1), false, t + ms(2100));
        p.on_packet(video("p", 3, 1), false, t + ms(2399));
        assert!(hints(&mut p_rx).is_empty());
        p.on_packet(video("p", 4, 1), false, t + ms(2400));
        assert_eq!(hints(&mut p_rx), [format!("hint p {sp} 1=all")]);
        // It leaves: down again, 300 ms then 2 s later.
        newcomer.finish(&who("n", "r"));
        for (seq, at) in [(5, 2500), (6, 2800), (7, 4799)] {
            p.on_packet(video("p", seq, 1), false, t + ms(at));
        }
        assert!(hints(&mut p_rx).is_empty());
        p.on_packet(video("p", 8, 1), false, t + ms(4800));
        assert_eq!(hints(&mut p_rx), [format!("hint p {sp} 1=0")]);
        // Never for a publisher of layer 0 only.
        p.on_packet(prefer("p", &[splain], 0), false, t + ms(5000));
        plain.on_packet(video("plain", 1, 0), false, t + ms(8000));
        // The room hears p's hints (upstream publishes them on p's
        // subject), none about plain.
        let heard = hints(&mut plain_rx);
        assert!(heard.contains(&format!("hint p {sp} 1=0")), "{heard:?}");
        assert!(heard.iter().all(|h| h.starts_with("hint p ")), "{heard:?}");
        assert_eq!(
            shared.stats().per_user["plain"].hints_sent,
            HintsSent::default()
        );
    }
}
