//! A client's send schedule: which frame of the pack is due when, with what
//! sequence number, and the bytes of its packet; when a heartbeat is due;
//! what a key-frame request changes. Sans-IO: every decision takes `now`, so
//! the tests drive it on explicit instants.
//!
//! [`Schedule::poll`] says what to send at `now` ([`Due`]); the client's
//! driver builds those packets ([`Lane::next_packet`]) and writes them, then
//! sleeps until [`Schedule::next_wake`].
//!
//! A [`Lane`] walks one track of the pack in a loop. Due times follow the
//! frames' own durations from a start instant (so a 20 ms Opus track is due
//! every 20 ms and a 30 fps VP9 track every 33.3 ms without drift); sequence
//! numbers only ever rise, across loops and reconnects. Building a packet is a
//! prefix written into the client's reused buffer plus a reference-counted
//! slice of the pack's buffer: the frame itself is never copied.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use synth_common::pack::Reader;
use synth_common::wire::{media_type, MediaFields, MediaPrefix};

use crate::metrics::Media;

/// One packet ready to send: `head` then `data` on one stream.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The wrapper and media header (per client).
    pub head: Bytes,
    /// The frame, shared with the pack's buffer.
    pub data: Bytes,
    /// Audio or video.
    pub media: Media,
    /// How late this packet is against its schedule.
    pub lateness: Duration,
    /// Frames skipped because the lane fell too far behind (see [`Backlog`]).
    pub skipped: Option<Backlog>,
    /// The frame's position in its track (simulcast layers send the frame at
    /// the same position of theirs).
    pub pos: usize,
}

/// Frames a lane skipped instead of bursting them: the oldest was `late` behind
/// its schedule, one every `interval`. Recorded as if each had been sent
/// when the lane caught up, so a stall shows in send lateness instead of
/// vanishing from it (no coordinated omission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// How late the oldest skipped frame was.
    pub late: Duration,
    /// The frame interval.
    pub interval: Duration,
}

impl Packet {
    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.head.len() + self.data.len()
    }

    /// Whether the packet is empty (never: a frame is at least one byte).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a client's packet heads are written: one buffer carved into a
/// `Bytes` per packet, so building a head allocates once per ~50 packets
/// instead of once per packet.
#[derive(Debug, Default)]
pub struct Heads {
    buf: BytesMut,
}

/// Bytes reserved at a time for heads.
const HEADS_CHUNK: usize = 4096;

impl Heads {
    /// Copies `head` into the buffer and returns it as shared bytes.
    pub fn push(&mut self, head: &[u8]) -> Bytes {
        if self.buf.capacity() < head.len() {
            self.buf.reserve(HEADS_CHUNK.max(head.len()));
        }
        self.buf.extend_from_slice(head);
        self.buf.split().freeze()
    }
}

/// One media lane of a client.
#[derive(Debug, Clone)]
pub struct Lane {
    track: usize,
    media: Media,
    media_type: i32,
    /// Frame index within the track.
    pos: usize,
    frames: usize,
    /// Next sequence number.
    seq: u64,
    /// The schedule's origin: the next frame is due `ticks` after it. Due times
    /// are computed from the total, so rounding never accumulates.
    origin: Instant,
    ticks: u64,
    /// Ticks per second of the track clock.
    clock: u64,
    /// A track to switch to at its next key frame (rendition adaptation).
    pending: Option<usize>,
    /// Stopped on purpose (muted, camera off, not sharing): never due.
    paused: bool,
}

/// A sender this far behind (a stall) resumes from now instead of bursting the backlog.
const MAX_BACKLOG: Duration = Duration::from_secs(1);

impl Lane {
    /// A lane over `track` of `pack`, first frame due at `start`.
    pub fn new(pack: &Reader, track: usize, media: Media, start: Instant) -> Lane {
        Lane {
            track,
            media,
            media_type: match media {
                Media::Audio => media_type::AUDIO,
                Media::Screen => media_type::SCREEN,
                _ => media_type::VIDEO,
            },
            pos: 0,
            frames: pack.frame_count(track).max(1),
            seq: 0,
            origin: start,
            ticks: 0,
            clock: pack
                .tracks()
                .get(track)
                .map_or(1, |t| t.clock_rate.max(1) as u64),
            pending: None,
            paused: false,
        }
    }

    /// Whether the lane is stopped on purpose.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Stops the lane on purpose (mute, camera off, share stopped): nothing
    /// is due until [`Lane::unpause`]. Its numbers stay where they are.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Starts a stopped lane again from `now`: a video lane from its next
    /// key frame (a decoder needs one after the gap), audio from where it
    /// stopped. Nothing of the gap is owed. No effect on a running lane.
    pub fn unpause(&mut self, pack: &Reader, now: Instant) {
        if !std::mem::take(&mut self.paused) {
            return;
        }
        if self.media != Media::Audio {
            if let Some(k) = pack.next_keyframe(self.track, self.pos) {
                self.pos = k;
            }
        }
        self.restart(now);
    }

    /// Walks another track from now on, at the same position modulo its
    /// length (audio: the speech and the silence track, whose frames all
    /// decode on their own). Numbering and timing go on.
    pub fn set_track(&mut self, pack: &Reader, track: usize) {
        if track == self.track {
            return;
        }
        self.track = track;
        self.frames = pack.frame_count(track).max(1);
        self.pos %= self.frames;
        self.pending = None;
    }

    /// Whether the due frame carries voice (the encoder's voice-activity
    /// flag; true for a pack without one).
    pub fn voice(&self, pack: &Reader) -> bool {
        pack.frame(self.track, self.pos).is_none_or(|f| f.voice)
    }

    /// Moves past the due frame without sending it (Opus DTX: a silent frame
    /// that needs no packet). Sequence numbers do not move.
    pub fn skip(&mut self, pack: &Reader, now: Instant) {
        let duration = pack
            .frame(self.track, self.pos)
            .map_or(1, |f| f.duration as u64);
        self.pos = (self.pos + 1) % self.frames;
        self.ticks += duration;
        if now.saturating_duration_since(self.due()) > MAX_BACKLOG {
            self.restart(now);
        }
    }

    /// The track the lane walks.
    pub fn track(&self) -> usize {
        self.track
    }

    /// Switches to `track` at the first of its key frames that is due
    /// (rendition adaptation). The renditions' key frames must sit at the
    /// same positions, with the same frame count and clock
    /// (`Reader::keyframes_aligned`): position, sequence numbers and
    /// timestamps go on across the switch. Asking for the current track
    /// cancels a pending switch.
    pub fn switch_at_key(&mut self, track: usize) {
        self.pending = (track != self.track).then_some(track);
    }

    /// When the next frame is due.
    pub fn due(&self) -> Instant {
        let nanos = self.ticks as u128 * 1_000_000_000 / self.clock as u128;
        self.origin + Duration::from_nanos(nanos as u64)
    }

    /// Restarts the schedule: the next frame is due at `at`.
    fn restart(&mut self, at: Instant) {
        self.origin = at;
        self.ticks = 0;
    }

    /// The next sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The last packet built never went out: its sequence number goes to the
    /// next one (the frame is skipped, the schedule moves on).
    pub fn unsend(&mut self) {
        self.seq = self.seq.saturating_sub(1);
    }

    /// Audio or video.
    pub fn media(&self) -> Media {
        self.media
    }

    /// Builds the due frame's packet and moves on to the next frame.
    /// `timestamp_ms` is the send time (ms since the Unix epoch).
    pub fn next_packet(
        &mut self,
        pack: &Reader,
        prefix: &mut MediaPrefix,
        heads: &mut Heads,
        now: Instant,
        timestamp_ms: f64,
    ) -> Option<Packet> {
        if let Some(t) = self.pending {
            if pack.frame(t, self.pos).is_some_and(|f| f.key) {
                self.track = t;
                self.frames = pack.frame_count(t).max(1);
                self.pending = None;
            }
        }
        let frame = pack.frame(self.track, self.pos)?;
        let duration = frame.duration as u64;
        let fields = MediaFields {
            media_type: self.media_type,
            sequence: self.seq,
            timestamp_ms,
            duration_ms: duration as f64 * 1000.0 / self.clock as f64,
            // Every Opus packet decodes on its own; upstream marks audio "key".
            key: frame.key || self.media == Media::Audio,
            layer: 0,
        };
        let data = pack.frame_bytes(self.track, self.pos)?;
        let head = heads.push(prefix.build(&fields, data.len()));
        let pos = self.pos;
        let lateness = now.saturating_duration_since(self.due());
        self.seq += 1;
        self.pos = (self.pos + 1) % self.frames;
        self.ticks += duration;
        let behind = now.saturating_duration_since(self.due());
        let skipped = (behind > MAX_BACKLOG).then(|| {
            self.restart(now);
            Backlog {
                late: behind,
                interval: Duration::from_nanos(duration * 1_000_000_000 / self.clock),
            }
        });
        Some(Packet {
            head,
            data,
            media: self.media,
            lateness,
            skipped,
            pos,
        })
    }

    /// Makes the next key frame the next frame, due now (a key-frame request).
    /// Returns false when the track has no key frame.
    pub fn jump_to_keyframe(&mut self, pack: &Reader, now: Instant) -> bool {
        match pack.next_keyframe(self.track, self.pos) {
            Some(k) => {
                self.pos = k;
                self.restart(now);
                true
            }
            None => false,
        }
    }

    /// After a reconnect: resume on schedule from `now` rather than bursting;
    /// returns what was skipped.
    pub fn resume(&mut self, now: Instant, pack: &Reader) -> Option<Backlog> {
        let due = self.due();
        if due >= now {
            return None;
        }
        self.restart(now);
        let duration = pack
            .frame(self.track, self.pos)
            .map_or(0, |f| f.duration as u64);
        Some(Backlog {
            late: now - due,
            interval: Duration::from_nanos(duration * 1_000_000_000 / self.clock),
        })
    }
}

/// What is due at one wake-up, in the order to send it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Due {
    /// The audio lane's frame.
    pub audio: bool,
    /// The video lane's frame.
    pub video: bool,
    /// The screen lane's frame.
    pub screen: bool,
    /// A heartbeat.
    pub heartbeat: bool,
    /// A pending key-frame request moved the video or screen lane to its
    /// next key frame.
    pub keyframe_jump: bool,
}

/// How long a client on Opus DTX stays silent: in a pause it sends one
/// frame this often (comfort noise), as libopus and browsers do.
pub const DTX_INTERVAL: Duration = Duration::from_millis(400);

/// The least time between two heartbeats sent because a flag changed.
pub const FLAG_HEARTBEAT_GAP: Duration = Duration::from_millis(250);

/// The same for a `browser`: upstream's web client sends one at every
/// change, and its voice detector looks every 50 ms
/// (`VAD_POLL_INTERVAL_MS`), so speaking flags change at most that often.
pub const BROWSER_FLAG_HEARTBEAT_GAP: Duration = Duration::from_millis(50);

/// What a client's heartbeats say: what it sends and whether it speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// Microphone on (sends audio).
    pub audio: bool,
    /// Camera on (sends video).
    pub video: bool,
    /// Sharing its screen.
    pub screen: bool,
    /// Speaking now: its turn, and the frame it sent last carries voice.
    pub speaking: bool,
}

impl Flags {
    /// The flags as bits: 0 audio, 1 video, 2 screen, 3 speaking.
    pub fn bits(self) -> u8 {
        u8::from(self.audio)
            | u8::from(self.video) << 1
            | u8::from(self.screen) << 2
            | u8::from(self.speaking) << 3
    }
}

/// The audio lane's voice: which track it walks (speech when it is the
/// client's turn, silence otherwise) and Opus DTX.
#[derive(Debug, Clone)]
pub struct Voice {
    /// The speech track (the client's voice).
    pub speech: usize,
    /// The pack's silence track, for when it is not the client's turn.
    pub silence: Option<usize>,
    /// Opus DTX: a frame without voice is sent only every [`DTX_INTERVAL`].
    pub dtx: bool,
    talking: bool,
    last_sent: Option<Instant>,
    last_voice: bool,
}

impl Voice {
    /// A voice on `speech`, talking, that sends every frame (no DTX).
    pub fn new(speech: usize, silence: Option<usize>, dtx: bool) -> Voice {
        Voice {
            speech,
            silence,
            dtx,
            talking: true,
            last_sent: None,
            last_voice: false,
        }
    }
}

/// One client's whole send schedule: its lanes, heartbeats and the video
/// batch window. Kept across reconnects, so sequence numbers keep rising.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Audio, if the client sends it.
    pub audio: Option<Lane>,
    /// Video, if the client sends it.
    pub video: Option<Lane>,
    /// Its screen share, if the pack has one and the client may share
    /// (paused while it does not).
    pub screen: Option<Lane>,
    voice: Option<Voice>,
    next_heartbeat: Instant,
    heartbeat_interval: Duration,
    batch_window: Duration,
    /// Key frames asked for: the camera's, the screen share's.
    keyframe_requested: [bool; 2],
    /// The least time between two heartbeats sent because a flag changed.
    flag_gap: Duration,
    /// The flags of the last heartbeat built, and when.
    told: Option<(Flags, Instant)>,
}

impl Schedule {
    /// A schedule whose lanes and first heartbeat are due at their lanes'
    /// start; `batch_window` lets a video frame go that much early to ride
    /// with an audio packet.
    pub fn new(
        audio: Option<Lane>,
        video: Option<Lane>,
        start: Instant,
        heartbeat_interval: Duration,
        batch_window: Duration,
    ) -> Schedule {
        Schedule {
            audio,
            video,
            screen: None,
            voice: None,
            next_heartbeat: start,
            heartbeat_interval,
            batch_window,
            keyframe_requested: [false; 2],
            flag_gap: FLAG_HEARTBEAT_GAP,
            told: None,
        }
    }

    /// Adds a screen lane (paused until [`Schedule::share`]).
    pub fn with_screen(mut self, mut lane: Lane) -> Schedule {
        lane.pause();
        self.screen = Some(lane);
        self
    }

    /// Heartbeats for a changed flag go at most every `gap` (default
    /// [`FLAG_HEARTBEAT_GAP`]).
    pub fn with_flag_gap(mut self, gap: Duration) -> Schedule {
        self.flag_gap = gap;
        self
    }

    /// Gives the audio lane a voice: its speech and silence tracks and DTX.
    pub fn with_voice(mut self, voice: Voice) -> Schedule {
        self.voice = Some(voice);
        self
    }

    /// The lane that sends `media` (audio, video or screen), if it has one.
    pub fn lane_mut(&mut self, media: Media) -> Option<&mut Lane> {
        match media {
            Media::Audio => self.audio.as_mut(),
            Media::Video => self.video.as_mut(),
            Media::Screen => self.screen.as_mut(),
            _ => None,
        }
    }

    /// The lanes, in send order: audio, video, screen.
    fn lanes(&self) -> impl Iterator<Item = &Lane> {
        [&self.audio, &self.video, &self.screen]
            .into_iter()
            .flatten()
            .filter(|l| !l.paused)
    }

    /// When something is next due.
    pub fn next_wake(&self) -> Instant {
        let mut due = self.next_heartbeat;
        for lane in self.lanes() {
            due = due.min(lane.due());
        }
        due
    }

    /// A peer asked for a key frame of the camera, or of the screen share
    /// (`screen`): the next poll jumps that lane to it (the driver polls at
    /// once when it is told of a request).
    pub fn request_keyframe(&mut self, screen: bool) {
        self.keyframe_requested[usize::from(screen)] = true;
    }

    /// It is (or is no longer) this client's turn to speak: the audio lane
    /// walks the speech track or the silence track from its next frame
    /// (a pack without a silence track keeps the speech track: the plan
    /// refuses a conversation on such a pack).
    pub fn set_talking(&mut self, pack: &Reader, talking: bool) {
        let (Some(v), Some(lane)) = (self.voice.as_mut(), self.audio.as_mut()) else {
            return;
        };
        v.talking = talking;
        let track = if talking { Some(v.speech) } else { v.silence };
        if let Some(t) = track {
            lane.set_track(pack, t);
        }
    }

    /// Mutes (`on` false) or unmutes the microphone at `now`.
    pub fn set_audio(&mut self, pack: &Reader, on: bool, now: Instant) -> bool {
        set_lane(&mut self.audio, pack, on, now)
    }

    /// Turns the camera off or on at `now` (on again: from a key frame).
    pub fn set_video(&mut self, pack: &Reader, on: bool, now: Instant) -> bool {
        set_lane(&mut self.video, pack, on, now)
    }

    /// Starts or stops sharing the screen at `now` (from a key frame).
    pub fn share(&mut self, pack: &Reader, on: bool, now: Instant) -> bool {
        set_lane(&mut self.screen, pack, on, now)
    }

    /// What its heartbeats say now.
    pub fn flags(&self) -> Flags {
        let on = |l: &Option<Lane>| l.as_ref().is_some_and(|l| !l.paused);
        let audio = on(&self.audio);
        Flags {
            audio,
            video: on(&self.video),
            screen: on(&self.screen),
            speaking: audio
                && self
                    .voice
                    .as_ref()
                    .is_none_or(|v| v.talking && v.last_voice),
        }
    }

    /// A heartbeat is being sent with `flags` at `now`.
    pub fn told(&mut self, flags: Flags, now: Instant) {
        self.told = Some((flags, now));
    }

    /// What to send at `now`. The heartbeat clock moves on when one is due;
    /// the lanes move on as their packets are built. Audio keeps its exact
    /// cadence; a video frame due within the batch window rides with an
    /// audio packet sent now (one wake-up, shared datagrams and syscalls).
    /// A flag that changed since the last heartbeat brings the next one
    /// forward (at most one every [`FLAG_HEARTBEAT_GAP`]). With DTX, an
    /// audio frame without voice goes out only every [`DTX_INTERVAL`].
    pub fn poll(&mut self, pack: &Reader, now: Instant) -> Due {
        let mut due = Due::default();
        for (asked, lane) in self
            .keyframe_requested
            .iter_mut()
            .zip([&mut self.video, &mut self.screen])
        {
            if std::mem::take(asked) {
                if let Some(lane) = lane.as_mut().filter(|l| !l.paused) {
                    due.keyframe_jump |= lane.jump_to_keyframe(pack, now);
                }
            }
        }
        if let Some(lane) = self.audio.as_mut().filter(|l| !l.paused && l.due() <= now) {
            match self.voice.as_mut() {
                Some(v) => {
                    let voice = lane.voice(pack);
                    v.last_voice = voice;
                    let quiet = v.last_sent.is_some_and(|t| now < t + DTX_INTERVAL);
                    if v.dtx && !voice && quiet {
                        lane.skip(pack, now);
                    } else {
                        v.last_sent = Some(now);
                        due.audio = true;
                    }
                }
                None => due.audio = true,
            }
        }
        let video_by = if due.audio {
            now + self.batch_window
        } else {
            now
        };
        let by = |l: &Option<Lane>| l.as_ref().is_some_and(|l| !l.paused && l.due() <= video_by);
        due.video = by(&self.video);
        due.screen = by(&self.screen);
        if self.next_heartbeat <= now {
            due.heartbeat = true;
            self.next_heartbeat += self.heartbeat_interval;
            if self.next_heartbeat < now {
                self.next_heartbeat = now + self.heartbeat_interval;
            }
        } else if let Some((flags, at)) = self.told {
            if flags != self.flags() && now >= at + self.flag_gap {
                due.heartbeat = true;
            }
        }
        due
    }

    /// After a reconnect: resume on schedule from `now` rather than bursting;
    /// returns what each lane skipped.
    pub fn resume(&mut self, now: Instant, pack: &Reader) -> [Option<Backlog>; 2] {
        [&mut self.audio, &mut self.video].map(|l| {
            l.as_mut()
                .filter(|l| !l.paused)
                .and_then(|l| l.resume(now, pack))
        })
    }

    /// Back in the meeting after leaving it on purpose: every lane starts
    /// from `now` (video and screen from a key frame), nothing is owed.
    pub fn rejoin(&mut self, now: Instant, pack: &Reader) {
        for lane in [&mut self.audio, &mut self.video, &mut self.screen]
            .into_iter()
            .flatten()
        {
            if !lane.paused {
                lane.pause();
                lane.unpause(pack, now);
            }
        }
        self.next_heartbeat = now;
    }
}

/// Pauses or unpauses a lane; true when that changed something.
fn set_lane(lane: &mut Option<Lane>, pack: &Reader, on: bool, now: Instant) -> bool {
    let Some(l) = lane.as_mut() else { return false };
    if l.paused != on {
        return false;
    }
    if on {
        l.unpause(pack, now);
    } else {
        l.pause();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::pack::{Track, Writer};
    use synth_common::wire;

    /// 30 fps video, 6 frames with key frames at 0 and 3.
    fn video_track(w: &mut Writer) -> usize {
        let v = w
            .add_track(Track::vp9("video-16x16", (16, 16), 30, 1000, 6 * 3000))
            .unwrap();
        for i in 0..6u64 {
            w.push_frame(v, &[i as u8; 10], i * 3000, 3000, i == 0 || i == 3)
                .unwrap();
        }
        v
    }

    /// A pack of the video track alone.
    fn pack() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pack");
        let mut w = Writer::create(&path).unwrap();
        video_track(&mut w);
        w.finish().unwrap();
        (dir, Reader::open(&path).unwrap())
    }

    /// A video lane over [`pack`] starting now, with what building needs.
    struct Fixture {
        _dir: tempfile::TempDir,
        pack: Reader,
        t0: Instant,
        lane: Lane,
        prefix: MediaPrefix,
        heads: Heads,
    }

    impl Fixture {
        fn video() -> Fixture {
            let (_dir, pack) = pack();
            let t0 = Instant::now();
            let lane = Lane::new(&pack, 0, Media::Video, t0);
            Fixture {
                _dir,
                pack,
                t0,
                lane,
                prefix: MediaPrefix::new("u"),
                heads: Heads::default(),
            }
        }
    }

    #[test]
    fn schedule_loops_without_drift_and_sequence_keeps_rising() {
        let mut f = Fixture::video();
        let t0 = f.t0;
        for i in 0..13u64 {
            let due = f.lane.due();
            assert_eq!(due, t0 + Duration::from_nanos(i * 100_000_000 / 3));
            let p = f
                .lane
                .next_packet(&f.pack, &mut f.prefix, &mut f.heads, due, 1.0)
                .unwrap();
            assert_eq!(p.data[0] as u64, i % 6, "frame {i} loops over the 6 frames");
            assert_eq!(p.lateness, Duration::ZERO);
            let mut bytes = p.head.to_vec();
            bytes.extend_from_slice(&p.data);
            let m = wire::parse_media(wire::parse(&bytes).unwrap().data).unwrap();
            assert_eq!(m.sequence, Some(i));
            assert_eq!(m.is_key(), i % 6 == 0 || i % 6 == 3);
        }
        // 13 frames at 30 fps: exactly 13/30 s after the start, no accumulated error.
        assert_eq!(
            f.lane.due() - t0,
            Duration::from_nanos(13 * 1_000_000_000 / 30)
        );
    }

    #[test]
    fn heads_share_one_buffer() {
        let mut heads = Heads::default();
        let a = heads.push(b"first");
        let b = heads.push(b"second");
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        // Consecutive heads sit side by side in one allocation.
        assert_eq!(a.as_ptr() as usize + a.len(), b.as_ptr() as usize);
        let big = vec![7u8; 10_000];
        assert_eq!(&heads.push(&big)[..], &big[..]);
    }

    #[test]
    fn lateness_backlog_and_keyframe_jump() {
        let mut f = Fixture::video();
        let t0 = f.t0;
        let late = t0 + Duration::from_millis(5);
        let p = f
            .lane
            .next_packet(&f.pack, &mut f.prefix, &mut f.heads, late, 1.0)
            .unwrap();
        assert_eq!(p.lateness, Duration::from_millis(5));
        // A stall of 3 s: resume from now, not 90 frames of backlog; the
        // skipped frames are reported, from the oldest (frame 2, due at
        // 2/30 s) on, one per 1/30 s.
        let stalled = t0 + Duration::from_secs(3);
        let p = f
            .lane
            .next_packet(&f.pack, &mut f.prefix, &mut f.heads, stalled, 1.0)
            .unwrap();
        assert_eq!(f.lane.due(), stalled);
        assert_eq!(
            p.skipped,
            Some(Backlog {
                late: Duration::from_secs(3) - Duration::from_nanos(2 * 1_000_000_000 / 30),
                interval: Duration::from_nanos(1_000_000_000 / 30),
            })
        );
        // At frame 2, a key-frame request jumps to frame 3 (the next key), due now.
        assert!(f.lane.jump_to_keyframe(&f.pack, stalled));
        let p = f
            .lane
            .next_packet(&f.pack, &mut f.prefix, &mut f.heads, stalled, 1.0)
            .unwrap();
        assert_eq!(p.data[0], 3);
        assert_eq!(
            f.lane.seq(),
            3,
            "sequence numbers stay consecutive across the jump"
        );
    }

    /// Two aligned renditions (tracks 0 and 1, frames tagged 0..6 and 10..16,
    /// keys at 0 and 3): a switch waits for the next key frame, then the
    /// sequence numbers and due times go on as if nothing happened.
    #[test]
    fn a_switch_happens_at_the_next_key_frame_and_numbering_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.pack");
        let mut w = Writer::create(&path).unwrap();
        video_track(&mut w);
        let low = w
            .add_track(Track::vp9("video-8x8", (8, 8), 30, 1000, 6 * 3000))
            .unwrap();
        for i in 0..6u64 {
            w.push_frame(low, &[10 + i as u8; 5], i * 3000, 3000, i == 0 || i == 3)
                .unwrap();
        }
        w.finish().unwrap();
        let pack = Reader::open(&path).unwrap();
        let t0 = Instant::now();
        let mut lane = Lane::new(&pack, 0, Media::Video, t0);
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        let mut sent = Vec::new();
        for i in 0..9u64 {
            if i == 1 {
                lane.switch_at_key(low);
            }
            if i == 7 {
                lane.switch_at_key(0);
            }
            let due = lane.due();
            assert_eq!(due, t0 + Duration::from_nanos(i * 100_000_000 / 3));
            let p = lane
                .next_packet(&pack, &mut prefix, &mut heads, due, 1.0)
                .unwrap();
            let mut bytes = p.head.to_vec();
            bytes.extend_from_slice(&p.data);
            let m = wire::parse_media(wire::parse(&bytes).unwrap().data).unwrap();
            assert_eq!(m.sequence, Some(i));
            sent.push(p.data[0]);
        }
        // Asked at frame 1: the low track from frame 3 on; asked back at
        // frame 7 (frame 1 of the loop): the high one again from frame 3.
        assert_eq!(sent, vec![0, 1, 2, 13, 14, 15, 10, 11, 12]);
        assert_eq!(lane.track(), low);
        let p = lane
            .next_packet(&pack, &mut prefix, &mut heads, lane.due(), 1.0)
            .unwrap();
        assert_eq!((p.data[0], lane.track()), (3, 0));
    }

    /// A pack with 20 ms audio (10 frames) and 30 fps video (6 frames, key at 0 and 3).
    fn av_pack() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("av.pack");
        let mut w = Writer::create(&path).unwrap();
        let a = w.add_track(Track::opus("audio", 32_000, 10 * 960)).unwrap();
        for i in 0..10u64 {
            w.push_frame(a, &[i as u8; 4], i * 960, 960, true).unwrap();
        }
        video_track(&mut w);
        w.finish().unwrap();
        (dir, Reader::open(&path).unwrap())
    }

    fn schedule(pack: &Reader, t0: Instant, batch_ms: u64) -> Schedule {
        Schedule::new(
            Some(Lane::new(pack, 0, Media::Audio, t0)),
            Some(Lane::new(pack, 1, Media::Video, t0)),
            t0,
            Duration::from_secs(1),
            Duration::from_millis(batch_ms),
        )
    }

    /// Sends what `poll` says is due, as the driver does.
    fn send(s: &mut Schedule, pack: &Reader, due: Due, now: Instant) -> Vec<(Media, u64)> {
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        let mut sent = Vec::new();
        for (lane, go) in [(&mut s.audio, due.audio), (&mut s.video, due.video)] {
            if let (Some(lane), true) = (lane.as_mut(), go) {
                let seq = lane.seq();
                lane.next_packet(pack, &mut prefix, &mut heads, now, 1.0)
                    .unwrap();
                sent.push((lane.media(), seq));
            }
        }
        sent
    }

    /// A schedule with a 7 ms batch window whose first wake-up (audio, video
    /// and a heartbeat at `t0`) has been sent.
    fn started() -> (tempfile::TempDir, Reader, Instant, Schedule) {
        let (dir, pack) = av_pack();
        let t0 = Instant::now();
        let mut s = schedule(&pack, t0, 7);
        let due = s.poll(&pack, t0);
        send(&mut s, &pack, due, t0);
        (dir, pack, t0, s)
    }

    #[test]
    fn audio_cadence_heartbeats_and_the_batch_window() {
        let (_d, pack) = av_pack();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut s = schedule(&pack, t0, 7);
        // t=0: audio, video and the first heartbeat.
        let due = s.poll(&pack, t0);
        assert!(due.audio && due.video && due.heartbeat && !due.keyframe_jump);
        send(&mut s, &pack, due, t0);
        assert_eq!(s.next_wake(), ms(20), "audio every 20 ms");
        // t=20: audio only (video is due at 33.3, outside a 7 ms window).
        let due = s.poll(&pack, ms(20));
        assert_eq!((due.audio, due.video, due.heartbeat), (true, false, false));
        send(&mut s, &pack, due, ms(20));
        assert_eq!(s.next_wake(), t0 + Duration::from_nanos(33_333_333));
        // t=33.3: video alone.
        let t = s.next_wake();
        let due = s.poll(&pack, t);
        assert_eq!((due.audio, due.video), (false, true));
        send(&mut s, &pack, due, t);
        // t=40: audio, and video (due 66.7) is not within 7 ms.
        let due = s.poll(&pack, ms(40));
        assert_eq!((due.audio, due.video), (true, false));
        send(&mut s, &pack, due, ms(40));
        // t=60: audio, and video due at 66.7 rides with it (within 7 ms).
        let due = s.poll(&pack, ms(60));
        assert_eq!((due.audio, due.video), (true, true));
        assert_eq!(
            send(&mut s, &pack, due, ms(60)),
            vec![(Media::Audio, 3), (Media::Video, 2)]
        );
        // No window: video waits for its own time.
        let mut s = schedule(&pack, t0, 0);
        for t in [t0, ms(20), t0 + Duration::from_nanos(33_333_333), ms(40)] {
            let due = s.poll(&pack, t);
            send(&mut s, &pack, due, t);
        }
        let due = s.poll(&pack, ms(60));
        assert!(due.audio && !due.video, "video due at 66.7 ms waits");
        // The heartbeat clock: due at 1 s, then every second; after a long
        // stall it restarts from now instead of firing a burst.
        assert!(s.poll(&pack, ms(1000)).heartbeat);
        assert!(!s.poll(&pack, ms(1500)).heartbeat);
        assert!(s.poll(&pack, ms(2000)).heartbeat);
        assert!(s.poll(&pack, ms(9000)).heartbeat);
        assert!(!s.poll(&pack, ms(9500)).heartbeat);
        assert!(s.poll(&pack, ms(10_000)).heartbeat);
    }

    #[test]
    fn a_keyframe_request_jumps_video_to_its_next_key_frame_now() {
        // Video frame 0 (key) sent at t0.
        let (_d, pack, t0, mut s) = started();
        let t = t0 + Duration::from_millis(5);
        s.request_keyframe(false);
        assert_eq!(s.next_wake(), t0 + Duration::from_millis(20));
        let due = s.poll(&pack, t);
        assert!(due.keyframe_jump && due.video && !due.audio, "{due:?}");
        // Frame 3 (the next key frame) goes now, with the next sequence number.
        let lane = s.video.as_mut().unwrap();
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        let p = lane
            .next_packet(&pack, &mut prefix, &mut heads, t, 1.0)
            .unwrap();
        assert_eq!((p.data[0], lane.seq()), (3, 2));
        // The request is answered once.
        assert!(!s.poll(&pack, t).keyframe_jump);
    }

    #[test]
    fn resume_after_a_reconnect_does_not_burst() {
        let (_d, pack, t0, mut s) = started();
        // Session down for 600 ms (under the 1 s backlog limit): resume from now.
        let back = t0 + Duration::from_millis(600);
        let [audio, video] = s.resume(back, &pack);
        // Audio frame 1 was due at 20 ms: 580 ms behind, one per 20 ms.
        assert_eq!(
            audio,
            Some(Backlog {
                late: Duration::from_millis(580),
                interval: Duration::from_millis(20)
            })
        );
        assert!(video.is_some());
        assert_eq!(s.resume(back, &pack), [None, None], "nothing more to skip");
        let due = s.poll(&pack, back);
        assert!(due.audio && due.video);
        send(&mut s, &pack, due, back);
        assert_eq!(
            s.audio.as_ref().unwrap().due(),
            back + Duration::from_millis(20)
        );
    }

    /// Speech (10 frames, voice on frames 0..4), silence (5 frames, no
    /// voice), 30 fps video (6 frames, keys at 0 and 3) and a 30 fps screen
    /// track (6 frames, key at 0).
    fn people_pack() -> (tempfile::TempDir, Reader) {
        use synth_common::pack::{FrameFlags, Role};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.pack");
        let mut w = Writer::create(&path).unwrap();
        let a = w.add_track(Track::opus("audio", 32_000, 10 * 960)).unwrap();
        for i in 0..10u64 {
            let f = FrameFlags {
                key: true,
                voice: i < 4,
            };
            w.push_frame_flags(a, &[i as u8; 4], i * 960, 960, f)
                .unwrap();
        }
        let sil = w
            .add_track(Track::opus("audio-silence", 32_000, 10 * 960).with_role(Role::Silence))
            .unwrap();
        for i in 0..10u64 {
            let f = FrameFlags {
                key: true,
                voice: false,
            };
            w.push_frame_flags(sil, &[100; 4], i * 960, 960, f).unwrap();
        }
        video_track(&mut w);
        let sc = w
            .add_track(Track::vp9("screen", (16, 16), 30, 100, 6 * 3000).with_role(Role::Screen))
            .unwrap();
        for i in 0..6u64 {
            w.push_frame(sc, &[200 + i as u8; 3], i * 3000, 3000, i == 0)
                .unwrap();
        }
        w.finish().unwrap();
        (dir, Reader::open(&path).unwrap())
    }

    fn people_schedule(pack: &Reader, t0: Instant, dtx: bool) -> Schedule {
        Schedule::new(
            Some(Lane::new(pack, 0, Media::Audio, t0)),
            Some(Lane::new(pack, 2, Media::Video, t0)),
            t0,
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .with_screen(Lane::new(pack, 3, Media::Screen, t0))
        .with_voice(Voice::new(0, Some(1), dtx))
    }

    /// Polls every 20 ms from `from` for `n` frames; the audio frames sent
    /// (their first byte) and the speaking flag after each.
    fn audio_run(s: &mut Schedule, pack: &Reader, from: Instant, n: u64) -> Vec<(u8, bool)> {
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        let mut out = Vec::new();
        for k in 0..n {
            let now = from + Duration::from_millis(20 * k);
            let due = s.poll(pack, now);
            if due.audio {
                let lane = s.audio.as_mut().unwrap();
                let p = lane
                    .next_packet(pack, &mut prefix, &mut heads, now, 1.0)
                    .unwrap();
                out.push((p.data[0], s.flags().speaking));
            }
            if due.video {
                let lane = s.video.as_mut().unwrap();
                lane.next_packet(pack, &mut prefix, &mut heads, now, 1.0)
                    .unwrap();
            }
        }
        out
    }

    #[test]
    fn speaking_follows_the_voice_flag_and_dtx_thins_the_pauses() {
        let (_d, pack) = people_pack();
        let t0 = Instant::now();
        // No DTX: every frame goes, speaking on the voice frames only.
        let mut s = people_schedule(&pack, t0, false);
        let sent = audio_run(&mut s, &pack, t0, 10);
        let speaking: Vec<bool> = sent.iter().map(|x| x.1).collect();
        assert_eq!(sent.len(), 10);
        assert_eq!(
            speaking,
            [true, true, true, true, false, false, false, false, false, false]
        );
        // DTX: a silent frame goes only 400 ms after the last frame sent.
        // The loop's 6 silent frames (120 ms) never wait that long, so only
        // the voice goes.
        let mut s = people_schedule(&pack, t0, true);
        let sent: Vec<u8> = audio_run(&mut s, &pack, t0, 40)
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(sent, [0, 1, 2, 3].repeat(4));
        // The silence track (never voice): one frame every 400 ms.
        s.set_talking(&pack, false);
        let from = t0 + Duration::from_millis(800);
        let sent = audio_run(&mut s, &pack, from, 100);
        assert_eq!(sent.len(), 5, "2 s of silence: 5 frames, one per 400 ms");
        assert!(sent.iter().all(|&(b, speaking)| b == 100 && !speaking));
    }

    #[test]
    fn turns_switch_to_the_silence_track_and_sequence_numbers_go_on() {
        let (_d, pack) = people_pack();
        let t0 = Instant::now();
        let mut s = people_schedule(&pack, t0, false);
        s.set_talking(&pack, false);
        let sent = audio_run(&mut s, &pack, t0, 3);
        assert_eq!(sent, vec![(100, false); 3], "silence, not speaking");
        s.set_talking(&pack, true);
        let sent = audio_run(&mut s, &pack, t0 + Duration::from_millis(60), 2);
        assert_eq!(
            sent,
            vec![(3, true), (4, false)],
            "the speech track from the same position"
        );
        assert_eq!(s.audio.as_ref().unwrap().seq(), 5);
    }

    #[test]
    fn mute_camera_and_screen_pause_lanes_and_flags_follow() {
        let (_d, pack) = people_pack();
        let t0 = Instant::now();
        let mut s = people_schedule(&pack, t0, false);
        assert!(s.poll(&pack, t0).heartbeat);
        let f = s.flags();
        assert!(f.audio && f.video && !f.screen);
        s.told(f, t0);
        // Mute: no audio is due, the flag says so, and a heartbeat comes
        // early (a flag changed) but not before FLAG_HEARTBEAT_GAP.
        assert!(s.set_audio(&pack, false, t0));
        assert!(!s.set_audio(&pack, false, t0), "already muted");
        let early = s.poll(&pack, t0 + Duration::from_millis(100));
        assert!(!early.audio && !early.heartbeat, "{early:?}");
        let due = s.poll(&pack, t0 + FLAG_HEARTBEAT_GAP);
        assert!(due.heartbeat && !due.audio);
        assert!(!s.flags().audio && !s.flags().speaking);
        // Camera off at frame 1, on again 2 s later: from the next key frame (3), due then.
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        let v = s.video.as_mut().unwrap();
        v.next_packet(&pack, &mut prefix, &mut heads, t0, 1.0)
            .unwrap();
        assert!(s.set_video(&pack, false, t0));
        assert!(!s.poll(&pack, t0 + Duration::from_secs(1)).video);
        let back = t0 + Duration::from_secs(2);
        assert!(s.set_video(&pack, true, back));
        let due = s.poll(&pack, back);
        assert!(due.video);
        let v = s.video.as_mut().unwrap();
        let p = v
            .next_packet(&pack, &mut prefix, &mut heads, back, 1.0)
            .unwrap();
        assert_eq!((p.data[0], v.seq()), (3, 2), "key frame 3, numbers go on");
        assert_eq!(p.lateness, Duration::ZERO, "the gap is owed nothing");
        // Sharing: SCREEN frames from the screen track's key frame.
        assert!(s.share(&pack, true, back));
        assert!(s.flags().screen);
        let due = s.poll(&pack, back);
        assert!(due.screen);
        let sc = s.screen.as_mut().unwrap();
        let p = sc
            .next_packet(&pack, &mut prefix, &mut heads, back, 1.0)
            .unwrap();
        assert_eq!(p.media, Media::Screen);
        let mut bytes = p.head.to_vec();
        bytes.extend_from_slice(&p.data);
        let m = wire::parse_media(wire::parse(&bytes).unwrap().data).unwrap();
        assert_eq!(
            (m.media_type, m.data[0], m.is_key()),
            (media_type::SCREEN, 200, true)
        );
    }

    #[test]
    fn a_screen_request_moves_the_screen_share_and_leaves_the_camera() {
        let (_d, pack) = people_pack();
        let t0 = Instant::now();
        let mut s = people_schedule(&pack, t0, false);
        let (mut prefix, mut heads) = (MediaPrefix::new("u"), Heads::default());
        assert!(s.share(&pack, true, t0));
        let due = s.poll(&pack, t0);
        assert!(due.video && due.screen);
        for m in [Media::Video, Media::Screen] {
            let lane = s.lane_mut(m).unwrap();
            lane.next_packet(&pack, &mut prefix, &mut heads, t0, 1.0)
                .unwrap();
        }
        // Asked for the screen's key frame 5 ms later: the screen lane jumps
        // to it (frame 0 again, its only key frame) and goes now; the camera
        // keeps its place and its time.
        let t = t0 + Duration::from_millis(5);
        s.request_keyframe(true);
        let due = s.poll(&pack, t);
        assert!(due.keyframe_jump && due.screen && !due.video, "{due:?}");
        let sc = s.screen.as_mut().unwrap();
        let p = sc
            .next_packet(&pack, &mut prefix, &mut heads, t, 1.0)
            .unwrap();
        assert_eq!((p.data[0], sc.seq()), (200, 2));
        assert_eq!(s.video.as_ref().unwrap().seq(), 1);
        // The camera's own request still moves the camera.
        s.request_keyframe(false);
        let due = s.poll(&pack, t);
        assert!(due.keyframe_jump && due.video && !due.screen, "{due:?}");
    }

    #[test]
    fn a_browser_tells_a_changed_flag_sooner() {
        let (_d, pack) = people_pack();
        let t0 = Instant::now();
        let mut s = people_schedule(&pack, t0, false).with_flag_gap(BROWSER_FLAG_HEARTBEAT_GAP);
        assert!(s.poll(&pack, t0).heartbeat);
        s.told(s.flags(), t0);
        assert!(s.set_video(&pack, false, t0));
        assert!(!s.poll(&pack, t0 + Duration::from_millis(40)).heartbeat);
        assert!(s.poll(&pack, t0 + BROWSER_FLAG_HEARTBEAT_GAP).heartbeat);
    }
}
