//! One session, from its CONNECTION packet (a `bot`'s; a browser sends
//! none) to its close: the sender's loop on the client's task and the
//! receiver on a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::wire;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use web_transport_quinn::{Session, SessionError, WebTransportError};

use crate::client::context::Client;
use crate::client::receiver::{ControlOut, Outgoing, Receiver, CONTROL_QUEUE};
use crate::client::sender::{SendError, Sender, Sending};
use crate::metrics::{Media, SessionEnd};
use crate::session::receive::Accounting;

/// How a session ended.
pub(super) enum End {
    /// The run is over.
    Stopped,
    /// The client left the meeting on purpose (its script).
    Left,
    /// The session dropped; try again.
    Lost(Lost),
}

/// A session that ended without the client's wanting it.
pub(super) struct Lost {
    /// Why, as counted.
    pub(super) ending: Ending,
    /// The error, for the log.
    pub(super) why: String,
}

impl Lost {
    /// The session `session` is lost after `why` (a failed send, or its
    /// close): its cause is the connection's close reason, or our side's
    /// error while the connection is still up; `heard` is what it received.
    fn after(session: &Session, heard: &Mutex<Heard>, why: String) -> Lost {
        let conn: &quinn::Connection = session;
        let now = Instant::now();
        let stats = conn.stats();
        let masked = Masked {
            peer_close: stats.frame_rx.connection_close > 0,
            silent: heard
                .lock()
                .map_or(Duration::ZERO, |h| h.silent(stats.udp_rx.datagrams, now)),
        };
        Lost {
            ending: classify_end(
                conn.close_reason().as_ref(),
                session.close_reason().as_ref(),
                masked,
            ),
            why,
        }
    }
}

/// What a session's connection received, sampled every [`HEARD_EVERY`] by
/// a task of its own (the sender may be blocked on stream credit when the
/// server goes silent), to tell how long the server had been silent when
/// the session ended.
struct Heard {
    /// Datagrams received by then.
    count: u64,
    /// When that count was first seen.
    since: Instant,
}

/// How often [`Heard`] samples the connection's statistics.
const HEARD_EVERY: Duration = Duration::from_millis(250);

impl Heard {
    fn new(now: Instant) -> Heard {
        Heard {
            count: 0,
            since: now,
        }
    }

    /// Samples `conn`.
    fn sample(&mut self, conn: &quinn::Connection, now: Instant) {
        let n = conn.stats().udp_rx.datagrams;
        if n != self.count {
            self.count = n;
            self.since = now;
        }
    }

    /// Samples `conn` into `heard` every [`HEARD_EVERY`] until it closes.
    async fn watch(heard: Arc<Mutex<Heard>>, conn: quinn::Connection) {
        let mut every = tokio::time::interval(HEARD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = conn.closed() => return,
            }
            if let Ok(mut h) = heard.lock() {
                h.sample(&conn, Instant::now());
            }
        }
    }

    /// How long nothing has arrived, with `rx` datagrams received now (at
    /// most [`HEARD_EVERY`] short).
    fn silent(&self, rx: u64, now: Instant) -> Duration {
        if rx == self.count {
            now.saturating_duration_since(self.since)
        } else {
            Duration::ZERO
        }
    }
}

/// What tells how a session ended when its connection's reason was masked
/// (see [`classify_end`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masked {
    /// The server sent a CONNECTION_CLOSE.
    pub peer_close: bool,
    /// How long nothing had arrived from the server when the session ended.
    pub silent: Duration,
}

/// A masked end after this much silence from the server is our idle
/// timeout: a live server answers the keep-alives (and acknowledges what
/// the client sends) far sooner.
pub const SILENT_FOR_IDLE: Duration = Duration::from_millis(500);

/// The key of a masked close by the server whose code was not kept.
pub const CODE_NOT_KEPT: &str = "no code: connection closed (code not kept)";

/// Why a session that was up ended without the client's wanting it: its
/// cause and, when the server closed it, its `"<code> <reason>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The cause: never [`SessionEnd::Planned`].
    pub cause: SessionEnd,
    /// The server's close: `0x<code> <reason>` for a WebTransport session
    /// closed with a code, `h3 0x<code> <reason>` for an HTTP/3 code the
    /// connection was closed with, `quic 0x<code> <reason>` for a QUIC
    /// transport error the server's stack closed it with.
    pub close: Option<String>,
}

/// The longest reason kept of a server's close, in characters.
const CLOSE_REASON_CHARS: usize = 80;

/// The key of an end with no close from the server and no silence before
/// it: the server ended the session's CONNECT stream, or reset the
/// connection (web-transport-quinn then closes the connection itself and
/// QUIC's own reason is lost).
pub const CONNECT_STREAM_ENDED: &str = "no code: CONNECT stream ended or connection reset";

/// Sorts how a session that ended without the client's wanting it ended
/// into an [`Ending`]: `conn` is its QUIC connection's close reason (`None`:
/// the connection is still up, and our side gives it up after a failed
/// write), `session` the WebTransport session's.
///
/// A WebTransport session close (its capsule) always gives its code and
/// reason. Otherwise the connection's reason is used, when it is known:
/// web-transport-quinn closes the connection itself as soon as the
/// session's CONNECT stream fails, whatever failed it, and quinn then
/// reports every end as closed locally (it keeps the last reason, not the
/// first). Such a masked end is told by `masked`: a CONNECTION_CLOSE from
/// the server is its close (code not kept); [`SILENT_FOR_IDLE`] or more of
/// silence before it is our idle timeout; anything else is the server's
/// end of the CONNECT stream or a reset ([`CONNECT_STREAM_ENDED`]).
pub fn classify_end(
    conn: Option<&quinn::ConnectionError>,
    session: Option<&SessionError>,
    masked: Masked,
) -> Ending {
    use quinn::ConnectionError as C;
    let key = |prefix: &str, code: u64, reason: &[u8]| {
        let reason: String = String::from_utf8_lossy(reason)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(CLOSE_REASON_CHARS)
            .collect();
        format!("{prefix}0x{code:x} {}", reason.trim())
            .trim_end()
            .to_owned()
    };
    // A close the server sent as a WebTransport session close (a capsule,
    // or an HTTP/3 code that maps to a session code).
    let wt = match session {
        Some(SessionError::WebTransportError(WebTransportError::Closed(code, reason))) => {
            Some(key("", u64::from(*code), reason.as_bytes()))
        }
        _ => None,
    };
    let (cause, close) = match conn {
        None => (SessionEnd::LocalError, None),
        Some(C::TimedOut) => (SessionEnd::IdleTimeout, None),
        Some(C::Reset) => (SessionEnd::Reset, None),
        Some(C::ApplicationClosed(c)) => (
            SessionEnd::ServerClosed,
            wt.or_else(|| Some(key("h3 ", c.error_code.into_inner(), &c.reason))),
        ),
        Some(C::ConnectionClosed(c)) => (
            SessionEnd::ServerClosed,
            Some(key("quic ", c.error_code.into(), &c.reason)),
        ),
        // Never ours on a lost session (the client closes only at a planned
        // end): the library closed it, after whatever ended the session.
        Some(C::LocallyClosed) => match wt {
            Some(k) => (SessionEnd::ServerClosed, Some(k)),
            None if masked.peer_close => (SessionEnd::ServerClosed, Some(CODE_NOT_KEPT.to_owned())),
            None if masked.silent >= SILENT_FOR_IDLE => (SessionEnd::IdleTimeout, None),
            None => (
                SessionEnd::ServerClosed,
                Some(CONNECT_STREAM_ENDED.to_owned()),
            ),
        },
        Some(C::TransportError(_) | C::VersionMismatch | C::CidsExhausted) => {
            (SessionEnd::LocalError, None)
        }
    };
    Ending { cause, close }
}

/// At a planned leave, the longest wait for the session's streams to be
/// acknowledged before it closes.
const LEAVE_ACK_WAIT: Duration = Duration::from_millis(500);

/// Runs one session of `client` until the run stops, the client leaves (at
/// `leave_at`) or the session drops: the receiver drains it on a task of its
/// own while the sender sends on this one. `server` is the server it is on
/// (a `browser` says so in its HEALTH). Returns how the session ended, and
/// the accounting for the next one.
pub(super) async fn run_session(
    client: &Client,
    sender: &mut Sender,
    accounting: Accounting,
    session: Session,
    server: &str,
    leave_at: Option<Instant>,
) -> (End, Accounting) {
    let (done_tx, done_rx) = watch::channel(false);
    let (control_tx, control) = mpsc::channel(CONTROL_QUEUE);
    let plan = &client.plan;
    let receiver = Receiver {
        shared: client.shared.clone(),
        stats: client.stats.clone(),
        shard: plan.index,
        session: session.clone(),
        keyframe: sender.keyframe(),
        control: (sender.browser() || plan.view.is_some()).then(|| ControlOut {
            tx: control_tx,
            user: plan.user_id.clone(),
            meeting: plan.meeting_id.clone(),
            server: server.to_owned(),
            label: sender.health_label().to_owned(),
        }),
    };
    let receiver = tokio::spawn(receiver.run(accounting, done_rx));
    let sending = Sending::new(&client.shared.signals.sending);
    let mut up = Up {
        client,
        sender,
        session: &session,
        leave_at,
        control,
        heard: Arc::new(Mutex::new(Heard::new(Instant::now()))),
    };
    let conn: &quinn::Connection = &session;
    tokio::spawn(Heard::watch(up.heard.clone(), conn.clone()));
    if let Err(end) = up.open().await {
        let accounting = finish(done_tx, receiver, &client.plan.user_id).await;
        drop(sending);
        return (end, accounting);
    }
    let closed = session.closed();
    tokio::pin!(closed);
    let end = up.drive(closed.as_mut()).await;
    up.sender.adapt_track(client, true);
    up.close(&end, sending, closed).await;
    (end, finish(done_tx, receiver, &client.plan.user_id).await)
}

/// Tells the receiver the session is over, and takes its accounting back.
async fn finish(
    done: watch::Sender<bool>,
    receiver: JoinHandle<Accounting>,
    user: &str,
) -> Accounting {
    let _ = done.send(true);
    match receiver.await {
        Ok(acc) => acc,
        // The receive task cannot panic short of a bug; start afresh then.
        Err(_) => Accounting::new(user),
    }
}

/// A session under way: its client, the sender, the session, and when the
/// client leaves it (`None`: at the end of the run).
struct Up<'a> {
    client: &'a Client,
    sender: &'a mut Sender,
    session: &'a Session,
    leave_at: Option<Instant>,
    /// A `browser`'s control packets from its receiver, to send on streams.
    control: mpsc::Receiver<Outgoing>,
    /// What its connection received, for the cause of its end.
    heard: Arc<Mutex<Heard>>,
}

impl Up<'_> {
    /// The session's CONNECTION packet (a `bot`'s: upstream's web client
    /// sends none), then the schedule resumed; `Err` with how the session
    /// ended when the packet could not go.
    async fn open(&mut self) -> Result<(), End> {
        let (client, sender) = (self.client, &mut *self.sender);
        let plan = &client.plan;
        let first_session = client.stats.first_packet_unix_us.load(Relaxed) == 0;
        if sender.browser() {
            sender.resume(client, first_session);
            return Ok(());
        }
        let connection = Bytes::from(wire::connection(&plan.user_id, &plan.meeting_id));
        if let Err(e) = sender
            .send(client, self.session, Media::Other, &mut [connection])
            .await
        {
            sender.inflight.forget(&client.stats);
            return Err(match e {
                SendError::Stopped => End::Stopped,
                e => End::Lost(Lost::after(self.session, &self.heard, e.why())),
            });
        }
        sender.resume(client, first_session);
        Ok(())
    }

    /// The sender's loop: sleeps until its next wake-up (or a peer's
    /// key-frame request, or a control packet to send), then does what is
    /// due; returns how the session ended. `closed` completes when the
    /// session closes.
    async fn drive(&mut self, mut closed: Pin<&mut impl Future<Output = SessionError>>) -> End {
        let mut stop = self.client.shared.signals.stop.clone();
        // The futures the loop waits on are made once, not at every wake-up.
        let (keyframe, _) = self.sender.keyframe();
        let stopped = async {
            while !*stop.borrow_and_update() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        let notified = keyframe.notified();
        let sleep = tokio::time::sleep_until(self.sender.next_wake(self.leave_at).into());
        tokio::pin!(stopped, notified, sleep);
        loop {
            sleep
                .as_mut()
                .reset(self.sender.next_wake(self.leave_at).into());
            tokio::select! {
                biased;
                _ = &mut stopped => return End::Stopped,
                e = &mut closed => {
                    return End::Lost(Lost::after(self.session, &self.heard, e.to_string()))
                }
                _ = &mut notified => {
                    self.sender.request_keyframe();
                    notified.set(keyframe.notified());
                }
                Some((kind, packet)) = self.control.recv() => {
                    let sent = self
                        .sender
                        .send_control(self.client, self.session, kind, packet)
                        .await;
                    if let Some(end) = self.failed(sent) {
                        return end;
                    }
                    continue;
                }
                _ = &mut sleep => {}
            }
            if let Some(end) = self.wake().await {
                return end;
            }
        }
    }

    /// One wake-up: an adaptation sample, the planned leave, the script's
    /// due actions and the due sends; `Some` when the session is over.
    async fn wake(&mut self) -> Option<End> {
        let (client, sender) = (self.client, &mut *self.sender);
        sender.adapt_sample(client, self.session);
        let now = Instant::now();
        if self.leave_at.is_some_and(|t| now >= t) {
            return Some(End::Left);
        }
        sender.apply_due(client, now);
        let sent = sender.send_due(client, self.session, now).await;
        sender.adapt_track(client, false);
        if let Some(end) = self.failed(sent) {
            return Some(end);
        }
        self.sender.inflight.settle(&client.stats);
        None
    }

    /// How the session ends after a send that failed; `None` when it did not.
    fn failed(&self, sent: Result<(), SendError>) -> Option<End> {
        match sent {
            Ok(()) => None,
            Err(SendError::Stopped) => Some(End::Stopped),
            Err(e) => {
                self.client.stats.send_errors.fetch_add(1, Relaxed);
                Some(End::Lost(Lost::after(self.session, &self.heard, e.why())))
            }
        }
    }

    /// Ends the session as `end` says; `sending` counts it as sending until
    /// its streams are settled, and `closed` completes if the server closes
    /// it first.
    async fn close(
        &mut self,
        end: &End,
        sending: Sending<'_>,
        closed: Pin<&mut impl Future<Output = SessionError>>,
    ) {
        let (stats, ack_wait) = (&self.client.stats, self.client.shared.settings.ack_wait);
        let inflight = &mut self.sender.inflight;
        match end {
            End::Stopped => {
                // An honest end: what was written reaches the server before the
                // session closes. Wait (bounded) for every stream's
                // acknowledgement, then for the run's word that receivers have
                // drained, and close properly.
                inflight.drain(stats, ack_wait).await;
                drop(sending);
                let mut close = self.client.shared.signals.close.clone();
                tokio::select! {
                    _ = close.wait_for(|c| *c) => {}
                    _ = closed => {}
                }
                self.session.close(0, b"run finished");
            }
            End::Left => {
                // Leaving as a person does: what was sent gets a moment to
                // reach the server, then the session closes.
                inflight.drain(stats, ack_wait.min(LEAVE_ACK_WAIT)).await;
                drop(sending);
                self.session.close(0, b"leaving");
            }
            End::Lost(_) => {
                inflight.forget(stats);
                drop(sending);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::{ApplicationClose, ConnectionClose, ConnectionError as C, TransportErrorCode};

    fn ending(conn: C, session: Option<SessionError>) -> (SessionEnd, Option<String>) {
        masked(conn, session, Masked::default())
    }

    fn masked(conn: C, session: Option<SessionError>, m: Masked) -> (SessionEnd, Option<String>) {
        let Ending { cause, close } = classify_end(Some(&conn), session.as_ref(), m);
        (cause, close)
    }

    #[test]
    fn each_close_reason_has_one_cause() {
        use SessionEnd::*;
        // What the session says after an idle timeout (the library marks a
        // session whose CONNECT stream failed as closed locally) does not
        // hide the connection's reason.
        let local = Some(SessionError::ConnectionError(C::LocallyClosed));
        assert_eq!(ending(C::TimedOut, local.clone()), (IdleTimeout, None));
        assert_eq!(ending(C::Reset, local.clone()), (Reset, None));
        // The server closed the WebTransport session: its code and reason.
        let wt = |code, reason: &str| {
            Some(SessionError::WebTransportError(WebTransportError::Closed(
                code,
                reason.into(),
            )))
        };
        assert_eq!(
            ending(C::LocallyClosed, wt(0, "Outbound channel full")),
            (ServerClosed, Some("0x0 Outbound channel full".into()))
        );
        let app = |code: u64, reason: &'static [u8]| ApplicationClose {
            error_code: quinn::VarInt::from_u64(code).unwrap(),
            reason: bytes::Bytes::from_static(reason),
        };
        assert_eq!(
            ending(
                C::ApplicationClosed(app(0x52e4a40fa8db, b"x")),
                wt(9, "bye")
            ),
            (ServerClosed, Some("0x9 bye".into()))
        );
        // An HTTP/3 code on the connection, a QUIC transport error, and a
        // CONNECT stream ended without a close.
        assert_eq!(
            ending(C::ApplicationClosed(app(0x100, b"bye\n")), None),
            (ServerClosed, Some("h3 0x100 bye".into()))
        );
        let quic = ConnectionClose {
            error_code: TransportErrorCode::PROTOCOL_VIOLATION,
            frame_type: None,
            reason: bytes::Bytes::new(),
        };
        assert_eq!(
            ending(C::ConnectionClosed(quic), None),
            (ServerClosed, Some("quic 0xa".into()))
        );
        assert_eq!(
            ending(C::LocallyClosed, local.clone()),
            (ServerClosed, Some(CONNECT_STREAM_ENDED.into()))
        );
        // Masked by the library's own close: a silent server is our idle
        // timeout, a CONNECTION_CLOSE from it is its close.
        let silent = |ms| Masked {
            peer_close: false,
            silent: Duration::from_millis(ms),
        };
        assert_eq!(
            masked(C::LocallyClosed, local.clone(), silent(750)),
            (IdleTimeout, None)
        );
        assert_eq!(
            masked(C::LocallyClosed, local.clone(), silent(100)).0,
            ServerClosed
        );
        let closed = Masked {
            peer_close: true,
            silent: Duration::from_secs(3),
        };
        assert_eq!(
            masked(C::LocallyClosed, local, closed),
            (ServerClosed, Some(CODE_NOT_KEPT.into()))
        );
        // Our own side: a protocol error we detected, a failed write while
        // the connection is up (no close reason).
        assert_eq!(ending(C::CidsExhausted, None), (LocalError, None));
        assert_eq!(classify_end(None, None, closed).cause, LocalError);
    }

    #[test]
    fn a_long_reason_is_cut() {
        let long = Some(SessionError::WebTransportError(WebTransportError::Closed(
            7,
            "x".repeat(500),
        )));
        let (_, close) = ending(C::LocallyClosed, long);
        let close = close.unwrap();
        assert!(close.starts_with("0x7 xxx"), "{close}");
        assert_eq!(close.chars().count(), 4 + CLOSE_REASON_CHARS);
    }
}
