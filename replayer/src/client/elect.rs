//! A `browser`'s choice of server when the config lists several
//! (`server_urls`), as upstream's web client makes it
//! (`connection_manager.rs` `start_election`, `find_best_connection`): a
//! session to every server at once, RTT probes on each for the election's
//! 2 s (one every 200 ms), then the server with the lowest mean echo time
//! of at least two is kept and the other sessions are closed. The extra
//! sessions are real load: each server sends the candidate its greeting
//! and the room's traffic, which is read and dropped meanwhile.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use synth_common::wire::{self, media_type, packet_type};
use tokio::task::JoinSet;
use web_transport_quinn::Session;

use crate::client::connect::{attempt, ConnectFailure};
use crate::client::context::Shared;
use crate::client::receiver::send_probe;
use crate::metrics::{ClientStats, Control};
use crate::session::control::{ELECTION, ELECTION_PROBE_EVERY};

/// Echo samples a server needs to win outright (upstream's
/// `ELECTION_MIN_RTT_SAMPLES`).
const MIN_SAMPLES: usize = 2;

/// The largest stream a candidate reads (and drops) while it is probed.
const MAX_STREAM: usize = wire::MAX_STREAM_BYTES;

/// One server's candidate session and what its probes measured.
struct Candidate {
    /// Its place in the config's list.
    index: usize,
    session: Session,
    /// Its handshake's length.
    took: Duration,
    /// Echo times, ms.
    rtts: Vec<f64>,
}

/// Connects `user` (client `client` of the plan) to every one of `urls` through `endpoint`, probes each
/// for the election, and returns the session kept (with its handshake's
/// length and its place in `urls`); the others are closed. Fails with the
/// first server's failure when no session opened.
pub(super) async fn elect(
    shared: &Arc<Shared>,
    stats: &Arc<ClientStats>,
    endpoint: &web_transport_quinn::Client,
    urls: &[url::Url],
    (user, client): (&str, usize),
) -> Result<(Session, Duration, usize), ConnectFailure> {
    let mut set = JoinSet::new();
    for (index, url) in urls.iter().enumerate() {
        let (shared, stats) = (shared.clone(), stats.clone());
        let (endpoint, url, user) = (endpoint.clone(), url.clone(), user.to_owned());
        set.spawn(async move {
            let (session, took) = attempt(&shared, &endpoint, &url).await?;
            let rtts = probe(&session, &shared, &stats, (&user, client)).await;
            Ok::<_, ConnectFailure>(Candidate {
                index,
                session,
                took,
                rtts,
            })
        });
    }
    let (mut open, mut failures) = (Vec::new(), Vec::new());
    while let Some(done) = set.join_next().await {
        match done {
            Ok(Ok(c)) => open.push(c),
            Ok(Err(f)) => failures.push(f),
            // A probe task cannot panic short of a bug; its server is out.
            Err(_) => {}
        }
    }
    let measured: Vec<(usize, &[f64])> = open.iter().map(|c| (c.index, &c.rtts[..])).collect();
    let Some(k) = winner(&measured) else {
        return Err(failures
            .into_iter()
            .next()
            .unwrap_or_else(|| ConnectFailure {
                reason: crate::metrics::FailReason::Transport,
                message: "no server could be reached".into(),
            }));
    };
    let won = open.swap_remove(k);
    for lost in open {
        lost.session.close(0, b"another server was chosen");
    }
    stats.elections.fetch_add(1, Relaxed);
    Ok((won.session, won.took, won.index))
}

/// Which of the open candidates to keep, given each one's place in the
/// config's list and its echo times: the lowest mean among those with
/// [`MIN_SAMPLES`], else among those with one, else the first in the
/// config's order. `None` when none is open.
fn winner(open: &[(usize, &[f64])]) -> Option<usize> {
    let best = |min: usize| {
        open.iter()
            .enumerate()
            .filter(|(_, (_, rtts))| !rtts.is_empty() && rtts.len() >= min)
            .map(|(k, (_, rtts))| (k, rtts.iter().sum::<f64>() / rtts.len() as f64))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| k)
    };
    best(MIN_SAMPLES).or_else(|| best(1)).or_else(|| {
        open.iter()
            .enumerate()
            .min_by_key(|(_, (index, _))| *index)
            .map(|(k, _)| k)
    })
}

/// Probes `session` for the election: an RTT datagram every 200 ms, the
/// echoes timed; whatever else the server sends is read and dropped.
/// Returns the echo times, ms.
async fn probe(
    session: &Session,
    shared: &Shared,
    stats: &ClientStats,
    (user, client): (&str, usize),
) -> Vec<f64> {
    let start = Instant::now();
    let end = tokio::time::sleep_until((start + ELECTION).into());
    let mut tick = tokio::time::interval(ELECTION_PROBE_EVERY);
    tokio::pin!(end);
    let mut rtts = Vec::new();
    loop {
        tokio::select! {
            _ = &mut end => break,
            _ = tick.tick() => {
                let stamp = start.elapsed().as_secs_f64() * 1000.0;
                send_probe(session, stats, user, stamp);
            }
            s = session.accept_uni() => match s {
                Ok(mut s) => {
                    tokio::spawn(async move {
                        let _ = s.read_to_end(MAX_STREAM).await;
                    });
                }
                Err(_) => break,
            },
            d = session.read_datagram() => match d {
                Ok(d) => {
                    if let Some(stamp) = echo(&d, user) {
                        let ms = (start.elapsed().as_secs_f64() * 1000.0 - stamp).max(0.0);
                        stats.control_received[Control::Rtt as usize].fetch_add(1, Relaxed);
                        shared.metrics.server_rtt.record((ms * 1000.0) as u64, client);
                        rtts.push(ms);
                    }
                }
                Err(_) => break,
            },
        }
    }
    rtts
}

/// The stamp of `d` when it is the echo of `user`'s RTT probe.
fn echo(d: &[u8], user: &str) -> Option<f64> {
    let p = wire::parse(d).ok()?;
    if p.packet_type != packet_type::MEDIA {
        return None;
    }
    let m = wire::parse_media(p.data).ok()?;
    (m.media_type == media_type::RTT && m.user_id == user.as_bytes()).then_some(m.timestamp_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_the_clients_own_rtt_probe() {
        assert_eq!(echo(&wire::rtt("me", 12.5), "me"), Some(12.5));
        assert_eq!(echo(&wire::rtt("other", 12.5), "me"), None);
        assert_eq!(
            echo(&wire::heartbeat("me", 1.0, Default::default()), "me"),
            None
        );
        assert_eq!(echo(&[0xff, 0xff], "me"), None);
    }

    #[test]
    fn the_lowest_mean_of_two_samples_wins_as_upstreams_election() {
        let (fast, slow, once) = ([1.0, 3.0], [5.0, 5.0], [0.5]);
        // Listed second, measured twice and fastest: chosen.
        assert_eq!(winner(&[(0, &slow[..]), (1, &fast[..])]), Some(1));
        // One sample, however fast, loses to two.
        assert_eq!(winner(&[(0, &once[..]), (1, &slow[..])]), Some(1));
        // Only single samples: the fastest of them.
        assert_eq!(winner(&[(0, &[4.0][..]), (1, &once[..])]), Some(1));
        // No echo at all: the first in the config's order.
        assert_eq!(winner(&[(2, &[][..]), (1, &[][..])]), Some(1));
        assert_eq!(winner(&[]), None);
    }
}
