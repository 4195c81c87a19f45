//! The clients' stalls, counted while the run goes from one sample of their
//! states a second.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::metrics::{Metrics, State};

/// Counts each client's stalls: a client that is stalled at a sample and was
/// not at the one before begins a stall; each stalled sample adds the time
/// since the previous one.
pub(super) struct StallMonitor {
    was: Vec<bool>,
    last: Instant,
}

impl StallMonitor {
    pub(super) fn new(clients: usize) -> StallMonitor {
        StallMonitor {
            was: vec![false; clients],
            last: Instant::now(),
        }
    }

    /// Samples every client's state now.
    pub(super) fn sample(&mut self, m: &Metrics) {
        let now_us = m.started.elapsed().as_micros() as u64;
        let step = self.last.elapsed().as_micros() as u64;
        self.last = Instant::now();
        for (c, was) in m.clients.iter().zip(self.was.iter_mut()) {
            let stalled = c.state_at(now_us, m.stall_after_us) == State::Stalled;
            if stalled {
                if !*was {
                    c.stalls.fetch_add(1, Relaxed);
                }
                c.stalled_us.fetch_add(step, Relaxed);
            }
            *was = stalled;
        }
    }
}
