//! The one integration-test binary of synth-replay (modules below).

mod browser;
mod cli;
mod faults;
mod layers;
mod live;
mod merge;
mod networks;
mod people;
mod regression;
mod replay;
mod server;
mod support;
mod wire;
