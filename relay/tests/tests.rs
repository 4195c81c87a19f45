//! The one integration-test binary of synth-relay (modules below).

mod capture;
mod framed;
mod layers;
mod people;
mod relay;
mod rules;
