//! Benchmarks of videocall-synthetic-clients: criterion benches of the hot
//! paths and a relay throughput probe (`benches/`), the scale harness
//! ([`scale`], binary `synth-scale`) that runs the real `synth-replay` binary
//! against the relay in its own process and measures what a client costs
//! from outside the process, and the soak harness ([`soak`], binary
//! `synth-soak`) that runs the same for minutes and samples memory,
//! descriptors, threads and latency, for their slopes.
//!
//! Results and the commands that produced them are in `BENCHMARKS.md`.

pub mod live;
pub mod proc;
pub mod scale;
pub mod soak;
