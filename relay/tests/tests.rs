//! The one integration-test binary of synth-relay (modules below).

mod capture;
mod people;
mod relay;
mod rules;
