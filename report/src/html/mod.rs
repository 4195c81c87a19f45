//! The report as one self-contained HTML page (`synth-replay report html`,
//! `synth-replay run --html`): a header with the verdict, plots of the
//! timeline as inline SVG, and the tables of the text summary.
//!
//! It reads the report as JSON, not as [`crate::model::Report`], so a report
//! of any version renders: a section the report lacks says so, and a figure
//! with no value shows as a dash. The page loads nothing from anywhere (no
//! fonts, scripts or images; its Content-Security-Policy forbids it), so it
//! opens offline. Every string taken from the report is escaped: it holds
//! user-supplied ids and server URLs.
//!
//! Stable hooks for `scripts/check-html.sh`: each plot is an
//! `<svg class="plot" id="plot-NAME">` whose series are `<polyline
//! class="series" data-series=… data-points=N>` (a series with gaps is
//! several polylines), tables have ids `table-NAME`, and the inline script
//! sets `data-js="ok"` on `<body>` once it has run without an error.

use std::fmt::Write as _;

use serde_json::Value;

/// The whole page for `report`.
pub fn render(report: &crate::model::Report) -> String {
    render_value(&serde_json::to_value(report).unwrap_or_default())
}

/// The whole page for `report` (a parsed `synth-replay` JSON report).
pub fn render_value(report: &Value) -> String {
    let mut o = String::with_capacity(64 * 1024);
    // Only the page's own script may run: a string of the report that got
    // past the escaping as markup would still not execute.
    let hash = base64(&synth_common::fingerprint::sha256(SCRIPT.as_bytes()));
    o.push_str(&HEAD.replace("SCRIPT_HASH", &hash));
    header(&mut o, report);
    thresholds(&mut o, report);
    timeline(&mut o, report);
    search(&mut o, report);
    behaviour(&mut o, report);
    events(&mut o, report);
    clients(&mut o, report);
    media(&mut o, report);
    signals(&mut o, report);
    generator(&mut o, report);
    meetings(&mut o, report);
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

/// `s` safe in HTML text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The value at `path` (object keys), if every step exists.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    at(v, path)?.as_f64().filter(|x| x.is_finite())
}

/// A scalar at `path` as text (escaped), a dash when absent or `null`.
fn txt(v: &Value, path: &[&str]) -> String {
    match at(v, path) {
        Some(Value::String(s)) => esc(s),
        Some(Value::Number(n)) => n.as_f64().map_or_else(|| esc(&n.to_string()), fmt),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "–".into(),
    }
}

/// A number for people: whole numbers as such, others with 1 to 3 decimals.
fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = match v.abs() {
        a if a >= 100.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The strings of the array `key` of `v`, escaped and joined by `sep`.
fn strings(v: &Value, key: &str, sep: &str) -> String {
    let l: Vec<String> = v
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(esc)
        .collect();
    l.join(sep)
}

/// `PASS`/`FAIL` from the boolean `key` of `v`.
fn pass_fail(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_bool) {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "–",
    }
    .into()
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), fmt)
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

/// Percentiles `{p50,p95,p99,max}` at `path` as `p50 / p95 / p99 / max`.
fn pct(v: &Value, path: &[&str]) -> String {
    let Some(p) = at(v, path).filter(|p| p.is_object()) else {
        return "–".into();
    };
    ["p50", "p95", "p99", "max"]
        .iter()
        .map(|q| fmt_opt(num(p, &[q])))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn mb(v: &Value, path: &[&str]) -> String {
    fmt_opt(num(v, path).map(|b| b / 1e6))
}

fn header(o: &mut String, r: &Value) {
    o.push_str("<header>\n<h1>synth-replay report</h1>\n");
    let (class, word) = match r.get("passed").and_then(Value::as_bool) {
        Some(true) => ("pass", "PASSED"),
        Some(false) => ("fail", "FAILED"),
        None => ("unknown", "verdict not in this report"),
    };
    let _ = writeln!(
        o,
        "<div id=\"verdict\" class=\"verdict {class}\">{word}</div>"
    );
    let started = num(r, &["timeline", "start_unix_ms"]).map_or(String::new(), |ms| {
        format!("<dt>started</dt><dd>{}</dd>", utc(ms))
    });
    let _ = writeln!(
        o,
        "<dl class=\"head\"><dt>server</dt><dd id=\"server\">{}</dd><dt>pack</dt><dd>{}</dd>\
         <dt>ran</dt><dd>{} s (ended by {})</dd>{started}\
         <dt>report</dt><dd>schema {} version {}</dd></dl>",
        txt(r, &["server"]),
        txt(r, &["pack"]),
        txt(r, &["elapsed_s"]),
        txt(r, &["stopped_by"]),
        txt(r, &["schema"]),
        txt(r, &["version"]),
    );
    if at(r, &["generator", "saturated"]).and_then(Value::as_bool) == Some(true) {
        o.push_str(
            "<p class=\"warn\">WARNING: the generator was saturated: these figures describe \
             this machine, not only the server (see Generator health).</p>\n",
        );
    }
    o.push_str("</header>\n");
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC` (civil from days, Hinnant).
fn utc(ms: f64) -> String {
    let secs = (ms / 1000.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn thresholds(o: &mut String, r: &Value) {
    o.push_str("<h2>Thresholds</h2>\n");
    let Some(list) = r.get("thresholds").and_then(Value::as_array) else {
        return missing(o, "Thresholds are");
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let expr = t.get("expr").and_then(Value::as_str).unwrap_or("");
            let split = expr
                .find(|c: char| !"<>=!".contains(c))
                .unwrap_or(expr.len());
            let (op, limit) = expr.split_at(split);
            vec![
                txt(t, &["name"]),
                esc(op),
                esc(limit.trim()),
                txt(t, &["actual"]),
                pass_fail(t, "pass"),
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

/// A vertical line on every plot: an event, a phase, a search step.
#[derive(Debug, Clone, PartialEq)]
struct Marker {
    t: f64,
    kind: String,
    label: String,
    detail: String,
}

fn markers(r: &Value, samples: &[Value]) -> Vec<Marker> {
    let mut out: Vec<Marker> = Vec::new();
    let mut push = |m: Marker| {
        if !out
            .iter()
            .any(|x| x.label == m.label && (x.t - m.t).abs() < 1e-6)
        {
            out.push(m);
        }
    };
    for e in r
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = num(e, &["t_s"]) {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            push(Marker {
                t,
                kind: s("kind"),
                label: s("name"),
                detail: s("detail"),
            });
        }
    }
    let mut phase: Option<&str> = None;
    for s in samples {
        let p = s.get("phase").and_then(Value::as_str);
        if let (Some(p), Some(t)) = (p, num(s, &["t_s"])) {
            if phase != Some(p) {
                push(Marker {
                    t,
                    kind: "phase".into(),
                    label: p.into(),
                    detail: String::new(),
                });
            }
        }
        phase = p;
    }
    for s in r
        .get("search")
        .and_then(|s| s.get("steps"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(t), Some(n)) = (num(s, &["t_start_s"]), num(s, &["clients"])) {
            push(Marker {
                t,
                kind: "step".into(),
                label: format!("{} clients", fmt(n)),
                detail: String::new(),
            });
        }
    }
    out
}

/// One line of a plot.
struct Series {
    label: &'static str,
    color: &'static str,
    values: Vec<Option<f64>>,
}

/// One plot of the timeline.
struct Plot {
    id: &'static str,
    title: &'static str,
    series: Vec<Series>,
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f", "#17becf",
];

fn plots(samples: &[Value]) -> Vec<Plot> {
    let series = |defs: &[(&'static str, &[&str], f64)]| -> Vec<Series> {
        defs.iter()
            .enumerate()
            .map(|(i, (label, path, scale))| Series {
                label,
                color: COLORS[i % COLORS.len()],
                values: samples
                    .iter()
                    .map(|s| num(s, path).map(|v| v * scale))
                    .collect(),
            })
            .collect()
    };
    const STATES: [&str; 8] = [
        "connected",
        "stalled",
        "connecting",
        "reconnecting",
        "failed",
        "pending",
        "done",
        "away",
    ];
    let paths = STATES.map(|s| ["clients", s]);
    let clients: Vec<(&'static str, &[&str], f64)> = STATES
        .iter()
        .zip(&paths)
        .map(|(s, p)| (*s, &p[..], 1.0))
        .collect();
    vec![
        Plot {
            id: "clients",
            title: "Clients by state",
            series: series(&clients),
        },
        Plot {
            id: "mbps",
            title: "Mbit/s sent and received",
            series: series(&[
                ("sent", &["sent_mbps"], 1.0),
                ("received", &["recv_mbps"], 1.0),
            ]),
        },
        Plot {
            id: "latency",
            title: "One-way latency (ms)",
            series: series(&[
                ("audio p50", &["latency_ms", "audio", "p50"], 1.0),
                ("audio p99", &["latency_ms", "audio", "p99"], 1.0),
                ("video p50", &["latency_ms", "video", "p50"], 1.0),
                ("video p99", &["latency_ms", "video", "p99"], 1.0),
            ]),
        },
        Plot {
            id: "lost",
            title: "Packets lost per interval",
            series: series(&[
                ("audio", &["lost", "audio"], 1.0),
                ("video", &["lost", "video"], 1.0),
            ]),
        },
        Plot {
            id: "freezes",
            title: "Video freezes per interval",
            series: series(&[("freezes", &["freezes"], 1.0)]),
        },
        Plot {
            id: "lateness",
            title: "Send lateness p99 (ms)",
            series: series(&[("lateness p99", &["lateness_p99_ms"], 1.0)]),
        },
        Plot {
            id: "cpu",
            title: "CPU, % of the available cores",
            series: series(&[("cpu", &["cpu_share"], 100.0)]),
        },
        Plot {
            id: "rss",
            title: "Resident memory (MB)",
            series: series(&[("rss", &["rss_mb"], 1.0)]),
        },
    ]
}

/// A round step for about `n` ticks over `range`.
fn nice_step(range: f64, n: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

const W: f64 = 1000.0;
const H: f64 = 240.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 15.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

fn plot_svg(o: &mut String, p: &Plot, times: &[f64], failing: &[String], marks: &[Marker]) {
    // From the run's start (0 s) when the samples are times within the run.
    let t0 = times.iter().copied().fold(0f64, f64::min);
    let t1 = times.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (t0, t1) = if t1 > t0 {
        (t0, t1)
    } else {
        (t0 - 1.0, t0 + 1.0)
    };
    let all = p.series.iter().flat_map(|s| s.values.iter().flatten());
    let (lo, hi) = all.fold((0f64, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let ystep = nice_step(hi - lo, 4.0);
    let (ymin, ymax) = ((lo / ystep).floor() * ystep, (hi / ystep).ceil() * ystep);
    let ymax = if ymax > ymin { ymax } else { ymin + ystep };
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - (v - ymin) / (ymax - ymin) * (H - TOP - BOTTOM);
    let points: usize = p
        .series
        .iter()
        .map(|s| s.values.iter().flatten().count())
        .sum();
    let _ = writeln!(
        o,
        "<figure class=\"plot\"><figcaption>{}</figcaption>",
        esc(p.title)
    );
    let tlist: Vec<String> = times.iter().map(|t| fmt(*t)).collect();
    let _ = writeln!(
        o,
        "<svg class=\"plot\" id=\"plot-{}\" data-points=\"{points}\" viewBox=\"0 0 {W} {H}\" \
         xmlns=\"http://www.w3.org/2000/svg\" data-t=\"{}\" data-t0=\"{t0}\" data-t1=\"{t1}\" \
         data-x0=\"{LEFT}\" data-x1=\"{}\">",
        p.id,
        tlist.join(","),
        W - RIGHT
    );
    // Intervals in which a threshold was failing, shaded behind everything.
    for (i, names) in failing.iter().enumerate() {
        if names.is_empty() {
            continue;
        }
        let start = if i == 0 { t0 } else { times[i - 1] };
        let _ = writeln!(
            o,
            "<rect class=\"failing\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{}\"><title>failing: {}</title></rect>",
            x(start),
            (x(times[i]) - x(start)).max(1.0),
            H - TOP - BOTTOM,
            names
        );
    }
    let yticks = ((ymax - ymin) / ystep).round().clamp(1.0, 20.0) as usize;
    for i in 0..=yticks {
        let v = ymin + i as f64 * ystep;
        let _ = writeln!(
            o,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            fmt(v),
            yy = y(v)
        );
    }
    let xstep = nice_step(t1 - t0, 10.0);
    let first = (t0 / xstep).ceil() * xstep;
    for i in 0..=((t1 - first) / xstep + 1e-9).floor().clamp(0.0, 50.0) as usize {
        let t = first + i as f64 * xstep;
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{} s</text>",
            x(t),
            H - BOTTOM + 16.0,
            fmt(t)
        );
    }
    let _ = writeln!(
        o,
        "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\"/><line class=\"axis\" x1=\"{LEFT}\" x2=\"{LEFT}\" y1=\"{TOP}\" y2=\"{b}\"/>",
        W - RIGHT,
        b = H - BOTTOM
    );
    for s in &p.series {
        // A `null` breaks the line: no data there is not zero.
        let mut run: Vec<String> = Vec::new();
        let mut flush = |run: &mut Vec<String>| {
            if run.is_empty() {
                return;
            }
            let _ = writeln!(
                o,
                "<polyline class=\"series\" data-series=\"{}\" data-points=\"{}\" stroke=\"{}\" points=\"{}\"/>",
                s.label,
                run.len(),
                s.color,
                run.join(" ")
            );
            if run.len() == 1 {
                let (cx, cy) = run[0].split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    o,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{}\"/>",
                    s.color
                );
            }
            run.clear();
        };
        for (t, v) in times.iter().zip(&s.values) {
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", x(*t), y(*v))),
                None => flush(&mut run),
            }
        }
        flush(&mut run);
    }
    for m in marks.iter().filter(|m| m.t >= t0 && m.t <= t1) {
        let color = match m.kind.as_str() {
            "threshold_failed" => "#c62828",
            "abort" => "#6a1b9a",
            "step" | "phase" => "#1565c0",
            _ => "#616161",
        };
        let mx = x(m.t);
        let _ = writeln!(
            o,
            "<g class=\"marker\" data-kind=\"{}\"><title>{} {}: {}</title>\
             <line x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{:.1}\" y=\"{}\" transform=\"rotate(-90 {:.1} {})\" text-anchor=\"end\" style=\"fill:{color}\">{}</text></g>",
            esc(&m.kind),
            esc(&m.kind),
            esc(&m.label),
            esc(&m.detail),
            H - BOTTOM,
            mx + 11.0,
            TOP + 2.0,
            mx + 11.0,
            TOP + 2.0,
            esc(&m.label)
        );
    }
    let _ = writeln!(
        o,
        "<line class=\"cursor\" x1=\"0\" x2=\"0\" y1=\"{TOP}\" y2=\"{}\" visibility=\"hidden\"/></svg>",
        H - BOTTOM
    );
    o.push_str("<ul class=\"legend\">");
    for s in &p.series {
        let vals: Vec<String> = s
            .values
            .iter()
            .map(|v| v.map_or(String::new(), fmt))
            .collect();
        let _ = write!(
            o,
            "<li data-label=\"{l}\" data-v=\"{}\"><span style=\"background:{}\"></span>{l}</li>",
            vals.join(","),
            s.color,
            l = s.label
        );
    }
    o.push_str("</ul><div class=\"readout\"></div></figure>\n");
}

fn timeline(o: &mut String, r: &Value) {
    o.push_str("<h2>Timeline</h2>\n");
    let samples: Vec<Value> = at(r, &["timeline", "samples"])
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter(|s| num(s, &["t_s"]).is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if samples.is_empty() {
        return missing(o, "A timeline is");
    }
    let times: Vec<f64> = samples.iter().filter_map(|s| num(s, &["t_s"])).collect();
    let failing: Vec<String> = samples
        .iter()
        .map(|s| strings(s, "failing", ", "))
        .collect();
    let _ = writeln!(
        o,
        "<p>{} samples every {} s; markers: events, phases and search steps; shaded: a threshold failing.</p>",
        samples.len(),
        txt(r, &["timeline", "interval_s"])
    );
    let marks = markers(r, &samples);
    for p in plots(&samples) {
        plot_svg(o, &p, &times, &failing, &marks);
    }
}

fn search(o: &mut String, r: &Value) {
    let Some(s) = r.get("search").filter(|s| s.is_object()) else {
        return;
    };
    o.push_str("<h2>Capacity search</h2>\n");
    let knee = match num(s, &["knee"]) {
        Some(k) => format!("{} clients", fmt(k)),
        None => "none found".into(),
    };
    let _ = writeln!(
        o,
        "<dl class=\"head\"><dt>knee</dt><dd id=\"knee\">{knee}</dd><dt>broke first</dt><dd>{}</dd></dl>",
        txt(s, &["first_broken"])
    );
    let Some(steps) = s.get("steps").and_then(Value::as_array) else {
        return missing(o, "Search steps are");
    };
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|st| {
            vec![
                txt(st, &["clients"]),
                txt(st, &["t_start_s"]),
                txt(st, &["t_end_s"]),
                pass_fail(st, "passed"),
                strings(st, "broken", ", "),
                figures(st),
            ]
        })
        .collect();
    table(
        o,
        "search-steps",
        &[
            "clients", "from (s)", "to (s)", "result", "broken", "figures",
        ],
        &rows,
    );
}

/// A step's or a phase's `figures` object, one `name value` a line.
fn figures(v: &Value) -> String {
    name_values(v.get("figures")).join("<br>")
}

/// Each `name: number` of a JSON object as `name value`, escaped (none
/// when `v` is not an object).
fn name_values(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{} {}", esc(k), fmt_opt(v.as_f64())))
        .collect()
}

/// The behaviour section: planned against measured sessions, the rest, each phase.
fn behaviour(o: &mut String, r: &Value) {
    let Some(b) = r.get("behaviour").filter(|b| b.is_object()) else {
        return;
    };
    o.push_str("<h2>Behaviour</h2>\n");
    let rows: Vec<Vec<String>> = ["joins", "leaves", "rejoins", "storm_drops"]
        .iter()
        .map(|k| vec![esc(k), txt(b, &["planned", k]), txt(b, &["measured", k])])
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
            ("seed", txt(r, &["seed"])),
            ("schedule digest", txt(b, &["schedule_digest"])),
            ("rejoin (ms)", pct(b, &["rejoin_ms"])),
            ("viewers", txt(b, &["viewers"])),
            ("actions carried out", txt(b, &["actions"])),
            ("speaking heartbeats", txt(b, &["speaking_heartbeats"])),
            ("screen shares", txt(b, &["screen", "shares"])),
            (
                "SCREEN packets sent / received",
                format!(
                    "{} / {}",
                    txt(b, &["screen", "sent_packets"]),
                    txt(b, &["screen", "received_packets"])
                ),
            ),
        ],
    );
    let Some(phases) = b.get("phases").and_then(Value::as_array) else {
        return;
    };
    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|ph| {
            vec![
                txt(ph, &["name"]),
                txt(ph, &["kind"]),
                txt(ph, &["t_start_s"]),
                txt(ph, &["t_end_s"]),
                txt(ph, &["connected_at_end"]),
                figures(ph),
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

fn events(o: &mut String, r: &Value) {
    let Some(list) = r.get("events").and_then(Value::as_array) else {
        return;
    };
    o.push_str("<h2>Events</h2>\n");
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                txt(e, &["t_s"]),
                txt(e, &["kind"]),
                txt(e, &["name"]),
                txt(e, &["detail"]),
            ]
        })
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

fn clients(o: &mut String, r: &Value) {
    o.push_str("<h2>Clients</h2>\n");
    let Some(c) = r.get("clients").filter(|c| c.is_object()) else {
        return missing(o, "Client counts are");
    };
    let failures = name_values(r.get("connect_failures"));
    kv(
        o,
        "clients",
        &[
            ("planned", txt(c, &["planned"])),
            ("connected at least once", txt(c, &["connected"])),
            ("failed", txt(c, &["failed"])),
            ("connected at the end", txt(c, &["connected_at_end"])),
            ("started by the end", txt(c, &["started_at_end"])),
            ("reconnects", txt(c, &["reconnects"])),
            ("stalls", txt(c, &["stalls"])),
            ("stalled (s)", txt(c, &["stalled_s"])),
            (
                "connect p50 / p95 / p99 / max (ms)",
                pct(r, &["connect_ms"]),
            ),
            ("failed attempts by reason", failures.join(", ")),
        ],
    );
}

fn media(o: &mut String, r: &Value) {
    o.push_str("<h2>Media</h2>\n");
    let (Some(a), Some(v)) = (r.get("audio"), r.get("video")) else {
        return missing(o, "Media figures are");
    };
    type Row = fn(&Value) -> String;
    let rows: [(&str, Row); 21] = [
        ("sent packets", |m| txt(m, &["sent", "packets"])),
        ("sent, acknowledged", |m| txt(m, &["sent", "acked"])),
        ("sent, unacknowledged", |m| txt(m, &["sent", "unacked"])),
        ("sent MB", |m| mb(m, &["sent", "bytes"])),
        ("bitrate per client (kbps)", |m| {
            txt(m, &["sent", "bitrate_kbps"])
        }),
        ("pack bitrate (kbps)", |m| txt(m, &["sent", "target_kbps"])),
        ("bitrate error (%)", |m| {
            txt(m, &["sent", "bitrate_error_pct"])
        }),
        ("received packets", |m| txt(m, &["received", "packets"])),
        ("received MB", |m| mb(m, &["received", "bytes"])),
        ("lost", |m| txt(m, &["received", "lost"])),
        ("lost exactly / expected", |m| {
            format!(
                "{} / {}",
                txt(m, &["received", "exact", "lost"]),
                txt(m, &["received", "exact", "expected"])
            )
        }),
        ("late", |m| txt(m, &["received", "late"])),
        ("reordered", |m| txt(m, &["received", "reordered"])),
        ("duplicate", |m| txt(m, &["received", "duplicate"])),
        ("corrupted", |m| txt(m, &["received", "corrupted"])),
        ("latency p50 / p95 / p99 / max (ms)", |m| {
            pct(m, &["received", "latency_ms"])
        }),
        ("cross-host latency (ms)", |m| {
            pct(m, &["received", "cross_host_latency_ms"])
        }),
        ("jitter p50 / p95 / p99 / max (ms)", |m| {
            pct(m, &["received", "jitter_ms"])
        }),
        ("rate per sender p5 / p50 (per s)", |m| {
            format!(
                "{} / {}",
                txt(m, &["received", "rate_per_sender", "p5"]),
                txt(m, &["received", "rate_per_sender", "p50"])
            )
        }),
        ("freezes (longest ms, share)", |m| {
            match at(m, &["received", "freezes"]).filter(|f| f.is_object()) {
                Some(f) => format!(
                    "{} ({}, {})",
                    txt(f, &["count"]),
                    txt(f, &["longest_ms"]),
                    txt(f, &["share"])
                ),
                None => String::new(),
            }
        }),
        ("concealed / slots (share)", |m| {
            match at(m, &["received", "concealment"]).filter(|c| c.is_object()) {
                Some(c) => format!(
                    "{} / {} ({})",
                    txt(c, &["concealed"]),
                    txt(c, &["slots"]),
                    txt(c, &["share"])
                ),
                None => String::new(),
            }
        }),
    ];
    let mut rows: Vec<Vec<String>> = rows.iter().map(|(k, f)| vec![esc(k), f(a), f(v)]).collect();
    rows.push(vec![
        "send lateness p50 / p95 / p99 / max (ms)".into(),
        pct(r, &["send_lateness_ms"]),
        "(audio and video)".into(),
    ]);
    table(o, "media", &["figure", "audio", "video"], &rows);
}

fn signals(o: &mut String, r: &Value) {
    o.push_str("<h2>Server signals</h2>\n");
    let Some(s) = r.get("server_signals").filter(|s| s.is_object()) else {
        return missing(o, "Server signals are");
    };
    kv(
        o,
        "signals",
        &[
            ("CONGESTION received", txt(s, &["congestion_received"])),
            (
                "clients with CONGESTION",
                txt(s, &["clients_with_congestion"]),
            ),
            (
                "key-frame requests",
                txt(s, &["keyframe_requests_received"]),
            ),
            ("key frames answered", txt(s, &["keyframes_answered"])),
            (
                "key-frame answer p50 / p95 / p99 / max (ms)",
                pct(s, &["keyframe_answer_ms"]),
            ),
            (
                "PARTICIPANT_JOINED seen",
                txt(s, &["participant_joined_seen"]),
            ),
            ("PARTICIPANT_LEFT seen", txt(s, &["participant_left_seen"])),
            (
                "join visibility p50 / p95 / p99 / max (ms)",
                pct(s, &["join_visibility_ms"]),
            ),
        ],
    );
}

fn generator(o: &mut String, r: &Value) {
    o.push_str("<h2>Generator health</h2>\n");
    let Some(g) = r.get("generator").filter(|g| g.is_object()) else {
        return missing(o, "Generator health is");
    };
    let share = |k: &str| fmt_opt(num(g, &[k]).map(|v| v * 100.0));
    kv(
        o,
        "generator",
        &[
            ("saturated", txt(g, &["saturated"])),
            ("reasons", strings(g, "reasons", "<br>")),
            ("schedule kept", txt(g, &["schedule_kept"])),
            ("notes", strings(g, "notes", "<br>")),
            ("CPU mean (% of the cores)", share("cpu_share_mean")),
            ("CPU max (% of the cores)", share("cpu_share_max")),
            ("cores", txt(g, &["cores"])),
            ("event-loop delay p99 (ms)", txt(g, &["loop_delay_p99_ms"])),
            ("event-loop delay max (ms)", txt(g, &["loop_delay_max_ms"])),
            ("send lateness p99 (ms)", txt(g, &["lateness_p99_ms"])),
            ("waited for server credit (s)", txt(g, &["credit_wait_s"])),
            ("schedule skipped (s)", txt(g, &["skipped_s"])),
            ("process CPU (s)", txt(r, &["process", "cpu_seconds"])),
            ("peak RSS (MB)", mb(r, &["process", "peak_rss_bytes"])),
            ("RSS at the end (MB)", mb(r, &["process", "rss_bytes"])),
        ],
    );
}

/// More meetings than this are summed up, not listed.
const MAX_MEETINGS: usize = 2000;

fn meetings(o: &mut String, r: &Value) {
    o.push_str("<h2>Meetings</h2>\n");
    let Some(list) = r.get("meetings").and_then(Value::as_array) else {
        return missing(o, "Meetings are");
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .take(MAX_MEETINGS)
        .map(|m| {
            [
                "meeting_id",
                "clients",
                "connected",
                "audio_sent",
                "video_sent",
                "audio_received",
                "video_received",
                "lost",
            ]
            .iter()
            .map(|k| txt(m, &[k]))
            .collect()
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
                "t_s": t, "unix_ms": 1_764_650_000_000.0 + t * 1000.0, "phase": null,
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
        assert_eq!(runs(&page, "clients").len(), 7, "one line per state");
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
        assert!(page.contains("<td>latency p50 / p95 / p99 / max (ms)</td><td class=\"n\">1 / 2 / 3 / 9.5</td><td class=\"n\">–</td>"));
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
