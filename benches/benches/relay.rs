//! What the relay can take: packets a second on one core, from its own counters
//! and its thread's CPU time, with real WebTransport clients on loopback.
//!
//! The relay runs alone on a current-thread runtime in its own thread, so
//! everything it does (QUIC included) is on that thread; the clients run on a
//! one-worker runtime beside it. Each client sends small audio packets (an
//! 80-byte frame in its `MediaPacket`), one uni stream each, as fast as it can
//! or at a fixed rate, for a few seconds. Then the relay is asked for its stats
//! and its thread's CPU time, and one line is printed per run:
//!
//! - `drain_only`: the relay counts and relays nothing; 20 sessions as fast
//!   as they can for 5 s, then 200 sessions at 80 packets/s each for 5 s;
//! - `paced_only`: 200 sessions at 80 packets/s each for 8 s, drain-only;
//! - `fan_out`: 50 sessions in rooms of 5 at 80 packets/s each for 5 s, every
//!   packet relayed to the 4 others.
//!
//! Each line gives the packets sent, the packets the relay received (and per
//! second of the run), its deliveries (and drops at full queues), and the relay
//! thread's CPU time: seconds, µs per packet and the packets/s one core would take.
//!
//! Run: `cargo bench -p synth-benches --bench relay` (all three, about 30 s),
//! or some of them: `cargo bench -p synth-benches --bench relay -- fan_out`.
//! The figures are for the build that ran (printed: release under `cargo bench`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_benches::proc::thread_cpu;
use synth_common::wire::{MediaFields, MediaPrefix};
use synth_relay::{Relay, RelayConfig, RelayStats};
use tokio::sync::{mpsc, oneshot};
use url::Url;
use web_transport_quinn::{Client, ClientBuilder, Session};

/// Bound on every single wait: a hang becomes a panic, not a figure.
const T: Duration = Duration::from_secs(20);

/// One run: drain-only or relaying, sessions, room size, seconds, packets/s
/// per session (`None`: as fast as possible).
type Run = (bool, usize, usize, u64, Option<u64>);

const PROBES: [(&str, &[Run]); 3] = [
    (
        "drain_only",
        &[(true, 20, 1, 5, None), (true, 200, 1, 5, Some(80))],
    ),
    ("paced_only", &[(true, 200, 1, 8, Some(80))]),
    ("fan_out", &[(false, 50, 5, 5, Some(80))]),
];

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) only check it runs.
    let bench = std::env::args().any(|a| a == "--bench");
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !bench {
        eprintln!("relay: a measurement, run it with `cargo bench -p synth-benches --bench relay`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("the clients' runtime");
    for (name, runs) in PROBES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        for &(drain_only, sessions, room_size, secs, pps) in runs {
            rt.block_on(throughput(drain_only, sessions, room_size, secs, pps));
        }
    }
}

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(T, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn audio(p: &mut MediaPrefix, seq: u64) -> Vec<u8> {
    let len = 80;
    let f = MediaFields {
        media_type: synth_common::wire::media_type::AUDIO,
        sequence: seq,
        timestamp_ms: 1_700_000_000_000.0 + seq as f64,
        duration_ms: 33.3,
        key: true,
        layer: 0,
    };
    let mut v = p.build(&f, len).to_vec();
    v.extend((0..len).map(|i| (i * 7 + seq as usize) as u8));
    v
}

/// Connects, reads the greeting (the relay is serving the session), then
/// drains everything else it is sent in the background.
async fn join(client: &Client, url: Url) -> Session {
    let session = within("connect", client.connect(url))
        .await
        .expect("the relay accepts the session");
    for _ in 0..2 {
        let mut s = within("greeting", session.accept_uni())
            .await
            .expect("a greeting stream");
        within("greeting", s.read_to_end(1 << 16))
            .await
            .expect("the greeting");
    }
    let s = session.clone();
    tokio::spawn(async move {
        while let Ok(mut r) = s.accept_uni().await {
            tokio::spawn(async move {
                let _ = r.read_to_end(8 << 20).await;
            });
        }
    });
    let s = session.clone();
    tokio::spawn(async move { while s.read_datagram().await.is_ok() {} });
    session
}

/// Runs the relay alone on one thread (a current-thread runtime: everything
/// it does, QUIC included, is on that thread), has `sessions` clients send it
/// small packets for `secs` (as fast as they can, or `pps` a second each),
/// and prints packets/s received and the relay thread's CPU per packet.
/// `room_size` > 1 relays within rooms of that size.
async fn throughput(
    drain_only: bool,
    sessions: usize,
    room_size: usize,
    secs: u64,
    pps: Option<u64>,
) {
    type Probe = oneshot::Sender<(Duration, RelayStats)>;
    let (info_tx, info_rx) = oneshot::channel();
    let (probe_tx, mut probe_rx) = mpsc::channel::<Probe>(1);
    let relay_thread = std::thread::Builder::new()
        .name("relay".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the relay's runtime");
            rt.block_on(async move {
                let relay = Relay::start(RelayConfig {
                    drain_only,
                    ..RelayConfig::default()
                })
                .await
                .expect("the relay starts");
                let _ = info_tx.send((relay.url(), relay.cert_sha256()));
                while let Some(reply) = probe_rx.recv().await {
                    let _ = reply.send((thread_cpu(), relay.stats()));
                }
                relay.shutdown().await;
            })
        })
        .expect("the relay's thread");
    let (url, hash) = within("relay thread", info_rx).await.unwrap();
    let probe = || async {
        let (tx, rx) = oneshot::channel();
        probe_tx.send(tx).await.unwrap();
        within("probe", rx).await.unwrap()
    };
    let client = ClientBuilder::new()
        .with_server_certificate_hashes(vec![hash.to_vec()])
        .expect("a client pinning the relay's certificate");
    let base: Url = url.parse().unwrap();
    let mut peers = Vec::new();
    for i in 0..sessions {
        let mut u = base.clone();
        u.set_path(&format!("/lobby/tp{i}/room{}", i / room_size.max(1)));
        peers.push(join(&client, u).await);
    }
    let (cpu0, s0) = probe().await;
    let t0 = Instant::now();
    let stop = t0 + Duration::from_secs(secs);
    let mut senders = Vec::new();
    for (i, session) in peers.iter().enumerate() {
        let session = session.clone();
        let user = format!("tp{i}");
        let phase = Duration::from_micros(i as u64 * 997 % 20_000);
        senders.push(tokio::spawn(async move {
            let mut pre = MediaPrefix::new(&user);
            let mut seq = 0;
            let mut tick = pps.map(|n| {
                let period = Duration::from_secs(1) / n as u32;
                tokio::time::interval_at(tokio::time::Instant::now() + phase, period)
            });
            while Instant::now() < stop {
                if let Some(t) = &mut tick {
                    t.tick().await;
                }
                let pkt = Bytes::from(audio(&mut pre, seq));
                seq += 1;
                let Ok(mut s) = session.open_uni().await else {
                    break;
                };
                if s.write_chunk(pkt).await.is_err() {
                    break;
                }
                let _ = s.finish();
            }
            seq
        }));
    }
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    // Let the relay finish what is in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu1, s1) = probe().await;
    let wall = t0.elapsed().as_secs_f64();
    let got = s1.total().audio_packets - s0.total().audio_packets;
    let deliveries = s1.total().relayed_to - s0.total().relayed_to;
    let drops = s1.relay_drops - s0.relay_drops;
    let cpu = (cpu1 - cpu0).as_secs_f64();
    eprintln!(
        "relay throughput ({} build, drain_only={drain_only}, {sessions} sessions, rooms of {room_size}, {}): \
         sent {sent}, relay received {got} packets in {wall:.1} s = {:.0}/s, {deliveries} deliveries ({drops} dropped at full queues); \
         relay thread CPU {cpu:.2} s = {:.1} us/packet => ~{:.0} packets/s per core",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        pps.map_or("as fast as possible".to_string(), |n| format!("{n} packets/s each")),
        got as f64 / wall,
        cpu * 1e6 / got.max(1) as f64,
        got as f64 / cpu.max(1e-9),
    );
    for p in &peers {
        p.close(0, b"bye");
    }
    drop(probe_tx);
    relay_thread.join().unwrap();
}
