//! `synth-replay`: synthetic participants for videocall-rs load tests.
//!
//! A run ([`run::run`]) maps one pack ([`synth_common::pack::Reader`]) and
//! shares it between every client. Each client ([`client`]) joins its meeting
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
//! - [`transport`]: the shared QUIC endpoint and TLS trust.
//! - [`http`]: the Prometheus endpoint.

pub mod client;
pub mod config;
pub mod http;
pub mod metrics;
pub mod pacer;
pub mod report;
pub mod run;
pub mod sequence;
pub mod threshold;
pub mod transport;

pub use run::{EXIT_CONFIG, EXIT_THRESHOLD};
