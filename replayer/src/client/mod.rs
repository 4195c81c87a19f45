//! One synthetic participant: the driver that connects, runs the session's
//! two tasks and reconnects when the session drops.
//!
//! What to send when is decided by the pure [`Schedule`](crate::pacer::Schedule)
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
//! - `session`: one session, from its CONNECTION packet to its close;
//! - `sender`: the send side, kept across reconnects, and the streams in flight;
//! - `receiver`: a session's receive side;
//! - `context`: what every client of the run shares ([`Shared`]).

mod connect;
mod context;
mod receiver;
mod sender;
mod session;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use synth_common::clock::unix_ms;
use tokio::time::{sleep_until, timeout};

pub use connect::{classify, session_url, ConnectFailure, RETRY_REFUSED};
pub use context::Shared;

use crate::metrics::{FailReason, State};
use crate::people::{Cause, EndCause};
use crate::plan::ClientPlan;
use crate::receive::Accounting;
use connect::{backoff, fail};
use receiver::publish;
use sender::Sender;
use session::{run_session, End};

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
