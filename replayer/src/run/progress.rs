//! What the run does every second while it goes ([`EverySecond`]): the CPU
//! share and the stalls sampled, and the progress line ([`Progress`]) printed.

use std::io::IsTerminal;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::health::Samplers;
use crate::metrics::{Media, Metrics, State};
use crate::run::stalls::StallMonitor;

/// The run's chores every second: the CPU share and the stalls sampled, and
/// the progress line printed (every second on a terminal, every 5 s otherwise).
pub(super) struct EverySecond {
    /// When the next second is due.
    pub(super) next: Instant,
    ticks: u64,
    /// Seconds between progress lines.
    every: u64,
    stalls: StallMonitor,
    progress: Option<Progress>,
}

impl EverySecond {
    /// Chores for a run of `clients` that started at `t0`; with `progress`,
    /// the progress line on stderr.
    pub(super) fn new(t0: Instant, clients: usize, progress: bool) -> EverySecond {
        let progress = progress.then(|| Progress::new(std::io::stderr().is_terminal()));
        // Sampling (CPU share, stalls) every second; the progress line every
        // second on a terminal, every 5 s otherwise.
        let every = if progress.as_ref().is_some_and(|p| p.tty) {
            1
        } else {
            5
        };
        EverySecond {
            next: t0 + Duration::from_secs(1),
            ticks: 0,
            every,
            stalls: StallMonitor::new(clients),
            progress,
        }
    }

    /// Does the chores when a second is due at `now`.
    pub(super) fn tick(&mut self, now: Instant, metrics: &Metrics, cpu: &mut Samplers) {
        if now < self.next {
            return;
        }
        self.next += Duration::from_secs(1);
        if self.next <= now {
            self.next = now + Duration::from_secs(1);
        }
        cpu.sample(now);
        self.stalls.sample(metrics);
        self.ticks += 1;
        if self.ticks % self.every == 0 {
            if let Some(p) = self.progress.as_mut() {
                p.print(metrics);
            }
        }
    }

    /// The run stopped: the progress line ends.
    pub(super) fn finish(&mut self) {
        if let Some(p) = self.progress.as_mut() {
            p.finish();
        }
    }
}

/// The live progress line.
struct Progress {
    /// Stderr is a terminal: the line is rewritten in place.
    tty: bool,
    last: Instant,
    sent: u64,
    recv: u64,
    printed: bool,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last: Instant::now(),
            sent: 0,
            recv: 0,
            printed: false,
        }
    }

    /// Prints the line for `m` now: rates since the last line.
    fn print(&mut self, m: &Metrics) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-3);
        let sent = m.sum(|c| c.sent_bytes.iter().map(|b| b.load(Relaxed)).sum());
        let recv = m.sum(|c| c.recv_bytes.iter().map(|b| b.load(Relaxed)).sum());
        let out = (sent - self.sent) as f64 * 8.0 / secs / 1e6;
        let inn = (recv - self.recv) as f64 * 8.0 / secs / 1e6;
        (self.last, self.sent, self.recv) = (now, sent, recv);
        let st = m.states();
        let lateness = m.lateness.merged();
        let p99 = if lateness.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", lateness.value_at_quantile(0.99) as f64 / 1000.0)
        };
        let errors = m.sum(|c| c.send_errors.load(Relaxed))
            + m.connect_failures
                .iter()
                .map(|f| f.load(Relaxed))
                .sum::<u64>();
        let line = format!(
            "[{:>6.1}s] clients {}/{} connected ({} stalled, {} connecting, {} reconnecting, {} failed) | out {:.1} Mbit/s in {:.1} Mbit/s | lateness p99 {} ms | errors {} | audio sent {} missing {}",
            m.started.elapsed().as_secs_f64(),
            st[State::Connected as usize] + st[State::Stalled as usize],
            m.clients.len(),
            st[State::Stalled as usize],
            st[State::Connecting as usize],
            st[State::Reconnecting as usize],
            st[State::Failed as usize],
            out,
            inn,
            p99,
            errors,
            m.sum(|c| c.sent_packets[Media::Audio as usize].load(Relaxed)),
            m.sum(|c| c.missing[0].load(Relaxed) + c.missing[1].load(Relaxed)),
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        self.printed = true;
    }

    /// Ends the line on a terminal.
    fn finish(&mut self) {
        if self.tty && self.printed {
            eprintln!();
        }
    }
}
