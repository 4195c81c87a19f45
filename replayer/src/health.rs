//! The generator's health: the verdict over its figures is pure and lives in
//! `synth_report::health`; what the engine measures for it is in
//! [`crate::metrics`] ([`LoopDelay`], [`cores_available`]). Re-exported here
//! together.

pub use crate::metrics::{cores_available, LoopDelay};
pub use synth_report::health::*;
