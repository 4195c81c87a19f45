//! `report merge`: one report from the reports of several pods (processes)
//! of the same test, as if one process had run every client.
//!
//! Exact where the reports carry what it takes: counts add, and every
//! percentile comes from the sources' histograms added together (the
//! `hist` fields), never from averaging percentiles, so the merged p99 is the
//! p99 one process would have measured. Rates, shares and bitrates are
//! recomputed from their summed parts (bits over active seconds, frozen over
//! watched time, concealed over slots). Distributions over pairs (frames per
//! second per pair, concealment per pair, freezes per receiver) come from
//! their histograms, so their percentiles are at the histograms' precision
//! (3 significant digits) where a single run's are of the exact values.
//!
//! Not exact, and said so where they appear:
//! - process `peak_rss_bytes` is the sum of each pod's peak, an upper bound
//!   of the peaks' sum at any one time;
//! - the generator's `cpu_share_mean` is the mean over sources (each pod's
//!   share of its own cores), its maxima are the largest of any pod; its
//!   `host` figures are the largest of any pod's host (pods may share one);
//! - the timeline's percentile fields (latency p50/p99, jitter, send
//!   lateness) are the largest of the pods' in each interval, an upper bound:
//!   per-interval histograms are not kept in the report; its scores
//!   (`audio_mos`, `video_score`) are the lowest of the pods', a lower bound.
//!
//! - a phase's and a scope's (group, network, meeting) figures: counts add,
//!   of the others the worse of the pods' is kept (the registry's `merge`),
//!   a bound no pod did better than (their histograms are not kept).
//!
//! The scores section keeps every participant, so its summaries are
//! recomputed from them (exact); its pair scores come from their
//! histograms like the other distributions over pairs.
//!
//! Not added up: the server beside the run (`server_cost`, and each
//! sample's `server`). Every pod watches the same server, so the merged
//! report takes them from the first source that has them (in the order the
//! reports were given), never their sum.
//!
//! Thresholds are checked again on the merged figures ([`Report::judge`]),
//! so a loss budget that each pod kept alone can fail for the whole test.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context as _};
use hdrhistogram::Histogram;

use crate::figure::{self, Merge};
use crate::health::{Health, HostFigures};
use crate::hist;
use crate::model::{
    add_close_reason, network, Adaptation, Av, Behaviour, ByState, Clients, Concealment, Control,
    Counts, Event, ExactReport, FreezeReport, Layers, LostCauses, MediaReport, Meeting,
    Percentiles, ProcessReport, Rate, Received, Report, Sample, ScopeFigures, Sent, SessionEnds,
    Signals, StopReason, Timeline, P2, SCHEMA, SCHEMA_VERSION,
};
use crate::num::{bitrates, round3, round6};
use crate::threshold::Threshold;

/// Merges the reports of several pods, each with the name it is shown by
/// (its file name, or its pod); see the module's doc for the rules.
///
/// Fails on no reports, a report of another schema version, histograms that
/// do not decode, timelines sampled at different intervals, or two sources
/// with the same threshold under different expressions.
pub fn merge(reports: &[(String, Report)]) -> anyhow::Result<Report> {
    if reports.is_empty() {
        bail!("no reports to merge");
    }
    for (name, r) in reports {
        if r.schema != SCHEMA || r.version != SCHEMA_VERSION {
            bail!(
                "{name}: a {} report of version {}, not {SCHEMA} {SCHEMA_VERSION}",
                r.schema,
                r.version
            );
        }
    }
    let all = || reports.iter().map(|(_, r)| r);
    let sum = |f: fn(&Report) -> u64| all().map(f).sum::<u64>();
    let sum_us = |f: fn(&Report) -> usize| all().map(f).sum::<usize>();
    let max = |f: fn(&Report) -> u64| all().map(f).max().unwrap_or(0);
    let pct = |what: &str, f: fn(&Report) -> &Percentiles| {
        percentiles(reports.iter().map(|(n, r)| (n.as_str(), f(r))))
            .with_context(|| format!("merging {what}"))
    };

    let mut connect_failures = BTreeMap::new();
    for r in all() {
        for (reason, n) in &r.connect_failures {
            *connect_failures.entry(reason.clone()).or_insert(0) += n;
        }
    }
    let mut meetings: BTreeMap<String, Meeting> = BTreeMap::new();
    for m in all().flat_map(|r| &r.meetings) {
        match meetings.get_mut(&m.meeting_id) {
            Some(e) => {
                e.clients += m.clients;
                e.connected += m.connected;
                e.audio_sent += m.audio_sent;
                e.video_sent += m.video_sent;
                e.audio_received += m.audio_received;
                e.video_received += m.video_received;
                e.lost += m.lost;
                e.lost_while_down += m.lost_while_down;
            }
            None => {
                meetings.insert(m.meeting_id.clone(), m.clone());
            }
        }
    }
    let searches: Vec<_> = all().filter_map(|r| r.search.as_ref()).collect();

    let mut merged = Report {
        schema: SCHEMA.to_string(),
        version: SCHEMA_VERSION,
        server: common_or_joined(all().map(|r| r.server.as_str())),
        pack: common_or_joined(all().map(|r| r.pack.as_str())),
        elapsed_s: all().map(|r| r.elapsed_s).fold(0.0, f64::max),
        stopped_by: all()
            .map(|r| r.stopped_by)
            .find(|s| *s != StopReason::Duration)
            .unwrap_or(StopReason::Duration),
        clients: Clients {
            planned: sum_us(|r| r.clients.planned),
            connected: sum_us(|r| r.clients.connected),
            failed: sum_us(|r| r.clients.failed),
            connected_at_end: sum_us(|r| r.clients.connected_at_end),
            started_at_end: sum_us(|r| r.clients.started_at_end),
            reconnects: sum(|r| r.clients.reconnects),
            stalls: sum(|r| r.clients.stalls),
            stalled_s: round3(all().map(|r| r.clients.stalled_s).sum()),
            unscheduled: sum_us(|r| r.clients.unscheduled),
            session_ends: all().fold(SessionEnds::default(), |mut e, r| {
                e.add(&r.clients.session_ends);
                e
            }),
            server_close_reasons: all().fold(BTreeMap::new(), |mut m, r| {
                for (k, n) in &r.clients.server_close_reasons {
                    add_close_reason(&mut m, k, *n);
                }
                m
            }),
        },
        connect_ms: pct("connect_ms", |r| &r.connect_ms)?,
        connect_failures,
        audio: media(reports, |r| &r.audio).context("merging audio")?,
        video: media(reports, |r| &r.video).context("merging video")?,
        heartbeats: Counts {
            sent: sum(|r| r.heartbeats.sent),
            received: sum(|r| r.heartbeats.received),
        },
        server_signals: Signals {
            congestion_received: sum(|r| r.server_signals.congestion_received),
            clients_with_congestion: sum_us(|r| r.server_signals.clients_with_congestion),
            congestion_max_per_client: max(|r| r.server_signals.congestion_max_per_client),
            keyframe_requests_received: sum(|r| r.server_signals.keyframe_requests_received),
            keyframes_answered: sum(|r| r.server_signals.keyframes_answered),
            keyframe_answer_ms: pct("server_signals.keyframe_answer_ms", |r| {
                &r.server_signals.keyframe_answer_ms
            })?,
            room_congestion_seen: sum(|r| r.server_signals.room_congestion_seen),
            keyframe_requests_sent: sum(|r| r.server_signals.keyframe_requests_sent),
            keyframe_requests_answered: sum(|r| r.server_signals.keyframe_requests_answered),
            keyframe_wait_ms: pct("server_signals.keyframe_wait_ms", |r| {
                &r.server_signals.keyframe_wait_ms
            })?,
            server_rtt_ms: pct("server_signals.server_rtt_ms", |r| {
                &r.server_signals.server_rtt_ms
            })?,
            participant_joined_seen: sum(|r| r.server_signals.participant_joined_seen),
            participant_left_seen: sum(|r| r.server_signals.participant_left_seen),
            other_types: all().fold(BTreeMap::new(), |mut acc, r| {
                for (k, n) in &r.server_signals.other_types {
                    *acc.entry(k.clone()).or_insert(0) += n;
                }
                acc
            }),
            join_visibility_ms: pct("server_signals.join_visibility_ms", |r| {
                &r.server_signals.join_visibility_ms
            })?,
        },
        control: all().fold(Control::default(), |mut acc, r| {
            acc.add(&r.control);
            acc
        }),
        send_lateness_ms: pct("send_lateness_ms", |r| &r.send_lateness_ms)?,
        generator: generator(reports),
        process: ProcessReport {
            cpu_seconds: round3(all().map(|r| r.process.cpu_seconds).sum()),
            // Each pod's own peak, summed: an upper bound of the pods'
            // memory at any one time (their peaks need not coincide).
            peak_rss_bytes: sum(|r| r.process.peak_rss_bytes),
            rss_bytes: sum(|r| r.process.rss_bytes),
        },
        meetings: meetings.into_values().collect(),
        thresholds: Vec::new(),
        aborted: all().find_map(|r| r.aborted.clone()),
        passed: true,
        timeline: timeline(reports)?,
        events: events(reports),
        search: match searches.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        },
        // Every pod watched the same server: its figures are not added.
        server_cost: all().find_map(|r| r.server_cost.clone()),
        merged_from: reports.iter().map(|(n, _)| n.clone()).collect(),
        networks: network::merge(all().map(|r| &r.networks[..])),
        layers: all()
            .filter_map(|r| r.layers.as_ref())
            .fold(None, |acc: Option<Layers>, l| {
                let mut acc = acc.unwrap_or_default();
                acc.add(l);
                Some(acc)
            }),
        adaptation: all().filter_map(|r| r.adaptation.as_ref()).fold(
            None,
            |acc: Option<Adaptation>, a| {
                let mut acc = acc.unwrap_or_default();
                acc.add(a);
                Some(acc)
            },
        ),
        // Pods of one run share their config and seed; reports of several
        // seeds have none in common.
        seed: {
            let mut seeds = all().map(|r| r.seed);
            let first = seeds.next().flatten();
            seeds.all(|s| s == first).then_some(first).flatten()
        },
        behaviour: behaviour(reports)?,
        scores: scores(reports)?,
        scopes: scopes(all()),
        // Every pod spoke to the same server: the first that says.
        wire: all().find_map(|r| r.wire.clone()),
    };
    merged.judge(&thresholds(reports)?);
    Ok(merged)
}

/// The scores sections merged ([`crate::model::Scores::merge`]): every
/// participant kept, the summaries recomputed from them, the pairs'
/// histograms added; `None` when no source has one.
fn scores(reports: &[(String, Report)]) -> anyhow::Result<Option<crate::model::Scores>> {
    let mut out: Option<crate::model::Scores> = None;
    for (name, r) in reports {
        let Some(s) = &r.scores else { continue };
        match &mut out {
            None => out = Some(s.clone()),
            Some(acc) => acc.merge(s).map_err(|e| anyhow::anyhow!("{name}: {e}"))?,
        }
    }
    Ok(out)
}

/// The behaviour sections added up: counts add, the rejoin time comes from
/// the added histograms, a phase's figures combine by name ([`figures`]).
fn behaviour(reports: &[(String, Report)]) -> anyhow::Result<Option<Behaviour>> {
    let parts: Vec<(&str, &Behaviour)> = reports
        .iter()
        .filter_map(|(n, r)| Some((n.as_str(), r.behaviour.as_ref()?)))
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    let mut out = Behaviour {
        schedule_digest: common_or_joined(parts.iter().map(|(_, b)| b.schedule_digest.as_str())),
        rejoin_ms: percentiles(parts.iter().map(|(n, b)| (*n, &b.rejoin_ms)))
            .context("merging behaviour.rejoin_ms")?,
        ..Behaviour::default()
    };
    for (_, b) in &parts {
        out.planned.add(&b.planned);
        out.measured.add(&b.measured);
        out.viewers += b.viewers;
        out.speaking_heartbeats += b.speaking_heartbeats;
        out.actions += b.actions;
        out.screen.add(&b.screen);
        for ph in &b.phases {
            match out.phases.iter_mut().find(|p| p.name == ph.name) {
                None => out.phases.push(ph.clone()),
                Some(p) => {
                    p.t_start_s = p.t_start_s.min(ph.t_start_s);
                    p.t_end_s = p.t_end_s.max(ph.t_end_s);
                    p.connected_at_end += ph.connected_at_end;
                    figures(&mut p.figures, &ph.figures);
                }
            }
        }
    }
    Ok(Some(out))
}

/// How a figure's pods' values combine: they add (a count), the larger is
/// kept (a percentile, or a rate where higher is worse) or the smaller (a
/// score or a rate where lower is worse); the registry says, and a name it
/// does not know keeps the larger.
fn how(name: &str) -> Merge {
    figure::get(name).map_or(Merge::Largest, |f| f.merge)
}

/// The groups', networks' and meetings' figures: a scope of several
/// pods (a group runs in every pod) combines as a phase's figures do.
fn scopes<'a>(all: impl Iterator<Item = &'a Report>) -> Vec<ScopeFigures> {
    let mut out: Vec<ScopeFigures> = Vec::new();
    for s in all.flat_map(|r| &r.scopes) {
        match out
            .iter_mut()
            .find(|o| o.kind == s.kind && o.name == s.name)
        {
            None => out.push(s.clone()),
            Some(o) => {
                o.clients += s.clients;
                figures(&mut o.figures, &s.figures);
            }
        }
    }
    out
}

/// Takes `from`'s figures into `into` as the registry says ([`how`]): a
/// bound no pod's participants did better than.
fn figures(into: &mut BTreeMap<String, Option<f64>>, from: &BTreeMap<String, Option<f64>>) {
    for (k, v) in from {
        let e = into.entry(k.clone()).or_insert(None);
        *e = match (*e, *v) {
            (Some(a), Some(b)) => Some(match how(k) {
                Merge::Adds => a + b,
                Merge::Largest => a.max(b),
                Merge::Smallest => a.min(b),
                // One server seen by every pod: the first pod's.
                Merge::Same => a,
            }),
            (a, b) => a.or(b),
        };
    }
}

/// The one value all sources share, else the distinct values joined with `, `.
fn common_or_joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

/// Percentiles of the sources' histograms added together, as
/// [`Percentiles::from_us`] computes them for one run.
fn percentiles<'a>(
    parts: impl Iterator<Item = (&'a str, &'a Percentiles)> + Clone,
) -> anyhow::Result<Percentiles> {
    for (name, p) in parts.clone() {
        if p.count > 0 && p.hist.is_none() {
            bail!(
                "{name} has {} samples but no histogram: cannot merge exactly",
                p.count
            );
        }
    }
    let h = merged_hist(parts.map(|(name, p)| (name, p.hist.as_deref())))?;
    Ok(h.map_or_else(Percentiles::default, |h| Percentiles::from_us(&h)))
}

/// The encoded histograms of `parts` added together; `None` when all are empty.
fn merged_hist<'a>(
    parts: impl Iterator<Item = (&'a str, Option<&'a str>)> + Clone,
) -> anyhow::Result<Option<Histogram<u64>>> {
    // Decode one by one first, so that a bad one is named.
    for (name, text) in parts.clone() {
        if let Some(t) = text {
            hist::decode(t).map_err(|e| anyhow::anyhow!("{name}: histogram {e}"))?;
        }
    }
    hist::merge(parts.map(|(_, t)| t)).map_err(anyhow::Error::msg)
}

fn media(
    reports: &[(String, Report)],
    pick: fn(&Report) -> &MediaReport,
) -> anyhow::Result<MediaReport> {
    let sent = || reports.iter().map(|(_, r)| &pick(r).sent);
    let recv = || reports.iter().map(|(n, r)| (n.as_str(), &pick(r).received));
    let add = |f: fn(&Received) -> u64| recv().map(|(_, r)| f(r)).sum::<u64>();
    let add_sent = |f: fn(&Sent) -> u64| sent().map(f).sum::<u64>();
    let fsum = |f: fn(&Sent) -> f64| sent().map(f).sum::<f64>();
    let pct = |what: &str, f: fn(&Received) -> &Percentiles| {
        percentiles(recv().map(|(n, r)| (n, f(r)))).with_context(|| format!("merging {what}"))
    };
    let (bits, target_bits, active_s) = (
        fsum(|s| s.bits),
        fsum(|s| s.target_bits),
        fsum(|s| s.active_s),
    );
    let (bitrate_kbps, target_kbps, bitrate_error_pct) = bitrates(bits, target_bits, active_s);

    let rates = || recv().map(|(n, r)| (n, r.rate_per_sender.hist.as_deref()));
    let rate_hist = merged_hist(rates())?;
    let pairs = add(|r| r.rate_per_sender.pairs);
    let rate_sum: f64 = recv().map(|(_, r)| r.rate_per_sender.sum).sum();
    let rate = Rate {
        pairs,
        p5: rate_hist
            .as_ref()
            .and_then(|h| hist::quantile(h, 0.05, 1000.0))
            .map(round3),
        p50: rate_hist
            .as_ref()
            .and_then(|h| hist::quantile(h, 0.5, 1000.0))
            .map(round3),
        mean: (pairs > 0).then(|| round3(rate_sum / pairs as f64)),
        sum: rate_sum,
        hist: rate_hist.as_ref().and_then(hist::encode),
    };

    let freezes = if recv().any(|(_, r)| r.freezes.is_some()) {
        let fr = || recv().filter_map(|(n, r)| Some((n, r.freezes.as_ref()?)));
        let h = merged_hist(fr().map(|(n, f)| (n, f.per_receiver_hist.as_deref())))?;
        let total_ms: f64 = fr().map(|(_, f)| f.total_ms).sum();
        let watched_ms: f64 = fr().map(|(_, f)| f.watched_ms).sum();
        let fmax = |g: fn(&FreezeReport) -> f64| fr().map(|(_, f)| g(f)).fold(0.0, f64::max);
        Some(FreezeReport {
            count: fr().map(|(_, f)| f.count).sum(),
            total_ms: round3(total_ms),
            longest_ms: fmax(|f| f.longest_ms),
            share: (watched_ms > 0.0).then(|| round6((total_ms / watched_ms).min(1.0))),
            receivers_with_freezes: fr().map(|(_, f)| f.receivers_with_freezes).sum(),
            per_receiver_p50: h
                .as_ref()
                .and_then(|h| hist::quantile(h, 0.5, 1.0))
                .unwrap_or(0.0),
            per_receiver_max: fmax(|f| f.per_receiver_max),
            per_receiver_total_max_ms: fmax(|f| f.per_receiver_total_max_ms),
            watched_ms: round3(watched_ms),
            per_receiver_hist: h.as_ref().and_then(hist::encode),
        })
    } else {
        None
    };

    let concealment = if recv().any(|(_, r)| r.concealment.is_some()) {
        let co = || recv().filter_map(|(n, r)| Some((n, r.concealment.as_ref()?)));
        let h = merged_hist(co().map(|(n, c)| (n, c.pair_hist.as_deref())))?;
        let slots: u64 = co().map(|(_, c)| c.slots).sum();
        let concealed: u64 = co().map(|(_, c)| c.concealed).sum();
        Some(Concealment {
            slots,
            concealed,
            share: (slots > 0).then(|| round6(concealed as f64 / slots as f64)),
            pair_p95: h
                .as_ref()
                .and_then(|h| hist::quantile(h, 0.95, 1e6))
                .map(round6),
            pair_hist: h.as_ref().and_then(hist::encode),
        })
    } else {
        None
    };

    Ok(MediaReport {
        sent: Sent {
            packets: add_sent(|s| s.packets),
            acked: add_sent(|s| s.acked),
            unacked: add_sent(|s| s.unacked),
            bytes: add_sent(|s| s.bytes),
            payload_bytes: add_sent(|s| s.payload_bytes),
            bitrate_kbps,
            target_kbps,
            bitrate_error_pct,
            active_s,
            bits,
            target_bits,
        },
        received: Received {
            packets: add(|r| r.packets),
            bytes: add(|r| r.bytes),
            lost: add(|r| r.lost),
            exact: ExactReport {
                pairs: add(|r| r.exact.pairs),
                expected: add(|r| r.exact.expected),
                lost: add(|r| r.exact.lost),
            },
            lost_causes: lost_causes(recv()),
            late: add(|r| r.late),
            reordered: add(|r| r.reordered),
            duplicate: add(|r| r.duplicate),
            corrupted: add(|r| r.corrupted),
            latency_ms: pct("latency_ms", |r| &r.latency_ms)?,
            cross_host_latency_ms: pct("cross_host_latency_ms", |r| &r.cross_host_latency_ms)?,
            jitter_ms: pct("jitter_ms", |r| &r.jitter_ms)?,
            rate_per_sender: rate,
            freezes,
            concealment,
        },
    })
}

/// The split of the exact loss over every pod: known when every pod that
/// checked a pair split its loss (a report from before the split has none).
fn lost_causes<'a>(mut recv: impl Iterator<Item = (&'a str, &'a Received)>) -> Option<LostCauses> {
    recv.try_fold(None, |acc: Option<LostCauses>, (_, r)| {
        match (r.lost_causes, r.exact.pairs) {
            (Some(c), _) => {
                let mut sum = acc.unwrap_or_default();
                sum.add(&c);
                Some(Some(sum))
            }
            (None, 0) => Some(acc),
            (None, _) => None,
        }
    })
    .flatten()
}

/// The generator's health over every pod: saturated if any pod was (each
/// reason and note prefixed with its source), the largest lateness, CPU
/// share and event-loop delay of any pod, server delays and intervals
/// summed, cores summed. `cpu_share_mean` is the mean of the pods' means,
/// each a share of its own cores (pods of unequal cores weigh the same).
fn generator(reports: &[(String, Report)]) -> Health {
    let g = || reports.iter().map(|(_, r)| &r.generator);
    let fmax = |f: fn(&Health) -> f64| g().map(f).fold(0.0, f64::max);
    let fsum = |f: fn(&Health) -> f64| g().map(f).sum::<f64>();
    let prefixed = |f: fn(&Health) -> &Vec<String>| {
        reports
            .iter()
            .flat_map(|(n, r)| f(&r.generator).iter().map(move |l| format!("{n}: {l}")))
            .collect()
    };
    Health {
        lateness_p99_ms: fmax(|h| h.lateness_p99_ms),
        credit_wait_s: fsum(|h| h.credit_wait_s),
        skipped_s: fsum(|h| h.skipped_s),
        schedule_kept: g().all(|h| h.schedule_kept),
        notes: prefixed(|h| &h.notes),
        cpu_share_mean: fsum(|h| h.cpu_share_mean) / reports.len().max(1) as f64,
        cpu_share_max: fmax(|h| h.cpu_share_max),
        cpu_busy_intervals: g().map(|h| h.cpu_busy_intervals).max().unwrap_or(0),
        cpu_intervals: g().map(|h| h.cpu_intervals).sum(),
        cores: fsum(|h| h.cores),
        loop_delay_p99_ms: fmax(|h| h.loop_delay_p99_ms),
        loop_delay_max_ms: fmax(|h| h.loop_delay_max_ms),
        host: host(&g().filter_map(|h| h.host.as_ref()).collect::<Vec<_>>()),
        saturated: g().any(|h| h.saturated),
        reasons: prefixed(|h| &h.reasons),
    }
}

/// The hosts of the pods that measured theirs: the largest of each figure
/// (the most loaded host speaks for the run), intervals summed; pressure
/// only from the pods whose kernel gave it.
fn host(hosts: &[&HostFigures]) -> Option<HostFigures> {
    if hosts.is_empty() {
        return None;
    }
    let most = |f: fn(&HostFigures) -> f64| hosts.iter().map(|h| f(h)).fold(0.0, f64::max);
    let opt =
        |f: fn(&HostFigures) -> Option<f64>| hosts.iter().filter_map(|h| f(h)).reduce(f64::max);
    Some(HostFigures {
        intervals: hosts.iter().map(|h| h.intervals).sum(),
        busy_mean: most(|h| h.busy_mean),
        busy_max: most(|h| h.busy_max),
        busy_intervals: hosts.iter().map(|h| h.busy_intervals).max().unwrap_or(0),
        pressure_mean: opt(|h| h.pressure_mean),
        pressure_max: opt(|h| h.pressure_max),
        pressure_intervals: hosts.iter().filter_map(|h| h.pressure_intervals).max(),
        // Each pod's own sockets: drops add up, the worst pod speaks for the rest.
        socket_drops: hosts
            .iter()
            .filter_map(|h| h.socket_drops)
            .reduce(|a, b| a + b),
        socket_drop_intervals: hosts.iter().filter_map(|h| h.socket_drop_intervals).max(),
        rx_queue_max_kb: opt(|h| h.rx_queue_max_kb),
    })
}

/// The thresholds of every source (their union by name), without the
/// built-in verdicts, which [`Report::judge`] adds again.
fn thresholds(reports: &[(String, Report)]) -> anyhow::Result<Vec<Threshold>> {
    let mut by_name: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for (source, r) in reports {
        for v in r.thresholds.iter().filter(|v| !v.is_built_in()) {
            match by_name.get(v.name.as_str()) {
                Some((expr, other)) if *expr != v.expr => bail!(
                    "threshold {} is \"{}\" in {other} but \"{}\" in {source}: merge reports of the same test",
                    v.name,
                    expr,
                    v.expr
                ),
                Some(_) => {}
                None => {
                    by_name.insert(&v.name, (&v.expr, source));
                }
            }
        }
    }
    by_name
        .into_iter()
        .map(|(name, (expr, source))| {
            Threshold::parse(name, expr).with_context(|| format!("{source}: threshold {name}"))
        })
        .collect()
}

/// Every source's events in time order, each name prefixed with its source,
/// `t_s` counted from the earliest source's start.
fn events(reports: &[(String, Report)]) -> Vec<Event> {
    let start = reports
        .iter()
        .filter_map(|(_, r)| r.timeline.as_ref().map(|t| t.start_unix_ms))
        .min();
    let mut all: Vec<Event> = reports
        .iter()
        .flat_map(|(n, r)| {
            r.events.iter().map(move |e| Event {
                name: format!("{n}: {}", e.name),
                ..e.clone()
            })
        })
        .collect();
    if let Some(start) = start {
        for e in &mut all {
            e.t_s = round3(e.unix_ms.saturating_sub(start) as f64 / 1000.0);
        }
    }
    all.sort_by_key(|e| e.unix_ms);
    all
}

/// The sources' timelines on one grid: the earliest start, every interval.
///
/// Each source's samples go to the grid point nearest their end (`unix_ms`).
/// Within a source, samples sharing a point add their counts, average
/// their Mbit/s over their lengths, and give their last client states,
/// memory and CPU. Across sources, counts, Mbit/s, client states and memory
/// add, the CPU share is the mean, `failing` the union, and the percentile
/// fields the largest of the sources': an upper bound, since per-interval
/// histograms are not kept. `null` unless every source has a timeline.
fn timeline(reports: &[(String, Report)]) -> anyhow::Result<Option<Timeline>> {
    let mut lines = Vec::new();
    for (name, r) in reports {
        match &r.timeline {
            Some(t) => lines.push((name.as_str(), t)),
            None => return Ok(None),
        }
    }
    let Some((first_name, first)) = lines.first() else {
        return Ok(None);
    };
    for (name, t) in &lines {
        if t.interval_s != first.interval_s {
            bail!(
                "timelines sampled every {} s ({first_name}) and {} s ({name}) cannot be aligned: give every pod the same timeline_interval",
                first.interval_s,
                t.interval_s
            );
        }
    }
    if !first.interval_s.is_finite() || first.interval_s <= 0.0 {
        bail!("{first_name}: timeline interval {} s", first.interval_s);
    }
    let start = lines
        .iter()
        .map(|(_, t)| t.start_unix_ms)
        .min()
        .unwrap_or(0);
    let step_ms = first.interval_s * 1000.0;
    let point = |unix_ms: u64| (unix_ms.saturating_sub(start) as f64 / step_ms).round() as u64;

    // Per grid point, each source's samples there folded into one.
    let mut grid: BTreeMap<u64, Vec<Sample>> = BTreeMap::new();
    for (_, t) in &lines {
        let mut mine: BTreeMap<u64, (Sample, f64, f64, f64)> = BTreeMap::new();
        let mut prev_t = 0.0;
        for s in &t.samples {
            let secs = (s.t_s - prev_t).max(0.0);
            prev_t = s.t_s;
            let (sent_bits, recv_bits) = (s.sent_mbps * secs, s.recv_mbps * secs);
            mine.entry(point(s.unix_ms))
                .and_modify(|(acc, sb, rb, len)| {
                    *acc = within_source(acc, s);
                    *sb += sent_bits;
                    *rb += recv_bits;
                    *len += secs;
                })
                .or_insert_with(|| (s.clone(), sent_bits, recv_bits, secs));
        }
        for (k, (mut s, sb, rb, len)) in mine {
            if len > 0.0 {
                s.sent_mbps = round3(sb / len);
                s.recv_mbps = round3(rb / len);
            }
            grid.entry(k).or_default().push(s);
        }
    }
    let samples = grid
        .into_iter()
        .map(|(k, parts)| across_sources(k, first.interval_s, start, &parts))
        .collect();
    Ok(Some(Timeline {
        interval_s: first.interval_s,
        start_unix_ms: start,
        samples,
    }))
}

/// Two samples of one source at the same grid point: counts add, the
/// later gives the states, memory and CPU share (Mbit/s are set by the caller).
fn within_source(a: &Sample, b: &Sample) -> Sample {
    let mut failing: BTreeSet<String> = a.failing.iter().cloned().collect();
    failing.extend(b.failing.iter().cloned());
    Sample {
        phase: b.phase.clone().or_else(|| a.phase.clone()),
        sent_packets: add_av(a.sent_packets, b.sent_packets),
        recv_packets: add_av(a.recv_packets, b.recv_packets),
        lost: add_av(a.lost, b.lost),
        latency_ms: Av {
            audio: max_p2(a.latency_ms.audio, b.latency_ms.audio),
            video: max_p2(a.latency_ms.video, b.latency_ms.video),
        },
        jitter_ms: Av {
            audio: max_opt(a.jitter_ms.audio, b.jitter_ms.audio),
            video: max_opt(a.jitter_ms.video, b.jitter_ms.video),
        },
        freezes: a.freezes + b.freezes,
        session_ends: {
            let mut e = a.session_ends;
            e.add(&b.session_ends);
            e
        },
        lateness_p99_ms: max_opt(a.lateness_p99_ms, b.lateness_p99_ms),
        server_rtt_ms: max_p2(a.server_rtt_ms, b.server_rtt_ms),
        audio_mos: min_opt(a.audio_mos, b.audio_mos),
        video_score: min_opt(a.video_score, b.video_score),
        server: match (&a.server, &b.server) {
            (Some(x), Some(y)) => {
                let mut x = x.clone();
                x.absorb(y);
                Some(x)
            }
            (x, y) => y.clone().or_else(|| x.clone()),
        },
        failing: failing.into_iter().collect(),
        ..b.clone()
    }
}

/// One merged sample from each source's sample at grid point `k`.
fn across_sources(k: u64, interval_s: f64, start: u64, parts: &[Sample]) -> Sample {
    let mut out = Sample {
        t_s: round3(k as f64 * interval_s),
        unix_ms: start + (k as f64 * interval_s * 1000.0).round() as u64,
        phase: parts.iter().find_map(|s| s.phase.clone()),
        clients: ByState::default(),
        sent_packets: Av::default(),
        recv_packets: Av::default(),
        sent_mbps: 0.0,
        recv_mbps: 0.0,
        lost: Av::default(),
        latency_ms: Av::default(),
        jitter_ms: Av::default(),
        freezes: 0,
        session_ends: SessionEnds::default(),
        lateness_p99_ms: None,
        server_rtt_ms: P2::default(),
        cpu_share: None,
        host_busy: None,
        host_pressure: None,
        socket_drops: None,
        rx_queue_kb: None,
        saturated: false,
        rss_mb: 0.0,
        // The same server seen by every pod: the first one's, not a sum.
        server: parts.iter().find_map(|s| s.server.clone()),
        failing: Vec::new(),
        audio_mos: None,
        video_score: None,
    };
    let mut failing = BTreeSet::new();
    for s in parts {
        let (c, o) = (&s.clients, &mut out.clients);
        o.pending += c.pending;
        o.connecting += c.connecting;
        o.connected += c.connected;
        o.stalled += c.stalled;
        o.reconnecting += c.reconnecting;
        o.failed += c.failed;
        o.done += c.done;
        o.away += c.away;
        let folded = within_source(&out, s);
        out.sent_packets = folded.sent_packets;
        out.recv_packets = folded.recv_packets;
        out.lost = folded.lost;
        out.latency_ms = folded.latency_ms;
        out.jitter_ms = folded.jitter_ms;
        out.freezes = folded.freezes;
        out.session_ends = folded.session_ends;
        out.lateness_p99_ms = folded.lateness_p99_ms;
        out.server_rtt_ms = folded.server_rtt_ms;
        out.audio_mos = folded.audio_mos;
        out.video_score = folded.video_score;
        out.sent_mbps = round3(out.sent_mbps + s.sent_mbps);
        out.recv_mbps = round3(out.recv_mbps + s.recv_mbps);
        out.rss_mb = round3(out.rss_mb + s.rss_mb);
        failing.extend(s.failing.iter().cloned());
    }
    let cpu: Vec<f64> = parts.iter().filter_map(|s| s.cpu_share).collect();
    out.cpu_share = (!cpu.is_empty()).then(|| round3(cpu.iter().sum::<f64>() / cpu.len() as f64));
    // Pods may share a host or not: the most loaded one speaks for the interval.
    let most = |f: fn(&Sample) -> Option<f64>| parts.iter().filter_map(f).reduce(f64::max);
    out.host_busy = most(|s| s.host_busy);
    out.host_pressure = most(|s| s.host_pressure);
    // Each pod's own sockets: drops add up, the deepest queue speaks.
    let drops: Vec<u64> = parts.iter().filter_map(|s| s.socket_drops).collect();
    out.socket_drops = (!drops.is_empty()).then(|| drops.iter().sum());
    out.rx_queue_kb = most(|s| s.rx_queue_kb);
    out.saturated = parts.iter().any(|s| s.saturated);
    out.failing = failing.into_iter().collect();
    out
}

fn add_av<T: std::ops::Add<Output = T>>(a: Av<T>, b: Av<T>) -> Av<T> {
    Av {
        audio: a.audio + b.audio,
        video: a.video + b.video,
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// The lower of two scores (lower is worse): the worst pod speaks for the interval.
fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_p2(a: P2, b: P2) -> P2 {
    P2 {
        p50: max_opt(a.p50, b.p50),
        p99: max_opt(a.p99, b.p99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::tests::report;
    use crate::model::score::{summarize, ParticipantScore};
    use crate::model::{ServerCost, ServerSample};
    use crate::score::{BandIn, BandLimits};

    fn scored_report(scores: Option<crate::model::Scores>) -> Report {
        let mut r = crate::model::bare();
        r.scores = scores;
        r
    }

    fn scored(limits: &BandLimits, ids: &[&str]) -> crate::model::Scores {
        let ps = ids
            .iter()
            .map(|id| {
                let i = BandIn {
                    latency_p95_ms: Some(50.0),
                    ..BandIn::default()
                };
                ParticipantScore::new(*id, "g", "m", None, None, i, limits)
            })
            .collect();
        summarize(limits, &[4.0], &[], ps)
    }

    /// Pods' scores merge into one section of every participant; a pod
    /// without one adds nothing, and limits that differ name the pod.
    #[test]
    fn scores_sections_merge() {
        let l = BandLimits::default();
        let parts = vec![
            (
                "a.json".to_string(),
                scored_report(Some(scored(&l, &["a1", "a2"]))),
            ),
            ("b.json".to_string(), scored_report(None)),
            (
                "c.json".to_string(),
                scored_report(Some(scored(&l, &["c1"]))),
            ),
        ];
        let m = merge(&parts).unwrap();
        let s = m.scores.unwrap();
        assert_eq!(s.run.participants, 3);
        assert_eq!(s.run.verdicts.green, 3);
        assert_eq!(s.pairs.audio_mos.n, 2);
        assert!(merge(&parts[1..2]).unwrap().scores.is_none());

        let strict = BandLimits {
            k_red_fail: 1,
            ..BandLimits::default()
        };
        let parts = vec![
            (
                "a.json".to_string(),
                scored_report(Some(scored(&l, &["a1"]))),
            ),
            (
                "c.json".to_string(),
                scored_report(Some(scored(&strict, &["c1"]))),
            ),
        ];
        let e = format!("{:#}", merge(&parts).unwrap_err());
        assert!(e.starts_with("c.json: scores: "), "{e}");
    }

    /// Two pods watching the same server: its figures are the first pod's
    /// that has them, not their sum.
    #[test]
    fn the_server_beside_the_run_is_not_added_up() {
        let with_server = |cores: f64, mb: f64| {
            let mut r = report();
            // No histograms in this report: no percentiles to merge.
            r.audio.received.latency_ms = Percentiles::default();
            r.video.received.latency_ms = Percentiles::default();
            r.server_cost = Some(ServerCost {
                pid: Some(7),
                cores_max: Some(cores),
                rss_peak_mb: Some(mb),
                ..ServerCost::default()
            });
            r.timeline = Some(Timeline {
                interval_s: 1.0,
                start_unix_ms: 1_000,
                samples: vec![Sample {
                    t_s: 1.0,
                    unix_ms: 2_000,
                    server: Some(ServerSample {
                        cores: Some(cores),
                        rss_mb: Some(mb),
                        ..ServerSample::default()
                    }),
                    ..Sample::default()
                }],
            });
            r
        };
        let mut plain = with_server(0.0, 0.0);
        plain.server_cost = None;
        plain.timeline.as_mut().unwrap().samples[0].server = None;
        let merged = merge(&[
            ("a".into(), plain),
            ("b".into(), with_server(1.5, 40.0)),
            ("c".into(), with_server(2.5, 90.0)),
        ])
        .unwrap();
        let cost = merged.server_cost.unwrap();
        assert_eq!((cost.cores_max, cost.rss_peak_mb), (Some(1.5), Some(40.0)));
        let s = merged.timeline.unwrap().samples[0].server.clone().unwrap();
        assert_eq!((s.cores, s.rss_mb), (Some(1.5), Some(40.0)));
    }
}
