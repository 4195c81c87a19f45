//! Benchmarks of videocall-synthetic-clients: criterion benches of the hot
//! paths and a relay throughput probe (`benches/`), and the scale harness
//! ([`scale`], binary `synth-scale`) that runs the real `synth-replay` binary
//! against the relay in its own process and measures what a client costs
//! from outside the process.
//!
//! Results and the commands that produced them are in `BENCHMARKS.md`.

pub mod live;
pub mod proc;
pub mod scale;
