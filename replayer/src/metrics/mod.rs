//! What a run measures, shared by the clients, the Prometheus endpoint, the
//! live monitor and the collector.
//!
//! - [`labels`]: the label values (media, states, flags, failure reasons).
//! - [`client`]: one client's counters ([`ClientStats`]), written by that
//!   client's own tasks with no lock; totals are summed when read.
//! - [`hist`]: timing distributions ([`Hist`]): Prometheus buckets and
//!   sharded HdrHistograms.
//! - [`store`]: everything a run measures ([`Metrics`]).
//! - [`loop_delay`]: how late the runtimes' timers fire ([`LoopDelay`]).
//! - [`process`]: this process's CPU and memory, and the cores it may use.
//! - `prometheus`: the families `/metrics` serves, in one table, and their
//!   writer ([`Metrics::render`]).

pub mod client;
pub mod hist;
pub mod labels;
pub mod loop_delay;
pub mod process;
mod prometheus;
pub mod store;

pub use client::{ClientStats, Down, PeerView, RenditionTime, MAX_CLOSE_REASONS};
pub use hist::{Hist, Layout, CONNECT_BUCKETS, JITTER_BUCKETS, LATENCY_BUCKETS, LATENESS_BUCKETS};
pub use labels::{
    Control, FailReason, Media, SessionEnd, State, CONTROL, FLAGS, MEDIA, REASONS, SESSION_ENDS,
};
pub use loop_delay::LoopDelay;
pub use process::{cores_available, host_now, Process};
pub use store::{Metrics, ScoreGauges};
