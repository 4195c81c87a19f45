//! The one integration-test binary of synth-replay (modules below).

mod cli;
mod faults;
mod replay;
mod support;
