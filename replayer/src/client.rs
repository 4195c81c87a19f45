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

use std::collections::{HashSet, VecDeque};
use std::future::Future as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use synth_common::clock::unix_ms;
use synth_common::net::{ReadFail, Reads};
use synth_common::pack::Reader;
use synth_common::wire::{self, MediaPrefix};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{sleep_until, timeout};
use web_transport_quinn::{ClientError, SendStream, Session};

use crate::config::Credentials;
use crate::metrics::{ClientStats, FailReason, Media, Metrics, State};
use crate::pacer::{Heads, Lane, Schedule};
use crate::plan::ClientPlan;
use crate::receive::Accounting;

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
    /// When the run started: clients start at `t0 + plan.start_after`.
    pub t0: Instant,
    /// Flips to `true` when the run must stop.
    pub stop: watch::Receiver<bool>,
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

/// Runs one client until the run stops, connecting through `endpoint` (the
/// QUIC endpoint of the client's thread). Never returns an error: failures are
/// counted in metrics and logged.
pub async fn run(shared: Arc<Shared>, endpoint: web_transport_quinn::Client, plan: ClientPlan) {
    let stats = shared.metrics.clients[plan.index].clone();
    let mut stop = shared.stop.clone();
    let start_at = shared.t0 + plan.start_after;
    tokio::select! {
        _ = sleep_until(start_at.into()) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    stats.set_state(State::Connecting);
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
                if fail(&shared, &stats, &plan, f, &mut failures, &mut stop).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                let f = ConnectFailure {
                    reason: FailReason::Timeout,
                    message: format!(
                        "{}: no session within {:?} (is a server listening there?)",
                        synth_common::redact::url(&url),
                        shared.connect_timeout
                    ),
                };
                if fail(&shared, &stats, &plan, f, &mut failures, &mut stop).await {
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
        stats.set_state(State::Connected);
        let Some(acc) = accounting.take() else { break };
        let (end, acc) = run_session(&shared, &plan, &stats, &mut sender, acc, session).await;
        accounting = Some(acc);
        match end {
            End::Stopped => break,
            End::Lost(why) => {
                tracing::warn!(user = %plan.user_id, "session lost: {why}; reconnecting");
                stats.reconnects.fetch_add(1, Relaxed);
                stats.set_state(State::Reconnecting);
                if backoff(1, &mut stop).await {
                    break;
                }
            }
        }
    }
    if stats.state() != State::Failed {
        stats.set_state(State::Done);
    }
}

/// Counts a failed attempt; returns true when the client gives up (or the run stops).
async fn fail(
    shared: &Shared,
    stats: &ClientStats,
    plan: &ClientPlan,
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
    prefix: MediaPrefix,
    heads: Heads,
    schedule: Schedule,
    keyframe: Arc<Notify>,
    /// The last streams sent, awaited at the end so nothing written is lost.
    tail: VecDeque<SendStream>,
}

impl Sender {
    fn new(shared: &Shared, plan: &ClientPlan, start: Instant) -> Sender {
        let pack = &shared.pack;
        Sender {
            prefix: MediaPrefix::new(&plan.user_id),
            heads: Heads::default(),
            schedule: Schedule::new(
                plan.audio_track
                    .map(|t| Lane::new(pack, t, Media::Audio, start)),
                plan.video_track
                    .map(|t| Lane::new(pack, t, Media::Video, start)),
                start,
                shared.heartbeat_interval,
                shared.batch_window,
            ),
            keyframe: Arc::new(Notify::new()),
            tail: VecDeque::with_capacity(TAIL),
        }
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

/// Streams kept at the end of a session, to wait for their acknowledgement.
const TAIL: usize = 4;

fn keep(tail: &mut VecDeque<SendStream>, s: SendStream) {
    if tail.len() == TAIL {
        tail.pop_front();
    }
    tail.push_back(s);
}

impl Sender {
    /// Sends the lane's due frame; the lane moves on to the next one.
    async fn send_frame(
        &mut self,
        shared: &Shared,
        session: &Session,
        stats: &ClientStats,
        video: bool,
        shard: usize,
        now: Instant,
    ) -> Result<(), String> {
        let lane = if video {
            self.schedule.video.as_mut()
        } else {
            self.schedule.audio.as_mut()
        };
        let Some(lane) = lane else { return Ok(()) };
        let Some(p) = lane.next_packet(
            &shared.pack,
            &mut self.prefix,
            &mut self.heads,
            now,
            unix_ms(),
        ) else {
            return Err("frame index out of range".into());
        };
        shared
            .metrics
            .lateness
            .record(p.lateness.as_micros() as u64, shard);
        let (total, payload, media) = (p.len(), p.data.len(), p.media);
        let stream = send_packet(session, &mut [p.head, p.data]).await?;
        keep(&mut self.tail, stream);
        stats.sent(media, total);
        stats.sent_payload[media as usize].fetch_add(payload as u64, Relaxed);
        stats.mark_media_sent(shared.metrics.started);
        Ok(())
    }

    /// Sends everything the schedule says is due at `now`.
    async fn send_due(
        &mut self,
        shared: &Shared,
        session: &Session,
        stats: &ClientStats,
        user: &str,
        shard: usize,
        now: Instant,
    ) -> Result<(), String> {
        let due = self.schedule.poll(&shared.pack, now);
        if due.keyframe_jump {
            stats.keyframes_answered.fetch_add(1, Relaxed);
        }
        if due.audio {
            self.send_frame(shared, session, stats, false, shard, now)
                .await?;
        }
        if due.video {
            self.send_frame(shared, session, stats, true, shard, now)
                .await?;
        }
        if due.heartbeat {
            let hb = Bytes::from(wire::heartbeat(
                user,
                unix_ms(),
                self.schedule.audio.is_some(),
                self.schedule.video.is_some(),
            ));
            let len = hb.len();
            let s = send_packet(session, &mut [hb]).await?;
            keep(&mut self.tail, s);
            stats.sent(Media::Heartbeat, len);
        }
        Ok(())
    }
}

async fn run_session(
    shared: &Arc<Shared>,
    plan: &ClientPlan,
    stats: &Arc<ClientStats>,
    sender: &mut Sender,
    accounting: Accounting,
    session: Session,
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
    let len = connection.len();
    match send_packet(&session, &mut [connection]).await {
        Ok(s) => keep(&mut sender.tail, s),
        Err(e) => return finish(End::Lost(e), done_tx, receiver).await,
    }
    stats.sent(Media::Other, len);
    // After a reconnect, resume on schedule from now rather than bursting.
    sender.schedule.resume(Instant::now());
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
        sleep.as_mut().reset(sender.schedule.next_wake().into());
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
        let now = Instant::now();
        if let Err(e) = sender
            .send_due(shared, &session, stats, user, shard, now)
            .await
        {
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
        let h = accounting.handle(&buf, unix_ms(), &shared.ours, &stats);
        if let Some((media, us)) = h.latency {
            shared.metrics.latency[media as usize].record(us, shard);
        }
        if h.keyframe_request {
            keyframe.notify_one();
        }
    }
    if let Ok(mut peers) = stats.peers.lock() {
        for (id, [a, v]) in accounting.peers() {
            peers.insert(String::from_utf8_lossy(id).into_owned(), [*a, *v]);
        }
    }
    accounting
}
