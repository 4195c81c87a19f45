//! A session's receive side: streams and datagrams drained and each packet
//! handed to the pure [`Accounting`]; for a `browser`, the control traffic
//! its [`Control`](crate::session::control::Control) says is due: RTT probes
//! sent here as datagrams, DIAGNOSTICS, HEALTH and key-frame requests handed
//! to the session's loop, which sends them on streams.

use std::future::Future as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::clock::unix_ms;
use synth_common::net::{FrameFail, FramedReads, ReadFail, Reads};
use synth_common::wire;
use tokio::sync::{mpsc, watch, Notify};
use web_transport_quinn::Session;

use crate::client::context::{since_start, Shared};
use crate::metrics::{ClientStats, Control as Kind, Media};
use crate::session::receive::{Accounting, Context, Handled};
use crate::version::Wire;

/// Control packets queued for the session's loop at most; beyond, they are
/// counted as dropped (a sender that cannot keep up with its own control
/// traffic shows, rather than queueing without bound).
pub(super) const CONTROL_QUEUE: usize = 256;

/// What a packet for the session's loop is, for counting it once sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Out {
    /// A `browser`'s control packet.
    Control(Kind),
    /// A view's VIEWPORT.
    Viewport,
    /// A view's LAYER_PREFERENCE.
    Preference,
}

/// A packet for the session's loop to send on a stream.
pub(super) type Outgoing = (Out, Bytes);

/// What a `browser`'s receive side (or one with a view) needs to build its
/// control packets.
pub(super) struct ControlOut {
    /// Where DIAGNOSTICS, HEALTH, key-frame requests and view updates go.
    pub(super) tx: mpsc::Sender<Outgoing>,
    /// Its user id.
    pub(super) user: String,
    /// Its meeting.
    pub(super) meeting: String,
    /// The server it is on (HEALTH's `active_server_url`).
    pub(super) server: String,
    /// HEALTH's `session_id`: `session_<unix seconds when it started>`.
    pub(super) label: String,
}

/// What the receive loop waits for.
enum Incoming {
    /// A packet (a whole stream or a datagram), or why a stream gave none.
    Read(Result<Bytes, ReadFail>),
    /// A `browser`'s control traffic is due.
    Tick,
    /// The session closed or the sender is done.
    End,
}

/// A session's receive task: what it reads from, what it counts into, and
/// whom it tells of a key-frame request. All owned: it runs on a task of
/// its own.
pub(super) struct Receiver {
    /// The run's context.
    pub(super) shared: Arc<Shared>,
    /// The client's stats.
    pub(super) stats: Arc<ClientStats>,
    /// The client's index: its histogram shard.
    pub(super) shard: usize,
    /// The session to drain.
    pub(super) session: Session,
    /// Notified when a peer asks for a key frame, and which (camera, screen).
    pub(super) keyframe: (Arc<Notify>, Arc<[AtomicBool; 2]>),
    /// A `browser`'s control traffic out; `None` for a `bot`.
    pub(super) control: Option<ControlOut>,
}

/// The session's incoming uni streams: each one packet (per-packet wire),
/// or a few lasting the session, carrying frames (framed wire).
enum Streams {
    PerPacket(Reads),
    Framed(FramedReads),
}

impl Streams {
    fn is_empty(&self) -> bool {
        match self {
            Streams::PerPacket(r) => r.is_empty(),
            Streams::Framed(r) => r.is_empty(),
        }
    }

    /// Starts reading `stream`; a packet at once if one is already whole.
    fn start(
        &mut self,
        stream: web_transport_quinn::RecvStream,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<Bytes, ReadFail>> {
        match self {
            Streams::PerPacket(r) => r.start(stream, cx),
            Streams::Framed(r) => {
                r.push(stream);
                self.poll_next(cx)
            }
        }
    }

    /// The next whole packet of any stream. A framed stream whose framing
    /// broke counts as a packet too long (a bad packet), as a stream of the
    /// per-packet wire past its limit does.
    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<Bytes, ReadFail>> {
        match self {
            Streams::PerPacket(r) => r.poll_next(cx),
            Streams::Framed(r) => r.poll_next(cx).map_err(|e| match e {
                FrameFail::Reset => ReadFail::Reset,
                _ => ReadFail::TooLong,
            }),
        }
    }
}

/// Far enough ahead to mean "never" for a timer.
const NEVER: Duration = Duration::from_secs(86_400);

impl Receiver {
    /// Drains the session until it closes or `done` fires: streams are read
    /// concurrently, each to its end, and datagrams as they come. Returns the
    /// accounting for the next session.
    pub(super) async fn run(
        self,
        mut accounting: Accounting,
        mut done: watch::Receiver<bool>,
    ) -> Accounting {
        let (shared, stats, session) = (&self.shared, &self.stats, &self.session);
        let cx = Context {
            ours: &shared.roster.ours,
            clients: &shared.metrics.clients,
            digests: &shared.settings.digests,
            late_after_ms: shared.settings.late_after_ms,
        };
        let mut reads = if shared.settings.wire == Wire::Framed {
            Streams::Framed(FramedReads::default())
        } else {
            Streams::PerPacket(Reads::default())
        };
        // Each future is re-armed only when it completes, not at every packet.
        let accept = session.accept_uni();
        let datagram = session.read_datagram();
        let finished = done.changed();
        let ticking = self.control.is_some();
        let mut wake = accounting
            .next_wake()
            .filter(|_| ticking)
            .unwrap_or(Instant::now() + NEVER);
        let tick = tokio::time::sleep_until(wake.into());
        tokio::pin!(accept, datagram, finished, tick);
        loop {
            let event = std::future::poll_fn(|cx| {
                if finished.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Incoming::End);
                }
                if ticking && tick.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Incoming::Tick);
                }
                // Streams already being read first, so they never wait behind
                // a run of new ones.
                if !reads.is_empty() {
                    if let Poll::Ready(r) = reads.poll_next(cx) {
                        return Poll::Ready(Incoming::Read(r));
                    }
                }
                loop {
                    match accept.as_mut().poll(cx) {
                        Poll::Ready(Ok(stream)) => {
                            accept.set(session.accept_uni());
                            match reads.start(stream, cx) {
                                Poll::Ready(r) => return Poll::Ready(Incoming::Read(r)),
                                // Queued: poll it once with the queue's waker.
                                Poll::Pending => {
                                    if let Poll::Ready(r) = reads.poll_next(cx) {
                                        return Poll::Ready(Incoming::Read(r));
                                    }
                                }
                            }
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(Incoming::End),
                        Poll::Pending => break,
                    }
                }
                match datagram.as_mut().poll(cx) {
                    Poll::Ready(Ok(d)) => {
                        datagram.set(session.read_datagram());
                        Poll::Ready(Incoming::Read(Ok(d)))
                    }
                    Poll::Ready(Err(_)) => Poll::Ready(Incoming::End),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            let buf = match event {
                Incoming::Read(Ok(b)) => b,
                Incoming::Read(Err(ReadFail::TooLong | ReadFail::Reset)) => {
                    stats.bad_packets.fetch_add(1, Relaxed);
                    continue;
                }
                Incoming::Tick => {
                    self.tick(&mut accounting);
                    let next = accounting.next_wake().unwrap_or(Instant::now() + NEVER);
                    if next != wake {
                        wake = next;
                        tick.as_mut().reset(wake.into());
                    }
                    continue;
                }
                Incoming::End => break,
            };
            let h = accounting.handle(&buf, unix_ms(), &cx, stats);
            self.record(&h);
            if ticking {
                // A peer heard may change the view: its update is due later.
                if let Some(next) = accounting.view().and_then(|v| v.next_wake()) {
                    if next < wake {
                        wake = next;
                        tick.as_mut().reset(wake.into());
                    }
                }
            }
            if let (Some(out), Some(c)) = (&self.control, accounting.control()) {
                for ask in c.take_asks() {
                    let target = String::from_utf8_lossy(&ask.target);
                    let p = wire::keyframe_request_for(&out.user, &target, ask.screen, unix_ms());
                    self.queue(Kind::KeyframeRequest, p);
                }
            }
        }
        publish(stats, &accounting);
        accounting
    }

    /// Sends what a `browser`'s control traffic has due now: an RTT probe
    /// (a datagram, from here), DIAGNOSTICS and HEALTH (to the session's loop).
    fn tick(&self, accounting: &mut Accounting) {
        let Some(out) = &self.control else { return };
        let stats = &self.stats;
        let now = Instant::now();
        if let Some(u) = accounting.view().and_then(|v| v.due(&out.user, now)) {
            for (what, p) in [(Out::Viewport, u.viewport), (Out::Preference, u.preference)] {
                if let Some(p) = p {
                    self.send_out(what, p);
                }
            }
        }
        let stamp = accounting.probe_timestamp(now);
        let Some(c) = accounting.control() else {
            return;
        };
        if c.probe_due(now) {
            send_probe(&self.session, stats, &out.user, stamp);
        }
        let wall = unix_ms();
        for d in c.diagnostics_due(&out.user, wall as u64, now) {
            self.queue(Kind::Diagnostics, d);
        }
        if let Some((peers, rtt)) = c.health_due(now) {
            let flags = stats.flags.load(Relaxed);
            let h = wire::Health {
                session_label: &out.label,
                meeting_id: &out.meeting,
                user_id: &out.user,
                timestamp_ms: wall as u64,
                audio_enabled: flags & 1 != 0,
                video_enabled: flags & 2 != 0,
                peers: &peers,
                server_url: &out.server,
                server_rtt_ms: rtt,
            };
            self.queue(Kind::Health, wire::health(&h));
        }
    }

    /// Hands a control packet to the session's loop; counted as dropped
    /// when its queue is full (or the session is ending).
    fn queue(&self, kind: Kind, packet: Vec<u8>) {
        self.send_out(Out::Control(kind), packet);
    }

    /// Hands any packet to the session's loop, as [`Receiver::queue`].
    fn send_out(&self, what: Out, packet: Vec<u8>) {
        let Some(out) = &self.control else { return };
        if out.tx.try_send((what, Bytes::from(packet))).is_err() {
            self.stats.control_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Records what the accounting made of a packet: its latency, jitter,
    /// the join's visibility, the echo time of an RTT probe, the wait for a
    /// key frame asked for; and a peer's key-frame request, passed on.
    fn record(&self, h: &Handled) {
        let (m, shard) = (&self.shared.metrics, self.shard);
        if let Some((media, us, ours)) = h.latency {
            let hist = if ours {
                &m.latency
            } else {
                &m.cross_host_latency
            };
            hist[media as usize].record(us, shard);
        }
        if let Some((media, us)) = h.jitter {
            m.jitter[media as usize].record(us, shard);
        }
        if let Some(us) = h.visibility_us {
            m.join_visibility.record(us, shard);
        }
        if let Some(ms) = h.rtt_ms {
            m.server_rtt.record((ms * 1000.0) as u64, shard);
        }
        if let Some(w) = h.keyframe_wait {
            m.keyframe_wait.record(w.as_micros() as u64, shard);
        }
        if h.keyframe_request {
            let asked = since_start(&self.shared);
            let _ = self
                .stats
                .keyframe_asked_us
                .compare_exchange(0, asked, Relaxed, Relaxed);
            self.keyframe.1[usize::from(h.keyframe_screen)].store(true, Relaxed);
            self.keyframe.0.notify_one();
        }
    }
}

/// Publishes each sender as `accounting` saw it into `stats` (for the report).
pub(super) fn publish(stats: &ClientStats, accounting: &Accounting) {
    if let Ok(mut peers) = stats.peers.lock() {
        for (id, view) in accounting.peers() {
            peers.insert(String::from_utf8_lossy(id).into_owned(), view);
        }
    }
}

/// Sends `user`'s RTT probe stamped `stamp` (ms on its own clock) as a
/// datagram and counts it; one that cannot go (the session is closing) is
/// not sent.
pub(super) fn send_probe(session: &Session, stats: &ClientStats, user: &str, stamp: f64) {
    let probe = Bytes::from(wire::rtt(user, stamp));
    let len = probe.len();
    if session.send_datagram(probe).is_ok() {
        stats.sent(Media::Other, len);
        stats.control_sent[Kind::Rtt as usize].fetch_add(1, Relaxed);
    }
}
