//! The one integration-test binary of synth-replay (modules below).

mod cli;
mod relay;
mod replay;
mod support;
