//! One session, from its CONNECTION packet to its close: the sender's loop
//! on the client's task and the receiver on a task of its own.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::wire;
use tokio::sync::watch;
use web_transport_quinn::Session;

use crate::client::context::Shared;
use crate::client::receiver::receive;
use crate::client::sender::{record_backlog, SendError, Sender, Sending};
use crate::metrics::{ClientStats, Media};
use crate::plan::ClientPlan;
use crate::receive::Accounting;

/// How a session ended.
pub(super) enum End {
    /// The run is over.
    Stopped,
    /// The client left the meeting on purpose (its script).
    Left,
    /// The session dropped; try again.
    Lost(String),
}

/// At a planned leave, the longest wait for the session's streams to be
/// acknowledged before it closes.
const LEAVE_ACK_WAIT: Duration = Duration::from_millis(500);

/// How often a session with sends in flight looks for their acknowledgements
/// when nothing is due.
const SETTLE_EVERY: Duration = Duration::from_millis(200);

pub(super) async fn run_session(
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
