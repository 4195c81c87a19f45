//! The timeline's plots as inline SVG: a line per series (a gap where a
//! sample has no value), the intervals a threshold failed in shaded, and a
//! marker for every event, phase and search step.

use std::fmt::Write as _;

use super::cell::{esc, fmt};
use crate::model::{Event, Sample, Step};

/// A vertical line on every plot: an event, a phase, a search step.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    t: f64,
    kind: String,
    label: String,
    detail: String,
}

/// Every event, every change of phase in the samples, and every search
/// step's start, each once.
pub fn markers(events: &[Event], samples: &[Sample], steps: &[Step]) -> Vec<Marker> {
    let mut out: Vec<Marker> = Vec::new();
    let mut push = |m: Marker| {
        if !out
            .iter()
            .any(|x| x.label == m.label && (x.t - m.t).abs() < 1e-6)
        {
            out.push(m);
        }
    };
    for e in events.iter().filter(|e| e.t_s.is_finite()) {
        push(Marker {
            t: e.t_s,
            kind: e.kind.clone(),
            label: e.name.clone(),
            detail: e.detail.clone(),
        });
    }
    let mut phase: Option<&str> = None;
    for s in samples {
        let p = s.phase.as_deref();
        if let Some(p) = p {
            if phase != Some(p) {
                push(Marker {
                    t: s.t_s,
                    kind: "phase".into(),
                    label: p.into(),
                    detail: String::new(),
                });
            }
        }
        phase = p;
    }
    for s in steps.iter().filter(|s| s.t_start_s.is_finite()) {
        push(Marker {
            t: s.t_start_s,
            kind: "step".into(),
            label: format!("{} clients", fmt(s.clients as f64)),
            detail: String::new(),
        });
    }
    out
}

/// One line of a plot.
pub struct Series {
    label: String,
    color: &'static str,
    values: Vec<Option<f64>>,
}

/// One plot of the timeline.
pub struct Plot {
    id: String,
    title: String,
    series: Vec<Series>,
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f", "#17becf",
];

/// What one series of a plot reads from each sample.
type Read = fn(&Sample) -> Option<f64>;

/// Each plot of the timeline: its id, its title, and its series (label,
/// what it reads).
#[allow(clippy::type_complexity)]
const PLOTS: &[(&str, &str, &[(&str, Read)])] = &[
    (
        "clients",
        "Clients by state",
        &[
            ("connected", |s| Some(s.clients.connected as f64)),
            ("stalled", |s| Some(s.clients.stalled as f64)),
            ("connecting", |s| Some(s.clients.connecting as f64)),
            ("reconnecting", |s| Some(s.clients.reconnecting as f64)),
            ("failed", |s| Some(s.clients.failed as f64)),
            ("pending", |s| Some(s.clients.pending as f64)),
            ("done", |s| Some(s.clients.done as f64)),
            ("away", |s| Some(s.clients.away as f64)),
        ],
    ),
    (
        "mbps",
        "Mbit/s sent and received",
        &[
            ("sent", |s| Some(s.sent_mbps)),
            ("received", |s| Some(s.recv_mbps)),
        ],
    ),
    (
        "latency",
        "One-way latency (ms)",
        &[
            ("audio p50", |s| s.latency_ms.audio.p50),
            ("audio p99", |s| s.latency_ms.audio.p99),
            ("video p50", |s| s.latency_ms.video.p50),
            ("video p99", |s| s.latency_ms.video.p99),
        ],
    ),
    (
        "lost",
        "Packets lost per interval",
        &[
            ("audio", |s| Some(s.lost.audio as f64)),
            ("video", |s| Some(s.lost.video as f64)),
        ],
    ),
    (
        "freezes",
        "Video freezes per interval",
        &[("freezes", |s| Some(s.freezes as f64))],
    ),
    (
        "lateness",
        "Send lateness p99 (ms)",
        &[("lateness p99", |s| s.lateness_p99_ms)],
    ),
    (
        "server_rtt",
        "RTT probes' echo time through the server (ms)",
        &[
            ("p50", |s| s.server_rtt_ms.p50),
            ("p99", |s| s.server_rtt_ms.p99),
        ],
    ),
    (
        "cpu",
        "CPU: this process, % of its cores; the host, % busy and % of the time tasks waited for a CPU",
        &[
            ("cpu", |s| s.cpu_share.map(|c| c * 100.0)),
            ("host busy", |s| s.host_busy.map(|c| c * 100.0)),
            ("host waiting", |s| s.host_pressure.map(|c| c * 100.0)),
        ],
    ),
    (
        "rss",
        "Resident memory (MB)",
        &[("rss", |s| Some(s.rss_mb))],
    ),
    (
        "scores",
        "Quality scores per interval: audio MOS (G.107) and video score (1 to 5)",
        &[
            ("audio MOS", |s| s.audio_mos),
            ("video score", |s| s.video_score),
        ],
    ),
    (
        "server_cpu",
        "Server beside the run: CPU cores its process used",
        &[("cores", |s| s.server.as_ref()?.cores)],
    ),
    (
        "server_rss",
        "Server beside the run: resident memory of its process (MB)",
        &[("rss", |s| s.server.as_ref()?.rss_mb)],
    ),
];

/// Plots drawn only when some sample has a value for them: a run of `bot`
/// clients sends no RTT probes, a run the engine did not score has no
/// scores, and reports from before them have neither; a run without
/// `server: {pid}` has no server process.
const WHEN_MEASURED: &[&str] = &["server_rtt", "scores", "server_cpu", "server_rss"];

/// The timeline's plots.
pub fn plots(samples: &[Sample]) -> Vec<Plot> {
    let mut plots: Vec<Plot> = PLOTS
        .iter()
        .filter(|&&(id, _, defs)| {
            !WHEN_MEASURED.contains(&id)
                || defs
                    .iter()
                    .any(|&(_, read)| samples.iter().any(|s| read(s).is_some()))
        })
        .map(|&(id, title, defs)| Plot {
            id: id.into(),
            title: title.into(),
            series: defs
                .iter()
                .enumerate()
                .map(|(i, &(label, read))| Series {
                    label: label.into(),
                    color: COLORS[i % COLORS.len()],
                    values: samples.iter().map(read).collect(),
                })
                .collect(),
        })
        .collect();
    plots.extend(server_queries(samples));
    plots
}

/// One plot per Prometheus query of the server beside the run (`server:
/// {queries}`), each on its own scale.
fn server_queries(samples: &[Sample]) -> Vec<Plot> {
    let names: std::collections::BTreeSet<&String> = samples
        .iter()
        .filter_map(|s| s.server.as_ref())
        .flat_map(|s| s.queries.keys())
        .collect();
    names
        .into_iter()
        .map(|name| Plot {
            id: format!("server_query_{name}"),
            title: format!("Server beside the run: {name} (Prometheus)"),
            series: vec![Series {
                label: name.clone(),
                color: COLORS[0],
                values: samples
                    .iter()
                    .map(|s| s.server.as_ref()?.queries.get(name).copied().flatten())
                    .collect(),
            }],
        })
        .collect()
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

pub fn plot_svg(o: &mut String, p: &Plot, times: &[f64], failing: &[String], marks: &[Marker]) {
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
        esc(&p.title)
    );
    let tlist: Vec<String> = times.iter().map(|t| fmt(*t)).collect();
    let _ = writeln!(
        o,
        "<svg class=\"plot\" id=\"plot-{}\" data-points=\"{points}\" viewBox=\"0 0 {W} {H}\" \
         xmlns=\"http://www.w3.org/2000/svg\" data-t=\"{}\" data-t0=\"{t0}\" data-t1=\"{t1}\" \
         data-x0=\"{LEFT}\" data-x1=\"{}\">",
        esc(&p.id),
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
                esc(&s.label),
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
            l = esc(&s.label)
        );
    }
    o.push_str("</ul><div class=\"readout\"></div></figure>\n");
}
