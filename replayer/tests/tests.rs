//! The one integration-test binary of synth-replay (modules below).

mod cli;
mod replay;
mod support;
