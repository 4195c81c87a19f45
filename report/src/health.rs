//! Generator health: whether this process, rather than the system under
//! test, was the bottleneck of a run.
//!
//! A load generator that runs out of CPU or whose event loops fall behind
//! sends late and measures its own delay as the server's; one whose host is
//! short of CPU (a server or another process beside it) reads late what the
//! server delivered, and its losses look like the server's. Four signals tell:
//!
//! - send lateness (the pacer's actual minus scheduled send time, passed in
//!   as its p99);
//! - the CPU share: [`CpuSampler`] turns successive readings of the
//!   process's CPU seconds into the share of its cores used in each interval;
//! - event-loop delay ([`LoopFigures`]): how late the engine's probes on
//!   each client runtime woke;
//! - the host's CPU ([`HostSampler`], in [`crate::host`]): how busy its CPUs
//!   were and how long tasks waited for one.
//!
//! [`assess`] compares the four with [`Limits`] and returns a [`Health`]:
//! the figures, whether any limit was broken, and one line per broken limit
//! saying what it means. It is pure, so it is tested on made-up numbers.

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use crate::host::{HostFigures, HostReading, HostSampler};

/// The share of the available cores this process used, interval by interval.
///
/// Feed it the process's CPU seconds with the time of
/// each reading, e.g. on every progress tick; each interval's share is the
/// CPU seconds used over the wall seconds times the cores, 0 to 1.
#[derive(Debug, Clone)]
pub struct CpuSampler {
    cores: f64,
    last: Option<(Instant, f64)>,
    shares: Vec<f64>,
    busy_s: f64,
    wall_s: f64,
}

impl CpuSampler {
    /// A sampler for a process that may use `cores` cores.
    pub fn new(cores: f64) -> CpuSampler {
        CpuSampler {
            cores: if cores > 0.0 { cores } else { 1.0 },
            last: None,
            shares: Vec::new(),
            busy_s: 0.0,
            wall_s: 0.0,
        }
    }

    /// Takes a reading of the process's CPU seconds at `at`; returns the
    /// share of the interval since the previous reading (none for the first
    /// reading, or one no later than the previous).
    pub fn sample(&mut self, at: Instant, cpu_seconds: f64) -> Option<f64> {
        let Some((then, cpu_then)) = self.last else {
            self.last = Some((at, cpu_seconds));
            return None;
        };
        let wall = at.checked_duration_since(then)?.as_secs_f64();
        if wall <= 0.0 {
            return None;
        }
        self.last = Some((at, cpu_seconds));
        let busy = (cpu_seconds - cpu_then).max(0.0);
        self.busy_s += busy;
        self.wall_s += wall;
        // CPU time and wall time are read a moment apart, so a fully busy
        // interval can come out a little over 1.
        let share = (busy / (wall * self.cores)).min(1.0);
        self.shares.push(share);
        Some(share)
    }

    /// The cores the shares are of.
    pub fn cores(&self) -> f64 {
        self.cores
    }

    /// Each interval's share, in order.
    pub fn shares(&self) -> &[f64] {
        &self.shares
    }

    /// The share over all intervals together, 0 to 1 (0 before two readings).
    pub fn mean(&self) -> f64 {
        if self.wall_s <= 0.0 {
            return 0.0;
        }
        (self.busy_s / (self.wall_s * self.cores)).min(1.0)
    }

    /// The largest share of one interval, 0 to 1.
    pub fn max(&self) -> f64 {
        self.shares.iter().copied().fold(0.0, f64::max)
    }

    /// The most intervals in a row whose share was at least `share`.
    pub fn longest_run(&self, share: f64) -> usize {
        crate::host::longest_run(&self.shares, share)
    }
}

/// When the generator counts as saturated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Send lateness p99 above this, ms.
    pub lateness_p99_ms: f64,
    /// An interval whose CPU share is at least this counts as busy (0 to 1).
    pub cpu_share: f64,
    /// This many busy intervals in a row, or more.
    pub cpu_intervals: usize,
    /// A mean CPU share over the run of at least this (0 to 1).
    pub cpu_share_mean: f64,
    /// Event-loop delay p99 above this, ms.
    pub loop_delay_p99_ms: f64,
    /// An interval whose host CPU busy share is at least this counts as busy (0 to 1).
    pub host_busy_share: f64,
    /// An interval in which some task waited for a CPU at least this share
    /// of the time counts as starved (0 to 1).
    pub host_pressure_share: f64,
    /// This many busy or starved host intervals in a row, or more.
    pub host_intervals: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lateness_p99_ms: 50.0,
            cpu_share: 0.95,
            cpu_intervals: 3,
            cpu_share_mean: 0.9,
            loop_delay_p99_ms: 50.0,
            host_busy_share: 0.95,
            host_pressure_share: 0.25,
            host_intervals: 3,
        }
    }
}

/// Whether this process kept up with the load it generated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// 99th percentile of send lateness (actual minus scheduled send time), ms.
    pub lateness_p99_ms: f64,
    /// Time sends waited for the server's stream credit, all clients, s:
    /// lateness the server caused by reading too slowly.
    pub credit_wait_s: f64,
    /// Schedule skipped while sessions were down or stalled, all clients, s.
    pub skipped_s: f64,
    /// Send lateness p99 within its limit.
    pub schedule_kept: bool,
    /// Why the schedule was not kept when the server explains it (then the
    /// generator is not called saturated for it).
    pub notes: Vec<String>,
    /// CPU share of the available cores over the whole run, 0 to 1.
    pub cpu_share_mean: f64,
    /// Largest CPU share of one sampling interval, 0 to 1.
    pub cpu_share_max: f64,
    /// Most sampling intervals in a row at or above the busy share of [`Limits::cpu_share`].
    pub cpu_busy_intervals: u64,
    /// Sampling intervals the CPU shares come from.
    pub cpu_intervals: u64,
    /// Cores available to this process (cgroup quota or CPUs allowed), may be fractional.
    pub cores: f64,
    /// 99th percentile of event-loop delay (how late a timer fired), ms.
    pub loop_delay_p99_ms: f64,
    /// Largest event-loop delay, ms.
    pub loop_delay_max_ms: f64,
    /// The whole host's CPU (this process and everything beside it); absent
    /// where `/proc/stat` could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostFigures>,
    /// True when any limit was broken: the figures measured this process as much as the server.
    pub saturated: bool,
    /// One line per broken limit: what was measured, the limit, and what it means.
    pub reasons: Vec<String>,
}

/// The event-loop delay of the run's runtimes (how late their timers
/// fired), ms; 0 when nothing was recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoopFigures {
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// What the server did to the schedule, summed over clients, seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerDelays {
    /// Sends waited this long for the server's stream credit (back-pressure).
    pub credit_wait_s: f64,
    /// Frames skipped while a session was down or stalled, as schedule time.
    pub skipped_s: f64,
}

/// Compares the run's figures with `limits`. Late sends that the server
/// explains (`server`: a second or more of back-pressure or of schedule
/// skipped during outages) do not make the generator saturated: they are a
/// note that the schedule was not kept, and why, unless the host was short
/// of CPU meanwhile (then the server cannot be blamed alone).
pub fn assess(
    lateness_p99_ms: f64,
    server: ServerDelays,
    cpu: &CpuSampler,
    loop_delay: LoopFigures,
    host: &HostSampler,
    limits: &Limits,
) -> Health {
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let host_figures = host.figures(limits.host_busy_share, limits.host_pressure_share);
    let host_reasons = host_figures.map_or_else(Vec::new, |h| host_short(&h, limits));
    let schedule_kept = lateness_p99_ms <= limits.lateness_p99_ms;
    if !schedule_kept {
        let late = format!(
            "send lateness p99 {} ms > {} ms",
            num(lateness_p99_ms),
            num(limits.lateness_p99_ms)
        );
        let mut why = Vec::new();
        if server.credit_wait_s >= 1.0 {
            why.push(format!(
                "sends waited {} s in all for the server's stream credit (the server did not \
                 read them in time: back-pressure, or a dead server)",
                num(server.credit_wait_s)
            ));
        }
        if server.skipped_s >= 1.0 {
            why.push(format!(
                "{} s of schedule in all was skipped while sessions were down or stalled",
                num(server.skipped_s)
            ));
        }
        if why.is_empty() {
            reasons.push(format!("{late}: this process could not keep its schedule"));
        } else if host_reasons.is_empty() {
            notes.push(format!("{late}: {}", why.join("; ")));
        } else {
            reasons.push(format!(
                "{late}: {}, while the host was short of CPU",
                why.join("; ")
            ));
        }
    }
    let (mean, max) = (cpu.mean(), cpu.max());
    let busy = cpu.longest_run(limits.cpu_share);
    let cores = num(cpu.cores());
    if busy >= limits.cpu_intervals.max(1) {
        reasons.push(format!(
            "CPU at least {}% of {cores} cores for {busy} intervals in a row (limit {}), \
             at most {}%: this process was CPU-bound",
            pct(limits.cpu_share),
            limits.cpu_intervals,
            pct(max)
        ));
    } else if mean >= limits.cpu_share_mean {
        reasons.push(format!(
            "mean CPU {}% of {cores} cores >= {}%: this process ran at its CPU limit",
            pct(mean),
            pct(limits.cpu_share_mean)
        ));
    }
    let (loop_p99, loop_max) = (loop_delay.p99_ms, loop_delay.max_ms);
    if loop_p99 > limits.loop_delay_p99_ms {
        reasons.push(format!(
            "event-loop delay p99 {} ms > {} ms (max {} ms): client tasks woke late, \
             so the timings include this process's own delay",
            num(loop_p99),
            num(limits.loop_delay_p99_ms),
            num(loop_max)
        ));
    }
    reasons.extend(host_reasons);
    Health {
        lateness_p99_ms,
        credit_wait_s: server.credit_wait_s,
        skipped_s: server.skipped_s,
        schedule_kept,
        notes,
        cpu_share_mean: mean,
        cpu_share_max: max,
        cpu_busy_intervals: busy as u64,
        cpu_intervals: cpu.shares().len() as u64,
        cores: cpu.cores(),
        loop_delay_p99_ms: loop_p99,
        loop_delay_max_ms: loop_max,
        host: host_figures,
        saturated: !reasons.is_empty(),
        reasons,
    }
}

/// One line for each way the host was short of CPU for
/// [`Limits::host_intervals`] or more intervals in a row.
fn host_short(h: &HostFigures, limits: &Limits) -> Vec<String> {
    let n = limits.host_intervals.max(1) as u64;
    let blame = "what was lost or late then cannot be laid on the server alone";
    let mut lines = Vec::new();
    if let (Some(run), Some(max)) = (h.pressure_intervals, h.pressure_max) {
        if run >= n {
            lines.push(format!(
                "host CPU pressure: tasks waited for a CPU at least {}% of the time for {run} \
                 intervals in a row (limit {n}), at most {}%: the machine was short of CPU; {blame}",
                pct(limits.host_pressure_share),
                pct(max)
            ));
        }
    }
    if let (Some(drops), Some(k)) = (h.socket_drops, h.socket_drop_intervals) {
        if k >= n {
            lines.push(format!(
                "{drops} datagrams dropped at this process's UDP sockets in {k} intervals \
                 (limit {n}): their receive buffers were full, it read what the server \
                 delivered too late; {blame}"
            ));
        }
    }
    if h.busy_intervals >= n {
        lines.push(format!(
            "host CPU at least {}% busy for {} intervals in a row (limit {n}), at most {}%: \
             the machine's cores were all in use; {blame}",
            pct(limits.host_busy_share),
            h.busy_intervals,
            pct(h.busy_max)
        ));
    }
    lines
}

/// A figure for a reason line: whole numbers from 100 up, else one decimal
/// without a trailing `.0` (`548`, `50`, `50.4`).
fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.1}");
    match s.strip_suffix(".0") {
        Some(whole) => whole.to_owned(),
        None => s,
    }
}

fn pct(share: f64) -> String {
    format!("{:.0}", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A sampler on 2 cores fed `shares` one second apart.
    fn sampler(shares: &[f64]) -> CpuSampler {
        let mut s = CpuSampler::new(2.0);
        let t0 = Instant::now();
        let mut cpu = 10.0;
        s.sample(t0, cpu);
        for (i, share) in shares.iter().enumerate() {
            cpu += share * 2.0;
            s.sample(t0 + Duration::from_secs(i as u64 + 1), cpu);
        }
        s
    }

    /// The event-loop figures of wake-ups `ms` late, as the engine's probe
    /// reads them from its histogram of µs.
    fn delay(ms: &[u64]) -> LoopFigures {
        let mut h = crate::hist::new();
        for &v in ms {
            h.saturating_record((v * 1000).max(1));
        }
        LoopFigures {
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        }
    }

    #[test]
    fn a_healthy_run_has_no_reasons() {
        let h = assess(
            3.0,
            ServerDelays::default(),
            &sampler(&[0.5, 0.96, 0.96, 0.5, 0.7]),
            delay(&[0, 1, 1, 2]),
            &HostSampler::new(),
            &Limits::default(),
        );
        assert!(!h.saturated, "{:?}", h.reasons);
        assert!(h.reasons.is_empty());
        assert_eq!(h.cpu_busy_intervals, 2);
        assert_eq!(h.cpu_intervals, 5);
        assert_eq!(h.cores, 2.0);
        assert!((h.cpu_share_max - 0.96).abs() < 1e-9);
        assert!((h.cpu_share_mean - 0.724).abs() < 1e-9);
        assert!(h.loop_delay_max_ms >= 2.0 && h.loop_delay_max_ms < 2.01);
    }

    #[test]
    fn late_sends_are_one_reason() {
        let h = assess(
            548.2,
            ServerDelays::default(),
            &sampler(&[0.4]),
            delay(&[1]),
            &HostSampler::new(),
            &Limits::default(),
        );
        assert!(h.saturated);
        assert_eq!(
            h.reasons,
            ["send lateness p99 548 ms > 50 ms: this process could not keep its schedule"]
        );
        assert_eq!(h.lateness_p99_ms, 548.2);
        assert!(!h.schedule_kept);
        // The same lateness while sends waited for the server's stream
        // credit and sessions were down: the server's doing, a note.
        let server = ServerDelays {
            credit_wait_s: 12.5,
            skipped_s: 3.0,
        };
        let h = assess(
            548.2,
            server,
            &sampler(&[0.4]),
            delay(&[1]),
            &HostSampler::new(),
            &Limits::default(),
        );
        assert!(!h.saturated && !h.schedule_kept && h.reasons.is_empty());
        assert_eq!(
            h.notes,
            [
                "send lateness p99 548 ms > 50 ms: sends waited 12.5 s in all for the server's \
              stream credit (the server did not read them in time: back-pressure, or a dead \
              server); 3 s of schedule in all \
              was skipped while sessions were down or stalled"
            ]
        );
    }

    #[test]
    fn three_busy_intervals_in_a_row_saturate_the_cpu() {
        let limits = Limits::default();
        let h = assess(
            1.0,
            ServerDelays::default(),
            &sampler(&[0.5, 0.96, 1.0, 0.97, 0.2]),
            delay(&[]),
            &HostSampler::new(),
            &limits,
        );
        assert_eq!(h.cpu_busy_intervals, 3);
        assert_eq!(
            h.reasons,
            [
                "CPU at least 95% of 2 cores for 3 intervals in a row (limit 3), at most 100%: \
                 this process was CPU-bound"
            ]
        );
        // Busy intervals that are not consecutive do not.
        let h = assess(
            1.0,
            ServerDelays::default(),
            &sampler(&[0.99, 0.99, 0.1, 0.99, 0.99]),
            delay(&[]),
            &HostSampler::new(),
            &limits,
        );
        assert!(!h.saturated, "{:?}", h.reasons);
    }

    #[test]
    fn a_high_mean_saturates_the_cpu_without_a_busy_run() {
        let h = assess(
            1.0,
            ServerDelays::default(),
            &sampler(&[0.9, 0.94, 0.9, 0.94]),
            delay(&[]),
            &HostSampler::new(),
            &Limits::default(),
        );
        assert_eq!(
            h.reasons,
            ["mean CPU 92% of 2 cores >= 90%: this process ran at its CPU limit"]
        );
    }

    #[test]
    fn a_late_event_loop_is_one_reason() {
        let mut ms = vec![1; 90];
        ms.extend([120; 10]);
        let h = assess(
            1.0,
            ServerDelays::default(),
            &sampler(&[]),
            delay(&ms),
            &HostSampler::new(),
            &Limits::default(),
        );
        assert_eq!(h.reasons.len(), 1, "{:?}", h.reasons);
        assert!(
            h.reasons[0].starts_with("event-loop delay p99 120 ms > 50 ms (max 120 ms)"),
            "{}",
            h.reasons[0]
        );
        assert!(h.loop_delay_p99_ms >= 120.0 && h.loop_delay_p99_ms < 120.2);
    }

    #[test]
    fn every_broken_limit_adds_a_reason_and_the_health_round_trips_as_json() {
        let h = assess(
            80.0,
            ServerDelays::default(),
            &sampler(&[1.0, 1.0, 1.0]),
            delay(&[200; 5]),
            &HostSampler::new(),
            &Limits::default(),
        );
        assert!(h.saturated);
        assert_eq!(h.reasons.len(), 3, "{:?}", h.reasons);
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains("\"cpu_share_mean\":1.0"), "{json}");
        let back: Health = serde_json::from_str(&json).unwrap();
        assert_eq!((back.saturated, &back.reasons), (true, &h.reasons));
        assert!((back.loop_delay_p99_ms - h.loop_delay_p99_ms).abs() < 1e-9);
    }

    #[test]
    fn cpu_shares_are_of_the_available_cores() {
        let mut s = CpuSampler::new(1.5);
        let t0 = Instant::now();
        assert_eq!(
            s.sample(t0, 4.0),
            None,
            "the first reading starts the first interval"
        );
        // 0.75 CPU seconds over 1 s on 1.5 cores.
        let share = s.sample(t0 + Duration::from_secs(1), 4.75).unwrap();
        assert!((share - 0.5).abs() < 1e-9);
        assert_eq!(
            s.sample(t0 + Duration::from_secs(1), 5.0),
            None,
            "no time passed"
        );
        // 4.85 CPU seconds in 3 s is more than 1.5 cores give (the reads
        // jitter): capped at 1.
        let share = s.sample(t0 + Duration::from_secs(4), 9.6).unwrap();
        assert_eq!(share, 1.0);
        // The mean weighs intervals by their length: (0.75 + 4.85) / (4 × 1.5).
        assert!((s.mean() - 5.6 / 6.0).abs() < 1e-9, "{}", s.mean());
        assert_eq!(s.max(), 1.0);
        assert_eq!(CpuSampler::new(0.0).cores(), 1.0);
    }

    use crate::host::tests::fed as host;

    #[test]
    fn a_starved_host_saturates_and_the_server_is_not_blamed_alone() {
        // This process used half a core; the host around it was full and
        // its tasks waited for a CPU, and sends waited for stream credit.
        let server = ServerDelays {
            credit_wait_s: 3.0,
            skipped_s: 0.0,
        };
        let starved = host(&[
            (0.6, 0.1),
            (0.99, 0.3),
            (1.0, 0.4),
            (0.98, 0.35),
            (0.5, 0.0),
        ]);
        let h = assess(
            80.0,
            server,
            &sampler(&[0.25; 5]),
            delay(&[1]),
            &starved,
            &Limits::default(),
        );
        assert!(h.saturated);
        assert!(
            h.notes.is_empty(),
            "no note blames the server: {:?}",
            h.notes
        );
        assert_eq!(h.reasons.len(), 3, "{:#?}", h.reasons);
        assert!(
            h.reasons[0].ends_with("while the host was short of CPU"),
            "{}",
            h.reasons[0]
        );
        assert!(
            h.reasons[1].starts_with("host CPU pressure: tasks waited for a CPU at least 25% of the time for 3 intervals in a row (limit 3), at most 40%"),
            "{}",
            h.reasons[1]
        );
        assert!(
            h.reasons[2].starts_with("host CPU at least 95% busy for 3 intervals"),
            "{}",
            h.reasons[2]
        );
        let f = h.host.unwrap();
        assert_eq!(
            (f.intervals, f.busy_intervals, f.pressure_intervals),
            (5, 3, Some(3))
        );

        // The same late sends on a host with headroom: the server's note.
        let calm = host(&[(0.5, 0.02); 5]);
        let h = assess(
            80.0,
            server,
            &sampler(&[0.25; 5]),
            delay(&[1]),
            &calm,
            &Limits::default(),
        );
        assert!(!h.saturated, "{:?}", h.reasons);
        assert_eq!(h.notes.len(), 1);
        assert!(h.host.is_some());
        // Two starved intervals in a row are not three.
        let brief = host(&[(1.0, 0.5), (1.0, 0.5), (0.5, 0.0), (1.0, 0.5)]);
        let h = assess(
            1.0,
            ServerDelays::default(),
            &sampler(&[0.25; 4]),
            delay(&[1]),
            &brief,
            &Limits::default(),
        );
        assert!(!h.saturated, "{:?}", h.reasons);
    }

    /// Datagrams dropped at this process's sockets in 3 intervals make it
    /// saturated even on an idle host (it read too late); in 2, not.
    #[test]
    fn drops_at_our_sockets_saturate() {
        use crate::host::{HostReading, HostSampler, SocketReading};
        let fed = |drops: &[u64]| {
            let mut s = HostSampler::new();
            let t0 = std::time::Instant::now();
            let mut total = 0;
            for (i, d) in std::iter::once(&0).chain(drops).enumerate() {
                total += d;
                let r = HostReading {
                    idle_ticks: 150 * i as u64,
                    cpus: 2,
                    ticks_per_s: 100,
                    pressure_us: Some(0),
                    sockets: Some(SocketReading {
                        rx_queue_bytes: 0,
                        drops: total,
                    }),
                };
                s.sample(t0 + Duration::from_secs(i as u64), Some(r));
            }
            s
        };
        let judge = |s: &HostSampler| {
            assess(
                1.0,
                ServerDelays::default(),
                &sampler(&[0.25; 5]),
                delay(&[1]),
                s,
                &Limits::default(),
            )
        };
        let h = judge(&fed(&[4, 0, 9, 0, 1]));
        assert!(h.saturated);
        assert_eq!(
            h.reasons,
            ["14 datagrams dropped at this process's UDP sockets in 3 intervals (limit 3): their receive buffers were full, it read what the server delivered too late; what was lost or late then cannot be laid on the server alone"]
        );
        let f = h.host.unwrap();
        assert_eq!(
            (f.socket_drops, f.socket_drop_intervals),
            (Some(14), Some(3))
        );
        let h = judge(&fed(&[4, 0, 9, 0, 0]));
        assert!(!h.saturated, "{:?}", h.reasons);
    }
}
