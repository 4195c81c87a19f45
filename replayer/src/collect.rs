//! The collector: the report built from the run's live metrics, the plan
//! and what the live side recorded, once at the end of a run (also when it
//! was stopped by a signal).
//!
//! The report's model, its verdicts and its text live in `synth-report`;
//! this is the one place that reads the engine's counters into it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use synth_common::netem::Counters;
use synth_common::quality::{Exact, FpsSeconds, Freezes, Latencies};
use synth_report::figure::{unscoped_reason, FIGURES};
use synth_report::health::Health;
use synth_report::hist;
use synth_report::model::score::{summarize, ParticipantScore};
use synth_report::model::Scores;
use synth_report::model::{
    Adaptation, Behaviour, Clients, Concealment, Control, ControlCounts, Counts, Event,
    ExactReport, Expected, FreezeReport, LayerReceiver, Layers, LinkReport, MediaReport, Meeting,
    NetworkReport, Percentiles, PhaseReport, ProcessReport, QuicReport, Rate, Received, Report,
    ScopeFigures, Screen, SearchReport, Sent, Sessions, Signals, StopReason, Timeline, SCHEMA,
    SCHEMA_VERSION,
};
use synth_report::num::{bitrates, quantile, round3, round6};
use synth_report::score::{
    audio_mos, bits_per_pixel, video_score, AudioIn, BandIn, BandLimits, VideoIn,
};
use synth_report::threshold::{Scope, Threshold};

use crate::metrics::{
    ClientStats, Control as ControlKind, Media, Metrics, PeerView, Process, State, REASONS,
};
use crate::netem::Tap;
use crate::plan::ClientPlan;
use crate::scopes::{ScopeDef, Scopes};

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

/// What simulcast senders sent and receivers with a view got; `None`
/// when there are none.
fn layers(m: &Metrics, inp: &Inputs) -> Option<Layers> {
    let mut l = Layers::default();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    for (c, p) in m.clients.iter().zip(inp.plan) {
        if !p.layers.is_empty() {
            l.senders += 1;
            for i in 0..3 {
                l.sent[i] += load(&c.layer_sent[i]);
            }
            l.hints += load(&c.layer_hints);
            l.sheds += load(&c.layer_changes[0]);
            l.restores += load(&c.layer_changes[1]);
        }
        let layers = [0, 1, 2].map(|i| load(&c.layer_received[i]));
        for (sum, n) in l.received.iter_mut().zip(layers) {
            *sum += n;
        }
        l.unrequested += load(&c.unrequested);
        l.upper_missing += load(&c.layer_missing);
        if p.view.is_none() {
            continue;
        }
        l.viewports_sent += load(&c.view_sent[0]);
        l.preferences_sent += load(&c.view_sent[1]);
        let switch = load(&c.view_switch_us);
        l.receivers.push(LayerReceiver {
            id: p.user_id.clone(),
            group: p
                .group
                .and_then(|g| inp.scoring.group_names.get(g).cloned())
                .unwrap_or_else(|| "clients".to_string()),
            layers,
            unrequested: load(&c.unrequested),
            switch_ms: (switch > 0).then(|| round3((switch - 1) as f64 / 1000.0)),
        });
    }
    l.switch_ms = synth_report::model::switch_percentiles(&l.receivers);
    (l.senders > 0 || !l.receivers.is_empty()).then_some(l)
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
    /// The plan of the clients reported on (each client's target bitrate
    /// included): the whole plan, or a scope's members.
    pub plan: &'a [ClientPlan],
    /// The whole plan (senders are looked up in it).
    pub full_plan: &'a [ClientPlan],
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
    /// The groups, networks and meetings the report gives figures of.
    pub scopes: &'a Scopes,
    /// What the scores need besides the metrics.
    pub scoring: Scoring<'a>,
}

/// What the participants' scores need besides the metrics: the limits of
/// upstream's bands, the names of groups and networks, the pack's tracks.
#[derive(Debug, Clone, Copy)]
pub struct Scoring<'a> {
    /// The bands' limits (`quality.bands`).
    pub bands: &'a BandLimits,
    /// Each group's name, by group index.
    pub group_names: &'a [String],
    /// Each network's profile name, by network index.
    pub networks: &'a [crate::config::Network],
    /// The pack's tracks (a sender's rendition: its size, frame rate, bitrate).
    pub tracks: &'a [synth_common::pack::Track],
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
/// of this process the receiver joined with, inferred from the span
/// otherwise (`all` holds every sender); with the exact check, the part of
/// its loss sent while the receiver's session was down.
fn pair_loss(
    all: &Metrics,
    view: &PeerView,
    sender: Option<usize>,
    i: usize,
) -> (u64, Option<(Exact, u64)>) {
    let c = &view.media[i].seq;
    if i == 1 && view.unshown {
        // Out of the receiver's view: none of its video was owed.
        return (0, None);
    }
    match (view.expect_from, sender.and_then(|s| all.clients.get(s))) {
        (Some(from), Some(s)) if view.ours => {
            let mut until = s.next_seq[i].load(Relaxed);
            if let Some(u) = view.until {
                until = until.min(u[i]);
            }
            let e = Exact::check(c, from[i], until);
            (e.lost, Some((e, view.down[i].missed(until, e.lost))))
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
    /// Of the exact loss, what was sent while the receiver was down.
    while_down: u64,
    /// The same, per receiving client.
    down_by_receiver: Vec<u64>,
}

/// The pairs of the receivers of `m`; `all` holds every sender, `index`
/// their plan indices by user id.
fn pairs(all: &Metrics, m: &Metrics, index: &BTreeMap<&str, usize>, i: usize) -> Pairs {
    let mut p = Pairs::default();
    for c in &m.clients {
        let Ok(peers) = c.peers.lock() else {
            p.lost_by_receiver.push(0);
            p.down_by_receiver.push(0);
            continue;
        };
        let mut mine = Freezes::default();
        let mut heard = false;
        let (mut mine_lost, mut mine_down) = (0, 0);
        for (id, view) in peers.iter() {
            let sum = &view.media[i];
            let (lost, exact) = pair_loss(all, view, index.get(id.as_str()).copied(), i);
            p.lost += lost;
            mine_lost += lost;
            let slots = match exact {
                Some((e, down)) => {
                    p.exact.pairs += 1;
                    p.exact.expected += e.expected;
                    p.exact.lost += e.lost;
                    p.while_down += down;
                    mine_down += down;
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
        p.down_by_receiver.push(mine_down);
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
    let mut r = figures(m, m, &index, inp);
    if let Some(rec) = inp.live.clone() {
        r.timeline = Some(rec.timeline);
        r.events = rec.events;
        r.search = rec.search;
        r.server_cost = rec.server_cost;
        if let Some(b) = r.behaviour.as_mut() {
            b.phases = rec.phases;
        }
    }
    r.scopes = inp
        .scopes
        .list
        .iter()
        .map(|d| scope(m, &index, inp, d))
        .collect();
    r.judge(inp.thresholds);
    r
}

/// A group's, network's or meeting's figures: the report of its
/// participants alone, read through the registry (the figures a scope
/// cannot give left out).
fn scope(all: &Metrics, index: &BTreeMap<&str, usize>, inp: &Inputs, d: &ScopeDef) -> ScopeFigures {
    let sub = all.subset(&d.members, d.hist_groups.as_deref());
    let plan: Vec<ClientPlan> = d
        .members
        .iter()
        .filter_map(|&i| inp.plan.get(i).cloned())
        .collect();
    let sub_inp = Inputs {
        plan: &plan,
        full_plan: inp.full_plan,
        server: String::new(),
        pack: String::new(),
        stopped_by: inp.stopped_by,
        thresholds: &[],
        health: Health::default(),
        at_end: (0, 0),
        live: None,
        seed: inp.seed,
        schedule: inp.schedule,
        aborted: None,
        expected: inp.expected,
        scopes: inp.scopes,
        scoring: inp.scoring,
    };
    let r = figures(all, &sub, index, &sub_inp);
    let kind = match d.kind {
        "group" => Scope::Group(d.name.clone()),
        "network" => Scope::Network(d.name.clone()),
        _ => Scope::Meeting(d.name.clone()),
    };
    ScopeFigures {
        kind: d.kind.to_string(),
        name: d.name.clone(),
        clients: d.members.len(),
        figures: FIGURES
            .iter()
            .filter(|f| f.alias_of.is_none() && unscoped_reason(f, &kind).is_none())
            .map(|f| (f.name.to_string(), (f.end)(&r).map(round6)))
            .collect(),
    }
}

/// The report's figures for the clients of `m` (all of `all`'s, or a
/// scope's): everything but the live side's record, the scopes and the
/// verdict.
fn figures(all: &Metrics, m: &Metrics, index: &BTreeMap<&str, usize>, inp: &Inputs) -> Report {
    let [pa, pv] = [pairs(all, m, index, 0), pairs(all, m, index, 1)];
    let meetings = meetings(m, inp.plan, [&pa, &pv]);
    let p = Process::now();
    Report {
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
        layers: layers(m, inp),
        seed: Some(inp.seed),
        behaviour: inp.schedule.map(|sc| behaviour(m, inp.plan, sc)),
        scopes: Vec::new(),
        wire: None,
        scores: scores(all, m, index, inp),
    }
}

/// What one receiver measured of its senders, for its scores.
#[derive(Default)]
struct Heard {
    /// Audio: latencies from senders of this process, all pairs.
    latency: Latencies,
    /// Audio: slots expected and concealed, all pairs.
    slots: u64,
    concealed: u64,
    /// Audio: jitter weighted by slots, and the senders' Opus bitrates.
    jitter_x_slots: f64,
    kbps: Vec<f64>,
    /// Video: frozen and watched time, all pairs (ms).
    frozen_ms: f64,
    watched_ms: f64,
    /// Video: frames per second received, weighted by watched time.
    fps_x_watched: f64,
    /// Video: what each sender sent (frame rate, bits per pixel, size).
    sent: Vec<(f64, Option<f64>, u32, u32)>,
    fps_seconds: FpsSeconds,
}

/// The participants' scores (see `docs/src/scores.md`): per (sender,
/// receiver) pair an audio MOS and a video score from what the pair
/// measured, per participant the same from everything it received with its
/// bands; `None` when no participant received anything.
fn scores(
    all: &Metrics,
    m: &Metrics,
    index: &BTreeMap<&str, usize>,
    inp: &Inputs,
) -> Option<Scores> {
    let sc = &inp.scoring;
    let (mut pair_audio, mut pair_video, mut people) = (Vec::new(), Vec::new(), Vec::new());
    for (c, p) in m.clients.iter().zip(inp.plan) {
        if !c.ever_connected.load(Relaxed) {
            continue;
        }
        let Ok(peers) = c.peers.lock() else { continue };
        let mut h = Heard::default();
        for (id, view) in peers.iter() {
            let sender = index
                .get(id.as_str())
                .and_then(|&s| Some((s, inp_plan_of(inp, all, s)?)));
            hear_audio(all, view, sender, &mut h, &mut pair_audio);
            hear_video(
                view,
                sender.map(|s| s.1),
                sc.tracks,
                &mut h,
                &mut pair_video,
            );
        }
        drop(peers);
        people.push(participant(c, p, &h, sc));
    }
    if people.is_empty() {
        return None;
    }
    Some(summarize(sc.bands, &pair_audio, &pair_video, people))
}

/// The plan of sender `s` of this process: the full plan's entry (a
/// scope's plan holds its members only, senders may be anyone).
fn inp_plan_of<'a>(inp: &Inputs<'a>, all: &Metrics, s: usize) -> Option<&'a ClientPlan> {
    (s < all.clients.len())
        .then(|| inp.full_plan.get(s))
        .flatten()
}

/// One pair's audio: its MOS (when its latency is known: a sender of this
/// process) and its share of the receiver's figures.
fn hear_audio(
    all: &Metrics,
    view: &PeerView,
    sender: Option<(usize, &ClientPlan)>,
    h: &mut Heard,
    pair_audio: &mut Vec<f64>,
) {
    let sum = &view.media[0];
    let (lost, exact) = pair_loss(all, view, sender.map(|s| s.0), 0);
    let slots = exact.map_or(sum.seq.span(), |e| e.0.expected);
    if slots == 0 {
        return;
    }
    let concealed = (lost + sum.late).min(slots);
    let kbps = sender
        .map(|s| s.1.target_bps[0] / 1000.0)
        .filter(|k| *k > 0.0);
    if let Some(one_way) = sum.latency.mean_ms() {
        pair_audio.push(round3(audio_mos(&AudioIn {
            one_way_ms: one_way,
            jitter_ms: sum.jitter_ms,
            concealed_share: concealed as f64 / slots as f64,
            bitrate_kbps: kbps,
        })));
    }
    h.latency.merge(&sum.latency);
    h.slots += slots;
    h.concealed += concealed;
    h.jitter_x_slots += sum.jitter_ms * slots as f64;
    h.kbps.extend(kbps);
}

/// One pair's video: its score and its share of the receiver's figures.
fn hear_video(
    view: &PeerView,
    sender: Option<&ClientPlan>,
    tracks: &[synth_common::pack::Track],
    h: &mut Heard,
    pair_video: &mut Vec<f64>,
) {
    let sum = &view.media[1];
    let (Some(fps), Some(freeze)) = (sum.rate(), sum.freeze_share()) else {
        return;
    };
    let track = sender.and_then(|s| tracks.get(s.video_track?));
    let sent = track.map(|t| {
        let kbps = sender.map_or(0.0, |s| s.target_bps[1] / 1000.0);
        (
            t.fps(),
            bits_per_pixel(kbps, u32::from(t.width), u32::from(t.height), t.fps()),
            u32::from(t.width),
            u32::from(t.height),
        )
    });
    let (sent_fps, bpp, width, height) = sent.unwrap_or((0.0, None, 0, 0));
    pair_video.push(round3(video_score(&VideoIn {
        freeze_share: freeze,
        fps,
        sent_fps,
        bits_per_pixel: bpp,
        width,
        height,
    })));
    h.frozen_ms += sum.freezes.total_ms.min(sum.watched_ms);
    h.watched_ms += sum.watched_ms;
    h.fps_x_watched += fps * sum.watched_ms;
    h.sent.extend(sent);
    h.fps_seconds.merge(&sum.fps_seconds);
}

/// A participant's scores and bands from what it heard and how often it
/// had to reconnect.
fn participant(c: &ClientStats, p: &ClientPlan, h: &Heard, sc: &Scoring) -> ParticipantScore {
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let concealment = (h.slots > 0).then(|| h.concealed as f64 / h.slots as f64);
    let audio = match (h.latency.mean_ms(), concealment) {
        (Some(one_way), Some(share)) => Some(AudioIn {
            one_way_ms: round3(one_way),
            jitter_ms: round3(h.jitter_x_slots / h.slots as f64),
            concealed_share: round6(share),
            bitrate_kbps: mean(&h.kbps),
        }),
        _ => None,
    };
    let watched = h.watched_ms > 0.0;
    let video = watched.then(|| {
        let sent_fps: Vec<f64> = h.sent.iter().map(|s| s.0).collect();
        let bpp: Vec<f64> = h.sent.iter().filter_map(|s| s.1).collect();
        let (width, height) = h.sent.first().map_or((0, 0), |s| (s.2, s.3));
        VideoIn {
            freeze_share: round6(h.frozen_ms / h.watched_ms),
            fps: round3(h.fps_x_watched / h.watched_ms),
            sent_fps: mean(&sent_fps).map_or(0.0, round3),
            bits_per_pixel: mean(&bpp).map(round6),
            width,
            height,
        }
    });
    // Presence: its media span, or the longest it watched a sender.
    let present_h = c.media_active().as_secs_f64().max(h.watched_ms / 1000.0) / 3600.0;
    let seconds = h.fps_seconds.seconds();
    let low = (1..h.fps_seconds.counts.len())
        .filter(|&k| (k as f64) < sc.bands.low_fps)
        .map(|k| u64::from(h.fps_seconds.counts[k]))
        .sum::<u64>();
    let inputs = BandIn {
        audio_concealment: concealment.map(round6),
        video_freeze_share: video.as_ref().map(|v| v.freeze_share),
        latency_p95_ms: h.latency.quantile_at_most_ms(0.95),
        low_fps_share: (seconds > 0).then(|| round6(low as f64 / seconds as f64)),
        reconnects_per_hour: (present_h > 0.0)
            .then(|| round3(c.reconnects.load(Relaxed) as f64 / present_h)),
    };
    let group = p
        .group
        .and_then(|g| sc.group_names.get(g).cloned())
        .unwrap_or_else(|| "clients".to_string());
    let mut s = ParticipantScore::new(
        &p.user_id,
        group,
        &p.meeting_id,
        audio,
        video,
        inputs,
        sc.bands,
    );
    s.network = p
        .network
        .and_then(|n| sc.networks.get(n))
        .map(|n| n.profile_name.clone());
    s
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
        session_ends: session_ends(m),
        server_close_reasons: m.clients.iter().fold(BTreeMap::new(), |mut all, c| {
            if let Ok(closes) = c.server_closes.lock() {
                for (k, n) in closes.iter() {
                    synth_report::model::add_close_reason(&mut all, k, *n);
                }
            }
            all
        }),
        connected_at_end: inp.at_end.0,
        started_at_end: inp.at_end.1,
        stalls: m.sum(|c| c.stalls.load(Relaxed)),
        stalled_s: round3(m.sum(|c| c.stalled_us.load(Relaxed)) as f64 / 1e6),
    }
}

/// Sessions that ended, by cause, over every client.
fn session_ends(m: &Metrics) -> synth_report::model::SessionEnds {
    use crate::metrics::SessionEnd;
    let n = |e: SessionEnd| m.sum(|c| c.session_ends[e as usize].load(Relaxed));
    synth_report::model::SessionEnds {
        idle_timeout: n(SessionEnd::IdleTimeout),
        server_closed: n(SessionEnd::ServerClosed),
        reset: n(SessionEnd::Reset),
        local_error: n(SessionEnd::LocalError),
        planned: n(SessionEnd::Planned),
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
        other_types: synth_common::wire::packet_type::NEWER
            .iter()
            .map(|(_, name)| *name)
            .chain(["unknown"])
            .enumerate()
            .map(|(i, name)| (name.to_owned(), m.sum(|c| c.newer_types[i].load(Relaxed))))
            .filter(|(_, n)| *n > 0)
            .collect(),
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
        e.lost_while_down += pairs
            .iter()
            .map(|p| p.down_by_receiver.get(k).copied().unwrap_or(0))
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
            lost_causes: (pr.exact.pairs > 0).then(|| synth_report::model::LostCauses {
                while_connected: pr.exact.lost - pr.while_down,
                while_down: pr.while_down,
            }),
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
    use crate::metrics::Layout;
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
        // Its sessions' ends: the unplanned ones are its reconnects.
        use crate::metrics::SessionEnd;
        for _ in 0..k / 2 {
            let close = format!("0x{k} closed {k}");
            match k {
                3 => s.session_ended(SessionEnd::ServerClosed, Some(&close)),
                _ => s.session_ended(SessionEnd::IdleTimeout, None),
            }
        }
        s.session_ended(SessionEnd::Planned, None);
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
                group: None,
                adapt: false,
                layers: Vec::new(),
                view: None,
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
        built_with(m, &plan(clients), thresholds, at_end, &Scopes::EMPTY)
    }

    /// The same for a plan, with its scopes.
    fn built_with(
        m: &Metrics,
        plan: &[ClientPlan],
        thresholds: &[Threshold],
        at_end: (usize, usize),
        scopes: &Scopes,
    ) -> Report {
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
                plan,
                full_plan: plan,
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
                scopes,
                scoring: Scoring {
                    bands: &BandLimits::default(),
                    group_names: &[],
                    networks: &[],
                    tracks: &[],
                },
            },
        )
    }

    /// A group's figures are those of a run of its clients alone (the same
    /// counts, the same percentiles from the same histogram values), and a
    /// scoped threshold reads them.
    #[test]
    fn a_group_reads_as_a_run_of_its_clients_alone() {
        let mut plan = plan(&[0, 1, 2, 3]);
        for p in &mut plan {
            p.group = Some(p.index / 2);
        }
        let names = ["a".to_string(), "b".to_string()];
        let thresholds = [
            Threshold::parse("audio_received_packets{group=b}", "> 405").unwrap(),
            Threshold::parse("audio_latency_p99_ms{group=a}", "< 1").unwrap(),
            Threshold::parse("audio_lost{meeting=m1}", "== 0").unwrap(),
        ];
        let scopes = Scopes::new(&plan, &names, &[], &thresholds);
        let m = Metrics::laid_out(4, Layout::new(scopes.group_of.clone(), scopes.groups));
        for c in 0..4 {
            record(&m, c, c);
        }
        let r = built_with(&m, &plan, &thresholds, (4, 4), &scopes);
        let kinds: Vec<_> = r
            .scopes
            .iter()
            .map(|s| (s.kind.as_str(), s.name.as_str(), s.clients))
            .collect();
        assert_eq!(
            kinds,
            [("group", "a", 2), ("group", "b", 2), ("meeting", "m1", 2)]
        );
        for (name, clients) in [("a", [0, 1]), ("b", [2, 3])] {
            let alone = report(&clients, &[]);
            let scope = r.scope("group", name).unwrap();
            for f in [
                "audio_received_packets",
                "video_lost",
                "audio_latency_p99_ms",
                "video_jitter_p50_ms",
                "connect_p95_ms",
                "reconnects",
                "send_lateness_p99_ms",
                "audio_bitrate_error_pct",
            ] {
                assert_eq!(
                    scope.figures[f],
                    alone.figure(f).map(round6),
                    "group {name}: {f}"
                );
            }
        }
        let meeting = r.scope("meeting", "m1").unwrap();
        assert!(
            !meeting.figures.contains_key("audio_latency_p99_ms"),
            "no percentiles per meeting"
        );
        assert_eq!(
            meeting.figures["audio_received_packets"],
            Some((206 + 209) as f64)
        );
        // Clients 2 and 3 received 206 and 209 audio packets.
        let v = &r.thresholds;
        assert_eq!((v[0].actual, v[0].pass), (Some(415.0), true));
        assert!(!v[1].pass, "group a's latency p99 is over 1 ms");
        assert_eq!(
            (v[2].name.as_str(), v[2].actual),
            ("audio_lost{meeting=m1}", Some(0.0))
        );
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
        let ends = &m.clients.session_ends;
        assert_eq!(
            (ends.idle_timeout, ends.server_closed, ends.planned),
            (1, 1, 4)
        );
        assert_eq!(ends.unplanned(), m.clients.reconnects);
        assert_eq!(m.clients.server_close_reasons["0x3 closed 3"], 1);
        // Merging is associative with itself: merging the merged report with nothing changes nothing.
        let again = merge(&[("ab".into(), m.clone())]).unwrap();
        assert_eq!(json(&again.audio), json(&m.audio));
    }

    /// Issue #24: the exact loss splits into what was sent while the
    /// receiver's session was down and the rest; the loss of a sender of
    /// another process is never split (it is inferred from the holes).
    #[test]
    fn exact_loss_splits_into_while_down_and_while_connected() {
        use crate::metrics::Down;
        use synth_common::seq::Counts;
        let m = Metrics::new(2);
        // u0 sent audio 0..22; u1 received 12 distinct numbers of them
        // (lost 10), 8 of its numbers were sent while u1 was down, 1 of
        // which arrived on u1's new session: 7 missed while down.
        m.clients[0].next_seq[0].store(22, Relaxed);
        let heard = Counts {
            first: Some(0),
            last: Some(21),
            received: 12,
            distinct: 12,
            ..Counts::default()
        };
        let mut ours = PeerView {
            expect_from: Some([0, 0]),
            ours: true,
            ..PeerView::default()
        };
        ours.media[0].seq = heard;
        ours.down[0] = Down {
            closed: 8,
            open_from: None,
            arrived: 1,
        };
        // A sender of another process with 4 holes in its span.
        let mut other = PeerView::default();
        other.media[0].seq = Counts {
            first: Some(100),
            last: Some(109),
            received: 6,
            distinct: 6,
            ..Counts::default()
        };
        {
            let mut peers = m.clients[1].peers.lock().unwrap();
            peers.insert("u0".into(), ours);
            peers.insert("elsewhere".into(), other);
        }
        let r = built(&m, &[0, 1], &[], (2, 2));
        let rx = &r.audio.received;
        assert_eq!((rx.lost, rx.exact.lost), (14, 10));
        let causes = rx
            .lost_causes
            .expect("a sender of this process was checked");
        assert_eq!((causes.while_connected, causes.while_down), (3, 7));
        assert_eq!(r.meetings[0].lost_while_down, 7);
        // Down since u0's 17 and still down at the end: 17..22 missed.
        ours.down[0] = Down {
            open_from: Some(17),
            ..Down::default()
        };
        m.clients[1].peers.lock().unwrap().insert("u0".into(), ours);
        let r = built(&m, &[0, 1], &[], (2, 2));
        let causes = r.audio.received.lost_causes.unwrap();
        assert_eq!((causes.while_connected, causes.while_down), (5, 5));
        // No sender of this process checked: no split.
        let m = Metrics::new(1);
        m.clients[0]
            .peers
            .lock()
            .unwrap()
            .insert("elsewhere".into(), other);
        let r = built(&m, &[0], &[], (1, 1));
        assert_eq!(r.audio.received.lost, 4);
        assert_eq!(r.audio.received.lost_causes, None);
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
            audio_mos: None,
            video_score: None,
            jitter_ms: Av::default(),
            session_ends: Default::default(),
            freezes: 0,
            lateness_p99_ms: Some(p99 / 10.0),
            server_rtt_ms: P2 {
                p50: Some(p99 / 4.0),
                p99: Some(p99 / 2.0),
            },
            cpu_share: Some(p99 / 100.0),
            host_busy: None,
            host_pressure: None,
            socket_drops: None,
            rx_queue_kb: None,
            saturated: false,
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
