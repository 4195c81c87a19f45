//! `synth-report`: the report of a `synth-replay` run, with no runtime in it
//! (no tokio, QUIC or HTTP), so tools can read, judge, merge, compare and
//! render reports without the engine.
//!
//! - [`model`]: the report and every section of it (timeline, search,
//!   phases, networks, the generator's health), as the JSON document
//!   `docs/report-schema.json` describes.
//! - [`figure`]: the one registry of named figures — unit, which way is
//!   worse, live or end-only, how it merges — that thresholds, live checks,
//!   `report diff`, `report merge` and the docs read.
//! - [`threshold`] and [`judge`]: thresholds parsed and checked, and the
//!   built-in verdicts; [`scoped`]: what a scoped threshold or a
//!   participant share reads; [`health`]: whether the generator kept up.
//! - [`window`]: figures over a window of a run, from two snapshots.
//! - [`score`]: the audio MOS (ITU-T G.107), the video score and
//!   upstream's call-quality bands, from plain numbers.
//! - [`host`] and [`server`]: the host's CPU, and the server's own cost
//!   (a process on the host, Prometheus queries), read beside the run.
//! - [`hist`]: histograms carried in the report so reports merge exactly.
//! - [`io`]: reading and writing reports; [`text`]: the summary;
//!   [`html`]: the report as one HTML page; [`junit`]: its verdicts as
//!   JUnit XML for CI; [`merge`] and [`diff`].
//! - `cli` (feature `cli`): the `report html|junit|merge|diff` command line, shared
//!   by `synth-replay report` and the `synth-report` binary.

#[cfg(feature = "cli")]
pub mod cli;
pub mod diff;
pub mod figure;
pub mod health;
pub mod hist;
pub mod host;
pub mod html;
pub mod io;
pub mod judge;
pub mod junit;
pub mod merge;
pub mod model;
pub mod num;
pub mod participants;
pub mod scope;
pub mod scoped;
pub mod score;
pub mod server;
pub mod text;
pub mod threshold;
pub mod window;

pub use model::Report;

/// Exit code for bad input: a config, a report or an argument that is wrong.
pub const EXIT_INPUT: i32 = 2;

/// Exit code for a run (or merged report, or comparison) that failed a
/// threshold or a limit.
pub const EXIT_THRESHOLD: i32 = 3;
