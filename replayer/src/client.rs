//! One synthetic participant: the driver that connects, runs the session's
//! two tasks and reconnects when the session drops.
//!
//! What to send when is decided by the pure [`Schedule`] (audio cadence,
//! video batch window, heartbeats, key-frame jumps, all on explicit
//! instants); what a received packet means is decided by the pure
//! [`Accounting`]. This module only does the I/O: the sender writes what the
//! schedule says is due (one uni stream per packet) and sleeps until the next
//! wake-up; the receiver reads streams concurrently ([`Reads`]: a large key
//! frame never holds up the audio behind it) and datagrams, and hands each
//! packet to the accounting. Both are tasks on the client's thread and write
//! only to the client's own [`ClientStats`] and to sharded histograms.

use std::collections::{HashMap, VecDeque};
use std::future::Future as _;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use synth_common::clock::unix_ms;
use synth_common::net::{ReadFail, Reads};
use synth_common::pack::{FrameDigests, Reader};
use synth_common::wire::{self, MediaPrefix};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{sleep_until, timeout};
use web_transport_quinn::{ClientError, SendStream, Session};

use crate::adapt;
use crate::config::Credentials;
use crate::metrics::{ClientStats, FailReason, Media, Metrics, State};
use crate::pacer::{Backlog, Heads, Lane, Schedule, Voice};
use crate::people::{Action, Cause, EndCause};
use crate::plan::ClientPlan;
use crate::receive::{Accounting, Context};

/// Run-wide context shared by every client.
#[derive(Debug)]
pub struct Shared {
    /// The pack, read once.
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
    /// Every user id of this process with its client index, to tell our own
    /// senders (same clock, known frames) from others.
    pub ours: HashMap<Box<[u8]>, usize>,
    /// Each client's user id, by index.
    pub users: Vec<Box<[u8]>>,
    /// The client indexes of each meeting.
    pub meetings: HashMap<String, Vec<usize>>,
    /// The pack's frame digests, for the integrity check.
    pub digests: FrameDigests,
    /// Audio and video playout budgets, ms.
    pub late_after_ms: [f64; 2],
    /// At the end, the wait for a session's streams to be acknowledged.
    pub ack_wait: Duration,
    /// Sessions still sending or waiting for their acknowledgements: the run
    /// waits for none before it lets receivers drain.
    pub sending: AtomicUsize,
    /// Flips to `true` when receivers have drained and sessions may close.
    pub close: watch::Receiver<bool>,
    /// When the run started: clients start at `t0 + plan.start_after`.
    pub t0: Instant,
    /// Flips to `true` when the run must stop.
    pub stop: watch::Receiver<bool>,
    /// The capacity-search step whose clients may start (0 without a search).
    pub gate: watch::Receiver<(usize, Duration)>,
}

/// How a session ended.
enum End {
    /// The run is over.
    Stopped,
    /// The client left the meeting on purpose (its script).
    Left,
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
            let mut claims =
                synth_common::jwt::Claims::participant(&plan.user_id, &plan.meeting_id, *ttl);
            if plan.behaviour.viewer {
                // A viewer: the server lets it receive and drops its media.
                claims.room_join = false;
                claims.observer = true;
            }
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
    let shown = synth_common::redact::url(url);
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

/// At a planned leave, the longest wait for the session's streams to be
/// acknowledged before it closes.
const LEAVE_ACK_WAIT: Duration = Duration::from_millis(500);

/// How often an impaired client's QUIC statistics are sampled.
const QUIC_SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Runs one client until the run stops, connecting through `endpoint` (the
/// QUIC endpoint of the client's thread). Never returns an error: failures are
/// counted in metrics and logged.
/// With `quic`, each session's QUIC statistics are sampled into it (the
/// client has a network, `netem`).
///
/// The client's sessions follow its plan's script ([`crate::people`]): each
/// planned session starts at its time and ends at its time (a leave: the
/// session's streams are given a moment to be acknowledged, then it closes);
/// a session the server or the network drops is reconnected within the
/// planned one. Without a script it has one session from its start to the end.
pub async fn run(
    shared: Arc<Shared>,
    endpoint: web_transport_quinn::Client,
    plan: ClientPlan,
    quic: Option<Arc<crate::netem::QuicStats>>,
) {
    let stats = shared.metrics.clients[plan.index].clone();
    let mut stop = shared.stop.clone();
    let sessions = plan.sessions();
    let Some(first) = sessions.first() else {
        // Its schedule never needs it: it stays pending.
        return;
    };
    let mut start_at = shared.t0 + first.start;
    if plan.step > 0 {
        // A search step's clients start once the step before has passed
        // (never before their step's planned start), as far into their step
        // as planned: a step that began late (the one before waited for its
        // clients) starts them that much later.
        let mut gate = shared.gate.clone();
        let late = tokio::select! {
            g = gate.wait_for(|g| g.0 >= plan.step) => g.map_or(Duration::ZERO, |g| g.1),
            _ = stop.wait_for(|s| *s) => return,
        };
        start_at = (start_at + late).max(Instant::now());
    }
    tokio::select! {
        _ = sleep_until(start_at.into()) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    let mut sender = Sender::new(&shared, &plan, start_at + plan.phase);
    let mut accounting = Some(Accounting::new(&plan.user_id));
    let url = match session_url(&shared.server, &plan, &shared.credentials) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(user = %plan.user_id, "cannot build the session URL: {e:#}");
            stats.set_state(State::Failed);
            return;
        }
    };
    let mut failures = 0u32;
    // When the current run of failed attempts began (a client that had
    // connected retries a refusal or a TLS failure for RETRY_REFUSED).
    let mut failing_since: Option<Instant> = None;
    'planned: for (k, planned) in sessions.iter().enumerate() {
        let back_at = shared.t0 + planned.start;
        if k > 0 {
            stats.set_state(State::Away);
            // While away its actions and turns still happen (it comes back
            // muted if it was muted).
            loop {
                let next = sender.next_change().min(back_at);
                tokio::select! {
                    _ = sleep_until(next.into()) => {}
                    _ = stop.wait_for(|s| *s) => break 'planned,
                }
                sender.apply_due(&shared, &stats, Instant::now());
                if Instant::now() >= back_at {
                    break;
                }
            }
        }
        let leave_at = planned.end.map(|e| shared.t0 + e);
        let mut up = false;
        stats.set_state(if stats.ever_connected.load(Relaxed) {
            State::Reconnecting
        } else {
            State::Connecting
        });
        loop {
            if *stop.borrow() {
                break 'planned;
            }
            if leave_at.is_some_and(|t| Instant::now() >= t) {
                // The planned session is over before it could start again.
                stats.set_state(State::Away);
                continue 'planned;
            }
            // The connect time is the handshake's, not the wait for a slot.
            let (attempt, took) = {
                let _slot = shared.connect_slots.acquire().await;
                let started = Instant::now();
                let r = timeout(shared.connect_timeout, endpoint.connect(url.clone())).await;
                (r, started.elapsed())
            };
            let f = match attempt {
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(classify(&e, &url)),
                Err(_) => Err(ConnectFailure {
                    reason: FailReason::Timeout,
                    message: format!(
                        "{}: no session within {:?} (is a server listening there?)",
                        synth_common::redact::url(&url),
                        shared.connect_timeout
                    ),
                }),
            };
            let session = match f {
                Ok(s) => s,
                Err(f) => {
                    let (n, since) = (&mut failures, &mut failing_since);
                    if fail(&shared, &stats, &plan, f, n, since, &mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            shared
                .metrics
                .connect
                .record(took.as_micros() as u64, plan.index);
            failures = 0;
            failing_since = None;
            stats.set_state(State::Connected);
            let Some(mut acc) = accounting.take() else {
                break 'planned;
            };
            let now = Instant::now();
            if !up {
                // The first session of a planned one: a join, or a way back.
                if planned.cause == Cause::Join {
                    stats.joins.fetch_add(1, Relaxed);
                } else {
                    stats.rejoins.fetch_add(1, Relaxed);
                    let took = now.saturating_duration_since(back_at);
                    shared
                        .metrics
                        .rejoin
                        .record(took.as_micros() as u64, plan.index);
                }
            }
            if !up && k > 0 {
                // Back after leaving on purpose: what was sent meanwhile is
                // not owed to it, and its own media start afresh.
                stats.stay_first_packet_unix_us.store(0, Relaxed);
                acc.rejoin((unix_ms() * 1000.0) as u64, peers_now(&shared, &plan));
                sender.rejoin(&shared, &stats, now);
            } else {
                // Only the first session counts (`join` ignores later ones).
                acc.join((unix_ms() * 1000.0) as u64, peers_now(&shared, &plan));
            }
            up = true;
            if let Some(q) = &quic {
                let conn: quinn::Connection = (*session).clone();
                tokio::spawn(crate::netem::sample(q.clone(), conn, QUIC_SAMPLE_EVERY));
            }
            let (end, mut acc) =
                run_session(&shared, &plan, &stats, &mut sender, acc, session, leave_at).await;
            if matches!(end, End::Left) {
                acc.leave(peers_now(&shared, &plan));
                publish(&stats, &acc);
            }
            accounting = Some(acc);
            match end {
                End::Stopped => break 'planned,
                End::Left => {
                    stats.set_state(State::Away);
                    stats.leaves.fetch_add(1, Relaxed);
                    if planned.end_cause == Some(EndCause::Storm) {
                        stats.storm_drops.fetch_add(1, Relaxed);
                    }
                    continue 'planned;
                }
                End::Lost(why) => {
                    tracing::warn!(user = %plan.user_id, "session lost: {why}; reconnecting");
                    stats.reconnects.fetch_add(1, Relaxed);
                    stats.set_state(State::Reconnecting);
                    if backoff(1, &mut stop).await {
                        break 'planned;
                    }
                }
            }
        }
    }
    match stats.state() {
        // Gone for good before the end: it stays away.
        State::Failed | State::Away => {}
        _ => stats.set_state(State::Done),
    }
}

/// The other clients of this process in `plan`'s meeting: user id, index
/// and their next audio and video sequence numbers now.
fn peers_now<'a>(
    shared: &'a Shared,
    plan: &'a ClientPlan,
) -> impl Iterator<Item = (Box<[u8]>, usize, [u64; 2])> + 'a {
    shared
        .meetings
        .get(&plan.meeting_id)
        .into_iter()
        .flatten()
        .filter(move |&&i| i != plan.index)
        .map(|&i| {
            let c = &shared.metrics.clients[i];
            let next = [c.next_seq[0].load(Relaxed), c.next_seq[1].load(Relaxed)];
            (shared.users[i].clone(), i, next)
        })
}

/// How long a client that had connected keeps retrying a refusal or a TLS
/// failure (a server mid-deploy may refuse, or serve another certificate,
/// for a while) before it counts as failed.
pub const RETRY_REFUSED: Duration = Duration::from_secs(30);

/// Counts a failed attempt; returns true when the client gives up (or the run stops).
async fn fail(
    shared: &Shared,
    stats: &ClientStats,
    plan: &ClientPlan,
    f: ConnectFailure,
    failures: &mut u32,
    failing_since: &mut Option<Instant>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    shared.metrics.connect_failed(f.reason);
    *failures += 1;
    let since = *failing_since.get_or_insert_with(Instant::now);
    let ever = stats.ever_connected.load(Relaxed);
    let refused = f.reason == FailReason::Rejected || f.reason == FailReason::Tls;
    let give_up = if ever {
        refused && since.elapsed() >= RETRY_REFUSED
    } else {
        refused || *failures >= shared.connect_attempts
    };
    if give_up {
        // One line per client would flood a large run: the run reports the
        // first failure and the counts by reason.
        tracing::debug!(user = %plan.user_id, "giving up: {}", f.message);
        if let Ok(mut first) = shared.metrics.first_failure.lock() {
            first.get_or_insert(f.message.clone());
        }
        stats.set_state(State::Failed);
        return true;
    }
    tracing::debug!(user = %plan.user_id, attempt = *failures, "{}; retrying", f.message);
    if ever {
        stats.set_state(State::Reconnecting);
    }
    backoff(*failures, stop).await
}

/// Exponential backoff with jitter: 250 ms × 2^(n-1), at most 2 s, ±50 %, so
/// a client is back within a few seconds of a server's restart.
/// Returns true if the run stopped while waiting.
async fn backoff(n: u32, stop: &mut watch::Receiver<bool>) -> bool {
    let base = Duration::from_millis(250).saturating_mul(1 << n.saturating_sub(1).min(6));
    let base = base.min(MAX_BACKOFF);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    tokio::select! {
        _ = tokio::time::sleep(base.mul_f64(jitter)) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A client's send state, kept across reconnects so sequence numbers and
/// timestamps keep rising.
struct Sender {
    prefix: MediaPrefix,
    heads: Heads,
    schedule: Schedule,
    keyframe: Arc<Notify>,
    inflight: Inflight,
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
struct Inflight {
    q: VecDeque<(SendStream, Media, u64)>,
}

/// How often a session with sends in flight looks for their acknowledgements
/// when nothing is due.
const SETTLE_EVERY: Duration = Duration::from_millis(200);

/// Streams remembered at most; beyond, the oldest is forgotten (and stays unacknowledged).
const MAX_INFLIGHT: usize = 1 << 16;

/// Whether a stream's data and FIN were all acknowledged: `Some(true)`,
/// `Some(false)` when it never will be (stopped by the peer, or the session
/// is gone), `None` while it is in flight. Never waits.
fn acked(s: &SendStream) -> Option<bool> {
    let fut = s.stopped();
    let mut fut = std::pin::pin!(fut);
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(Ok(None)) => Some(true),
        Poll::Ready(_) => Some(false),
        Poll::Pending => None,
    }
}

impl Inflight {
    /// Counts what was acknowledged since the last call, and notes when the
    /// oldest send still waiting began.
    fn settle(&mut self, stats: &ClientStats) {
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

    fn push(&mut self, s: SendStream, media: Media, began_us: u64) {
        if self.q.len() == MAX_INFLIGHT {
            self.q.pop_front();
        }
        self.q.push_back((s, media, began_us));
    }

    /// Waits (at most `limit`) until every stream is acknowledged, then
    /// counts each one that was; the rest never will be.
    async fn drain(&mut self, stats: &ClientStats, limit: Duration) {
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
    fn forget(&mut self, stats: &ClientStats) {
        self.q.clear();
        stats.waiting_since_us.store(0, Relaxed);
    }
}

impl Sender {
    fn new(shared: &Shared, plan: &ClientPlan, start: Instant) -> Sender {
        let pack = &shared.pack;
        let b = &plan.behaviour;
        let mut schedule = Schedule::new(
            plan.audio_track
                .map(|t| Lane::new(pack, t, Media::Audio, start)),
            plan.video_track
                .map(|t| Lane::new(pack, t, Media::Video, start)),
            start,
            shared.heartbeat_interval,
            shared.batch_window,
        );
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
            inflight: Inflight {
                q: VecDeque::with_capacity(64),
            },
            stop: shared.stop.clone(),
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
                .map(|(t, a)| (shared.t0 + *t, a.clone()))
                .collect(),
            turns: plan.behaviour.script.speaking.as_ref().map(|v| {
                let turns = v
                    .iter()
                    .map(|(a, b)| (shared.t0 + *a, shared.t0 + *b))
                    .collect();
                (turns, 0)
            }),
            video_track: plan.video_track,
        };
        if sender.turns.is_some() {
            sender.schedule.set_talking(pack, false);
        }
        sender
    }

    /// When its script next changes something (an action, a turn's start
    /// or end); far in the future when nothing is left.
    fn next_change(&self) -> Instant {
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
    fn apply_due(&mut self, shared: &Shared, stats: &ClientStats, now: Instant) {
        let pack = &shared.pack;
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
    fn rejoin(&mut self, shared: &Shared, stats: &ClientStats, now: Instant) {
        self.apply_due(shared, stats, now);
        self.schedule.rejoin(now, &shared.pack);
        for r in &stats.resumes {
            r.fetch_add(1, Relaxed);
        }
    }

    /// Samples the session for an adapting client when a sample is due,
    /// and hands the controller's switch to the video lane.
    fn adapt_sample(&mut self, shared: &Shared, session: &Session, stats: &ClientStats) {
        let Some(a) = self.adapt.as_mut() else { return };
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
            since_start(shared).saturating_sub(waiting)
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
    fn adapt_track(&mut self, shared: &Shared, stats: &ClientStats, end: bool) {
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
        let pack = &shared.pack;
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

/// µs since the run started, plus one (0 means "never" in the stats).
fn since_start(shared: &Shared) -> u64 {
    shared.metrics.started.elapsed().as_micros() as u64 + 1
}

/// Records the frames a lane skipped as late sends (no coordinated omission).
fn record_backlog(shared: &Shared, stats: &ClientStats, b: Backlog, shard: usize) {
    stats
        .skipped_us
        .fetch_add(b.late.as_micros() as u64, Relaxed);
    shared.metrics.lateness.record_correct(
        b.late.as_micros() as u64,
        b.interval.as_micros() as u64,
        shard,
    );
}

/// Why a packet did not go out whole.
#[derive(Debug)]
enum SendError {
    /// No stream was opened: nothing of it left (the session is gone).
    Unsent(String),
    /// Its stream was opened and written to, then failed: counted as sent,
    /// and it will never be acknowledged.
    Broken(String),
    /// The run stopped while the send waited for stream credit.
    Stopped,
}

impl SendError {
    fn why(self) -> String {
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
    async fn send(
        &mut self,
        shared: &Shared,
        session: &Session,
        stats: &ClientStats,
        media: Media,
        chunks: &mut [Bytes],
    ) -> Result<(), SendError> {
        let began = since_start(shared);
        self.inflight.settle(stats);
        if stats.waiting_since_us.load(Relaxed) == 0 {
            stats.waiting_since_us.store(began, Relaxed);
        }
        let len = chunks.iter().map(|c| c.len()).sum();
        let opened = Instant::now();
        let s = tokio::select! {
            biased;
            s = session.open_uni() => Some(s),
            _ = self.stop.wait_for(|s| *s) => None,
        };
        // Counted whether or not the wait ended in a stream: a session that
        // dies while waiting waited all the same.
        let waited = opened.elapsed();
        if waited >= Duration::from_millis(1) {
            stats
                .credit_wait_us
                .fetch_add(waited.as_micros() as u64, Relaxed);
        }
        let mut s = s
            .ok_or(SendError::Stopped)?
            .map_err(|e| SendError::Unsent(e.to_string()))?;
        let written = match s.write_all_chunks(chunks).await {
            Ok(()) => s.finish().map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = written {
            stats.sent(media, len);
            return Err(SendError::Broken(e));
        }
        if stats.stay_first_packet_unix_us.load(Relaxed) == 0 {
            let now = (unix_ms() * 1000.0) as u64;
            stats.stay_first_packet_unix_us.store(now, Relaxed);
            if stats.first_packet_unix_us.load(Relaxed) == 0 {
                stats.first_packet_unix_us.store(now, Relaxed);
            }
        }
        stats.sent(media, len);
        // Polled for its acknowledgement at the next settle (before the next
        // send, or after this wake-up's sends).
        self.inflight.push(s, media, began);
        Ok(())
    }
}

impl Sender {
    /// Sends the lane's due frame; the lane moves on to the next one.
    async fn send_frame(
        &mut self,
        shared: &Shared,
        session: &Session,
        stats: &ClientStats,
        media: Media,
        shard: usize,
        now: Instant,
    ) -> Result<(), SendError> {
        let (prefix, heads) = (&mut self.prefix, &mut self.heads);
        let Some(lane) = self.schedule.lane_mut(media) else {
            return Ok(());
        };
        let Some(p) = lane.next_packet(&shared.pack, prefix, heads, now, unix_ms()) else {
            return Err(SendError::Unsent("frame index out of range".into()));
        };
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
            record_backlog(shared, stats, b, shard);
        }
        let payload = p.data.len();
        let r = self
            .send(shared, session, stats, media, &mut [p.head, p.data])
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
        Ok(())
    }

    async fn send_due(
        &mut self,
        shared: &Shared,
        session: &Session,
        stats: &ClientStats,
        user: &str,
        shard: usize,
        now: Instant,
    ) -> Result<(), SendError> {
        let due = self.schedule.poll(&shared.pack, now);
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
                self.send_frame(shared, session, stats, media, shard, now)
                    .await?;
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
            let hb = Bytes::from(wire::heartbeat(user, unix_ms(), flags));
            self.send(shared, session, stats, Media::Heartbeat, &mut [hb])
                .await?;
        }
        Ok(())
    }
}

/// Counts a session as sending until dropped.
struct Sending<'a>(&'a AtomicUsize);

impl<'a> Sending<'a> {
    fn new(n: &'a AtomicUsize) -> Sending<'a> {
        n.fetch_add(1, Relaxed);
        Sending(n)
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

async fn run_session(
    shared: &Arc<Shared>,
    plan: &ClientPlan,
    stats: &Arc<ClientStats>,
    sender: &mut Sender,
    accounting: Accounting,
    session: Session,
    leave_at: Option<Instant>,
) -> (End, Accounting) {
    let mut stop = shared.stop.clone();
    let shard = plan.index;
    let user = plan.user_id.as_str();
    let connection = Bytes::from(wire::connection(user, &plan.meeting_id));
    let (done_tx, done_rx) = watch::channel(false);
    let receiver = tokio::spawn(receive(
        shared.clone(),
        session.clone(),
        stats.clone(),
        accounting,
        sender.keyframe.clone(),
        shard,
        done_rx,
    ));
    let finish = |end: End,
                  done_tx: watch::Sender<bool>,
                  receiver: tokio::task::JoinHandle<Accounting>| async move {
        let _ = done_tx.send(true);
        let acc = match receiver.await {
            Ok(acc) => acc,
            // The receive task cannot panic short of a bug; start afresh then.
            Err(_) => Accounting::new(user),
        };
        (end, acc)
    };
    let sending = Sending::new(&shared.sending);
    let first_session = stats.first_packet_unix_us.load(Relaxed) == 0;
    if let Err(e) = sender
        .send(shared, &session, stats, Media::Other, &mut [connection])
        .await
    {
        sender.inflight.forget(stats);
        let end = match e {
            SendError::Stopped => End::Stopped,
            e => End::Lost(e.why()),
        };
        return finish(end, done_tx, receiver).await;
    }
    // Resume on schedule from now rather than bursting. After a reconnect,
    // what the outage skipped still counts as late (no coordinated
    // omission); before the first session, the plan's start waited for the
    // connection, which is not a late send.
    let skipped = sender.schedule.resume(Instant::now(), &shared.pack);
    sender.adapt_track(shared, stats, false);
    if !first_session {
        for b in skipped.into_iter().flatten() {
            record_backlog(shared, stats, b, shard);
        }
    }
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
    let sleep = tokio::time::sleep_until(sender.schedule.next_wake().into());
    tokio::pin!(stopped, closed, notified, sleep);
    let end = loop {
        // With sends in flight, wake at least every SETTLE_EVERY to see
        // their acknowledgements (a client with no media only sends
        // heartbeats, and must not look stalled between them).
        let mut wake = sender.schedule.next_wake();
        if !sender.inflight.q.is_empty() {
            wake = wake.min(Instant::now() + SETTLE_EVERY);
        }
        if let Some(a) = &sender.adapt {
            wake = wake.min(a.next);
        }
        wake = wake.min(sender.next_change());
        if let Some(t) = leave_at {
            wake = wake.min(t);
        }
        sleep.as_mut().reset(wake.into());
        tokio::select! {
            biased;
            _ = &mut stopped => break End::Stopped,
            e = &mut closed => break End::Lost(e.to_string()),
            _ = &mut notified => {
                sender.schedule.request_keyframe();
                notified.set(keyframe.notified());
            }
            _ = &mut sleep => {}
        }
        sender.adapt_sample(shared, &session, stats);
        let now = Instant::now();
        if leave_at.is_some_and(|t| now >= t) {
            break End::Left;
        }
        sender.apply_due(shared, stats, now);
        let sent = sender
            .send_due(shared, &session, stats, user, shard, now)
            .await;
        sender.adapt_track(shared, stats, false);
        match sent {
            Ok(()) => {}
            Err(SendError::Stopped) => break End::Stopped,
            Err(e) => {
                stats.send_errors.fetch_add(1, Relaxed);
                break End::Lost(e.why());
            }
        }
        sender.inflight.settle(stats);
    };
    sender.adapt_track(shared, stats, true);
    match end {
        End::Stopped => {
            // An honest end: what was written reaches the server before the
            // session closes. Wait (bounded) for every stream's
            // acknowledgement, then for the run's word that receivers have
            // drained, and close properly.
            sender.inflight.drain(stats, shared.ack_wait).await;
            drop(sending);
            let mut close = shared.close.clone();
            tokio::select! {
                _ = close.wait_for(|c| *c) => {}
                _ = &mut closed => {}
            }
            session.close(0, b"run finished");
        }
        End::Left => {
            // Leaving as a person does: what was sent gets a moment to
            // reach the server, then the session closes.
            sender
                .inflight
                .drain(stats, shared.ack_wait.min(LEAVE_ACK_WAIT))
                .await;
            drop(sending);
            session.close(0, b"leaving");
        }
        End::Lost(_) => {
            sender.inflight.forget(stats);
            drop(sending);
        }
    }
    finish(end, done_tx, receiver).await
}

/// What the receive loop waits for.
enum Event {
    /// A packet (a whole stream or a datagram), or why a stream gave none.
    Read(Result<Bytes, ReadFail>),
    /// The session closed or the sender is done.
    End,
}

/// Drains the session until it closes or `done` fires: streams are read
/// concurrently, each to its end, and datagrams as they come. Returns the
/// accounting for the next session.
async fn receive(
    shared: Arc<Shared>,
    session: Session,
    stats: Arc<ClientStats>,
    mut accounting: Accounting,
    keyframe: Arc<Notify>,
    shard: usize,
    mut done: watch::Receiver<bool>,
) -> Accounting {
    let cx = Context {
        ours: &shared.ours,
        clients: &shared.metrics.clients,
        digests: &shared.digests,
        late_after_ms: shared.late_after_ms,
    };
    let mut reads = Reads::default();
    // Each future is re-armed only when it completes, not at every packet.
    let accept = session.accept_uni();
    let datagram = session.read_datagram();
    let finished = done.changed();
    tokio::pin!(accept, datagram, finished);
    loop {
        // One poll function instead of a select!, so a newly accepted stream
        // is read at once with this task's context: a packet that has fully
        // arrived costs no queueing and no second wake-up.
        let event = std::future::poll_fn(|cx| {
            if finished.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::End);
            }
            // Streams already being read first, so they never wait behind
            // a run of new ones.
            if !reads.is_empty() {
                if let Poll::Ready(r) = reads.poll_next(cx) {
                    return Poll::Ready(Event::Read(r));
                }
            }
            loop {
                match accept.as_mut().poll(cx) {
                    Poll::Ready(Ok(stream)) => {
                        accept.set(session.accept_uni());
                        match reads.start(stream, cx) {
                            Poll::Ready(r) => return Poll::Ready(Event::Read(r)),
                            // Queued: poll it once with the queue's waker.
                            Poll::Pending => {
                                if let Poll::Ready(r) = reads.poll_next(cx) {
                                    return Poll::Ready(Event::Read(r));
                                }
                            }
                        }
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::End),
                    Poll::Pending => break,
                }
            }
            match datagram.as_mut().poll(cx) {
                Poll::Ready(Ok(d)) => {
                    datagram.set(session.read_datagram());
                    Poll::Ready(Event::Read(Ok(d)))
                }
                Poll::Ready(Err(_)) => Poll::Ready(Event::End),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let buf = match event {
            Event::Read(Ok(b)) => b,
            Event::Read(Err(ReadFail::TooLong | ReadFail::Reset)) => {
                stats.bad_packets.fetch_add(1, Relaxed);
                continue;
            }
            Event::End => break,
        };
        let h = accounting.handle(&buf, unix_ms(), &cx, &stats);
        let m = &shared.metrics;
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
        if h.keyframe_request {
            let _ =
                stats
                    .keyframe_asked_us
                    .compare_exchange(0, since_start(&shared), Relaxed, Relaxed);
            keyframe.notify_one();
        }
    }
    publish(&stats, &accounting);
    accounting
}

/// Publishes each sender as `accounting` saw it into `stats` (for the report).
fn publish(stats: &ClientStats, accounting: &Accounting) {
    if let Ok(mut peers) = stats.peers.lock() {
        for (id, view) in accounting.peers() {
            peers.insert(String::from_utf8_lossy(id).into_owned(), view);
        }
    }
}
