//! The report as the text summary `synth-replay run` and `report merge` print.

use std::fmt::Write as _;

use crate::model::{Percentiles, Report};

impl Report {
    /// The readable summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let pct = |p: &Percentiles| {
            format!(
                "p50 {} / p95 {} / p99 {} / max {} ms",
                f(p.p50),
                f(p.p95),
                f(p.p99),
                f(p.max)
            )
        };
        let _ = writeln!(o, "── synth-replay report ──────────────────────────────");
        let _ = writeln!(o, "server   {}", self.server);
        let _ = writeln!(o, "pack     {}", self.pack);
        let _ = writeln!(
            o,
            "ran      {:.1} s (ended by {})",
            self.elapsed_s, self.stopped_by
        );
        let c = &self.clients;
        let _ = writeln!(
            o,
            "clients  {} planned, {} connected, {} failed, {} reconnects, {} stalls ({:.0} s)",
            c.planned, c.connected, c.failed, c.reconnects, c.stalls, c.stalled_s
        );
        let fails: Vec<String> = self
            .connect_failures
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !fails.is_empty() {
            let _ = writeln!(o, "failures {}", fails.join(", "));
        }
        let _ = writeln!(o, "connect  {}", pct(&self.connect_ms));
        for (name, m) in [("audio", &self.audio), ("video", &self.video)] {
            let s = &m.sent;
            let _ = writeln!(
                o,
                "{name}    sent {} pkts {:.2} MB, {} kbps/client (pack {} kbps, error {} %)",
                s.packets,
                s.bytes as f64 / 1e6,
                f(s.bitrate_kbps),
                f(s.target_kbps),
                s.bitrate_error_pct
                    .map_or("-".into(), |e| format!("{e:.2}")),
            );
            let _ = writeln!(
                o,
                "         acked {} of them, {} unacknowledged",
                s.acked, s.unacked
            );
            let r = &m.received;
            let _ = writeln!(
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
            );
            let _ = writeln!(o, "         latency {}", pct(&r.latency_ms));
            if r.cross_host_latency_ms.count > 0 {
                let _ = writeln!(
                    o,
                    "         cross-host latency {}",
                    pct(&r.cross_host_latency_ms)
                );
            }
            let _ = writeln!(
                o,
                "         jitter {}; {} per sender p5 {} / p50 {}",
                pct(&r.jitter_ms),
                if name == "video" { "fps" } else { "packets/s" },
                f(r.rate_per_sender.p5),
                f(r.rate_per_sender.p50)
            );
            if let Some(fr) = &r.freezes {
                let _ = writeln!(
                    o,
                    "         freezes {} ({:.0} ms in all, longest {:.0} ms, {} % of watched time, {} receivers)",
                    fr.count,
                    fr.total_ms,
                    fr.longest_ms,
                    fr.share.map_or("-".into(), |v| format!("{:.2}", v * 100.0)),
                    fr.receivers_with_freezes
                );
            }
            if let Some(c) = &r.concealment {
                let _ = writeln!(
                    o,
                    "         concealed {} of {} slots ({} %)",
                    c.concealed,
                    c.slots,
                    c.share.map_or("-".into(), |v| format!("{:.3}", v * 100.0))
                );
            }
        }
        let sig = &self.server_signals;
        let _ = writeln!(
            o,
            "server   {} CONGESTION ({} clients), {} key-frame requests ({} answered, {}), joined/left seen {}/{}",
            sig.congestion_received,
            sig.clients_with_congestion,
            sig.keyframe_requests_received,
            sig.keyframes_answered,
            pct(&sig.keyframe_answer_ms),
            sig.participant_joined_seen,
            sig.participant_left_seen
        );
        let _ = writeln!(o, "visible  {}", pct(&sig.join_visibility_ms));
        let _ = writeln!(o, "lateness {}", pct(&self.send_lateness_ms));
        let g = &self.generator;
        let _ = writeln!(
            o,
            "generator CPU {:.0} % of {:.1} cores (max {:.0} %), event-loop delay p99 {:.1} ms",
            g.cpu_share_mean * 100.0,
            g.cores,
            g.cpu_share_max * 100.0,
            g.loop_delay_p99_ms
        );
        if !g.notes.is_empty() {
            let _ = writeln!(
                o,
                "NOTE     the schedule was not kept, because of the server (not this machine):"
            );
            for n in &g.notes {
                let _ = writeln!(o, "         {n}");
            }
        }
        if g.saturated {
            let _ = writeln!(
                o,
                "WARNING  the generator was saturated: these figures describe this machine, not only the server"
            );
            for r in &g.reasons {
                let _ = writeln!(o, "         {r}");
            }
        }
        let _ = writeln!(
            o,
            "process  {:.2} CPU s, peak RSS {:.1} MB",
            self.process.cpu_seconds,
            self.process.peak_rss_bytes as f64 / 1e6
        );
        if self.meetings.len() <= 20 {
            for mt in &self.meetings {
                let _ = writeln!(
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
                );
            }
        } else {
            let _ = writeln!(
                o,
                "meetings {} (see the JSON report for each)",
                self.meetings.len()
            );
        }
        for t in &self.thresholds {
            let _ = writeln!(
                o,
                "{} {} {} (actual {})",
                if t.pass { "PASS" } else { "FAIL" },
                t.name,
                t.expr,
                f(t.actual)
            );
        }
        if let Some(se) = &self.search {
            let _ = writeln!(
                o,
                "search   from {} by {} to {} clients, {:.0} s a step, meetings of {}:",
                se.start, se.step, se.max, se.hold_s, se.meeting_size
            );
            for st in se.steps.iter().rev().take(30).rev() {
                let _ = writeln!(
                    o,
                    "         {:>6} clients {:>8.1}-{:<8.1} s  {}",
                    st.clients,
                    st.t_start_s,
                    st.t_end_s,
                    if st.passed {
                        "passed".to_string()
                    } else {
                        format!("BROKE: {}", st.broken.join("; "))
                    }
                );
            }
            let _ = writeln!(
                o,
                "knee     {}",
                match (se.knee, se.ended.as_str()) {
                    (Some(k), "max") =>
                        format!("{k} clients: every step passed, up to the maximum"),
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
            );
        }
        for n in &self.networks {
            let _ = writeln!(o, "network  {}", n.line());
        }
        if let Some(a) = &self.adaptation {
            let _ = writeln!(o, "adapt    {}", a.line());
        }
        if let Some(b) = &self.behaviour {
            let (p, m) = (&b.planned, &b.measured);
            let _ = writeln!(
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
            );
            let _ = writeln!(
                o,
                "         {} viewers, {} actions, {} speaking heartbeats, {} screen shares ({} SCREEN packets sent, {} received)",
                b.viewers,
                b.actions,
                b.speaking_heartbeats,
                b.screen.shares,
                b.screen.sent_packets,
                b.screen.received_packets
            );
            for ph in &b.phases {
                let g = |k: &str| ph.figures.get(k).copied().flatten();
                let _ = writeln!(
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
                );
            }
        }
        if let Some(seed) = self.seed {
            let _ = writeln!(o, "seed     {seed}");
        }
        if let Some(a) = &self.aborted {
            let _ = writeln!(o, "ABORTED  the run was ended early by a threshold: {a}");
        }
        if !self.thresholds.is_empty() {
            let _ = writeln!(
                o,
                "result   {}",
                if self.passed {
                    "passed"
                } else if self.aborted.is_some() {
                    "FAILED: aborted by a threshold"
                } else if self.thresholds.iter().all(|t| t.pass) {
                    "FAILED: no step of the search passed"
                } else {
                    "FAILED: a threshold was violated"
                }
            );
        }
        o
    }
}
