//! The report as the text summary `synth-replay run` and `report merge`
//! print: one function a section, in the order they are printed.

use std::fmt::{self, Write as _};

use crate::model::{MediaReport, Percentiles, Report};

impl Report {
    /// The readable summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        // Writing to a String cannot fail.
        let _ = summary(&mut o, self);
        o
    }
}

fn summary(o: &mut String, r: &Report) -> fmt::Result {
    head(o, r)?;
    media(o, "audio", &r.audio)?;
    media(o, "video", &r.video)?;
    nothing_received(o, r)?;
    signals(o, r)?;
    generator(o, r)?;
    meetings(o, r)?;
    scores(o, r)?;
    verdicts(o, r)?;
    search(o, r)?;
    server_cost(o, r)?;
    adaptation_and_networks(o, r)?;
    behaviour(o, r)?;
    result(o, r)
}

/// A figure that may be missing (a dash), to one decimal.
fn f(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.1}"))
}

/// Percentiles as `p50 … / p95 … / p99 … / max … ms`.
fn pct(p: &Percentiles) -> String {
    format!(
        "p50 {} / p95 {} / p99 {} / max {} ms",
        f(p.p50),
        f(p.p95),
        f(p.p99),
        f(p.max)
    )
}

/// The server, the pack, the run, the clients and their connecting.
fn head(o: &mut String, r: &Report) -> fmt::Result {
    writeln!(o, "── synth-replay report ──────────────────────────────")?;
    writeln!(o, "server   {}", r.server)?;
    writeln!(o, "pack     {}", r.pack)?;
    writeln!(
        o,
        "ran      {:.1} s (ended by {})",
        r.elapsed_s, r.stopped_by
    )?;
    let c = &r.clients;
    writeln!(
        o,
        "clients  {} planned, {} connected, {} failed, {} reconnects, {} stalls ({:.0} s)",
        c.planned, c.connected, c.failed, c.reconnects, c.stalls, c.stalled_s
    )?;
    let ends = &c.session_ends;
    if ends.unplanned() + ends.planned > 0 {
        writeln!(o, "ends     {}", ends.line(&c.server_close_reasons))?;
    }
    let fails: Vec<String> = r
        .connect_failures
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    if !fails.is_empty() {
        writeln!(o, "failures {}", fails.join(", "))?;
    }
    writeln!(o, "connect  {}", pct(&r.connect_ms))?;
    Ok(())
}

/// When (almost) nothing the clients sent each other came back, the
/// built-in `delivered_share` fails the run: one line with the likely
/// cause (a server on another wire, such as upstream's RnD branch, looks
/// like this).
fn nothing_received(o: &mut String, r: &Report) -> fmt::Result {
    match nothing(r) {
        Some(line) => writeln!(o, "{line}"),
        None => Ok(()),
    }
}

/// The line of [`nothing_received`], if due (the HTML page shows it too).
pub(crate) fn nothing(r: &Report) -> Option<String> {
    r.nothing_delivered().map(|line| format!("FAILED   {line}"))
}

/// One medium: sent, acknowledged, received, lost, latency, jitter, rate, freezes or concealment.
fn media(o: &mut String, name: &str, m: &MediaReport) -> fmt::Result {
    let s = &m.sent;
    writeln!(
        o,
        "{name}    sent {} pkts {:.2} MB, {} kbps/client (pack {} kbps, error {} %)",
        s.packets,
        s.bytes as f64 / 1e6,
        f(s.bitrate_kbps),
        f(s.target_kbps),
        s.bitrate_error_pct
            .map_or("-".into(), |e| format!("{e:.2}")),
    )?;
    writeln!(
        o,
        "         acked {} of them, {} unacknowledged",
        s.acked, s.unacked
    )?;
    let r = &m.received;
    writeln!(
        o,
        "         recv {} pkts {:.2} MB: {} lost (exact: {} of {} expected), {} late, {} reordered, {} duplicate, {} corrupted",
        r.packets,
        r.bytes as f64 / 1e6,
        r.lost,
        r.exact.lost,
        r.exact.expected,
        r.late,
        r.reordered,
        r.duplicate,
        r.corrupted,
    )?;
    if let Some(causes) = r.lost_causes.filter(|_| r.exact.lost > 0) {
        let line = causes.line(r.exact.lost);
        if r.exact.lost == r.lost {
            writeln!(o, "         {line}")?;
        } else {
            writeln!(o, "         of senders of this process: {line}")?;
        }
    }
    writeln!(o, "         latency {}", pct(&r.latency_ms))?;
    if r.cross_host_latency_ms.count > 0 {
        writeln!(
            o,
            "         cross-host latency {}",
            pct(&r.cross_host_latency_ms)
        )?;
    }
    writeln!(
        o,
        "         jitter {}; {} per sender p5 {} / p50 {}",
        pct(&r.jitter_ms),
        if name == "video" { "fps" } else { "packets/s" },
        f(r.rate_per_sender.p5),
        f(r.rate_per_sender.p50)
    )?;
    if let Some(fr) = &r.freezes {
        writeln!(
            o,
            "         freezes {} ({:.0} ms in all, longest {:.0} ms, {} % of watched time, {} receivers)",
            fr.count,
            fr.total_ms,
            fr.longest_ms,
            fr.share.map_or("-".into(), |v| format!("{:.2}", v * 100.0)),
            fr.receivers_with_freezes
        )?;
    }
    if let Some(c) = &r.concealment {
        writeln!(
            o,
            "         concealed {} of {} slots ({} %)",
            c.concealed,
            c.slots,
            c.share.map_or("-".into(), |v| format!("{:.3}", v * 100.0))
        )?;
    }
    Ok(())
}

/// What the server told the clients, join visibility and send lateness.
fn signals(o: &mut String, r: &Report) -> fmt::Result {
    let sig = &r.server_signals;
    writeln!(
        o,
        "server   {} CONGESTION ({} clients), {} key-frame requests ({} answered, {}), joined/left seen {}/{}",
        sig.congestion_received,
        sig.clients_with_congestion,
        sig.keyframe_requests_received,
        sig.keyframes_answered,
        pct(&sig.keyframe_answer_ms),
        sig.participant_joined_seen,
        sig.participant_left_seen
    )?;
    if sig.room_congestion_seen > 0 {
        writeln!(
            o,
            "         {} CONGESTION about other senders of the room seen",
            sig.room_congestion_seen
        )?;
    }
    if !sig.other_types.is_empty() {
        let seen: Vec<String> = sig
            .other_types
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            o,
            "         newer packet types received: {}",
            seen.join(", ")
        )?;
    }
    let c = &r.control;
    if c.browsers + c.bots > 0 {
        writeln!(
            o,
            "control  {} browser(s), {} bot(s); sent {} DIAGNOSTICS, {} HEALTH, {} RTT probes, {} key-frame requests ({} answered, wait {}){}",
            c.browsers,
            c.bots,
            c.sent.diagnostics,
            c.sent.health,
            c.sent.rtt,
            sig.keyframe_requests_sent,
            sig.keyframe_requests_answered,
            pct(&sig.keyframe_wait_ms),
            match (c.dropped, c.elections) {
                (0, 0) => String::new(),
                (d, 0) => format!("; {d} not sent (queue full)"),
                (0, e) => format!("; {e} server elections"),
                (d, e) => format!("; {d} not sent (queue full); {e} server elections"),
            }
        )?;
        let e = &c.expected_per_participant;
        writeln!(
            o,
            "         expected per participant per second: sends {}, receives {}",
            e.sent.words("probes"),
            e.received.words("echoes")
        )?;
    }
    if sig.server_rtt_ms.count > 0 {
        writeln!(o, "srv rtt  {}", pct(&sig.server_rtt_ms))?;
    }
    writeln!(o, "visible  {}", pct(&sig.join_visibility_ms))?;
    writeln!(o, "lateness {}", pct(&r.send_lateness_ms))?;
    Ok(())
}

/// The timeline's intervals in which this machine fell behind and
/// packets went missing: that loss is not the server's alone.
fn behind(o: &mut String, r: &Report) -> fmt::Result {
    let Some(t) = &r.timeline else { return Ok(()) };
    let mut prev = 0.0;
    let (mut n, mut audio, mut video) = (0, 0i64, 0i64);
    let (mut from, mut to) = (f64::MAX, 0.0f64);
    for s in &t.samples {
        let start = prev;
        prev = s.t_s;
        let lost = s.lost.audio.max(0) + s.lost.video.max(0);
        if !s.saturated || lost == 0 {
            continue;
        }
        n += 1;
        audio += s.lost.audio.max(0);
        video += s.lost.video.max(0);
        from = from.min(start);
        to = to.max(s.t_s);
    }
    if n > 0 {
        writeln!(
            o,
            "BEHIND   {audio} audio and {video} video packets went missing in {n} interval(s) \
             between {from:.0} and {to:.0} s in which this machine fell behind: that loss \
             cannot be laid on the server alone"
        )?;
    }
    Ok(())
}

/// Whether this process kept up, and its cost.
fn generator(o: &mut String, r: &Report) -> fmt::Result {
    let g = &r.generator;
    writeln!(
        o,
        "generator CPU {:.0} % of {:.1} cores (max {:.0} %), event-loop delay p99 {:.1} ms",
        g.cpu_share_mean * 100.0,
        g.cores,
        g.cpu_share_max * 100.0,
        g.loop_delay_p99_ms
    )?;
    if let Some(h) = &g.host {
        let pressure = match (h.pressure_mean, h.pressure_max) {
            (Some(m), Some(x)) => format!(
                ", tasks waiting for a CPU {:.0} % of the time (max {:.0} %)",
                m * 100.0,
                x * 100.0
            ),
            _ => String::new(),
        };
        let sockets = match (h.socket_drops, h.rx_queue_max_kb) {
            (Some(d), Some(q)) => format!("; our sockets dropped {d}, queued at most {q} KiB"),
            _ => String::new(),
        };
        writeln!(
            o,
            "host     CPU {:.0} % busy (max {:.0} %){pressure}{sockets}",
            h.busy_mean * 100.0,
            h.busy_max * 100.0
        )?;
    }
    behind(o, r)?;
    if !g.notes.is_empty() {
        writeln!(
            o,
            "NOTE     the schedule was not kept, because of the server (not this machine):"
        )?;
        for n in &g.notes {
            writeln!(o, "         {n}")?;
        }
    }
    if g.saturated {
        writeln!(
            o,
            "WARNING  the generator was saturated: these figures describe this machine, not only the server"
        )?;
        for r in &g.reasons {
            writeln!(o, "         {r}")?;
        }
    }
    writeln!(
        o,
        "process  {:.2} CPU s, peak RSS {:.1} MB",
        r.process.cpu_seconds,
        r.process.peak_rss_bytes as f64 / 1e6
    )?;
    Ok(())
}

/// Each meeting (or their count when there are many).
fn meetings(o: &mut String, r: &Report) -> fmt::Result {
    if r.meetings.len() <= 20 {
        for mt in &r.meetings {
            writeln!(
                o,
                "meeting  {}: {}/{} connected, sent a/v {}/{}, received a/v {}/{}, lost {}",
                mt.meeting_id,
                mt.connected,
                mt.clients,
                mt.audio_sent,
                mt.video_sent,
                mt.audio_received,
                mt.video_received,
                mt.lost
            )?;
        }
    } else {
        writeln!(
            o,
            "meetings {} (see the JSON report for each)",
            r.meetings.len()
        )?;
    }
    Ok(())
}

/// A score's p5 / p50 / mean, to two decimals.
fn score_stats(s: &crate::score::Stats) -> String {
    let f2 = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    format!("p5 {} / p50 {} / mean {}", f2(s.p5), f2(s.p50), f2(s.mean))
}

/// The quality scores: the run's audio MOS and video score, the
/// participants' verdicts, upstream's gates and the worst group.
fn scores(o: &mut String, r: &Report) -> fmt::Result {
    let Some(sc) = &r.scores else {
        return Ok(());
    };
    let run = &sc.run;
    writeln!(
        o,
        "scores   {} participants; audio MOS {} ({}); video score {} ({})",
        run.participants,
        score_stats(&run.audio_mos),
        run.audio_mos.n,
        score_stats(&run.video_score),
        run.video_score.n
    )?;
    let v = &run.verdicts;
    let failing: Vec<&str> = [
        ("A", run.gates.a),
        ("V", run.gates.v),
        ("L", run.gates.l),
        ("Q", run.gates.q),
        ("S", run.gates.s),
    ]
    .iter()
    .filter(|(_, g)| g.is_some_and(|g| g.fail))
    .map(|(n, _)| *n)
    .collect();
    writeln!(
        o,
        "         verdicts: {} green, {} yellow, {} red, {} unmeasured; upstream's gates {}",
        v.green,
        v.yellow,
        v.red,
        v.none,
        match run.gates_pass {
            None => "not measured".to_string(),
            Some(true) => "pass".to_string(),
            Some(false) => format!("FAIL on {}", failing.join(", ")),
        }
    )?;
    if sc.groups.len() > 1 {
        if let Some((g, what, v)) = sc.worst_group() {
            writeln!(o, "         worst group: {g} (median {what} {v:.2})")?;
        }
    }
    Ok(())
}

/// Each threshold with its verdict.
fn verdicts(o: &mut String, r: &Report) -> fmt::Result {
    for t in &r.thresholds {
        writeln!(
            o,
            "{} {} {} (actual {})",
            if t.pass { "PASS" } else { "FAIL" },
            t.name,
            t.expr,
            f(t.actual)
        )?;
    }
    Ok(())
}

/// The capacity search: its steps and the knee.
fn search(o: &mut String, r: &Report) -> fmt::Result {
    if let Some(se) = &r.search {
        writeln!(
            o,
            "search   from {} by {} to {} clients, {:.0} s a step, meetings of {}:",
            se.start, se.step, se.max, se.hold_s, se.meeting_size
        )?;
        for st in se.steps.iter().rev().take(30).rev() {
            writeln!(
                o,
                "         {:>6} clients {:>8.1}-{:<8.1} s  {}",
                st.clients,
                st.t_start_s,
                st.t_end_s,
                if st.passed {
                    "passed".to_string()
                } else {
                    format!("BROKE: {}", st.broken.join("; "))
                } + &st
                    .server_cores
                    .map_or(String::new(), |c| format!(" (server {c:.2} cores)"))
            )?;
        }
        writeln!(
            o,
            "knee     {}",
            match (se.knee, se.ended.as_str()) {
                (Some(k), "max") => format!("{k} clients: every step passed, up to the maximum"),
                (Some(k), "broken") => format!(
                    "{k} clients: the largest step that passed; then {}",
                    se.first_broken.as_deref().unwrap_or("?")
                ),
                (Some(k), _) =>
                    format!("at least {k} clients (the run ended before the search did)"),
                (None, _) => format!(
                    "none: the first step broke ({})",
                    se.first_broken.as_deref().unwrap_or("the run ended first")
                ),
            }
        )?;
    }
    Ok(())
}

/// The server beside the run, in one line: its process's cores and memory,
/// participants per server core at the search's knee, each query's last value.
fn server_cost(o: &mut String, r: &Report) -> fmt::Result {
    let Some(c) = &r.server_cost else {
        return Ok(());
    };
    let mut parts = Vec::new();
    if let Some(pid) = c.pid {
        parts.push(format!(
            "process {pid}: {} cores mean (max {}), {} CPU s, peak RSS {} MB{}",
            f2(c.cores_mean),
            f2(c.cores_max),
            f2(c.cpu_seconds),
            f(c.rss_peak_mb),
            c.gone_at_s
                .map_or(String::new(), |t| format!(", GONE at {t:.1} s"))
        ));
    }
    if let Some(se) = r
        .search
        .as_ref()
        .filter(|se| se.server_cores_at_knee.is_some())
    {
        parts.push(format!(
            "at the knee {} cores, {} participants per server core",
            f2(se.server_cores_at_knee),
            f(se.participants_per_server_core)
        ));
    }
    if !c.queries.is_empty() {
        let q: Vec<String> = c
            .queries
            .iter()
            .map(|(name, q)| format!("{name} {}", f2(q.last)))
            .collect();
        let failed = if c.query_failures > 0 {
            format!(" ({} requests failed)", c.query_failures)
        } else {
            String::new()
        };
        parts.push(format!("Prometheus last {}{failed}", q.join(", ")));
    }
    writeln!(
        o,
        "server   the server beside the run: {}",
        parts.join("; ")
    )
}

/// A figure that may be missing (a dash), to two decimals.
fn f2(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.2}"))
}

/// Each group's network, and the adapting clients.
fn adaptation_and_networks(o: &mut String, r: &Report) -> fmt::Result {
    for n in &r.networks {
        writeln!(o, "network  {}", n.line())?;
    }
    if let Some(a) = &r.adaptation {
        writeln!(o, "adapt    {}", a.line())?;
    }
    for l in r.layers.iter().flat_map(|l| l.lines()) {
        writeln!(o, "layers   {l}")?;
    }
    Ok(())
}

/// How the participants behaved, and each phase.
fn behaviour(o: &mut String, r: &Report) -> fmt::Result {
    if let Some(b) = &r.behaviour {
        let (p, m) = (&b.planned, &b.measured);
        writeln!(
            o,
            "people   joins {} (planned {}), leaves {} ({}), rejoins {} ({}), storm drops {} ({}); rejoin p50 {} / p99 {} ms; schedule {}",
            m.joins,
            p.joins,
            m.leaves,
            p.leaves,
            m.rejoins,
            p.rejoins,
            m.storm_drops,
            p.storm_drops,
            f(b.rejoin_ms.p50),
            f(b.rejoin_ms.p99),
            b.schedule_digest
        )?;
        writeln!(
            o,
            "         {} viewers, {} actions, {} speaking heartbeats, {} screen shares ({} SCREEN packets sent, {} received)",
            b.viewers,
            b.actions,
            b.speaking_heartbeats,
            b.screen.shares,
            b.screen.sent_packets,
            b.screen.received_packets
        )?;
        for ph in &b.phases {
            let g = |k: &str| ph.figures.get(k).copied().flatten();
            writeln!(
                o,
                "phase    {} ({}) {:.0}-{:.0} s: {} connected at its end, joins {}, leaves {}, audio p99 {} ms, video p99 {} ms, lost {}/{}",
                ph.name,
                ph.kind,
                ph.t_start_s,
                ph.t_end_s,
                ph.connected_at_end,
                f(g("joins")),
                f(g("leaves")),
                f(g("audio_latency_p99_ms")),
                f(g("video_latency_p99_ms")),
                f(g("audio_lost")),
                f(g("video_lost"))
            )?;
        }
    }
    Ok(())
}

/// The seed, an abort, and the result.
fn result(o: &mut String, r: &Report) -> fmt::Result {
    if let Some(seed) = r.seed {
        writeln!(o, "seed     {seed}")?;
    }
    if let Some(a) = &r.aborted {
        writeln!(o, "ABORTED  the run was ended early by a threshold: {a}")?;
    }
    if !r.thresholds.is_empty() {
        writeln!(
            o,
            "result   {}",
            if r.passed {
                "passed"
            } else if r.aborted.is_some() {
                "FAILED: aborted by a threshold"
            } else if r.thresholds.iter().all(|t| t.pass) {
                "FAILED: no step of the search passed"
            } else {
                "FAILED: a threshold was violated"
            }
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server beside the run is one line, with the knee's participants
    /// per server core when a search found one; none without `server:`.
    #[test]
    fn the_server_beside_the_run_in_one_line() {
        let mut r = crate::diff::tests::report();
        assert!(!r.summary().contains("beside the run"));
        r.server_cost = Some(crate::model::ServerCost {
            pid: Some(41),
            cpu_seconds: Some(12.5),
            cores_mean: Some(0.8),
            cores_max: Some(1.25),
            rss_peak_mb: Some(300.0),
            queries: [(
                "conns".to_string(),
                crate::model::ServerQuery {
                    last: Some(12.0),
                    ..Default::default()
                },
            )]
            .into(),
            query_failures: 2,
            ..Default::default()
        });
        r.search = Some(crate::model::SearchReport {
            knee: Some(20),
            server_cores_at_knee: Some(0.8),
            participants_per_server_core: Some(25.0),
            ..Default::default()
        });
        let text = r.summary();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("beside the run"))
            .collect();
        assert_eq!(
            lines,
            ["server   the server beside the run: process 41: 0.80 cores mean (max 1.25), 12.50 CPU s, peak RSS 300.0 MB; at the knee 0.80 cores, 25.0 participants per server core; Prometheus last conns 12.00 (2 requests failed)"]
        );
    }

    /// Loss in intervals in which this machine fell behind is told apart
    /// in one line; loss in intervals it kept up in is not in it.
    #[test]
    fn loss_while_behind_is_told_apart() {
        use crate::model::{Sample, Timeline};
        let sample = |t_s: f64, audio: i64, video: i64, saturated: bool| {
            let mut s = Sample {
                t_s,
                saturated,
                ..Sample::default()
            };
            s.lost.audio = audio;
            s.lost.video = video;
            s
        };
        let mut r = crate::model::bare();
        let mut o = String::new();
        behind(&mut o, &r).unwrap();
        assert_eq!(o, "");
        r.timeline = Some(Timeline {
            interval_s: 1.0,
            samples: vec![
                sample(1.0, 5, 0, false),
                sample(2.0, 3, 10, true),
                sample(3.0, 0, 0, true),
                sample(4.0, -2, 4, true),
            ],
            ..Timeline::default()
        });
        behind(&mut o, &r).unwrap();
        assert_eq!(
            o,
            "BEHIND   3 audio and 14 video packets went missing in 2 interval(s) between 1 and 4 s in which this machine fell behind: that loss cannot be laid on the server alone\n"
        );
    }

    #[test]
    fn the_scores_block() {
        use crate::model::score::{summarize, ParticipantScore};
        use crate::score::{AudioIn, BandIn, BandLimits};
        let l = BandLimits::default();
        let p = |id: &str, group: &str, loss: f64| {
            let a = AudioIn {
                one_way_ms: 30.0,
                jitter_ms: 2.0,
                concealed_share: loss,
                bitrate_kbps: Some(32.0),
            };
            let i = BandIn {
                audio_concealment: Some(loss),
                ..BandIn::default()
            };
            ParticipantScore::new(id, group, "m", Some(a), None, i, &l)
        };
        let sc = summarize(
            &l,
            &[],
            &[],
            vec![p("a", "wifi", 0.0), p("b", "lte", 0.2), p("c", "lte", 0.1)],
        );
        let mut o = String::new();
        let r = crate::model::bare();
        scores(&mut o, &r).unwrap();
        assert_eq!(o, "", "no section, no block");
        let r = Report {
            scores: Some(sc),
            ..r
        };
        scores(&mut o, &r).unwrap();
        let lines: Vec<&str> = o.lines().collect();
        assert!(
            lines[0].starts_with("scores   3 participants; audio MOS p5 "),
            "{o}"
        );
        assert!(
            lines[0].ends_with("video score p5 - / p50 - / mean - (0)"),
            "{o}"
        );
        assert_eq!(
            lines[1],
            "         verdicts: 1 green, 0 yellow, 2 red, 0 unmeasured; upstream's gates FAIL on A"
        );
        assert!(
            lines[2].starts_with("         worst group: lte (median audio MOS "),
            "{o}"
        );
    }

    #[test]
    fn a_run_that_received_nothing_says_so_with_its_likely_cause() {
        use crate::model::{ServerVersion, WireReport};
        let mut r = crate::model::bare();
        r.judge(&[]);
        assert_eq!(nothing(&r), None, "nothing was expected");
        r.audio.received.exact.expected = 300;
        r.video.received.exact.expected = 180;
        r.audio.received.exact.lost = 300;
        r.video.received.exact.lost = 179;
        r.judge(&[]);
        let delivered = |r: &Report| {
            let v = r
                .thresholds
                .iter()
                .find(|v| v.name == "delivered_share")
                .unwrap();
            (v.expr.clone(), v.actual, v.pass)
        };
        assert_eq!(
            delivered(&r),
            (">= 0.01 (built in)".to_string(), Some(0.002), false)
        );
        assert!(!r.passed);
        let line = nothing(&r).unwrap();
        assert!(
            line.starts_with("FAILED   nothing delivered: 0.21 % of the media expected arrived in time; likely cause: a server that relays nothing"),
            "{line}"
        );
        // The server said it runs RnD; we spoke per_packet.
        r.wire = Some(WireReport {
            used: "per_packet".into(),
            chosen_by: "config".into(),
            server_version: Some(ServerVersion {
                service: Some("webtransport-relay".into()),
                git_branch: Some("RnD".into()),
                git_sha: Some("58c81a50".into()),
                ..ServerVersion::default()
            }),
            ..WireReport::default()
        });
        let line = nothing(&r).unwrap();
        assert!(
            line.contains("likely cause: the wire: the server speaks framed (/version: webtransport-relay, branch RnD, commit 58c81a50) and this run spoke per_packet; set wire: framed (or auto)"),
            "{line}"
        );
        // All of it arrived, but late (held back to the end of the run):
        // not delivered in time.
        r.audio.received.exact.lost = 0;
        r.video.received.exact.lost = 0;
        r.audio.received.late = 300;
        r.video.received.late = 180;
        r.judge(&[]);
        assert_eq!(delivered(&r).1, Some(0.0));
        // In time: no line, and the built-in holds.
        r.audio.received.late = 3;
        r.video.received.late = 0;
        r.judge(&[]);
        assert!(delivered(&r).2);
        assert_eq!(nothing(&r), None);
    }

    /// Issue #24: the summary says why sessions ended and which part of
    /// the loss was while the receiver was reconnecting.
    #[test]
    fn session_ends_and_the_loss_split_have_a_line_each() {
        use crate::model::{LostCauses, SessionEnds};
        let ends = SessionEnds {
            idle_timeout: 31,
            server_closed: 5,
            planned: 120,
            ..SessionEnds::default()
        };
        let reasons = [
            ("0x0 Outbound channel full".to_string(), 4),
            ("h3 0x100".to_string(), 1),
        ]
        .into();
        assert_eq!(
            ends.line(&reasons),
            "session ends: 31 idle timeout (ours), 5 closed by the server \
             (0x0 \"Outbound channel full\" ×4, h3 0x100 ×1), 120 planned"
        );
        let causes = LostCauses {
            while_connected: 6_100,
            while_down: 23_223,
        };
        assert_eq!(
            causes.line(29_323),
            "lost 29,323: 6,100 while both ends were connected, \
             23,223 while the receiver was reconnecting"
        );
        let mut m = MediaReport::default();
        m.received.lost = 29_323;
        m.received.exact.lost = 29_323;
        m.received.lost_causes = Some(causes);
        let mut o = String::new();
        media(&mut o, "audio", &m).unwrap();
        assert!(o.contains("\n         lost 29,323: 6,100 while"), "{o}");
        // Part of the loss is from other processes: the split says whose it is.
        m.received.lost = 30_000;
        let mut o = String::new();
        media(&mut o, "audio", &m).unwrap();
        assert!(o.contains("of senders of this process: lost 29,323"), "{o}");
    }
}
