//! A client's send side: the [`Sender`] kept across reconnects (its
//! schedule, its script's actions and speaking turns, rendition
//! adaptation) and the streams in flight until the server acknowledges them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::clock::unix_ms;
use synth_common::pack::Reader;
use synth_common::wire::{self, MediaPrefix};
use tokio::sync::{watch, Notify};
use tokio::time::timeout;
use web_transport_quinn::{SendStream, Session};

use crate::client::context::{since_start, Client};
use crate::client::framed::{acked, Failed, Persistent};
use crate::client::receiver::Out;
use crate::config::ClientProfile;
use crate::metrics::{ClientStats, Media};
use crate::people::Action;
use crate::session::adapt;
use crate::session::pacer::{Backlog, Heads, Lane, Schedule, Voice, BROWSER_FLAG_HEARTBEAT_GAP};
use crate::session::simulcast::{Change, Ladder};
use crate::version::Wire;

/// A `browser`'s heartbeat period (upstream's web client,
/// `HEARTBEAT_KEEPALIVE_INTERVAL_MS`).
pub(super) const BROWSER_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// A client's send state, kept across reconnects so sequence numbers and
/// timestamps keep rising.
pub(super) struct Sender {
    prefix: MediaPrefix,
    heads: Heads,
    schedule: Schedule,
    /// Notified when a peer asks for a key frame.
    keyframe: Arc<Notify>,
    /// Which key frames were asked for since the last look: the camera's,
    /// the screen share's (set by the receiver, taken by the session's loop).
    keyframe_asked: Arc<[AtomicBool; 2]>,
    /// A `browser`: heartbeats go as datagrams, and it sends control packets.
    browser: bool,
    /// What a `browser` calls itself in HEALTH: `session_<unix seconds when
    /// it started>`, as upstream's web client does.
    health_label: String,
    /// The session's streams not yet acknowledged.
    pub(super) inflight: Inflight,
    /// The run's stop signal: a send waiting for stream credit gives up on it.
    stop: watch::Receiver<bool>,
    /// Rendition adaptation, for a client with `adapt: true` only.
    adapt: Option<Adapting>,
    /// Its script's actions still to come, in time order.
    actions: VecDeque<(Instant, Action)>,
    /// Its speaking turns (`None`: it talks the whole time), and the first
    /// not yet over.
    turns: Option<(Vec<(Instant, Instant)>, usize)>,
    /// The video track its plan gave it (what a rendition revert goes back to).
    video_track: Option<usize>,
    /// Simulcast: its layers above layer 0 (`simulcast: true`).
    ladder: Option<Ladder>,
}

/// An adapting client's controller, and the rendition its video lane is on.
struct Adapting {
    controller: adapt::Controller,
    /// When the next sample is due.
    next: Instant,
    /// The lane's track as last seen.
    track: usize,
    /// Since when it has been on it, while a session is up.
    since: Option<Instant>,
}

/// The session's streams not yet acknowledged, oldest first, each with its
/// media and when its send began (µs after the run started, plus one).
pub(super) struct Inflight {
    q: VecDeque<(SendStream, Media, u64)>,
    /// On the framed wire, the session's persistent streams instead.
    framed: Option<Persistent>,
}

/// How often a session with sends in flight looks for their acknowledgements
/// when nothing is due.
const SETTLE_EVERY: Duration = Duration::from_millis(200);

/// Streams remembered at most; beyond, the oldest is forgotten (and stays unacknowledged).
const MAX_INFLIGHT: usize = 1 << 16;

impl Inflight {
    /// Counts what was acknowledged since the last call, and notes when the
    /// oldest send still waiting began.
    pub(super) fn settle(&mut self, stats: &ClientStats) {
        while let Some((s, media, _)) = self.q.front() {
            match acked(s) {
                None => break,
                Some(ok) => {
                    if ok {
                        stats.acked[*media as usize].fetch_add(1, Relaxed);
                    }
                    self.q.pop_front();
                }
            }
        }
        let since = self.q.front().map_or(0, |e| e.2);
        stats.waiting_since_us.store(since, Relaxed);
    }

    /// Whether every stream is settled.
    pub(super) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    fn push(&mut self, s: SendStream, media: Media, began_us: u64) {
        if self.q.len() == MAX_INFLIGHT {
            self.q.pop_front();
        }
        self.q.push_back((s, media, began_us));
    }

    /// Waits (at most `limit`) until every stream is acknowledged, then
    /// counts each one that was; the rest never will be.
    pub(super) async fn drain(&mut self, stats: &ClientStats, limit: Duration) {
        if let Some(f) = self.framed.as_mut() {
            f.drain(stats, limit).await;
        }
        let all = async {
            for (s, _, _) in self.q.iter() {
                let _ = s.stopped().await;
            }
        };
        let _ = timeout(limit, all).await;
        for (s, media, _) in self.q.drain(..) {
            if acked(&s) == Some(true) {
                stats.acked[media as usize].fetch_add(1, Relaxed);
            }
        }
        stats.waiting_since_us.store(0, Relaxed);
    }

    /// The session is gone: what was not acknowledged never will be (and a
    /// dead connection's answers are not trusted).
    pub(super) fn forget(&mut self, stats: &ClientStats) {
        if let Some(f) = self.framed.as_mut() {
            f.forget(stats);
        }
        self.q.clear();
        stats.waiting_since_us.store(0, Relaxed);
    }
}

impl Sender {
    /// The send state of `client`, whose media start at `start`.
    pub(super) fn new(client: &Client, start: Instant) -> Sender {
        let (shared, plan) = (&*client.shared, &client.plan);
        let (settings, t0) = (&shared.settings, shared.signals.t0);
        let pack = &settings.pack;
        let b = &plan.behaviour;
        let browser = plan.profile == ClientProfile::Browser;
        let heartbeat_interval = if browser {
            BROWSER_HEARTBEAT_INTERVAL
        } else {
            settings.heartbeat_interval
        };
        let mut schedule = Schedule::new(
            plan.audio_track
                .map(|t| Lane::new(pack, t, Media::Audio, start)),
            plan.video_track
                .map(|t| Lane::new(pack, t, Media::Video, start)),
            start,
            heartbeat_interval,
            settings.batch_window,
        );
        if browser {
            schedule = schedule.with_flag_gap(BROWSER_FLAG_HEARTBEAT_GAP);
        }
        if let Some(t) = b.screen_track {
            schedule = schedule.with_screen(Lane::new(pack, t, Media::Screen, start));
        }
        if let Some(t) = plan.audio_track {
            schedule = schedule.with_voice(Voice::new(t, b.silence_track, b.dtx));
        }
        let mut sender = Sender {
            prefix: MediaPrefix::new(&plan.user_id),
            heads: Heads::default(),
            schedule,
            keyframe: Arc::new(Notify::new()),
            keyframe_asked: Arc::new([AtomicBool::new(false), AtomicBool::new(false)]),
            browser,
            health_label: format!("session_{}", unix_ms() as u64 / 1000),
            inflight: Inflight {
                q: VecDeque::with_capacity(64),
                framed: (settings.wire == Wire::Framed).then(Persistent::default),
            },
            stop: shared.signals.stop.clone(),
            adapt: if plan.adapt {
                plan.video_track.and_then(|t| adapting(pack, t, start))
            } else {
                None
            },
            actions: plan
                .behaviour
                .script
                .actions
                .iter()
                .map(|(t, a)| (t0 + *t, a.clone()))
                .collect(),
            turns: plan.behaviour.script.speaking.as_ref().map(|v| {
                let turns = v.iter().map(|(a, b)| (t0 + *a, t0 + *b)).collect();
                (turns, 0)
            }),
            video_track: plan.video_track,
            ladder: Ladder::new(&plan.layers),
        };
        if let Some(l) = &sender.ladder {
            client.stats.layers_active.store(l.active() as u64, Relaxed);
        }
        if sender.turns.is_some() {
            sender.schedule.set_talking(pack, false);
        }
        sender
    }

    /// Notified when a peer asks for a key frame (the receiver notifies,
    /// the session's loop listens), and which: the camera's, the screen's.
    pub(super) fn keyframe(&self) -> (Arc<Notify>, Arc<[AtomicBool; 2]>) {
        (self.keyframe.clone(), self.keyframe_asked.clone())
    }

    /// A `browser`: it sends control packets, and its heartbeats as datagrams.
    pub(super) fn browser(&self) -> bool {
        self.browser
    }

    /// What a `browser` calls itself in HEALTH.
    pub(super) fn health_label(&self) -> &str {
        &self.health_label
    }

    /// Peers asked for key frames: the lanes asked for (camera, screen
    /// share) jump to their next one.
    pub(super) fn request_keyframe(&mut self) {
        for (screen, asked) in [false, true].into_iter().zip(self.keyframe_asked.iter()) {
            if asked.swap(false, Relaxed) {
                self.schedule.request_keyframe(screen);
            }
        }
    }

    /// When the session's loop must next wake: the schedule's next send,
    /// an adaptation sample, its script's next change, the planned leave
    /// (`leave_at`), and with sends in flight at least every
    /// [`SETTLE_EVERY`] to see their acknowledgements (a client with no
    /// media only sends heartbeats, and must not look stalled between them).
    pub(super) fn next_wake(&self, leave_at: Option<Instant>) -> Instant {
        let mut wake = self.schedule.next_wake();
        if !self.inflight.is_empty() {
            wake = wake.min(Instant::now() + SETTLE_EVERY);
        }
        if let Some(a) = &self.adapt {
            wake = wake.min(a.next);
        }
        wake = wake.min(self.next_change());
        if let Some(t) = leave_at {
            wake = wake.min(t);
        }
        wake
    }

    /// A session is up: the schedule resumes from now rather than bursting.
    /// After a reconnect, what the outage skipped still counts as late (no
    /// coordinated omission); before the first session (`first_session`),
    /// the plan's start waited for the connection, which is not a late send.
    pub(super) fn resume(&mut self, client: &Client, first_session: bool) {
        let skipped = self
            .schedule
            .resume(Instant::now(), &client.shared.settings.pack);
        self.adapt_track(client, false);
        if !first_session {
            for b in skipped.into_iter().flatten() {
                record_backlog(client, b);
            }
        }
    }

    /// When its script next changes something (an action, a turn's start
    /// or end); far in the future when nothing is left.
    pub(super) fn next_change(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let action = self.actions.front().map_or(far, |a| a.0);
        let now = Instant::now();
        let turn = self.turns.as_ref().map_or(far, |(v, i)| {
            v.get(*i)
                .map_or(far, |&(a, b)| if a <= now { b } else { a })
        });
        action.min(turn)
    }

    /// Carries out what its script says is due at `now`: actions, and
    /// whether it is its turn to speak.
    pub(super) fn apply_due(&mut self, client: &Client, now: Instant) {
        let (pack, stats) = (&client.shared.settings.pack, &*client.stats);
        while self.actions.front().is_some_and(|a| a.0 <= now) {
            let Some((_, action)) = self.actions.pop_front() else {
                break;
            };
            let s = &mut self.schedule;
            let (changed, resumed) = match &action {
                Action::Mute => (s.set_audio(pack, false, now), None),
                Action::Unmute => (s.set_audio(pack, true, now), Some(0)),
                Action::CameraOff => (s.set_video(pack, false, now), None),
                Action::CameraOn => (s.set_video(pack, true, now), Some(1)),
                Action::ScreenShareStart => {
                    let on = s.share(pack, true, now);
                    if on {
                        stats.screen_shares.fetch_add(1, Relaxed);
                    }
                    (on, Some(2))
                }
                Action::ScreenShareStop => (s.share(pack, false, now), None),
                Action::Rendition(name) => (self.switch_rendition(pack, Some(name)), None),
                Action::RenditionRevert => (self.switch_rendition(pack, None), None),
            };
            if changed {
                stats.actions.fetch_add(1, Relaxed);
                if let Some(i) = resumed {
                    stats.resumes[i].fetch_add(1, Relaxed);
                }
            }
        }
        if let Some((v, i)) = self.turns.as_mut() {
            while v.get(*i).is_some_and(|&(_, b)| b <= now) {
                *i += 1;
            }
            let talking = v.get(*i).is_some_and(|&(a, _)| a <= now);
            self.schedule.set_talking(pack, talking);
        }
    }

    /// Switches the video lane to the rendition `name` (of the client's own
    /// variant), or back to its planned track, at the next key frame.
    fn switch_rendition(&mut self, pack: &Reader, name: Option<&String>) -> bool {
        let (Some(lane), Some(own)) = (self.schedule.video.as_mut(), self.video_track) else {
            return false;
        };
        let target = match name {
            Some(n) => match pack.track_by_name(n) {
                Some(t) => pack.variant_of(t, usize::from(pack.tracks()[own].variant)),
                None => return false,
            },
            None => own,
        };
        lane.switch_at_key(target);
        true
    }

    /// Back in the meeting after leaving on purpose: every medium starts
    /// afresh (video from a key frame), and its peers know the gap was
    /// no freeze.
    pub(super) fn rejoin(&mut self, client: &Client, now: Instant) {
        self.apply_due(client, now);
        self.schedule.rejoin(now, &client.shared.settings.pack);
        for r in &client.stats.resumes {
            r.fetch_add(1, Relaxed);
        }
    }

    /// Samples the session for an adapting client when a sample is due,
    /// and hands the controller's switch to the video lane.
    pub(super) fn adapt_sample(&mut self, client: &Client, session: &Session) {
        let Some(a) = self.adapt.as_mut() else { return };
        let stats = &client.stats;
        let now = Instant::now();
        if now < a.next {
            return;
        }
        a.next = now + adapt::SAMPLE_EVERY;
        let conn: &quinn::Connection = session;
        let cwnd = conn.stats().path.cwnd;
        let rtt = conn.rtt().as_secs_f64().max(1e-4);
        let waiting = stats.waiting_since_us.load(Relaxed);
        let oldest = if waiting == 0 {
            0
        } else {
            since_start(&client.shared).saturating_sub(waiting)
        };
        let sample = adapt::Sample {
            now,
            estimate_bps: cwnd as f64 * 8.0 / rtt,
            congestion: stats.congestion.load(Relaxed),
            oldest_unacked: Duration::from_micros(oldest),
            credit_wait: Duration::from_micros(stats.credit_wait_us.load(Relaxed)),
        };
        if let adapt::Decision::SwitchTo(t) = a.controller.sample(&sample) {
            if let Some(lane) = self.schedule.video.as_mut() {
                lane.switch_at_key(t);
            }
        }
    }

    /// For an adapting client: counts the time on the rendition just left
    /// and the switch when the video lane changed track; with `end`, counts
    /// the time on the current one and stops the clock (the session ended).
    pub(super) fn adapt_track(&mut self, client: &Client, end: bool) {
        let Some(a) = self.adapt.as_mut() else { return };
        let Some(lane) = self.schedule.video.as_ref() else {
            return;
        };
        let now = Instant::now();
        let track = lane.track();
        if track == a.track && !end {
            a.since.get_or_insert(now);
            return;
        }
        let (pack, stats) = (&client.shared.settings.pack, &client.stats);
        if let Some(since) = a.since.take() {
            stats.add_rendition_time(
                &pack.tracks()[a.track].name,
                pack.bitrate_bps(a.track),
                now.saturating_duration_since(since).as_micros() as u64,
            );
        }
        if track != a.track {
            let up = pack.bitrate_bps(track) > pack.bitrate_bps(a.track);
            stats.switches[up as usize].fetch_add(1, Relaxed);
            a.track = track;
        }
        if !end {
            a.since = Some(now);
        }
    }
}

/// The adaptation state of a client starting on video track `track`: the
/// ladder is the pack's video tracks with their bitrates.
fn adapting(pack: &Reader, track: usize, start: Instant) -> Option<Adapting> {
    // The renditions of the client's own variant (colours and label).
    let variant = pack.tracks().get(track)?.variant;
    let ladder = pack
        .tracks()
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.kind == synth_common::pack::TrackKind::Video
                && t.role == synth_common::pack::Role::Main
                && t.variant == variant
        })
        .map(|(i, _)| (i, pack.bitrate_bps(i)))
        .collect();
    Some(Adapting {
        controller: adapt::Controller::new(ladder, track)?,
        next: start,
        track,
        since: None,
    })
}

/// [`Sender::send`] on the framed wire: one frame on the media's
/// persistent stream of `f`, opened when it is first needed.
async fn send_framed(
    f: &mut Persistent,
    stop: &mut watch::Receiver<bool>,
    client: &Client,
    session: &Session,
    media: Media,
    chunks: &mut [Bytes],
) -> Result<(), SendError> {
    let stats = &client.stats;
    let len = chunks.iter().map(|c| c.len()).sum();
    f.look(session, stats, since_start(&client.shared));
    if !f.has(media) {
        f.adopt(media, open(session, stop, stats).await?);
    }
    let waited = tokio::select! {
        biased;
        w = f.write(media, chunks) => w,
        _ = stop.wait_for(|s| *s) => return Err(SendError::Stopped),
    };
    match waited {
        Ok(w) => credit_wait(stats, w),
        Err(Failed::Unopened(e)) => return Err(SendError::Unsent(e)),
        Err(Failed::Broken(e)) => {
            stats.sent(media, len);
            return Err(SendError::Broken(e));
        }
    }
    first_packet(stats);
    stats.sent(media, len);
    Ok(())
}

/// Opens a uni stream, waiting for stream credit until the run stops. The
/// wait is counted whether or not it ended in a stream: a session that dies
/// while waiting waited all the same.
async fn open(
    session: &Session,
    stop: &mut watch::Receiver<bool>,
    stats: &ClientStats,
) -> Result<SendStream, SendError> {
    let opened = Instant::now();
    let s = tokio::select! {
        biased;
        s = session.open_uni() => Some(s),
        _ = stop.wait_for(|s| *s) => None,
    };
    credit_wait(stats, opened.elapsed());
    s.ok_or(SendError::Stopped)?
        .map_err(|e| SendError::Unsent(e.to_string()))
}

/// Counts a wait for stream or flow-control credit of 1 ms or more.
fn credit_wait(stats: &ClientStats, waited: Duration) {
    if waited >= Duration::from_millis(1) {
        stats
            .credit_wait_us
            .fetch_add(waited.as_micros() as u64, Relaxed);
    }
}

/// Notes when the client's (and this stay's) first packet went.
fn first_packet(stats: &ClientStats) {
    if stats.stay_first_packet_unix_us.load(Relaxed) == 0 {
        let now = (unix_ms() * 1000.0) as u64;
        stats.stay_first_packet_unix_us.store(now, Relaxed);
        if stats.first_packet_unix_us.load(Relaxed) == 0 {
            stats.first_packet_unix_us.store(now, Relaxed);
        }
    }
}

/// Records the frames a lane skipped as late sends (no coordinated omission).
fn record_backlog(client: &Client, b: Backlog) {
    client
        .stats
        .skipped_us
        .fetch_add(b.late.as_micros() as u64, Relaxed);
    client.shared.metrics.lateness.record_correct(
        b.late.as_micros() as u64,
        b.interval.as_micros() as u64,
        client.plan.index,
    );
}

/// Why a packet did not go out whole.
#[derive(Debug)]
pub(super) enum SendError {
    /// No stream was opened: nothing of it left (the session is gone).
    Unsent(String),
    /// Its stream was opened and written to, then failed: counted as sent,
    /// and it will never be acknowledged.
    Broken(String),
    /// The run stopped while the send waited for stream credit.
    Stopped,
}

impl SendError {
    /// Why the session is lost, for the log.
    pub(super) fn why(self) -> String {
        match self {
            SendError::Unsent(w) | SendError::Broken(w) => w,
            SendError::Stopped => "the run stopped".into(),
        }
    }
}

impl Sender {
    /// Sends one packet on its own uni stream and counts it; the stream is
    /// kept until the server acknowledges it. A send waiting for stream
    /// credit counts as waiting from its start (a stalled server shows),
    /// and gives up when the run stops.
    pub(super) async fn send(
        &mut self,
        client: &Client,
        session: &Session,
        media: Media,
        chunks: &mut [Bytes],
    ) -> Result<(), SendError> {
        if let Some(f) = self.inflight.framed.as_mut() {
            return send_framed(f, &mut self.stop, client, session, media, chunks).await;
        }
        let stats = &client.stats;
        let began = since_start(&client.shared);
        self.inflight.settle(stats);
        if stats.waiting_since_us.load(Relaxed) == 0 {
            stats.waiting_since_us.store(began, Relaxed);
        }
        let len = chunks.iter().map(|c| c.len()).sum();
        let mut s = open(session, &mut self.stop, stats).await?;
        let written = match s.write_all_chunks(chunks).await {
            Ok(()) => s.finish().map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = written {
            stats.sent(media, len);
            return Err(SendError::Broken(e));
        }
        first_packet(stats);
        stats.sent(media, len);
        // Polled for its acknowledgement at the next settle (before the next
        // send, or after this wake-up's sends).
        self.inflight.push(s, media, began);
        Ok(())
    }

    /// Sends the lane's due frame; the lane moves on to the next one.
    async fn send_frame(
        &mut self,
        client: &Client,
        session: &Session,
        media: Media,
        now: Instant,
    ) -> Result<(), SendError> {
        let (shared, stats, shard) = (&client.shared, &client.stats, client.plan.index);
        let (prefix, heads) = (&mut self.prefix, &mut self.heads);
        let Some(lane) = self.schedule.lane_mut(media) else {
            return Ok(());
        };
        let pack = &shared.settings.pack;
        let stamp = unix_ms();
        let Some(p) = lane.next_packet(pack, prefix, heads, now, stamp) else {
            return Err(SendError::Unsent("frame index out of range".into()));
        };
        let pos = p.pos;
        // Audio and video numbers are what peers check their loss against.
        let av = (media as usize) < 2;
        if av {
            stats.next_seq[media as usize].store(lane.seq(), Relaxed);
        }
        shared
            .metrics
            .lateness
            .record(p.lateness.as_micros() as u64, shard);
        if let Some(b) = p.skipped {
            record_backlog(client, b);
        }
        let payload = p.data.len();
        let r = self
            .send(client, session, media, &mut [p.head, p.data])
            .await;
        if matches!(r, Err(SendError::Unsent(_) | SendError::Stopped)) {
            if let Some(lane) = self.schedule.lane_mut(media) {
                lane.unsend();
                let seq = lane.seq();
                if av {
                    stats.next_seq[media as usize].store(seq, Relaxed);
                }
            }
        }
        r?;
        if av {
            stats.sent_payload[media as usize].fetch_add(payload as u64, Relaxed);
        }
        stats.mark_media_sent(shared.metrics.started);
        if media == Media::Video && self.ladder.is_some() {
            stats.layer_sent[0].fetch_add(1, Relaxed);
            self.send_layers(client, session, pos, stamp).await?;
        }
        Ok(())
    }

    /// Simulcast: the frame at `pos` of each upper layer sent now, after
    /// layer 0's, stamped like it; each layer numbers its own packets. The
    /// server's last LAYER_HINT decides first which layers go.
    async fn send_layers(
        &mut self,
        client: &Client,
        session: &Session,
        pos: usize,
        stamp: f64,
    ) -> Result<(), SendError> {
        let (stats, pack) = (&client.stats, &client.shared.settings.pack);
        let Some(ladder) = self.ladder.as_mut() else {
            return Ok(());
        };
        let hint = stats.layer_hint.load(Relaxed);
        ladder.hint(hint.checked_sub(1).map(|m| m as u32));
        match ladder.poll(Instant::now()) {
            Some(Change::Shed(_)) => {
                stats.layer_changes[0].fetch_add(1, Relaxed);
            }
            Some(Change::Restored(_)) => {
                stats.layer_changes[1].fetch_add(1, Relaxed);
            }
            None => {}
        }
        stats.layers_active.store(ladder.active() as u64, Relaxed);
        let upper: Vec<(u32, usize)> = ladder.upper().collect();
        for (layer, track) in upper {
            let (Some(frame), Some(data)) = (pack.frame(track, pos), pack.frame_bytes(track, pos))
            else {
                continue;
            };
            let Some(ladder) = self.ladder.as_mut() else {
                break;
            };
            let clock = pack.tracks()[track].clock_rate.max(1) as f64;
            let fields = wire::MediaFields {
                media_type: wire::media_type::VIDEO,
                sequence: ladder.take_seq(layer),
                timestamp_ms: stamp,
                duration_ms: frame.duration as f64 * 1000.0 / clock,
                key: frame.key,
                layer,
            };
            let head = self.heads.push(self.prefix.build(&fields, data.len()));
            let payload = data.len() as u64;
            let r = self
                .send(client, session, Media::Video, &mut [head, data])
                .await;
            if matches!(r, Err(SendError::Unsent(_) | SendError::Stopped)) {
                if let Some(l) = self.ladder.as_mut() {
                    l.unsend(layer);
                }
            }
            r?;
            stats.sent_payload[1].fetch_add(payload, Relaxed);
            stats.layer_sent[synth_common::layers::slot(layer)].fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Sends what the schedule says is due at `now`: frames, a heartbeat.
    pub(super) async fn send_due(
        &mut self,
        client: &Client,
        session: &Session,
        now: Instant,
    ) -> Result<(), SendError> {
        let (shared, stats, shard) = (&client.shared, &client.stats, client.plan.index);
        let due = self.schedule.poll(&shared.settings.pack, now);
        if due.keyframe_jump {
            stats.keyframes_answered.fetch_add(1, Relaxed);
            let asked = stats.keyframe_asked_us.swap(0, Relaxed);
            if asked != 0 {
                let took = since_start(shared).saturating_sub(asked);
                shared.metrics.keyframe_answer.record(took, shard);
            }
        }
        for (go, media) in [
            (due.audio, Media::Audio),
            (due.video, Media::Video),
            (due.screen, Media::Screen),
        ] {
            if go {
                self.send_frame(client, session, media, now).await?;
            }
        }
        if due.heartbeat {
            let f = self.schedule.flags();
            self.schedule.told(f, now);
            stats.flags.store(f.bits(), Relaxed);
            if f.speaking {
                stats.speaking_heartbeats.fetch_add(1, Relaxed);
            }
            let flags = wire::HeartbeatFlags {
                audio: f.audio,
                video: f.video,
                screen: f.screen,
                speaking: f.speaking,
            };
            let hb = Bytes::from(wire::heartbeat(&client.plan.user_id, unix_ms(), flags));
            if self.browser {
                // As upstream's web client: a datagram, never acknowledged.
                let len = hb.len();
                session
                    .send_datagram(hb)
                    .map_err(|e| SendError::Unsent(e.to_string()))?;
                stats.sent(Media::Heartbeat, len);
            } else {
                self.send(client, session, Media::Heartbeat, &mut [hb])
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends a `browser`'s control packet (DIAGNOSTICS, HEALTH, a key-frame
    /// request: on its own stream, as upstream's web client does) or a
    /// view's VIEWPORT or LAYER_PREFERENCE, and counts it.
    pub(super) async fn send_control(
        &mut self,
        client: &Client,
        session: &Session,
        kind: Out,
        packet: Bytes,
    ) -> Result<(), SendError> {
        let r = self
            .send(client, session, Media::Other, &mut [packet])
            .await;
        if !matches!(r, Err(SendError::Unsent(_) | SendError::Stopped)) {
            let stats = &client.stats;
            match kind {
                Out::Control(k) => stats.control_sent[k as usize].fetch_add(1, Relaxed),
                Out::Viewport => stats.view_sent[0].fetch_add(1, Relaxed),
                Out::Preference => stats.view_sent[1].fetch_add(1, Relaxed),
            };
        }
        r
    }
}

/// Counts a session as sending until dropped.
pub(super) struct Sending<'a>(&'a AtomicUsize);

impl<'a> Sending<'a> {
    pub(super) fn new(n: &'a AtomicUsize) -> Sending<'a> {
        n.fetch_add(1, Relaxed);
        Sending(n)
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
