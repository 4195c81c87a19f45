//! The run configuration: one YAML file, environment overrides and CLI flags,
//! resolved into a [`Settings`] with the full list of clients to start.
//!
//! Precedence, highest first: a CLI flag, its environment variable (clap reads
//! both into [`Overrides`]), the file, the defaults in [`defaults`].

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::threshold::Threshold;

pub(crate) use synth_common::redact::shown;

/// Defaults, in one place.
pub mod defaults {
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
    /// QUIC keep-alive period: a dead server is noticed within the idle timeout.
    pub const KEEP_ALIVE: Duration = Duration::from_secs(1);
    /// A session that hears nothing from the server for this long is dead.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
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
}

/// Limits on what a config may ask for: past them a run would panic, hang,
/// run out of memory or mean nothing, so resolving refuses them and says which.
pub mod limits {
    use std::time::Duration;
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
}

/// The config file, as written. Every field is optional except that at least one
/// client must come from `clients` or `groups`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// `https://host:port` of the videocall WebTransport server; absent = embedded relay.
    pub server_url: Option<String>,
    /// Pack to replay.
    pub pack: Option<PathBuf>,
    /// Run length, counted from the start of the first client.
    #[serde(default, with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// Delay between consecutive client starts, in milliseconds.
    pub ramp_up_delay_ms: Option<u64>,
    /// Timeout for one connection attempt.
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// Handshakes in flight at once.
    pub max_concurrent_connects: Option<usize>,
    /// Attempts for a client's first connection.
    pub connect_attempts: Option<u32>,
    /// Threads that run clients, each with its own UDP socket.
    pub threads: Option<usize>,
    /// Heartbeat period.
    #[serde(default, with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,
    /// How early a video frame may be sent to share a wake-up with an audio packet.
    #[serde(default, with = "humantime_serde")]
    pub batch_window: Option<Duration>,
    /// QUIC keep-alive period.
    #[serde(default, with = "humantime_serde")]
    pub keep_alive: Option<Duration>,
    /// A session that hears nothing from the server this long is closed (and reconnects).
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// A session with nothing acknowledged this long counts as stalled.
    #[serde(default, with = "humantime_serde")]
    pub stall_after: Option<Duration>,
    /// At the end, how long a session waits for its streams to be acknowledged.
    #[serde(default, with = "humantime_serde")]
    pub ack_wait: Option<Duration>,
    /// At the end, how long receivers keep reading after the senders stopped.
    #[serde(default, with = "humantime_serde")]
    pub drain: Option<Duration>,
    /// Per media, how long after it was due a packet counts as late.
    #[serde(default)]
    pub late_after: LateAfter,
    /// How to trust the server's certificate.
    #[serde(default)]
    pub tls: Tls,
    /// How to authenticate.
    #[serde(default)]
    pub auth: Auth,
    /// Explicit clients.
    #[serde(default)]
    pub clients: Vec<ClientSpec>,
    /// Groups of clients from id templates.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// Pass/fail thresholds, k6-style: `name: "< 150"`, or
    /// `name: {threshold: "< 150", abort_on_fail: true, delay_abort_eval: 10s}`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, ThresholdSpec>,
    /// Timeline sampling interval.
    #[serde(default, with = "humantime_serde")]
    pub timeline_interval: Option<Duration>,
    /// Where to stream the timeline as JSON lines while the run goes.
    pub timeline: Option<PathBuf>,
    /// A capacity search instead of a fixed set of clients.
    pub search: Option<SearchSpec>,
    /// Address for the Prometheus endpoint.
    pub metrics_listen: Option<String>,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Custom network profiles by name, for a group's `network:`.
    #[serde(default)]
    pub networks: BTreeMap<String, ProfileSpec>,
    /// Seed of every random choice: the networks' randomness (each client's
    /// derived from it and its index) and the behaviour schedule (phases,
    /// churn, storms, actions, conversation).
    pub seed: Option<u64>,
    /// Load as phases in sequence (`constant`, `ramp`, `arrival_rate`,
    /// `spike`, `hold`); the run lasts as long as they do.
    #[serde(default)]
    pub phases: Vec<crate::people::PhaseSpec>,
    /// Sessions that end and come back (a tab reload).
    pub churn: Option<crate::people::ChurnSpec>,
    /// Reconnect storms: a share of the clients drops its session at once and rejoins.
    #[serde(default)]
    pub storms: Vec<crate::people::StormSpec>,
    /// Speaking turns: one or two talkers at a time per meeting.
    pub conversation: Option<crate::people::ConversationSpec>,
    /// Opus DTX: a frame without voice goes out only every 400 ms.
    #[serde(default)]
    pub dtx: bool,
}

/// One threshold of the file: an expression, or one with abort options.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    /// `"< 150"`.
    Expr(String),
    /// `{threshold: "< 150", abort_on_fail: true, delay_abort_eval: 10s}`.
    Full(ThresholdFull),
}

/// A threshold with k6's abort options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdFull {
    /// The expression, `"< 150"`.
    pub threshold: String,
    /// End the run at once when the threshold fails while the run goes.
    #[serde(default)]
    pub abort_on_fail: bool,
    /// Do not abort before this much of the run has passed (the ramp).
    #[serde(default, with = "humantime_serde")]
    pub delay_abort_eval: Option<Duration>,
}

/// The `search` section: add clients step by step until an SLO breaks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// Clients of the first step.
    pub start: usize,
    /// Clients each further step adds.
    pub step: usize,
    /// The most clients to try.
    pub max: usize,
    /// How long each step is held (and measured).
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
    /// Participants per meeting.
    pub meeting_size: usize,
    /// Template of the user ids.
    #[serde(default = "search_user_id")]
    pub user_id: String,
    /// Template of the meeting ids.
    #[serde(default = "search_meeting_id")]
    pub meeting_id: String,
    /// Send audio.
    #[serde(default = "yes")]
    pub enable_audio: bool,
    /// Send video.
    #[serde(default = "yes")]
    pub enable_video: bool,
    /// Video track of the pack to send.
    pub rendition: Option<String>,
    /// What must hold in every step, as thresholds: `audio_latency_p99_ms: "< 150"`.
    #[serde(default)]
    pub slo: BTreeMap<String, String>,
    /// A step in which this machine could not keep up is marked `saturated`
    /// but does not end the search.
    #[serde(default)]
    pub ignore_saturation: bool,
}

fn search_user_id() -> String {
    "search-{pod_index}-{index}".into()
}

fn search_meeting_id() -> String {
    "search-{pod_index}-{meeting}".into()
}

/// The resolved capacity search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Clients of the first step.
    pub start: usize,
    /// Clients each further step adds.
    pub step: usize,
    /// The most clients to try.
    pub max: usize,
    /// Each step's length, counted from its start (its verdict may wait up
    /// to `connect_timeout` more for its clients to connect or fail).
    pub hold: Duration,
    /// Participants per meeting.
    pub meeting_size: usize,
    /// What must hold in every step (checked on the step's own window).
    pub slo: Vec<Threshold>,
    /// A saturated generator does not break a step.
    pub ignore_saturation: bool,
}

impl Search {
    /// Number of steps: the first, then one per `step` up to `max`.
    pub fn steps(&self) -> usize {
        1 + (self.max - self.start).div_ceil(self.step)
    }

    /// Clients running in step `k` (0-based).
    pub fn clients_at(&self, k: usize) -> usize {
        (self.start + k * self.step).min(self.max)
    }

    /// The step client `i` (0-based) joins in.
    pub fn step_of(&self, i: usize) -> usize {
        if i < self.start {
            0
        } else {
            1 + (i - self.start) / self.step
        }
    }

    /// When client `i` starts: its step's start, plus `ramp` per client
    /// before it in the same step.
    pub fn start_of(&self, i: usize, ramp: Duration) -> Duration {
        let k = self.step_of(i);
        let within = if k == 0 {
            i
        } else {
            (i - self.start) % self.step
        };
        self.hold.saturating_mul(k as u32) + ramp.saturating_mul(within as u32)
    }
}

/// `late_after` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateAfter {
    /// Audio's playout budget.
    #[serde(default, with = "humantime_serde")]
    pub audio: Option<Duration>,
    /// Video's playout budget.
    #[serde(default, with = "humantime_serde")]
    pub video: Option<Duration>,
}

/// TLS options of the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM file of certificates to trust (a CA or the server's own certificate).
    pub ca_cert: Option<PathBuf>,
    /// SHA-256 of the server certificate (hex, `:` allowed), pinned.
    pub cert_sha256: Option<String>,
    /// Accept any certificate. Only on explicit request.
    #[serde(default)]
    pub insecure: bool,
}

/// Auth options of the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// One JWT for every client (`/lobby?token=`).
    pub token: Option<String>,
    /// Name of an environment variable holding the HS256 secret; one JWT is minted per client.
    pub jwt_secret_env: Option<String>,
    /// Lifetime of minted tokens.
    #[serde(default, with = "humantime_serde")]
    pub jwt_ttl: Option<Duration>,
}

fn yes() -> bool {
    true
}

/// One explicit client (the original design's format).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Participant id.
    pub user_id: String,
    /// Meeting to join.
    pub meeting_id: String,
    /// Send audio.
    #[serde(default = "yes")]
    pub enable_audio: bool,
    /// Send video.
    #[serde(default = "yes")]
    pub enable_video: bool,
    /// Video track of the pack to send (default: the pack's first video track).
    pub rendition: Option<String>,
}

/// A group of clients made from id templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Clients in this group (per pod). `CLIENTS_PER_POD` overrides it when there is one group.
    pub count: usize,
    /// Template of the user id, e.g. `bot-{pod}-{index}`.
    pub user_id: String,
    /// Template of the meeting id, e.g. `room-{meeting}`.
    pub meeting_id: String,
    /// Participants per meeting: `{meeting}` is `global / meeting_size`.
    pub meeting_size: Option<usize>,
    /// Send audio.
    #[serde(default = "yes")]
    pub enable_audio: bool,
    /// Send video.
    #[serde(default = "yes")]
    pub enable_video: bool,
    /// Video track of the pack to send.
    pub rendition: Option<String>,
    /// The group's network: a profile's name, or a profile written out.
    pub network: Option<NetworkSpec>,
    /// Step the video rendition down when the uplink cannot carry it, and
    /// back up when it recovers (the pack needs two or more renditions with
    /// aligned key frames).
    #[serde(default)]
    pub adapt: bool,
    /// `participant` (the default) or `viewer`: receives only, sends no media.
    #[serde(default)]
    pub role: Role,
    /// Timed actions on a share of the group: mute, camera, screen share, rendition.
    #[serde(default)]
    pub actions: Vec<crate::people::ActionSpec>,
}

/// What a group's clients do in the meeting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends audio and video (as the group says) and receives.
    #[default]
    Participant,
    /// Receives only: no media, heartbeats that say so (and the JWT
    /// `observer` claim when tokens are minted).
    Viewer,
}

/// A group's `network:`: a profile's name (built in or from `networks:`),
/// or a profile written out.
#[derive(Debug, Clone)]
pub enum NetworkSpec {
    /// `network: 3g`.
    Name(String),
    /// `network: {uplink: {...}, downlink: {...}, schedule: [...]}`.
    Inline(Box<ProfileSpec>),
}

impl<'de> Deserialize<'de> for NetworkSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NetworkSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a network profile's name or a profile {uplink, downlink, schedule}")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NetworkSpec, E> {
                Ok(NetworkSpec::Name(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                a: A,
            ) -> Result<NetworkSpec, A::Error> {
                ProfileSpec::deserialize(serde::de::value::MapAccessDeserializer::new(a))
                    .map(|p| NetworkSpec::Inline(Box::new(p)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A network profile as written: each direction and a schedule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// Client to server.
    #[serde(default)]
    pub uplink: LinkSpec,
    /// Server to client.
    #[serde(default)]
    pub downlink: LinkSpec,
    /// Changes over the run: `[{at: 60s, profile: 3g}, {at: 90s, down: 5s}]`.
    #[serde(default)]
    pub schedule: Vec<StepSpec>,
}

/// One direction of a network as written; every knob is off unless set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Probability that a datagram is lost, independently of the others.
    pub loss: Option<f64>,
    /// Burst loss, Gilbert–Elliott, named as netem's `loss gemodel`.
    pub gilbert_elliott: Option<GilbertElliottSpec>,
    /// Added one-way delay.
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    /// Jitter around the delay.
    #[serde(default, with = "humantime_serde")]
    pub jitter: Option<Duration>,
    /// `uniform` (the default) or `normal`.
    pub jitter_dist: Option<JitterDist>,
    /// Rate cap, kbit/s.
    pub rate_kbps: Option<f64>,
    /// With a rate cap: bytes queued before the tail drops.
    pub queue_bytes: Option<u64>,
    /// With a rate cap: datagrams queued before the tail drops.
    pub queue_packets: Option<u64>,
    /// Probability that a datagram is sent twice.
    pub duplicate: Option<f64>,
    /// Probability that a datagram skips its delay (reordering).
    pub reorder: Option<f64>,
}

/// Gilbert–Elliott loss, as netem's `loss gemodel p r 1-h 1-k`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GilbertElliottSpec {
    /// P(good → bad) per datagram.
    pub p: f64,
    /// P(bad → good) per datagram (default `1 - p`, as netem).
    pub r: Option<f64>,
    /// 1 - loss probability in the bad state (default 0: the bad state loses all).
    #[serde(default)]
    pub h: f64,
    /// 1 - loss probability in the good state (default 1: the good state loses none).
    #[serde(default = "one")]
    pub k: f64,
}

fn one() -> f64 {
    1.0
}

/// The jitter's distribution.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JitterDist {
    /// Uniform in delay ± jitter.
    Uniform,
    /// Normal, mean delay, standard deviation jitter.
    Normal,
}

/// One step of a schedule: at `at`, switch to `profile`, or go `down` for a while.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// When, after the run's start.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// The profile's name to switch to.
    pub profile: Option<String>,
    /// How long the link is down (every datagram dropped, both ways).
    #[serde(default, with = "humantime_serde")]
    pub down: Option<Duration>,
}

/// A group's network, resolved.
#[derive(Debug, Clone)]
pub struct Network {
    /// The group, as the report names it: its `user_id` template.
    pub group: String,
    /// The profile's name, `inline` for one written out.
    pub profile_name: String,
    /// The profile from the start.
    pub profile: synth_common::netem::Profile,
    /// Its schedule.
    pub schedule: Vec<synth_common::netem::Step>,
}

impl Network {
    /// One line for `validate`.
    pub fn describe(&self) -> String {
        let link = |l: &synth_common::netem::Link| {
            let mut parts = Vec::new();
            let loss = l.loss.mean();
            if loss > 0.0 {
                parts.push(format!("loss {:.2} %", loss * 100.0));
            }
            if l.delay_us > 0 || l.jitter_us > 0 {
                parts.push(format!(
                    "delay {} ms ± {} ms",
                    l.delay_us as f64 / 1000.0,
                    l.jitter_us as f64 / 1000.0
                ));
            }
            if let Some(r) = l.rate_bps {
                parts.push(format!("{} kbit/s", r / 1000));
            }
            if l.duplicate > 0.0 {
                parts.push(format!("duplicate {} %", l.duplicate * 100.0));
            }
            if l.reorder > 0.0 {
                parts.push(format!("reorder {} %", l.reorder * 100.0));
            }
            if parts.is_empty() {
                "clean".to_owned()
            } else {
                parts.join(", ")
            }
        };
        let mut out = format!(
            "{}: {} (up: {}; down: {})",
            self.group,
            self.profile_name,
            link(&self.profile.uplink),
            link(&self.profile.downlink)
        );
        if !self.schedule.is_empty() {
            out.push_str(&format!(", {} scheduled changes", self.schedule.len()));
        }
        out
    }
}

/// The options a command line or the environment may set over the config
/// file, declared once: clap reads them from the command line, then from the
/// environment; [`Settings::resolve`] lays them over the file. So the order
/// is CLI over env over file, for every one of them.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Server URL, e.g. https://127.0.0.1:4433 (overrides the config's server_url).
    #[arg(long, env = "SERVER_URL")]
    pub server_url: Option<String>,
    /// Pack to replay [default: the config's `pack`, else packs/default.pack].
    #[arg(long, env = "PACK")]
    pub pack: Option<PathBuf>,
    /// Run length, e.g. 30s or 5m (overrides the config's duration).
    #[arg(long, env = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9090 (run only).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Write the JSON report here (run only; schema: docs/report-schema.json).
    #[arg(long, env = "REPORT")]
    pub report: Option<PathBuf>,
    /// Stream the timeline here as JSON lines while the run goes, one sample
    /// per `timeline_interval` (run only; a killed run still leaves its history).
    #[arg(long, env = "TIMELINE")]
    pub timeline: Option<PathBuf>,
    /// Pod name, for `{pod}` in id templates.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Pod index, for `{pod_index}` and `{global}` [env: POD_INDEX, else JOB_COMPLETION_INDEX].
    #[arg(long, env = "POD_INDEX")]
    pub pod_index: Option<usize>,
    /// Clients in this process: overrides `count` of the config's single group.
    #[arg(long, env = "CLIENTS_PER_POD")]
    pub clients_per_pod: Option<usize>,
}

/// How the client trusts the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's root certificates.
    System,
    /// Certificates from a PEM file.
    CaFile(PathBuf),
    /// Server certificates pinned by SHA-256.
    Pinned(Vec<[u8; 32]>),
    /// No verification (explicit `insecure: true`).
    Insecure,
}

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Path form `/lobby/{user}/{meeting}`.
    None,
    /// One fixed token for every client.
    Token(String),
    /// Mint an HS256 JWT per client.
    Mint {
        /// The secret.
        secret: Vec<u8>,
        /// Lifetime of each token.
        ttl: Duration,
    },
}

/// One client to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Position in the plan (0-based), also the order of starts.
    pub index: usize,
    /// Participant id (checked against the server's rule).
    pub user_id: String,
    /// Meeting id (checked likewise).
    pub meeting_id: String,
    /// Send audio.
    pub audio: bool,
    /// Send video.
    pub video: bool,
    /// Video track name, `None` for the pack's first video track.
    pub rendition: Option<String>,
    /// Its network: an index into [`Settings::networks`]; `None` for the plain socket.
    pub network: Option<usize>,
    /// It adapts its video rendition to its uplink (`adapt: true`).
    pub adapt: bool,
    /// Its group's index (`None` for an explicit `clients` entry).
    pub group: Option<usize>,
    /// A receive-only viewer.
    pub viewer: bool,
}

/// The behaviour part of the config: what [`crate::people::schedule`] turns
/// into each client's script.
#[derive(Debug, Clone, Default)]
pub struct People {
    /// Phases in sequence.
    pub phases: Vec<crate::people::PhaseSpec>,
    /// Churn.
    pub churn: Option<crate::people::ChurnSpec>,
    /// Reconnect storms.
    pub storms: Vec<crate::people::StormSpec>,
    /// Speaking turns.
    pub conversation: Option<crate::people::ConversationSpec>,
    /// Opus DTX.
    pub dtx: bool,
    /// Each group's actions, by group index.
    pub actions: Vec<Vec<crate::people::ActionSpec>>,
}

impl People {
    /// Whether anything here changes how clients behave over the run.
    pub fn active(&self) -> bool {
        !self.phases.is_empty()
            || self.churn.is_some()
            || !self.storms.is_empty()
            || self.conversation.is_some()
            || self.actions.iter().any(|a| !a.is_empty())
    }
}

/// Everything a run needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Server URL (`https://host:port`), `None` to start the embedded relay.
    pub server_url: Option<url::Url>,
    /// Pack path.
    pub pack: PathBuf,
    /// Run length.
    pub duration: Duration,
    /// Delay between consecutive client starts.
    pub ramp_up_delay: Duration,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// Handshakes in flight at once.
    pub max_concurrent_connects: usize,
    /// Attempts for a client's first connection.
    pub connect_attempts: u32,
    /// Threads that run clients (each a current-thread runtime with its own socket).
    pub threads: usize,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
    /// How early a video frame may go to share a wake-up with an audio packet.
    pub batch_window: Duration,
    /// QUIC keep-alive period.
    pub keep_alive: Duration,
    /// QUIC idle timeout: a silent server is dead after this.
    pub idle_timeout: Duration,
    /// Nothing acknowledged this long: the client is stalled.
    pub stall_after: Duration,
    /// At the end, the wait for each session's streams to be acknowledged.
    pub ack_wait: Duration,
    /// At the end, receivers read this long after every sender stopped.
    pub drain: Duration,
    /// Audio and video: how long after it was due a packet counts as late.
    pub late_after: [Duration; 2],
    /// Certificate trust.
    pub trust: Trust,
    /// Credentials.
    pub credentials: Credentials,
    /// The clients, in start order.
    pub clients: Vec<Participant>,
    /// Pass/fail thresholds.
    pub thresholds: Vec<Threshold>,
    /// Prometheus endpoint address.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// JSON report path.
    pub report: Option<PathBuf>,
    /// Timeline sampling interval.
    pub timeline_interval: Duration,
    /// Where the timeline is streamed as JSON lines.
    pub timeline: Option<PathBuf>,
    /// The capacity search, if the config has one.
    pub search: Option<Search>,
    /// The groups' networks (a participant's `network` indexes here).
    pub networks: Vec<Network>,
    /// Seed of every random choice (networks and behaviour).
    pub seed: u64,
    /// Phases, churn, storms, conversation, DTX, actions.
    pub people: People,
}

/// Reads and parses a config file; errors name the file, line and field.
pub fn read_file(path: &Path) -> anyhow::Result<File> {
    let bytes = read_limited(path).with_context(|| format!("reading config {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("config {}: not UTF-8 text ({e})", path.display()))?;
    parse(&text).with_context(|| format!("config {}", path.display()))
}

/// Reads a regular file of at most [`limits::FILE_BYTES`]. Anything else is
/// refused before it is opened: reading a FIFO blocks, a device never ends.
fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "a FIFO, socket or device"
        };
        bail!("is {what}, not a regular file");
    }
    let too_big = || {
        anyhow::anyhow!(
            "larger than {} MiB ({} bytes)",
            limits::FILE_BYTES >> 20,
            limits::FILE_BYTES
        )
    };
    if meta.len() > limits::FILE_BYTES {
        return Err(too_big());
    }
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        // Swapped for a FIFO since the check, it still must not block.
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK);
    }
    let file = open.open(path)?;
    if !file.metadata()?.is_file() {
        bail!("is not a regular file");
    }
    let mut out = Vec::new();
    file.take(limits::FILE_BYTES + 1).read_to_end(&mut out)?;
    if out.len() as u64 > limits::FILE_BYTES {
        return Err(too_big());
    }
    Ok(out)
}

/// Parses config text. The error is one line: `line L column C: what`.
pub fn parse(text: &str) -> anyhow::Result<File> {
    if text.len() as u64 > limits::FILE_BYTES {
        bail!(
            "config is {} bytes, more than {} MiB",
            text.len(),
            limits::FILE_BYTES >> 20
        );
    }
    // The parser's default budget (250 000 nodes) is smaller than a file of
    // `limits::CLIENTS` explicit clients.
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: limits::YAML_NODES,
            max_events: limits::YAML_EVENTS,
        },
    };
    serde_saphyr::from_str_with_options::<File>(text, options)
        .map_err(|e| anyhow::anyhow!("{}", message(&e)))
}

/// One line for a parser error: `line L column C: what`, in words of the
/// config rather than of the parser's options.
fn message(full: &serde_saphyr::Error) -> String {
    use serde_saphyr::budget::BudgetBreach;
    let e = full.without_snippet();
    let what = match e {
        serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
            format!("duplicate key `{}`", shown(k))
        }
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => "duplicate key".to_owned(),
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            BudgetBreach::Nodes { .. } => format!(
                "config too large: more than {} YAML nodes (at most {} clients)",
                limits::YAML_NODES,
                limits::CLIENTS
            ),
            BudgetBreach::Events { .. } => format!(
                "config too large: more than {} YAML events (at most {} clients)",
                limits::YAML_EVENTS,
                limits::CLIENTS
            ),
            BudgetBreach::Depth { .. } => "config nested too deeply".to_owned(),
            other => format!("config too large or too repetitive ({other:?})"),
        },
        _ => {
            // The parser's own first line, which has the location. It may
            // echo a value; the longest of our own (an unknown field and
            // the list of known ones) fits in 1000 characters.
            let msg = full.to_string();
            let first = msg.lines().next().unwrap_or("invalid YAML");
            let first = first.trim_start_matches("error: ");
            let cut: String = first.chars().take(1000).collect();
            return if cut.len() < first.len() {
                format!("{cut}…")
            } else {
                cut
            };
        }
    };
    match e.location() {
        Some(l) => format!("line {} column {}: {what}", l.line(), l.column()),
        None => what,
    }
}

impl Settings {
    /// Resolves the file and overrides into settings, expanding groups and checking ids.
    /// `env` reads environment variables (the JWT secret); tests pass a map.
    pub fn resolve(
        file: File,
        o: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let people = people(&file, file.search.is_some())?;
        let server_url = match o.server_url.clone().or(file.server_url) {
            None => None,
            Some(s) if s.trim().is_empty() => None,
            Some(s) => Some(parse_server_url(&s)?),
        };
        let trust = trust(&file.tls)?;
        let credentials = credentials(&file.auth, env)?;
        let mut o = o.clone();
        if o.pod_index.is_none() {
            // A Kubernetes indexed Job names the pod's index this way.
            if let Some(v) = env("JOB_COMPLETION_INDEX") {
                let n = v.trim().parse().map_err(|_| {
                    anyhow::anyhow!("JOB_COMPLETION_INDEX {:?} is not a number", shown(&v))
                })?;
                o.pod_index = Some(n);
            }
        }
        let o = &o;
        let search = match &file.search {
            Some(spec) => Some(search(
                spec,
                !file.clients.is_empty() || !file.groups.is_empty(),
                file.ramp_up_delay_ms,
                o,
            )?),
            None => None,
        };
        let mut networks = Vec::new();
        let clients = match &file.search {
            Some(spec) => expand(&[], &[search_group(spec)], o, &mut |_, _| Ok(None))?,
            None => expand(&file.clients, &file.groups, o, &mut |g_no, g| {
                let Some(spec) = &g.network else {
                    return Ok(None);
                };
                let n = network(spec, &file.networks)
                    .with_context(|| format!("groups[{g_no}].network"))?;
                networks.push(Network {
                    group: g.user_id.clone(),
                    ..n
                });
                Ok(Some(networks.len() - 1))
            })?,
        };
        for name in file.networks.keys() {
            if synth_common::netem::Profile::named(name).is_some() {
                bail!("networks.{name}: {name} is a built-in profile; give yours another name");
            }
            network(&NetworkSpec::Name(name.clone()), &file.networks)
                .with_context(|| format!("networks.{name}"))?;
        }
        let thresholds = file
            .thresholds
            .iter()
            .map(|(k, v)| threshold(k, v))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let metrics_listen = match o.metrics_listen.clone().or(file.metrics_listen) {
            None => None,
            Some(s) => Some(s.parse().with_context(|| {
                format!(
                    "metrics_listen {:?} is not an address like 127.0.0.1:9090",
                    shown(&s)
                )
            })?),
        };
        let duration = bounded(
            "duration",
            o.duration.or(file.duration).unwrap_or(defaults::DURATION),
        )?;
        let keep_alive = bounded(
            "keep_alive",
            file.keep_alive.unwrap_or(defaults::KEEP_ALIVE),
        )?;
        let idle_timeout = bounded(
            "idle_timeout",
            file.idle_timeout.unwrap_or(defaults::IDLE_TIMEOUT),
        )?;
        if idle_timeout <= keep_alive {
            bail!(
                "keep_alive ({}) must be less than idle_timeout ({})",
                humantime::format_duration(keep_alive),
                humantime::format_duration(idle_timeout)
            );
        }
        let stall_after = bounded(
            "stall_after",
            file.stall_after.unwrap_or(defaults::STALL_AFTER),
        )?;
        let late_after = [
            bounded(
                "late_after.audio",
                file.late_after.audio.unwrap_or(defaults::AUDIO_LATE_AFTER),
            )?,
            bounded(
                "late_after.video",
                file.late_after.video.unwrap_or(defaults::VIDEO_LATE_AFTER),
            )?,
        ];
        let max_concurrent_connects = file
            .max_concurrent_connects
            .unwrap_or(defaults::MAX_CONCURRENT_CONNECTS);
        if max_concurrent_connects == 0 {
            bail!("max_concurrent_connects must be at least 1");
        }
        if max_concurrent_connects > limits::MAX_CONCURRENT_CONNECTS {
            bail!(
                "max_concurrent_connects {max_concurrent_connects} is more than {}",
                limits::MAX_CONCURRENT_CONNECTS
            );
        }
        let ramp_up_delay_ms = file.ramp_up_delay_ms.unwrap_or(defaults::RAMP_UP_DELAY_MS);
        if ramp_up_delay_ms > limits::RAMP_UP_DELAY_MS {
            bail!(
                "ramp_up_delay_ms {ramp_up_delay_ms} is more than {} (1 h)",
                limits::RAMP_UP_DELAY_MS
            );
        }
        let pack = o
            .pack
            .clone()
            .or(file.pack)
            .unwrap_or_else(|| PathBuf::from(defaults::PACK));
        let report = o.report.clone().or(file.report);
        let timeline = o.timeline.clone().or(file.timeline);
        path_fits("pack", &pack)?;
        if let Some(r) = &report {
            path_fits("report", r)?;
        }
        if let Some(t) = &timeline {
            path_fits("timeline", t)?;
        }
        let timeline_interval = bounded(
            "timeline_interval",
            file.timeline_interval
                .unwrap_or(defaults::TIMELINE_INTERVAL),
        )?;
        let connect_timeout = bounded(
            "connect_timeout",
            file.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT),
        )?;
        // A search lasts as long as its steps, each of which may wait up to
        // connect_timeout past its hold for its clients; it ends by itself,
        // and --duration can only cut it short.
        let duration = match (&search, o.duration) {
            (Some(se), None) => (se.hold + connect_timeout).saturating_mul(se.steps() as u32),
            _ => duration,
        };
        // Phases last as long as they do; `duration` or --duration can only
        // cut them short.
        let duration = if people.phases.is_empty() {
            duration
        } else {
            let total = crate::people::phases_length(&people.phases);
            match o.duration.or(file.duration) {
                Some(d) => d.min(total),
                None => total,
            }
        };
        Ok(Settings {
            server_url,
            pack,
            duration,
            ramp_up_delay: Duration::from_millis(ramp_up_delay_ms),
            connect_timeout,
            max_concurrent_connects,
            connect_attempts: file
                .connect_attempts
                .unwrap_or(defaults::CONNECT_ATTEMPTS)
                .max(1),
            threads: match file.threads {
                Some(0) => bail!("threads must be at least 1"),
                Some(n) if n > limits::THREADS => {
                    bail!("threads {n} is more than {}", limits::THREADS)
                }
                Some(n) => n,
                None => defaults::threads(clients.len()),
            },
            heartbeat_interval: bounded(
                "heartbeat_interval",
                file.heartbeat_interval
                    .unwrap_or(defaults::HEARTBEAT_INTERVAL),
            )?,
            batch_window: match file.batch_window.unwrap_or(defaults::BATCH_WINDOW) {
                w if w >= Duration::from_millis(20) => {
                    bail!("batch_window must be under 20 ms (one audio frame)")
                }
                w => w,
            },
            keep_alive,
            idle_timeout,
            stall_after,
            ack_wait: bounded("ack_wait", file.ack_wait.unwrap_or(defaults::ACK_WAIT))?,
            drain: bounded("drain", file.drain.unwrap_or(defaults::DRAIN))?,
            late_after,
            trust,
            credentials,
            clients,
            thresholds,
            metrics_listen,
            report,
            timeline_interval,
            timeline,
            search,
            networks,
            seed: file.seed.unwrap_or(defaults::SEED),
            people,
        })
    }
}

/// Checks and gathers the behaviour sections of the file.
fn people(file: &File, search: bool) -> anyhow::Result<People> {
    let p = People {
        phases: file.phases.clone(),
        churn: file.churn.clone(),
        storms: file.storms.clone(),
        conversation: file.conversation.clone(),
        dtx: file.dtx,
        actions: file.groups.iter().map(|g| g.actions.clone()).collect(),
    };
    if search && p.active() {
        bail!("search cannot be combined with phases, churn, storms, conversation or actions: a search sets its own load");
    }
    crate::people::validate(
        &p.phases,
        p.churn.as_ref(),
        &p.storms,
        p.conversation.as_ref(),
        &p.actions,
    )?;
    Ok(p)
}

/// Resolves a `network:` against the built-in and the custom profiles.
fn network(spec: &NetworkSpec, custom: &BTreeMap<String, ProfileSpec>) -> anyhow::Result<Network> {
    use synth_common::netem::{Change, Profile, Step};
    let named = |name: &str| -> anyhow::Result<(Profile, Option<&ProfileSpec>)> {
        if let Some(p) = Profile::named(name) {
            return Ok((p, None));
        }
        match custom.get(name) {
            Some(c) => Ok((
                Profile {
                    uplink: link(&c.uplink).context("uplink")?,
                    downlink: link(&c.downlink).context("downlink")?,
                },
                Some(c),
            )),
            None => {
                let known: Vec<&str> = synth_common::netem::PROFILES
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(custom.keys().map(|k| k.as_str()))
                    .collect();
                bail!(
                    "no network profile {:?} (known: {})",
                    shown(name),
                    known.join(", ")
                )
            }
        }
    };
    let (profile_name, profile, steps) = match spec {
        NetworkSpec::Name(n) => {
            let (p, c) = named(n)?;
            (n.clone(), p, c.map_or(&[][..], |c| &c.schedule[..]))
        }
        NetworkSpec::Inline(c) => (
            "inline".to_owned(),
            Profile {
                uplink: link(&c.uplink).context("uplink")?,
                downlink: link(&c.downlink).context("downlink")?,
            },
            &c.schedule[..],
        ),
    };
    if steps.len() > limits::NETWORK_STEPS {
        bail!(
            "schedule has {} steps, more than {}",
            steps.len(),
            limits::NETWORK_STEPS
        );
    }
    let mut schedule = Vec::with_capacity(steps.len());
    for (i, st) in steps.iter().enumerate() {
        let f = humantime::format_duration;
        if st.at > limits::DURATION {
            bail!(
                "schedule[{i}].at {} is more than {}",
                f(st.at),
                f(limits::DURATION)
            );
        }
        let change = match (&st.profile, st.down) {
            (Some(name), None) => {
                let (p, c) = named(name).with_context(|| format!("schedule[{i}].profile"))?;
                if c.is_some_and(|c| !c.schedule.is_empty()) {
                    bail!("schedule[{i}].profile {name} has a schedule of its own; switch to one without");
                }
                Change::Profile(Box::new(p))
            }
            (None, Some(d)) if d > Duration::ZERO && d <= limits::DURATION => {
                Change::Down(d.as_micros() as u64)
            }
            (None, Some(d)) => bail!(
                "schedule[{i}].down must be more than 0 and at most {} (got {})",
                f(limits::DURATION),
                f(d)
            ),
            _ => bail!("schedule[{i}] needs exactly one of `profile` and `down`"),
        };
        schedule.push(Step {
            at_us: st.at.as_micros() as u64,
            change,
        });
    }
    Ok(Network {
        group: String::new(),
        profile_name,
        profile,
        schedule,
    })
}

/// One direction of a network as written, checked against [`limits`].
fn link(l: &LinkSpec) -> anyhow::Result<synth_common::netem::Link> {
    use synth_common::netem::{Jitter, Link, Loss};
    let prob = |name: &str, v: Option<f64>| -> anyhow::Result<f64> {
        match v {
            None => Ok(0.0),
            Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
            Some(p) => bail!("{name} {p} is not a probability in [0, 1]"),
        }
    };
    let loss = match (l.loss, l.gilbert_elliott) {
        (Some(_), Some(_)) => bail!("set only one of loss and gilbert_elliott"),
        (Some(p), None) => Loss::Bernoulli(prob("loss", Some(p))?),
        (None, Some(ge)) => Loss::GilbertElliott {
            p: prob("gilbert_elliott.p", Some(ge.p))?,
            r: prob("gilbert_elliott.r", Some(ge.r.unwrap_or(1.0 - ge.p)))?,
            h: prob("gilbert_elliott.h", Some(ge.h))?,
            k: prob("gilbert_elliott.k", Some(ge.k))?,
        },
        (None, None) => Loss::None,
    };
    let time = |name: &str, d: Option<Duration>| -> anyhow::Result<u64> {
        let d = d.unwrap_or_default();
        if d > limits::NETWORK_DELAY {
            bail!(
                "{name} {} is more than {}",
                humantime::format_duration(d),
                humantime::format_duration(limits::NETWORK_DELAY)
            );
        }
        Ok(d.as_micros() as u64)
    };
    let rate_bps = match l.rate_kbps {
        None => None,
        Some(r) if r > 0.0 && r <= limits::NETWORK_RATE_KBPS => Some((r * 1000.0).round() as u64),
        Some(r) => bail!(
            "rate_kbps {r} must be more than 0 and at most {} (10 Gbit/s)",
            limits::NETWORK_RATE_KBPS
        ),
    };
    if (l.queue_bytes.is_some() || l.queue_packets.is_some()) && rate_bps.is_none() {
        bail!("queue_bytes and queue_packets need rate_kbps (the queue is the rate cap's)");
    }
    let queue_bytes = match l.queue_bytes {
        Some(q) if q == 0 || q > limits::NETWORK_QUEUE_BYTES => bail!(
            "queue_bytes {q} must be at least 1 and at most {}",
            limits::NETWORK_QUEUE_BYTES
        ),
        Some(q) => q,
        None => rate_bps.map_or(0, synth_common::netem::default_queue_bytes),
    };
    let queue_packets = match l.queue_packets {
        Some(q) if q == 0 || q > limits::NETWORK_QUEUE_PACKETS => bail!(
            "queue_packets {q} must be at least 1 and at most {}",
            limits::NETWORK_QUEUE_PACKETS
        ),
        Some(q) => q,
        None => synth_common::netem::DEFAULT_QUEUE_PACKETS,
    };
    Ok(Link {
        loss,
        delay_us: time("delay", l.delay)?,
        jitter_us: time("jitter", l.jitter)?,
        jitter_dist: match l.jitter_dist {
            Some(JitterDist::Normal) => Jitter::Normal,
            _ => Jitter::Uniform,
        },
        rate_bps,
        queue_bytes,
        queue_packets,
        duplicate: prob("duplicate", l.duplicate)?,
        reorder: prob("reorder", l.reorder)?,
    })
}

/// One threshold of the file, parsed.
fn threshold(name: &str, spec: &ThresholdSpec) -> anyhow::Result<Threshold> {
    match spec {
        ThresholdSpec::Expr(e) => Threshold::parse(name, e),
        ThresholdSpec::Full(f) => {
            let mut t = Threshold::parse(name, &f.threshold)?;
            t.abort_on_fail = f.abort_on_fail;
            if let Some(d) = f.delay_abort_eval {
                t.delay_abort_eval = bounded("thresholds.delay_abort_eval", d)?;
            }
            if (t.abort_on_fail || f.delay_abort_eval.is_some())
                && !crate::timeline::window_figure(name)
            {
                bail!(
                    "thresholds.{name}: abort_on_fail needs a figure known while the run goes, and {name} is only known at the end (live figures: the latency, cross-host latency and jitter percentiles, {})",
                    crate::timeline::WINDOW_FIGURES.join(", ")
                );
            }
            if !f.abort_on_fail && f.delay_abort_eval.is_some() {
                bail!("thresholds.{name}: delay_abort_eval is set without abort_on_fail: true");
            }
            Ok(t)
        }
    }
}

/// The `search` section, checked.
fn search(
    spec: &SearchSpec,
    has_clients: bool,
    ramp_up_delay_ms: Option<u64>,
    o: &Overrides,
) -> anyhow::Result<Search> {
    if has_clients {
        bail!("search makes its own clients: remove `clients:` and `groups:` from the config");
    }
    if o.clients_per_pod.is_some() {
        bail!("CLIENTS_PER_POD cannot be used with search (search.max sets the clients)");
    }
    if spec.start == 0 || spec.step == 0 {
        bail!("search.start and search.step must be at least 1");
    }
    if spec.max < spec.start {
        bail!(
            "search.max {} is less than search.start {}",
            spec.max,
            spec.start
        );
    }
    if spec.max > limits::CLIENTS {
        bail!("search.max {} is more than {}", spec.max, limits::CLIENTS);
    }
    if spec.meeting_size == 0 {
        bail!("search.meeting_size must be at least 1");
    }
    let hold = bounded("search.hold", spec.hold)?;
    let se = Search {
        start: spec.start,
        step: spec.step,
        max: spec.max,
        hold,
        meeting_size: spec.meeting_size,
        slo: Vec::new(),
        ignore_saturation: spec.ignore_saturation,
    };
    if se.steps() > limits::SEARCH_STEPS {
        bail!(
            "search from {} to {} by {} makes {} steps, more than {}",
            spec.start,
            spec.max,
            spec.step,
            se.steps(),
            limits::SEARCH_STEPS
        );
    }
    let ramp = Duration::from_millis(ramp_up_delay_ms.unwrap_or(defaults::RAMP_UP_DELAY_MS));
    let longest = ramp.saturating_mul(spec.start.max(spec.step) as u32);
    if longest.saturating_mul(2) > hold {
        bail!(
            "search.hold {} is too short: starting {} clients at ramp_up_delay_ms {} takes {}; hold at least twice that, or lower ramp_up_delay_ms",
            humantime::format_duration(hold),
            spec.start.max(spec.step),
            ramp.as_millis(),
            humantime::format_duration(longest)
        );
    }
    let mut slo = Vec::with_capacity(spec.slo.len());
    for (name, expr) in &spec.slo {
        let t = Threshold::parse(name, expr).context("search.slo")?;
        if !crate::timeline::window_figure(name) {
            bail!(
                "search.slo.{name}: a step is judged on its own window, and {name} is only known at the end of a run (use one of: the latency, cross-host latency and jitter percentiles, {})",
                crate::timeline::WINDOW_FIGURES.join(", ")
            );
        }
        slo.push(t);
    }
    Ok(Search { slo, ..se })
}

/// The search's clients, as one group of `search.max`.
fn search_group(spec: &SearchSpec) -> GroupSpec {
    GroupSpec {
        count: spec.max,
        user_id: spec.user_id.clone(),
        meeting_id: spec.meeting_id.clone(),
        meeting_size: spec
            .meeting_id
            .contains("{meeting")
            .then_some(spec.meeting_size),
        enable_audio: spec.enable_audio,
        enable_video: spec.enable_video,
        rendition: spec.rendition.clone(),
        network: None,
        adapt: false,
        role: Role::Participant,
        actions: Vec::new(),
    }
}

/// `d` if it is within the bounds [`limits::DURATIONS`] gives `name`.
fn bounded(name: &str, d: Duration) -> anyhow::Result<Duration> {
    let Some(&(_, min, max)) = limits::DURATIONS.iter().find(|(n, ..)| *n == name) else {
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
fn path_fits(name: &str, p: &Path) -> anyhow::Result<()> {
    let len = p.as_os_str().len();
    if len > limits::PATH_BYTES {
        bail!(
            "{name} path {:?} is {len} bytes, more than {}",
            shown(&p.to_string_lossy()),
            limits::PATH_BYTES
        );
    }
    Ok(())
}

fn parse_server_url(s: &str) -> anyhow::Result<url::Url> {
    // Errors show the URL without a password or token.
    let shown = shown(&synth_common::redact::url_str(s));
    let u = url::Url::parse(s).with_context(|| format!("server_url {shown:?} is not a URL"))?;
    if u.scheme() != "https" {
        bail!("server_url {shown:?} must start with https:// (WebTransport runs over HTTP/3)");
    }
    if u.host().is_none() {
        bail!("server_url {shown:?} has no host");
    }
    Ok(u)
}

fn trust(t: &Tls) -> anyhow::Result<Trust> {
    let set = [t.ca_cert.is_some(), t.cert_sha256.is_some(), t.insecure];
    if set.iter().filter(|&&b| b).count() > 1 {
        bail!("tls: give only one of ca_cert, cert_sha256 and insecure");
    }
    if let Some(p) = &t.ca_cert {
        ca_roots(p)?;
        return Ok(Trust::CaFile(p.clone()));
    }
    if let Some(h) = &t.cert_sha256 {
        let pins = h
            .split(',')
            .map(|one| parse_sha256(one.trim()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(Trust::Pinned(pins));
    }
    Ok(if t.insecure {
        Trust::Insecure
    } else {
        Trust::System
    })
}

/// Reads `tls.ca_cert` (PEM certificates, each a valid trust anchor) into the
/// roots a client trusts. Resolving a config reads it once, so a missing or
/// broken file is a config error, not a failed run; the run reads it again
/// the same way.
pub fn ca_roots(p: &Path) -> anyhow::Result<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    path_fits("tls.ca_cert", p)?;
    let shown = || shown(&p.display().to_string());
    let bytes = read_limited(p).with_context(|| format!("reading tls.ca_cert {}", shown()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls.ca_cert {}: not PEM", shown()))?;
    if certs.is_empty() {
        bail!("tls.ca_cert {} holds no PEM certificate", shown());
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .with_context(|| format!("tls.ca_cert {}", shown()))?;
    }
    Ok(roots)
}

/// Parses a SHA-256 given as 64 hex digits, optionally with `:` between bytes.
pub fn parse_sha256(s: &str) -> anyhow::Result<[u8; 32]> {
    let hex: String = s.chars().filter(|&c| c != ':').collect();
    let bad = || anyhow::anyhow!("tls.cert_sha256 {:?} is not 64 hex digits", shown(s));
    // Checked as ASCII first: the pairs below are byte offsets.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn credentials(a: &Auth, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Credentials> {
    match (&a.token, &a.jwt_secret_env) {
        (Some(_), Some(_)) => bail!("auth: give either token or jwt_secret_env, not both"),
        (Some(t), None) if t.trim().is_empty() => bail!("auth.token is empty"),
        (Some(t), None) => Ok(Credentials::Token(t.trim().to_owned())),
        (None, Some(var)) => match env(var) {
            Some(s) if !s.is_empty() => Ok(Credentials::Mint {
                secret: s.into_bytes(),
                ttl: bounded("auth.jwt_ttl", a.jwt_ttl.unwrap_or(defaults::JWT_TTL))?,
            }),
            _ => bail!(
                "auth.jwt_secret_env: environment variable {} is not set (or empty)",
                shown(var)
            ),
        },
        (None, None) => Ok(Credentials::None),
    }
}

/// Variables a template may use.
struct Vars<'a> {
    index: usize,
    global: usize,
    pod: &'a str,
    pod_index: usize,
    meeting: usize,
}

/// Expands `{name}` and `{name:0N}` (zero-padded to N digits) in `template`.
fn render(template: &str, v: &Vars) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    let t = shown(template);
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            bail!("template {t:?} has an unclosed '{{'");
        };
        let inner = &rest[open + 1..open + close];
        let (name, width) = match inner.split_once(':') {
            Some((n, w)) => {
                let w = w.strip_prefix('0').unwrap_or(w);
                let width: usize = w.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "template {t:?}: bad width in {{{}}}, use like {{index:03}}",
                        shown(inner)
                    )
                })?;
                if width > limits::TEMPLATE_WIDTH {
                    bail!(
                        "template {t:?}: width {width} in {{{}}} is more than {}",
                        shown(inner),
                        limits::TEMPLATE_WIDTH
                    );
                }
                (n, width)
            }
            None => (inner, 0),
        };
        let num = match name {
            "index" => v.index,
            "global" => v.global,
            "pod_index" => v.pod_index,
            "meeting" => v.meeting,
            "pod" => {
                out.push_str(v.pod);
                rest = &rest[open + close + 1..];
                continue;
            }
            other => bail!(
                "template {t:?}: unknown variable {{{}}} (use index, global, pod, pod_index, meeting)",
                shown(other)
            ),
        };
        out.push_str(&format!("{num:0width$}"));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Turns a pod name into something the id rule accepts (Kubernetes allows dots).
fn pod_token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Checks an id against the server's rule; the error shows at most the id's start.
fn check_id(id: &str) -> anyhow::Result<()> {
    use synth_common::ids::{check, IdError, MAX_LEN};
    match check(id) {
        Ok(()) => Ok(()),
        Err(IdError::TooLong(_)) => bail!(
            "id {:?} is {} bytes, more than {MAX_LEN}",
            shown(id),
            id.len()
        ),
        Err(IdError::BadChar { ch, .. }) => bail!(
            "id {:?} has {ch:?}: only letters, digits, '_' and '-' are allowed",
            shown(id)
        ),
        Err(e) => Err(e.into()),
    }
}

/// `network` resolves a group's network into an index of the run's networks.
fn expand(
    clients: &[ClientSpec],
    groups: &[GroupSpec],
    o: &Overrides,
    network: &mut dyn FnMut(usize, &GroupSpec) -> anyhow::Result<Option<usize>>,
) -> anyhow::Result<Vec<Participant>> {
    if o.clients_per_pod.is_some() && groups.len() != 1 {
        bail!(
            "CLIENTS_PER_POD is set but the config has {} groups: it needs exactly one",
            groups.len()
        );
    }
    // Counted before anything is made, so a huge count is an error, not an
    // allocation failure.
    let mut total = clients.len();
    for (g_no, g) in groups.iter().enumerate() {
        let count = match o.clients_per_pod {
            Some(n) if n > limits::CLIENTS => {
                bail!("CLIENTS_PER_POD {n} is more than {}", limits::CLIENTS)
            }
            Some(n) => n,
            None if g.count > limits::CLIENTS => bail!(
                "groups[{g_no}].count {} is more than {}",
                g.count,
                limits::CLIENTS
            ),
            None => g.count,
        };
        total = total.saturating_add(count);
    }
    if total > limits::CLIENTS {
        bail!(
            "the config makes {total} clients, more than {} in one process (run more pods)",
            limits::CLIENTS
        );
    }
    let mut out = Vec::with_capacity(total);
    let mut seen = HashSet::with_capacity(total);
    let mut add = |p: Participant| -> anyhow::Result<()> {
        check_id(&p.user_id).with_context(|| format!("client {} user_id", p.index))?;
        check_id(&p.meeting_id)
            .with_context(|| format!("client {} ({}) meeting_id", p.index, p.user_id))?;
        if !seen.insert(synth_common::ids::normalize(&p.user_id)) {
            bail!(
                "user_id {:?} is used by more than one client (ids must be distinct; use {{index}} in a group template)",
                p.user_id
            );
        }
        out.push(p);
        Ok(())
    };
    let mut index = 0;
    for c in clients {
        add(Participant {
            index,
            user_id: c.user_id.clone(),
            meeting_id: c.meeting_id.clone(),
            audio: c.enable_audio,
            video: c.enable_video,
            rendition: c.rendition.clone(),
            network: None,
            adapt: false,
            group: None,
            viewer: false,
        })?;
        index += 1;
    }
    let pod = pod_token(o.pod_name.as_deref().unwrap_or("local"));
    let pod_index = o.pod_index.unwrap_or(0);
    for (g_no, g) in groups.iter().enumerate() {
        let count = o.clients_per_pod.unwrap_or(g.count);
        let net = network(g_no, g)?;
        let uses_meeting = g.meeting_id.contains("{meeting");
        let size = match (g.meeting_size, uses_meeting) {
            (Some(0), _) => bail!("groups[{g_no}].meeting_size must be at least 1"),
            (Some(_), false) => bail!(
                "groups[{g_no}]: meeting_size is set but meeting_id {:?} has no {{meeting}}",
                shown(&g.meeting_id)
            ),
            (Some(n), true) => n,
            (None, true) => bail!(
                "groups[{g_no}]: meeting_id {:?} uses {{meeting}}, so meeting_size is needed",
                shown(&g.meeting_id)
            ),
            (None, false) => usize::MAX,
        };
        // `{global}` of this pod's clients: pod_index × count + index. Were it
        // to wrap, a far pod's ids would be those of pod 0.
        let first = pod_index
            .checked_mul(count)
            .filter(|f| f.checked_add(count).is_some())
            .with_context(|| {
                format!(
                    "pod_index {pod_index} × {count} clients overflows the {{global}} index (at most {})",
                    usize::MAX / count.max(1) - 1
                )
            })?;
        for i in 0..count {
            let global = first + i;
            let vars = Vars {
                index: i,
                global,
                pod: &pod,
                pod_index,
                meeting: global / size,
            };
            add(Participant {
                index,
                user_id: render(&g.user_id, &vars)
                    .with_context(|| format!("groups[{g_no}].user_id"))?,
                meeting_id: render(&g.meeting_id, &vars)
                    .with_context(|| format!("groups[{g_no}].meeting_id"))?,
                audio: g.enable_audio && g.role == Role::Participant,
                video: g.enable_video && g.role == Role::Participant,
                rendition: g.rendition.clone(),
                network: net,
                adapt: g.adapt && g.role == Role::Participant,
                group: Some(g_no),
                viewer: g.role == Role::Viewer,
            })?;
            index += 1;
        }
    }
    if out.is_empty() {
        bail!("no clients: add `clients:` or `groups:` to the config");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn resolve(yaml: &str, o: &Overrides) -> anyhow::Result<Settings> {
        Settings::resolve(parse(yaml)?, o, &no_env)
    }

    const ORIGINAL: &str = r#"
ramp_up_delay_ms: 1000
server_url: "https://127.0.0.1:4433"
clients:
  - user_id: "bot001"
    meeting_id: "test-room-1"
    enable_audio: true
    enable_video: true
  - user_id: "bot002"
    meeting_id: "test-room-1"
    enable_audio: true
    enable_video: false
"#;

    #[test]
    fn original_format() {
        let s = resolve(ORIGINAL, &Overrides::default()).unwrap();
        assert_eq!(s.server_url.unwrap().as_str(), "https://127.0.0.1:4433/");
        assert_eq!(s.ramp_up_delay, Duration::from_secs(1));
        assert_eq!(s.clients.len(), 2);
        assert!(!s.clients[1].video);
        assert_eq!(s.pack, PathBuf::from(defaults::PACK));
        assert_eq!(s.duration, defaults::DURATION);
        assert_eq!(s.trust, Trust::System);
        assert_eq!(s.credentials, Credentials::None);
    }

    #[test]
    fn flags_win_over_file() {
        let yaml = "server_url: https://127.0.0.1:1\npack: a.pack\nduration: 5s\nreport: r.json\nmetrics_listen: 127.0.0.1:1\nclients: [{user_id: a, meeting_id: m}]\n";
        let o = Overrides {
            server_url: Some("https://127.0.0.1:2".into()),
            pack: Some("b.pack".into()),
            duration: Some(Duration::from_secs(7)),
            metrics_listen: Some("127.0.0.1:2".into()),
            report: Some("s.json".into()),
            ..Default::default()
        };
        let s = resolve(yaml, &o).unwrap();
        assert_eq!(s.server_url.unwrap().port(), Some(2));
        assert_eq!(s.pack, PathBuf::from("b.pack"));
        assert_eq!(s.duration, Duration::from_secs(7));
        assert_eq!(s.metrics_listen.unwrap().port(), 2);
        assert_eq!(s.report, Some(PathBuf::from("s.json")));
        // And without overrides the file's values hold.
        let s = resolve(yaml, &Overrides::default()).unwrap();
        assert_eq!(s.pack, PathBuf::from("a.pack"));
        assert_eq!(s.duration, Duration::from_secs(5));
    }

    #[test]
    fn groups_expand_per_pod() {
        let yaml = r#"
groups:
  - count: 4
    user_id: "bot-{pod}-{index:03}"
    meeting_id: "room-{meeting}"
    meeting_size: 3
    rendition: video-320x180
"#;
        let mut o = Overrides {
            pod_name: Some("synth-0.x".into()),
            ..Default::default()
        };
        let s = resolve(yaml, &o).unwrap();
        let ids: Vec<_> = s.clients.iter().map(|c| c.user_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "bot-synth-0-x-000",
                "bot-synth-0-x-001",
                "bot-synth-0-x-002",
                "bot-synth-0-x-003"
            ]
        );
        let rooms: Vec<_> = s.clients.iter().map(|c| c.meeting_id.as_str()).collect();
        assert_eq!(rooms, ["room-0", "room-0", "room-0", "room-1"]);
        // Pod 2 with CLIENTS_PER_POD=3: global indexes 6..9, meetings 2.
        o.pod_index = Some(2);
        o.clients_per_pod = Some(3);
        let s = resolve(yaml, &o).unwrap();
        assert_eq!(s.clients.len(), 3);
        assert!(s.clients.iter().all(|c| c.meeting_id == "room-2"));
        assert_eq!(s.clients[0].rendition.as_deref(), Some("video-320x180"));
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            (
                "clients: [{user_id: a, meeting_id: m, colour: red}]",
                "unknown field `colour`",
            ),
            ("clients: [{user_id: a.b, meeting_id: m}]", "'.'"),
            ("clients: [{user_id: a, meeting_id: \"x@y\"}]", "meeting_id"),
            (
                "clients: [{user_id: a, meeting_id: m}, {user_id: a, meeting_id: n}]",
                "more than one client",
            ),
            (
                "server_url: http://127.0.0.1:1\nclients: [{user_id: a, meeting_id: m}]",
                "https://",
            ),
            (
                "duration: soon\nclients: [{user_id: a, meeting_id: m}]",
                "duration",
            ),
            (
                "groups: [{count: 2, user_id: \"b{nope}\", meeting_id: m}]",
                "unknown variable {nope}",
            ),
            (
                "groups: [{count: 2, user_id: \"b{index}\", meeting_id: \"r{meeting}\"}]",
                "meeting_size is needed",
            ),
            ("{}", "no clients"),
            (
                "tls: {insecure: true, cert_sha256: abcd}\nclients: [{user_id: a, meeting_id: m}]",
                "only one of",
            ),
            (
                "tls: {cert_sha256: abcd}\nclients: [{user_id: a, meeting_id: m}]",
                "64 hex digits",
            ),
            (
                "auth: {jwt_secret_env: NOPE_SECRET}\nclients: [{user_id: a, meeting_id: m}]",
                "NOPE_SECRET is not set",
            ),
            (
                "thresholds: {bogus: \"< 1\"}\nclients: [{user_id: a, meeting_id: m}]",
                "bogus",
            ),
        ];
        for (yaml, want) in cases {
            let e = resolve(yaml, &Overrides::default()).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(want), "{yaml:?}: got {msg:?}, want {want:?}");
            assert!(!msg.contains('\n'), "one line: {msg:?}");
        }
        let e =
            parse("clients:\n  - user_id: a\n    meeting_id: m\n    colour: red\n").unwrap_err();
        assert!(e.to_string().starts_with("line 4 column 5"), "{e}");
    }

    #[test]
    fn networks_resolve_and_errors_name_the_field() {
        let yaml = r#"
seed: 9
networks:
  mine: {uplink: {gilbert_elliott: {p: 0.01, r: 0.3}, rate_kbps: 500}, schedule: [{at: 2s, down: 1s}, {at: 3s, profile: 3g}]}
groups:
  - {count: 1, user_id: "a{index}", meeting_id: m, network: 3g}
  - {count: 1, user_id: "b{index}", meeting_id: m, network: mine}
  - {count: 1, user_id: "c{index}", meeting_id: m}
"#;
        let s = resolve(yaml, &Overrides::default()).unwrap();
        assert_eq!(s.seed, 9);
        assert_eq!(s.networks.len(), 2);
        let n: Vec<_> = s.clients.iter().map(|c| c.network).collect();
        assert_eq!(n, [Some(0), Some(1), None]);
        assert_eq!(s.networks[0].profile_name, "3g");
        let mine = &s.networks[1];
        assert_eq!(mine.profile.uplink.rate_bps, Some(500_000));
        assert_eq!(mine.schedule.len(), 2);
        assert!(mine.describe().contains("b{index}: mine"));
        let cases = [
            ("network: 5g", "no network profile \"5g\""),
            (
                "network: {uplink: {loss: 1.5}}",
                "loss 1.5 is not a probability",
            ),
            ("network: {uplink: {delay: 2m}}", "delay 2m is more than 1m"),
            (
                "network: {downlink: {rate_kbps: 0}}",
                "rate_kbps 0 must be more than 0",
            ),
            ("network: {uplink: {queue_bytes: 10}}", "need rate_kbps"),
            ("network: {uplink: {colour: red}}", "unknown field `colour`"),
            (
                "network: {schedule: [{at: 1s}]}",
                "exactly one of `profile` and `down`",
            ),
        ];
        for (net, want) in cases {
            let yaml = format!("groups: [{{count: 1, user_id: a, meeting_id: m, {net}}}]");
            let e = resolve(&yaml, &Overrides::default()).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(want), "{net}: got {msg:?}, want {want:?}");
            assert!(!msg.contains('\n'), "one line: {msg:?}");
        }
        let e = resolve(
            "networks: {3g: {}}\nclients: [{user_id: a, meeting_id: m}]",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("built-in profile"), "{e:#}");
    }

    #[test]
    fn auth_and_tls() {
        let yaml = "auth: {jwt_secret_env: S, jwt_ttl: 10m}\ntls: {cert_sha256: \"AB:cd:ef:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc\"}\nclients: [{user_id: a, meeting_id: m}]";
        let env = |k: &str| (k == "S").then(|| "sekrit".to_string());
        let s = Settings::resolve(parse(yaml).unwrap(), &Overrides::default(), &env).unwrap();
        assert_eq!(
            s.credentials,
            Credentials::Mint {
                secret: b"sekrit".to_vec(),
                ttl: Duration::from_secs(600)
            }
        );
        let Trust::Pinned(p) = s.trust else { panic!() };
        assert_eq!(p[0][0], 0xab);
        assert_eq!(p[0][31], 0xcc);
    }

    /// CLI over env over file, for the options declared once in [`Overrides`].
    #[test]
    fn cli_over_env_over_file() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: Overrides,
        }
        let file = || {
            parse(
                "duration: 5s\nserver_url: https://127.0.0.1:1111\npack: file.pack\n\
                 clients: [{user_id: a, meeting_id: m}]\n",
            )
            .unwrap()
        };
        let resolve = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            Settings::resolve(file(), &cli.o, &|_| None).unwrap()
        };
        // This test alone sets these variables in this test binary.
        std::env::remove_var("DURATION");
        std::env::remove_var("SERVER_URL");
        std::env::remove_var("PACK");
        let s = resolve(&["t"]);
        assert_eq!(s.duration, Duration::from_secs(5), "file");
        assert_eq!(s.pack, PathBuf::from("file.pack"));
        std::env::set_var("DURATION", "7s");
        std::env::set_var("SERVER_URL", "https://127.0.0.1:2222");
        let s = resolve(&["t"]);
        assert_eq!(s.duration, Duration::from_secs(7), "env over file");
        assert_eq!(s.server_url.unwrap().port(), Some(2222));
        assert_eq!(
            s.pack,
            PathBuf::from("file.pack"),
            "file where env is unset"
        );
        let s = resolve(&[
            "t",
            "--duration",
            "9s",
            "--server-url",
            "https://127.0.0.1:3333",
        ]);
        assert_eq!(s.duration, Duration::from_secs(9), "CLI over env");
        assert_eq!(s.server_url.unwrap().port(), Some(3333));
        std::env::remove_var("DURATION");
        std::env::remove_var("SERVER_URL");
        // JOB_COMPLETION_INDEX stands in for an unset POD_INDEX.
        let cli = Cli::try_parse_from(["t"]).unwrap();
        let env = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        let yaml = "groups: [{count: 2, user_id: 'u{global}', meeting_id: 'm'}]\n";
        let s = Settings::resolve(parse(yaml).unwrap(), &cli.o, &env).unwrap();
        assert_eq!(s.clients[0].user_id, "u6");
    }

    #[test]
    fn server_url_errors_hide_the_password() {
        let e = parse_server_url("http://me:s3cret@127.0.0.1:4433")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must start with https://"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
