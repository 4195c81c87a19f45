//! [`Settings`]: everything a run needs, resolved by [`Settings::resolve`]
//! from the file and the overrides, one section after another (each
//! section's own file checks it), and the defaults where neither says.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use synth_common::redact::shown;

use synth_report::threshold::Threshold;

use super::auth::{credentials, Credentials};
use super::defaults;
use super::expand::{expand, Participant};
use super::file::{File, NetworkSpec, ProfileSpec, ThresholdSpec};
use super::limits::{self, bounded, path_fits};
use super::network::{network, Network};
use super::overrides::Overrides;
use super::search::{search, search_group, Search};
use super::server::{server_watch, ServerWatch};
use super::tls::{trust, Trust};
use super::wire::WireSettings;

/// The behaviour part of the config: what [`crate::behaviour::schedule`] turns
/// into each client's script.
#[derive(Debug, Clone, Default)]
pub struct People {
    /// Phases in sequence.
    pub phases: Vec<crate::behaviour::PhaseSpec>,
    /// Churn.
    pub churn: Option<crate::behaviour::ChurnSpec>,
    /// Reconnect storms.
    pub storms: Vec<crate::behaviour::StormSpec>,
    /// Speaking turns.
    pub conversation: Option<crate::behaviour::ConversationSpec>,
    /// Opus DTX.
    pub dtx: bool,
    /// Each group's actions, by group index.
    pub actions: Vec<Vec<crate::behaviour::ActionSpec>>,
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
    /// Server URL (`https://host:port`), `None` to start the embedded relay;
    /// the first of `server_urls`.
    pub server_url: Option<url::Url>,
    /// The wire to speak and where `/version` is asked.
    pub wire: WireSettings,
    /// The other servers of `server_urls`, which `browser` clients also
    /// try before they choose one (empty with a single server).
    pub server_alternates: Vec<url::Url>,
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
    /// QUIC keep-alive period of `bot` clients (and of every client when the
    /// config sets `keep_alive`).
    pub keep_alive: Duration,
    /// QUIC idle timeout of `bot` clients: a silent server is dead after
    /// this (every client's when the config sets `idle_timeout`).
    pub idle_timeout: Duration,
    /// QUIC keep-alive period and idle timeout of `browser` clients:
    /// Chromium's ([`defaults::BROWSER_KEEP_ALIVE`],
    /// [`defaults::BROWSER_IDLE_TIMEOUT`]) unless the config sets them.
    pub browser_liveness: (Duration, Duration),
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
    /// Each group's name (`name`, by default its index), in the config's order.
    pub group_names: Vec<String>,
    /// Prometheus endpoint address.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// How long the endpoint keeps serving after the run (0: not at all).
    pub metrics_hold: Duration,
    /// JSON report path.
    pub report: Option<PathBuf>,
    /// JUnit XML path.
    pub junit: Option<PathBuf>,
    /// Participants CSV path.
    pub participants: Option<PathBuf>,
    /// Timeline sampling interval.
    pub timeline_interval: Duration,
    /// Where the timeline is streamed as JSON lines.
    pub timeline: Option<PathBuf>,
    /// The capacity search, if the config has one.
    pub search: Option<Search>,
    /// Where the server's own cost is read while the run goes, if anywhere.
    pub server: Option<ServerWatch>,
    /// The groups' networks (a participant's `network` indexes here).
    pub networks: Vec<Network>,
    /// Seed of every random choice (networks and behaviour).
    pub seed: u64,
    /// Phases, churn, storms, conversation, DTX, actions.
    pub people: People,
    /// The limits of upstream's call-quality bands (`quality.bands`),
    /// carried to the report's `scores.limits`.
    pub bands: synth_report::score::BandLimits,
}

impl Settings {
    /// Resolves the file and overrides into settings, expanding groups and checking ids.
    /// `env` reads environment variables (the JWT secret); tests pass a map.
    pub fn resolve(
        file: File,
        o: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        // One step a part, in this order: a config with several mistakes is
        // told of the same one first every time.
        let people = people(&file, file.search.is_some())?;
        let (server_url, server_alternates) = servers(&file, o)?;
        let wire = super::wire::wire(&file, o, server_url.as_ref())?;
        let trust = trust(&file.tls)?;
        let credentials = credentials(&file.auth, env)?;
        let o = &pod_index(o, env)?;
        let search = capacity_search(&file, o)?;
        let server = server_watch(file.server.as_ref(), o)?;
        let (clients, networks) = clients(&file, o)?;
        profiles(&file.networks)?;
        file.quality
            .bands
            .check()
            .map_err(|e| anyhow::anyhow!("quality.{e}"))?;
        let group_names = group_names(&file)?;
        let thresholds = file
            .thresholds
            .iter()
            .map(|(k, v)| threshold(k, v))
            .collect::<anyhow::Result<Vec<_>>>()?;
        scopes(&thresholds, &group_names, &clients, &networks, &people)?;
        let metrics_listen = metrics_listen(
            o.metrics_listen
                .as_deref()
                .or(file.metrics_listen.as_deref()),
        )?;
        let metrics_hold = metrics_hold(o.metrics_hold.or(file.metrics_hold), metrics_listen)?;
        let timing = timing(&file, o)?;
        let (max_concurrent_connects, ramp_up_delay) = starts(&file)?;
        let Paths {
            pack,
            report,
            junit,
            participants,
            timeline,
        } = paths(&file, o)?;
        let engine = engine(&file, clients.len())?;
        let duration = run_length(&timing, search.as_ref(), &engine, &people, o, &file);
        Ok(Settings {
            server_url,
            wire,
            server_alternates,
            pack,
            duration,
            ramp_up_delay,
            connect_timeout: engine.connect_timeout,
            max_concurrent_connects,
            connect_attempts: engine.connect_attempts,
            threads: engine.threads,
            heartbeat_interval: engine.heartbeat_interval,
            batch_window: engine.batch_window,
            keep_alive: timing.keep_alive,
            idle_timeout: timing.idle_timeout,
            browser_liveness: timing.browser_liveness,
            stall_after: timing.stall_after,
            ack_wait: engine.ack_wait,
            drain: engine.drain,
            late_after: timing.late_after,
            trust,
            credentials,
            clients,
            thresholds,
            group_names,
            metrics_listen,
            metrics_hold,
            report,
            junit,
            participants,
            timeline_interval: engine.timeline_interval,
            timeline,
            search,
            server,
            networks,
            seed: file.seed.unwrap_or(defaults::SEED),
            people,
            bands: file.quality.bands,
        })
    }
}

/// The server to join, flag over file; blank or absent, the embedded relay.
fn server_url(s: Option<&str>) -> anyhow::Result<Option<url::Url>> {
    match s {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => Ok(Some(parse_server_url(s)?)),
    }
}

/// The servers to join: the flag's one, or the file's `server_url`, or its
/// `server_urls` (the first, and the others for a browser's election).
fn servers(file: &File, o: &Overrides) -> anyhow::Result<(Option<url::Url>, Vec<url::Url>)> {
    if o.server_url.is_some() {
        return Ok((server_url(o.server_url.as_deref())?, Vec::new()));
    }
    let Some(list) = &file.server_urls else {
        return Ok((server_url(file.server_url.as_deref())?, Vec::new()));
    };
    if file.server_url.is_some() {
        bail!("set server_url or server_urls, not both");
    }
    let mut urls = Vec::with_capacity(list.len());
    for s in list {
        let u = parse_server_url(s)?;
        if urls.contains(&u) {
            bail!(
                "server_urls lists {:?} twice",
                shown(&synth_common::redact::url(&u))
            );
        }
        urls.push(u);
    }
    if urls.is_empty() {
        bail!("server_urls is empty: list at least one server, or leave it out for the embedded relay");
    }
    let first = urls.remove(0);
    Ok((Some(first), urls))
}

/// The overrides, with the pod's index from `JOB_COMPLETION_INDEX` when no
/// flag or `POD_INDEX` gives one.
fn pod_index(o: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Overrides> {
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
    Ok(o)
}

/// The file's `search:`, checked, if it has one.
fn capacity_search(file: &File, o: &Overrides) -> anyhow::Result<Option<Search>> {
    let Some(spec) = &file.search else {
        return Ok(None);
    };
    let has_clients = !file.clients.is_empty() || !file.groups.is_empty();
    Ok(Some(search(spec, has_clients, file.ramp_up_delay_ms, o)?))
}

/// The clients to start (the search's, or the file's clients and groups),
/// and the groups' networks they index.
fn clients(file: &File, o: &Overrides) -> anyhow::Result<(Vec<Participant>, Vec<Network>)> {
    let profile = file.client_profile.unwrap_or_default();
    let mut networks = Vec::new();
    let clients = match &file.search {
        Some(spec) => expand(&[], &[search_group(spec)], profile, o, &mut |_, _| Ok(None))?,
        None => expand(&file.clients, &file.groups, profile, o, &mut |g_no, g| {
            let Some(spec) = &g.network else {
                return Ok(None);
            };
            let n =
                network(spec, &file.networks).with_context(|| format!("groups[{g_no}].network"))?;
            networks.push(Network {
                group: g.user_id.clone(),
                ..n
            });
            Ok(Some(networks.len() - 1))
        })?,
    };
    Ok((clients, networks))
}

/// Checks each of the file's `networks:`, used by a group or not.
fn profiles(custom: &BTreeMap<String, ProfileSpec>) -> anyhow::Result<()> {
    for name in custom.keys() {
        if synth_common::netem::Profile::named(name).is_some() {
            bail!("networks.{name}: {name} is a built-in profile; give yours another name");
        }
        network(&NetworkSpec::Name(name.clone()), custom)
            .with_context(|| format!("networks.{name}"))?;
    }
    Ok(())
}

/// The Prometheus endpoint's address, flag over file.
fn metrics_listen(s: Option<&str>) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(s) = s else {
        return Ok(None);
    };
    let addr = s.parse().with_context(|| {
        format!(
            "metrics_listen {:?} is not an address like 127.0.0.1:9090",
            shown(s)
        )
    })?;
    Ok(Some(addr))
}

/// How long `/metrics` is served after the run: bounded, and only with an
/// endpoint to serve.
fn metrics_hold(
    hold: Option<Duration>,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<Duration> {
    let Some(hold) = hold else {
        return Ok(Duration::ZERO);
    };
    let hold = bounded("metrics_hold", hold)?;
    if !hold.is_zero() && listen.is_none() {
        bail!("metrics_hold needs metrics_listen (--metrics-listen ADDR): there is no endpoint to keep serving");
    }
    Ok(hold)
}

/// The run's length as asked, and how a session is kept alive, found
/// stalled and judged late.
struct Timing {
    duration: Duration,
    keep_alive: Duration,
    idle_timeout: Duration,
    browser_liveness: (Duration, Duration),
    stall_after: Duration,
    late_after: [Duration; 2],
}

fn timing(file: &File, o: &Overrides) -> anyhow::Result<Timing> {
    let duration = bounded(
        "duration",
        o.duration.or(file.duration).unwrap_or(defaults::DURATION),
    )?;
    let liveness = |keep_alive: Duration, idle_timeout: Duration| -> anyhow::Result<_> {
        let keep_alive = bounded("keep_alive", file.keep_alive.unwrap_or(keep_alive))?;
        let idle_timeout = bounded("idle_timeout", file.idle_timeout.unwrap_or(idle_timeout))?;
        if idle_timeout <= keep_alive {
            bail!(
                "keep_alive ({}) must be less than idle_timeout ({})",
                humantime::format_duration(keep_alive),
                humantime::format_duration(idle_timeout)
            );
        }
        Ok((keep_alive, idle_timeout))
    };
    let (keep_alive, idle_timeout) = liveness(defaults::KEEP_ALIVE, defaults::IDLE_TIMEOUT)?;
    let browser_liveness = liveness(defaults::BROWSER_KEEP_ALIVE, defaults::BROWSER_IDLE_TIMEOUT)?;
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
    Ok(Timing {
        duration,
        keep_alive,
        idle_timeout,
        browser_liveness,
        stall_after,
        late_after,
    })
}

/// How clients start: handshakes in flight at once, and the delay between
/// two starts.
fn starts(file: &File) -> anyhow::Result<(usize, Duration)> {
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
    Ok((
        max_concurrent_connects,
        Duration::from_millis(ramp_up_delay_ms),
    ))
}

/// The files a run reads and writes.
struct Paths {
    pack: PathBuf,
    report: Option<PathBuf>,
    junit: Option<PathBuf>,
    participants: Option<PathBuf>,
    timeline: Option<PathBuf>,
}

/// The pack, report, JUnit, participants and timeline paths, flag over file, each short
/// enough to open.
fn paths(file: &File, o: &Overrides) -> anyhow::Result<Paths> {
    let pack = o
        .pack
        .clone()
        .or_else(|| file.pack.clone())
        .unwrap_or_else(|| PathBuf::from(defaults::PACK));
    let report = o.report.clone().or_else(|| file.report.clone());
    let junit = o.junit.clone().or_else(|| file.junit.clone());
    let participants = o.participants.clone().or_else(|| file.participants.clone());
    let timeline = o.timeline.clone().or_else(|| file.timeline.clone());
    path_fits("pack", &pack)?;
    for (field, path) in [
        ("report", &report),
        ("junit", &junit),
        ("participants", &participants),
        ("timeline", &timeline),
    ] {
        if let Some(p) = path {
            path_fits(field, p)?;
        }
    }
    Ok(Paths {
        pack,
        report,
        junit,
        participants,
        timeline,
    })
}

/// How long the run lasts: `duration`, except that a search and phases set
/// their own length, which `duration` (or --duration) can only cut short.
fn run_length(
    timing: &Timing,
    search: Option<&Search>,
    engine: &Engine,
    people: &People,
    o: &Overrides,
    file: &File,
) -> Duration {
    // A search lasts as long as its steps, each of which may wait up to
    // connect_timeout past its hold for its clients; it ends by itself,
    // and --duration can only cut it short.
    let duration = match (search, o.duration) {
        (Some(se), None) => (se.hold + engine.connect_timeout).saturating_mul(se.steps() as u32),
        _ => timing.duration,
    };
    // Phases last as long as they do; `duration` or --duration can only
    // cut them short.
    if people.phases.is_empty() {
        return duration;
    }
    let total = crate::behaviour::phases_length(&people.phases);
    match o.duration.or(file.duration) {
        Some(d) => d.min(total),
        None => total,
    }
}

/// How the engine samples its timeline, connects, paces and winds down its
/// clients.
struct Engine {
    timeline_interval: Duration,
    connect_timeout: Duration,
    connect_attempts: u32,
    threads: usize,
    heartbeat_interval: Duration,
    batch_window: Duration,
    ack_wait: Duration,
    drain: Duration,
}

fn engine(file: &File, clients: usize) -> anyhow::Result<Engine> {
    Ok(Engine {
        timeline_interval: bounded(
            "timeline_interval",
            file.timeline_interval
                .unwrap_or(defaults::TIMELINE_INTERVAL),
        )?,
        connect_timeout: bounded(
            "connect_timeout",
            file.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT),
        )?,
        connect_attempts: file
            .connect_attempts
            .unwrap_or(defaults::CONNECT_ATTEMPTS)
            .max(1),
        threads: threads(file.threads, clients)?,
        heartbeat_interval: bounded(
            "heartbeat_interval",
            file.heartbeat_interval
                .unwrap_or(defaults::HEARTBEAT_INTERVAL),
        )?,
        batch_window: batch_window(file.batch_window)?,
        ack_wait: bounded("ack_wait", file.ack_wait.unwrap_or(defaults::ACK_WAIT))?,
        drain: bounded("drain", file.drain.unwrap_or(defaults::DRAIN))?,
    })
}

/// Threads to run clients on: as the file says, else as
/// [`defaults::threads`] finds for `clients`.
fn threads(asked: Option<usize>, clients: usize) -> anyhow::Result<usize> {
    match asked {
        Some(0) => bail!("threads must be at least 1"),
        Some(n) if n > limits::THREADS => {
            bail!("threads {n} is more than {}", limits::THREADS)
        }
        Some(n) => Ok(n),
        None => Ok(defaults::threads(clients)),
    }
}

/// How early a video frame may go to ride with an audio packet: less than
/// one 20 ms audio frame.
fn batch_window(asked: Option<Duration>) -> anyhow::Result<Duration> {
    match asked.unwrap_or(defaults::BATCH_WINDOW) {
        w if w >= Duration::from_millis(20) => {
            bail!("batch_window must be under 20 ms (one audio frame)")
        }
        w => Ok(w),
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
    crate::behaviour::validate(
        &p.phases,
        p.churn.as_ref(),
        &p.storms,
        p.conversation.as_ref(),
        &p.actions,
    )?;
    Ok(p)
}

/// Each group's name: its `name`, else its index; distinct.
fn group_names(file: &File) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(file.groups.len());
    for (i, g) in file.groups.iter().enumerate() {
        let name = match &g.name {
            Some(n) if n.trim().is_empty() => bail!("groups[{i}].name is empty"),
            Some(n) if n.contains(['{', '}', '=', ',']) => bail!(
                "groups[{i}].name {:?} may not hold {{, }}, = or , (it is written in scoped thresholds)",
                shown(n)
            ),
            Some(n) => n.trim().to_owned(),
            None => i.to_string(),
        };
        if let Some(j) = names.iter().position(|n| *n == name) {
            bail!(
                "groups[{i}] and groups[{j}] are both named {name:?}: group names must be distinct"
            );
        }
        names.push(name);
    }
    Ok(names)
}

/// Checks that each scoped threshold names a group, network, meeting or
/// phase the run has.
fn scopes(
    thresholds: &[Threshold],
    groups: &[String],
    clients: &[Participant],
    networks: &[Network],
    people: &People,
) -> anyhow::Result<()> {
    use synth_report::threshold::Scope;
    for t in thresholds {
        let (known, what): (Vec<String>, &str) = match &t.scope {
            Scope::Run => continue,
            Scope::Group(g) if groups.contains(g) => continue,
            Scope::Group(_) => (groups.to_vec(), "groups (their `name`, else their index)"),
            Scope::Network(n) if networks.iter().any(|x| &x.profile_name == n) => continue,
            Scope::Network(_) => (
                networks.iter().map(|x| x.profile_name.clone()).collect(),
                "the groups' network profiles",
            ),
            Scope::Meeting(m) if clients.iter().any(|c| &c.meeting_id == m) => continue,
            Scope::Meeting(_) => {
                let mut ids: Vec<String> = clients.iter().map(|c| c.meeting_id.clone()).collect();
                ids.dedup();
                ids.truncate(10);
                (ids, "this process's meetings (first 10)")
            }
            Scope::Phase(p)
                if people
                    .phases
                    .iter()
                    .enumerate()
                    .any(|(i, x)| &x.name(i) == p) =>
            {
                continue
            }
            Scope::Phase(_) => (
                people
                    .phases
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x.name(i))
                    .collect(),
                "phases",
            ),
        };
        bail!(
            "thresholds.{}: no {} {:?} in this run ({what}: {})",
            t.name,
            t.scope.kind().unwrap_or("scope"),
            shown(t.scope.value().unwrap_or("")),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(())
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
            if (t.abort_on_fail || f.delay_abort_eval.is_some()) && !t.is_live() {
                bail!(
                    "thresholds.{name}: abort_on_fail needs a figure known while the run goes, and {name} is only known at the end (live figures: the latency, cross-host latency and jitter percentiles, {})",
                    synth_report::figure::live_names()
                );
            }
            if !f.abort_on_fail && f.delay_abort_eval.is_some() {
                bail!("thresholds.{name}: delay_abort_eval is set without abort_on_fail: true");
            }
            Ok(t)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_errors, resolve};

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
        let yaml = "server_url: https://127.0.0.1:1\npack: a.pack\nduration: 5s\nreport: r.json\njunit: r.xml\nmetrics_listen: 127.0.0.1:1\nclients: [{user_id: a, meeting_id: m}]\n";
        let o = Overrides {
            server_url: Some("https://127.0.0.1:2".into()),
            pack: Some("b.pack".into()),
            duration: Some(Duration::from_secs(7)),
            metrics_listen: Some("127.0.0.1:2".into()),
            report: Some("s.json".into()),
            junit: Some("s.xml".into()),
            ..Default::default()
        };
        let s = resolve(yaml, &o).unwrap();
        assert_eq!(s.server_url.unwrap().port(), Some(2));
        assert_eq!(s.pack, PathBuf::from("b.pack"));
        assert_eq!(s.duration, Duration::from_secs(7));
        assert_eq!(s.metrics_listen.unwrap().port(), 2);
        assert_eq!(s.report, Some(PathBuf::from("s.json")));
        assert_eq!(s.junit, Some(PathBuf::from("s.xml")));
        // And without overrides the file's values hold.
        let s = resolve(yaml, &Overrides::default()).unwrap();
        assert_eq!(s.junit, Some(PathBuf::from("r.xml")));
        assert_eq!(s.pack, PathBuf::from("a.pack"));
        assert_eq!(s.duration, Duration::from_secs(5));
    }

    /// `quality.bands` reaches the settings; a band left out keeps
    /// upstream's limits, upstream's capital names are accepted.
    #[test]
    fn quality_bands_from_the_file() {
        use synth_report::score::{BandLimits, Limit};
        let s = resolve(ORIGINAL, &Overrides::default()).unwrap();
        assert_eq!(s.bands, BandLimits::default());
        let yaml = format!(
            "{ORIGINAL}quality:\n  bands:\n    a: {{green: 0.02, red: 0.08}}\n    S: {{green: 0.5, red: 2}}\n    k_red_fail: 1\n"
        );
        let s = resolve(&yaml, &Overrides::default()).unwrap();
        assert_eq!(
            s.bands.a,
            Limit {
                green: 0.02,
                red: 0.08
            }
        );
        assert_eq!(
            s.bands.s,
            Limit {
                green: 0.5,
                red: 2.0
            }
        );
        assert_eq!(s.bands.k_red_fail, 1);
        assert_eq!(s.bands.v, BandLimits::default().v);
    }

    #[test]
    fn quality_errors_name_the_band() {
        let c = "clients: [{user_id: a, meeting_id: m}]\n";
        assert_errors(&[
            (
                &format!("{c}quality: {{bands: {{a: {{green: 0.05, red: 0.01}}}}}}"),
                "quality.bands.a: green 0.05 is not below red 0.01",
            ),
            (
                &format!("{c}quality: {{bands: {{l: {{green: 100, red: .inf}}}}}}"),
                "quality.bands.l.red: inf",
            ),
            (
                &format!("{c}quality: {{bands: {{q: {{green: -1, red: 1}}}}}}"),
                "quality.bands.q.green: -1",
            ),
            (
                &format!("{c}quality: {{bands: {{k_red_fail: 0}}}}"),
                "quality.bands.k_red_fail",
            ),
            (
                &format!("{c}quality: {{bands: {{a: {{red: 0.1}}}}}}"),
                "green",
            ),
            (
                &format!("{c}quality: {{bands: {{x: {{green: 0, red: 1}}}}}}"),
                "x",
            ),
            (&format!("{c}quality: {{limits: 1}}"), "limits"),
        ]);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_errors(&[
            (
                "server_url: http://127.0.0.1:1\nclients: [{user_id: a, meeting_id: m}]",
                "https://",
            ),
            (
                "thresholds: {bogus: \"< 1\"}\nclients: [{user_id: a, meeting_id: m}]",
                "bogus",
            ),
        ]);
    }

    #[test]
    fn scoped_thresholds_name_what_the_run_has() {
        let groups = "groups:\n  - {name: wifi, count: 2, user_id: \"w{index}\", meeting_id: r0, network: good_wifi}\n  - {count: 2, user_id: \"m{index}\", meeting_id: r1, network: 3g}\nphases: [{type: constant, participants: 4, for: 5s, name: peak}]\n";
        let ok = format!(
            "{groups}thresholds: {{\"audio_lost{{group=wifi}}\": \"== 0\", \"audio_lost{{group=1}}\": \"< 9\", \"audio_lost{{network=3g}}\": \"< 9\", \"audio_lost{{meeting=r1}}\": \"< 9\", \"audio_lost{{phase=peak}}\": \"< 9\"}}"
        );
        let s = resolve(&ok, &Overrides::default()).unwrap();
        assert_eq!(s.group_names, ["wifi", "1"]);
        assert_eq!(s.thresholds.len(), 5);
        assert_errors(&[
            (
                &format!("{groups}thresholds: {{\"audio_lost{{group=lte}}\": \"== 0\"}}"),
                "no group \"lte\" in this run (groups (their `name`, else their index): wifi, 1)",
            ),
            (
                &format!("{groups}thresholds: {{\"audio_lost{{network=lte}}\": \"== 0\"}}"),
                "no network \"lte\" in this run (the groups' network profiles: good_wifi, 3g)",
            ),
            (
                &format!("{groups}thresholds: {{\"audio_lost{{meeting=r9}}\": \"== 0\"}}"),
                "no meeting \"r9\"",
            ),
            (
                &format!("{groups}thresholds: {{\"audio_lost{{phase=warm}}\": \"== 0\"}}"),
                "no phase \"warm\" in this run (phases: peak)",
            ),
            (
                "groups:\n  - {name: a, count: 1, user_id: x, meeting_id: m}\n  - {name: a, count: 1, user_id: y, meeting_id: m}",
                "groups[1] and groups[0] are both named \"a\"",
            ),
            (
                "groups:\n  - {name: \"a=b\", count: 1, user_id: x, meeting_id: m}",
                "may not hold",
            ),
        ]);
    }

    #[test]
    fn server_urls_list_the_servers_a_browser_chooses_among() {
        let c = "clients: [{user_id: a, meeting_id: m}]";
        let yaml = format!("server_urls: [https://127.0.0.1:1, https://127.0.0.1:2]\n{c}");
        let s = resolve(&yaml, &Overrides::default()).unwrap();
        assert_eq!(s.server_url.as_ref().unwrap().port(), Some(1));
        assert_eq!(s.server_alternates.len(), 1);
        assert_eq!(
            crate::plan::server_label(&s),
            "https://127.0.0.1:1/ or https://127.0.0.1:2/"
        );
        // The flag names one server: no election.
        let o = Overrides {
            server_url: Some("https://127.0.0.1:3".into()),
            ..Overrides::default()
        };
        let s = resolve(&yaml, &o).unwrap();
        assert!(s.server_alternates.is_empty());
        assert_errors(&[
            (
                &format!(
                    "server_url: https://127.0.0.1:1\nserver_urls: [https://127.0.0.1:2]\n{c}"
                ),
                "server_url or server_urls, not both",
            ),
            (&format!("server_urls: []\n{c}"), "server_urls is empty"),
            (
                &format!("server_urls: [https://127.0.0.1:1, https://127.0.0.1:1]\n{c}"),
                "twice",
            ),
            (
                &format!("server_urls: [http://127.0.0.1:1]\n{c}"),
                "https://",
            ),
        ]);
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
