//! The host's CPU, beside this process's: a generator whose own CPU share is
//! fine can still be starved by what shares its machine (a server, another
//! generator), and then the packets it reads late or not at all look like
//! the server's loss.
//!
//! Two signals, read from `/proc` once a second by the engine and turned
//! into per-interval shares here:
//!
//! - **busy**: the share of the host's CPU time, all its CPUs over the wall
//!   time, that was not idle (`/proc/stat`: idle and iowait of its first
//!   `cpu` line against the wall time times the `cpuN` lines). Only the idle
//!   time is read because the kernel counts it exactly, where the busy
//!   fields are sampled at its ticks: a process that wakes every few
//!   milliseconds, as a generator does, can run between the ticks and not
//!   be counted there at all (seen here: a replayer using 8 % of the cores
//!   showed as 1 % busy);
//! - **pressure**: the share of wall time in which at least one runnable
//!   task waited for a CPU (`/proc/pressure/cpu`, the `some` line's `total`
//!   in µs; Linux's pressure stall information, absent on older kernels).
//!
//! - **this process's sockets**: what waits in its UDP sockets' receive
//!   queues and what the kernel dropped at them because those queues were
//!   full (`/proc/net/udp` and `udp6`, the `rx_queue` and `drops` columns of
//!   the sockets whose inodes this process holds): a generator that reads
//!   what the server delivered too late loses it there, its own loss, which
//!   QUIC then resends late or the server gives up on.
//!
//! Pure: the engine passes the files' text, the tests made-up text.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One reading of the host's CPU counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostReading {
    /// Idle time (idle and iowait), all CPUs, in clock ticks.
    pub idle_ticks: u64,
    /// CPUs online (`cpuN` lines).
    pub cpus: u32,
    /// Clock ticks per second of `/proc/stat` (USER_HZ, `getconf CLK_TCK`).
    pub ticks_per_s: u32,
    /// Time at least one task waited for a CPU, µs since boot; `None` where
    /// the kernel does not say.
    pub pressure_us: Option<u64>,
    /// This process's UDP sockets; `None` where they could not be read.
    pub sockets: Option<SocketReading>,
}

/// This process's UDP sockets, summed, as the kernel sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketReading {
    /// Bytes waiting in their receive queues.
    pub rx_queue_bytes: u64,
    /// Datagrams dropped at them since they were opened (a receive buffer
    /// was full).
    pub drops: u64,
}

impl SocketReading {
    /// From the text of `/proc/net/udp` (and `udp6`, appended): the sockets
    /// whose inode is one of `inodes`. Lines that do not parse are skipped.
    pub fn parse(text: &str, inodes: &[u64]) -> SocketReading {
        let mut r = SocketReading::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            let (Some(queues), Some(inode), Some(drops)) = (f.get(4), f.get(9), f.get(12)) else {
                continue;
            };
            let Ok(inode) = inode.parse::<u64>() else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            let rx = queues
                .split_once(':')
                .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok());
            if let (Some(rx), Ok(d)) = (rx, drops.parse::<u64>()) {
                r.rx_queue_bytes += rx;
                r.drops += d;
            }
        }
        r
    }
}

impl HostReading {
    /// From the text of `/proc/stat` and, where present, `/proc/pressure/cpu`,
    /// with `/proc/stat`'s ticks per second; `None` when `/proc/stat` has no
    /// `cpu` line with the idle field, no `cpuN` line, or `ticks_per_s` is 0.
    pub fn parse(stat: &str, pressure: Option<&str>, ticks_per_s: u32) -> Option<HostReading> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let f: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map_while(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait ...
        let idle = *f.get(3)? + f.get(4).copied().unwrap_or(0);
        let cpus = stat
            .lines()
            .filter(|l| {
                l.strip_prefix("cpu")
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
            })
            .count() as u32;
        (cpus > 0 && ticks_per_s > 0).then(|| HostReading {
            idle_ticks: idle,
            cpus,
            ticks_per_s,
            pressure_us: pressure.and_then(some_total_us),
            sockets: None,
        })
    }

    /// The busy share from `self` to `later`, `secs` apart (0..1); `None`
    /// for no time.
    pub fn busy_until(&self, later: &HostReading, secs: f64) -> Option<f64> {
        let capacity = secs * f64::from(later.ticks_per_s) * f64::from(later.cpus);
        (capacity > 0.0).then(|| {
            let idle = later.idle_ticks.saturating_sub(self.idle_ticks) as f64;
            (1.0 - idle / capacity).clamp(0.0, 1.0)
        })
    }

    /// Datagrams dropped at this process's sockets from `self` to `later`;
    /// `None` where either reading has no sockets.
    pub fn drops_until(&self, later: &HostReading) -> Option<u64> {
        Some(later.sockets?.drops.saturating_sub(self.sockets?.drops))
    }

    /// The share of `secs` in which some task waited for a CPU, from `self`
    /// to `later` (0..1); `None` where either reading has no pressure.
    pub fn pressure_until(&self, later: &HostReading, secs: f64) -> Option<f64> {
        let (a, b) = (self.pressure_us?, later.pressure_us?);
        (secs > 0.0).then(|| (b.saturating_sub(a) as f64 / (secs * 1e6)).min(1.0))
    }
}

/// The `total=` of the `some` line of a pressure file.
fn some_total_us(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("some "))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix("total="))?
        .parse()
        .ok()
}

/// The host's busy and pressure shares, interval by interval.
#[derive(Debug, Clone, Default)]
pub struct HostSampler {
    last: Option<(Instant, HostReading)>,
    busy: Vec<f64>,
    pressure: Vec<f64>,
    /// Per interval: datagrams dropped at this process's sockets, and what
    /// waited in their queues at its end (bytes).
    sockets: Vec<(u64, u64)>,
}

impl HostSampler {
    /// A sampler with no reading yet.
    pub fn new() -> HostSampler {
        HostSampler::default()
    }

    /// Takes a reading at `at` (none when the host's counters could not be
    /// read); the shares of the interval since the previous reading are kept.
    pub fn sample(&mut self, at: Instant, reading: Option<HostReading>) {
        let Some(now) = reading else {
            return;
        };
        if let Some((then, prev)) = self.last {
            let Some(wall) = at.checked_duration_since(then) else {
                return;
            };
            let secs = wall.as_secs_f64();
            let Some(busy) = prev.busy_until(&now, secs) else {
                return;
            };
            self.busy.push(busy);
            if let Some(p) = prev.pressure_until(&now, secs) {
                self.pressure.push(p);
            }
            if let (Some(d), Some(s)) = (prev.drops_until(&now), now.sockets) {
                self.sockets.push((d, s.rx_queue_bytes));
            }
        }
        self.last = Some((at, now));
    }

    /// The figures over the intervals so far, with the longest runs of
    /// intervals at or above `busy_share` and `pressure_share`; `None`
    /// before two readings.
    pub fn figures(&self, busy_share: f64, pressure_share: f64) -> Option<HostFigures> {
        if self.busy.is_empty() {
            return None;
        }
        let measured = !self.pressure.is_empty();
        let sockets = !self.sockets.is_empty();
        Some(HostFigures {
            socket_drops: sockets.then(|| self.sockets.iter().map(|s| s.0).sum()),
            socket_drop_intervals: sockets
                .then(|| self.sockets.iter().filter(|s| s.0 > 0).count() as u64),
            rx_queue_max_kb: sockets
                .then(|| kib(self.sockets.iter().map(|s| s.1).max().unwrap_or(0))),
            intervals: self.busy.len() as u64,
            busy_mean: mean(&self.busy),
            busy_max: max(&self.busy),
            busy_intervals: longest_run(&self.busy, busy_share) as u64,
            pressure_mean: measured.then(|| mean(&self.pressure)),
            pressure_max: measured.then(|| max(&self.pressure)),
            pressure_intervals: measured
                .then(|| longest_run(&self.pressure, pressure_share) as u64),
        })
    }
}

/// The host's CPU over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostFigures {
    /// Sampling intervals (about a second each).
    pub intervals: u64,
    /// Mean share of the host's CPU time that was busy, 0 to 1.
    pub busy_mean: f64,
    /// Largest busy share of one interval, 0 to 1.
    pub busy_max: f64,
    /// Most intervals in a row at or above the busy limit.
    pub busy_intervals: u64,
    /// Mean share of time some task waited for a CPU, 0 to 1; absent where
    /// the kernel has no pressure information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure_mean: Option<f64>,
    /// Largest pressure share of one interval, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure_max: Option<f64>,
    /// Most intervals in a row at or above the pressure limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure_intervals: Option<u64>,
    /// Datagrams the kernel dropped at this process's UDP sockets (their
    /// receive buffers were full: it read too late); absent where they
    /// could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_drops: Option<u64>,
    /// Intervals with such drops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_drop_intervals: Option<u64>,
    /// Most bytes waiting in its sockets' receive queues at the end of an
    /// interval, KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_queue_max_kb: Option<f64>,
}

/// `bytes` in KiB, to a tenth, as the report gives receive queues.
pub(crate) fn kib(bytes: u64) -> f64 {
    (bytes as f64 / 1024.0 * 10.0).round() / 10.0
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// The most values in a row at or above `limit`.
pub(crate) fn longest_run(v: &[f64], limit: f64) -> usize {
    let (mut run, mut longest) = (0, 0);
    for &s in v {
        run = if s >= limit { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    const STAT: &str = "cpu  100 20 30 800 50 0 0 0 0 0\ncpu0 50 10 15 400 25 0 0 0 0 0\ncpu1 50 10 15 400 25 0 0 0 0 0\nintr 1\n";
    const PRESSURE: &str = "some avg10=1.00 avg60=2.00 avg300=3.00 total=5000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

    #[test]
    fn readings_come_from_the_first_cpu_line_and_the_some_line() {
        let r = HostReading::parse(STAT, Some(PRESSURE), 100).unwrap();
        assert_eq!((r.idle_ticks, r.cpus, r.ticks_per_s), (850, 2, 100));
        assert_eq!(r.pressure_us, Some(5_000_000));
        let r = HostReading::parse(STAT, None, 100).unwrap();
        assert_eq!(r.pressure_us, None);
        assert_eq!(HostReading::parse("intr 1\n", None, 100), None);
        assert_eq!(
            HostReading::parse("cpu  1 2\ncpu0 1 2\n", None, 100),
            None,
            "too short"
        );
        assert_eq!(
            HostReading::parse("cpu  1 2 3 4\n", None, 100),
            None,
            "no cpuN"
        );
        assert_eq!(HostReading::parse(STAT, None, 0), None);
        assert_eq!(some_total_us("full avg10=0.00 total=3\n"), None);
        // Two CPUs at 100 ticks a second for 2 s: 400 ticks; 100 of them idle.
        let later = HostReading {
            idle_ticks: 950,
            ..r
        };
        assert_eq!(r.busy_until(&later, 2.0), Some(0.75));
        assert_eq!(r.busy_until(&later, 0.0), None);
    }

    /// A sampler fed one-second intervals at `busy` and `pressure` shares
    /// (2 CPUs); the generator's verdict tests use it too.
    pub(crate) fn fed(steps: &[(f64, f64)]) -> HostSampler {
        let mut s = HostSampler::new();
        let t0 = Instant::now();
        let (mut idle, mut waited) = (0u64, 0u64);
        let reading = |i, w| {
            Some(HostReading {
                idle_ticks: i,
                cpus: 2,
                ticks_per_s: 100,
                pressure_us: Some(w),
                sockets: None,
            })
        };
        s.sample(t0, reading(idle, waited));
        for (i, &(b, p)) in steps.iter().enumerate() {
            idle += ((1.0 - b) * 200.0).round() as u64;
            waited += (p * 1e6) as u64;
            s.sample(
                t0 + Duration::from_secs(i as u64 + 1),
                reading(idle, waited),
            );
        }
        s
    }

    #[test]
    fn shares_are_per_interval_with_their_longest_runs() {
        assert_eq!(HostSampler::new().figures(0.95, 0.25), None);
        let s = fed(&[(0.5, 0.0), (1.0, 0.3), (1.0, 0.4), (0.97, 0.5), (0.2, 0.0)]);
        let f = s.figures(0.95, 0.25).unwrap();
        assert_eq!(f.intervals, 5);
        assert!((f.busy_mean - 3.67 / 5.0).abs() < 0.01, "{f:?}");
        assert_eq!(f.busy_max, 1.0);
        assert_eq!(f.busy_intervals, 3);
        assert!((f.pressure_mean.unwrap() - 0.24).abs() < 1e-9, "{f:?}");
        assert_eq!(f.pressure_max, Some(0.5));
        assert_eq!(f.pressure_intervals, Some(3));
    }

    #[test]
    fn sockets_are_read_by_inode_and_their_drops_counted_per_interval() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
 1: 0100007F:1F90 00000000:0000 07 00000000:00000800 00:00000000 00000000     0        0 111 2 0000000000000000 5\n\
 2: 0100007F:1F91 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 222 2 0000000000000000 7\n\
 3: 0100007F:1F92 00000000:0000 07 00000000:00FFFFFF 00:00000000 00000000     0        0 333 2 0000000000000000 900\n\
 garbage\n";
        let r = SocketReading::parse(udp, &[111, 222]);
        assert_eq!((r.rx_queue_bytes, r.drops), (0x800 + 0x100, 12));
        assert_eq!(SocketReading::parse(udp, &[]), SocketReading::default());
        let mut s = HostSampler::new();
        let t0 = Instant::now();
        for (i, (drops, queue)) in [(12u64, 0u64), (12, 4096), (40, 1024), (40, 0)]
            .into_iter()
            .enumerate()
        {
            let r = HostReading {
                idle_ticks: 100 * i as u64,
                cpus: 2,
                ticks_per_s: 100,
                pressure_us: None,
                sockets: Some(SocketReading {
                    rx_queue_bytes: queue,
                    drops,
                }),
            };
            s.sample(t0 + Duration::from_secs(i as u64), Some(r));
        }
        let f = s.figures(0.95, 0.25).unwrap();
        assert_eq!(f.socket_drops, Some(28));
        assert_eq!(f.socket_drop_intervals, Some(1));
        assert_eq!(f.rx_queue_max_kb, Some(4.0));
    }

    #[test]
    fn no_pressure_file_leaves_pressure_unmeasured() {
        let mut s = HostSampler::new();
        let t0 = Instant::now();
        for (i, idle) in [0u64, 100, 200].into_iter().enumerate() {
            let r = HostReading {
                idle_ticks: idle,
                cpus: 2,
                ticks_per_s: 100,
                pressure_us: None,
                sockets: None,
            };
            s.sample(t0 + Duration::from_secs(i as u64), Some(r));
        }
        s.sample(t0 + Duration::from_secs(9), None);
        let f = s.figures(0.95, 0.25).unwrap();
        assert_eq!((f.intervals, f.busy_mean), (2, 0.5));
        assert_eq!((f.pressure_mean, f.pressure_intervals), (None, None));
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("pressure"), "{json}");
    }
}
