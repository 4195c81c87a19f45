//! The one integration-test binary of synth-relay (modules below).

mod people;
mod relay;
