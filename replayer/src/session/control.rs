//! What a `browser` client sends besides its media, as upstream's web client
//! does, worked out from what it receives: sans-IO, driven by the receive
//! task with each packet and the time.
//!
//! Upstream's web client (`videocall-client`, main), and what this follows:
//! - **DIAGNOSTICS** every 500 ms for each (peer, medium) it has received
//!   (`diagnostics/diagnostics_manager.rs`: a tracker per peer session and
//!   medium, made on its first frame and never removed; frames and bytes
//!   counted, the rate taken when a frame comes a second or more after the
//!   last one was taken, and sent as it stands, even when the peer is gone).
//! - **HEALTH** every 5 s once a peer has been seen (`health_reporter.rs`),
//!   each peer by its session id: whether its audio and video arrive, its
//!   video frame rate.
//! - **RTT probes**: every 200 ms for the 2 s a client takes to choose its
//!   server, then every second (`connection/connection_controller.rs`); the
//!   server echoes each to its sender; the mean of the last 10 goes into HEALTH.
//! - **KEYFRAME_REQUEST** (`decode/peer_decode_manager.rs`): a gap in a
//!   peer's video or screen numbers still open when a packet of that stream
//!   comes 1 s or more after it began, at most one per 500 ms per peer and
//!   stream; a key frame closes the gap. A screen share joined mid-stream
//!   is asked for a key frame every 500 ms until one comes; a camera is not.
//!
//! The figures are those this client measures; a field upstream fills from
//! its decoders or NetEQ (which a replaying client does not run) stays unset.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use synth_common::wire::{self, media_type, PeerHealth};

/// DIAGNOSTICS period.
pub const DIAGNOSTICS_EVERY: Duration = Duration::from_millis(500);
/// HEALTH period.
pub const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// How long a client probes before it settles on its server (the election).
pub const ELECTION: Duration = Duration::from_secs(2);
/// RTT probe period while electing.
pub const ELECTION_PROBE_EVERY: Duration = Duration::from_millis(200);
/// RTT probe period after.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A gap in a peer's video this old when a packet comes asks for a key frame.
pub const KEYFRAME_GAP: Duration = Duration::from_secs(1);
/// The least time between two key-frame requests to one peer's stream.
pub const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(500);
/// RTT samples the mean is taken over.
pub const RTT_SAMPLES: usize = 10;
/// A rate is taken when a frame comes this long after the last one was.
const RATE_PERIOD: Duration = Duration::from_secs(1);
/// A peer's audio or video counts as arriving if it did within this long.
const RECENT: Duration = HEALTH_EVERY;

/// The media a browser reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Opus.
    Audio,
    /// The camera.
    Video,
    /// A screen share.
    Screen,
}

impl Kind {
    fn media_type(self) -> i32 {
        match self {
            Kind::Audio => media_type::AUDIO,
            Kind::Video => media_type::VIDEO,
            Kind::Screen => media_type::SCREEN,
        }
    }
}

/// Frames and bytes of one (peer, medium), and its rate when last taken.
#[derive(Debug, Clone, Copy)]
struct Rate {
    frames: u32,
    bytes: u64,
    taken: Instant,
    fps: f32,
    kbps: u32,
}

impl Rate {
    fn new(now: Instant) -> Rate {
        Rate {
            frames: 0,
            bytes: 0,
            taken: now,
            fps: 0.0,
            kbps: 0,
        }
    }

    fn frame(&mut self, bytes: usize, now: Instant) {
        self.frames += 1;
        self.bytes += bytes as u64;
        let elapsed = now.saturating_duration_since(self.taken);
        if elapsed >= RATE_PERIOD {
            let ms = elapsed.as_secs_f64() * 1000.0;
            self.fps = (self.frames as f64 / ms * 1000.0) as f32;
            self.kbps = (self.bytes as f64 * 8.0 / ms) as u32;
            self.frames = 0;
            self.bytes = 0;
            self.taken = now;
        }
    }
}

/// What one peer's last audio and video were, for HEALTH.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    audio: Option<Instant>,
    video: Option<Instant>,
}

/// One peer's video or screen numbers, for key-frame requests.
#[derive(Debug, Clone, Copy, Default)]
struct Gap {
    last: Option<u64>,
    /// When the gap now open began.
    open: Option<Instant>,
    /// A screen share joined mid-stream: waiting for its first key frame.
    waiting: bool,
    asked: Option<Instant>,
}

/// HEALTH's figures: each peer by its server session id, and the mean
/// echo time of the last RTT probes (ms).
pub type HealthDue = (Vec<(u64, PeerHealth)>, Option<f64>);

/// A key-frame request to send: of `target`'s camera, or its screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The peer asked (its user id).
    pub target: Box<[u8]>,
    /// Its screen share rather than its camera.
    pub screen: bool,
}

/// One received media packet, as the browser's trackers see it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The sender's user id.
    pub peer: &'a [u8],
    /// The sender's server session id (from the relayed wrapper).
    pub session: u64,
    /// Its medium.
    pub kind: Kind,
    /// Its sequence number, when it has one.
    pub sequence: Option<u64>,
    /// A key frame.
    pub key: bool,
    /// The `MediaPacket`'s bytes.
    pub bytes: usize,
}

/// A browser's control traffic over its sessions; see the module's doc.
#[derive(Debug)]
pub struct Control {
    started: Instant,
    next_probe: Instant,
    next_diagnostics: Instant,
    next_health: Instant,
    rates: BTreeMap<(u64, Kind), Rate>,
    seen: BTreeMap<u64, Seen>,
    gaps: HashMap<(Box<[u8]>, bool), Gap>,
    asked: HashMap<(Box<[u8]>, bool), Instant>,
    asks: Vec<Ask>,
    rtts: VecDeque<f64>,
}

impl Control {
    /// A browser whose session (and its server election) began at `now`.
    pub fn new(now: Instant) -> Control {
        Control {
            started: now,
            next_probe: now,
            next_diagnostics: now + DIAGNOSTICS_EVERY,
            next_health: now + HEALTH_EVERY,
            rates: BTreeMap::new(),
            seen: BTreeMap::new(),
            gaps: HashMap::new(),
            asked: HashMap::new(),
            asks: Vec::new(),
            rtts: VecDeque::new(),
        }
    }

    /// A new session began at `now` (a reconnection): the election and
    /// its probes start again; what was measured stays, as a web client
    /// keeps its trackers across reconnections.
    pub fn session(&mut self, now: Instant) {
        self.started = now;
        self.next_probe = now;
    }

    /// When something is next due.
    pub fn next_wake(&self) -> Instant {
        self.next_probe
            .min(self.next_diagnostics)
            .min(self.next_health)
    }

    /// Whether an RTT probe is due at `now` (the probe clock moves on).
    pub fn probe_due(&mut self, now: Instant) -> bool {
        if now < self.next_probe {
            return false;
        }
        let every = if now < self.started + ELECTION {
            ELECTION_PROBE_EVERY
        } else {
            PROBE_EVERY
        };
        self.next_probe = next(self.next_probe, every, now);
        true
    }

    /// The DIAGNOSTICS due at `now`, one per (peer, medium) ever received,
    /// built for `me`; none when not due.
    pub fn diagnostics_due(&mut self, me: &str, unix_ms: u64, now: Instant) -> Vec<Vec<u8>> {
        if now < self.next_diagnostics {
            return Vec::new();
        }
        self.next_diagnostics = next(self.next_diagnostics, DIAGNOSTICS_EVERY, now);
        self.rates
            .iter()
            .map(|(&(session, kind), r)| {
                wire::diagnostics(
                    me,
                    &wire::Diagnostic {
                        peer_session: session,
                        reporter: me,
                        timestamp_ms: unix_ms,
                        media_type: kind.media_type(),
                        fps: r.fps,
                        kbps: r.kbps,
                    },
                )
            })
            .collect()
    }

    /// When HEALTH is due at `now` and a peer has been seen: each peer by its
    /// session id, and the mean RTT of the last probes.
    pub fn health_due(&mut self, now: Instant) -> Option<HealthDue> {
        if now < self.next_health {
            return None;
        }
        self.next_health = next(self.next_health, HEALTH_EVERY, now);
        if self.seen.is_empty() {
            return None;
        }
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) <= RECENT);
        let peers = self
            .seen
            .iter()
            .map(|(&session, s)| {
                let video = self.rates.get(&(session, Kind::Video));
                (
                    session,
                    PeerHealth {
                        can_listen: recent(s.audio),
                        can_see: recent(s.video),
                        video_fps: video.map(|r| f64::from(r.fps)),
                    },
                )
            })
            .collect();
        Some((peers, self.rtt_mean()))
    }

    /// An echo of this client's probe came back after `rtt_ms`.
    pub fn echo(&mut self, rtt_ms: f64) {
        if self.rtts.len() == RTT_SAMPLES {
            self.rtts.pop_front();
        }
        self.rtts.push_back(rtt_ms);
    }

    /// The mean of the last [`RTT_SAMPLES`] echoes, ms.
    pub fn rtt_mean(&self) -> Option<f64> {
        (!self.rtts.is_empty()).then(|| self.rtts.iter().sum::<f64>() / self.rtts.len() as f64)
    }

    /// Counts a received media packet; a key frame that answers this
    /// client's request gives how long after the request it came.
    pub fn frame(&mut self, f: Frame<'_>, now: Instant) -> Option<Duration> {
        self.rates
            .entry((f.session, f.kind))
            .or_insert_with(|| Rate::new(now))
            .frame(f.bytes, now);
        let seen = self.seen.entry(f.session).or_default();
        match f.kind {
            Kind::Audio => {
                seen.audio = Some(now);
                return None;
            }
            Kind::Video => seen.video = Some(now),
            Kind::Screen => {}
        }
        let screen = f.kind == Kind::Screen;
        let waited = if f.key {
            self.asked
                .remove(&(f.peer.into(), screen))
                .map(|t| now.saturating_duration_since(t))
        } else {
            None
        };
        self.gap(f, screen, now);
        waited
    }

    /// Follows a peer's video or screen numbers; asks for a key frame as the
    /// module's doc says.
    fn gap(&mut self, f: Frame<'_>, screen: bool, now: Instant) {
        let key = (Box::<[u8]>::from(f.peer), screen);
        let first = !self.gaps.contains_key(&key);
        let g = self.gaps.entry(key).or_default();
        if first && screen && !f.key {
            g.waiting = true;
        }
        if f.key {
            g.open = None;
            g.waiting = false;
        } else if let (Some(seq), Some(last)) = (f.sequence, g.last) {
            if seq > last + 1 && g.open.is_none() {
                g.open = Some(now);
            }
        }
        if let Some(seq) = f.sequence {
            g.last = Some(g.last.map_or(seq, |l| l.max(seq)));
        }
        let gap_old = g
            .open
            .is_some_and(|t| now.saturating_duration_since(t) >= KEYFRAME_GAP);
        let spaced = g
            .asked
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_REQUEST_EVERY);
        if (gap_old || g.waiting) && spaced {
            g.asked = Some(now);
            self.asked.entry((f.peer.into(), screen)).or_insert(now);
            self.asks.push(Ask {
                target: f.peer.into(),
                screen,
            });
        }
    }

    /// The key-frame requests to send now.
    pub fn take_asks(&mut self) -> Vec<Ask> {
        std::mem::take(&mut self.asks)
    }
}

/// The next time of a clock that ticks every `every` from `due`: on its
/// grid, but never in the past (no burst after a long stall).
fn next(due: Instant, every: Duration, now: Instant) -> Instant {
    let n = due + every;
    if n <= now {
        now + every
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::wire::{packet_type, parse};

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn video(peer: &[u8], seq: u64, key: bool) -> Frame<'_> {
        Frame {
            peer,
            session: 7,
            kind: Kind::Video,
            sequence: Some(seq),
            key,
            bytes: 1000,
        }
    }

    /// Probes every 200 ms for the first 2 s, then every second.
    #[test]
    fn probes_follow_the_election_then_the_second() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        let due: Vec<u64> = (0..=5000)
            .step_by(10)
            .filter(|&t| c.probe_due(ms(t0, t)))
            .collect();
        assert_eq!(
            due,
            [0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000, 3000, 4000, 5000]
        );
        // A new session probes as a new election.
        c.session(ms(t0, 5100));
        assert!(c.probe_due(ms(t0, 5100)));
        assert!(c.probe_due(ms(t0, 5300)) && !c.probe_due(ms(t0, 5400)));
    }

    /// One DIAGNOSTICS per (peer, medium) every 500 ms, with the rate of the
    /// last second; HEALTH every 5 s once a peer was seen.
    #[test]
    fn diagnostics_per_peer_and_medium_and_health_every_5_s() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        assert!(
            c.diagnostics_due("me", 1, ms(t0, 500)).is_empty(),
            "nothing received"
        );
        for k in 0..=60u64 {
            let now = ms(t0, 1000 + k * 1000 / 30);
            c.frame(video(b"p", k, k == 0), now);
            c.frame(
                Frame {
                    kind: Kind::Audio,
                    sequence: None,
                    key: true,
                    bytes: 80,
                    ..video(b"p", k, false)
                },
                now,
            );
        }
        let d = c.diagnostics_due("me", 1, ms(t0, 3000));
        assert_eq!(d.len(), 2, "audio and video of one peer");
        let w = parse(&d[1]).unwrap();
        assert_eq!(w.packet_type, packet_type::DIAGNOSTICS);
        assert!(
            c.diagnostics_due("me", 1, ms(t0, 3100)).is_empty(),
            "not again before 500 ms"
        );
        assert_eq!(c.diagnostics_due("me", 1, ms(t0, 3500)).len(), 2);
        let r = c.rates[&(7, Kind::Video)];
        assert!((r.fps - 30.0).abs() < 1.0, "{}", r.fps);
        assert!(c.health_due(ms(t0, 4000)).is_none(), "first at 5 s");
        c.echo(2.0);
        c.echo(4.0);
        let (peers, rtt) = c.health_due(ms(t0, 5000)).unwrap();
        assert_eq!(rtt, Some(3.0));
        assert_eq!(peers.len(), 1);
        assert!(peers[0].1.can_listen && peers[0].1.can_see);
        // Ten seconds later nothing arrived: the peer is kept, silent.
        let (peers, _) = c.health_due(ms(t0, 15_000)).unwrap();
        assert!(!peers[0].1.can_listen && !peers[0].1.can_see);
    }

    /// No HEALTH before a peer is seen.
    #[test]
    fn no_health_without_a_peer() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        assert!(c.health_due(ms(t0, 5000)).is_none());
        assert!(c.health_due(ms(t0, 10_000)).is_none());
    }

    /// A gap asks for a key frame when a packet comes 1 s after it began,
    /// then at most every 500 ms, and a key frame ends it and answers it.
    #[test]
    fn a_gap_asks_for_a_key_frame_after_a_second() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        c.frame(video(b"p", 0, true), ms(t0, 0));
        c.frame(video(b"p", 1, false), ms(t0, 33));
        // 2 and 3 lost.
        c.frame(video(b"p", 4, false), ms(t0, 133));
        c.frame(video(b"p", 5, false), ms(t0, 900));
        assert!(c.take_asks().is_empty(), "the gap is younger than 1 s");
        c.frame(video(b"p", 6, false), ms(t0, 1133));
        assert_eq!(
            c.take_asks(),
            [Ask {
                target: b"p"[..].into(),
                screen: false
            }]
        );
        c.frame(video(b"p", 7, false), ms(t0, 1400));
        assert!(c.take_asks().is_empty(), "500 ms apart");
        c.frame(video(b"p", 8, false), ms(t0, 1700));
        assert_eq!(c.take_asks().len(), 1);
        let waited = c.frame(video(b"p", 9, true), ms(t0, 1800));
        assert_eq!(
            waited,
            Some(Duration::from_millis(667)),
            "from the first request"
        );
        c.frame(video(b"p", 10, false), ms(t0, 3000));
        assert!(c.take_asks().is_empty(), "the key frame closed the gap");
    }

    /// A screen share joined mid-stream asks for its key frame at once and
    /// every 500 ms until it comes; a camera joined mid-stream does not.
    #[test]
    fn a_screen_joined_mid_stream_asks_until_its_key_frame() {
        let t0 = Instant::now();
        let mut c = Control::new(t0);
        let screen = |seq, key| Frame {
            kind: Kind::Screen,
            ..video(b"s", seq, key)
        };
        c.frame(video(b"v", 40, false), ms(t0, 0));
        assert!(
            c.take_asks().is_empty(),
            "a camera waits for its periodic key frame"
        );
        c.frame(screen(10, false), ms(t0, 0));
        assert_eq!(
            c.take_asks(),
            [Ask {
                target: b"s"[..].into(),
                screen: true
            }]
        );
        c.frame(screen(11, false), ms(t0, 200));
        assert!(c.take_asks().is_empty());
        c.frame(screen(12, false), ms(t0, 600));
        assert_eq!(c.take_asks().len(), 1);
        assert_eq!(
            c.frame(screen(13, true), ms(t0, 700)),
            Some(Duration::from_millis(700))
        );
        c.frame(screen(14, false), ms(t0, 1300));
        assert!(c.take_asks().is_empty());
    }
}
