//! What a process costs, read from `/proc` (Linux), from outside the process.

use std::time::Duration;

/// One sample of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size so far, bytes.
    pub peak_rss: u64,
    /// Threads now.
    pub threads: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after ")".
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ")".
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| status_value(&status, key).unwrap_or(0) * 1024;
    Some(Sample {
        cpu: Duration::from_nanos(ticks * 1_000_000_000 / hz),
        rss: kb("VmRSS:"),
        peak_rss: kb("VmHWM:"),
        threads: status_value(&status, "Threads:").unwrap_or(0),
    })
}

/// The number after `key` in a `/proc/PID/status` text (`VmRSS:` gives kB,
/// `Threads:` a count).
pub fn status_value(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
}

/// Open file descriptors of `pid` (entries of `/proc/PID/fd`); `None` once
/// the process is gone (or not ours to look at).
pub fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Makes `cmd`'s process get SIGKILL when the thread that starts it ends
/// (Linux `PR_SET_PDEATHSIG`), so a harness killed outright leaves no relay
/// or replayer behind; the harnesses start their children from `main`.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only prctl, which is async-signal-safe and touches no shared memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// CPU time used by the calling thread so far, to the nanosecond
/// (`CLOCK_THREAD_CPUTIME_ID`; getrusage would round to scheduler ticks).
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The machine, for the results table.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.1} GiB, Linux {}",
        mem as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_values_are_read_by_key() {
        let status = "Name:\tsynth-replay\nVmHWM:\t  351212 kB\nVmRSS:\t  272000 kB\nThreads:\t5\n";
        assert_eq!(status_value(status, "VmRSS:"), Some(272_000));
        assert_eq!(status_value(status, "VmHWM:"), Some(351_212));
        assert_eq!(status_value(status, "Threads:"), Some(5));
        assert_eq!(status_value(status, "VmSwap:"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss > 0 && s.peak_rss >= s.rss);
        assert!(s.threads >= 1);
        assert!(fds(std::process::id()).unwrap() >= 3);
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu() > Duration::ZERO);
        assert!(machine().contains("cores"));
    }
}
