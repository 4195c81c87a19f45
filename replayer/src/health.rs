//! What the engine measures of its own health: the cores it may use and
//! how late its event loops wake.
//!
//! - [`cores_available`]: the cgroup's CPU quota when there is one, bounded
//!   by the CPUs its affinity allows; CPU shares are of these cores.
//! - [`LoopDelay::probe`], spawned on each client runtime, asks to wake every
//!   [`LoopDelay::PERIOD`] and records how late it woke. A runtime thread busy
//!   with other tasks, or starved of CPU, wakes it late.
//!
//! The verdict over these figures (`assess`, `Health`, `CpuSampler`) is pure
//! and lives in `synth_report::health`, re-exported here.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use synth_report::health::*;

use crate::metrics::{Hist, LATENESS_BUCKETS};

/// Event-loop delay of the runtimes it is spawned on, in microseconds.
///
/// Each wake-up is scheduled one period after the previous one actually
/// happened, so one late wake-up is counted once and not carried into the
/// next. Tokio's timer has a resolution of 1 ms, so an idle runtime reads
/// 0 to 1 ms.
#[derive(Debug)]
pub struct LoopDelay {
    period: Duration,
    delay: Hist,
}

impl Default for LoopDelay {
    fn default() -> Self {
        LoopDelay::new(LoopDelay::PERIOD)
    }
}

impl LoopDelay {
    /// How often a probe asks to wake up.
    pub const PERIOD: Duration = Duration::from_millis(50);

    /// A probe set that wakes every `period`, with nothing recorded yet.
    pub fn new(period: Duration) -> LoopDelay {
        LoopDelay {
            period,
            delay: Hist::with_shards(LATENESS_BUCKETS, 4),
        }
    }

    /// The probe of one runtime, to spawn on it: it sleeps one period at a
    /// time and records how late each wake-up was, until `stop` is true (or
    /// its sender is gone). `shard` spreads lock use: pass the runtime's index.
    pub fn probe(
        self: &Arc<Self>,
        shard: usize,
        mut stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let me = Arc::clone(self);
        async move {
            let mut due = tokio::time::Instant::now() + me.period;
            loop {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|&stopped| stopped) => return,
                    () = tokio::time::sleep_until(due) => {}
                }
                let now = tokio::time::Instant::now();
                me.record(now.saturating_duration_since(due), shard);
                due = now + me.period;
            }
        }
    }

    /// Records one wake-up that came `late` after it was due.
    pub fn record(&self, late: Duration, shard: usize) {
        self.delay.record(late.as_micros() as u64, shard);
    }

    /// The distribution, for `/metrics`.
    pub fn hist(&self) -> &Hist {
        &self.delay
    }

    /// Wake-ups recorded.
    pub fn count(&self) -> u64 {
        self.delay.count()
    }

    /// 99th percentile of the delay, ms (0 when nothing was recorded).
    pub fn p99_ms(&self) -> f64 {
        self.delay.merged().value_at_quantile(0.99) as f64 / 1000.0
    }

    /// Largest delay, ms (0 when nothing was recorded).
    pub fn max_ms(&self) -> f64 {
        self.delay.merged().max() as f64 / 1000.0
    }

    /// The figures the generator's verdict takes.
    pub fn figures(&self) -> LoopFigures {
        let h = self.delay.merged();
        LoopFigures {
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// The CPU cores this process may use: the cgroup's CPU quota (v2 `cpu.max`,
/// v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, the smallest along the
/// cgroup's path) when it has one, bounded by the CPUs its affinity mask
/// allows. The quota may be fractional (`1.5`).
///
/// `std::thread::available_parallelism` alone would not do: it rounds a
/// quota down to whole cores. It is the fallback when the affinity mask
/// cannot be read.
pub fn cores_available() -> f64 {
    let cpus = affinity_cpus()
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1) as f64;
    match cgroup_quota() {
        Some(quota) => quota.min(cpus),
        None => cpus,
    }
}

#[cfg(target_os = "linux")]
fn affinity_cpus() -> Option<usize> {
    // SAFETY: cpu_set_t is plain data, zero is a valid value, and
    // sched_getaffinity writes at most the size we pass into it.
    let n = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        libc::CPU_COUNT(&set)
    };
    usize::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(not(target_os = "linux"))]
fn affinity_cpus() -> Option<usize> {
    None
}

fn cgroup_quota() -> Option<f64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let paths = cgroup_paths(&own);
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    let mut quotas = Vec::new();
    if let Some(path) = paths.v2 {
        for dir in along(Path::new("/sys/fs/cgroup"), path) {
            quotas.extend(read(dir.join("cpu.max")).and_then(|s| parse_cpu_max(&s)));
        }
    }
    if let Some(path) = paths.v1 {
        for root in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
            for dir in along(Path::new(root), path) {
                let quota = read(dir.join("cpu.cfs_quota_us"));
                let period = read(dir.join("cpu.cfs_period_us"));
                if let (Some(q), Some(p)) = (quota, period) {
                    quotas.extend(parse_cfs(&q, &p));
                }
            }
        }
    }
    quotas.into_iter().reduce(f64::min)
}

/// This process's cgroup paths, as `/proc/self/cgroup` gives them.
#[derive(Debug, Default, PartialEq, Eq)]
struct CgroupPaths<'a> {
    /// The unified (v2) hierarchy's path: the `0::` line.
    v2: Option<&'a str>,
    /// The v1 `cpu` controller's path.
    v1: Option<&'a str>,
}

fn cgroup_paths(proc_self_cgroup: &str) -> CgroupPaths<'_> {
    let mut paths = CgroupPaths::default();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            paths.v2 = Some(path);
        } else if controllers.split(',').any(|c| c == "cpu") {
            paths.v1 = Some(path);
        }
    }
    paths
}

/// `root` joined with `path` and each of its ancestors, the deepest first:
/// a quota set on any of them applies.
fn along(root: &Path, path: &str) -> Vec<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return vec![root.to_path_buf()];
    }
    rel.ancestors().map(|a| root.join(a)).collect()
}

/// Cores allowed by a cgroup v2 `cpu.max` ("quota period", or "max period"
/// for no limit).
fn parse_cpu_max(cpu_max: &str) -> Option<f64> {
    let mut parts = cpu_max.split_whitespace();
    let quota = parts.next()?;
    let period = parts.next().unwrap_or("100000");
    quota_over_period(quota, period)
}

/// Cores allowed by cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`
/// (a quota of -1 for no limit).
fn parse_cfs(quota_us: &str, period_us: &str) -> Option<f64> {
    quota_over_period(quota_us.trim(), period_us.trim())
}

fn quota_over_period(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.parse().ok()?; // "max" fails here: no limit
    let period: f64 = period.parse().ok()?;
    (quota > 0.0 && period > 0.0).then_some(quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v2_cpu_max() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2.0));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("max"), None);
        assert_eq!(parse_cpu_max("50000"), Some(0.5), "the default period");
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("100000 0"), None);
    }

    #[test]
    fn cgroup_v1_cfs_quota() {
        assert_eq!(parse_cfs("50000\n", "100000\n"), Some(0.5));
        assert_eq!(parse_cfs("400000", "100000"), Some(4.0));
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("", "100000"), None);
    }

    #[test]
    fn cgroup_paths_of_v1_v2_and_hybrid_hosts() {
        let v2 = "0::/system.slice/synth.service\n";
        assert_eq!(
            cgroup_paths(v2),
            CgroupPaths {
                v2: Some("/system.slice/synth.service"),
                v1: None
            }
        );
        let v1 = "12:cpuset:/\n4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n";
        assert_eq!(
            cgroup_paths(v1),
            CgroupPaths {
                v2: None,
                v1: Some("/docker/abc")
            }
        );
        let hybrid = "2:cpuacct:/\n1:cpu:/k\n0::/u\n";
        assert_eq!(
            cgroup_paths(hybrid),
            CgroupPaths {
                v2: Some("/u"),
                v1: Some("/k")
            }
        );
        assert_eq!(
            along(Path::new("/sys/fs/cgroup"), "/a/b"),
            [
                PathBuf::from("/sys/fs/cgroup/a/b"),
                PathBuf::from("/sys/fs/cgroup/a"),
                PathBuf::from("/sys/fs/cgroup/")
            ]
        );
        assert_eq!(
            along(Path::new("/sys/fs/cgroup"), "/"),
            [PathBuf::from("/sys/fs/cgroup/")]
        );
        assert_eq!(
            along(Path::new("/r"), "/../etc"),
            [PathBuf::from("/r")],
            "a path that climbs out is not followed"
        );
    }

    #[test]
    fn cores_available_is_positive_and_within_the_cpus() {
        let cores = cores_available();
        let cpus = std::thread::available_parallelism().unwrap().get() as f64;
        // available_parallelism rounds a fractional quota down, never below 1.
        assert!(cores > 0.0 && cores < cpus + 1.0, "{cores} of {cpus}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_probe_records_how_late_it_woke_and_stops_on_the_signal() {
        let d = Arc::new(LoopDelay::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let probe = tokio::spawn(d.probe(0, stop_rx));
        // Let the probe arm its first timer (due at 50 ms), then jump the
        // clock to 120 ms as a runtime blocked for that long would.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(120)).await;
        // Sleeping lets the probe run: woken 70 ms late, it re-arms for 170 ms.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(d.count(), 1);
        assert!(d.max_ms() >= 70.0 && d.max_ms() < 70.1, "{}", d.max_ms());
        // On a paused clock an idle runtime's wake-ups are on time: 0 ms late
        // (recorded as 1 µs, the histogram's floor).
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(d.count(), 5);
        assert!(d.p99_ms() >= 70.0 && d.p99_ms() < 70.1, "{}", d.p99_ms());
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), probe)
            .await
            .expect("the probe stops when told")
            .unwrap();
        assert_eq!(d.count(), 5);
    }
}
