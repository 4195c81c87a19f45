//! Limits on what a config may ask for: past them a run would panic, hang,
//! run out of memory or mean nothing, so resolving refuses them and says which.
//!
//! `bounded` and `path_fits` are the checks a duration and a path go through.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use synth_common::redact::shown;

/// Largest config file (and largest `tls.ca_cert` file) read, in bytes (16 MiB).
pub const FILE_BYTES: u64 = 16 << 20;
/// Clients in one process, all groups and `clients` together (run more pods for more).
pub const CLIENTS: usize = 100_000;
/// `max_concurrent_connects`.
pub const MAX_CONCURRENT_CONNECTS: usize = 100_000;
/// `threads`.
pub const THREADS: usize = 1024;
/// Width of a zero-padded template variable, `{index:032}`.
pub const TEMPLATE_WIDTH: usize = 32;
/// `ramp_up_delay_ms` (one hour between two starts).
pub const RAMP_UP_DELAY_MS: u64 = 3_600_000;
/// Bytes of a path (`pack`, `report`, `tls.ca_cert`): Linux's `PATH_MAX`.
pub const PATH_BYTES: usize = 4096;
/// YAML nodes (scalars, sequences, mappings) of one config: room for
/// [`CLIENTS`] explicit clients of 11 nodes each, and then some.
pub const YAML_NODES: usize = 2_000_000;
/// Parser events of one config (a node is one or two events).
pub const YAML_EVENTS: usize = 4_000_000;
/// Characters of a user's value an error echoes before it cuts with `…`
/// ([`synth_common::redact::shown`]).
pub const SHOWN_CHARS: usize = synth_common::redact::SHOWN_CHARS;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// `duration` and `auth.jwt_ttl` (30 days).
pub const DURATION: Duration = Duration::from_secs(30 * 86_400);
/// Shortest `heartbeat_interval` (shorter is a busy loop, not a heartbeat).
pub const HEARTBEAT_MIN: Duration = Duration::from_millis(10);
/// `(field, shortest, longest)` of the other durations; a shortest of
/// 1 ns reads "more than 0". The idle timeout is far inside QUIC's
/// limit (2^62 ms), and stall and liveness checks add them to clock
/// readings without overflowing.
pub const DURATIONS: &[(&str, Duration, Duration)] = &[
    ("duration", Duration::from_nanos(1), DURATION),
    (
        "connect_timeout",
        Duration::from_nanos(1),
        Duration::from_secs(600),
    ),
    ("heartbeat_interval", HEARTBEAT_MIN, HOUR),
    ("keep_alive", Duration::from_nanos(1), HOUR),
    ("idle_timeout", Duration::from_nanos(1), HOUR),
    ("stall_after", Duration::from_nanos(1), HOUR),
    ("ack_wait", Duration::ZERO, Duration::from_secs(600)),
    ("drain", Duration::ZERO, Duration::from_secs(600)),
    ("late_after.audio", Duration::ZERO, MINUTE),
    ("late_after.video", Duration::ZERO, MINUTE),
    ("auth.jwt_ttl", Duration::from_nanos(1), DURATION),
    ("timeline_interval", Duration::from_millis(100), HOUR),
    ("metrics_hold", Duration::ZERO, HOUR),
    ("thresholds.delay_abort_eval", Duration::ZERO, DURATION),
    ("search.hold", Duration::from_secs(1), HOUR),
];
/// `search.max`: clients a capacity search may reach in one process.
pub const SEARCH_STEPS: usize = 10_000;
/// A network's `delay` and `jitter`, each way.
pub const NETWORK_DELAY: Duration = MINUTE;
/// A network's `rate_kbps` (10 Gbit/s).
pub const NETWORK_RATE_KBPS: f64 = 10_000_000.0;
/// A network's `queue_bytes` (1 GiB).
pub const NETWORK_QUEUE_BYTES: u64 = 1 << 30;
/// A network's `queue_packets`.
pub const NETWORK_QUEUE_PACKETS: u64 = 1_000_000;
/// Steps of one network's `schedule`.
pub const NETWORK_STEPS: usize = 1000;

/// `d` if it is within the bounds [`DURATIONS`] gives `name`.
pub(super) fn bounded(name: &str, d: Duration) -> anyhow::Result<Duration> {
    let Some(&(_, min, max)) = DURATIONS.iter().find(|(n, ..)| *n == name) else {
        bail!("no limits for {name}");
    };
    let f = humantime::format_duration;
    if d < min {
        if min == Duration::from_nanos(1) {
            bail!("{name} must be more than 0");
        }
        bail!("{name} {} is less than {}", f(d), f(min));
    }
    if d > max {
        bail!("{name} {} is more than {}", f(d), f(max));
    }
    Ok(d)
}

/// Refuses a path longer than the system would open.
pub(super) fn path_fits(name: &str, p: &Path) -> anyhow::Result<()> {
    let len = p.as_os_str().len();
    if len > PATH_BYTES {
        bail!(
            "{name} path {:?} is {len} bytes, more than {}",
            shown(&p.to_string_lossy()),
            PATH_BYTES
        );
    }
    Ok(())
}
