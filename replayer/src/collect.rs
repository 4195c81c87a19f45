//! The collector: the report built from the run's live metrics, the plan
//! and what the live side recorded, once at the end of a run (also when it
//! was stopped by a signal).
//!
//! The report's model, its verdicts and its text live in `synth-report`;
//! this is the one place that reads the engine's counters into it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use synth_common::netem::Counters;
use synth_common::quality::{Exact, Freezes};
use synth_report::health::Health;
use synth_report::hist;
use synth_report::model::{
    Adaptation, Behaviour, Clients, Concealment, Control, ControlCounts, Counts, Event,
    ExactReport, Expected, FreezeReport, LinkReport, MediaReport, Meeting, NetworkReport,
    Percentiles, PhaseReport, ProcessReport, QuicReport, Rate, Received, Report, Screen,
    SearchReport, Sent, Sessions, Signals, StopReason, Timeline, SCHEMA, SCHEMA_VERSION,
};
use synth_report::num::{bitrates, quantile, round3, round6};
use synth_report::threshold::Threshold;

use crate::metrics::{
    ClientStats, Control as ControlKind, Media, Metrics, PeerView, Process, State, REASONS,
};
use crate::netem::Tap;
use crate::plan::ClientPlan;

/// The adapting clients' switches and time per rendition; `None` when none adapts.
fn adaptation(m: &Metrics, plan: &[ClientPlan]) -> Option<Adaptation> {
    let mut a = Adaptation::default();
    for (c, p) in m.clients.iter().zip(plan) {
        if !p.adapt {
            continue;
        }
        a.clients += 1;
        a.switches_down += c.switches[0].load(Relaxed);
        a.switches_up += c.switches[1].load(Relaxed);
        if let Ok(r) = c.renditions.lock() {
            for t in r.iter() {
                *a.time_per_rendition_s.entry(t.name.clone()).or_insert(0.0) += t.us as f64 / 1e6;
            }
        }
    }
    for v in a.time_per_rendition_s.values_mut() {
        *v = round3(*v);
    }
    (a.clients > 0).then_some(a)
}

/// What the live side recorded while the run went ([`crate::monitor::Live::finish`]).
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The timeline.
    pub timeline: Timeline,
    /// What happened when.
    pub events: Vec<Event>,
    /// The capacity search, when there was one.
    pub search: Option<SearchReport>,
    /// Each phase with its own figures.
    pub phases: Vec<PhaseReport>,
    /// The server beside the run, when the config watches it.
    pub server_cost: Option<synth_report::model::ServerCost>,
}

/// What the report needs besides the metrics.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The plan (each client's target bitrate included).
    pub plan: &'a [ClientPlan],
    /// Server shown in the report.
    pub server: String,
    /// Pack path.
    pub pack: String,
    /// Why the run ended.
    pub stopped_by: StopReason,
    /// Thresholds to check.
    pub thresholds: &'a [Threshold],
    /// The generator's own health.
    pub health: Health,
    /// Clients connected (or stalled) when the run stopped, and clients started by then.
    pub at_end: (usize, usize),
    /// The timeline, the events, the search and the phases, from [`crate::monitor::Live::finish`].
    pub live: Option<Recorded>,
    /// The seed of the run's random choices.
    pub seed: u64,
    /// The behaviour schedule, when the config has one.
    pub schedule: Option<&'a crate::plan::ScheduleInfo>,
    /// The verdict line of the threshold that aborted the run.
    pub aborted: Option<String>,
    /// What the plan expects of one participant per second besides media.
    pub expected: Expected,
}

/// The behaviour section: the schedule's plan and what the clients did.
fn behaviour(m: &Metrics, plan: &[ClientPlan], sc: &crate::plan::ScheduleInfo) -> Behaviour {
    let sum = |f: fn(&ClientStats) -> &std::sync::atomic::AtomicU64| m.sum(|c| f(c).load(Relaxed));
    let screen = Media::Screen as usize;
    Behaviour {
        schedule_digest: format!("{:016x}", sc.digest),
        planned: Sessions {
            joins: sc.planned.joins as u64,
            leaves: (sc.planned.leaves + sc.planned.churn_drops + sc.planned.storm_drops) as u64,
            rejoins: (sc.planned.rejoins + sc.planned.storm_rejoins) as u64,
            storm_drops: sc.planned.storm_drops as u64,
        },
        measured: Sessions {
            joins: sum(|c| &c.joins),
            leaves: sum(|c| &c.leaves),
            rejoins: sum(|c| &c.rejoins),
            storm_drops: sum(|c| &c.storm_drops),
        },
        rejoin_ms: Percentiles::from_us(&m.rejoin.merged()),
        viewers: plan.iter().filter(|p| p.behaviour.viewer).count() as u64,
        speaking_heartbeats: sum(|c| &c.speaking_heartbeats),
        actions: sum(|c| &c.actions),
        screen: Screen {
            shares: sum(|c| &c.screen_shares),
            sent_packets: m.sum(|c| c.sent_packets[screen].load(Relaxed)),
            sent_bytes: m.sum(|c| c.sent_bytes[screen].load(Relaxed)),
            received_packets: m.sum(|c| c.recv_packets[screen].load(Relaxed)),
            received_bytes: m.sum(|c| c.recv_bytes[screen].load(Relaxed)),
        },
        phases: Vec::new(),
    }
}

/// One (sender, receiver, media) pair's loss at the end: exact for senders
/// of this process the receiver joined with, inferred from the span otherwise.
fn pair_loss(
    m: &Metrics,
    view: &PeerView,
    sender: Option<usize>,
    i: usize,
) -> (u64, Option<Exact>) {
    let c = &view.media[i].seq;
    match (view.expect_from, sender.and_then(|s| m.clients.get(s))) {
        (Some(from), Some(s)) if view.ours => {
            let mut until = s.next_seq[i].load(Relaxed);
            if let Some(u) = view.until {
                until = until.min(u[i]);
            }
            let e = Exact::check(c, from[i], until);
            (e.lost, Some(e))
        }
        _ => (c.missing(), None),
    }
}

/// Per media, what the report computes from every (sender, receiver) pair.
#[derive(Debug, Default)]
struct Pairs {
    lost: u64,
    exact: ExactReport,
    rates: Vec<f64>,
    /// Audio: (slots, concealed) per pair.
    slots: Vec<(u64, u64)>,
    freezes: Freezes,
    watched_ms: f64,
    /// Video: per receiver, (freezes, frozen ms).
    per_receiver: Vec<(u64, f64)>,
    /// Lost, per receiving client (in the metrics' order).
    lost_by_receiver: Vec<u64>,
}

fn pairs(m: &Metrics, index: &BTreeMap<&str, usize>, i: usize) -> Pairs {
    let mut p = Pairs::default();
    for c in &m.clients {
        let Ok(peers) = c.peers.lock() else {
            p.lost_by_receiver.push(0);
            continue;
        };
        let mut mine = Freezes::default();
        let mut heard = false;
        let mut mine_lost = 0;
        for (id, view) in peers.iter() {
            let sum = &view.media[i];
            let (lost, exact) = pair_loss(m, view, index.get(id.as_str()).copied(), i);
            p.lost += lost;
            mine_lost += lost;
            let slots = match exact {
                Some(e) => {
                    p.exact.pairs += 1;
                    p.exact.expected += e.expected;
                    p.exact.lost += e.lost;
                    e.expected
                }
                None => sum.seq.span(),
            };
            if slots == 0 && sum.seq.received == 0 {
                continue;
            }
            heard = true;
            if let Some(r) = sum.rate() {
                p.rates.push(r);
            }
            p.slots.push((slots, (lost + sum.late).min(slots)));
            p.freezes.merge(&sum.freezes);
            mine.merge(&sum.freezes);
            p.watched_ms += sum.watched_ms;
        }
        if heard {
            p.per_receiver.push((mine.count, mine.total_ms));
        }
        p.lost_by_receiver.push(mine_lost);
    }
    p
}

/// Builds the report from the run's measurements.
pub fn build(m: &Metrics, inp: &Inputs) -> Report {
    let index: BTreeMap<&str, usize> = inp
        .plan
        .iter()
        .map(|p| (p.user_id.as_str(), p.index))
        .collect();
    let [pa, pv] = [pairs(m, &index, 0), pairs(m, &index, 1)];
    let meetings = meetings(m, inp.plan, [&pa, &pv]);
    let p = Process::now();
    let mut r = Report {
        schema: SCHEMA.to_string(),
        version: SCHEMA_VERSION,
        server: inp.server.clone(),
        pack: inp.pack.clone(),
        elapsed_s: round3(m.started.elapsed().as_secs_f64()),
        stopped_by: inp.stopped_by,
        clients: clients(m, inp),
        connect_ms: Percentiles::from_us(&m.connect.merged()),
        connect_failures: REASONS
            .iter()
            .enumerate()
            .map(|(i, r)| (r.to_string(), m.connect_failures[i].load(Relaxed)))
            .collect(),
        audio: media(m, inp.plan, pa, Media::Audio),
        video: media(m, inp.plan, pv, Media::Video),
        heartbeats: Counts {
            sent: m.sum(|c| c.sent_packets[Media::Heartbeat as usize].load(Relaxed)),
            received: m.sum(|c| c.recv_packets[Media::Heartbeat as usize].load(Relaxed)),
        },
        server_signals: signals(m),
        control: control(m, inp),
        send_lateness_ms: Percentiles::from_us(&m.lateness.merged()),
        generator: inp.health.clone(),
        process: ProcessReport {
            cpu_seconds: round3(p.cpu_seconds),
            peak_rss_bytes: p.peak_rss_bytes,
            rss_bytes: p.rss_bytes,
        },
        meetings,
        thresholds: Vec::new(),
        aborted: inp.aborted.clone(),
        passed: true,
        timeline: None,
        events: Vec::new(),
        search: None,
        server_cost: None,
        merged_from: Vec::new(),
        networks: Vec::new(),
        adaptation: adaptation(m, inp.plan),
        seed: Some(inp.seed),
        behaviour: inp.schedule.map(|sc| behaviour(m, inp.plan, sc)),
    };
    if let Some(rec) = inp.live.clone() {
        r.timeline = Some(rec.timeline);
        r.events = rec.events;
        r.search = rec.search;
        r.server_cost = rec.server_cost;
        if let Some(b) = r.behaviour.as_mut() {
            b.phases = rec.phases;
        }
    }
    r.judge(inp.thresholds);
    r
}

/// Client counts.
fn clients(m: &Metrics, inp: &Inputs) -> Clients {
    let states = m.states();
    Clients {
        planned: m.clients.len(),
        unscheduled: inp.plan.iter().filter(|p| p.unneeded()).count(),
        connected: m
            .clients
            .iter()
            .filter(|c| c.ever_connected.load(Relaxed))
            .count(),
        failed: states[State::Failed as usize] as usize,
        reconnects: m.sum(|c| c.reconnects.load(Relaxed)),
        connected_at_end: inp.at_end.0,
        started_at_end: inp.at_end.1,
        stalls: m.sum(|c| c.stalls.load(Relaxed)),
        stalled_s: round3(m.sum(|c| c.stalled_us.load(Relaxed)) as f64 / 1e6),
    }
}

/// What the server told the clients.
fn signals(m: &Metrics) -> Signals {
    let congestion: Vec<u64> = m
        .clients
        .iter()
        .map(|c| c.congestion.load(Relaxed))
        .collect();
    Signals {
        congestion_received: congestion.iter().sum(),
        clients_with_congestion: congestion.iter().filter(|&&n| n > 0).count(),
        congestion_max_per_client: congestion.iter().copied().max().unwrap_or(0),
        keyframe_requests_received: m.sum(|c| c.keyframe_requests.load(Relaxed)),
        keyframes_answered: m.sum(|c| c.keyframes_answered.load(Relaxed)),
        keyframe_answer_ms: Percentiles::from_us(&m.keyframe_answer.merged()),
        room_congestion_seen: m.sum(|c| c.room_congestion.load(Relaxed)),
        keyframe_requests_sent: m
            .sum(|c| c.control_sent[ControlKind::KeyframeRequest as usize].load(Relaxed)),
        keyframe_requests_answered: m.keyframe_wait.merged().len(),
        keyframe_wait_ms: Percentiles::from_us(&m.keyframe_wait.merged()),
        server_rtt_ms: Percentiles::from_us(&m.server_rtt.merged()),
        participant_joined_seen: m.sum(|c| c.joined_events.load(Relaxed)),
        participant_left_seen: m.sum(|c| c.left_events.load(Relaxed)),
        join_visibility_ms: Percentiles::from_us(&m.join_visibility.merged()),
    }
}

/// The clients' profiles and their control traffic.
fn control(m: &Metrics, inp: &Inputs) -> Control {
    let counts = |f: fn(&ClientStats) -> &[std::sync::atomic::AtomicU64; 4]| {
        let n = |k: ControlKind| m.sum(|c| f(c)[k as usize].load(Relaxed));
        ControlCounts {
            diagnostics: n(ControlKind::Diagnostics),
            health: n(ControlKind::Health),
            rtt: n(ControlKind::Rtt),
            keyframe_request: n(ControlKind::KeyframeRequest),
        }
    };
    let browsers = inp
        .plan
        .iter()
        .filter(|p| p.profile == crate::config::ClientProfile::Browser)
        .count() as u64;
    Control {
        browsers,
        bots: inp.plan.len() as u64 - browsers,
        sent: counts(|c| &c.control_sent),
        received: counts(|c| &c.control_received),
        dropped: m.sum(|c| c.control_dropped.load(Relaxed)),
        elections: m.sum(|c| c.elections.load(Relaxed)),
        expected_per_participant: inp.expected,
    }
}

/// Each meeting's figures, in id order; `pairs` gives each receiver's
/// losses (audio and video).
fn meetings(m: &Metrics, plan: &[ClientPlan], pairs: [&Pairs; 2]) -> Vec<Meeting> {
    let mut meetings: BTreeMap<&str, Meeting> = BTreeMap::new();
    for (k, (p, c)) in plan.iter().zip(&m.clients).enumerate() {
        let e = meetings.entry(&p.meeting_id).or_insert_with(|| Meeting {
            meeting_id: p.meeting_id.clone(),
            ..Meeting::default()
        });
        e.clients += 1;
        e.connected += c.ever_connected.load(Relaxed) as usize;
        e.audio_sent += c.sent_packets[Media::Audio as usize].load(Relaxed);
        e.video_sent += c.sent_packets[Media::Video as usize].load(Relaxed);
        e.audio_received += c.recv_packets[Media::Audio as usize].load(Relaxed);
        e.video_received += c.recv_packets[Media::Video as usize].load(Relaxed);
        e.lost += pairs
            .iter()
            .map(|p| p.lost_by_receiver.get(k).copied().unwrap_or(0))
            .sum::<u64>();
    }
    meetings.into_values().collect()
}

/// The frame bits the senders of `media` sent, the bits their pack's
/// bitrate would have sent, and the seconds they sent in (clients whose
/// script stops or thins the medium are left out).
fn bits(m: &Metrics, plan: &[ClientPlan], media: Media) -> (f64, f64, f64) {
    let i = media as usize;
    let (mut bits, mut expected, mut active) = (0f64, 0f64, 0f64);
    for (c, p) in m.clients.iter().zip(plan) {
        let mut t = p.target_bps;
        // An adapting client's video target follows the renditions
        // it sent, weighted by the time on each.
        if media == Media::Video && p.adapt {
            if let Some(bps) = c.adapted_video_bps() {
                t[i] = bps;
            }
        }
        let payload = c.sent_payload[i].load(Relaxed);
        // A client whose script stops or thins this medium (mute,
        // DTX, turns, camera, leaving) sends less than its pack
        // bitrate on purpose: it is not part of the bitrate check.
        if payload == 0 || t[i] == 0.0 || !p.steady(i) {
            continue;
        }
        let secs = c.media_active().as_secs_f64();
        if secs <= 0.0 {
            continue;
        }
        bits += payload as f64 * 8.0;
        expected += t[i] * secs;
        active += secs;
    }
    (bits, expected, active)
}

/// What was sent of `media`.
fn sent(m: &Metrics, plan: &[ClientPlan], media: Media) -> Sent {
    let i = media as usize;
    let (bits, expected, active) = bits(m, plan, media);
    let (bitrate, target, err) = bitrates(bits, expected, active);
    let packets = m.sum(|c| c.sent_packets[i].load(Relaxed));
    let acked = m.sum(|c| c.acked[i].load(Relaxed));
    Sent {
        packets,
        acked,
        unacked: packets.saturating_sub(acked),
        bytes: m.sum(|c| c.sent_bytes[i].load(Relaxed)),
        payload_bytes: m.sum(|c| c.sent_payload[i].load(Relaxed)),
        bitrate_kbps: bitrate,
        target_kbps: target,
        bitrate_error_pct: err,
        active_s: active,
        bits,
        target_bits: expected,
    }
}

/// Video freezes over every pair.
fn freezes(pr: &Pairs) -> FreezeReport {
    let mut counts: Vec<f64> = pr.per_receiver.iter().map(|r| r.0 as f64).collect();
    FreezeReport {
        count: pr.freezes.count,
        total_ms: round3(pr.freezes.total_ms),
        longest_ms: round3(pr.freezes.longest_ms),
        share: (pr.watched_ms > 0.0)
            .then(|| round6((pr.freezes.total_ms / pr.watched_ms).min(1.0))),
        receivers_with_freezes: pr.per_receiver.iter().filter(|r| r.0 > 0).count() as u64,
        per_receiver_p50: quantile(&mut counts, 0.5).unwrap_or(0.0),
        per_receiver_max: counts.last().copied().unwrap_or(0.0),
        per_receiver_total_max_ms: round3(pr.per_receiver.iter().map(|r| r.1).fold(0.0, f64::max)),
        watched_ms: round3(pr.watched_ms),
        per_receiver_hist: hist::encode_values(&counts, 1.0),
    }
}

/// Audio concealment over every pair.
fn concealment(pr: &Pairs) -> Concealment {
    let slots: u64 = pr.slots.iter().map(|s| s.0).sum();
    let concealed: u64 = pr.slots.iter().map(|s| s.1).sum();
    let mut shares: Vec<f64> = pr
        .slots
        .iter()
        .filter(|s| s.0 > 0)
        .map(|s| s.1 as f64 / s.0 as f64)
        .collect();
    Concealment {
        slots,
        concealed,
        share: (slots > 0).then(|| round6(concealed as f64 / slots as f64)),
        pair_p95: quantile(&mut shares, 0.95).map(round6),
        pair_hist: hist::encode_values(&shares, 1e6),
    }
}

/// Packets (frames) per second each receiver got from each sender.
fn rate(rates: &mut [f64]) -> Rate {
    let n = rates.len();
    let mean = (n > 0).then(|| rates.iter().sum::<f64>() / n as f64);
    Rate {
        pairs: n as u64,
        p5: quantile(rates, 0.05).map(round3),
        p50: quantile(rates, 0.5).map(round3),
        mean: mean.map(round3),
        sum: rates.iter().sum(),
        hist: hist::encode_values(rates, 1000.0),
    }
}

/// One medium's figures: what was sent, and what was received from every pair.
fn media(m: &Metrics, plan: &[ClientPlan], mut pr: Pairs, media: Media) -> MediaReport {
    let i = media as usize;
    MediaReport {
        sent: sent(m, plan, media),
        received: Received {
            packets: m.sum(|c| c.recv_packets[i].load(Relaxed)),
            bytes: m.sum(|c| c.recv_bytes[i].load(Relaxed)),
            lost: pr.lost,
            exact: pr.exact.clone(),
            late: m.sum(|c| c.late[i].load(Relaxed)),
            reordered: m.sum(|c| c.reordered[i].load(Relaxed)),
            duplicate: m.sum(|c| c.duplicates[i].load(Relaxed)),
            corrupted: m.sum(|c| c.corrupted[i].load(Relaxed)),
            latency_ms: Percentiles::from_us(&m.latency[i].merged()),
            cross_host_latency_ms: Percentiles::from_us(&m.cross_host_latency[i].merged()),
            jitter_ms: Percentiles::from_us(&m.jitter[i].merged()),
            rate_per_sender: rate(&mut pr.rates),
            freezes: (media == Media::Video).then(|| freezes(&pr)),
            concealment: (media == Media::Audio).then(|| concealment(&pr)),
        },
    }
}

/// The report's `networks`: the taps summed per group, in the order of the
/// config's groups.
pub fn networks(networks: &[crate::config::Network], taps: &[Tap]) -> Vec<NetworkReport> {
    networks
        .iter()
        .enumerate()
        .map(|(n, net)| {
            let mut up = Counters::default();
            let mut down = Counters::default();
            let mut q = [0u64; 6];
            let mut clients = 0;
            for t in taps.iter().filter(|t| t.network == n) {
                clients += 1;
                let (u, d) = t.impaired.counters();
                up.add(&u);
                down.add(&d);
                let s = &t.quic;
                q[0] += s.rtt_samples.load(Relaxed);
                q[1] += s.rtt_sum_us.load(Relaxed);
                q[2] = q[2].max(s.rtt_max_us.load(Relaxed));
                q[3] += s.cwnd_sum.load(Relaxed);
                q[4] += s.lost_packets.load(Relaxed);
                q[5] += s.sent_packets.load(Relaxed);
            }
            let per =
                |sum: u64, scale: f64| (q[0] > 0).then(|| round3(sum as f64 / q[0] as f64 / scale));
            NetworkReport {
                group: net.group.clone(),
                profile: net.profile_name.clone(),
                clients,
                uplink: LinkReport::from(&up),
                downlink: LinkReport::from(&down),
                quic: QuicReport {
                    samples: q[0],
                    rtt_ms_mean: per(q[1], 1000.0),
                    rtt_ms_max: (q[0] > 0).then(|| round3(q[2] as f64 / 1000.0)),
                    lost_packets: q[4],
                    sent_packets: q[5],
                    congestion_window_mean: per(q[3], 1.0),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use synth_report::health::{assess, CpuSampler, HostSampler, Limits, ServerDelays};
    use synth_report::merge::merge;
    use synth_report::model::{Av, ByState, Sample, P2};

    /// The report of a run of 4 clients that recorded nothing, of which
    /// `at_end` were (connected, started) when it stopped.
    fn at_end(at_end: (usize, usize)) -> Report {
        built(&Metrics::new(4), &[0, 1, 2, 3], &[], at_end)
    }

    /// A run whose clients are mostly gone at the end (or all failed)
    /// fails whatever its thresholds: its exit code is never 0.
    #[test]
    fn clients_mostly_gone_at_the_end_fail_the_run() {
        let r = at_end((1, 4));
        assert!(!r.passed);
        let v = r.thresholds.last().unwrap();
        assert_eq!(
            (v.name.as_str(), v.actual, v.pass),
            ("connected_at_end_share", Some(0.25), false)
        );
        assert!(at_end((2, 4)).passed, "half is the floor");
        assert!(!at_end((0, 4)).passed, "every client failed");
        // Clients still in their ramp-up do not count against the run.
        assert!(at_end((2, 2)).passed);
    }

    // Reports built by the collector, merged: `report merge` over what
    // real runs write.

    /// Client `c` of the whole test (0..4), recorded into slot `slot` of `m`:
    /// the same values whichever process it ran in.
    fn record(m: &Metrics, slot: usize, c: usize) {
        let s = &m.clients[slot];
        let k = c as u64;
        s.ever_connected.store(true, Relaxed);
        for _ in 0..(100 + k) {
            s.sent(Media::Audio, 120);
        }
        for _ in 0..(30 + k) {
            s.sent(Media::Video, 1_000 + c);
        }
        s.acked[0].store(100 + k - k % 2, Relaxed);
        s.acked[1].store(30 + k, Relaxed);
        s.sent_payload[0].store(10_000 * (k + 1), Relaxed);
        s.sent_payload[1].store(90_000 * (k + 1), Relaxed);
        // Whole seconds, so that sums of active time are exact in any order.
        s.media_span_us[0].store(1, Relaxed);
        s.media_span_us[1].store(1 + (2 + k) * 1_000_000, Relaxed);
        for _ in 0..(200 + 3 * k) {
            s.received(Media::Audio, 100);
        }
        for _ in 0..(50 + k) {
            s.received(Media::Video, 900);
        }
        s.late[0].store(k, Relaxed);
        s.reordered[1].store(2 * k, Relaxed);
        s.duplicates[0].store(1, Relaxed);
        s.corrupted[1].store(k % 2, Relaxed);
        s.congestion.store(5 * k, Relaxed);
        s.keyframe_requests.store(k + 1, Relaxed);
        s.keyframes_answered.store(k, Relaxed);
        s.joined_events.store(3, Relaxed);
        s.left_events.store(k, Relaxed);
        s.reconnects.store(k / 2, Relaxed);
        s.stalls.store(k % 3, Relaxed);
        s.stalled_us.store(k * 250_000, Relaxed);
        s.sent_packets[Media::Heartbeat as usize].store(10 + k, Relaxed);
        s.recv_packets[Media::Heartbeat as usize].store(9 + k, Relaxed);
        for j in 0..500 {
            m.latency[0].record(1_000 + 37 * j * (k + 1), slot);
            m.jitter[0].record(100 + 11 * j + 7 * k, slot);
            m.lateness.record(50 + 3 * j * k, slot);
        }
        for j in 0..120 {
            m.latency[1].record(20_000 + 997 * j + 13_000 * k, slot);
            m.jitter[1].record(2_000 + 51 * j, slot);
            m.cross_host_latency[0].record(40_000 + 301 * j * k, slot);
        }
        m.connect.record(30_000 + 7_919 * k, slot);
        m.keyframe_answer.record(4_000 + 1_001 * k, slot);
        m.join_visibility.record(90_000 + 10_007 * k, slot);
        m.connect_failed(crate::metrics::FailReason::Timeout);
    }

    fn plan(clients: &[usize]) -> Vec<ClientPlan> {
        clients
            .iter()
            .enumerate()
            .map(|(i, &c)| ClientPlan {
                index: i,
                user_id: format!("u{c}"),
                meeting_id: format!("m{}", c / 2),
                audio_track: Some(0),
                video_track: Some(1),
                target_bps: [32_000.0, 300_000.0],
                start_after: Duration::ZERO,
                phase: Duration::ZERO,
                step: 0,
                network: None,
                adapt: false,
                profile: Default::default(),
                behaviour: Default::default(),
            })
            .collect()
    }

    /// The report of one process that ran `clients`.
    fn report(clients: &[usize], thresholds: &[Threshold]) -> Report {
        let m = Metrics::new(clients.len());
        for (slot, &c) in clients.iter().enumerate() {
            record(&m, slot, c);
        }
        built(&m, clients, thresholds, (clients.len(), clients.len()))
    }

    /// The collector's report of `m`, a run of `clients` judged on `thresholds`.
    fn built(
        m: &Metrics,
        clients: &[usize],
        thresholds: &[Threshold],
        at_end: (usize, usize),
    ) -> Report {
        let plan = plan(clients);
        let health = assess(
            1.0,
            ServerDelays::default(),
            &CpuSampler::new(2.0),
            m.loop_delay.figures(),
            &HostSampler::new(),
            &Limits::default(),
        );
        build(
            m,
            &Inputs {
                plan: &plan,
                server: "https://relay".into(),
                pack: "p.pack".into(),
                stopped_by: StopReason::Duration,
                thresholds,
                health,
                at_end,
                live: None,
                aborted: None,
                seed: 1,
                schedule: None,
                expected: Expected::default(),
            },
        )
    }

    fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    /// Two pods' reports merged equal the report of one process that ran
    /// both pods' clients: every count, and every percentile (the same
    /// histograms, so the same percentiles, to the last digit).
    #[test]
    fn merged_pods_equal_one_process_running_every_client() {
        let a = report(&[0, 1], &[]);
        let b = report(&[2, 3], &[]);
        let c = report(&[0, 1, 2, 3], &[]);
        let m = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        assert_eq!(json(&m.clients), json(&c.clients));
        assert_eq!(json(&m.connect_ms), json(&c.connect_ms));
        assert_eq!(m.connect_failures, c.connect_failures);
        assert_eq!(json(&m.audio), json(&c.audio));
        assert_eq!(json(&m.video), json(&c.video));
        assert_eq!(json(&m.heartbeats), json(&c.heartbeats));
        assert_eq!(json(&m.server_signals), json(&c.server_signals));
        assert_eq!(json(&m.send_lateness_ms), json(&c.send_lateness_ms));
        assert_eq!(json(&m.meetings), json(&c.meetings));
        assert_eq!(m.merged_from, ["a", "b"]);
        // Not a vacuous comparison: the parts differ from the whole.
        assert_eq!(c.audio.sent.packets, 100 + 101 + 102 + 103);
        assert_eq!(
            m.audio.sent.packets,
            a.audio.sent.packets + b.audio.sent.packets
        );
        assert_eq!(m.audio.received.latency_ms.count, 2_000);
        assert_ne!(
            a.audio.received.latency_ms.p99,
            m.audio.received.latency_ms.p99
        );
        assert_ne!(
            b.audio.received.latency_ms.p50,
            m.audio.received.latency_ms.p50
        );
        assert_eq!(m.server_signals.congestion_max_per_client, 15);
        assert!(m.video.sent.bitrate_kbps.is_some());
        // Merging is associative with itself: merging the merged report with nothing changes nothing.
        let again = merge(&[("ab".into(), m.clone())]).unwrap();
        assert_eq!(json(&again.audio), json(&m.audio));
    }

    /// Rates per pair, concealment per pair and freezes per receiver come
    /// from the merged histograms of the pairs' values.
    #[test]
    fn pair_distributions_come_from_the_merged_histograms() {
        let mut a = report(&[0], &[]);
        let mut b = report(&[1], &[]);
        let (ra, rb) = ([30.0, 29.5, 12.0], [30.0, 25.0, 31.5, 30.0]);
        let set = |r: &mut Report, rates: &[f64], shares: &[f64], freezes: &[f64]| {
            let rate = &mut r.video.received.rate_per_sender;
            rate.pairs = rates.len() as u64;
            rate.sum = rates.iter().sum();
            rate.hist = hist::encode_values(rates, 1000.0);
            let c = r.audio.received.concealment.as_mut().unwrap();
            (c.slots, c.concealed) = (1_000 * shares.len() as u64, 7);
            c.pair_hist = hist::encode_values(shares, 1e6);
            let f = r.video.received.freezes.as_mut().unwrap();
            (f.count, f.total_ms, f.watched_ms) =
                (freezes.iter().sum::<f64>() as u64, 500.0, 10_000.0);
            f.per_receiver_max = freezes.iter().copied().fold(0.0, f64::max);
            f.per_receiver_hist = hist::encode_values(freezes, 1.0);
        };
        set(&mut a, &ra, &[0.0, 0.001, 0.002], &[0.0, 0.0, 1.0]);
        set(&mut b, &rb, &[0.004, 0.0], &[3.0, 0.0]);
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        let r = &m.video.received.rate_per_sender;
        let all: Vec<f64> = ra.iter().chain(&rb).copied().collect();
        let h = hist::decode(&hist::encode_values(&all, 1000.0).unwrap()).unwrap();
        assert_eq!(r.pairs, 7);
        assert_eq!(r.p5, hist::quantile(&h, 0.05, 1000.0).map(round3));
        assert_eq!(r.p50, hist::quantile(&h, 0.5, 1000.0).map(round3));
        assert_eq!(r.p5, Some(12.0));
        assert_eq!(r.mean, Some(round3(all.iter().sum::<f64>() / 7.0)));
        let c = m.audio.received.concealment.as_ref().unwrap();
        assert_eq!((c.slots, c.concealed, c.share), (5_000, 14, Some(0.0028)));
        assert_eq!(c.pair_p95, Some(0.004));
        let f = m.video.received.freezes.as_ref().unwrap();
        assert_eq!((f.count, f.total_ms, f.share), (4, 1_000.0, Some(0.05)));
        // Receivers saw 0, 0, 1, 3, 0 freezes: the median is 0, not 1.
        assert_eq!((f.per_receiver_p50, f.per_receiver_max), (0.0, 3.0));
    }

    /// A loss budget each pod kept alone (3 < 5) fails for the whole test
    /// (6); the built-in verdict is added once.
    #[test]
    fn thresholds_are_checked_again_on_the_merged_figures() {
        let t = [Threshold::parse("audio_lost", "< 5").unwrap()];
        let pod = |c: usize| {
            let mut r = report(&[c], &t);
            r.audio.received.lost = 3;
            r.judge(&t);
            assert!(r.passed, "{:?}", r.thresholds);
            r
        };
        let m = merge(&[("a".into(), pod(0)), ("b".into(), pod(1))]).unwrap();
        assert!(!m.passed);
        assert_eq!(m.thresholds.len(), 2, "{:?}", m.thresholds);
        let v = &m.thresholds[0];
        assert_eq!(
            (v.name.as_str(), v.actual, v.pass),
            ("audio_lost", Some(6.0), false)
        );
        assert!(m.thresholds[1].expr.ends_with("(built in)") && m.thresholds[1].pass);
        assert!(m.summary().contains("FAIL audio_lost < 5 (actual 6.0)"));
    }

    /// Timelines align on wall-clock time: a pod that started 1.2 s later
    /// lands on the grid of the earliest, counts and states add, and the
    /// percentile fields are the largest of the pods'.
    #[test]
    fn timelines_align_on_wall_clock_time() {
        let sample = |t_s: f64, unix_ms: u64, sent: u64, p99: f64, fail: &[&str]| Sample {
            t_s,
            unix_ms,
            phase: None,
            clients: ByState {
                connected: 2,
                ..ByState::default()
            },
            sent_packets: Av {
                audio: sent,
                video: 1,
            },
            recv_packets: Av::default(),
            sent_mbps: 1.0,
            recv_mbps: 0.5,
            lost: Av {
                audio: 1,
                video: -1,
            },
            latency_ms: Av {
                audio: P2 {
                    p50: Some(p99 / 2.0),
                    p99: Some(p99),
                },
                video: P2::default(),
            },
            jitter_ms: Av::default(),
            freezes: 0,
            lateness_p99_ms: Some(p99 / 10.0),
            server_rtt_ms: P2 {
                p50: Some(p99 / 4.0),
                p99: Some(p99 / 2.0),
            },
            cpu_share: Some(p99 / 100.0),
            host_busy: None,
            host_pressure: None,
            rss_mb: 10.0,
            server: None,
            failing: fail.iter().map(|s| s.to_string()).collect(),
        };
        let t0 = 1_700_000_000_000;
        let mut a = report(&[0], &[]);
        a.timeline = Some(Timeline {
            interval_s: 1.0,
            start_unix_ms: t0,
            samples: (1..=4)
                .map(|k| sample(k as f64, t0 + k * 1_000 + 3, 10, 20.0, &[]))
                .collect(),
        });
        a.events = vec![Event {
            t_s: 2.0,
            unix_ms: t0 + 2_000,
            kind: "threshold_failed".into(),
            name: "audio_lost".into(),
            detail: "x".into(),
        }];
        let mut b = report(&[1], &[]);
        b.timeline = Some(Timeline {
            interval_s: 1.0,
            start_unix_ms: t0 + 1_200,
            samples: (1..=3)
                .map(|k| sample(k as f64, t0 + 1_200 + k * 1_000 + 2, 100, 50.0, &["stalls"]))
                .collect(),
        });
        b.events = vec![Event {
            t_s: 0.5,
            unix_ms: t0 + 1_700,
            kind: "threshold_failed".into(),
            name: "stalls".into(),
            detail: "y".into(),
        }];
        let m = merge(&[("a".into(), a), ("b".into(), b)]).unwrap();
        let t = m.timeline.unwrap();
        assert_eq!((t.start_unix_ms, t.interval_s), (t0, 1.0));
        let rows: Vec<_> = t
            .samples
            .iter()
            .map(|s| {
                (
                    s.t_s,
                    s.sent_packets.audio,
                    s.clients.connected,
                    s.latency_ms.audio.p99,
                )
            })
            .collect();
        // b's samples end at 2.2, 3.2 and 4.2 s of a's clock: the points 2, 3, 4.
        assert_eq!(
            rows,
            [
                (1.0, 10, 2, Some(20.0)),
                (2.0, 110, 4, Some(50.0)),
                (3.0, 110, 4, Some(50.0)),
                (4.0, 110, 4, Some(50.0)),
            ]
        );
        let s = &t.samples[1];
        assert_eq!(
            (s.sent_mbps, s.rss_mb, s.cpu_share),
            (2.0, 20.0, Some(0.35))
        );
        assert_eq!((s.lost.audio, s.lost.video), (2, -2));
        assert_eq!(s.failing, ["stalls"]);
        assert_eq!(s.unix_ms, t0 + 2_000);
        let total: u64 = t.samples.iter().map(|s| s.sent_packets.audio).sum();
        assert_eq!(
            total,
            4 * 10 + 3 * 100,
            "every packet in exactly one sample"
        );
        let ev: Vec<_> = m.events.iter().map(|e| (e.t_s, e.name.as_str())).collect();
        assert_eq!(ev, [(1.7, "b: stalls"), (2.0, "a: audio_lost")]);
    }

    /// The adaptation sections add up; a pod without one adds nothing, and
    /// pods without any merge into none.
    #[test]
    fn adaptation_sections_add_up() {
        let section = |clients, down, up, times: &[(&str, f64)]| Adaptation {
            clients,
            switches_down: down,
            switches_up: up,
            time_per_rendition_s: times.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        let mut a = report(&[0], &[]);
        let mut b = report(&[1], &[]);
        let c = report(&[2], &[]);
        let pods = |a: &Report, b: &Report, c: &Report| {
            merge(&[
                ("a".into(), a.clone()),
                ("b".into(), b.clone()),
                ("c".into(), c.clone()),
            ])
            .unwrap()
        };
        assert_eq!(pods(&a, &b, &c).adaptation, None);
        a.adaptation = Some(section(2, 3, 1, &[("hi", 4.5), ("lo", 15.25)]));
        b.adaptation = Some(section(1, 1, 0, &[("lo", 9.0), ("mid", 1.0)]));
        assert_eq!(
            pods(&a, &b, &c).adaptation,
            Some(section(
                3,
                4,
                1,
                &[("hi", 4.5), ("lo", 24.25), ("mid", 1.0)]
            ))
        );
        b.adaptation = None;
        assert_eq!(pods(&a, &b, &c).adaptation, a.adaptation);
    }

    #[test]
    fn what_cannot_be_merged_is_an_error() {
        let a = report(&[0], &[Threshold::parse("audio_lost", "< 5").unwrap()]);
        let b = report(&[1], &[Threshold::parse("audio_lost", "< 9").unwrap()]);
        let e = merge(&[("a.json".into(), a.clone()), ("b.json".into(), b)]).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("audio_lost") && e.contains("a.json") && e.contains("b.json"),
            "{e}"
        );

        assert!(merge(&[]).is_err());

        let mut old = a.clone();
        old.version = 2;
        let e = format!("{:#}", merge(&[("old.json".into(), old)]).unwrap_err());
        assert!(e.contains("old.json") && e.contains("version 2"), "{e}");

        let mut bad = a.clone();
        bad.audio.received.latency_ms.hist = Some("bm90IGEgaGlzdG9ncmFt".into());
        let e = format!("{:#}", merge(&[("bad.json".into(), bad)]).unwrap_err());
        assert!(e.contains("bad.json") && e.contains("latency_ms"), "{e}");

        let mut stripped = a.clone();
        stripped.connect_ms.hist = None;
        let e = format!("{:#}", merge(&[("s.json".into(), stripped)]).unwrap_err());
        assert!(e.contains("no histogram"), "{e}");

        let line = |interval_s| Timeline {
            interval_s,
            start_unix_ms: 1,
            samples: Vec::new(),
        };
        let (mut x, mut y) = (a.clone(), a);
        x.timeline = Some(line(1.0));
        y.timeline = Some(line(0.5));
        let e = format!(
            "{:#}",
            merge(&[("x".into(), x), ("y".into(), y)]).unwrap_err()
        );
        assert!(e.contains("timeline_interval"), "{e}");
    }

    #[test]
    fn generator_and_run_facts_combine() {
        let mut a = report(&[0], &[]);
        let mut b = report(&[1], &[]);
        a.generator.saturated = true;
        a.generator.reasons = vec!["CPU 97 %".into()];
        a.generator.cpu_share_mean = 0.5;
        b.generator.cpu_share_mean = 0.25;
        b.server = "https://other".into();
        b.stopped_by = StopReason::Signal;
        (a.process.peak_rss_bytes, b.process.peak_rss_bytes) = (100, 50);
        let m = merge(&[("a".into(), a.clone()), ("b".into(), b.clone())]).unwrap();
        assert!(m.generator.saturated);
        assert_eq!(m.generator.reasons, ["a: CPU 97 %"]);
        assert_eq!(m.generator.cpu_share_mean, 0.375);
        assert_eq!(m.generator.cores, a.generator.cores + b.generator.cores);
        assert_eq!(m.server, "https://relay, https://other");
        assert_eq!(m.stopped_by, StopReason::Signal);
        assert_eq!(m.process.peak_rss_bytes, 150);
        assert!(m.search.is_none());
    }
}
