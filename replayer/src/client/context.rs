//! What every client of a run shares: the run-wide [`Shared`] context.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use synth_common::pack::{FrameDigests, Reader};
use tokio::sync::{watch, Semaphore};

use crate::config::Credentials;
use crate::metrics::Metrics;

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

/// µs since the run started, plus one (0 means "never" in the stats).
pub(super) fn since_start(shared: &Shared) -> u64 {
    shared.metrics.started.elapsed().as_micros() as u64 + 1
}
