//! The config file as written: [`File`] and its sections, one serde struct
//! each (`deny_unknown_fields`, every field optional unless the section needs
//! it). [`read_file`] reads one without blocking on a FIFO or a device and
//! [`parse`] parses it; an error is one line naming the line, column and
//! field. The other files of this module check and resolve what is here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use synth_common::redact::shown;

use super::limits;

/// The config file, as written. Every field is optional except that at least one
/// client must come from `clients` or `groups`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// `https://host:port` of the videocall WebTransport server; absent = embedded relay.
    pub server_url: Option<String>,
    /// Several servers to choose among, instead of `server_url`: a
    /// `browser` connects to each, probes them for 2 s and keeps the one
    /// with the lowest RTT, as upstream's web client does; a `bot` takes the first.
    pub server_urls: Option<Vec<String>>,
    /// Which wire to speak: `auto` (ask the server's `/version`),
    /// `per_packet` (upstream main) or `framed` (upstream RnD).
    pub wire: Option<String>,
    /// Where the server's `GET /version` is asked (`http://host:port`).
    pub health_url: Option<String>,
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
    /// What the participants send besides media, and how they keep their
    /// sessions, unless a group says otherwise: `browser` (the default) or `bot`.
    pub client_profile: Option<ClientProfile>,
    /// Heartbeat period (`bot`; a browser's is 5 s).
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
    /// The server's own cost, sampled beside the run: a process on this
    /// host (`pid`) and/or a Prometheus server (`prometheus`, `queries`).
    pub server: Option<ServerSpec>,
    /// Address for the Prometheus endpoint.
    pub metrics_listen: Option<String>,
    /// How long the endpoint keeps serving the final values after the run.
    #[serde(default, with = "humantime_serde")]
    pub metrics_hold: Option<Duration>,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Where to write the verdicts as JUnit XML at the end of the run.
    pub junit: Option<PathBuf>,
    /// Where to write one CSV row per participant at the end of the run.
    pub participants: Option<PathBuf>,
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
    pub phases: Vec<crate::behaviour::PhaseSpec>,
    /// Sessions that end and come back (a tab reload).
    pub churn: Option<crate::behaviour::ChurnSpec>,
    /// Reconnect storms: a share of the clients drops its session at once and rejoins.
    #[serde(default)]
    pub storms: Vec<crate::behaviour::StormSpec>,
    /// Speaking turns: one or two talkers at a time per meeting.
    pub conversation: Option<crate::behaviour::ConversationSpec>,
    /// Opus DTX: a frame without voice goes out only every 400 ms.
    #[serde(default)]
    pub dtx: bool,
    /// How the report scores call quality (`quality: {bands: …}`).
    #[serde(default)]
    pub quality: Quality,
}

/// The `quality` section: the limits of upstream's call-quality bands.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// The bands' limits; a band given needs both `green` and `red`, a
    /// band left out keeps upstream's (`docs/src/scores.md`).
    #[serde(default)]
    pub bands: synth_report::score::BandLimits,
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

/// The `server` section: where the server's own cost is read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// The server's process id on this host (CPU and memory from `/proc`).
    pub pid: Option<u32>,
    /// Base URL of a Prometheus server, `http://host:port`.
    pub prometheus: Option<String>,
    /// Instant PromQL queries by name, each sampled every timeline interval.
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
}

fn search_user_id() -> String {
    "search-{pod_index}-{index}".into()
}

fn search_meeting_id() -> String {
    "search-{pod_index}-{meeting}".into()
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
    /// `browser` or `bot` (default: the config's `client_profile`).
    pub client_profile: Option<ClientProfile>,
}

/// A group of clients made from id templates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The group's name in scoped thresholds (`audio_lost{group=NAME}`)
    /// and the report's scopes; by default its index (`0`, `1`, …).
    pub name: Option<String>,
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
    /// Send every video rendition of the pack at once, as simulcast layers
    /// (lowest first: layer 0), each packet with its layer id and media
    /// kind, shedding and restoring upper layers when the server's
    /// LAYER_HINT says so (upstream `RnD`). Needs two or more renditions
    /// with aligned key frames; not with `adapt` or `rendition`.
    #[serde(default)]
    pub simulcast: bool,
    /// What each client of the group shows: how many peers' video tiles
    /// (VIEWPORT) and which simulcast layer it asks for (LAYER_PREFERENCE).
    /// Without it a client asks for nothing and receives everything.
    pub view: Option<ViewSpec>,
    /// `participant` (the default) or `viewer`: receives only, sends no media.
    #[serde(default)]
    pub role: Role,
    /// Timed actions on a share of the group: mute, camera, screen share, rendition.
    #[serde(default)]
    pub actions: Vec<crate::behaviour::ActionSpec>,
    /// `browser` or `bot` (default: the config's `client_profile`).
    pub client_profile: Option<ClientProfile>,
}

/// What a client shows of its meeting (`view:`), as a receiver tells an
/// upstream `RnD` server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewSpec {
    /// Video tiles it shows: the first this many peers it hears, kept until
    /// they leave (VIEWPORT). Without it: every peer.
    pub tiles: Option<usize>,
    /// The simulcast layer it asks of each peer (LAYER_PREFERENCE).
    #[serde(default)]
    pub layer: LayerChoice,
}

/// The simulcast layer a receiver asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerChoice {
    /// Layer 0 only.
    Low,
    /// Layer 1 (and layer 0, which an `RnD` server always forwards).
    Mid,
    /// Layer 2 (and layer 0).
    High,
    /// No preference sent: every layer (a browser's "Auto" with large tiles).
    #[default]
    Auto,
}

impl LayerChoice {
    /// The layer asked for; `None` for [`LayerChoice::Auto`].
    pub fn layer(self) -> Option<u32> {
        match self {
            LayerChoice::Low => Some(0),
            LayerChoice::Mid => Some(1),
            LayerChoice::High => Some(2),
            LayerChoice::Auto => None,
        }
    }

    /// Its name in the config and the report.
    pub fn name(self) -> &'static str {
        match self {
            LayerChoice::Low => "low",
            LayerChoice::Mid => "mid",
            LayerChoice::High => "high",
            LayerChoice::Auto => "auto",
        }
    }
}

/// What a participant sends besides its media, and how it keeps its session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientProfile {
    /// As upstream's web client: DIAGNOSTICS every 500 ms per (peer,
    /// medium) received, HEALTH every 5 s, RTT probes (every 200 ms for its
    /// first 2 s, then every second), heartbeats as datagrams every 5 s and
    /// at once on a change, key-frame requests on a gap in a peer's video,
    /// no CONNECTION packet; Chromium's QUIC idle timeout and keep-alive,
    /// and the web client's reconnection.
    #[default]
    Browser,
    /// As upstream's CLI and bot: a CONNECTION packet, then a heartbeat a
    /// second on a stream, nothing else besides media; a dead server noticed
    /// fast (1 s keep-alive, 10 s idle timeout).
    Bot,
}

impl ClientProfile {
    /// Its name in the config and the report.
    pub fn name(self) -> &'static str {
        match self {
            ClientProfile::Browser => "browser",
            ClientProfile::Bot => "bot",
        }
    }
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

/// Reads and parses a config file; errors name the file, line and field.
pub fn read_file(path: &Path) -> anyhow::Result<File> {
    let bytes = read_limited(path).with_context(|| format!("reading config {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("config {}: not UTF-8 text ({e})", path.display()))?;
    parse(&text).with_context(|| format!("config {}", path.display()))
}

/// Reads a regular file of at most [`limits::FILE_BYTES`]. Anything else is
/// refused before it is opened: reading a FIFO blocks, a device never ends.
pub(super) fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::assert_errors;

    #[test]
    fn errors_name_the_problem() {
        assert_errors(&[
            (
                "clients: [{user_id: a, meeting_id: m, colour: red}]",
                "unknown field `colour`",
            ),
            (
                "duration: soon\nclients: [{user_id: a, meeting_id: m}]",
                "duration",
            ),
        ]);
        let e =
            parse("clients:\n  - user_id: a\n    meeting_id: m\n    colour: red\n").unwrap_err();
        assert!(e.to_string().starts_with("line 4 column 5"), "{e}");
    }
}
