//! The one integration-test binary of synth-relay (modules below).

mod capture;
mod framed;
mod people;
mod relay;
mod rules;
