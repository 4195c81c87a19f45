//! A whole run: resolve the plan (map the pack), start the embedded relay
//! when no server is given, start the clients on their ramp, watch progress,
//! stop on time, on failure or when the caller's shutdown future completes,
//! and build the report.
//!
//! - this file: [`run`], in steps (prepare, start, watch, end, collect,
//!   publish), and what the caller gives and gets;
//! - `threads`: the client threads and their QUIC endpoints;
//! - `progress`: what the run does every second (samples, the progress line);
//! - `stalls`: the clients' stalls, counted from those samples.

mod progress;
mod stalls;
mod threads;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::oneshot;

use crate::client::{Roster, RunControl, RunSignals, SessionSettings, Shared};
use crate::collect::{Inputs, Scoring};
use crate::config::{Credentials, Settings, Trust};
use crate::health::{Health, Samplers};
use crate::metrics::{Layout, Metrics, State};
use crate::monitor::{Live, Setup, Stop};
use crate::plan::{self, ClientPlan, Plan};
use crate::report::{Report, StopReason, WireReport};
use crate::scopes::Scopes;
use crate::version::Wire;
use progress::EverySecond;
use threads::{spawn_thread, Endpoints};

/// Exit code when a threshold failed.
pub const EXIT_THRESHOLD: i32 = synth_report::EXIT_THRESHOLD;
/// Exit code for a config or usage error.
pub const EXIT_CONFIG: i32 = synth_report::EXIT_INPUT;

/// A run refused before it started because of its input (the pack, or a
/// rendition the pack lacks): the CLI exits with [`EXIT_CONFIG`] for it.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BadInput(anyhow::Error);

/// What the caller asks for besides the settings.
#[derive(Debug)]
pub struct Options {
    /// Print progress lines on stderr.
    pub progress: bool,
    /// Print the summary on stdout at the end.
    pub summary: bool,
    /// Told the metrics endpoint's address once it is bound (useful with port 0).
    pub metrics_bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    /// Write the report's HTML page here at the end (`run --html`), with
    /// the other files made from the report.
    pub html: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            progress: true,
            summary: true,
            metrics_bound: None,
            html: None,
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Process exit code: 0, 1 when the report went to the fallback path, or
    /// [`EXIT_THRESHOLD`].
    pub exit_code: i32,
    /// Address of the metrics endpoint, if one was served.
    pub metrics_addr: Option<SocketAddr>,
    /// Everything measured, per client.
    pub metrics: Arc<Metrics>,
}

/// Runs the load test of `s` until its duration is over, every client has
/// failed, or `shutdown` completes (the binary passes Ctrl-C/SIGTERM; tests
/// pass a channel or `std::future::pending()`). The report is complete in
/// every case.
pub async fn run(
    s: Settings,
    mut opts: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Outcome> {
    let mut run = prepare(&s, &mut opts).await?;
    let (tasks, endpoints) = start(&s, &run).await?;
    tokio::pin!(shutdown);
    let (stopped_by, aborted) = watch(&s, &mut run, opts.progress, &mut shutdown).await;
    let at_end = end(&s, &run, tasks).await;
    let stopped = Stopped {
        by: stopped_by,
        aborted,
        at_end,
    };
    let mut finished = collect(&s, run, stopped, &endpoints).await;
    let endpoint = finished.metrics_task.take();
    let outcome = publish(&s, &opts, finished);
    // A run stopped by a signal was asked to end: no hold then.
    let hold = !s.metrics_hold.is_zero() && stopped_by != StopReason::Signal;
    if let Some(addr) = outcome
        .as_ref()
        .ok()
        .and_then(|o| o.metrics_addr)
        .filter(|_| hold)
    {
        if opts.progress {
            eprintln!(
                "metrics: serving the final values on http://{addr}/metrics for {} (metrics_hold; Ctrl-C ends it)",
                humantime::format_duration(s.metrics_hold)
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(s.metrics_hold) => {}
            _ = &mut shutdown => {}
        }
    }
    if let Some(task) = endpoint {
        task.abort();
    }
    outcome
}

/// A run ready to start (see [`prepare`]).
struct Prepared {
    plan: Plan,
    /// Its groups', networks' and named meetings' participants.
    scopes: Scopes,
    metrics: Arc<Metrics>,
    target: Target,
    /// The metrics endpoint's address and task, if one is served.
    metrics_addr: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// What the clients share.
    shared: Arc<Shared>,
    /// The run's side of the clients' signals.
    control: RunControl,
    /// This process's and the host's CPU.
    cpu: Samplers,
    /// The live side: timeline, live thresholds, search, phases.
    live: Live,
}

/// The server a run targets.
struct Target {
    url: url::Url,
    trust: Trust,
    /// The server as the report names it.
    label: String,
    /// The embedded relay, when no server was given.
    relay: Option<synth_relay::Relay>,
    /// The wire the clients speak, and what the report says of it.
    wire: (Wire, WireReport),
}

/// How the run stopped.
struct Stopped {
    by: StopReason,
    /// The verdict line of the threshold that aborted the run.
    aborted: Option<String>,
    /// Clients connected at the stop, and those that could have been.
    at_end: (usize, usize),
}

/// A run over: its report, its measurements, where its metrics were served.
struct Finished {
    report: Report,
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
    /// The endpoint's task: serving until the run's hold is over.
    metrics_task: Option<tokio::task::JoinHandle<()>>,
}

/// Resolves the plan, checks where the report, the JUnit XML, the participants CSV and the timeline go, finds the
/// target (starting the embedded relay without a server), serves the
/// metrics, and sets up what the clients share and the live side. Nothing
/// runs yet but the relay, the metrics endpoint and a loop-delay probe.
async fn prepare(s: &Settings, opts: &mut Options) -> anyhow::Result<Prepared> {
    let plan = plan::resolve(s).map_err(BadInput)?;
    if let Some(path) = &s.report {
        crate::report::check_path(path).map_err(BadInput)?;
    }
    for (field, path) in [("junit", &s.junit), ("participants", &s.participants)] {
        if let Some(path) = path {
            crate::report::check_path(path)
                .context(field)
                .map_err(BadInput)?;
        }
    }
    if let Some(path) = &s.timeline {
        crate::monitor::check_path(path).map_err(BadInput)?;
    }
    let scopes = Scopes::new(&plan.clients, &s.group_names, &s.networks, &s.thresholds);
    let layout = Layout::new(scopes.group_of.clone(), scopes.groups);
    let metrics =
        Arc::new(Metrics::laid_out(plan.clients.len(), layout).with_stall_after(s.stall_after));
    let target = target(s).await?;
    if opts.progress {
        eprintln!("{}", crate::version::line(&target.wire.1));
    }
    let metrics_addr = match s.metrics_listen {
        Some(addr) => Some(crate::http::serve(addr, metrics.clone()).await?),
        None => None,
    };
    if let (Some((addr, _)), Some(tx)) = (&metrics_addr, opts.metrics_bound.take()) {
        let _ = tx.send(*addr);
    }
    let (signals, control) = RunSignals::new(Instant::now(), s.max_concurrent_connects);
    let shared = Arc::new(shared(
        s,
        &plan,
        (&target.url, target.wire.0),
        signals,
        metrics.clone(),
    ));
    // The event loops' own delay: one probe on this runtime, one per client thread.
    tokio::spawn(
        metrics
            .loop_delay
            .probe(usize::MAX, shared.signals.stop.clone()),
    );
    let cores = crate::health::cores_available();
    let cpu = Samplers::new(cores);
    let setup = Setup {
        interval: s.timeline_interval,
        jsonl: s.timeline.as_deref(),
        thresholds: &s.thresholds,
        search: s.search.as_ref(),
        step_wait: s.connect_timeout,
        cores,
        scopes: &scopes,
        audio_kbps: plan::mean_audio_kbps(&plan.clients),
    };
    let mut live = Live::new(&metrics, setup).map_err(BadInput)?;
    if let Some(sc) = &plan.schedule {
        live = live.with_phases(&sc.phases);
    }
    if let Some(w) = &s.server {
        let probe = crate::server_cost::ServerProbe::start(w, s.timeline_interval)
            .await
            .map_err(BadInput)?;
        live = live.with_server(probe);
    }
    Ok(Prepared {
        plan,
        scopes,
        metrics,
        target,
        metrics_addr,
        shared,
        control,
        cpu,
        live,
    })
}

/// The server of `s`, or without one the embedded relay, started here and
/// pinned by hash.
async fn target(s: &Settings) -> anyhow::Result<Target> {
    let observer =
        matches!(&s.credentials, Credentials::Token(t) if synth_common::jwt::says_observer(t));
    if let Some(u) = &s.server_url {
        let answer = match &s.wire.health_url {
            Some(h) => Some(crate::version::ask(h).await),
            None => None,
        };
        return Ok(Target {
            url: u.clone(),
            trust: s.trust.clone(),
            label: plan::server_label(s),
            relay: None,
            wire: crate::version::choose(&s.wire, answer, observer),
        });
    }
    let jwt_secret = match &s.credentials {
        Credentials::Mint { secret, .. } => Some(secret.clone()),
        _ => None,
    };
    // The embedded relay speaks the wire the config names (per_packet for auto).
    let wire = crate::version::choose(&s.wire, None, observer);
    let r = synth_relay::Relay::start(synth_relay::RelayConfig {
        jwt_secret,
        wire: wire.0,
        ..synth_relay::RelayConfig::default()
    })
    .await
    .context("starting the embedded relay")?;
    let url: url::Url = r.url().parse().context("relay URL")?;
    Ok(Target {
        label: format!("embedded relay {url}"),
        trust: Trust::Pinned(vec![r.cert_sha256()]),
        url,
        relay: Some(r),
        wire,
    })
}

/// What the clients of the run of `s` share: the session settings, the
/// roster of `plan`, the `signals` and the `metrics`.
fn shared(
    s: &Settings,
    plan: &Plan,
    (server, wire): (&url::Url, Wire),
    signals: RunSignals,
    metrics: Arc<Metrics>,
) -> Shared {
    Shared {
        settings: SessionSettings {
            pack: plan.pack.clone(),
            digests: synth_common::pack::FrameDigests::new(&plan.pack),
            server: server.clone(),
            alternates: s.server_alternates.clone(),
            credentials: s.credentials.clone(),
            connect_timeout: s.connect_timeout,
            connect_attempts: s.connect_attempts,
            heartbeat_interval: s.heartbeat_interval,
            batch_window: s.batch_window,
            late_after_ms: s.late_after.map(|d| d.as_secs_f64() * 1000.0),
            ack_wait: s.ack_wait,
            wire,
        },
        roster: Roster::new(&plan.clients),
        signals,
        metrics,
    }
}

/// Starts the client threads, each with its share of the clients (each
/// resolves once its endpoints are up), and marks the run ready. Returns
/// each thread's end, and the endpoints (their taps make the network report).
async fn start(
    s: &Settings,
    run: &Prepared,
) -> anyhow::Result<(Vec<oneshot::Receiver<()>>, Arc<Endpoints>)> {
    let clients = &run.plan.clients;
    let threads = s.threads.clamp(1, clients.len().max(1));
    let mut per_thread: Vec<Vec<ClientPlan>> = (0..threads).map(|_| Vec::new()).collect();
    for c in clients {
        per_thread[c.index % threads].push(c.clone());
    }
    let bind = crate::transport::bind_for(&run.target.url);
    let endpoints = Arc::new(Endpoints::new(s, run.target.trust.clone(), bind));
    let mut tasks = Vec::with_capacity(threads);
    for (k, plans) in per_thread.into_iter().enumerate() {
        let t = spawn_thread(k, run.shared.clone(), endpoints.clone(), plans);
        tasks.push(t.await?);
    }
    run.metrics.ready.store(true, Relaxed);
    tracing::info!(clients = clients.len(), server = %run.target.label, "run started");
    Ok((tasks, endpoints))
}

/// Watches the run until it must stop: its duration is over, every client
/// failed, the live side says so (an abort, the search's end) or `shutdown`
/// completes. Does the chores of every second (with `progress`, the progress
/// line) and ticks the live side when it asks. Returns why the run stopped,
/// and the verdict line of an abort.
async fn watch(
    s: &Settings,
    run: &mut Prepared,
    progress: bool,
    shutdown: impl Future<Output = ()>,
) -> (StopReason, Option<String>) {
    let (metrics, t0) = (&run.metrics, run.shared.signals.t0);
    let deadline = t0 + s.duration;
    let clients = run.plan.clients.len();
    let mut seconds = EverySecond::new(t0, clients, progress);
    tokio::pin!(shutdown);
    let mut aborted = None;
    let stopped_by = loop {
        let wake = deadline
            .min(seconds.next)
            .min(metrics.started + run.live.next_wake());
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut shutdown => break StopReason::Signal,
        }
        seconds.tick(Instant::now(), metrics, &mut run.cpu);
        if metrics.started + run.live.next_wake() <= Instant::now() {
            match run.live.tick(metrics) {
                Some(Stop::Abort(line)) => {
                    aborted = Some(line);
                    break StopReason::Abort;
                }
                Some(Stop::Search) => break StopReason::Search,
                None => {}
            }
            // The search's next step may start once this one has passed.
            run.control.open_step(run.live.step());
        }
        if Instant::now() >= deadline {
            break StopReason::Duration;
        }
        let states = metrics.states();
        if states[State::Failed as usize] == clients as u64 {
            break StopReason::Failure;
        }
    };
    seconds.finish();
    (stopped_by, aborted)
}

/// Ends the run honestly: senders stop and wait (bounded) for their streams
/// to be acknowledged; once none is sending, receivers drain for a grace
/// period; then every session closes properly and the client threads
/// (`tasks`) end. Returns the clients connected at the stop, and those that
/// could have been (neither pending nor away).
async fn end(s: &Settings, run: &Prepared, tasks: Vec<oneshot::Receiver<()>>) -> (usize, usize) {
    let states = run.metrics.states();
    let at_end = (
        (states[State::Connected as usize] + states[State::Stalled as usize]) as usize,
        run.plan.clients.len()
            - states[State::Pending as usize] as usize
            - states[State::Away as usize] as usize,
    );
    run.control.stop();
    let sending = &run.shared.signals.sending;
    let senders_done = async {
        while sending.load(Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(s.ack_wait + Duration::from_secs(1), senders_done)
        .await
        .is_err()
    {
        tracing::warn!(
            "{} sessions were still sending {:?} after the stop",
            sending.load(Relaxed),
            s.ack_wait + Duration::from_secs(1)
        );
    }
    tokio::time::sleep(s.drain).await;
    run.control.close();
    let all_done = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), all_done)
        .await
        .is_err()
    {
        tracing::warn!("some clients did not stop within 5 s");
    }
    at_end
}

/// Builds the report: the generator's health (after a last CPU sample), the
/// figures of every client, what the live side recorded, the networks. Then
/// shuts the embedded relay down (the metrics endpoint goes after the hold).
async fn collect(s: &Settings, run: Prepared, stopped: Stopped, endpoints: &Endpoints) -> Finished {
    let Prepared {
        plan,
        scopes,
        metrics,
        target,
        metrics_addr,
        mut cpu,
        live,
        ..
    } = run;
    cpu.sample(Instant::now());
    let inputs = Inputs {
        plan: &plan.clients,
        full_plan: &plan.clients,
        server: target.label,
        pack: s.pack.display().to_string(),
        stopped_by: stopped.by,
        thresholds: &s.thresholds,
        health: health(&metrics, &cpu),
        at_end: stopped.at_end,
        live: Some(live.finish(&metrics)),
        aborted: stopped.aborted,
        seed: s.seed,
        schedule: plan.schedule.as_ref(),
        scopes: &scopes,
        scoring: Scoring {
            bands: &s.bands,
            group_names: &s.group_names,
            networks: &s.networks,
            tracks: plan.pack.tracks(),
        },
        expected: synth_scenario::cadence::fleet(&plan.clients, s.heartbeat_interval.as_secs_f64())
            .per_participant,
    };
    let mut report = crate::collect::build(&metrics, &inputs);
    report.networks = endpoints.report();
    report.wire = Some(target.wire.1.clone());
    // The final verdicts (built-in ones too) replace the live ones, and
    // the participants' scores are served.
    metrics.set_verdicts(&report.thresholds);
    if let Some(scores) = &report.scores {
        metrics.set_scores(scores);
    }
    if let Some(r) = target.relay {
        r.shutdown().await;
    }
    let (metrics_addr, metrics_task) = metrics_addr.unzip();
    Finished {
        report,
        metrics,
        metrics_addr,
        metrics_task,
    }
}

/// The generator's health over the run: whether this machine, not the
/// server, was the bottleneck.
fn health(metrics: &Metrics, cpu: &Samplers) -> Health {
    let lateness_p99_ms = {
        let h = metrics.lateness.merged();
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(0.99) as f64 / 1000.0
        }
    };
    crate::health::assess(
        lateness_p99_ms,
        crate::health::ServerDelays {
            credit_wait_s: metrics.sum(|c| c.credit_wait_us.load(Relaxed)) as f64 / 1e6,
            skipped_s: metrics.sum(|c| c.skipped_us.load(Relaxed)) as f64 / 1e6,
        },
        &cpu.cpu,
        metrics.loop_delay.figures(),
        &cpu.host,
        &crate::health::Limits::default(),
    )
}

/// Shows the report (the summary first: whatever happens to the file, the
/// results are seen), writes it and its JUnit XML, and warns when some
/// clients failed; an error when none connected. The exit code is
/// [`EXIT_THRESHOLD`] when a threshold failed, 1 when the report had to go
/// elsewhere or the JUnit XML could not be written, else 0.
fn publish(s: &Settings, opts: &Options, finished: Finished) -> anyhow::Result<Outcome> {
    let Finished {
        report,
        metrics,
        metrics_addr,
        ..
    } = finished;
    if opts.summary {
        print!("{}", report.summary());
    }
    let mut file_missed = s
        .report
        .as_deref()
        .is_some_and(|path| !write(&report, path));
    /// A file made from the report at the end, by its config field.
    type Output<'a> = (&'static str, &'a Option<std::path::PathBuf>, Render);
    type Render = fn(&synth_report::model::Report) -> String;
    let outputs: [Output; 3] = [
        ("--html", &opts.html, synth_report::html::render),
        ("junit", &s.junit, synth_report::junit::junit),
        (
            "participants",
            &s.participants,
            synth_report::participants::csv,
        ),
    ];
    for (field, path, render) in outputs {
        if let Some(path) = path {
            let text = render(&report);
            if let Err(e) = synth_report::io::write_atomic(path, text.as_bytes()) {
                eprintln!("error: {field}: {e:#}");
                file_missed = true;
            }
        }
    }
    let first_failure = || metrics.first_failure.lock().ok().and_then(|f| f.clone());
    if report.clients.failed > 0 && report.clients.connected > 0 {
        if let Some(first) = first_failure() {
            eprintln!(
                "warning: {} of {} clients failed; the first: {first}",
                report.clients.failed, report.clients.planned
            );
        }
    }
    if report.clients.connected == 0 {
        let first = first_failure()
            .unwrap_or_else(|| "no client connected before the run ended".to_string());
        bail!("no client could connect: {first}");
    }
    let exit_code = if !report.passed {
        EXIT_THRESHOLD
    } else if file_missed {
        1
    } else {
        0
    };
    Ok(Outcome {
        report,
        exit_code,
        metrics_addr,
        metrics,
    })
}

/// Writes `report` to `path`, or when it cannot, to the fallback path;
/// false when it could not go to `path`.
fn write(report: &Report, path: &Path) -> bool {
    let Err(e) = report.write(path) else {
        return true;
    };
    let fallback = crate::report::fallback_path();
    match report.write(&fallback) {
        Ok(()) => eprintln!(
            "error: {e:#}; the report was written to {} instead",
            fallback.display()
        ),
        Err(e2) => eprintln!("error: {e:#}; and the fallback failed too: {e2:#}"),
    }
    false
}
