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
//! - [`config`]: the YAML file, env and CLI overrides, group expansion.
//! - [`run`]: the whole run in steps (prepare, start, watch, end, collect,
//!   publish) and its client threads; [`client`]: one participant (connecting,
//!   its sessions, the sender, the receiver), the I/O around the pure parts.
//! - [`pacer`]: the send schedule as a state machine polled with `now`;
//!   [`adapt`]: when an adapting client steps its video rendition down or up.
//! - [`receive`]: the receive accounting of one packet (pure).
//! - [`transport`]: the QUIC endpoint of each client thread and TLS trust;
//!   [`netem`]: the socket wrapper that gives a participant a hostile network.
//! - [`http`]: the Prometheus endpoint.
//! - [`timeline`]: snapshots of the metrics and the windows between them;
//!   [`monitor`]: the run's live side (the timeline, live thresholds and
//!   aborts, the capacity search, the phases); [`hist`]: histograms carried
//!   in the report.
//! - [`collect`]: the report built from the metrics at the end of a run.
//!
//! The report itself (its model, the figure registry, thresholds, the text
//! summary, the HTML page, merge and diff) is the `synth-report` crate,
//! re-exported here as [`report`], [`threshold`], [`hist`], [`html`],
//! [`merge`] and [`diff`].

pub mod adapt;
pub mod client;
pub mod collect;
pub mod health;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod netem;
pub mod pacer;
pub mod receive;
pub mod run;
pub mod timeline;
pub mod transport;

pub use synth_report::{diff, hist, html, merge, threshold};
pub use synth_scenario::behaviour as people;
pub use synth_scenario::{config, plan};

/// The report's model (`synth_report::model`) and where reports are written.
pub mod report {
    pub use synth_report::io::{check_path, fallback_path};
    pub use synth_report::judge::CONNECTED_AT_END_FLOOR;
    pub use synth_report::model::*;
}

pub use run::{EXIT_CONFIG, EXIT_THRESHOLD};
