//! `client_profile`: what `browser` and `bot` clients send and receive
//! besides media, counted by the relay, against upstream's web client's
//! cadence (DIAGNOSTICS every 500 ms per (peer, medium), HEALTH every 5 s,
//! an RTT probe a second, a heartbeat datagram every 5 s) and upstream's
//! native clients' (a heartbeat a second on a stream, one CONNECTION).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use synth_relay::{Relay, RelayConfig, RelayStats as Stats};
use synth_replayer::run;

use crate::support::*;

/// Meetings of 2, 5 and 10 browsers and one of 5 bots, all with audio and
/// camera (the test pack: Opus 20 ms, 30 fps video).
const MEETINGS: &str = r#"
duration: 23s
ramp_up_delay_ms: 0
groups:
  - {count: 2, user_id: "two-{index}", meeting_id: "two"}
  - {count: 5, user_id: "five-{index}", meeting_id: "five"}
  - {count: 10, user_id: "ten-{index}", meeting_id: "ten"}
  - {count: 5, user_id: "bot-{index}", meeting_id: "bots", client_profile: bot}
"#;

/// Audio packets and video frames a second of each publisher.
const MEDIA_PER_S: f64 = 50.0 + 30.0;

/// What one participant of a meeting sends, by kind, summed over a
/// meeting's participants: (kind, count) from the relay's stats.
fn by_kind(s: &Stats, prefix: &str, sent_by_relay: bool) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (user, u) in &s.per_user {
        if !user.starts_with(prefix) {
            continue;
        }
        let t = if sent_by_relay {
            &u.sent_by_type
        } else {
            &u.received_by_type
        };
        for (kind, n) in [
            ("media", t.audio.total() + t.video.total()),
            ("heartbeat", t.heartbeat.total()),
            ("heartbeat datagrams", t.heartbeat.datagram),
            ("diagnostics", t.diagnostics.total()),
            ("health", t.health.total()),
            ("rtt", t.rtt.total()),
            ("connection", t.connection.total()),
        ] {
            *out.entry(kind).or_insert(0) += n;
        }
    }
    out
}

/// Heartbeats of the participants whose id starts with `prefix` that told
/// a change of their flags between the Unix ms `window.0` and `window.1`.
fn flag_changes(s: &Stats, prefix: &str, window: (u64, u64)) -> u64 {
    s.per_user
        .iter()
        .filter(|(user, _)| user.starts_with(prefix))
        .flat_map(|(_, u)| &u.flag_changes)
        .filter(|c| (window.0..window.1).contains(&c.unix_ms))
        .count() as u64
}

fn unix_ms() -> u64 {
    synth_common::clock::unix_ms_u64()
}

/// Checks `got` (packets of one kind over `secs`, summed over `n`
/// participants, coming from `streams` timers) against `per_s` per
/// participant: within 5 %, or for a kind too rare for that over the
/// window, within one packet per timer (its phase against the window's).
fn near(what: &str, got: u64, timers: (usize, usize), per_s: f64, secs: f64) {
    within_of(what, got, 0.0, timers, per_s, secs);
}

/// As [`near`], for what the relay delivered: up to `dropped` fewer is
/// right when its queues for slow receivers were full, and up to two
/// seconds' worth fewer when the relay fell behind and still held them at
/// the window's end (both seen on a loaded machine running the debug build).
fn delivered(what: &str, got: u64, dropped: u64, timers: (usize, usize), per_s: f64, secs: f64) {
    let behind = 2.0 * per_s * timers.0 as f64;
    within_of(what, got, dropped as f64 + behind, timers, per_s, secs);
}

/// `got` within 5 % (or one packet per timer) of `per_s` per participant
/// over `secs`, or up to `short` fewer.
fn within_of(
    what: &str,
    got: u64,
    short: f64,
    (n, streams): (usize, usize),
    per_s: f64,
    secs: f64,
) {
    let want = per_s * n as f64 * secs;
    let slack = (want * 0.05).max(streams as f64);
    let got_f = got as f64;
    assert!(
        got_f <= want + slack && got_f + short >= want - slack,
        "{what}: {got} over {secs:.1} s, expected {want:.1} ± {slack:.1} ({per_s} per participant per second), or up to {short:.0} fewer (dropped or still queued at the relay)"
    );
}

/// Deliveries the relay dropped at the full queues of the users whose ids
/// start with `prefix` (counted at their senders, all in the same meetings).
fn dropped(s: &Stats, prefix: &str) -> u64 {
    s.per_user
        .iter()
        .filter(|(user, _)| user.starts_with(prefix))
        .map(|(_, u)| u.relay_drops)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_send_upstreams_cadence_and_bots_todays() {
    // No mailbox: its drops of datagrams (tested with the relay) would take
    // packets out of the counts before they are read.
    let relay = within(
        10,
        "relay start",
        Relay::start(RelayConfig {
            mailbox: 0,
            ..RelayConfig::default()
        }),
    )
    .await
    .expect("relay starts");
    let s = settings(MEETINGS, &relay);
    let run = tokio::spawn(run::run(s, quiet(), std::future::pending()));
    // A steady window: after the browsers' first 2 s of fast probes and
    // their peers' first DIAGNOSTICS, before the end.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (from, t0, unix0) = (relay.stats(), Instant::now(), unix_ms());
    // A whole number of the 5 s periods (HEALTH, heartbeats).
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (to, secs, window) = (
        relay.stats(),
        t0.elapsed().as_secs_f64(),
        (unix0, unix_ms()),
    );
    let outcome = within(30, "run", run).await.unwrap().expect("run succeeds");
    assert_eq!(outcome.report.clients.connected, 22);

    for (prefix, n) in [("two-", 2usize), ("five-", 5), ("ten-", 10)] {
        let peers = (n - 1) as f64;
        // Timers: one per participant (what it sends), one per pair (what
        // it receives of each peer).
        let (own, pairs) = ((n, n), (n, n * (n - 1)));
        let delta = |sent_by_relay| {
            let (a, b) = (
                by_kind(&from, prefix, sent_by_relay),
                by_kind(&to, prefix, sent_by_relay),
            );
            b.into_iter()
                .map(|(k, v)| (k, v - a.get(k).copied().unwrap_or(0)))
                .collect::<BTreeMap<_, _>>()
        };
        // What each browser sent (upstream's web client, audio and camera on).
        let sent = delta(false);
        let what = |k: &str| format!("meeting of {n}, sent, {k}");
        near(&what("media"), sent["media"], own, MEDIA_PER_S, secs);
        // A heartbeat every 5 s, and one at each change of its flags (the
        // speech track's pauses turn `speaking` on and off). The changes are
        // counted by the relay's clock and the heartbeats by its counters,
        // read a moment apart, and a keep-alive due as a flag changes
        // carries the change itself: one more packet per participant either
        // way besides its timer's phase.
        let changes = flag_changes(&to, prefix, window);
        near(
            &what("heartbeats"),
            sent["heartbeat"] - changes,
            (n, 2 * n),
            0.2,
            secs,
        );
        assert_eq!(
            sent["heartbeat"], sent["heartbeat datagrams"],
            "heartbeats are datagrams"
        );
        near(
            &what("DIAGNOSTICS"),
            sent["diagnostics"],
            own,
            4.0 * peers,
            secs,
        );
        near(&what("HEALTH"), sent["health"], own, 0.2, secs);
        near(&what("RTT probes"), sent["rtt"], own, 1.0, secs);
        // What each received: the others' media, relayed heartbeats and
        // DIAGNOSTICS, its echoes.
        let got = delta(true);
        let what = |k: &str| format!("meeting of {n}, received, {k}");
        let drops = dropped(&to, prefix) - dropped(&from, prefix);
        delivered(
            &what("media"),
            got["media"],
            drops,
            pairs,
            MEDIA_PER_S * peers,
            secs,
        );
        let relayed_changes = changes * (n as u64 - 1);
        delivered(
            &what("heartbeats"),
            got["heartbeat"] - relayed_changes,
            drops,
            (n, 2 * n * (n - 1)),
            0.2 * peers,
            secs,
        );
        delivered(
            &what("DIAGNOSTICS"),
            got["diagnostics"],
            drops,
            pairs,
            4.0 * peers * peers,
            secs,
        );
        // An echo that finds its session's queue full is counted in the
        // relay's total only.
        let all_drops = to.relay_drops - from.relay_drops;
        delivered(&what("RTT echoes"), got["rtt"], all_drops, own, 1.0, secs);
        assert_eq!(got["health"], 0, "HEALTH is never relayed");
        // A browser sends no CONNECTION packet at all.
        assert_eq!(by_kind(&to, prefix, false)["connection"], 0);
    }

    // Bots: today's traffic, a heartbeat a second on a stream (and one at a
    // change of flags, at most every 250 ms), one CONNECTION per session,
    // no control packets.
    let (a, b) = (by_kind(&from, "bot-", false), by_kind(&to, "bot-", false));
    let changes = flag_changes(&to, "bot-", window);
    let periodic = b["heartbeat"] - a["heartbeat"] - changes;
    near("bots, heartbeats", periodic, (5, 10), 1.0, secs);
    assert_eq!(b["heartbeat datagrams"], 0);
    assert_eq!(b["connection"], 5);
    for k in ["diagnostics", "health", "rtt"] {
        assert_eq!(b[k], 0, "bots send no {k}");
    }

    // The report says the same of its clients.
    let r = &outcome.report;
    assert_eq!((r.control.browsers, r.control.bots), (17, 5));
    assert!(r.control.sent.diagnostics > 0 && r.control.received.diagnostics > 0);
    assert_eq!(r.control.dropped, 0);
    assert!(r.server_signals.server_rtt_ms.count > 0);
    assert!(r.server_signals.server_rtt_ms.p50.is_some());
    let e = &r.control.expected_per_participant;
    // (2·5.4 + 5·17.4 + 10·37.4 + 5·1) / 22 sent per participant.
    assert!(
        (e.sent.total() - (10.8 + 87.0 + 374.0 + 5.0) / 22.0).abs() < 1e-9,
        "{e:?}"
    );
}

/// `server_urls`: a browser connects to every server, probes each for 2 s
/// and keeps one, closing the others, as upstream's web client elects its
/// server; a bot takes the first server only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_elects_one_of_several_servers_and_closes_the_others() {
    use std::sync::atomic::Ordering::Relaxed;
    use synth_relay::SessionEnd;
    use synth_replayer::config::{self, Overrides, Settings, Trust};
    let start = || async {
        within(10, "relay start", Relay::start(RelayConfig::default()))
            .await
            .expect("relay starts")
    };
    let (a, b) = (start().await, start().await);
    let yaml = format!(
        r#"
duration: 6s
ramp_up_delay_ms: 0
server_urls: ["{}", "{}"]
groups:
  - {{count: 3, user_id: "web-{{index}}", meeting_id: "m"}}
  - {{count: 1, user_id: "bot-{{index}}", meeting_id: "m", client_profile: bot}}
"#,
        a.url(),
        b.url()
    );
    let o = Overrides {
        pack: Some(pack().to_path_buf()),
        ..Overrides::default()
    };
    let mut s = Settings::resolve(config::parse(&yaml).unwrap(), &o, &|_| None).unwrap();
    s.trust = Trust::Pinned(vec![a.cert_sha256(), b.cert_sha256()]);
    // Hermetic: the default `/version` port on loopback may be anybody's.
    s.wire.health_url = None;
    let outcome = within(40, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    assert_eq!(outcome.report.clients.connected, 4);
    let (sa, sb) = (a.stats(), b.stats());
    for k in 0..3 {
        let user = format!("web-{k}");
        let sessions: Vec<_> = [&sa, &sb]
            .iter()
            .filter_map(|s| s.per_user.get(&user))
            .flat_map(|u| u.session_log.clone())
            .collect();
        assert_eq!(
            sessions.len(),
            2,
            "{user}: a session on each server: {sessions:?}"
        );
        // The one not chosen was closed by the client after its probes.
        let closed: Vec<_> = sessions
            .iter()
            .filter(|r| r.end == SessionEnd::Closed && r.joined_unix_ms.is_none())
            .collect();
        assert_eq!(closed.len(), 1, "{user}: {sessions:?}");
        // Media went to the chosen server only.
        let media: Vec<u64> = [&sa, &sb]
            .iter()
            .map(|s| s.per_user.get(&user).map_or(0, |u| u.audio_packets))
            .collect();
        assert_eq!(
            media.iter().filter(|&&n| n > 0).count(),
            1,
            "{user}: {media:?}"
        );
        // It probed both: at least two echoes from each before choosing.
        for s in [&sa, &sb] {
            let u = &s.per_user[&user];
            assert!(u.received_by_type.rtt.datagram >= 2, "{user}: {u:?}");
        }
        assert_eq!(outcome.metrics.clients[k].elections.load(Relaxed), 1);
    }
    // The bot: the first server only.
    assert!(sa.per_user.contains_key("bot-0"));
    assert!(!sb.per_user.contains_key("bot-0"));
    assert_eq!(outcome.metrics.clients[3].elections.load(Relaxed), 0);
}
