//! `synth-replay`: synthetic participants for videocall-rs load tests.
//!
//! A run ([`run::run`]) resolves one [`plan`] (the pack, read once and
//! shared by every client, and one [`plan::ClientPlan`] per client). Each
//! client ([`client`], a thin driver) joins its meeting
//! over WebTransport, sends a CONNECTION packet, heartbeats, and the pack's
//! frames as `MediaPacket`s — one unidirectional stream per packet, only the
//! per-client fields rewritten ([`synth_common::wire::MediaPrefix`]) — and
//! drains what the server relays, measuring it ([`metrics`]). At the end a
//! [`report`] is printed and checked against the config's [`threshold`]s.
//!
//! The relay ([`synth_relay`]) is an in-process WebTransport server that
//! behaves like the videocall-rs server; a run without a server URL starts it
//! and runs against it, so the tool works with no network.
//!
//! The engine, from the bottom up (data flows down, never back up):
//! - [`metrics`]: what a run measures (per-client counters, histograms,
//!   the event-loop probe, the process's cost, the Prometheus exposition);
//!   [`http`] serves it.
//! - [`session`]: the sans-IO parts of a session: the send schedule
//!   ([`session::pacer`]), the receive accounting ([`session::receive`]) and
//!   rendition adaptation ([`session::adapt`]).
//! - [`transport`]: the QUIC endpoint of each client thread and TLS trust;
//!   [`netem`]: the socket wrapper that gives a participant a hostile network.
//! - [`client`]: one participant's driver: connect and retry, the planned
//!   sessions, the sender and the receiver.
//! - [`timeline`]: snapshots of the metrics; [`monitor`]: what the run does
//!   every `timeline_interval` (the timeline, live thresholds and aborts,
//!   the capacity search, the phases).
//! - [`server_cost`]: the server beside the run (`server:`), read into
//!   the snapshots: its process on this host, Prometheus queries.
//! - [`collect`]: the report built from the metrics at the end of a run.
//! - [`run`]: one run, prepare → start → watch → end → collect → publish;
//!   the binary (`main.rs`) is only its command line, signals and exit codes.
//!
//! What a run will do is the `synth-scenario` crate, re-exported here as
//! [`config`], [`people`] (its `behaviour` schedule) and [`plan`]. The report
//! itself (its model, the figure registry, thresholds, the text summary, the
//! HTML page, merge and diff) is the `synth-report` crate, re-exported as
//! [`report`], [`threshold`], [`hist`], [`html`], [`merge`] and [`diff`].
//! [`health`] gathers the generator's verdict (`synth_report::health`) with
//! what the engine measures for it.

pub mod client;
pub mod collect;
pub mod health;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod netem;
pub mod run;
pub mod server_cost;
pub mod session;
pub mod timeline;
pub mod transport;
pub mod version;

pub use session::{adapt, pacer, receive};
pub use synth_report::{diff, hist, html, merge, threshold};
pub use synth_scenario::behaviour as people;
pub use synth_scenario::{config, plan, scopes};

/// The report's model (`synth_report::model`) and where reports are written.
pub mod report {
    pub use synth_report::io::{check_path, fallback_path};
    pub use synth_report::judge::CONNECTED_AT_END_FLOOR;
    pub use synth_report::model::*;
}

pub use run::{EXIT_CONFIG, EXIT_THRESHOLD};
