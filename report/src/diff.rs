//! `report diff`: two reports compared figure by figure, with limits on how
//! much a figure may get worse (`--fail-on audio_latency_p99_ms:+10%`).
//!
//! The figures are those of the registry ([`crate::figure::FIGURES`],
//! without the older names such as `audio_gaps`) that either report has a
//! value for, then those of each group, network, meeting and phase either
//! report has (`audio_mos_p5{group=3g}`, as a scoped threshold names them).
//! Each row has both values, the absolute and the relative change, and
//! whether the change is for the worse (the registry's [`Worse`]).

use anyhow::bail;
use serde::Serialize;

use crate::figure::{self, Worse};
use crate::model::Report;
use crate::scope::Scope;

/// One figure of both reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Figure name.
    pub name: String,
    /// In the baseline (`null`: none).
    pub baseline: Option<f64>,
    /// In the current report.
    pub current: Option<f64>,
    /// `current - baseline`, when both have a value.
    pub change: Option<f64>,
    /// The change in % of the baseline; `null` when the baseline is 0 or missing.
    pub change_pct: Option<f64>,
    /// The change is for the worse (see [`crate::figure::Figure::worse`]).
    pub worse: bool,
}

/// A `--fail-on` limit: `NAME:+10%`, `NAME:+5`, `NAME:-10%`, `NAME:-5`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    /// Figure name, with its scope as written (`audio_lost{group=3g}`).
    pub name: String,
    /// The figure alone.
    #[serde(skip)]
    pub figure: String,
    /// Whose figure: the run's, or a group's, network's, meeting's or phase's.
    #[serde(skip)]
    pub scope: Scope,
    /// `true` for a limit on a rise (`+`), `false` on a fall (`-`).
    pub rise: bool,
    /// How much it may change.
    pub amount: f64,
    /// `amount` is a percentage of the baseline.
    pub percent: bool,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.rise { '+' } else { '-' };
        let pct = if self.percent { "%" } else { "" };
        write!(f, "{}:{sign}{}{pct}", self.name, self.amount)
    }
}

impl Limit {
    /// Parses `NAME:+X%`, `NAME:+N`, `NAME:-X%` or `NAME:-N`, where NAME
    /// may be scoped (`audio_lost{group=3g}`); an unknown figure lists the
    /// known ones.
    pub fn parse(text: &str) -> anyhow::Result<Limit> {
        let Some((name, rest)) = text.rsplit_once(':') else {
            bail!("--fail-on {text:?}: write NAME:+X% (or NAME:+N, NAME:-X%, NAME:-N)");
        };
        let name = name.trim();
        let (figure_name, scope) =
            Scope::split(name).map_err(|e| anyhow::anyhow!("--fail-on {text:?}: {e:#}"))?;
        if figure::get(figure_name).is_none() {
            bail!(
                "--fail-on {text:?}: unknown figure {figure_name:?} (known: {})",
                figure_names().collect::<Vec<_>>().join(", ")
            );
        }
        let figure_name = figure_name.to_string();
        let rest = rest.trim();
        let (rise, rest) = match rest.as_bytes().first() {
            Some(b'+') => (true, &rest[1..]),
            Some(b'-') => (false, &rest[1..]),
            _ => bail!("--fail-on {text:?}: the limit must start with + (a rise) or - (a fall)"),
        };
        let (number, percent) = match rest.strip_suffix('%') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let amount: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| {
                anyhow::anyhow!("--fail-on {text:?}: {number:?} is not a number of 0 or more")
            })?;
        Ok(Limit {
            name: name.to_string(),
            figure: figure_name,
            scope,
            rise,
            amount,
            percent,
        })
    }

    /// Whether the change from `baseline` to `current` crosses the limit.
    /// A `%` limit on a baseline of 0 is crossed by any change its way (no
    /// percentage of 0 says how much is too much). A figure the current
    /// report lost (it had one in the baseline) crosses it too; one the
    /// baseline lacked cannot.
    pub fn crossed(&self, baseline: Option<f64>, current: Option<f64>) -> bool {
        let (b, c) = match (baseline, current) {
            (Some(b), Some(c)) => (b, c),
            (Some(_), None) => return true,
            (None, _) => return false,
        };
        let moved = if self.rise { c - b } else { b - c };
        if !self.percent {
            return moved > self.amount;
        }
        if b == 0.0 {
            return moved > 0.0;
        }
        moved / b.abs() * 100.0 > self.amount
    }
}

/// A limit crossed, with both values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    /// The limit as written back (`audio_latency_p99_ms:+10%`).
    pub limit: String,
    /// The baseline's value.
    pub baseline: Option<f64>,
    /// The current value.
    pub current: Option<f64>,
}

/// The whole comparison (what `--json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    /// Every figure either report has.
    pub figures: Vec<Row>,
    /// Limits crossed.
    pub failed: Vec<Breach>,
    /// No limit crossed.
    pub passed: bool,
}

/// The figure names compared: the registry's, without the older aliases.
pub fn figure_names() -> impl Iterator<Item = &'static str> {
    figure::FIGURES
        .iter()
        .filter(|f| f.alias_of.is_none())
        .map(|f| f.name)
}

/// Compares `current` with `baseline` and checks `limits`.
pub fn diff(baseline: &Report, current: &Report, limits: &[Limit]) -> Diff {
    let mut figures: Vec<Row> = figure_names()
        .filter_map(|name| {
            row(
                name.to_string(),
                name,
                baseline.figure(name),
                current.figure(name),
            )
        })
        .collect();
    // Then every scope of either report, in the baseline's order, then the
    // current one's new ones; each figure either has for it.
    let mut scopes: Vec<(Scope, Vec<&str>)> = baseline.scoped_figures();
    for (scope, names) in current.scoped_figures() {
        match scopes.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, known)) => {
                for n in names {
                    if !known.contains(&n) {
                        known.push(n);
                    }
                }
            }
            None => scopes.push((scope, names)),
        }
    }
    for (scope, names) in &scopes {
        let (kind, value) = (scope.kind().unwrap_or(""), scope.value().unwrap_or(""));
        for name in names {
            let (b, c) = (
                baseline.figure_in(name, scope),
                current.figure_in(name, scope),
            );
            figures.extend(row(format!("{name}{{{kind}={value}}}"), name, b, c));
        }
    }
    let failed: Vec<Breach> = limits
        .iter()
        .filter_map(|l| {
            let (b, c) = (
                baseline.figure_in(&l.figure, &l.scope),
                current.figure_in(&l.figure, &l.scope),
            );
            l.crossed(b, c).then(|| Breach {
                limit: l.to_string(),
                baseline: b,
                current: c,
            })
        })
        .collect();
    Diff {
        passed: failed.is_empty(),
        figures,
        failed,
    }
}

/// The row of figure `figure` (shown as `label`) with these values; `None`
/// when neither report has one.
fn row(label: String, figure: &str, b: Option<f64>, c: Option<f64>) -> Option<Row> {
    if b.is_none() && c.is_none() {
        return None;
    }
    let change = b.zip(c).map(|(b, c)| c - b);
    let lower_is_worse = figure::get(figure).is_some_and(|f| f.worse == Worse::Lower);
    Some(Row {
        name: label,
        baseline: b,
        current: c,
        change,
        change_pct: b
            .zip(change)
            .filter(|(b, _)| *b != 0.0)
            .map(|(b, d)| d / b.abs() * 100.0),
        worse: match change {
            Some(d) => (d > 0.0 && !lower_is_worse) || (d < 0.0 && lower_is_worse),
            None => b.is_some(),
        },
    })
}

impl Diff {
    /// The comparison as a table, then one line per limit crossed.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let v = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
        let mut o = String::new();
        let w = self
            .figures
            .iter()
            .map(|r| r.name.len())
            .fold(34, usize::max);
        let _ = writeln!(
            o,
            "{:<w$} {:>14} {:>14} {:>14} {:>9}",
            "figure", "baseline", "current", "change", "change %"
        );
        for r in &self.figures {
            let _ = writeln!(
                o,
                "{:<w$} {:>14} {:>14} {:>14} {:>9}{}",
                r.name,
                v(r.baseline),
                v(r.current),
                r.change.map_or("-".into(), |d| format!("{d:+.3}")),
                r.change_pct.map_or("-".into(), |p| format!("{p:+.1}")),
                if r.worse { "  worse" } else { "" }
            );
        }
        for b in &self.failed {
            let _ = writeln!(
                o,
                "FAIL {}: baseline {}, current {}",
                b.limit,
                v(b.baseline),
                v(b.current)
            );
        }
        o
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn limit(s: &str) -> Limit {
        Limit::parse(s).unwrap()
    }

    #[test]
    fn scoped_figures_are_compared_and_limited() {
        use crate::model::ScopeFigures;
        let with = |lost: f64| {
            let mut r = crate::model::bare();
            r.scopes = vec![ScopeFigures {
                kind: "group".into(),
                name: "3g".into(),
                clients: 2,
                figures: [("audio_lost".to_string(), Some(lost))].into(),
            }];
            r
        };
        let (b, c) = (with(1.0), with(5.0));
        let l = limit("audio_lost{group=3g}:+3");
        assert_eq!(
            (l.figure.as_str(), &l.scope),
            ("audio_lost", &Scope::Group("3g".into()))
        );
        let d = diff(&b, &c, &[l, limit("audio_lost{group=wifi}:+0")]);
        let row = d
            .figures
            .iter()
            .find(|r| r.name == "audio_lost{group=3g}")
            .unwrap();
        assert_eq!(
            (row.baseline, row.current, row.worse),
            (Some(1.0), Some(5.0), true)
        );
        // A scope neither report has cannot be crossed; the 3g one is.
        assert_eq!(d.failed.len(), 1);
        assert_eq!(d.failed[0].limit, "audio_lost{group=3g}:+3");
        assert!(d.text().contains("audio_lost{group=3g}"));
        assert!(diff(&b, &c, &[limit("audio_lost{group=3g}:+4")]).passed);
        let bad = Limit::parse("audio_lost{team=3g}:+1").unwrap_err();
        assert!(format!("{bad:#}").contains("unknown scope"), "{bad:#}");
    }

    #[test]
    fn limits_parse_and_cross() {
        let l = limit("audio_latency_p99_ms:+10%");
        assert_eq!((l.rise, l.amount, l.percent), (true, 10.0, true));
        assert!(
            !l.crossed(Some(100.0), Some(110.0)),
            "10 % is not over 10 %"
        );
        assert!(l.crossed(Some(100.0), Some(110.5)));
        assert!(!l.crossed(Some(100.0), Some(50.0)), "a fall is not a rise");
        let l = limit("audio_lost:+5");
        assert!(!l.crossed(Some(10.0), Some(15.0)));
        assert!(l.crossed(Some(10.0), Some(16.0)));
        let l = limit("video_fps_p5:-10%");
        assert!(l.crossed(Some(30.0), Some(26.9)));
        assert!(!l.crossed(Some(30.0), Some(27.0)));
        assert!(!l.crossed(Some(30.0), Some(60.0)));
        let l = limit("video_fps_p5:-3");
        assert!(l.crossed(Some(30.0), Some(26.0)));
        // A % limit on a baseline of 0: any rise fails.
        let l = limit("audio_lost:+50%");
        assert!(l.crossed(Some(0.0), Some(1.0)));
        assert!(!l.crossed(Some(0.0), Some(0.0)));
        // A figure lost fails; one gained cannot be judged.
        assert!(l.crossed(Some(3.0), None));
        assert!(!l.crossed(None, Some(3.0)));
        assert_eq!(limit("stalls:+0").to_string(), "stalls:+0");
    }

    #[test]
    fn bad_limits_are_refused() {
        let e = Limit::parse("audio_latency_p999_ms:+10%")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown figure") && e.contains("audio_latency_p99_ms"),
            "{e}"
        );
        assert!(Limit::parse("audio_lost").is_err());
        assert!(Limit::parse("audio_lost:10%").is_err(), "no sign");
        assert!(Limit::parse("audio_lost:+x%").is_err());
        assert!(Limit::parse("audio_lost:+-3").is_err());
        assert!(Limit::parse("audio_lost:+inf").is_err());
    }

    pub(crate) fn report() -> Report {
        let json = serde_json::json!({
            "schema": "synth-replay-report", "version": 3, "server": "s", "pack": "p",
            "elapsed_s": 10.0, "stopped_by": "duration",
            "clients": {"planned": 4, "connected": 4, "failed": 0, "connected_at_end": 4,
                        "started_at_end": 4, "reconnects": 0, "stalls": 0, "stalled_s": 0.0},
            "connect_ms": {"count": 0}, "connect_failures": {},
            "audio": media(), "video": media(),
            "heartbeats": {"sent": 0, "received": 0},
            "server_signals": {"congestion_received": 0, "clients_with_congestion": 0,
                "congestion_max_per_client": 0, "keyframe_requests_received": 0,
                "keyframes_answered": 0, "keyframe_answer_ms": {"count": 0},
                "participant_joined_seen": 0, "participant_left_seen": 0,
                "join_visibility_ms": {"count": 0}},
            "send_lateness_ms": {"count": 0},
            "generator": {"lateness_p99_ms": 0.0, "credit_wait_s": 0.0, "skipped_s": 0.0,
                "schedule_kept": true, "notes": [], "cpu_share_mean": 0.1, "cpu_share_max": 0.2,
                "cpu_busy_intervals": 0, "cpu_intervals": 10, "cores": 2.0,
                "loop_delay_p99_ms": 1.0, "loop_delay_max_ms": 1.0, "saturated": false, "reasons": []},
            "process": {"cpu_seconds": 1.0, "peak_rss_bytes": 1, "rss_bytes": 1},
            "meetings": [], "thresholds": [], "passed": true
        });
        serde_json::from_value(json).unwrap()
    }

    fn media() -> serde_json::Value {
        serde_json::json!({
            "sent": {"packets": 100, "acked": 100, "unacked": 0, "bytes": 1, "payload_bytes": 1,
                     "bitrate_kbps": null, "target_kbps": null, "bitrate_error_pct": null},
            "received": {"packets": 300, "bytes": 1, "lost": 0,
                "exact": {"pairs": 0, "expected": 0, "lost": 0},
                "late": 0, "reordered": 0, "duplicate": 0, "corrupted": 0,
                "latency_ms": {"count": 10, "p50": 20.0, "p95": 30.0, "p99": 40.0, "max": 50.0},
                "cross_host_latency_ms": {"count": 0}, "jitter_ms": {"count": 0},
                "rate_per_sender": {"pairs": 0, "p5": null, "p50": null, "mean": null}}
        })
    }

    #[test]
    fn rows_mark_regressions_both_ways() {
        let base = report();
        let mut cur = report();
        cur.audio.received.latency_ms.p99 = Some(50.0);
        cur.audio.received.lost = 7;
        cur.video.received.packets = 250;
        cur.clients.connected = 3;
        let d = diff(&base, &cur, &[limit("audio_latency_p99_ms:+20%")]);
        let row = |n: &str| d.figures.iter().find(|r| r.name == n).unwrap().clone();
        let p99 = row("audio_latency_p99_ms");
        assert_eq!(
            (p99.change, p99.change_pct, p99.worse),
            (Some(10.0), Some(25.0), true)
        );
        let lost = row("audio_lost");
        assert_eq!(
            (lost.change, lost.change_pct, lost.worse),
            (Some(7.0), None, true)
        );
        assert!(
            row("video_received_packets").worse,
            "fewer received is worse"
        );
        assert!(row("connect_success_rate").worse);
        assert!(!row("audio_latency_p50_ms").worse);
        assert!(d.figures.iter().all(|r| !r.name.ends_with("_gaps")));
        assert!(
            d.figures.iter().all(|r| r.name != "audio_jitter_p99_ms"),
            "a figure neither report has is left out"
        );
        assert!(!d.passed);
        assert_eq!(
            d.failed,
            [Breach {
                limit: "audio_latency_p99_ms:+20%".into(),
                baseline: Some(40.0),
                current: Some(50.0)
            }]
        );
        assert!(d
            .text()
            .contains("FAIL audio_latency_p99_ms:+20%: baseline 40.000, current 50.000"));
        assert!(diff(&base, &base, &[limit("audio_latency_p99_ms:+0%")]).passed);
    }
}
