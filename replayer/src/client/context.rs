//! What the clients of a run share ([`Shared`]), in four parts: the settings
//! every session uses, the roster of this process's clients, the signals
//! between the run and its clients, and the metrics; and one client's own
//! view of it ([`Client`]).

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use synth_common::pack::{FrameDigests, Reader};
use tokio::sync::{watch, Semaphore};

use crate::config::Credentials;
use crate::metrics::{ClientStats, Metrics};
use crate::plan::ClientPlan;

/// Run-wide context shared by every client.
#[derive(Debug)]
pub struct Shared {
    /// How every session connects, sends and measures.
    pub settings: SessionSettings,
    /// The clients of this process.
    pub roster: Roster,
    /// The run's signals to its clients, and theirs back.
    pub signals: RunSignals,
    /// Measurements.
    pub metrics: Arc<Metrics>,
}

/// The run's settings for every session: what to connect to and how, what
/// to send, and how to judge what comes back.
#[derive(Debug)]
pub struct SessionSettings {
    /// The pack, read once.
    pub pack: Arc<Reader>,
    /// The pack's frame digests, for the integrity check.
    pub digests: FrameDigests,
    /// `https://host:port` of the server.
    pub server: url::Url,
    /// The other servers a `browser` tries before it chooses (`server_urls`).
    pub alternates: Vec<url::Url>,
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
    /// Audio and video playout budgets, ms.
    pub late_after_ms: [f64; 2],
    /// At the end, the wait for a session's streams to be acknowledged.
    pub ack_wait: Duration,
    /// The wire the clients speak.
    pub wire: crate::version::Wire,
}

/// The clients of this process: who is ours, and who meets whom.
#[derive(Debug)]
pub struct Roster {
    /// Every user id of this process with its client index, to tell our own
    /// senders (same clock, known frames) from others.
    pub ours: HashMap<Box<[u8]>, usize>,
    /// Each client's user id, by index.
    pub users: Vec<Box<[u8]>>,
    /// The client indexes of each meeting.
    pub meetings: HashMap<String, Vec<usize>>,
}

impl Roster {
    /// The roster of `clients`.
    pub fn new(clients: &[ClientPlan]) -> Roster {
        let mut meetings: HashMap<String, Vec<usize>> = HashMap::new();
        for c in clients {
            meetings
                .entry(c.meeting_id.clone())
                .or_default()
                .push(c.index);
        }
        Roster {
            ours: clients
                .iter()
                .map(|c| (c.user_id.as_bytes().into(), c.index))
                .collect(),
            users: clients
                .iter()
                .map(|c| c.user_id.as_bytes().into())
                .collect(),
            meetings,
        }
    }
}

/// What the run tells its clients (when it started, which search step may
/// start, when to stop, when to close) and what they tell it back (the
/// sessions still sending); and the handshake slots they share.
#[derive(Debug)]
pub struct RunSignals {
    /// When the run started: clients start at `t0 + plan.start_after`.
    pub t0: Instant,
    /// Limits handshakes in flight.
    pub connect_slots: Semaphore,
    /// Sessions still sending or waiting for their acknowledgements: the run
    /// waits for none before it lets receivers drain.
    pub sending: AtomicUsize,
    /// Flips to `true` when the run must stop.
    pub stop: watch::Receiver<bool>,
    /// The capacity-search step whose clients may start (0 without a search),
    /// and how much later than planned it began.
    pub gate: watch::Receiver<(usize, Duration)>,
    /// Flips to `true` when receivers have drained and sessions may close.
    pub close: watch::Receiver<bool>,
}

impl RunSignals {
    /// The signals of a run that started at `t0` and lets `connect_slots`
    /// handshakes be in flight at once, and the run's side of them.
    pub fn new(t0: Instant, connect_slots: usize) -> (RunSignals, RunControl) {
        let (stop_tx, stop) = watch::channel(false);
        let (gate_tx, gate) = watch::channel((0usize, Duration::ZERO));
        let (close_tx, close) = watch::channel(false);
        let signals = RunSignals {
            t0,
            connect_slots: Semaphore::new(connect_slots),
            sending: AtomicUsize::new(0),
            stop,
            gate,
            close,
        };
        let control = RunControl {
            stop: stop_tx,
            gate: gate_tx,
            close: close_tx,
        };
        (signals, control)
    }
}

/// The run's side of [`RunSignals`].
#[derive(Debug)]
pub struct RunControl {
    stop: watch::Sender<bool>,
    gate: watch::Sender<(usize, Duration)>,
    close: watch::Sender<bool>,
}

impl RunControl {
    /// Tells every client to stop sending.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Lets the clients of search step `step.0` start, `step.1` later than
    /// planned (a step's clients wait for the step before to pass).
    pub fn open_step(&self, step: (usize, Duration)) {
        self.gate.send_if_modified(|g| {
            let changed = g.0 != step.0;
            *g = step;
            changed
        });
    }

    /// Tells every session it may close (the receivers have drained).
    pub fn close(&self) {
        let _ = self.close.send(true);
    }
}

/// One client: the run's shared context, its plan and its own stats.
#[derive(Debug)]
pub struct Client {
    /// The run's context.
    pub shared: Arc<Shared>,
    /// Its plan.
    pub plan: ClientPlan,
    /// Its stats (`shared.metrics.clients[plan.index]`).
    pub stats: Arc<ClientStats>,
}

impl Client {
    /// The client of `plan` in the run of `shared`.
    pub fn new(shared: Arc<Shared>, plan: ClientPlan) -> Client {
        let stats = shared.metrics.clients[plan.index].clone();
        Client {
            shared,
            plan,
            stats,
        }
    }
}

/// µs since the run started, plus one (0 means "never" in the stats).
pub(super) fn since_start(shared: &Shared) -> u64 {
    shared.metrics.started.elapsed().as_micros() as u64 + 1
}
