//! This process's cost and the cores it may use: CPU seconds and memory
//! ([`Process::now`]), and [`cores_available`] (the cgroup's CPU quota when
//! there is one, bounded by the CPUs its affinity allows).

use std::path::{Path, PathBuf};

/// CPU and memory of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Process {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Current resident set size.
    pub rss_bytes: u64,
    /// Peak resident set size.
    pub peak_rss_bytes: u64,
}

impl Process {
    /// Reads getrusage and /proc/self/statm.
    pub fn now() -> Process {
        // SAFETY: getrusage writes into the zeroed struct we pass; rusage is plain data.
        let ru = unsafe {
            let mut ru: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut ru);
            ru
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        let rss_pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| synth_report::server::statm_rss_pages(&s))
            .unwrap_or(0);
        Process {
            cpu_seconds: secs(ru.ru_utime) + secs(ru.ru_stime),
            rss_bytes: rss_pages * page,
            peak_rss_bytes: ru.ru_maxrss as u64 * 1024,
        }
    }
}

/// The host's CPU counters now (`/proc/stat`, and `/proc/pressure/cpu`
/// where the kernel has it), with this process's UDP sockets; `None` where
/// `/proc/stat` cannot be read.
pub fn host_now() -> Option<synth_report::host::HostReading> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let pressure = std::fs::read_to_string("/proc/pressure/cpu").ok();
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let mut r = synth_report::host::HostReading::parse(
        &stat,
        pressure.as_deref(),
        u32::try_from(ticks).ok()?,
    )?;
    r.sockets = sockets_now();
    Some(r)
}

/// This process's UDP sockets now: the inodes of its socket descriptors
/// (`/proc/self/fd`) looked up in `/proc/net/udp` and `udp6`; `None` where
/// those cannot be read.
fn sockets_now() -> Option<synth_report::host::SocketReading> {
    let mut inodes = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(target) = std::fs::read_link(e.path()) else {
            continue;
        };
        let t = target.to_string_lossy();
        if let Some(n) = t
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok())
        {
            inodes.push(n);
        }
    }
    let mut text = std::fs::read_to_string("/proc/net/udp").ok()?;
    if let Ok(v6) = std::fs::read_to_string("/proc/net/udp6") {
        text.push_str(&v6);
    }
    Some(synth_report::host::SocketReading::parse(&text, &inodes))
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
}
