//! The relay: an in-process WebTransport server that behaves like the
//! videocall-rs server (`docs/src/protocol.md`), for the embedded run, the
//! tests and the benches.
//!
//! [`Relay::start`] binds a UDP socket (with large buffers, see
//! [`RelayConfig::udp_buffer_bytes`]), serves TLS 1.3 with a self-signed
//! certificate that clients pin by [`Relay::cert_sha256`], and accepts
//! sessions on either URL form (`admission`). Each session (`session`)
//! gets SESSION_ASSIGNED and MEETING_STARTED, joins its meeting (`room`),
//! and from its first non-RTT packet on has its packets relayed to every
//! other member: media on a new uni stream each, other packets as datagrams
//! when small. What each user sent is counted (`stats`) so tests can check
//! a sender against what the relay saw, and what the relay sent to it.
//! Inbound datagrams go through a small mailbox, as upstream's do
//! ([`RelayConfig::mailbox`]); drops at a full receiver's queue make it send
//! CONGESTION to the whole meeting.
//!
//! It speaks either of upstream's wires on uni streams ([`RelayConfig::wire`]):
//! main's, one packet per stream, or RnD's, length-prefixed frames on a
//! few persistent streams (`synth_common::framing`). With
//! [`RelayConfig::health_listen`] it also answers `GET /healthz` and
//! `GET /version` over plain HTTP (`health`), as upstream's health port does.
//!
//! Upstream RnD's simulcast is kept (`layers`): a session's VIEWPORT and
//! LAYER_PREFERENCE withhold from it the video and layers it does not want,
//! and a publisher of layers gets LAYER_HINTs; all counted in the stats.
//!
//! The relay can also be told to misbehave (`fault`): drop a share of the
//! audio and video it would deliver ([`RelayConfig::drop_rate`]) and stall
//! every reader for a while ([`RelayConfig::stall`]), counting exactly what
//! it did so tests can check receivers against it.

mod admission;
mod capture;
mod cli;
mod fault;
mod health;
mod layers;
mod room;
mod route;
mod session;
mod stats;
pub mod tls;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use synth_common::framing::Wire;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use admission::Refusal;
pub use cli::{run_cli, RelayArgs};
pub use fault::Stall;
pub use stats::{
    ByType, FlagChange, HintsSent, InjectedDrops, RelayStats, SessionEnd, SessionRecord,
    StallWindow, Transports, UserStats, ViewUpdates, FLAG_CHANGES_MAX, SESSION_LOG_MAX,
    VIDEO_LAYERS,
};

use capture::Capture;
pub use capture::MAX_FILE_BYTES as CAPTURE_MAX_FILE_BYTES;
use fault::Stalls;
use room::Rooms;
use session::Live;
pub use synth_common::net::UDP_BUFFER_BYTES;
pub use tls::Identity;

/// How long PARTICIPANT_LEFT waits for the same user to reconnect (upstream: 2 s).
pub const DEFAULT_LEAVE_GRACE: Duration = Duration::from_secs(2);

/// Seed of [`RelayConfig::drop_rate`]'s drops unless given.
pub const DEFAULT_DROP_SEED: u64 = 1;

/// Inbound datagrams a session holds before it drops more (upstream: the
/// capacity of an actix mailbox, `DEFAULT_CAPACITY`).
pub const DEFAULT_MAILBOX: usize = 16;

/// QUIC idle timeout and keep-alive, as upstream's defaults.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How long shutdown waits for sessions to close before dropping them.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// UDP address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Secret for `/lobby?token=JWT` (HS256); without one, tokens are refused.
    pub jwt_secret: Option<Vec<u8>>,
    /// Only the token form (like `FEATURE_MEETING_MANAGEMENT=true` upstream).
    pub require_token: bool,
    /// Count what arrives but relay nothing (RTT echo and meeting events still
    /// go out): for benchmarking the sending side.
    pub drain_only: bool,
    /// SO_RCVBUF and SO_SNDBUF of the UDP socket.
    pub udp_buffer_bytes: usize,
    /// Certificate and key; a self-signed one is made when `None`.
    pub cert: Option<Identity>,
    /// Delay before PARTICIPANT_LEFT, cancelled if the user reconnects meanwhile.
    pub leave_grace: Duration,
    /// Probability, in [0, 1], that a delivery of an audio or video packet to
    /// one receiver is dropped instead (counted per receiver: `dropped_audio`,
    /// `dropped_video`). Heartbeats, key-frame requests and other packets are
    /// never dropped. 0 turns drops off.
    pub drop_rate: f64,
    /// Seed of the drops.
    pub drop_seed: u64,
    /// Stop reading from every session for a while, then catch up.
    pub stall: Option<Stall>,
    /// Refuse a session (HTTP 403, counted as `max_sessions` in the
    /// rejections) while this many are open: a server at its capacity, for
    /// testing a capacity search. `None`: no limit.
    pub max_sessions: Option<usize>,
    /// Write each user's VP9 frames (video, screen share) as received into
    /// IVF files in this directory (created if missing):
    /// `{user_id}-video.ivf`, `{user_id}-screen.ivf`.
    pub capture: Option<PathBuf>,
    /// Inbound datagrams a session holds until its reader takes them
    /// (upstream's session mailbox); more are dropped, counted as
    /// `mailbox_drops`, and tell nobody. 0: no mailbox, the reader takes
    /// datagrams straight from QUIC (whose own buffer is the bound).
    pub mailbox: usize,
    /// How packets travel on uni streams, both ways: one per stream
    /// (upstream main, the default) or framed on persistent streams
    /// (upstream RnD). Datagrams are the same on both.
    pub wire: Wire,
    /// Serve `GET /healthz` and `GET /version` over plain HTTP on this TCP
    /// address (port 0 picks one: [`Relay::health_addr`]). Off when `None`.
    pub health_listen: Option<SocketAddr>,
}

impl Default for RelayConfig {
    fn default() -> RelayConfig {
        RelayConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            jwt_secret: None,
            require_token: false,
            drain_only: false,
            udp_buffer_bytes: UDP_BUFFER_BYTES,
            cert: None,
            leave_grace: DEFAULT_LEAVE_GRACE,
            drop_rate: 0.0,
            drop_seed: DEFAULT_DROP_SEED,
            stall: None,
            max_sessions: None,
            capture: None,
            mailbox: DEFAULT_MAILBOX,
            wire: Wire::PerPacket,
            health_listen: None,
        }
    }
}

/// State shared by the accept loop and every session.
#[derive(Debug)]
pub(crate) struct Shared {
    jwt_secret: Option<Vec<u8>>,
    require_token: bool,
    pub(crate) drain_only: bool,
    pub(crate) leave_grace: Duration,
    pub(crate) drop_rate: f64,
    pub(crate) drop_seed: u64,
    pub(crate) stalls: Option<Stalls>,
    max_sessions: Option<usize>,
    pub(crate) capture: Option<Capture>,
    pub(crate) mailbox: usize,
    pub(crate) wire: Wire,
    /// Sessions admitted and not yet over.
    open: AtomicU64,
    pub(crate) rooms: Rooms,
    pub(crate) shutdown: watch::Sender<bool>,
    live: Mutex<HashMap<u64, Arc<Live>>>,
    /// Tallies of closed sessions, merged per user.
    retired: Mutex<BTreeMap<String, UserStats>>,
    rejections: Mutex<BTreeMap<&'static str, u64>>,
    order: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    relay_drops: AtomicU64,
    congestion_sent: AtomicU64,
    /// Whether a stream has broken the framed wire yet (logged once).
    framing_error_seen: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent; go on after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// The state of a relay run with `cfg`, before anyone has connected.
    pub(crate) fn new(cfg: &RelayConfig) -> Shared {
        let (shutdown, _) = watch::channel(false);
        Shared {
            jwt_secret: cfg.jwt_secret.clone(),
            require_token: cfg.require_token,
            drain_only: cfg.drain_only,
            leave_grace: cfg.leave_grace,
            drop_rate: cfg.drop_rate,
            drop_seed: cfg.drop_seed,
            stalls: cfg.stall.map(Stalls::new),
            max_sessions: cfg.max_sessions,
            capture: None,
            mailbox: cfg.mailbox,
            wire: cfg.wire,
            open: AtomicU64::new(0),
            rooms: Rooms::default(),
            shutdown,
            live: Mutex::default(),
            retired: Mutex::default(),
            rejections: Mutex::default(),
            order: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            relay_drops: AtomicU64::new(0),
            congestion_sent: AtomicU64::new(0),
            framing_error_seen: AtomicBool::new(false),
        }
    }

    pub(crate) fn live(&self) -> MutexGuard<'_, HashMap<u64, Arc<Live>>> {
        lock(&self.live)
    }

    pub(crate) fn next_order(&self) -> u64 {
        self.order.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn count_drops(&self, n: u64) {
        if n > 0 {
            self.relay_drops.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// True the first time a uni stream breaks the framed wire.
    pub(crate) fn first_framing_error(&self) -> bool {
        !self.framing_error_seen.swap(true, Ordering::Relaxed)
    }

    pub(crate) fn count_congestion(&self) {
        self.congestion_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Moves a closed session's tally into the retired totals.
    pub(crate) fn retire(&self, session_id: u64) {
        let Some(live) = self.live().remove(&session_id) else {
            return;
        };
        let mut retired = lock(&self.retired);
        for (user, s) in live.snapshot() {
            retired.entry(user).or_default().merge_later(&s);
        }
    }

    fn reject(&self, reason: &'static str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        *lock(&self.rejections).entry(reason).or_default() += 1;
    }

    fn stats(&self) -> RelayStats {
        let mut per_user = lock(&self.retired).clone();
        let mut live: Vec<Arc<Live>> = self.live().values().cloned().collect();
        live.sort_by_key(|l| l.member.order);
        for l in &live {
            for (user, s) in l.snapshot() {
                per_user.entry(user).or_default().merge_later(&s);
            }
        }
        let mut injected_drops = InjectedDrops::default();
        let (mut mailbox_drops, mut malformed_streams) = (0, 0);
        let (mut viewport_filtered, mut layer_filtered) = (0, 0);
        let (mut view_updates, mut hints_sent) = (ViewUpdates::default(), HintsSent::default());
        for u in per_user.values() {
            injected_drops.audio += u.dropped_audio;
            injected_drops.video += u.dropped_video;
            mailbox_drops += u.mailbox_drops;
            malformed_streams += u.malformed_streams;
            viewport_filtered += u.viewport_filtered;
            layer_filtered += u.layer_filtered;
            view_updates.add(&u.view_updates);
            hints_sent.add(&u.hints_sent);
        }
        RelayStats {
            sessions_accepted: self.accepted.load(Ordering::Relaxed),
            sessions_rejected: self.rejected.load(Ordering::Relaxed),
            rejections: lock(&self.rejections)
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            sessions_active: live.len() as u64,
            meetings: self.rooms.sizes(),
            relay_drops: self.relay_drops.load(Ordering::Relaxed),
            congestion_sent: self.congestion_sent.load(Ordering::Relaxed),
            mailbox_drops,
            malformed_streams,
            injected_drops,
            viewport_filtered,
            layer_filtered,
            view_updates,
            hints_sent,
            stalls: self
                .stalls
                .as_ref()
                .map(Stalls::snapshot)
                .unwrap_or_default(),
            per_user,
        }
    }
}

/// A running relay. Dropping it stops it too (without waiting); prefer [`Relay::shutdown`].
#[derive(Debug)]
pub struct Relay {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    health_addr: Option<SocketAddr>,
    cert_sha256: [u8; 32],
    accept_task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Binds, spawns the accept loop on the current runtime and returns at once.
    pub async fn start(cfg: RelayConfig) -> anyhow::Result<Relay> {
        if !(0.0..=1.0).contains(&cfg.drop_rate) {
            anyhow::bail!("drop rate {} is not a probability in [0, 1]", cfg.drop_rate);
        }
        let mut shared = Shared::new(&cfg);
        if let Some(dir) = &cfg.capture {
            let cap = Capture::new(dir)
                .with_context(|| format!("creating the capture directory {}", dir.display()))?;
            shared.capture = Some(cap);
        }
        let shared = Arc::new(shared);
        let identity = match cfg.cert {
            Some(id) => id,
            None => Identity::self_signed().context("generating the relay's certificate")?,
        };
        let cert_sha256 = identity.cert_sha256;
        let server_config = server_config(identity)?;
        let socket = synth_common::net::udp_socket(cfg.listen, cfg.udp_buffer_bytes)
            .with_context(|| format!("binding UDP {}", cfg.listen))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .with_context(|| format!("starting QUIC on {}", cfg.listen))?;
        let local_addr = endpoint.local_addr().context("relay socket address")?;
        let health_addr = match cfg.health_listen {
            Some(addr) => Some(health::serve(addr, cfg.wire, shared.shutdown.subscribe()).await?),
            None => None,
        };

        if shared.stalls.is_some() {
            // `Stall::after` counts from here, once the relay is up.
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Some(stalls) = &shared.stalls {
                    stalls.run(shared.shutdown.subscribe()).await;
                }
            });
        }
        let server = web_transport_quinn::Server::new(endpoint.clone());
        let accept_task = tokio::spawn(accept_loop(shared.clone(), server, endpoint));
        tracing::info!(
            %local_addr,
            drain_only = cfg.drain_only,
            drop_rate = cfg.drop_rate,
            stall = ?cfg.stall,
            capture = ?cfg.capture,
            mailbox = cfg.mailbox,
            wire = %cfg.wire,
            health = ?health_addr,
            "relay listening"
        );
        Ok(Relay {
            shared,
            local_addr,
            health_addr,
            cert_sha256,
            accept_task: Some(accept_task),
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound TCP address of `GET /healthz` and `GET /version`
    /// ([`RelayConfig::health_listen`]); `None` without one.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_addr
    }

    /// Which wire the relay speaks on uni streams.
    pub fn wire(&self) -> Wire {
        self.shared.wire
    }

    /// `https://IP:PORT` to connect to (an unspecified listen address becomes loopback).
    pub fn url(&self) -> String {
        let mut a = self.local_addr;
        match a.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => a.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => a.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("https://{a}")
    }

    /// SHA-256 of the relay's certificate (DER), for clients to pin.
    pub fn cert_sha256(&self) -> [u8; 32] {
        self.cert_sha256
    }

    /// A snapshot of what the relay has counted.
    pub fn stats(&self) -> RelayStats {
        self.shared.stats()
    }

    /// Stops accepting, closes every session, waits (briefly) for them to end,
    /// and returns the final stats.
    pub async fn shutdown(mut self) -> RelayStats {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
        self.shared.stats()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

fn server_config(id: Identity) -> anyhow::Result<quinn::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 configuration")?
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)
        .context("the relay's certificate and key do not match")?;
    tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    let quic =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC TLS configuration")?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        IDLE_TIMEOUT.try_into().expect("30 s fits a QUIC varint"),
    ));
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

async fn accept_loop(
    shared: Arc<Shared>,
    mut server: web_transport_quinn::Server,
    endpoint: quinn::Endpoint,
) {
    let mut sessions = JoinSet::new();
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            req = server.accept() => match req {
                Some(req) => {
                    sessions.spawn(handle_request(shared.clone(), req));
                }
                None => break,
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stop.wait_for(|v| *v) => break,
        }
    }
    // Refuse new connections, let sessions close themselves, then the endpoint.
    endpoint.set_server_config(None);
    shared.shutdown.send_replace(true);
    let drained = tokio::time::timeout(SHUTDOWN_WAIT, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        sessions.abort_all();
    }
    // Sessions aborted above did not close their files.
    if let Some(cap) = &shared.capture {
        cap.finish_all();
    }
    endpoint.close(0u32.into(), b"relay shut down");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// A place among the open sessions, given back when the session is over.
struct Seat(Arc<Shared>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// A seat for one more session, unless `max_sessions` are open.
    fn seat(self: &Arc<Self>) -> Option<Seat> {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        let seat = Seat(self.clone());
        match self.max_sessions {
            Some(max) if open >= max as u64 => None,
            _ => Some(seat),
        }
    }
}

async fn refuse(req: web_transport_quinn::Request) {
    let conn = req.conn().clone();
    // Upstream just drops the request; a 403 tells the client why it failed.
    let _ = req.reject(http_forbidden()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
    conn.close(0u32.into(), b"refused");
}

async fn handle_request(shared: Arc<Shared>, req: web_transport_quinn::Request) {
    let remote = req.conn().remote_address();
    match admission::admit(&req.url, shared.jwt_secret.as_deref(), shared.require_token) {
        Err(refusal) => {
            shared.reject(refusal.reason());
            tracing::info!(%remote, url = %synth_common::redact::url(&req.url), %refusal, "session refused");
            refuse(req).await;
        }
        Ok(who) => {
            let Some(_seat) = shared.seat() else {
                shared.reject("max_sessions");
                tracing::info!(%remote, "session refused: max_sessions are open");
                refuse(req).await;
                return;
            };
            let session = match req.ok().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%remote, "handshake failed: {e}");
                    return;
                }
            };
            shared.accepted.fetch_add(1, Ordering::Relaxed);
            session::serve(shared, session, who).await;
        }
    }
}

fn http_forbidden() -> web_transport_quinn::http::StatusCode {
    web_transport_quinn::http::StatusCode::FORBIDDEN
}
