//! Defaults, in one place.

use std::time::Duration;

/// Pack used when neither the file, `PACK` nor `--pack` names one.
pub const PACK: &str = "packs/default.pack";
/// Length of a run.
pub const DURATION: Duration = Duration::from_secs(30);
/// Delay between the starts of consecutive clients.
pub const RAMP_UP_DELAY_MS: u64 = 100;
/// Time allowed for one connection attempt (QUIC + TLS + WebTransport CONNECT).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once, so a burst never overruns a server's UDP buffer.
pub const MAX_CONCURRENT_CONNECTS: usize = 64;
/// Heartbeat period (upstream's native clients send one a second).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How early a video frame may go to ride with an audio packet: at 30 fps
/// and 20 ms audio, 7 ms pairs two of every three video frames with audio.
pub const BATCH_WINDOW: Duration = Duration::from_millis(7);
/// Lifetime of minted JWTs.
pub const JWT_TTL: Duration = Duration::from_secs(3600);
/// Attempts for a client's first connection before it counts as failed.
pub const CONNECT_ATTEMPTS: u32 = 3;
/// QUIC keep-alive period of a `bot` client: a dead server is noticed
/// within the idle timeout.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// A `bot` client's session that hears nothing from the server for this long is dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A `browser` client's keep-alive: QUICHE's client PING timeout
/// (`kPingTimeoutSecs`, 15 s), which Chromium's WebTransport keeps.
pub const BROWSER_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A `browser` client's QUIC idle timeout: Chromium's
/// (`kIdleConnectionTimeout`, 30 s; upstream's server also sets 30 s).
pub const BROWSER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A session with nothing acknowledged (or a send waiting) this long is stalled.
pub const STALL_AFTER: Duration = Duration::from_secs(2);
/// Timeline sampling interval.
pub const TIMELINE_INTERVAL: Duration = Duration::from_secs(1);
/// At the end, how long each session waits for its streams to be acknowledged.
pub const ACK_WAIT: Duration = Duration::from_secs(2);
/// At the end, how long receivers keep reading after every sender stopped.
pub const DRAIN: Duration = Duration::from_secs(1);
/// Audio later than this after it was sent missed its playout (a jitter
/// buffer of a few 20 ms frames over the adaptive target browsers start from).
pub const AUDIO_LATE_AFTER: Duration = Duration::from_millis(200);
/// Video later than this missed its playout (the largest playout delay
/// of the videocall-rs video jitter buffer).
pub const VIDEO_LATE_AFTER: Duration = Duration::from_millis(500);
/// Clients one thread takes before another is added.
pub const CLIENTS_PER_THREAD: usize = 500;
/// Seed of the networks' randomness.
pub const SEED: u64 = 1;

/// Threads for `clients` clients: one per [`CLIENTS_PER_THREAD`], at most one
/// per core. A thread that has more to do per wake-up spends less per packet
/// (BENCHMARKS.md), so threads are added only when one would not keep up.
pub fn threads(clients: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    clients.div_ceil(CLIENTS_PER_THREAD).clamp(1, cores)
}
