//! The client threads: each runs its clients on a current-thread runtime of
//! its own, with the QUIC endpoints [`Endpoints`] makes for them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use synth_report::model::NetworkReport;
use tokio::sync::oneshot;

use crate::client::{self, Shared};
use crate::config::{ClientProfile, Network, Settings, Trust};
use crate::netem::{QuicStats, Tap};
use crate::plan::ClientPlan;
use crate::transport::Liveness;

/// Starts a thread that runs `plans` on a current-thread runtime with its own
/// QUIC endpoint (UDP socket). A client's sender, receiver and connection
/// driver then share one thread and one cache, and never wake each other
/// across cores. Resolves once the endpoint is up; the returned receiver
/// completes when every client of the thread has finished.
///
/// A client with a network gets an endpoint of its own on an impaired socket
/// (its loss, delay and rate cap are its own, as a participant's access
/// link is); the others share the thread's plain endpoint of their profile
/// (`browser` and `bot` keep their sessions alive differently), as if
/// networks did not exist.
pub(super) async fn spawn_thread(
    k: usize,
    shared: Arc<Shared>,
    endpoints: Arc<Endpoints>,
    plans: Vec<ClientPlan>,
) -> anyhow::Result<oneshot::Receiver<()>> {
    let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
    let (done_tx, done_rx) = oneshot::channel();
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
            rt.block_on(run_clients(k, shared, &endpoints, plans, ready_tx));
            let _ = done_tx.send(());
        })
        .context("starting a client thread")?;
    ready_rx
        .await
        .context("client thread ended before its endpoint was up")??;
    Ok(done_rx)
}

/// The work of client thread `k`: its clients' endpoints made (`ready` is
/// told whether they could be), then every client run to its end.
async fn run_clients(
    k: usize,
    shared: Arc<Shared>,
    endpoints: &Endpoints,
    plans: Vec<ClientPlan>,
    ready: oneshot::Sender<anyhow::Result<()>>,
) {
    let starts = match endpoints.for_clients(plans) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let stop = shared.signals.stop.clone();
    tokio::spawn(shared.metrics.loop_delay.probe(k, stop));
    let tasks: Vec<_> = starts
        .into_iter()
        .map(|(plan, (ep, quic))| tokio::spawn(client::run(shared.clone(), ep, plan, quic)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    // The sessions are closed; give their CLOSE frames a moment to leave.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A client's endpoint, and where its QUIC statistics go (with a network).
type Endpoint = (web_transport_quinn::Client, Option<Arc<QuicStats>>);

/// The QUIC endpoints of the client threads: how they reach the server, the
/// run's networks, and the tap of every impaired client (for the report).
pub(super) struct Endpoints {
    trust: Trust,
    bind: SocketAddr,
    /// How a `bot`'s and a `browser`'s sessions stay alive.
    liveness: [Liveness; 2],
    networks: Vec<Network>,
    seed: u64,
    /// Every impaired client's tap, for the report.
    taps: Mutex<Vec<Tap>>,
}

impl Endpoints {
    /// The endpoints of the run of `s`, trusting the server as `trust`, bound to `bind`.
    pub(super) fn new(s: &Settings, trust: Trust, bind: SocketAddr) -> Endpoints {
        Endpoints {
            trust,
            bind,
            liveness: [
                Liveness {
                    keep_alive: s.keep_alive,
                    idle_timeout: s.idle_timeout,
                },
                Liveness {
                    keep_alive: s.browser_liveness.0,
                    idle_timeout: s.browser_liveness.1,
                },
            ],
            networks: s.networks.clone(),
            seed: s.seed,
            taps: Mutex::default(),
        }
    }

    /// The endpoint of each of `plans` (one thread's clients): one plain
    /// endpoint per profile shared by those without a network, an impaired
    /// one for each client with a network. Runs on the thread's runtime.
    fn for_clients(&self, plans: Vec<ClientPlan>) -> anyhow::Result<Vec<(ClientPlan, Endpoint)>> {
        let mut plain: [Option<web_transport_quinn::Client>; 2] = [None, None];
        for (k, live) in self.liveness.iter().enumerate() {
            if plans.iter().any(|p| p.network.is_none() && profile(p) == k) {
                let (e, _) = crate::transport::client(&self.trust, self.bind, *live, None)?;
                plain[k] = Some(e);
            }
        }
        let mut starts = Vec::with_capacity(plans.len());
        for plan in plans {
            let ep = match (plan.network, &plain[profile(&plan)]) {
                (None, Some(e)) => (e.clone(), None),
                (Some(n), _) => self.impaired(n, &plan)?,
                // Built above whenever a client of the thread has no network.
                (None, None) => anyhow::bail!(
                    "client {}: no endpoint for a client without a network",
                    plan.index
                ),
            };
            starts.push((plan, ep));
        }
        Ok(starts)
    }

    /// An endpoint on an impaired socket for `plan`'s client, of network `n`.
    fn impaired(&self, n: usize, plan: &ClientPlan) -> anyhow::Result<Endpoint> {
        let index = plan.index;
        let net = &self.networks[n];
        let model = synth_common::netem::Netem::new(
            net.profile.clone(),
            net.schedule.clone(),
            synth_common::netem::client_seed(self.seed, index),
        );
        let (client, impaired) = crate::transport::client(
            &self.trust,
            self.bind,
            self.liveness[profile(plan)],
            Some(model),
        )?;
        let impaired = impaired.context("an impaired endpoint has its wrapper")?;
        let quic = Arc::new(QuicStats::default());
        if let Ok(mut taps) = self.taps.lock() {
            taps.push(Tap {
                client: index,
                network: n,
                impaired,
                quic: quic.clone(),
            });
        }
        Ok((client, Some(quic)))
    }

    /// Each network as its impaired clients saw it, for the report.
    pub(super) fn report(&self) -> Vec<NetworkReport> {
        match self.taps.lock() {
            Ok(taps) => crate::collect::networks(&self.networks, &taps),
            Err(_) => Vec::new(),
        }
    }
}

/// Index of `plan`'s profile in [`Endpoints`]'s liveness: `bot` 0, `browser` 1.
fn profile(plan: &ClientPlan) -> usize {
    usize::from(plan.profile == ClientProfile::Browser)
}
