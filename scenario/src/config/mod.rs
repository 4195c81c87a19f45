//! The run configuration: one YAML file, environment overrides and CLI flags,
//! resolved into a [`Settings`] with the full list of clients to start.
//!
//! Precedence, highest first: a CLI flag, its environment variable (clap reads
//! both into [`Overrides`]), the file, the defaults in [`defaults`].
//!
//! One file a concept, each importing only the ones listed before it:
//! - [`defaults`] and [`limits`]: the values used when nothing says, and what
//!   a config may ask for at most (with the checks against it);
//! - `file.rs`: the file as written ([`File`] and its `*Spec` sections),
//!   [`read_file`] and [`parse`], errors with line and column;
//! - `overrides.rs`: [`Overrides`], the flags and environment variables;
//! - `network.rs`, `tls.rs`, `auth.rs`, `expand.rs`, `search.rs`: each
//!   resolves one section (a group's [`Network`], the [`Trust`], the
//!   [`Credentials`], the [`Participant`]s from id templates, the [`Search`]);
//! - `server.rs`: the `server:` section checked into a [`ServerWatch`];
//! - `wire.rs`: `wire:` and `health_url:` into [`WireSettings`];
//! - `settings.rs`: [`Settings::resolve`], which runs them into [`Settings`].

mod auth;
pub mod defaults;
mod expand;
mod file;
pub mod limits;
mod network;
mod overrides;
mod search;
mod server;
mod settings;
#[cfg(test)]
mod testing;
mod tls;
mod wire;

pub use auth::Credentials;
pub use expand::Participant;
pub use file::{
    parse, read_file, Auth, ClientProfile, ClientSpec, File, GilbertElliottSpec, GroupSpec,
    JitterDist, LateAfter, LayerChoice, LinkSpec, NetworkSpec, ProfileSpec, Quality, Role,
    SearchSpec, ServerSpec, StepSpec, ThresholdFull, ThresholdSpec, Tls, ViewSpec,
};
pub use network::Network;
pub use overrides::Overrides;
pub use search::Search;
pub use server::{ServerWatch, MAX_QUERIES};
pub use settings::{People, Settings};
pub(crate) use synth_common::redact::shown;
pub use tls::{ca_roots, parse_sha256, Trust};
pub use wire::{WireChoice, WireSettings, HEALTH_PORT};
