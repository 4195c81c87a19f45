//! A session's receive side: streams and datagrams drained and each packet
//! handed to the pure [`Accounting`].

use std::future::Future as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use synth_common::clock::unix_ms;
use synth_common::net::{ReadFail, Reads};
use tokio::sync::{watch, Notify};
use web_transport_quinn::Session;

use crate::client::context::{since_start, Shared};
use crate::metrics::ClientStats;
use crate::session::receive::{Accounting, Context, Handled};

/// What the receive loop waits for.
enum Incoming {
    /// A packet (a whole stream or a datagram), or why a stream gave none.
    Read(Result<Bytes, ReadFail>),
    /// The session closed or the sender is done.
    End,
}

/// A session's receive task: what it reads from, what it counts into, and
/// whom it tells of a key-frame request. All owned: it runs on a task of
/// its own.
pub(super) struct Receiver {
    /// The run's context.
    pub(super) shared: Arc<Shared>,
    /// The client's stats.
    pub(super) stats: Arc<ClientStats>,
    /// The client's index: its histogram shard.
    pub(super) shard: usize,
    /// The session to drain.
    pub(super) session: Session,
    /// Notified when a peer asks for a key frame.
    pub(super) keyframe: Arc<Notify>,
}

impl Receiver {
    /// Drains the session until it closes or `done` fires: streams are read
    /// concurrently, each to its end, and datagrams as they come. Returns the
    /// accounting for the next session.
    pub(super) async fn run(
        self,
        mut accounting: Accounting,
        mut done: watch::Receiver<bool>,
    ) -> Accounting {
        let (shared, stats, session) = (&self.shared, &self.stats, &self.session);
        let cx = Context {
            ours: &shared.roster.ours,
            clients: &shared.metrics.clients,
            digests: &shared.settings.digests,
            late_after_ms: shared.settings.late_after_ms,
        };
        let mut reads = Reads::default();
        // Each future is re-armed only when it completes, not at every packet.
        let accept = session.accept_uni();
        let datagram = session.read_datagram();
        let finished = done.changed();
        tokio::pin!(accept, datagram, finished);
        loop {
            let event = std::future::poll_fn(|cx| {
                if finished.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Incoming::End);
                }
                // Streams already being read first, so they never wait behind
                // a run of new ones.
                if !reads.is_empty() {
                    if let Poll::Ready(r) = reads.poll_next(cx) {
                        return Poll::Ready(Incoming::Read(r));
                    }
                }
                loop {
                    match accept.as_mut().poll(cx) {
                        Poll::Ready(Ok(stream)) => {
                            accept.set(session.accept_uni());
                            match reads.start(stream, cx) {
                                Poll::Ready(r) => return Poll::Ready(Incoming::Read(r)),
                                // Queued: poll it once with the queue's waker.
                                Poll::Pending => {
                                    if let Poll::Ready(r) = reads.poll_next(cx) {
                                        return Poll::Ready(Incoming::Read(r));
                                    }
                                }
                            }
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(Incoming::End),
                        Poll::Pending => break,
                    }
                }
                match datagram.as_mut().poll(cx) {
                    Poll::Ready(Ok(d)) => {
                        datagram.set(session.read_datagram());
                        Poll::Ready(Incoming::Read(Ok(d)))
                    }
                    Poll::Ready(Err(_)) => Poll::Ready(Incoming::End),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            let buf = match event {
                Incoming::Read(Ok(b)) => b,
                Incoming::Read(Err(ReadFail::TooLong | ReadFail::Reset)) => {
                    stats.bad_packets.fetch_add(1, Relaxed);
                    continue;
                }
                Incoming::End => break,
            };
            let h = accounting.handle(&buf, unix_ms(), &cx, stats);
            self.record(&h);
        }
        publish(stats, &accounting);
        accounting
    }

    /// Records what the accounting made of a packet: its latency, jitter,
    /// the join's visibility; and a peer's key-frame request, passed on.
    fn record(&self, h: &Handled) {
        let (m, shard) = (&self.shared.metrics, self.shard);
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
            let asked = since_start(&self.shared);
            let _ = self
                .stats
                .keyframe_asked_us
                .compare_exchange(0, asked, Relaxed, Relaxed);
            self.keyframe.notify_one();
        }
    }
}

/// Publishes each sender as `accounting` saw it into `stats` (for the report).
pub(super) fn publish(stats: &ClientStats, accounting: &Accounting) {
    if let Ok(mut peers) = stats.peers.lock() {
        for (id, view) in accounting.peers() {
            peers.insert(String::from_utf8_lossy(id).into_owned(), view);
        }
    }
}
