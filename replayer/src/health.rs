//! The generator's health: the verdict over its figures is pure and lives in
//! `synth_report::health`; what the engine measures for it is in
//! [`crate::metrics`] ([`LoopDelay`], [`cores_available`], the process's and
//! the host's CPU). Re-exported here together, with [`Samplers`].

use std::time::Instant;

pub use crate::metrics::{cores_available, LoopDelay};
pub use synth_report::health::*;

use crate::metrics::{host_now, Process};

/// This process's CPU and the host's, read together (once a second, and at
/// the start and the end of a run).
#[derive(Debug, Clone)]
pub struct Samplers {
    /// This process's share of its cores.
    pub cpu: CpuSampler,
    /// The whole host's busy and pressure shares.
    pub host: HostSampler,
}

impl Samplers {
    /// Both samplers, with their first reading taken now; `cores` are the
    /// ones this process may use.
    pub fn new(cores: f64) -> Samplers {
        let mut s = Samplers {
            cpu: CpuSampler::new(cores),
            host: HostSampler::new(),
        };
        s.sample(Instant::now());
        s
    }

    /// Takes a reading of both at `now`.
    pub fn sample(&mut self, now: Instant) {
        self.cpu.sample(now, Process::now().cpu_seconds);
        self.host.sample(now, host_now());
    }
}
