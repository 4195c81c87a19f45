//! What each participant is expected to send and receive besides media, per
//! second, once its meeting is up: its heartbeats and, for a `browser`, its
//! control traffic ([`ClientProfile`]), as upstream's web client and server
//! make it. `validate` and the report show it; the relay's counts are
//! checked against it.
//!
//! A meeting's participants are the plan's clients in it, as they start
//! (every one in, its planned media on, no screen share): scripts (mutes,
//! churn, turns) and clients of other processes change the figures, and are
//! not counted. For a `browser` in a meeting where `p` (peer, medium) pairs
//! publish to it:
//!
//! | | sent | received |
//! |---|---|---|
//! | heartbeat | 0.2 (datagrams) | each other participant's rate (relayed) |
//! | DIAGNOSTICS | 2 per (peer, medium) received | each other browser's, relayed to all |
//! | HEALTH | 0.2 once a peer publishes | none (not relayed) |
//! | RTT | 1 probe (5 in its first 2 s) | its echoes |
//!
//! A `bot` sends `1 / heartbeat_interval` heartbeats on streams and nothing
//! else; it receives the others' heartbeats and the browsers' DIAGNOSTICS.

use std::collections::HashMap;

use serde::Serialize;
pub use synth_report::model::{Expected, Rates};

use crate::config::ClientProfile;
use crate::plan::ClientPlan;

/// A `browser`'s heartbeats per second (upstream's web client sends one
/// every 5 s, `HEARTBEAT_KEEPALIVE_INTERVAL_MS`).
pub const BROWSER_HEARTBEATS_PER_S: f64 = 0.2;
/// DIAGNOSTICS per second per (peer, medium) a browser receives (one every 500 ms).
pub const DIAGNOSTICS_PER_S: f64 = 2.0;
/// HEALTH per second (one every 5 s).
pub const HEALTH_PER_S: f64 = 0.2;
/// RTT probes per second once a browser has chosen its server.
pub const RTT_PER_S: f64 = 1.0;

/// Each client's expected rates, in plan order; `heartbeat_s` is a `bot`'s
/// heartbeat period in seconds.
pub fn expected(clients: &[ClientPlan], heartbeat_s: f64) -> Vec<Expected> {
    let mut meetings: HashMap<&str, Vec<&ClientPlan>> = HashMap::new();
    for c in clients {
        meetings.entry(&c.meeting_id).or_default().push(c);
    }
    // What each sends, knowing its meeting.
    let sent: Vec<Rates> = clients
        .iter()
        .map(|c| {
            let peers = &meetings[c.meeting_id.as_str()];
            let published: usize = peers
                .iter()
                .filter(|p| p.index != c.index)
                .map(|p| media(p))
                .sum();
            match c.profile {
                ClientProfile::Bot => Rates {
                    heartbeat: 1.0 / heartbeat_s,
                    ..Rates::default()
                },
                ClientProfile::Browser => Rates {
                    heartbeat: BROWSER_HEARTBEATS_PER_S,
                    diagnostics: DIAGNOSTICS_PER_S * published as f64,
                    health: if published > 0 { HEALTH_PER_S } else { 0.0 },
                    rtt: RTT_PER_S,
                },
            }
        })
        .collect();
    let index: HashMap<usize, usize> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| (c.index, k))
        .collect();
    clients
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let mut received = Rates::default();
            for p in &meetings[c.meeting_id.as_str()] {
                if p.index == c.index {
                    continue;
                }
                let theirs = &sent[index[&p.index]];
                received.heartbeat += theirs.heartbeat;
                received.diagnostics += theirs.diagnostics;
            }
            received.rtt = sent[k].rtt;
            Expected {
                sent: sent[k],
                received,
            }
        })
        .collect()
}

/// The media a client publishes from its start (audio, camera).
fn media(c: &ClientPlan) -> usize {
    usize::from(c.audio_track.is_some()) + usize::from(c.video_track.is_some())
}

/// The mean over `clients` of their expected rates, and how many of them
/// are browsers and bots.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Fleet {
    /// Clients with `client_profile: browser`.
    pub browsers: usize,
    /// Clients with `client_profile: bot`.
    pub bots: usize,
    /// Per participant per second, the mean over the plan's clients.
    pub per_participant: Expected,
}

/// The fleet of `clients`: profiles counted, rates averaged.
pub fn fleet(clients: &[ClientPlan], heartbeat_s: f64) -> Fleet {
    let all = expected(clients, heartbeat_s);
    let k = if all.is_empty() {
        0.0
    } else {
        1.0 / all.len() as f64
    };
    let mut mean = Expected::default();
    for e in &all {
        mean.sent.add_scaled(&e.sent, k);
        mean.received.add_scaled(&e.received, k);
    }
    let browsers = clients
        .iter()
        .filter(|c| c.profile == ClientProfile::Browser)
        .count();
    Fleet {
        browsers,
        bots: clients.len() - browsers,
        per_participant: mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(index: usize, meeting: &str, profile: ClientProfile, av: bool) -> ClientPlan {
        ClientPlan {
            index,
            user_id: format!("u{index}"),
            meeting_id: meeting.into(),
            audio_track: av.then_some(0),
            video_track: av.then_some(1),
            target_bps: [0.0; 2],
            start_after: Default::default(),
            phase: Default::default(),
            step: 0,
            network: None,
            group: None,
            adapt: false,
            layers: Vec::new(),
            view: None,
            profile,
            behaviour: Default::default(),
        }
    }

    fn meeting(n: usize, profile: ClientProfile) -> Vec<ClientPlan> {
        (0..n).map(|i| client(i, "m", profile, true)).collect()
    }

    #[test]
    fn browsers_in_meetings_of_2_5_and_10_as_upstreams_web_client() {
        // Control per browser: sends 0.2 + 4(N−1) + 0.2 + 1, receives
        // 0.2(N−1) + 4(N−1)² + 1 (upstream's cadence, audio and camera on).
        for (n, sends, receives) in [(2, 5.4, 5.2), (5, 17.4, 65.8), (10, 37.4, 326.8)] {
            let f = fleet(&meeting(n, ClientProfile::Browser), 1.0);
            let p = f.per_participant;
            assert!((p.sent.total() - sends).abs() < 1e-9, "{n}: {p:?}");
            assert!((p.received.total() - receives).abs() < 1e-9, "{n}: {p:?}");
            assert_eq!((f.browsers, f.bots), (n, 0));
        }
    }

    #[test]
    fn bots_send_heartbeats_only_and_hear_the_browsers() {
        let f = fleet(&meeting(5, ClientProfile::Bot), 0.5);
        let p = f.per_participant;
        assert_eq!(
            p.sent,
            Rates {
                heartbeat: 2.0,
                ..Rates::default()
            }
        );
        assert_eq!(
            p.received,
            Rates {
                heartbeat: 8.0,
                ..Rates::default()
            }
        );
        // One bot among two browsers: it receives their DIAGNOSTICS (each
        // reports 2 peers × 2 media × 2/s), sends none.
        let mut mixed = meeting(3, ClientProfile::Browser);
        mixed[0].profile = ClientProfile::Bot;
        let e = expected(&mixed, 1.0);
        assert_eq!(e[0].sent.diagnostics, 0.0);
        assert_eq!(e[0].received.diagnostics, 16.0);
        assert_eq!(e[1].received.diagnostics, 8.0);
        assert_eq!(e[0].received.heartbeat, 0.4);
        assert_eq!(e[1].received.heartbeat, 1.2);
    }

    #[test]
    fn a_viewer_reports_on_the_publishers_and_is_reported_on_by_none() {
        let mut m = meeting(3, ClientProfile::Browser);
        m[2] = client(2, "m", ClientProfile::Browser, false);
        let e = expected(&m, 1.0);
        // The viewer reports on 2 publishers × 2 media; each publisher on 1.
        assert_eq!(e[2].sent.diagnostics, 8.0);
        assert_eq!(e[0].sent.diagnostics, 4.0);
        // Alone in a meeting: no DIAGNOSTICS, no HEALTH; probes all the same.
        let e = expected(&[client(0, "x", ClientProfile::Browser, true)], 1.0);
        assert_eq!(
            e[0].sent,
            Rates {
                heartbeat: 0.2,
                rtt: 1.0,
                ..Rates::default()
            }
        );
    }
}
