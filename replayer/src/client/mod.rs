//! One synthetic participant: the driver that connects, runs the session's
//! two tasks and reconnects when the session drops.
//!
//! What to send when is decided by the pure [`Schedule`](crate::session::pacer::Schedule)
//! (audio cadence, video batch window, heartbeats, key-frame jumps, all on
//! explicit instants); what a received packet means is decided by the pure
//! [`Accounting`]. This module only does the I/O: the sender writes what the
//! schedule says is due (one uni stream per packet) and sleeps until the next
//! wake-up; the receiver reads streams concurrently
//! ([`Reads`](synth_common::net::Reads): a large key frame never holds up the
//! audio behind it) and datagrams, and hands each packet to the accounting.
//! Both are tasks on the client's thread and write only to the client's own
//! [`ClientStats`](crate::metrics::ClientStats) and to sharded histograms.
//!
//! - this file: [`run`], the client's planned sessions and the reconnect loop;
//! - `connect`: the session URL, what a failed attempt means, the backoff;
//! - `elect`: a browser's choice among several servers (`server_urls`);
//! - `session`: one session, from its CONNECTION packet to its close;
//! - `sender`: the send side, kept across reconnects, and the streams in flight;
//! - `receiver`: a session's receive side;
//! - `context`: what every client of the run shares ([`Shared`]).

mod connect;
mod context;
mod elect;
mod framed;
mod receiver;
mod sender;
mod session;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use synth_common::clock::unix_ms;
use tokio::sync::watch;
use tokio::time::sleep_until;
use web_transport_quinn::Session;

pub use connect::{classify, session_url, ConnectFailure, RETRY_REFUSED};
pub use context::{Client, Roster, RunControl, RunSignals, SessionSettings, Shared};
pub use session::{
    classify_end, Ending, Masked, CODE_NOT_KEPT, CONNECT_STREAM_ENDED, SILENT_FOR_IDLE,
};

use crate::metrics::{SessionEnd, State};
use crate::netem::QuicStats;
use crate::people::{Cause, EndCause, SessionPlan};
use crate::plan::ClientPlan;
use crate::session::receive::Accounting;
use crate::session::view::View;
use connect::{after_loss, attempt, Failures};
use receiver::publish;
use sender::Sender;
use session::{run_session, End, Lost};

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
    quic: Option<Arc<QuicStats>>,
) {
    let client = Client::new(shared, plan);
    let mut stop = client.shared.signals.stop.clone();
    let sessions = client.plan.sessions();
    let Some(first) = sessions.first() else {
        // Its schedule never needs it: it stays pending.
        return;
    };
    let Some(start_at) = start_time(&client, first.start, &mut stop).await else {
        return;
    };
    let sender = Sender::new(&client, start_at + client.plan.phase);
    let accounting = if sender.browser() {
        Accounting::browser(&client.plan.user_id, Instant::now())
    } else {
        Accounting::new(&client.plan.user_id)
    };
    let accounting = Some(match client.plan.view {
        Some(v) => accounting.with_view(View::new(v.tiles, v.layer.layer())),
        None => accounting,
    });
    let settings = &client.shared.settings;
    let servers = std::iter::once(&settings.server).chain(&settings.alternates);
    let urls = match servers
        .map(|s| session_url(s, &client.plan, &settings.credentials))
        .collect::<anyhow::Result<Vec<_>>>()
    {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(user = %client.plan.user_id, "cannot build the session URL: {e:#}");
            client.stats.set_state(State::Failed);
            return;
        }
    };
    let mut driver = Driver {
        client,
        endpoint,
        quic,
        urls,
        stop,
        sender,
        accounting,
        failures: Failures::default(),
    };
    for (k, planned) in sessions.iter().enumerate() {
        match driver.planned(k, planned).await {
            Flow::Next => {}
            Flow::Over => break,
            Flow::Gone => return,
        }
    }
    let stats = &driver.client.stats;
    match stats.state() {
        // Gone for good before the end: it stays away.
        State::Failed | State::Away => {}
        _ => stats.set_state(State::Done),
    }
}

/// When the client starts: `first` (its first planned session's start)
/// after the run's start, or for a search step's client once the step before
/// has passed. Waits until then; `None` if the run stops first.
async fn start_time(
    client: &Client,
    first: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<Instant> {
    let signals = &client.shared.signals;
    let mut start_at = signals.t0 + first;
    let step = client.plan.step;
    if step > 0 {
        // A search step's clients start once the step before has passed
        // (never before their step's planned start), as far into their step
        // as planned: a step that began late (the one before waited for its
        // clients) starts them that much later.
        let mut gate = signals.gate.clone();
        let late = tokio::select! {
            g = gate.wait_for(|g| g.0 >= step) => g.map_or(Duration::ZERO, |g| g.1),
            _ = stop.wait_for(|s| *s) => return None,
        };
        start_at = (start_at + late).max(Instant::now());
    }
    tokio::select! {
        _ = sleep_until(start_at.into()) => {}
        _ = stop.wait_for(|s| *s) => return None,
    }
    Some(start_at)
}

/// A started client: what it connects with and to, and what it keeps from
/// session to session.
struct Driver {
    client: Client,
    /// The QUIC endpoint of its thread (its own, with a network).
    endpoint: web_transport_quinn::Client,
    /// Where its sessions' QUIC statistics are sampled (with a network).
    quic: Option<Arc<QuicStats>>,
    /// Its session URL on each server (`server_urls`; one for most runs).
    urls: Vec<url::Url>,
    /// The run's stop signal.
    stop: watch::Receiver<bool>,
    sender: Sender,
    /// What it received, carried from session to session (taken while a
    /// session runs).
    accounting: Option<Accounting>,
    failures: Failures,
}

/// What follows a planned session.
enum Flow {
    /// The next planned session.
    Next,
    /// No more: the run is over.
    Over,
    /// No more, and the client's state stays as it is: it gave up, or the
    /// run stopped while it waited to try again.
    Gone,
}

impl Driver {
    /// Planned session `k`: away until it starts (after the first), then
    /// connected, reconnecting when the session drops, until it ends.
    async fn planned(&mut self, k: usize, planned: &SessionPlan) -> Flow {
        let t0 = self.client.shared.signals.t0;
        if k > 0 && self.away_until(t0 + planned.start).await {
            return Flow::Over;
        }
        let leave_at = planned.end.map(|e| t0 + e);
        let stats = &self.client.stats;
        stats.set_state(if stats.ever_connected.load(Relaxed) {
            State::Reconnecting
        } else {
            State::Connecting
        });
        let mut up = false;
        loop {
            if *self.stop.borrow() {
                return Flow::Over;
            }
            if leave_at.is_some_and(|t| Instant::now() >= t) {
                // The planned session is over before it could start again.
                self.client.stats.set_state(State::Away);
                return Flow::Next;
            }
            let (session, took, server) = match self.connect().await {
                Ok(s) => s,
                Err(f) => {
                    if self.failures.fail(&self.client, f, &mut self.stop).await {
                        return Flow::Gone;
                    }
                    continue;
                }
            };
            self.connected(took);
            let Some(mut acc) = self.accounting.take() else {
                return Flow::Over;
            };
            self.arrived(&mut acc, k, planned, !up);
            up = true;
            let end = self.session(session, acc, server, leave_at).await;
            if let Some(flow) = self.ended(end, planned).await {
                return flow;
            }
        }
    }

    /// One connection attempt: to the server, or for a `browser` with
    /// several (`server_urls`), to each, keeping the one its election
    /// chooses. The session, its handshake's length and which server.
    async fn connect(&self) -> Result<(Session, Duration, usize), ConnectFailure> {
        let c = &self.client;
        if self.urls.len() > 1 && c.plan.profile == crate::config::ClientProfile::Browser {
            return elect::elect(
                &c.shared,
                &c.stats,
                &self.endpoint,
                &self.urls,
                (&c.plan.user_id, c.plan.index),
            )
            .await;
        }
        let (s, took) = attempt(&c.shared, &self.endpoint, &self.urls[0]).await?;
        Ok((s, took, 0))
    }

    /// Away until `back_at`: its actions and turns still happen (it comes
    /// back muted if it was muted). True if the run stopped meanwhile.
    async fn away_until(&mut self, back_at: Instant) -> bool {
        self.client.stats.set_state(State::Away);
        loop {
            let next = self.sender.next_change().min(back_at);
            tokio::select! {
                _ = sleep_until(next.into()) => {}
                _ = self.stop.wait_for(|s| *s) => return true,
            }
            self.sender.apply_due(&self.client, Instant::now());
            if Instant::now() >= back_at {
                return false;
            }
        }
    }

    /// A session is up; its handshake took `took`.
    fn connected(&mut self, took: Duration) {
        let c = &self.client;
        c.shared
            .metrics
            .connect
            .record(took.as_micros() as u64, c.plan.index);
        self.failures.reset();
        c.stats.set_state(State::Connected);
    }

    /// Counts the session that just came up, in the stats and in `acc`: the
    /// first of planned session `k` (`first`) is a join or a way back; a
    /// later one reconnects.
    fn arrived(&mut self, acc: &mut Accounting, k: usize, planned: &SessionPlan, first: bool) {
        let (shared, stats, plan) = (&self.client.shared, &self.client.stats, &self.client.plan);
        let now = Instant::now();
        acc.session(now);
        if first {
            // The first session of a planned one: a join, or a way back.
            if planned.cause == Cause::Join {
                stats.joins.fetch_add(1, Relaxed);
            } else {
                stats.rejoins.fetch_add(1, Relaxed);
                let took = now.saturating_duration_since(shared.signals.t0 + planned.start);
                shared
                    .metrics
                    .rejoin
                    .record(took.as_micros() as u64, plan.index);
            }
        }
        if first && k > 0 {
            // Back after leaving on purpose: what was sent meanwhile is
            // not owed to it, and its own media start afresh.
            stats.stay_first_packet_unix_us.store(0, Relaxed);
            acc.rejoin((unix_ms() * 1000.0) as u64, peers_now(shared, plan));
            // A browser back in a meeting is a new page: its control
            // traffic starts afresh.
            acc.restart_control(now);
            self.sender.rejoin(&self.client, now);
        } else {
            // Only the first session counts (`join` ignores later ones).
            acc.join((unix_ms() * 1000.0) as u64, peers_now(shared, plan));
            if !first {
                // Back after a lost session: what the senders sent while it
                // was down ends here.
                acc.up(peers_now(shared, plan));
            }
        }
    }

    /// Runs `session` (on server `server` of its list) with the accounting
    /// `acc` until it ends, and keeps the accounting for the next one.
    async fn session(
        &mut self,
        session: Session,
        acc: Accounting,
        server: usize,
        leave_at: Option<Instant>,
    ) -> End {
        if let Some(q) = &self.quic {
            let conn: quinn::Connection = (*session).clone();
            tokio::spawn(crate::netem::sample(q.clone(), conn, QUIC_SAMPLE_EVERY));
        }
        let server = self.urls[server].origin().ascii_serialization();
        let (end, mut acc) = run_session(
            &self.client,
            &mut self.sender,
            acc,
            session,
            &server,
            leave_at,
        )
        .await;
        let (shared, plan) = (&self.client.shared, &self.client.plan);
        match end {
            End::Left => {
                acc.leave(peers_now(shared, plan));
                publish(&self.client.stats, &acc);
            }
            End::Lost(_) => {
                // Down from now (the session's end is known only now: after
                // an idle timeout, that long after the server went silent).
                acc.down(peers_now(shared, plan));
                publish(&self.client.stats, &acc);
            }
            End::Stopped => {}
        }
        self.accounting = Some(acc);
        end
    }

    /// What follows a session of `planned` that ended as `end`: `None` to
    /// connect again within the planned session.
    async fn ended(&mut self, end: End, planned: &SessionPlan) -> Option<Flow> {
        let stats = &self.client.stats;
        match &end {
            End::Lost(l) => stats.session_ended(l.ending.cause, l.ending.close.as_deref()),
            End::Stopped | End::Left => stats.session_ended(SessionEnd::Planned, None),
        }
        match end {
            End::Stopped => Some(Flow::Over),
            End::Left => {
                stats.set_state(State::Away);
                stats.leaves.fetch_add(1, Relaxed);
                if planned.end_cause == Some(EndCause::Storm) {
                    stats.storm_drops.fetch_add(1, Relaxed);
                }
                Some(Flow::Next)
            }
            End::Lost(Lost { why, .. }) => {
                tracing::warn!(user = %self.client.plan.user_id, "session lost: {why}; reconnecting");
                stats.reconnects.fetch_add(1, Relaxed);
                stats.set_state(State::Reconnecting);
                after_loss(&self.client, &mut self.stop)
                    .await
                    .then_some(Flow::Over)
            }
        }
    }
}

/// The other clients of this process in `plan`'s meeting: user id, index
/// and their next audio and video sequence numbers now.
fn peers_now<'a>(
    shared: &'a Shared,
    plan: &'a ClientPlan,
) -> impl Iterator<Item = (Box<[u8]>, usize, [u64; 2])> + 'a {
    let roster = &shared.roster;
    roster
        .meetings
        .get(&plan.meeting_id)
        .into_iter()
        .flatten()
        .filter(move |&&i| i != plan.index)
        .map(|&i| {
            let c = &shared.metrics.clients[i];
            let next = [c.next_seq[0].load(Relaxed), c.next_seq[1].load(Relaxed)];
            (roster.users[i].clone(), i, next)
        })
}
