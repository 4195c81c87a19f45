//! `synth-scenario`: what a `synth-replay` run will do, worked out before
//! anything connects, with no runtime in it (no tokio, QUIC or HTTP), so the
//! fuzz target, `validate`, the chart's checks and the scale harness use it
//! alone.
//!
//! - [`config`]: the YAML file, its environment and command-line overrides
//!   (CLI over env over file), resolved into [`config::Settings`]: network
//!   profiles, TLS trust and credentials, participants from id templates.
//! - [`behaviour`]: the behaviour schedule, pure and seeded: phases, churn,
//!   storms, group actions and speaking turns, one script per participant.
//! - [`plan`]: the settings resolved against the pack, one
//!   [`plan::ClientPlan`] per client, with its script.
//! - [`cadence`]: what each participant is expected to send and receive
//!   besides media, per second (its profile's control traffic).
//! - [`summary`]: the plan as `validate` prints it.
//! - [`scopes`]: the participants of each group, network and meeting, for
//!   scoped thresholds and the report's scopes.
//!
//! Data flows one way: `config` ← `behaviour` (its specs) ← `plan` ←
//! `cadence` ← `summary`; `plan` ← `scopes`.

pub mod behaviour;
pub mod cadence;
pub mod config;
pub mod plan;
pub mod scopes;
pub mod summary;
