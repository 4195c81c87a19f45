//! The report as one self-contained HTML page (`synth-replay report html`,
//! `synth-replay run --html`): a header with the verdict, plots of the
//! timeline as inline SVG ([`svg`]), and the tables of the text summary.
//!
//! The page is written from the typed report ([`crate::model`]). A report
//! written by another version is read section by section into a [`Page`]:
//! a section it lacks (or that does not read as this version's) says so,
//! and a value that section lacks shows as its default (a dash where the
//! model has no value). The page loads nothing from anywhere (no fonts,
//! scripts or images; its Content-Security-Policy forbids it), so it opens
//! offline. Every string taken from the report is escaped: it holds
//! user-supplied ids and server URLs.
//!
//! Stable hooks for `scripts/check-html.sh`: each plot is an
//! `<svg class="plot" id="plot-NAME">` whose series are `<polyline
//! class="series" data-series=… data-points=N>` (a series with gaps is
//! several polylines), tables have ids `table-NAME`, and the inline script
//! sets `data-js="ok"` on `<body>` once it has run without an error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::health::Health;
use crate::model::{
    Behaviour, Clients, Event, MediaReport, Meeting, Percentiles, ProcessReport, Report,
    ScoreSummary, Scores, SearchReport, ServerCost, Signals, Timeline, WireReport,
};
use crate::threshold::Verdict;

mod cell;
pub mod svg;

use cell::{esc, fmt, n, opt, us};

/// Declares [`Page`] from its sections, once: the ones every report of this
/// version has (`Some` from a [`Report`]), and the ones it may lack (as the
/// report has them).
macro_rules! page {
    (
        always { $($a:ident: $at:ty),* $(,)? }
        maybe { $($m:ident: $mt:ty),* $(,)? }
    ) => {
        /// The sections of a report the page shows, each `None` when the
        /// report does not have it.
        #[derive(Debug, Clone, Default)]
        pub struct Page {
            /// `schema`.
            pub schema: Option<String>,
            /// `version`.
            pub version: Option<u64>,
            /// `stopped_by`, as written.
            pub stopped_by: Option<String>,
            $(#[doc = concat!("`", stringify!($a), "`.")] pub $a: Option<$at>,)*
            $(#[doc = concat!("`", stringify!($m), "`.")] pub $m: Option<$mt>,)*
        }

        impl From<&Report> for Page {
            fn from(r: &Report) -> Page {
                Page {
                    schema: Some(r.schema.clone()),
                    version: Some(u64::from(r.version)),
                    stopped_by: Some(r.stopped_by.to_string()),
                    $($a: Some(r.$a.clone()),)*
                    $($m: r.$m.clone(),)*
                }
            }
        }

        impl Page {
            /// The sections of a report of any version: each read as this
            /// version's, `None` where the report lacks it or it does not read.
            pub fn from_value(v: &Value) -> Page {
                fn get<T: DeserializeOwned>(v: &Value, key: &str) -> Option<T> {
                    serde_json::from_value(v.get(key)?.clone()).ok()
                }
                Page {
                    schema: get(v, "schema"),
                    version: get(v, "version"),
                    stopped_by: get(v, "stopped_by"),
                    $($a: get(v, stringify!($a)),)*
                    $($m: get(v, stringify!($m)),)*
                }
            }
        }
    };
}

page! {
    always {
        server: String,
        pack: String,
        elapsed_s: f64,
        passed: bool,
        thresholds: Vec<Verdict>,
        events: Vec<Event>,
        clients: Clients,
        connect_ms: Percentiles,
        connect_failures: BTreeMap<String, u64>,
        audio: MediaReport,
        video: MediaReport,
        send_lateness_ms: Percentiles,
        server_signals: Signals,
        generator: Health,
        process: ProcessReport,
        meetings: Vec<Meeting>,
    }
    maybe {
        timeline: Timeline,
        search: SearchReport,
        server_cost: ServerCost,
        behaviour: Behaviour,
        seed: u64,
        scores: Scores,
        wire: WireReport,
    }
}

/// The whole page for `report`.
pub fn render(report: &Report) -> String {
    page(&Page::from(report))
}

/// The whole page for a report read as JSON, of any version.
pub fn render_value(report: &Value) -> String {
    page(&Page::from_value(report))
}

/// The whole page.
pub fn page(p: &Page) -> String {
    let mut o = String::with_capacity(64 * 1024);
    // Only the page's own script may run: a string of the report that got
    // past the escaping as markup would still not execute.
    let hash = base64(&synth_common::fingerprint::sha256(SCRIPT.as_bytes()));
    o.push_str(&HEAD.replace("SCRIPT_HASH", &hash));
    header(&mut o, p);
    thresholds(&mut o, p);
    scores(&mut o, p);
    timeline(&mut o, p);
    search(&mut o, p);
    server_cost(&mut o, p);
    behaviour(&mut o, p);
    events(&mut o, p);
    clients(&mut o, p);
    media(&mut o, p);
    signals(&mut o, p);
    generator(&mut o, p);
    meetings(&mut o, p);
    o.push_str("<script>");
    o.push_str(SCRIPT);
    o.push_str("</script>\n</body>\n</html>\n");
    o
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-SCRIPT_HASH'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>synth-replay report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.2em; margin: 1.6em 0 .4em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .3em 0; } th, td { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f4f4f4; }
dl.head { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 0; } dl.head dt { color: #666; } dl.head dd { margin: 0; }
.verdict { display: inline-block; font-weight: bold; font-size: 1.3em; padding: 2px 12px; border-radius: 4px; margin: .4em 0; }
.verdict.pass, td.pass { color: #1b5e20; } .verdict.pass { background: #e8f5e9; }
.verdict.fail, td.fail { color: #b71c1c; } .verdict.fail { background: #ffebee; } .verdict.unknown { background: #eee; }
.warn { background: #fff8e1; border-left: 4px solid #f9a825; padding: 4px 8px; margin: .4em 0; }
.missing { color: #888; font-style: italic; }
figure.plot { margin: .8em 0 1.2em; } figure.plot figcaption { font-weight: bold; }
svg.plot { width: 100%; height: auto; background: #fff; border: 1px solid #e3e3e3; }
svg.plot text { font: 11px system-ui, sans-serif; fill: #555; }
svg.plot .grid { stroke: #eee; } svg.plot .axis { stroke: #999; }
svg.plot .series { fill: none; stroke-width: 1.8; } svg.plot .failing { fill: #ffcdd2; opacity: .5; }
svg.plot .cursor { stroke: #888; stroke-dasharray: 2 2; }
ul.legend { list-style: none; padding: 0; margin: 2px 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
ul.legend span { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 4px; }
.readout { font: 12px ui-monospace, monospace; color: #333; min-height: 1.4em; white-space: pre; }
</style>
</head>
<body>
"#;

/// Hover readout of the plots; marks the page as scripted last, so a page
/// whose script failed has no `data-js` (what `scripts/check-html.sh` checks).
const SCRIPT: &str = r#"
(function () {
  document.querySelectorAll('figure.plot').forEach(function (f) {
    var svg = f.querySelector('svg.plot'), ro = f.querySelector('.readout'), cur = svg.querySelector('.cursor');
    var t = svg.getAttribute('data-t').split(',').map(Number);
    var x0 = +svg.getAttribute('data-x0'), x1 = +svg.getAttribute('data-x1');
    var t0 = +svg.getAttribute('data-t0'), t1 = +svg.getAttribute('data-t1');
    var items = Array.prototype.slice.call(f.querySelectorAll('ul.legend li'));
    var vals = items.map(function (li) { return li.getAttribute('data-v').split(','); });
    svg.addEventListener('mousemove', function (e) {
      var p = svg.createSVGPoint(); p.x = e.clientX; p.y = e.clientY;
      var q = p.matrixTransform(svg.getScreenCTM().inverse());
      var at = t0 + (q.x - x0) / (x1 - x0) * (t1 - t0), i = 0;
      for (var k = 1; k < t.length; k++) { if (Math.abs(t[k] - at) < Math.abs(t[i] - at)) { i = k; } }
      var s = 't ' + t[i] + ' s';
      items.forEach(function (li, j) { var v = vals[j][i]; s += '   ' + li.getAttribute('data-label') + ' ' + (v ? v : '-'); });
      ro.textContent = s;
      var x = x0 + (t[i] - t0) / (t1 - t0 || 1) * (x1 - x0);
      cur.setAttribute('x1', x); cur.setAttribute('x2', x); cur.setAttribute('visibility', 'visible');
    });
  });
  document.body.setAttribute('data-js', 'ok');
})();
"#;

/// Standard base64 with padding (for the script's hash).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= c.len() {
                o.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

fn missing(o: &mut String, what: &str) {
    let _ = writeln!(
        o,
        "<p class=\"missing\">{} not in this report</p>",
        esc(what)
    );
}

/// A table of HTML-safe cells; cells that look like numbers align right.
fn table(o: &mut String, id: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(o, "<table id=\"table-{id}\"><thead><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let numeric = !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_digit() || ".-–/ ".contains(ch));
            let class = match c.as_str() {
                "PASS" => " class=\"pass\"",
                "FAIL" => " class=\"fail\"",
                _ if numeric => " class=\"n\"",
                _ => "",
            };
            let _ = write!(o, "<td{class}>{c}</td>");
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}

/// Percentiles as `p50 / p95 / p99 / max`.
fn pct(p: &Percentiles) -> String {
    [p.p50, p.p95, p.p99, p.max]
        .into_iter()
        .map(opt)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Bytes as MB.
fn mb(bytes: u64) -> String {
    fmt(bytes as f64 / 1e6)
}

/// A text that may be missing (a dash), escaped.
fn text(s: Option<&str>) -> String {
    s.map_or_else(|| "–".into(), esc)
}

fn pass_fail(pass: bool) -> String {
    if pass { "PASS" } else { "FAIL" }.into()
}

/// Each `name value` of a step's or a phase's figures (or the clients'
/// failed attempts), escaped.
fn name_values<V: Copy>(m: &BTreeMap<String, V>, value: impl Fn(V) -> String) -> Vec<String> {
    m.iter()
        .map(|(k, v)| format!("{} {}", esc(k), value(*v)))
        .collect()
}

/// A step's or a phase's figures, one `name value` a line.
fn figures(m: &BTreeMap<String, Option<f64>>) -> String {
    name_values(m, opt).join("<br>")
}

fn header(o: &mut String, p: &Page) {
    o.push_str("<header>\n<h1>synth-replay report</h1>\n");
    let (class, word) = match p.passed {
        Some(true) => ("pass", "PASSED"),
        Some(false) => ("fail", "FAILED"),
        None => ("unknown", "verdict not in this report"),
    };
    let _ = writeln!(
        o,
        "<div id=\"verdict\" class=\"verdict {class}\">{word}</div>"
    );
    let started = p.timeline.as_ref().map_or(String::new(), |t| {
        format!("<dt>started</dt><dd>{}</dd>", utc(t.start_unix_ms as f64))
    });
    let _ = writeln!(
        o,
        "<dl class=\"head\"><dt>server</dt><dd id=\"server\">{}</dd><dt>pack</dt><dd>{}</dd>\
         <dt>ran</dt><dd>{} s (ended by {})</dd>{started}\
         <dt>report</dt><dd>schema {} version {}</dd></dl>",
        text(p.server.as_deref()),
        text(p.pack.as_deref()),
        opt(p.elapsed_s),
        text(p.stopped_by.as_deref()),
        text(p.schema.as_deref()),
        opt(p.version.map(|v| v as f64)),
    );
    if p.generator.as_ref().is_some_and(|g| g.saturated) {
        o.push_str(
            "<p class=\"warn\">WARNING: the generator was saturated: these figures describe \
             this machine, not only the server (see Generator health).</p>\n",
        );
    }
    if let (Some(a), Some(v), Some(t)) = (&p.audio, &p.video, &p.thresholds) {
        let (a, v) = (&a.received, &v.received);
        if let Some(line) = crate::judge::nothing_delivered(t, a, v, p.wire.as_ref()) {
            let _ = writeln!(o, "<p class=\"warn\">FAILED: {}</p>", esc(&line));
        }
    }
    o.push_str("</header>\n");
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(ms: f64) -> String {
    let [y, m, d, hh, mm, ss] = crate::num::utc_parts(ms);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

fn thresholds(o: &mut String, p: &Page) {
    o.push_str("<h2>Thresholds</h2>\n");
    let Some(list) = &p.thresholds else {
        return missing(o, "Thresholds are");
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let expr = t.expr.as_str();
            let split = expr
                .find(|c: char| !"<>=!".contains(c))
                .unwrap_or(expr.len());
            let (op, limit) = expr.split_at(split);
            vec![
                esc(&t.name),
                esc(op),
                esc(limit.trim()),
                opt(t.actual),
                pass_fail(t.pass),
            ]
        })
        .collect();
    table(
        o,
        "thresholds",
        &["name", "op", "limit", "value", "result"],
        &rows,
    );
}

/// One row of the scores table: a set of participants' scores, verdicts
/// and upstream's gates.
fn score_row(name: &str, s: &ScoreSummary) -> Vec<String> {
    let three = |st: &crate::score::Stats| {
        [st.p5, st.p50, st.mean]
            .into_iter()
            .map(opt)
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let g = &s.gates;
    let failing: Vec<&str> = [("A", g.a), ("V", g.v), ("L", g.l), ("Q", g.q), ("S", g.s)]
        .into_iter()
        .filter(|(_, g)| g.is_some_and(|g| g.fail))
        .map(|(n, _)| n)
        .collect();
    let v = &s.verdicts;
    vec![
        esc(name),
        n(s.participants),
        three(&s.audio_mos),
        three(&s.video_score),
        n(v.green),
        n(v.yellow),
        n(v.red),
        n(v.none),
        match s.gates_pass {
            None => "–".into(),
            Some(pass) => pass_fail(pass),
        },
        failing.join(", "),
    ]
}

/// The quality scores of the run and each group.
fn scores(o: &mut String, p: &Page) {
    let Some(sc) = &p.scores else {
        // Reports before scores, and runs that scored nothing, have none:
        // no heading for a section that never existed.
        return;
    };
    o.push_str("<h2>Quality scores</h2>\n");
    let l = &sc.limits;
    let _ = writeln!(
        o,
        "<p>Audio MOS: ITU-T G.107 E-model (1 to 4.5); video score: frame rate, bits per pixel and freezes (1 to 5); \
         verdict: a participant's worst band of upstream's A/V/L/Q/S. Limits green/red: A {}/{}, V {}/{}, L {}/{} ms, \
         Q {}/{} (below {} fps), S {}/{} per hour; a band's gate fails at p95 above red or {} participants in red.</p>",
        fmt(l.a.green), fmt(l.a.red), fmt(l.v.green), fmt(l.v.red), fmt(l.l.green), fmt(l.l.red),
        fmt(l.q.green), fmt(l.q.red), fmt(l.low_fps), fmt(l.s.green), fmt(l.s.red), l.k_red_fail
    );
    let mut rows = vec![score_row("run", &sc.run)];
    rows.extend(
        sc.groups
            .iter()
            .map(|(g, s)| score_row(&format!("group {g}"), s)),
    );
    table(
        o,
        "scores",
        &[
            "participants of",
            "n",
            "audio MOS p5 / p50 / mean",
            "video score p5 / p50 / mean",
            "green",
            "yellow",
            "red",
            "unmeasured",
            "upstream's gates",
            "failing bands",
        ],
        &rows,
    );
    let pr = &sc.pairs;
    let _ = writeln!(
        o,
        "<p>Over (sender, receiver) pairs: audio MOS p5 / p50 / mean {} / {} / {} ({} pairs), video score {} / {} / {} ({} pairs).</p>",
        opt(pr.audio_mos.p5), opt(pr.audio_mos.p50), opt(pr.audio_mos.mean), n(pr.audio_mos.n),
        opt(pr.video_score.p5), opt(pr.video_score.p50), opt(pr.video_score.mean), n(pr.video_score.n)
    );
}

fn timeline(o: &mut String, p: &Page) {
    o.push_str("<h2>Timeline</h2>\n");
    let samples: Vec<_> = p
        .timeline
        .iter()
        .flat_map(|t| &t.samples)
        .filter(|s| s.t_s.is_finite())
        .cloned()
        .collect();
    let Some(t) = p.timeline.as_ref().filter(|_| !samples.is_empty()) else {
        return missing(o, "A timeline is");
    };
    let times: Vec<f64> = samples.iter().map(|s| s.t_s).collect();
    let failing: Vec<String> = samples
        .iter()
        .map(|s| {
            s.failing
                .iter()
                .map(|f| esc(f))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let _ = writeln!(
        o,
        "<p>{} samples every {} s; markers: events, phases and search steps; shaded: a threshold failing.</p>",
        samples.len(),
        fmt(t.interval_s)
    );
    let steps = p.search.as_ref().map_or(&[][..], |s| &s.steps[..]);
    let events = p.events.as_deref().unwrap_or(&[]);
    let marks = svg::markers(events, &samples, steps);
    for plot in svg::plots(&samples) {
        svg::plot_svg(o, &plot, &times, &failing, &marks);
    }
}

fn search(o: &mut String, p: &Page) {
    let Some(s) = &p.search else {
        return;
    };
    o.push_str("<h2>Capacity search</h2>\n");
    let knee = match s.knee {
        Some(k) => format!("{} clients", us(k)),
        None => "none found".into(),
    };
    let server = s.steps.iter().any(|st| st.server_cores.is_some());
    let _ = write!(
        o,
        "<dl class=\"head\"><dt>knee</dt><dd id=\"knee\">{knee}</dd><dt>broke first</dt><dd>{}</dd>",
        text(s.first_broken.as_deref())
    );
    if server {
        let _ = write!(
            o,
            "<dt>server cores at the knee</dt><dd>{}</dd><dt>participants per server core</dt><dd id=\"per-server-core\">{}</dd>",
            opt(s.server_cores_at_knee),
            opt(s.participants_per_server_core)
        );
    }
    o.push_str("</dl>\n");
    let rows: Vec<Vec<String>> = s
        .steps
        .iter()
        .map(|st| {
            let mut row = vec![
                us(st.clients),
                fmt(st.t_start_s),
                fmt(st.t_end_s),
                pass_fail(st.passed),
                st.broken
                    .iter()
                    .map(|b| esc(b))
                    .collect::<Vec<_>>()
                    .join(", "),
            ];
            if server {
                row.push(opt(st.server_cores));
            }
            row.push(figures(&st.figures));
            row
        })
        .collect();
    let mut head = vec!["clients", "from (s)", "to (s)", "result", "broken"];
    if server {
        head.push("server cores");
    }
    head.push("figures");
    table(o, "search-steps", &head, &rows);
}

/// The server beside the run (`server:`): its process's cost and each
/// Prometheus query over the run.
fn server_cost(o: &mut String, p: &Page) {
    let Some(c) = &p.server_cost else {
        return;
    };
    o.push_str("<h2>Server beside the run</h2>\n");
    let mut rows = vec![
        (
            "process",
            c.pid.map_or_else(|| "–".into(), |pid| pid.to_string()),
        ),
        ("Prometheus", text(c.prometheus.as_deref())),
        ("CPU (s)", opt(c.cpu_seconds)),
        (
            "cores mean / max",
            format!("{} / {}", opt(c.cores_mean), opt(c.cores_max)),
        ),
        ("peak RSS seen (MB)", opt(c.rss_peak_mb)),
    ];
    if let Some(t) = c.gone_at_s {
        rows.push(("process gone at (s)", fmt(t)));
    }
    if c.prometheus.is_some() {
        rows.push(("failed queries", n(c.query_failures)));
    }
    kv(o, "server-cost", &rows);
    if !c.queries.is_empty() {
        let rows: Vec<Vec<String>> = c
            .queries
            .iter()
            .map(|(name, q)| vec![esc(name), opt(q.mean), opt(q.max), opt(q.last)])
            .collect();
        table(
            o,
            "server-queries",
            &["query", "mean", "max", "last"],
            &rows,
        );
    }
}

/// The behaviour section: planned against measured sessions, the rest, each phase.
fn behaviour(o: &mut String, p: &Page) {
    let Some(b) = &p.behaviour else {
        return;
    };
    o.push_str("<h2>Behaviour</h2>\n");
    let (pl, me) = (&b.planned, &b.measured);
    let rows: Vec<Vec<String>> = [
        ("joins", pl.joins, me.joins),
        ("leaves", pl.leaves, me.leaves),
        ("rejoins", pl.rejoins, me.rejoins),
        ("storm_drops", pl.storm_drops, me.storm_drops),
    ]
    .iter()
    .map(|(k, planned, measured)| vec![esc(k), n(*planned), n(*measured)])
    .collect();
    table(
        o,
        "behaviour-sessions",
        &["sessions", "planned", "measured"],
        &rows,
    );
    kv(
        o,
        "behaviour",
        &[
            ("seed", opt(p.seed.map(|s| s as f64))),
            ("schedule digest", esc(&b.schedule_digest)),
            ("rejoin (ms)", pct(&b.rejoin_ms)),
            ("viewers", n(b.viewers)),
            ("actions carried out", n(b.actions)),
            ("speaking heartbeats", n(b.speaking_heartbeats)),
            ("screen shares", n(b.screen.shares)),
            (
                "SCREEN packets sent / received",
                format!(
                    "{} / {}",
                    n(b.screen.sent_packets),
                    n(b.screen.received_packets)
                ),
            ),
        ],
    );
    let rows: Vec<Vec<String>> = b
        .phases
        .iter()
        .map(|ph| {
            vec![
                esc(&ph.name),
                esc(&ph.kind),
                fmt(ph.t_start_s),
                fmt(ph.t_end_s),
                n(ph.connected_at_end),
                figures(&ph.figures),
            ]
        })
        .collect();
    table(
        o,
        "phases",
        &[
            "phase",
            "type",
            "from (s)",
            "to (s)",
            "connected at its end",
            "figures",
        ],
        &rows,
    );
}

fn events(o: &mut String, p: &Page) {
    let Some(list) = &p.events else {
        return;
    };
    o.push_str("<h2>Events</h2>\n");
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| vec![fmt(e.t_s), esc(&e.kind), esc(&e.name), esc(&e.detail)])
        .collect();
    table(o, "events", &["t (s)", "kind", "name", "detail"], &rows);
}

/// A two-column table of (label, HTML-safe value) rows.
fn kv(o: &mut String, id: &str, rows: &[(&str, String)]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, val)| vec![esc(k), val.clone()])
        .collect();
    table(o, id, &["figure", "value"], &rows);
}

fn clients(o: &mut String, p: &Page) {
    o.push_str("<h2>Clients</h2>\n");
    let Some(c) = &p.clients else {
        return missing(o, "Client counts are");
    };
    let failures = p
        .connect_failures
        .as_ref()
        .map_or_else(Vec::new, |f| name_values(f, n));
    kv(
        o,
        "clients",
        &[
            ("planned", us(c.planned)),
            ("connected at least once", us(c.connected)),
            ("failed", us(c.failed)),
            ("connected at the end", us(c.connected_at_end)),
            ("started by the end", us(c.started_at_end)),
            ("reconnects", n(c.reconnects)),
            (
                "session ends",
                esc(c
                    .session_ends
                    .line(&c.server_close_reasons)
                    .trim_start_matches("session ends: ")),
            ),
            ("stalls", n(c.stalls)),
            ("stalled (s)", fmt(c.stalled_s)),
            (
                "connect p50 / p95 / p99 / max (ms)",
                p.connect_ms.as_ref().map_or_else(|| "–".into(), pct),
            ),
            ("failed attempts by reason", failures.join(", ")),
        ],
    );
}

fn media(o: &mut String, p: &Page) {
    o.push_str("<h2>Media</h2>\n");
    let (Some(a), Some(v)) = (&p.audio, &p.video) else {
        return missing(o, "Media figures are");
    };
    type Row = fn(&MediaReport) -> String;
    let rows: [(&str, Row); 22] = [
        ("sent packets", |m| n(m.sent.packets)),
        ("sent, acknowledged", |m| n(m.sent.acked)),
        ("sent, unacknowledged", |m| n(m.sent.unacked)),
        ("sent MB", |m| mb(m.sent.bytes)),
        ("bitrate per client (kbps)", |m| opt(m.sent.bitrate_kbps)),
        ("pack bitrate (kbps)", |m| opt(m.sent.target_kbps)),
        ("bitrate error (%)", |m| opt(m.sent.bitrate_error_pct)),
        ("received packets", |m| n(m.received.packets)),
        ("received MB", |m| mb(m.received.bytes)),
        ("lost", |m| n(m.received.lost)),
        ("lost exactly / expected", |m| {
            format!(
                "{} / {}",
                n(m.received.exact.lost),
                n(m.received.exact.expected)
            )
        }),
        (
            "lost while connected / while the receiver was down",
            |m| match m.received.lost_causes {
                Some(c) => format!("{} / {}", n(c.while_connected), n(c.while_down)),
                None => "–".into(),
            },
        ),
        ("late", |m| n(m.received.late)),
        ("reordered", |m| n(m.received.reordered)),
        ("duplicate", |m| n(m.received.duplicate)),
        ("corrupted", |m| n(m.received.corrupted)),
        ("latency p50 / p95 / p99 / max (ms)", |m| {
            pct(&m.received.latency_ms)
        }),
        ("cross-host latency (ms)", |m| {
            pct(&m.received.cross_host_latency_ms)
        }),
        ("jitter p50 / p95 / p99 / max (ms)", |m| {
            pct(&m.received.jitter_ms)
        }),
        ("rate per sender p5 / p50 (per s)", |m| {
            let r = &m.received.rate_per_sender;
            format!("{} / {}", opt(r.p5), opt(r.p50))
        }),
        ("freezes (longest ms, share)", |m| {
            match &m.received.freezes {
                Some(f) => format!("{} ({}, {})", n(f.count), fmt(f.longest_ms), opt(f.share)),
                None => String::new(),
            }
        }),
        ("concealed / slots (share)", |m| {
            match &m.received.concealment {
                Some(c) => format!("{} / {} ({})", n(c.concealed), n(c.slots), opt(c.share)),
                None => String::new(),
            }
        }),
    ];
    let mut rows: Vec<Vec<String>> = rows.iter().map(|(k, f)| vec![esc(k), f(a), f(v)]).collect();
    rows.push(vec![
        "send lateness p50 / p95 / p99 / max (ms)".into(),
        p.send_lateness_ms.as_ref().map_or_else(|| "–".into(), pct),
        "(audio and video)".into(),
    ]);
    table(o, "media", &["figure", "audio", "video"], &rows);
}

fn signals(o: &mut String, p: &Page) {
    o.push_str("<h2>Server signals</h2>\n");
    let Some(s) = &p.server_signals else {
        return missing(o, "Server signals are");
    };
    kv(
        o,
        "signals",
        &[
            ("CONGESTION received", n(s.congestion_received)),
            ("clients with CONGESTION", us(s.clients_with_congestion)),
            ("key-frame requests", n(s.keyframe_requests_received)),
            ("key frames answered", n(s.keyframes_answered)),
            (
                "key-frame answer p50 / p95 / p99 / max (ms)",
                pct(&s.keyframe_answer_ms),
            ),
            ("PARTICIPANT_JOINED seen", n(s.participant_joined_seen)),
            ("PARTICIPANT_LEFT seen", n(s.participant_left_seen)),
            (
                "join visibility p50 / p95 / p99 / max (ms)",
                pct(&s.join_visibility_ms),
            ),
        ],
    );
}

fn generator(o: &mut String, p: &Page) {
    o.push_str("<h2>Generator health</h2>\n");
    let Some(g) = &p.generator else {
        return missing(o, "Generator health is");
    };
    let lines = |l: &[String]| l.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>");
    let process = p.process.as_ref();
    let host = g.host.as_ref();
    kv(
        o,
        "generator",
        &[
            ("saturated", g.saturated.to_string()),
            ("reasons", lines(&g.reasons)),
            ("schedule kept", g.schedule_kept.to_string()),
            ("notes", lines(&g.notes)),
            ("CPU mean (% of the cores)", fmt(g.cpu_share_mean * 100.0)),
            ("CPU max (% of the cores)", fmt(g.cpu_share_max * 100.0)),
            ("cores", fmt(g.cores)),
            ("event-loop delay p99 (ms)", fmt(g.loop_delay_p99_ms)),
            ("event-loop delay max (ms)", fmt(g.loop_delay_max_ms)),
            ("send lateness p99 (ms)", fmt(g.lateness_p99_ms)),
            ("waited for server credit (s)", fmt(g.credit_wait_s)),
            ("schedule skipped (s)", fmt(g.skipped_s)),
            (
                "host CPU busy mean / max (%)",
                host.map_or_else(
                    || "–".into(),
                    |h| format!("{} / {}", fmt(h.busy_mean * 100.0), fmt(h.busy_max * 100.0)),
                ),
            ),
            (
                "host tasks waiting for a CPU mean / max (% of the time)",
                match host.map(|h| (h.pressure_mean, h.pressure_max)) {
                    Some((Some(m), Some(x))) => format!("{} / {}", fmt(m * 100.0), fmt(x * 100.0)),
                    _ => "–".into(),
                },
            ),
            ("process CPU (s)", opt(process.map(|p| p.cpu_seconds))),
            (
                "peak RSS (MB)",
                process.map_or_else(|| "–".into(), |p| mb(p.peak_rss_bytes)),
            ),
            (
                "RSS at the end (MB)",
                process.map_or_else(|| "–".into(), |p| mb(p.rss_bytes)),
            ),
        ],
    );
}

/// More meetings than this are summed up, not listed.
const MAX_MEETINGS: usize = 2000;

fn meetings(o: &mut String, p: &Page) {
    o.push_str("<h2>Meetings</h2>\n");
    let Some(list) = &p.meetings else {
        return missing(o, "Meetings are");
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .take(MAX_MEETINGS)
        .map(|m| {
            vec![
                esc(&m.meeting_id),
                us(m.clients),
                us(m.connected),
                n(m.audio_sent),
                n(m.video_sent),
                n(m.audio_received),
                n(m.video_received),
                n(m.lost),
            ]
        })
        .collect();
    table(
        o,
        "meetings",
        &[
            "meeting",
            "clients",
            "connected",
            "audio sent",
            "video sent",
            "audio received",
            "video received",
            "lost",
        ],
        &rows,
    );
    if list.len() > MAX_MEETINGS {
        let _ = writeln!(
            o,
            "<p>… and {} more meetings (see the JSON report).</p>",
            list.len() - MAX_MEETINGS
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A version-3 report as the run writes it, by hand: three samples, the
    /// second without video latency.
    fn fixture() -> Value {
        let sample = |t: f64, video_p99: Value, failing: Value| {
            json!({
                "t_s": t, "unix_ms": 1_764_650_000_000u64 + (t * 1000.0) as u64, "phase": null,
                "clients": {"pending": 0, "connecting": 0, "connected": 6, "stalled": 0,
                            "reconnecting": 0, "failed": 0, "done": 0},
                "sent_packets": {"audio": 300, "video": 180}, "recv_packets": {"audio": 600, "video": 360},
                "sent_mbps": 3.2, "recv_mbps": 6.4, "lost": {"audio": 0, "video": 1},
                "latency_ms": {"audio": {"p50": 1.2, "p99": 3.4}, "video": {"p50": 1.5, "p99": video_p99}},
                "jitter_ms": {"audio": 0.3, "video": 0.8},
                "freezes": 0, "lateness_p99_ms": 2.1, "cpu_share": 0.12, "rss_mb": 60.5,
                "failing": failing
            })
        };
        json!({
            "schema": "synth-replay-report", "version": 3,
            "server": "embedded relay https://127.0.0.1:4433/", "pack": "packs/default.pack",
            "elapsed_s": 10.02, "stopped_by": "duration",
            "clients": {"planned": 6, "connected": 6, "failed": 0, "connected_at_end": 6,
                        "started_at_end": 6, "reconnects": 0, "stalls": 0, "stalled_s": 0.0},
            "connect_ms": {"count": 6, "p50": 3.1, "p95": 4.0, "p99": 4.0, "max": 4.0},
            "connect_failures": {"timeout": 0, "rejected": 0},
            "audio": {"sent": {"packets": 3000, "bytes": 300000}, "received": {"packets": 6000, "lost": 0,
                      "latency_ms": {"count": 6000, "p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 9.5},
                      "concealment": {"slots": 6000, "concealed": 0, "share": 0.0}}},
            "video": {"sent": {"packets": 1800}, "received": {"packets": 3600, "lost": 1,
                      "freezes": {"count": 2, "longest_ms": 320.0, "share": 0.001}}},
            "meetings": [{"meeting_id": "room-0", "clients": 3, "connected": 3, "audio_sent": 1500,
                          "video_sent": 900, "audio_received": 3000, "video_received": 1800, "lost": 1}],
            "thresholds": [
                {"name": "audio_latency_p99_ms", "expr": "< 150", "actual": 180.25, "pass": false},
                {"name": "connected_at_end_share", "expr": ">= 0.5 (built in)", "actual": 1.0, "pass": true}
            ],
            "server_signals": {"congestion_received": 0, "keyframe_requests_received": 2,
                               "keyframe_answer_ms": {"count": 2, "p50": 0.5, "p95": 0.7, "p99": 0.7, "max": 0.7}},
            "send_lateness_ms": {"count": 4800, "p50": 0.2, "p95": 1.0, "p99": 2.0, "max": 7.0},
            "generator": {"saturated": true, "reasons": ["send lateness p99 60 ms > 50 ms"],
                          "notes": [], "cpu_share_mean": 0.5, "loop_delay_p99_ms": 1.0},
            "process": {"cpu_seconds": 1.5, "peak_rss_bytes": 60_000_000u64, "rss_bytes": 50_000_000u64},
            "passed": false,
            "timeline": {"interval_s": 1.0, "start_unix_ms": 1_764_650_000_000u64, "samples": [
                sample(1.0, json!(4.0), json!([])),
                sample(2.0, Value::Null, json!(["audio_latency_p99_ms"])),
                sample(3.0, json!(4.5), json!(["audio_latency_p99_ms"])),
            ]},
            "events": [
                {"t_s": 2.0, "unix_ms": 1_764_650_002_000u64, "kind": "threshold_failed",
                 "name": "audio_latency_p99_ms", "detail": "audio_latency_p99_ms < 150 (was 180.2)"},
                {"t_s": 3.0, "kind": "step", "name": "40 clients", "detail": ""}
            ],
            "search": {"knee": 36, "first_broken": "audio_lost", "steps": [
                {"clients": 35, "t_start_s": 1.0, "t_end_s": 2.0, "passed": true, "broken": [],
                 "figures": {"audio_lost": 0, "audio_latency_p99_ms": 3.1}},
                {"clients": 40, "t_start_s": 3.0, "t_end_s": 4.0, "passed": false,
                 "broken": ["audio_lost"], "figures": {"audio_lost": 12}}
            ]}
        })
    }

    /// The scores section as a table of the run and each group, and the
    /// timeline's scores as a plot; a report without them shows neither.
    #[test]
    fn scores_show_as_a_table_and_a_plot() {
        use crate::model::score::{summarize, ParticipantScore};
        use crate::score::{BandIn, BandLimits};
        let plain = render_value(&fixture());
        assert!(!plain.contains("Quality scores"));
        assert!(!plain.contains("id=\"plot-scores\""));

        let l = BandLimits::default();
        let p = |id: &str, group: &str, loss: f64| {
            let i = BandIn {
                audio_concealment: Some(loss),
                ..BandIn::default()
            };
            ParticipantScore::new(id, group, "room-0", None, None, i, &l)
        };
        let sc = summarize(
            &l,
            &[4.2],
            &[],
            vec![p("a", "wifi", 0.0), p("b", "lte", 0.2)],
        );
        let mut v = fixture();
        v["scores"] = serde_json::to_value(&sc).unwrap();
        for (i, s) in v["timeline"]["samples"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            s["audio_mos"] = json!(4.0 + i as f64 / 10.0);
        }
        let page = render_value(&v);
        assert!(page.contains("<h2>Quality scores</h2>"));
        assert!(page.contains("id=\"table-scores\""));
        assert!(page.contains("<td>group lte</td>"), "a row per group");
        assert!(
            page.contains("<td class=\"fail\">FAIL</td><td>A</td>"),
            "the run fails on A"
        );
        assert_eq!(runs(&page, "scores"), [("audio MOS".into(), 3)]);
        assert!(page.contains("data-v=\"4,4.1,4.2\""), "{page}");
    }

    /// The `data-points` of each polyline of the plot `id`, in order.
    fn runs(page: &str, id: &str) -> Vec<(String, usize)> {
        let start = page.find(&format!("id=\"plot-{id}\"")).expect(id);
        let svg = &page[start..start + page[start..].find("</svg>").unwrap()];
        svg.split("<polyline ")
            .skip(1)
            .map(|p| {
                let p = format!(" {p}");
                let attr = |k: &str| {
                    let v = &p[p.find(&format!(" {k}=\"")).unwrap() + k.len() + 3..];
                    v[..v.find('"').unwrap()].to_string()
                };
                let points = attr("data-points").parse().unwrap();
                assert_eq!(attr("points").split(' ').count(), points);
                (attr("data-series"), points)
            })
            .collect()
    }

    #[test]
    fn renders_a_timeline_with_markers_and_tables() {
        let page = render_value(&fixture());
        assert!(page.contains("<div id=\"verdict\" class=\"verdict fail\">FAILED</div>"));
        assert!(page.contains("2025-12-02 04:33:20 UTC"), "start time");
        for id in [
            "clients", "mbps", "latency", "lost", "freezes", "lateness", "cpu", "rss",
        ] {
            assert!(!runs(&page, id).is_empty(), "plot {id} has lines");
        }
        assert_eq!(
            runs(&page, "mbps"),
            [("sent".into(), 3), ("received".into(), 3)]
        );
        // One line per state; `away` is newer than this report, whose
        // clients were never away: a line at 0.
        assert_eq!(runs(&page, "clients").len(), 8, "one line per state");
        // A null breaks the line rather than dropping to zero.
        let latency = runs(&page, "latency");
        let video_p99: Vec<_> = latency.iter().filter(|r| r.0 == "video p99").collect();
        assert_eq!(video_p99.len(), 2, "{latency:?}");
        assert!(page.contains("data-v=\"12,12,12\""), "CPU share as %");
        // Events and search steps as markers, each once per plot.
        let per_plot = |kind: &str| page.matches(&format!("data-kind=\"{kind}\"")).count() / 8;
        assert_eq!(per_plot("threshold_failed"), 1);
        assert_eq!(
            per_plot("step"),
            2,
            "35 at 1 s (from search) and 40 at 3 s (event and step, once)"
        );
        assert_eq!(page.matches("class=\"failing\"").count(), 2 * 8);
        for t in [
            "thresholds",
            "clients",
            "media",
            "signals",
            "generator",
            "meetings",
            "search-steps",
            "events",
        ] {
            assert!(page.contains(&format!("id=\"table-{t}\"")), "table {t}");
        }
        assert!(page.contains("<td>audio_latency_p99_ms</td><td>&lt;</td><td class=\"n\">150</td><td class=\"n\">180.2</td><td class=\"fail\">FAIL</td>"));
        assert!(page.contains("<td>&gt;=</td><td>0.5 (built in)</td>"));
        assert!(page.contains("<dd id=\"knee\">36 clients</dd>"));
        assert!(page.contains("WARNING: the generator was saturated"));
        assert!(page.contains("send lateness p99 60 ms &gt; 50 ms"));
        // Video has no latency in this report: each of its percentiles is a dash.
        assert!(page.contains("<td>latency p50 / p95 / p99 / max (ms)</td><td class=\"n\">1 / 2 / 3 / 9.5</td><td class=\"n\">– / – / – / –</td>"));
        assert!(page.contains("2 (320, 0.001)"), "video freezes");
        assert!(
            !page.contains("not in this report"),
            "every section is there"
        );
    }

    #[test]
    fn a_report_without_timeline_says_so() {
        let mut r = fixture();
        for k in ["timeline", "events", "search"] {
            r.as_object_mut().unwrap().remove(k);
        }
        let page = render_value(&r);
        assert!(page.contains("A timeline is not in this report"));
        assert!(!page.contains("<svg"));
        assert!(!page.contains("Capacity search"));
        assert!(
            !page.contains("<dt>started</dt>"),
            "the start comes from the timeline"
        );
        assert!(page.contains("id=\"table-meetings\""));
        // Whatever the JSON, a page and no panic.
        for odd in [
            json!(null),
            json!([1, 2]),
            json!({"timeline": {"samples": [{"t_s": "x"}, {"t_s": 1.0, "clients": 5}, 7]}}),
            json!({"timeline": {"samples": [{"t_s": 1e300, "sent_mbps": -1e300}, {"t_s": -1e300, "sent_mbps": 1e300}]}}),
            json!({"thresholds": [{"expr": 5}], "meetings": [null], "events": [{"t_s": 1}],
                   "search": {"steps": [{"figures": [1]}]}, "audio": 1, "video": [], "passed": "yes"}),
        ] {
            let page = render_value(&odd);
            assert!(page.ends_with("</html>\n"));
        }
        let page = render_value(&json!({}));
        assert!(page.contains("verdict not in this report"));
        assert!(page.contains("Meetings are not in this report"));
    }

    #[test]
    fn the_behaviour_section_has_planned_against_measured_and_each_phase() {
        let mut r = fixture();
        assert!(
            !render_value(&r).contains("<h2>Behaviour</h2>"),
            "absent without one"
        );
        let counts = |j: u64| json!({"joins": j, "leaves": 3, "rejoins": 2, "storm_drops": 1});
        r["seed"] = json!(7);
        r["behaviour"] = json!({
            "schedule_digest": "00ff00ff00ff00ff",
            "planned": counts(12), "measured": counts(11),
            "rejoin_ms": {"count": 2, "p50": 3.5, "p95": 9.0, "p99": 9.0, "max": 9.0},
            "viewers": 4, "speaking_heartbeats": 30, "actions": 5,
            "screen": {"shares": 1, "sent_packets": 50, "sent_bytes": 1, "received_packets": 150, "received_bytes": 1},
            "phases": [{"name": "<warm-up>", "kind": "ramp", "t_start_s": 0.0, "t_end_s": 20.0,
                        "connected_at_end": 15, "figures": {"joins": 15.0, "audio_lost": null}}]
        });
        let page = render_value(&r);
        assert!(
            page.contains("<td>joins</td><td class=\"n\">12</td><td class=\"n\">11</td>"),
            "{page}"
        );
        assert!(page.contains("00ff00ff00ff00ff") && page.contains("50 / 150"));
        assert!(page.contains("table-phases") && page.contains("&lt;warm-up&gt;"));
        assert!(page.contains("joins 15"));
    }

    #[test]
    fn base64_of_the_script_hash() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn strings_from_the_report_are_escaped() {
        let mut r = fixture();
        r["meetings"][0]["meeting_id"] = json!("<script>alert(1)</script>");
        r["server"] = json!("https://x/\"><img src=x onerror=alert(2)>");
        r["events"][0]["detail"] = json!("</title><script>alert(3)</script>");
        r["thresholds"][0]["name"] = json!("a&b");
        let page = render_value(&r);
        assert_eq!(
            page.matches("<script").count(),
            1,
            "only the page's own script"
        );
        assert!(!page.contains("<img"));
        assert!(page.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
        assert!(page.contains("https://x/&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
        assert!(page.contains("<td>a&amp;b</td>"));
    }
}
