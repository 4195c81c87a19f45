//! A whole run: resolve the plan (map the pack), start the embedded relay
//! when no server is given, start the clients on their ramp, watch progress,
//! stop on time, on failure or when the caller's shutdown future completes,
//! and build the report.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::client::{self, Roster, RunSignals, SessionSettings, Shared};
use crate::collect::{self, Inputs};
use crate::config::{Credentials, Settings, Trust};
use crate::metrics::{Media, Metrics, State};
use crate::plan::{self, ClientPlan};
use crate::report::{Report, StopReason};

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            progress: true,
            summary: true,
            metrics_bound: None,
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Process exit code: 0, or [`EXIT_THRESHOLD`].
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
    let plan = plan::resolve(&s).map_err(BadInput)?;
    if let Some(path) = &s.report {
        crate::report::check_path(path).map_err(BadInput)?;
    }
    if let Some(path) = &s.timeline {
        crate::monitor::check_path(path).map_err(BadInput)?;
    }
    let metrics = Arc::new(Metrics::new(plan.clients.len()).with_stall_after(s.stall_after));

    // Without a server, the embedded relay is the target: pinned by hash.
    let mut relay = None;
    let (server, trust, label) = match &s.server_url {
        Some(u) => (u.clone(), s.trust.clone(), plan::server_label(&s)),
        None => {
            let jwt_secret = match &s.credentials {
                Credentials::Mint { secret, .. } => Some(secret.clone()),
                _ => None,
            };
            let r = synth_relay::Relay::start(synth_relay::RelayConfig {
                jwt_secret,
                ..synth_relay::RelayConfig::default()
            })
            .await
            .context("starting the embedded relay")?;
            let url: url::Url = r.url().parse().context("relay URL")?;
            let label = format!("embedded relay {url}");
            let trust = Trust::Pinned(vec![r.cert_sha256()]);
            relay = Some(r);
            (url, trust, label)
        }
    };

    let metrics_addr = match s.metrics_listen {
        Some(addr) => Some(crate::http::serve(addr, metrics.clone()).await?),
        None => None,
    };
    if let (Some((addr, _)), Some(tx)) = (&metrics_addr, opts.metrics_bound.take()) {
        let _ = tx.send(*addr);
    }
    let t0 = Instant::now();
    let (signals, control) = RunSignals::new(t0, s.max_concurrent_connects);
    let shared = Arc::new(Shared {
        settings: SessionSettings {
            pack: plan.pack.clone(),
            digests: synth_common::pack::FrameDigests::new(&plan.pack),
            server: server.clone(),
            credentials: s.credentials.clone(),
            connect_timeout: s.connect_timeout,
            connect_attempts: s.connect_attempts,
            heartbeat_interval: s.heartbeat_interval,
            batch_window: s.batch_window,
            late_after_ms: s.late_after.map(|d| d.as_secs_f64() * 1000.0),
            ack_wait: s.ack_wait,
        },
        roster: Roster::new(&plan.clients),
        signals,
        metrics: metrics.clone(),
    });
    let live = crate::transport::Liveness {
        keep_alive: s.keep_alive,
        idle_timeout: s.idle_timeout,
    };
    // The event loops' own delay: one probe on this runtime, one per client thread.
    tokio::spawn(
        metrics
            .loop_delay
            .probe(usize::MAX, shared.signals.stop.clone()),
    );
    let cores = crate::health::cores_available();
    let mut cpu = crate::health::CpuSampler::new(cores);
    cpu.sample(Instant::now(), crate::metrics::Process::now().cpu_seconds);
    let mut during = crate::monitor::Live::new(
        &metrics,
        crate::monitor::Setup {
            interval: s.timeline_interval,
            jsonl: s.timeline.as_deref(),
            thresholds: &s.thresholds,
            search: s.search.as_ref(),
            step_wait: s.connect_timeout,
            cores,
        },
    )
    .map_err(BadInput)?;
    if let Some(sc) = &plan.schedule {
        during = during.with_phases(&sc.phases);
    }

    let deadline = t0 + s.duration;
    let threads = s.threads.clamp(1, plan.clients.len().max(1));
    let mut per_thread: Vec<Vec<ClientPlan>> = (0..threads).map(|_| Vec::new()).collect();
    for c in &plan.clients {
        per_thread[c.index % threads].push(c.clone());
    }
    let bind = crate::transport::bind_for(&server);
    let nets = Arc::new(Nets {
        networks: s.networks.clone(),
        seed: s.seed,
        taps: Default::default(),
    });
    let mut tasks = Vec::with_capacity(threads);
    for (k, plans) in per_thread.into_iter().enumerate() {
        let t = spawn_thread(
            k,
            shared.clone(),
            trust.clone(),
            bind,
            live,
            plans,
            nets.clone(),
        );
        tasks.push(t.await?);
    }
    metrics.ready.store(true, Relaxed);
    tracing::info!(clients = plan.clients.len(), server = %label, "run started");

    let mut progress = opts
        .progress
        .then(|| Progress::new(std::io::stderr().is_terminal()));
    tokio::pin!(shutdown);
    // Sampling (CPU share, stalls) every second; the progress line every
    // second on a terminal, every 5 s otherwise.
    let every = if progress.as_ref().is_some_and(|p| p.tty) {
        1
    } else {
        5
    };
    let mut stalls = StallMonitor::new(plan.clients.len());
    let mut ticks = 0u64;
    let mut next_second = t0 + Duration::from_secs(1);
    let mut aborted = None;
    let stopped_by = loop {
        let wake = deadline
            .min(next_second)
            .min(metrics.started + during.next_wake());
        tokio::select! {
            _ = tokio::time::sleep_until(wake.into()) => {}
            _ = &mut shutdown => break StopReason::Signal,
        }
        let now = Instant::now();
        if now >= next_second {
            next_second += Duration::from_secs(1);
            if next_second <= now {
                next_second = now + Duration::from_secs(1);
            }
            cpu.sample(now, crate::metrics::Process::now().cpu_seconds);
            stalls.sample(&metrics);
            ticks += 1;
            if ticks % every == 0 {
                if let Some(p) = progress.as_mut() {
                    p.print(&metrics);
                }
            }
        }
        if metrics.started + during.next_wake() <= Instant::now() {
            match during.tick(&metrics) {
                Some(crate::monitor::Stop::Abort(line)) => {
                    aborted = Some(line);
                    break StopReason::Abort;
                }
                Some(crate::monitor::Stop::Search) => break StopReason::Search,
                None => {}
            }
            // The search's next step may start once this one has passed.
            control.open_step(during.step());
        }
        if Instant::now() >= deadline {
            break StopReason::Duration;
        }
        let states = metrics.states();
        if states[State::Failed as usize] == plan.clients.len() as u64 {
            break StopReason::Failure;
        }
    };
    if let Some(p) = progress.as_mut() {
        p.finish();
    }
    let states = metrics.states();
    let at_end = (
        (states[State::Connected as usize] + states[State::Stalled as usize]) as usize,
        plan.clients.len()
            - states[State::Pending as usize] as usize
            - states[State::Away as usize] as usize,
    );
    // An honest end: senders stop and wait (bounded) for their streams to
    // be acknowledged; once none is sending, receivers drain for a grace
    // period; then every session closes properly.
    control.stop();
    let senders_done = async {
        while shared.signals.sending.load(Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(s.ack_wait + Duration::from_secs(1), senders_done)
        .await
        .is_err()
    {
        tracing::warn!(
            "{} sessions were still sending {:?} after the stop",
            shared.signals.sending.load(Relaxed),
            s.ack_wait + Duration::from_secs(1)
        );
    }
    tokio::time::sleep(s.drain).await;
    control.close();
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
    cpu.sample(Instant::now(), crate::metrics::Process::now().cpu_seconds);
    let lateness_p99_ms = {
        let h = metrics.lateness.merged();
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(0.99) as f64 / 1000.0
        }
    };
    let health = crate::health::assess(
        lateness_p99_ms,
        crate::health::ServerDelays {
            credit_wait_s: metrics.sum(|c| c.credit_wait_us.load(Relaxed)) as f64 / 1e6,
            skipped_s: metrics.sum(|c| c.skipped_us.load(Relaxed)) as f64 / 1e6,
        },
        &cpu,
        metrics.loop_delay.figures(),
        &crate::health::Limits::default(),
    );

    let mut report = collect::build(
        &metrics,
        &Inputs {
            plan: &plan.clients,
            server: label,
            pack: s.pack.display().to_string(),
            stopped_by,
            thresholds: &s.thresholds,
            health,
            at_end,
            live: Some(during.finish(&metrics)),
            aborted,
            seed: s.seed,
            schedule: plan.schedule.as_ref(),
        },
    );
    report.networks = match nets.taps.lock() {
        Ok(taps) => collect::networks(&s.networks, &taps),
        Err(_) => Vec::new(),
    };
    if let Some(r) = relay {
        r.shutdown().await;
    }
    if let Some((_, task)) = &metrics_addr {
        task.abort();
    }
    // The summary first: whatever happens to the file, the results are seen.
    if opts.summary {
        print!("{}", report.summary());
    }
    let mut wrote_elsewhere = false;
    if let Some(path) = &s.report {
        if let Err(e) = report.write(path) {
            let fallback = crate::report::fallback_path();
            match report.write(&fallback) {
                Ok(()) => eprintln!(
                    "error: {e:#}; the report was written to {} instead",
                    fallback.display()
                ),
                Err(e2) => eprintln!("error: {e:#}; and the fallback failed too: {e2:#}"),
            }
            wrote_elsewhere = true;
        }
    }
    if report.clients.failed > 0 && report.clients.connected > 0 {
        if let Some(first) = metrics.first_failure.lock().ok().and_then(|f| f.clone()) {
            eprintln!(
                "warning: {} of {} clients failed; the first: {first}",
                report.clients.failed, report.clients.planned
            );
        }
    }
    if report.clients.connected == 0 {
        let first = metrics
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| "no client connected before the run ended".to_string());
        bail!("no client could connect: {first}");
    }
    let exit_code = if !report.passed {
        EXIT_THRESHOLD
    } else if wrote_elsewhere {
        1
    } else {
        0
    };
    Ok(Outcome {
        report,
        exit_code,
        metrics_addr: metrics_addr.map(|(a, _)| a),
        metrics,
    })
}

/// Starts a thread that runs `specs` on a current-thread runtime with its own
/// QUIC endpoint (UDP socket). A client's sender, receiver and connection
/// driver then share one thread and one cache, and never wake each other
/// across cores. Resolves once the endpoint is up; the returned receiver
/// completes when every client of the thread has finished.
///
/// A client with a network gets an endpoint of its own on an impaired socket
/// (its loss, delay and rate cap are its own, as a participant's access
/// link is); the others share the thread's plain endpoint, as if networks
/// did not exist.
async fn spawn_thread(
    k: usize,
    shared: Arc<Shared>,
    trust: Trust,
    bind: SocketAddr,
    live: crate::transport::Liveness,
    plans: Vec<ClientPlan>,
    nets: Arc<Nets>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<()>>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("clients-{k}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ =
                        ready_tx.send(Err(anyhow::Error::new(e).context("client thread runtime")));
                    return;
                }
            };
            rt.block_on(async move {
                let plain = plans.iter().any(|p| p.network.is_none());
                let endpoint = match plain
                    .then(|| crate::transport::client(&trust, bind, live, None))
                    .transpose()
                {
                    Ok(e) => e.map(|(e, _)| e),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut starts = Vec::with_capacity(plans.len());
                for plan in plans {
                    let (ep, quic) = match (plan.network, &endpoint) {
                        (None, Some(e)) => (e.clone(), None),
                        (Some(n), _) => match nets.endpoint(n, plan.index, &trust, bind, live) {
                            Ok(x) => x,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        },
                        // Built above whenever a client of the thread has no network.
                        (None, None) => {
                            let _ = ready_tx.send(Err(anyhow::anyhow!(
                                "client {}: no endpoint for a client without a network",
                                plan.index
                            )));
                            return;
                        }
                    };
                    starts.push((plan, ep, quic));
                }
                let _ = ready_tx.send(Ok(()));
                let stop = shared.signals.stop.clone();
                tokio::spawn(shared.metrics.loop_delay.probe(k, stop));
                let tasks: Vec<_> = starts
                    .into_iter()
                    .map(|(plan, ep, quic)| {
                        tokio::spawn(client::run(shared.clone(), ep, plan, quic))
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
                // The sessions are closed; give their CLOSE frames a moment to leave.
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
            let _ = done_tx.send(());
        })
        .context("starting a client thread")?;
    ready_rx
        .await
        .context("client thread ended before its endpoint was up")??;
    Ok(done_rx)
}

/// The run's networks and the impaired clients' taps, shared by the threads.
struct Nets {
    networks: Vec<crate::config::Network>,
    seed: u64,
    /// Every impaired client's tap, for the report.
    taps: std::sync::Mutex<Vec<crate::netem::Tap>>,
}

impl Nets {
    /// An endpoint on an impaired socket for client `index` of network `n`.
    fn endpoint(
        &self,
        n: usize,
        index: usize,
        trust: &Trust,
        bind: SocketAddr,
        live: crate::transport::Liveness,
    ) -> anyhow::Result<(
        web_transport_quinn::Client,
        Option<Arc<crate::netem::QuicStats>>,
    )> {
        let net = &self.networks[n];
        let model = synth_common::netem::Netem::new(
            net.profile.clone(),
            net.schedule.clone(),
            synth_common::netem::client_seed(self.seed, index),
        );
        let (client, impaired) = crate::transport::client(trust, bind, live, Some(model))?;
        let impaired = impaired.context("an impaired endpoint has its wrapper")?;
        let quic = Arc::new(crate::netem::QuicStats::default());
        if let Ok(mut taps) = self.taps.lock() {
            taps.push(crate::netem::Tap {
                client: index,
                network: n,
                impaired,
                quic: quic.clone(),
            });
        }
        Ok((client, Some(quic)))
    }
}

/// Counts each client's stalls: a client that is stalled at a sample and was
/// not at the one before begins a stall; each stalled sample adds the time
/// since the previous one.
struct StallMonitor {
    was: Vec<bool>,
    last: Instant,
}

impl StallMonitor {
    fn new(clients: usize) -> StallMonitor {
        StallMonitor {
            was: vec![false; clients],
            last: Instant::now(),
        }
    }

    fn sample(&mut self, m: &Metrics) {
        let now_us = m.started.elapsed().as_micros() as u64;
        let step = self.last.elapsed().as_micros() as u64;
        self.last = Instant::now();
        for (c, was) in m.clients.iter().zip(self.was.iter_mut()) {
            let stalled = c.state_at(now_us, m.stall_after_us) == State::Stalled;
            if stalled {
                if !*was {
                    c.stalls.fetch_add(1, Relaxed);
                }
                c.stalled_us.fetch_add(step, Relaxed);
            }
            *was = stalled;
        }
    }
}

/// The live progress line.
struct Progress {
    tty: bool,
    last: Instant,
    sent: u64,
    recv: u64,
    printed: bool,
}

impl Progress {
    fn new(tty: bool) -> Progress {
        Progress {
            tty,
            last: Instant::now(),
            sent: 0,
            recv: 0,
            printed: false,
        }
    }

    fn print(&mut self, m: &Metrics) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-3);
        let sent = m.sum(|c| c.sent_bytes.iter().map(|b| b.load(Relaxed)).sum());
        let recv = m.sum(|c| c.recv_bytes.iter().map(|b| b.load(Relaxed)).sum());
        let out = (sent - self.sent) as f64 * 8.0 / secs / 1e6;
        let inn = (recv - self.recv) as f64 * 8.0 / secs / 1e6;
        (self.last, self.sent, self.recv) = (now, sent, recv);
        let st = m.states();
        let lateness = m.lateness.merged();
        let p99 = if lateness.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", lateness.value_at_quantile(0.99) as f64 / 1000.0)
        };
        let errors = m.sum(|c| c.send_errors.load(Relaxed))
            + m.connect_failures
                .iter()
                .map(|f| f.load(Relaxed))
                .sum::<u64>();
        let line = format!(
            "[{:>6.1}s] clients {}/{} connected ({} stalled, {} connecting, {} reconnecting, {} failed) | out {:.1} Mbit/s in {:.1} Mbit/s | lateness p99 {} ms | errors {} | audio sent {} missing {}",
            m.started.elapsed().as_secs_f64(),
            st[State::Connected as usize] + st[State::Stalled as usize],
            m.clients.len(),
            st[State::Stalled as usize],
            st[State::Connecting as usize],
            st[State::Reconnecting as usize],
            st[State::Failed as usize],
            out,
            inn,
            p99,
            errors,
            m.sum(|c| c.sent_packets[Media::Audio as usize].load(Relaxed)),
            m.sum(|c| c.missing[0].load(Relaxed) + c.missing[1].load(Relaxed)),
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        self.printed = true;
    }

    fn finish(&mut self) {
        if self.tty && self.printed {
            eprintln!();
        }
    }
}
