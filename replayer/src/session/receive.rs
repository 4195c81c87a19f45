//! What a client does with each packet it receives: count it, follow each
//! sender's stream ([`synth_common::quality::Stream`], one per sender and
//! media: sequence accounting, late packets, jitter, freezes), measure
//! latency (same-process senders share its clock; others are cross-host),
//! check frames from senders of this process against the pack, notice
//! key-frame requests (those aimed at it; every one of the room for a
//! `browser`, as upstream's web client answers them all), tell the
//! CONGESTION about its own packets from the room's, and, for a `browser`,
//! feed what it receives to its control traffic ([`Control`]).
//!
//! Pure: the driver hands over the bytes and the wall-clock time; the state
//! outlives sessions, so a packet lost while the client reconnected stays
//! missing instead of vanishing with a fresh tracker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use synth_common::pack::{FrameDigests, TrackKind};
use synth_common::quality::Stream;
use synth_common::wire::{self, media_type, packet_type, MeetingEvent};

use super::control::{self, Control};
use super::view::View;
use crate::metrics::{ClientStats, Control as Kind, Down, Media, PeerView};

/// One sender as this client sees it.
#[derive(Debug)]
struct Peer {
    media: [Stream; 2],
    /// Its next sequence numbers when this client joined (senders of this process).
    expect_from: Option<[u64; 2]>,
    /// Its index in this process, if it is one of ours.
    ours: Option<usize>,
    /// Anything of it arrived yet.
    heard: bool,
    /// Its audio and video resume counts when last heard (senders of this
    /// process, [`ClientStats::resumes`]).
    resumes: [u64; 2],
    /// Its next numbers when this client last left the meeting on purpose
    /// (cleared when it comes back): nothing from there on was meant for it.
    until: Option<[u64; 2]>,
    /// Its next numbers when this client's current stay in the meeting began.
    stay_from: [Option<u64>; 2],
    /// Audio and video: its numbers sent while this client's session was down.
    gaps: [Gaps; 2],
    /// Its session as last heard (0: not yet), for this client's view.
    session: u64,
    /// This client's view does not show its video.
    unshown: bool,
    /// Its video came into view after it had been out of it: what it sent
    /// before the next video packet heard was not owed.
    promoted: bool,
    /// Its layers 1 and 2 (and up), when asked for.
    upper: [Stream; 2],
}

/// One sender's numbers sent while this client's session was down, as
/// spans `[from, to)` of its numbers (senders of this process).
#[derive(Debug, Default)]
struct Gaps {
    /// The spans that ended: the client was up again.
    spans: Vec<(u64, u64)>,
    /// Down since the sender's next number was this.
    open: Option<u64>,
    /// Distinct numbers of the ended spans that arrived all the same.
    arrived: u64,
}

impl Gaps {
    /// The client is down; the sender's next number is `next`.
    fn down(&mut self, next: u64) {
        self.open.get_or_insert(next);
    }

    /// The client is up again; the sender's next number is `next`.
    fn up(&mut self, next: u64) {
        if let Some(from) = self.open.take() {
            if next > from {
                self.spans.push((from, next));
            }
        }
    }

    /// A number arrived for the first time.
    fn arrived(&mut self, seq: u64) {
        if self.spans.iter().any(|&(a, b)| a <= seq && seq < b) {
            self.arrived += 1;
        }
    }

    /// Numbers from `from` on are excused (the client was away on purpose
    /// from there): no span reaches past it.
    fn excuse_from(&mut self, from: u64) {
        self.up(from);
        for s in &mut self.spans {
            s.1 = s.1.min(from);
        }
        self.spans.retain(|s| s.1 > s.0);
    }

    /// The spans as plain numbers, the ended ones cut at `until` (what was
    /// owed to the client ends there when it left for good).
    fn summary(&self, until: Option<u64>) -> Down {
        let end = until.unwrap_or(u64::MAX);
        Down {
            closed: self
                .spans
                .iter()
                .map(|&(a, b)| b.min(end).saturating_sub(a))
                .sum(),
            open_from: self.open,
            arrived: self.arrived,
        }
    }
}

impl Peer {
    fn new(ours: Option<usize>) -> Peer {
        Peer {
            media: [Stream::new(false), Stream::new(true)],
            expect_from: None,
            ours,
            heard: false,
            resumes: [0; 2],
            until: None,
            stay_from: [None; 2],
            gaps: Default::default(),
            session: 0,
            unshown: false,
            promoted: false,
            upper: [Stream::new(true), Stream::new(true)],
        }
    }
}

/// Runs `see` on `s` and moves `total` (holes summed over streams) by the
/// change of `s`'s holes: a packet opens new holes or fills one late.
fn holes_into<R>(s: &mut Stream, total: &AtomicU64, see: impl FnOnce(&mut Stream) -> R) -> R {
    let before = s.counts().missing();
    let r = see(s);
    let after = s.counts().missing();
    if after > before {
        total.fetch_add(after - before, Relaxed);
    } else if before > after {
        total.fetch_sub(before - after, Relaxed);
    }
    r
}

/// What the accounting needs to know about the run.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// User id → client index, for every client of this process.
    pub ours: &'a HashMap<Box<[u8]>, usize>,
    /// Every client's stats (first packet times, for join visibility).
    pub clients: &'a [Arc<ClientStats>],
    /// The pack's frame digests (integrity of frames from our senders).
    pub digests: &'a FrameDigests,
    /// Audio and video playout budgets, ms.
    pub late_after_ms: [f64; 2],
}

/// What one packet asks of the driver, and what it measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Handled {
    /// A KEYFRAME_REQUEST to answer with a key frame.
    pub keyframe_request: bool,
    /// It asks for the screen share's key frame, not the camera's.
    pub keyframe_screen: bool,
    /// The echo of one of this client's RTT probes: its round trip, ms.
    pub rtt_ms: Option<f64>,
    /// A key frame that answered a request of this client: how long after.
    pub keyframe_wait: Option<Duration>,
    /// One-way latency of a media packet (µs), with its media and whether
    /// its sender is in this process (same clock) or cross-host.
    pub latency: Option<(Media, u64, bool)>,
    /// The stream's interarrival jitter after this packet, µs.
    pub jitter: Option<(Media, u64)>,
    /// The first packet of a sender of this process: how long after it (or
    /// this client, if later) joined, µs.
    pub visibility_us: Option<u64>,
}

/// A client's receive accounting, kept across its sessions.
#[derive(Debug)]
pub struct Accounting {
    me: Box<[u8]>,
    peers: HashMap<Box<[u8]>, Peer>,
    joined_unix_us: u64,
    /// When its current stay in the meeting began (its last join or rejoin).
    stay_unix_us: u64,
    /// Its current session, as SESSION_ASSIGNED said.
    session_id: Option<u64>,
    /// A `browser`'s control traffic; `None` for a `bot`.
    control: Option<Control>,
    /// The clock RTT probes carry (ms since it began), as a browser's
    /// `performance.now()`.
    epoch: Instant,
    /// What it shows and asks for (`view:`); `None` without.
    view: Option<View>,
}

impl Accounting {
    /// Accounting for the client `user_id` (a `bot`: no control traffic,
    /// answers key-frame requests aimed at it only).
    pub fn new(user_id: &str) -> Accounting {
        Accounting {
            me: user_id.as_bytes().into(),
            peers: HashMap::new(),
            joined_unix_us: 0,
            stay_unix_us: 0,
            session_id: None,
            control: None,
            epoch: Instant::now(),
            view: None,
        }
    }

    /// The same accounting with a view (`view:`).
    pub fn with_view(mut self, view: View) -> Accounting {
        self.view = Some(view);
        self
    }

    /// Its view, if it has one.
    pub fn view(&mut self) -> Option<&mut View> {
        self.view.as_mut()
    }

    /// When its control traffic or its view next has something due.
    pub fn next_wake(&self) -> Option<Instant> {
        let c = self.control.as_ref().map(|c| c.next_wake());
        let v = self.view.as_ref().and_then(|v| v.next_wake());
        match (c, v) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Accounting for the `browser` client `user_id`, whose control traffic
    /// starts at `now`.
    pub fn browser(user_id: &str, now: Instant) -> Accounting {
        Accounting {
            control: Some(Control::new(now)),
            epoch: now,
            ..Accounting::new(user_id)
        }
    }

    /// A new session began at `now`: its id is not known until the server
    /// says, and a browser elects its server again.
    pub fn session(&mut self, now: Instant) {
        self.session_id = None;
        if let Some(c) = self.control.as_mut() {
            c.session(now);
        }
        if let Some(v) = self.view.as_mut() {
            v.session(now);
        }
    }

    /// A `browser` back in the meeting after leaving it at `now`: its
    /// control traffic starts afresh (what it measured of its peers is gone).
    pub fn restart_control(&mut self, now: Instant) {
        if self.control.is_some() {
            self.control = Some(Control::new(now));
        }
    }

    /// A `browser`'s control traffic.
    pub fn control(&mut self) -> Option<&mut Control> {
        self.control.as_mut()
    }

    /// The timestamp of an RTT probe sent at `now` (ms on this client's own
    /// clock, which only its echo is compared with).
    pub fn probe_timestamp(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0
    }

    /// This client joined at `unix_us` (its first session is up): from now on,
    /// everything the senders of this process in its meeting send must
    /// arrive. `peers` holds each one's user id, index and next audio and
    /// video sequence numbers. Later sessions change nothing: what a sender
    /// sends while this client reconnects is lost to it.
    pub fn join(
        &mut self,
        unix_us: u64,
        peers: impl IntoIterator<Item = (Box<[u8]>, usize, [u64; 2])>,
    ) {
        if self.joined_unix_us != 0 {
            return;
        }
        self.joined_unix_us = unix_us;
        self.stay_unix_us = unix_us;
        for (id, index, next) in peers {
            let p = self
                .peers
                .entry(id)
                .or_insert_with(|| Peer::new(Some(index)));
            p.expect_from.get_or_insert(next);
            p.stay_from = next.map(Some);
        }
    }

    /// This client leaves the meeting on purpose (its schedule): nothing
    /// after the last packet it got from each sender is owed to it (what
    /// was in flight when it closed its session is not lost; a person who
    /// leaves misses nothing). `peers` holds each sender of this process:
    /// user id, index and next audio and video numbers now, the bound for a
    /// sender it heard nothing from in this stay.
    pub fn leave(&mut self, peers: impl IntoIterator<Item = (Box<[u8]>, usize, [u64; 2])>) {
        for (id, index, next) in peers {
            let p = self
                .peers
                .entry(id)
                .or_insert_with(|| Peer::new(Some(index)));
            p.expect_from.get_or_insert(next);
            let until = [0, 1].map(|i| {
                let c = p.media[i].counts();
                match (c.last, p.stay_from[i]) {
                    (Some(l), Some(from)) if l + 1 >= from => l + 1,
                    _ => next[i],
                }
            });
            p.until = Some(until);
        }
    }

    /// This client is back in the meeting after leaving it on purpose (its
    /// schedule's churn or a storm): what the senders of this process sent
    /// while it was away was never meant for it. `peers` holds each one's
    /// user id, index and next audio and video sequence numbers now; their
    /// numbers up to there are excused ([`synth_common::seq::Tracker::excuse`])
    /// and the gap is no freeze. Before the first join this is a join.
    pub fn rejoin(
        &mut self,
        unix_us: u64,
        peers: impl IntoIterator<Item = (Box<[u8]>, usize, [u64; 2])>,
    ) {
        if self.joined_unix_us == 0 {
            return self.join(unix_us, peers);
        }
        self.stay_unix_us = unix_us;
        for (id, index, next) in peers {
            let p = self
                .peers
                .entry(id)
                .or_insert_with(|| Peer::new(Some(index)));
            let origin = *p.expect_from.get_or_insert(next);
            p.until = None;
            p.stay_from = next.map(Some);
            for i in 0..2 {
                // What the tracker excuses next is no gap of a session down.
                let from = p.media[i].counts().last.map_or(origin[i], |l| l + 1);
                p.gaps[i].excuse_from(from);
                p.media[i].excuse(origin[i], next[i]);
                p.media[i].pause();
            }
        }
        for p in self.peers.values_mut() {
            // Each stay measures how soon it sees each peer again.
            p.heard = false;
            if p.ours.is_none() {
                for m in &mut p.media {
                    m.pause();
                }
            }
        }
    }

    /// This client's session ended without its wanting it (dropped, timed
    /// out, closed by the server) and it knows so now: until it is
    /// [`Accounting::up`] again, what the senders of this process send is
    /// missed while down. `peers` holds each one's user id, index and next
    /// audio and video numbers now.
    pub fn down(&mut self, peers: impl IntoIterator<Item = (Box<[u8]>, usize, [u64; 2])>) {
        for (id, _, next) in peers {
            if let Some(p) = self.peers.get_mut(&id).filter(|p| p.expect_from.is_some()) {
                for (g, n) in p.gaps.iter_mut().zip(next) {
                    g.down(n);
                }
            }
        }
    }

    /// A session of this client is up again after it was [`Accounting::down`]
    /// (a reconnection within a planned session). `peers` as for `down`.
    pub fn up(&mut self, peers: impl IntoIterator<Item = (Box<[u8]>, usize, [u64; 2])>) {
        for (id, _, next) in peers {
            if let Some(p) = self.peers.get_mut(&id) {
                for (g, n) in p.gaps.iter_mut().zip(next) {
                    g.up(n);
                }
            }
        }
    }

    /// Counts one received packet into `stats`; `now_ms` is the wall clock in
    /// ms since the Unix epoch.
    pub fn handle(
        &mut self,
        buf: &[u8],
        now_ms: f64,
        cx: &Context,
        stats: &ClientStats,
    ) -> Handled {
        let mut out = Handled::default();
        // A bot has no control traffic, and so no use for the monotonic
        // clock, unless it has a view.
        let mono = (self.control.is_some() || self.view.is_some()).then(Instant::now);
        let Ok(p) = wire::parse(buf) else {
            stats.bad_packets.fetch_add(1, Relaxed);
            return out;
        };
        match p.packet_type {
            packet_type::MEDIA => {
                let Ok(m) = wire::parse_media(p.data) else {
                    stats.bad_packets.fetch_add(1, Relaxed);
                    return out;
                };
                let media = match m.media_type {
                    media_type::AUDIO => Media::Audio,
                    media_type::VIDEO => Media::Video,
                    media_type::HEARTBEAT => Media::Heartbeat,
                    media_type::SCREEN => Media::Screen,
                    _ => Media::Other,
                };
                stats.received(media, buf.len());
                if media == Media::Other {
                    self.other(&m, mono, stats, &mut out);
                    return out;
                }
                let sender = if p.user_id.is_empty() {
                    m.user_id
                } else {
                    p.user_id
                };
                let peer = match self.peers.get_mut(sender) {
                    Some(peer) => peer,
                    None => self
                        .peers
                        .entry(sender.into())
                        .or_insert_with(|| Peer::new(cx.ours.get(sender).copied())),
                };
                if let (Some(v), Some(now)) = (self.view.as_mut(), mono) {
                    if peer.unshown || peer.session != p.session_id || peer.session == 0 {
                        let shown = v.heard(sender, p.session_id, now);
                        peer.session = p.session_id;
                        if shown && peer.unshown {
                            peer.promoted = true;
                        }
                        peer.unshown = !shown;
                    }
                    if media == Media::Video {
                        let wanted = !peer.unshown && v.wants_layer(p.layer);
                        if !wanted {
                            stats.unrequested.fetch_add(1, Relaxed);
                            if let Some(t) = v.asked(sender) {
                                let us = now.saturating_duration_since(t).as_micros() as u64 + 1;
                                stats.view_switch_us.fetch_max(us, Relaxed);
                            }
                            return out;
                        }
                    }
                }
                if media == Media::Video && p.layer != 0 {
                    // An upper simulcast layer asked for: counted, and
                    // checked for gaps; the pair's figures follow layer 0.
                    let k = synth_common::layers::slot(p.layer);
                    stats.layer_received[k].fetch_add(1, Relaxed);
                    if let Some(seq) = m.sequence {
                        holes_into(&mut peer.upper[k - 1], &stats.layer_missing, |s| {
                            s.see(seq, m.timestamp_ms, now_ms, false, cx.late_after_ms[1])
                        });
                    }
                    return out;
                }
                if media == Media::Video {
                    stats.layer_received[0].fetch_add(1, Relaxed);
                    if std::mem::take(&mut peer.promoted) {
                        if let Some(seq) = m.sequence {
                            // In view from here: what came before was not owed.
                            let origin = peer.expect_from.map_or(seq, |e| e[1]);
                            peer.media[1].excuse(origin, seq);
                            peer.media[1].pause();
                        }
                    }
                }
                if !peer.heard {
                    peer.heard = true;
                    if let Some(c) = peer.ours.and_then(|i| cx.clients.get(i)) {
                        // From the later of its current stay's first
                        // packet and this client's current stay.
                        let first = c.stay_first_packet_unix_us.load(Relaxed);
                        if first != 0 {
                            let from = first.max(self.stay_unix_us);
                            out.visibility_us =
                                Some(((now_ms * 1000.0) as u64).saturating_sub(from));
                        }
                    }
                }
                if let (Some(c), Some(now)) = (self.control.as_mut(), mono) {
                    let kind = match media {
                        Media::Audio => Some(control::Kind::Audio),
                        Media::Video => Some(control::Kind::Video),
                        Media::Screen => Some(control::Kind::Screen),
                        _ => None,
                    };
                    if let Some(kind) = kind {
                        let frame = control::Frame {
                            peer: sender,
                            session: p.session_id,
                            kind,
                            sequence: m.sequence,
                            key: m.is_key(),
                            bytes: p.data.len(),
                        };
                        out.keyframe_wait = c.frame(frame, now);
                    }
                }
                let i = match media {
                    Media::Audio => 0,
                    Media::Video => 1,
                    _ => return out,
                };
                let ours = peer.ours.is_some();
                if let Some(c) = peer.ours.and_then(|k| cx.clients.get(k)) {
                    // The sender resumed this medium after stopping it on
                    // purpose since its last packet here: no freeze, no jitter.
                    let n = c.resumes[i].load(Relaxed);
                    if n != peer.resumes[i] {
                        peer.resumes[i] = n;
                        peer.media[i].pause();
                    }
                }
                let kind = [TrackKind::Audio, TrackKind::Video][i];
                if ours && !cx.digests.contains(kind, m.data) {
                    stats.corrupted[i].fetch_add(1, Relaxed);
                }
                let Some(seq) = m.sequence else { return out };
                let s = &mut peer.media[i];
                let a = holes_into(s, &stats.missing[i], |s| {
                    s.see(seq, m.timestamp_ms, now_ms, ours, cx.late_after_ms[i])
                });
                if ours && !a.seen.duplicate {
                    peer.gaps[i].arrived(seq);
                }
                if a.seen.reordered {
                    stats.reordered[i].fetch_add(1, Relaxed);
                }
                if a.seen.duplicate {
                    stats.duplicates[i].fetch_add(1, Relaxed);
                }
                if a.late {
                    stats.late[i].fetch_add(1, Relaxed);
                }
                if let Some(ms) = a.freeze_ms {
                    stats.freezes.fetch_add(1, Relaxed);
                    stats.freeze_us.fetch_add((ms * 1000.0) as u64, Relaxed);
                }
                out.jitter = Some((media, (s.jitter_ms() * 1000.0) as u64));
                if m.timestamp_ms > 0.0 {
                    let us = ((now_ms - m.timestamp_ms).max(0.0) * 1000.0) as u64;
                    out.latency = Some((media, us, ours));
                }
            }
            packet_type::MEETING => {
                stats.received(Media::Other, buf.len());
                match wire::parse_meeting(p.data) {
                    Ok(MeetingEvent::Joined) => {
                        stats.joined_events.fetch_add(1, Relaxed);
                    }
                    Ok(MeetingEvent::Left) => {
                        stats.left_events.fetch_add(1, Relaxed);
                        if let (Some(v), Some(now)) = (self.view.as_mut(), mono) {
                            if let Some(who) = wire::meeting_target(p.data) {
                                v.left(&who, now);
                                if let Some(peer) = self.peers.get_mut(&who[..]) {
                                    // Heard again, it is placed afresh.
                                    peer.session = 0;
                                }
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        stats.bad_packets.fetch_add(1, Relaxed);
                    }
                }
            }
            packet_type::CONGESTION => {
                stats.received(Media::Other, buf.len());
                // The server tells the whole room; the packet's session is
                // the sender whose packets were dropped.
                if self.session_id == Some(p.session_id) {
                    stats.congestion.fetch_add(1, Relaxed);
                } else {
                    stats.room_congestion.fetch_add(1, Relaxed);
                }
            }
            packet_type::SESSION_ASSIGNED => {
                stats.received(Media::Other, buf.len());
                self.session_id = Some(p.session_id);
            }
            packet_type::DIAGNOSTICS | packet_type::HEALTH => {
                stats.received(Media::Other, buf.len());
                let kind = if p.packet_type == packet_type::HEALTH {
                    Kind::Health
                } else {
                    Kind::Diagnostics
                };
                stats.control_received[kind as usize].fetch_add(1, Relaxed);
            }
            t => {
                stats.received(Media::Other, buf.len());
                // An `RnD` server publishes a hint on its publisher's subject,
                // which the whole room hears: as upstream's client, only
                // one about its own session counts.
                if t == packet_type::LAYER_HINT && self.session_id == Some(p.session_id) {
                    stats.layer_hints.fetch_add(1, Relaxed);
                    let video = synth_common::layers::parse_layer_hint(p.data)
                        .ok()
                        .and_then(|h| h.into_iter().find(|e| e.kind == wire::media_kind::VIDEO));
                    if let Some(h) = video {
                        // The sender reads it at its next video frame.
                        let v = if h.max_layer == synth_common::layers::FULL_LADDER {
                            0
                        } else {
                            u64::from(h.max_layer) + 1
                        };
                        stats.layer_hint.store(v, Relaxed);
                    }
                }
                let known = t == packet_type::RSA_PUB_KEY
                    || t == packet_type::AES_KEY
                    || t == packet_type::CONNECTION;
                if !known {
                    let i = packet_type::NEWER
                        .iter()
                        .position(|(n, _)| *n == t)
                        .unwrap_or(packet_type::NEWER.len());
                    stats.newer_types[i].fetch_add(1, Relaxed);
                }
            }
        }
        out
    }

    /// A MEDIA packet that is neither media nor a heartbeat: a key-frame
    /// request (to answer if aimed at this client, or if it answers every
    /// request of the room as a browser does), or the echo of its RTT probe.
    fn other(
        &mut self,
        m: &wire::Media<'_>,
        mono: Option<Instant>,
        stats: &ClientStats,
        out: &mut Handled,
    ) {
        let mine = m.user_id == &*self.me;
        match m.media_type {
            media_type::KEYFRAME_REQUEST => {
                stats.control_received[Kind::KeyframeRequest as usize].fetch_add(1, Relaxed);
                if mine {
                    stats.keyframe_requests.fetch_add(1, Relaxed);
                }
                if mine || self.control.is_some() {
                    out.keyframe_request = true;
                    out.keyframe_screen = m.data == wire::KEYFRAME_SCREEN;
                }
            }
            media_type::RTT if mine => {
                stats.control_received[Kind::Rtt as usize].fetch_add(1, Relaxed);
                if let (Some(c), Some(now)) = (self.control.as_mut(), mono) {
                    let rtt = (now.saturating_duration_since(self.epoch).as_secs_f64() * 1000.0
                        - m.timestamp_ms)
                        .max(0.0);
                    c.echo(rtt);
                    out.rtt_ms = Some(rtt);
                }
            }
            _ => {}
        }
    }

    /// Each sender as this client saw it so far.
    pub fn peers(&self) -> impl Iterator<Item = (&[u8], PeerView)> {
        self.peers.iter().map(|(id, p)| {
            (
                &id[..],
                PeerView {
                    media: [p.media[0].summary(), p.media[1].summary()],
                    expect_from: p.expect_from,
                    until: p.until,
                    ours: p.ours.is_some(),
                    unshown: p.unshown,
                    down: [0, 1].map(|i| p.gaps[i].summary(p.until.map(|u| u[i]))),
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::pack::{Reader, Track, Writer};
    use synth_common::wire::MediaFields;

    fn media(
        user: &str,
        media_type: i32,
        sequence: u64,
        timestamp_ms: f64,
        data: &[u8],
    ) -> Vec<u8> {
        let f = MediaFields {
            media_type,
            sequence,
            timestamp_ms,
            ..MediaFields::default()
        };
        wire::media_packet(user, &f, data)
    }

    /// A pack with one audio frame `[1, 2]` and one video frame `[3, 4, 5]`.
    fn digests() -> FrameDigests {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pack");
        let mut w = Writer::create(&path).unwrap();
        let a = w.add_track(Track::opus("audio", 32_000, 960)).unwrap();
        w.push_frame(a, &[1, 2], 0, 960, true).unwrap();
        let v = w
            .add_track(Track::vp9("video", (16, 16), 30, 1000, 1800))
            .unwrap();
        w.push_frame(v, &[3, 4, 5], 0, 1800, true).unwrap();
        w.finish().unwrap();
        FrameDigests::new(&Reader::open(&path).unwrap())
    }

    struct Fixture {
        ours: HashMap<Box<[u8]>, usize>,
        clients: Vec<Arc<ClientStats>>,
        digests: FrameDigests,
    }

    impl Fixture {
        fn new() -> Fixture {
            let clients: Vec<Arc<ClientStats>> = (0..2).map(|_| Arc::default()).collect();
            Fixture {
                ours: [(b"a".as_slice().into(), 0), (b"me".as_slice().into(), 1)].into(),
                clients,
                digests: digests(),
            }
        }

        fn cx(&self) -> Context<'_> {
            Context {
                ours: &self.ours,
                clients: &self.clients,
                digests: &self.digests,
                late_after_ms: [100.0, 500.0],
            }
        }
    }

    #[test]
    fn counts_loss_lateness_latency_and_integrity_per_sender() {
        let f = Fixture::new();
        let cx = f.cx();
        let stats = &f.clients[1];
        f.clients[0].first_packet_unix_us.store(990_000, Relaxed);
        f.clients[0]
            .stay_first_packet_unix_us
            .store(990_000, Relaxed);
        let mut acc = Accounting::new("me");
        acc.join(995_000, [(b"a".as_slice().into(), 0, [0, 0])]);
        // a (ours): audio 0, 2, 1 (reordered), 5 (3 and 4 missing), 5 again.
        for (k, seq) in [0, 2, 1, 5, 5].into_iter().enumerate() {
            let h = acc.handle(
                &media("a", media_type::AUDIO, seq, 1000.0, &[1, 2]),
                1012.5,
                &cx,
                stats,
            );
            assert_eq!(h.latency, Some((Media::Audio, 12_500, true)));
            // Seen 1012.5 ms after the epoch, 5 ms after the receiver joined.
            let vis = (k == 0).then_some(17_500);
            assert_eq!(h.visibility_us, vis, "{k}");
        }
        // 150 ms late (budget 100 ms), and a corrupted frame.
        acc.handle(
            &media("a", media_type::AUDIO, 6, 1000.0, &[1, 2]),
            1150.0,
            &cx,
            stats,
        );
        acc.handle(
            &media("a", media_type::AUDIO, 7, 1000.0, &[1, 9]),
            1001.0,
            &cx,
            stats,
        );
        // b is not ours: cross-host latency, no integrity check.
        let h = acc.handle(
            &media("b", media_type::VIDEO, 7, 1000.0, &[0]),
            1012.5,
            &cx,
            stats,
        );
        assert_eq!(h.latency, Some((Media::Video, 12_500, false)));
        assert_eq!(h.visibility_us, None);
        assert_eq!(stats.recv_packets[Media::Audio as usize].load(Relaxed), 7);
        assert_eq!(stats.missing[0].load(Relaxed), 2);
        assert_eq!(stats.reordered[0].load(Relaxed), 1);
        assert_eq!(stats.duplicates[0].load(Relaxed), 1);
        assert_eq!(stats.late[0].load(Relaxed), 1);
        assert_eq!(stats.corrupted[0].load(Relaxed), 1);
        assert_eq!(stats.corrupted[1].load(Relaxed), 0);
        // 3 arrives late: no longer missing.
        acc.handle(
            &media("a", media_type::AUDIO, 3, 1000.0, &[1, 2]),
            1012.5,
            &cx,
            stats,
        );
        assert_eq!(stats.missing[0].load(Relaxed), 1);
        let peers: HashMap<Vec<u8>, PeerView> =
            acc.peers().map(|(id, v)| (id.to_vec(), v)).collect();
        let a = &peers[&b"a"[..]];
        assert!(a.ours);
        assert_eq!(a.expect_from, Some([0, 0]));
        assert_eq!(a.media[0].seq.lost(), 1);
        assert_eq!(peers[&b"b"[..]].media[1].seq.received, 1);
        assert!(!peers[&b"b"[..]].ours);
    }

    #[test]
    fn keyframe_requests_meeting_events_congestion_and_garbage() {
        let f = Fixture::new();
        let cx = f.cx();
        let stats = &f.clients[1];
        let mut acc = Accounting::new("me");
        let h = acc.handle(&wire::keyframe_request("x", "me", 1.0), 2.0, &cx, stats);
        assert!(h.keyframe_request);
        let h = acc.handle(&wire::keyframe_request("x", "other", 1.0), 2.0, &cx, stats);
        assert!(!h.keyframe_request, "aimed at somebody else");
        let who = wire::Participant {
            user_id: "x",
            session_id: 1,
            display_name: "x",
        };
        acc.handle(&wire::participant("m", who, true), 0.0, &cx, stats);
        acc.handle(&wire::participant("m", who, false), 0.0, &cx, stats);
        // CONGESTION goes to the whole room: only the one about this
        // client's session (as SESSION_ASSIGNED said) is its own; before it
        // knows its session, none is.
        acc.handle(&wire::congestion("x", 1), 0.0, &cx, stats);
        acc.handle(&wire::session_assigned(1), 0.0, &cx, stats);
        acc.handle(&wire::congestion("x", 1), 0.0, &cx, stats);
        acc.handle(&wire::congestion("x", 2), 0.0, &cx, stats);
        acc.handle(&[0xff, 0xff], 0.0, &cx, stats);
        assert_eq!(stats.keyframe_requests.load(Relaxed), 1);
        assert_eq!(
            (
                stats.joined_events.load(Relaxed),
                stats.left_events.load(Relaxed),
                stats.congestion.load(Relaxed),
                stats.room_congestion.load(Relaxed),
                stats.bad_packets.load(Relaxed)
            ),
            (1, 1, 1, 2, 1)
        );
        // A new session: its id is not known until the server says again.
        acc.session(Instant::now());
        acc.handle(&wire::congestion("x", 1), 0.0, &cx, stats);
        assert_eq!(stats.room_congestion.load(Relaxed), 3);
        // Upstream RnD's newer types and a type nobody knows: counted by
        // name, never an error. Field 1 is packet_type, 2 user_id.
        for t in [11u8, 13, 13, 99] {
            acc.handle(&[0x08, t, 0x12, 0x01, b'x'], 0.0, &cx, stats);
        }
        let newer: Vec<u64> = stats.newer_types.iter().map(|n| n.load(Relaxed)).collect();
        // peer_event, viewport, layer_preference, layer_hint, downlink_congestion, reaction, unknown
        assert_eq!(newer, [0, 1, 0, 2, 0, 0, 1]);
        assert_eq!(stats.bad_packets.load(Relaxed), 1);
        // LAYER_HINT: the whole room hears each; only the one about this
        // client's session is for its sender.
        use synth_common::layers::{layer_hint, Hint, FULL_LADDER};
        let video = |max_layer| Hint {
            kind: wire::media_kind::VIDEO,
            max_layer,
        };
        acc.handle(&wire::session_assigned(5), 0.0, &cx, stats);
        acc.handle(&layer_hint("x", 6, &[video(0)]), 0.0, &cx, stats);
        assert_eq!(stats.layer_hints.load(Relaxed), 0);
        assert_eq!(
            stats.layer_hint.load(Relaxed),
            0,
            "no hint yet: every layer"
        );
        acc.handle(&layer_hint("me", 5, &[video(1)]), 0.0, &cx, stats);
        assert_eq!(stats.layer_hint.load(Relaxed), 2, "layers up to 1");
        acc.handle(&layer_hint("me", 5, &[video(FULL_LADDER)]), 0.0, &cx, stats);
        assert_eq!(stats.layer_hint.load(Relaxed), 0, "every layer again");
        assert_eq!(stats.layer_hints.load(Relaxed), 2);
    }

    #[test]
    fn a_browser_answers_every_request_of_the_room_and_times_its_probes() {
        let f = Fixture::new();
        let cx = f.cx();
        let stats = &f.clients[1];
        let t0 = Instant::now();
        let mut acc = Accounting::browser("me", t0);
        // Upstream's web client answers every request it hears, whoever it
        // asks; SCREEN asks for the screen share's key frame.
        let h = acc.handle(&wire::keyframe_request("x", "other", 1.0), 2.0, &cx, stats);
        assert!(h.keyframe_request && !h.keyframe_screen);
        let screen = wire::keyframe_request_for("x", "me", true, 1.0);
        let h = acc.handle(&screen, 2.0, &cx, stats);
        assert!(h.keyframe_request && h.keyframe_screen);
        assert_eq!(stats.keyframe_requests.load(Relaxed), 1, "one was for it");
        let kind = |k: Kind| stats.control_received[k as usize].load(Relaxed);
        assert_eq!(kind(Kind::KeyframeRequest), 2);
        // The echo of its probe: the time since the probe's stamp on its
        // own clock; another client's echo is not its own.
        let stamp = acc.probe_timestamp(t0);
        let h = acc.handle(&wire::rtt("me", stamp), 0.0, &cx, stats);
        let rtt = h.rtt_ms.expect("an echo of its own probe");
        assert!((0.0..60_000.0).contains(&rtt), "{rtt}");
        assert_eq!(acc.control().unwrap().rtt_mean(), Some(rtt));
        assert_eq!(
            acc.handle(&wire::rtt("x", stamp), 0.0, &cx, stats).rtt_ms,
            None
        );
        assert_eq!(kind(Kind::Rtt), 1);
        // Others' DIAGNOSTICS and HEALTH are counted.
        let d = wire::Diagnostic {
            peer_session: 5,
            reporter: "x",
            timestamp_ms: 1,
            media_type: media_type::VIDEO,
            fps: 30.0,
            kbps: 500,
        };
        acc.handle(&wire::diagnostics("x", &d), 0.0, &cx, stats);
        assert_eq!(kind(Kind::Diagnostics), 1);
        // A bot never times probes.
        let mut bot = Accounting::new("me");
        assert_eq!(
            bot.handle(&wire::rtt("me", 0.0), 0.0, &cx, stats).rtt_ms,
            None
        );
        assert!(bot.control().is_none());
    }

    /// A receiver that leaves on purpose is owed nothing sent while it was
    /// away, nor after it left for good; a sender's pause is no freeze.
    #[test]
    fn leaving_and_pausing_on_purpose_are_not_loss_or_freezes() {
        let f = Fixture::new();
        let cx = f.cx();
        let stats = &f.clients[1];
        // Sends `seqs` of a's `kind` one `step` ms apart from `t`; the time after.
        let feed = |acc: &mut Accounting, kind, seqs: std::ops::Range<u64>, mut t, step| {
            let data: &[u8] = if kind == media_type::AUDIO {
                &[1, 2]
            } else {
                &[3, 4, 5]
            };
            for seq in seqs {
                acc.handle(&media("a", kind, seq, t, data), t, &cx, stats);
                t += step;
            }
            t
        };
        let mut acc = Accounting::new("me");
        let a = || [(b"a".as_slice().into(), 0usize, [0u64, 0u64])];
        acc.join(1, a());
        let t = feed(&mut acc, media_type::AUDIO, 0..10, 1000.0, 20.0);
        // Left when a's next number was 10, back when it was 50.
        acc.leave([(b"a".as_slice().into(), 0, [10, 0])]);
        acc.rejoin(2, [(b"a".as_slice().into(), 0, [50, 0])]);
        feed(&mut acc, media_type::AUDIO, 50..60, t, 20.0);
        let views: HashMap<Vec<u8>, PeerView> =
            acc.peers().map(|(id, v)| (id.to_vec(), v)).collect();
        let v = &views[&b"a"[..]];
        assert_eq!(v.until, None, "back in the meeting");
        let c = v.media[0].seq;
        assert_eq!((c.missing(), c.excused, c.distinct), (0, 40, 20));
        let e = synth_common::quality::Exact::check(&c, 0, 60);
        assert_eq!(e.lost, 0);
        assert_eq!(stats.missing[0].load(Relaxed), 0);
        // Gone for good when a's next number was 63: 60..63 were in flight,
        // not owed; the report bounds the exact check after the last one
        // that arrived (video: nothing heard in this stay, so a's next).
        acc.leave([(b"a".as_slice().into(), 0, [63, 7])]);
        let v = acc.peers().next().unwrap().1;
        assert_eq!(v.until, Some([60, 7]));
        // Video: camera off for 5 s is a resume on the sender's side.
        let mut acc = Accounting::new("me");
        acc.join(1, a());
        let t = feed(&mut acc, media_type::VIDEO, 0..20, 0.0, 33.0);
        f.clients[0].resumes[1].fetch_add(1, Relaxed);
        feed(&mut acc, media_type::VIDEO, 20..30, t + 5000.0, 33.0);
        assert_eq!(stats.freezes.load(Relaxed), 0);
        let v = acc.peers().next().unwrap().1;
        assert!(v.media[1].watched_ms < 1000.0, "{}", v.media[1].watched_ms);
    }

    /// Issue #24: what a sender sent while the receiver's session was down
    /// (from when the receiver knew until its next session was up) is told
    /// apart from the rest of the exact loss; what arrived of it on the new
    /// session is not missed, and a leave on purpose excuses the rest.
    #[test]
    fn numbers_sent_while_the_receiver_was_down_are_told_apart() {
        let f = Fixture::new();
        let cx = f.cx();
        let stats = &f.clients[1];
        let a = |next: u64| [(b"a".as_slice().into(), 0usize, [next, 0u64])];
        let feed = |acc: &mut Accounting, seqs: &[u64]| {
            for &seq in seqs {
                acc.handle(
                    &media("a", media_type::AUDIO, seq, 1.0, &[1, 2]),
                    1.0,
                    &cx,
                    stats,
                );
            }
        };
        let mut acc = Accounting::new("me");
        acc.join(1, a(0));
        // 0..10 arrive but 7; 10 and 11 were in flight when the session died.
        feed(&mut acc, &[0, 1, 2, 3, 4, 5, 6, 8, 9]);
        // Known down when a's next number was 12, up again at 20; 19 was
        // sent while the new session was set up and arrived on it.
        acc.down(a(12));
        let open = acc.peers().next().unwrap().1.down[0];
        assert_eq!((open.open_from, open.closed), (Some(12), 0));
        acc.up(a(20));
        feed(&mut acc, &[19, 20, 21]);
        let v = acc.peers().next().unwrap().1;
        let d = v.down[0];
        assert_eq!((d.closed, d.open_from, d.arrived), (8, None, 1));
        let e = synth_common::quality::Exact::check(&v.media[0].seq, 0, 22);
        // Lost: 7, 10, 11 (while up) and 12..19 (while down).
        assert_eq!(e.lost, 10);
        assert_eq!(d.missed(22, e.lost), 7);
        assert_eq!(v.down[1], Down::default(), "video sent nothing");
        // Down again at 22 and never back: the span runs to a's last number.
        acc.down(a(22));
        let d = acc.peers().next().unwrap().1.down[0];
        assert_eq!(d.open_from, Some(22));
        assert_eq!(d.missed(30, u64::MAX), 7 + 8);
        // Down at 22, the planned session over while down, back on purpose
        // at 40: what the tracker excuses (from 22 on) is no missed gap.
        acc.rejoin(2, a(40));
        let v = acc.peers().next().unwrap().1;
        let e = synth_common::quality::Exact::check(&v.media[0].seq, 0, 40);
        assert_eq!((e.lost, v.down[0].missed(40, e.lost)), (10, 7));
        // A sender of another process has no numbers to check: no span.
        let mut acc = Accounting::new("me");
        acc.join(1, a(0));
        acc.down([(b"b".as_slice().into(), 5, [3, 3])]);
        assert!(acc.peers().all(|(_, v)| v.down == [Down::default(); 2]));
    }
}
