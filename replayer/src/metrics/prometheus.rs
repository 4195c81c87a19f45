//! The Prometheus text exposition (format 0.0.4) of [`Metrics`], for `/metrics`.
//!
//! [`FAMILIES`] lists each metric family once, in the order served: its name,
//! help text, label (name and values) and type, and the type carries how a
//! sample is read: a per-client counter summed over the clients, a figure of
//! the scrape ([`Scrape`]: the run's state counts, the process), a
//! [`Hist`], or a set of samples whose label values come from the run (the
//! config's thresholds). Every reader of a fixed label takes the index of
//! the sample's label value (0 for a family without a label). [`render`] walks the table; the README's
//! metrics table lists the same families.

use std::cell::OnceCell;
use std::fmt::{self, Write as _};
use std::sync::atomic::Ordering::Relaxed;

use super::client::ClientStats;
use super::hist::Hist;
use super::labels::{State, CONTROL, FLAGS, MEDIA, REASONS, SESSION_ENDS};
use super::process::Process;
use super::store::Metrics;
use Read::{Clients, Run};

/// The text served at `/metrics`.
pub(super) fn render(m: &Metrics) -> String {
    let mut o = String::with_capacity(8 * 1024);
    let s = Scrape {
        m,
        states: m.states(),
        process: OnceCell::new(),
    };
    for f in FAMILIES {
        f.write(&mut o, &s);
    }
    o
}

/// What one scrape reads once and shares between samples.
struct Scrape<'a> {
    m: &'a Metrics,
    /// [`Metrics::states`], taken when the scrape starts.
    states: [u64; 8],
    /// [`Process::now`], taken when first needed (the last families: their
    /// CPU time includes the rendering of the others).
    process: OnceCell<Process>,
}

impl Scrape<'_> {
    fn process(&self) -> Process {
        *self.process.get_or_init(Process::now)
    }
}

/// One metric family.
struct Family {
    name: &'static str,
    help: &'static str,
    /// Its label, or `None` for a single sample.
    label: Option<Label>,
    kind: Kind,
}

/// A label's name and its values: one sample per value, in this order.
#[derive(Clone, Copy)]
struct Label(&'static str, &'static [&'static str]);

/// The family's Prometheus type, with how its samples are read.
enum Kind {
    Counter(Read),
    Gauge(Read),
    /// `_bucket`, `_sum` and `_count` of the histogram for each label value.
    Histogram(fn(&Metrics, usize) -> &Hist),
    /// A gauge whose samples and label values are the run's own (one per
    /// threshold of the config), read at each scrape: each sample's labels
    /// (name, value; the values escaped when written) and its value.
    GaugeSet(fn(&Metrics) -> Vec<Sample>),
    /// A histogram of values the run holds whole (the participants'
    /// scores), with these upper bounds, read at each scrape.
    Values(fn(&Metrics) -> Vec<f64>, &'static [f64]),
}

/// Upper bounds of the participants' audio MOS histogram (1..4.5): finer
/// where calls are judged (3.5 is "good enough" in the docs' examples).
const AUDIO_MOS_BOUNDS: &[f64] = &[1.5, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4];
/// Upper bounds of the participants' video score histogram (1..5).
const VIDEO_SCORE_BOUNDS: &[f64] = &[1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5];
/// The verdict label's values, in [`ScoreGauges::verdicts`]' order.
///
/// [`ScoreGauges::verdicts`]: super::store::ScoreGauges::verdicts
const VERDICTS: [&str; 4] = ["green", "yellow", "red", "none"];

/// A sample of a [`Kind::GaugeSet`]: its labels (name, value) and its value.
type Sample = (Vec<(&'static str, String)>, Value);

/// How a counter's or gauge's sample is read.
enum Read {
    /// A per-client figure, summed over the clients.
    Clients(fn(&ClientStats, usize) -> u64),
    /// A figure of the run or of the process.
    Run(fn(&Scrape, usize) -> Value),
}

/// A sample's value, printed as Rust prints the number.
enum Value {
    Int(u64),
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => n.fmt(f),
            Value::Float(x) => x.fmt(f),
        }
    }
}

/// The `media` label over every [`MEDIA`] value.
const MEDIA_ALL: Label = Label("media", &MEDIA);
/// The `media` label over audio and video, the first two [`MEDIA`] values.
const MEDIA_AV: Label = Label("media", MEDIA.split_at(2).0);
/// The `kind` label of control packets, over every [`CONTROL`] value.
const CONTROL_ALL: Label = Label("kind", &CONTROL);

/// The states served as `synth_clients`, in order (pending and done are not).
const STATES: [(State, &str); 6] = [
    (State::Connecting, "connecting"),
    (State::Connected, "connected"),
    (State::Stalled, "stalled"),
    (State::Reconnecting, "reconnecting"),
    (State::Failed, "failed"),
    (State::Away, "away"),
];
/// The names of [`STATES`], as label values.
const STATE_NAMES: [&str; STATES.len()] = {
    let mut names = [""; STATES.len()];
    let mut i = 0;
    while i < STATES.len() {
        names[i] = STATES[i].1;
        i += 1;
    }
    names
};

impl Family {
    const fn counter(name: &'static str, help: &'static str, read: Read) -> Family {
        Family {
            name,
            help,
            label: None,
            kind: Kind::Counter(read),
        }
    }

    const fn gauge(name: &'static str, help: &'static str, read: Read) -> Family {
        Family {
            name,
            help,
            label: None,
            kind: Kind::Gauge(read),
        }
    }

    const fn gauge_set(
        name: &'static str,
        help: &'static str,
        read: fn(&Metrics) -> Vec<Sample>,
    ) -> Family {
        Family {
            name,
            help,
            label: None,
            kind: Kind::GaugeSet(read),
        }
    }

    const fn values(
        name: &'static str,
        help: &'static str,
        read: fn(&Metrics) -> Vec<f64>,
        bounds: &'static [f64],
    ) -> Family {
        Family {
            name,
            help,
            label: None,
            kind: Kind::Values(read, bounds),
        }
    }

    const fn histogram(
        name: &'static str,
        help: &'static str,
        hist: fn(&Metrics, usize) -> &Hist,
    ) -> Family {
        Family {
            name,
            help,
            label: None,
            kind: Kind::Histogram(hist),
        }
    }

    /// The same family with one sample per value of `label`.
    const fn by(self, label: Label) -> Family {
        Family {
            label: Some(label),
            ..self
        }
    }

    fn write(&self, o: &mut String, s: &Scrape) {
        let name = self.name;
        let kind = match self.kind {
            Kind::Counter(_) => "counter",
            Kind::Gauge(_) | Kind::GaugeSet(_) => "gauge",
            Kind::Histogram(_) | Kind::Values(..) => "histogram",
        };
        let _ = writeln!(o, "# HELP {name} {}\n# TYPE {name} {kind}", self.help);
        if let Kind::GaugeSet(read) = self.kind {
            for (labels, v) in read(s.m) {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, value)| format!("{k}=\"{}\"", label_value(value)))
                    .collect();
                let _ = writeln!(o, "{name}{} {v}", braces(&labels.join(",")));
            }
            return;
        }
        if let Kind::Values(read, bounds) = self.kind {
            values_histogram(o, name, bounds, &read(s.m));
            return;
        }
        let values = self.label.map_or(&[""][..], |Label(_, values)| values);
        for (i, value) in values.iter().enumerate() {
            let labels = match self.label {
                Some(Label(label, _)) => format!("{label}=\"{value}\""),
                None => String::new(),
            };
            match &self.kind {
                Kind::Counter(read) | Kind::Gauge(read) => {
                    let v = match read {
                        Read::Clients(f) => Value::Int(s.m.sum(|c| f(c, i))),
                        Read::Run(f) => f(s, i),
                    };
                    let _ = writeln!(o, "{name}{} {v}", braces(&labels));
                }
                Kind::Histogram(h) => histogram(o, name, &labels, h(s.m, i)),
                Kind::GaugeSet(_) | Kind::Values(..) => {}
            }
        }
    }
}

/// A label value escaped as the text format asks: backslash, double quote
/// and line feed as `\\`, `\"` and `\n`.
fn label_value(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// `{labels}`, or nothing for no labels.
fn braces(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

/// The `_bucket` (cumulative), `_sum` and `_count` samples of `values`
/// under `bounds`.
fn values_histogram(out: &mut String, name: &str, bounds: &[f64], values: &[f64]) {
    for b in bounds {
        let n = values.iter().filter(|v| **v <= *b).count();
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", values.len());
    let sum: f64 = values.iter().sum();
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {}", values.len());
}

/// A histogram's `_bucket` (cumulative, bounds in seconds), `_sum` and `_count` samples.
pub(super) fn histogram(out: &mut String, name: &str, labels: &str, h: &Hist) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cum = 0;
    for (b, n) in h.bounds_us.iter().zip(h.buckets.iter()) {
        cum += n.load(Relaxed);
        let le = *b as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cum}");
    }
    let count = h.count.load(Relaxed);
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let braces = braces(labels);
    let sum = h.sum_us.load(Relaxed) as f64 / 1e6;
    let _ = writeln!(out, "{name}_sum{braces} {sum}");
    let _ = writeln!(out, "{name}_count{braces} {count}");
}

/// Every family served, in order.
static FAMILIES: &[Family] = &[
    Family::gauge("synth_clients_planned", "Clients in the plan.", Run(|s, _| {
        Value::Int(s.m.clients.len() as u64)
    })),
    Family::gauge("synth_clients", "Clients by connection state.", Run(|s, i| {
        Value::Int(s.states[STATES[i].0 as usize])
    }))
    .by(Label("state", &STATE_NAMES)),
    Family::gauge(
        "synth_clients_flagged",
        "Clients whose heartbeats now say audio, video, screen or speaking is on.",
        Clients(|c, bit| u64::from(c.flags.load(Relaxed) >> bit & 1)),
    )
    .by(Label("flag", &FLAGS)),
    Family::histogram(
        "synth_connect_duration_seconds",
        "Time to connect a session (QUIC, TLS and WebTransport CONNECT).",
        |m, _| &m.connect,
    ),
    Family::counter(
        "synth_connect_failures_total",
        "Failed connection attempts by reason.",
        Run(|s, i| Value::Int(s.m.connect_failures[i].load(Relaxed))),
    )
    .by(Label("reason", &REASONS)),
    Family::counter(
        "synth_reconnects_total",
        "Reconnections after a dropped session.",
        Clients(|c, _| c.reconnects.load(Relaxed)),
    ),
    Family::counter(
        "synth_session_ends_total",
        "Sessions that were up and ended, by cause: idle_timeout (ours), server_closed, reset, local_error, planned (a leave of the schedule or the end of the run).",
        Clients(|c, k| c.session_ends[k].load(Relaxed)),
    )
    .by(Label("cause", &SESSION_ENDS)),
    Family::counter(
        "synth_send_errors_total",
        "Packets that could not be sent.",
        Clients(|c, _| c.send_errors.load(Relaxed)),
    ),
    Family::counter(
        "synth_joins_total",
        "Planned sessions that came up as a join (a first session or a fresh arrival).",
        Clients(|c, _| c.joins.load(Relaxed)),
    ),
    Family::counter(
        "synth_leaves_total",
        "Sessions ended on purpose by the schedule (churn, storms, phases).",
        Clients(|c, _| c.leaves.load(Relaxed)),
    ),
    Family::counter(
        "synth_rejoins_total",
        "Planned sessions that came up as a way back after churn or a storm.",
        Clients(|c, _| c.rejoins.load(Relaxed)),
    ),
    Family::counter(
        "synth_storm_drops_total",
        "Sessions dropped by a reconnect storm.",
        Clients(|c, _| c.storm_drops.load(Relaxed)),
    ),
    Family::counter(
        "synth_screen_shares_total",
        "Screen shares started.",
        Clients(|c, _| c.screen_shares.load(Relaxed)),
    ),
    Family::counter(
        "synth_congestion_received_total",
        "CONGESTION packets about our clients' own packets (their session id is the receiver's): the server dropped packets they sent.",
        Clients(|c, _| c.congestion.load(Relaxed)),
    ),
    Family::counter(
        "synth_room_congestion_seen_total",
        "CONGESTION packets about other senders of the room (the server tells every member).",
        Clients(|c, _| c.room_congestion.load(Relaxed)),
    ),
    Family::counter(
        "synth_control_sent_total",
        "Control packets browser clients sent, by kind (DIAGNOSTICS, HEALTH, RTT probes, key-frame requests).",
        Clients(|c, k| c.control_sent[k].load(Relaxed)),
    )
    .by(CONTROL_ALL),
    Family::counter(
        "synth_control_received_total",
        "Control packets received, by kind (others' DIAGNOSTICS and HEALTH, RTT echoes, every key-frame request of the room).",
        Clients(|c, k| c.control_received[k].load(Relaxed)),
    )
    .by(CONTROL_ALL),
    Family::counter(
        "synth_elections_total",
        "Times a browser client chose its server among several (server_urls).",
        Clients(|c, _| c.elections.load(Relaxed)),
    ),
    Family::counter(
        "synth_control_dropped_total",
        "Control packets browser clients did not send because their queue was full.",
        Clients(|c, _| c.control_dropped.load(Relaxed)),
    ),
    Family::counter(
        "synth_bad_packets_total",
        "Received packets that did not parse (or streams that were reset or too long).",
        Clients(|c, _| c.bad_packets.load(Relaxed)),
    ),
    Family::counter(
        "synth_keyframe_requests_received_total",
        "Key-frame requests aimed at our clients.",
        Clients(|c, _| c.keyframe_requests.load(Relaxed)),
    ),
    Family::counter(
        "synth_keyframe_requests_answered_total",
        "Key frames sent in answer to a request.",
        Clients(|c, _| c.keyframes_answered.load(Relaxed)),
    ),
    Family::counter(
        "synth_video_freezes_total",
        "Video freezes seen: a frame interval above max(3 x mean, mean + 150 ms).",
        Clients(|c, _| c.freezes.load(Relaxed)),
    ),
    Family::counter(
        "synth_stalls_total",
        "Times a client stalled: session open, nothing acknowledged for stall_after.",
        Clients(|c, _| c.stalls.load(Relaxed)),
    ),
    Family::counter(
        "synth_packets_sent_total",
        "Packets sent by media.",
        Clients(|c, m| c.sent_packets[m].load(Relaxed)),
    )
    .by(MEDIA_ALL),
    Family::counter(
        "synth_bytes_sent_total",
        "Bytes sent by media.",
        Clients(|c, m| c.sent_bytes[m].load(Relaxed)),
    )
    .by(MEDIA_ALL),
    Family::counter(
        "synth_packets_acked_total",
        "Packets sent whose stream the server acknowledged, by media.",
        Clients(|c, m| c.acked[m].load(Relaxed)),
    )
    .by(MEDIA_ALL),
    Family::counter(
        "synth_packets_received_total",
        "Packets received by media.",
        Clients(|c, m| c.recv_packets[m].load(Relaxed)),
    )
    .by(MEDIA_ALL),
    Family::counter(
        "synth_bytes_received_total",
        "Bytes received by media.",
        Clients(|c, m| c.recv_bytes[m].load(Relaxed)),
    )
    .by(MEDIA_ALL),
    Family::histogram(
        "synth_send_lateness_seconds",
        "Actual minus scheduled send time of media packets: the generator's own health.",
        |m, _| &m.lateness,
    ),
    Family::histogram(
        "synth_receive_latency_seconds",
        "One-way latency of received media from senders in this process (same clock).",
        |m, i| &m.latency[i],
    )
    .by(MEDIA_AV),
    Family::histogram(
        "synth_cross_host_latency_seconds",
        "One-way latency of received media from senders in other processes (depends on clock sync).",
        |m, i| &m.cross_host_latency[i],
    )
    .by(MEDIA_AV),
    Family::histogram(
        "synth_jitter_seconds",
        "RFC 3550 interarrival jitter of each sender's stream at each received packet.",
        |m, i| &m.jitter[i],
    )
    .by(MEDIA_AV),
    Family::histogram(
        "synth_keyframe_answer_seconds",
        "From a key-frame request's arrival to the key frame's send.",
        |m, _| &m.keyframe_answer,
    ),
    Family::histogram(
        "synth_server_rtt_seconds",
        "Echo time of browser clients' RTT probes through the server: its event loop as a participant feels it (not QUIC's RTT).",
        |m, _| &m.server_rtt,
    ),
    Family::histogram(
        "synth_keyframe_wait_seconds",
        "From a key-frame request a browser client sent to the key frame it asked for.",
        |m, _| &m.keyframe_wait,
    ),
    Family::histogram(
        "synth_join_visibility_seconds",
        "From a client's first packet (or its peer's join) to its first packet at a peer in this process.",
        |m, _| &m.join_visibility,
    ),
    Family::histogram(
        "synth_rejoin_seconds",
        "From going back to the meeting after leaving it on purpose to the new session being up.",
        |m, _| &m.rejoin,
    ),
    Family::histogram(
        "synth_event_loop_delay_seconds",
        "How late the event loops' timers fire: the generator's own health.",
        |m, _| m.loop_delay.hist(),
    ),
    Family::counter(
        "synth_video_freeze_seconds_total",
        "Total duration of video freezes.",
        Run(|s, _| Value::Float(s.m.sum(|c| c.freeze_us.load(Relaxed)) as f64 / 1e6)),
    ),
    Family::gauge(
        "synth_packets_missing",
        "Sequence numbers not received (yet) from the senders heard so far, by media; lost once the run has ended.",
        Clients(|c, m| c.missing[m].load(Relaxed)),
    )
    .by(MEDIA_AV),
    Family::counter(
        "synth_reordered_packets_total",
        "Received media packets that arrived after a higher sequence number (not lost).",
        Clients(|c, m| c.reordered[m].load(Relaxed)),
    )
    .by(MEDIA_AV),
    Family::counter(
        "synth_duplicate_packets_total",
        "Received media packets whose sequence number had already arrived.",
        Clients(|c, m| c.duplicates[m].load(Relaxed)),
    )
    .by(MEDIA_AV),
    Family::counter(
        "synth_late_packets_total",
        "Received media packets that came more than late_after after they were due (audio: concealed).",
        Clients(|c, m| c.late[m].load(Relaxed)),
    )
    .by(MEDIA_AV),
    Family::counter(
        "synth_corrupted_frames_total",
        "Received frames from senders of this process that match no frame of the pack.",
        Clients(|c, m| c.corrupted[m].load(Relaxed)),
    )
    .by(MEDIA_AV),
    Family::counter(
        "synth_participant_events_total",
        "PARTICIPANT_JOINED and PARTICIPANT_LEFT packets seen by our clients.",
        Clients(|c, e| [&c.joined_events, &c.left_events][e].load(Relaxed)),
    )
    .by(Label("event", &["joined", "left"])),
    Family::gauge_set(
        "synth_interval_audio_mos",
        "Audio MOS (ITU-T G.107 E-model, 1..4.5) of the last timeline interval, from its audio latency p50, jitter p99 and loss: the timeline's audio_mos. Absent before an interval received audio.",
        |m| {
            m.score_gauges()
                .interval_audio_mos
                .map(|v| (Vec::new(), Value::Float(v)))
                .into_iter()
                .collect()
        },
    ),
    Family::gauge_set(
        "synth_generator_behind",
        "1 when this machine fell behind in the last timeline interval (send lateness the server does not explain, its CPU at its limit, the host busy or starved, or datagrams dropped at its sockets): loss then cannot be laid on the server alone; 0 when it kept up. Absent before the first interval.",
        |m| {
            m.score_gauges()
                .interval_behind
                .map(|b| (Vec::new(), Value::Float(f64::from(u8::from(b)))))
                .into_iter()
                .collect()
        },
    ),
    Family::values(
        "synth_participant_audio_mos",
        "Participants by audio MOS (1..4.5; the report's scores.participants), observed once the run is scored at its end: empty before.",
        |m| m.score_gauges().audio_mos.clone(),
        AUDIO_MOS_BOUNDS,
    ),
    Family::values(
        "synth_participant_video_score",
        "Participants by video score (1..5; the report's scores.participants), observed once the run is scored at its end: empty before.",
        |m| m.score_gauges().video_score.clone(),
        VIDEO_SCORE_BOUNDS,
    ),
    Family::gauge_set(
        "synth_participants_by_verdict",
        "Participants by verdict (their worst band under the report's limits; none: nothing measured), once the run is scored at its end: absent before.",
        |m| {
            let Some(n) = m.score_gauges().verdicts else {
                return Vec::new();
            };
            VERDICTS
                .iter()
                .zip(n)
                .map(|(v, n)| (vec![("verdict", (*v).to_owned())], Value::Int(n)))
                .collect()
        },
    ),
    Family::gauge_set(
        "synth_threshold_passing",
        "1 while the threshold holds, 0 while it fails, by figure name and expression: the live checks while the run goes (a threshold appears once its figure has a value), the report's verdicts (built-in ones too) at the end.",
        |m| {
            m.verdicts()
                .into_iter()
                .map(|((name, expr), pass)| {
                    (vec![("name", name), ("expr", expr)], Value::Int(u64::from(pass)))
                })
                .collect()
        },
    ),
    Family::counter(
        "synth_process_cpu_seconds_total",
        "CPU time (user + system) of this process.",
        Run(|s, _| Value::Float(s.process().cpu_seconds)),
    ),
    Family::gauge(
        "synth_process_resident_memory_bytes",
        "Resident memory of this process.",
        Run(|s, _| Value::Int(s.process().rss_bytes)),
    ),
];

impl Metrics {
    /// The Prometheus text exposition (format 0.0.4), from the table of
    /// families above.
    pub fn render(&self) -> String {
        render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{FailReason, Hist, Media, Process, LATENESS_BUCKETS};
    use std::time::Instant;
    use synth_report::model::Verdict;

    #[test]
    fn hist_buckets_and_percentiles() {
        let h = Hist::new(LATENESS_BUCKETS);
        for us in [100, 400, 900, 3_000, 2_000_000] {
            h.record(us, 3);
        }
        let mut o = String::new();
        histogram(&mut o, "x", "", &h);
        assert!(o.contains("x_bucket{le=\"0.00025\"} 1\n"), "{o}");
        assert!(o.contains("x_bucket{le=\"0.001\"} 3\n"));
        assert!(o.contains("x_bucket{le=\"1\"} 4\n"));
        assert!(o.contains("x_bucket{le=\"+Inf\"} 5\n"));
        assert!(o.contains("x_count 5\n"));
        let m = h.merged();
        assert_eq!(m.len(), 5);
        assert_eq!(m.value_at_quantile(0.5), 900);
    }

    /// A threshold's verdict is served once it has one, and the last one
    /// set wins (the end's over the live check's).
    #[test]
    fn thresholds_are_served_as_they_are_checked() {
        let m = Metrics::new(1);
        let family = |m: &Metrics| {
            let text = m.render();
            let at = text.find("# HELP synth_threshold_passing ").unwrap();
            text[at..]
                .lines()
                .skip(2)
                .take_while(|l| !l.starts_with('#'))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert!(family(&m).is_empty(), "no verdict yet, no sample");
        let v = |pass| Verdict {
            name: "audio_lost".into(),
            expr: "== 0".into(),
            actual: Some(0.0),
            pass,
        };
        m.set_verdicts(&[v(true)]);
        assert_eq!(
            family(&m),
            [r#"synth_threshold_passing{name="audio_lost",expr="== 0"} 1"#]
        );
        m.set_verdicts(&[v(false)]);
        assert_eq!(
            family(&m),
            [r#"synth_threshold_passing{name="audio_lost",expr="== 0"} 0"#]
        );
        assert_eq!(label_value("a\\b\"c\nd"), r#"a\\b\"c\nd"#);
    }

    #[test]
    fn render_sums_clients() {
        let m = Metrics::new(3);
        m.clients[0].sent(Media::Audio, 100);
        m.clients[2].sent(Media::Audio, 50);
        m.clients[1].set_state(State::Connected);
        m.connect_failed(FailReason::Rejected);
        let text = m.render();
        assert!(text.contains("synth_packets_sent_total{media=\"audio\"} 2\n"));
        assert!(text.contains("synth_bytes_sent_total{media=\"audio\"} 150\n"));
        assert!(text.contains("synth_clients{state=\"connected\"} 1\n"));
        assert!(text.contains("synth_connect_failures_total{reason=\"rejected\"} 1\n"));
        assert!(text.contains("# TYPE synth_send_lateness_seconds histogram"));
        let p = Process::now();
        assert!(p.cpu_seconds > 0.0 && p.rss_bytes > 0 && p.peak_rss_bytes >= p.rss_bytes / 2);
    }

    /// Samples that read the process (CPU time, resident memory): their
    /// values vary from one render to the next, so the golden comparison
    /// masks each one's value (after checking it is a number) and compares
    /// everything else byte for byte.
    const PROCESS_SAMPLES: [&str; 2] = [
        "synth_process_cpu_seconds_total",
        "synth_process_resident_memory_bytes",
    ];

    /// The golden exposition, rendered from [`populated`].
    const GOLDEN: &str = include_str!("testdata/exposition.txt");

    /// A `Metrics` with a different non-zero value in every counter, gauge
    /// and histogram `/metrics` serves, and clients in every state (one
    /// stalled: connected, waiting since the run's first µs, with the run
    /// started 2 s ago and a 1 s stall limit).
    fn populated() -> Metrics {
        let mut m = Metrics::new(10).with_stall_after(std::time::Duration::from_secs(1));
        m.started = Instant::now() - std::time::Duration::from_secs(2);
        // 1, 3, 6, 10, …: every value differs from the others.
        let mut n = 0;
        let mut next = || {
            n += 1;
            n * (n + 1) / 2
        };
        for (i, c) in m.clients.iter().enumerate() {
            for a in [
                &c.sent_packets[..],
                &c.sent_bytes,
                &c.recv_packets,
                &c.recv_bytes,
                &c.acked,
                &c.missing,
                &c.reordered,
                &c.duplicates,
                &c.late,
                &c.corrupted,
                &c.control_sent,
                &c.control_received,
                &c.session_ends,
            ] {
                for x in a {
                    x.store(next(), Relaxed);
                }
            }
            for x in [
                &c.congestion,
                &c.keyframe_requests,
                &c.keyframes_answered,
                &c.reconnects,
                &c.send_errors,
                &c.bad_packets,
                &c.joined_events,
                &c.left_events,
                &c.freezes,
                &c.stalls,
                &c.joins,
                &c.leaves,
                &c.rejoins,
                &c.storm_drops,
                &c.screen_shares,
                &c.room_congestion,
                &c.control_dropped,
                &c.elections,
            ] {
                x.store(next(), Relaxed);
            }
            // Not whole seconds once summed.
            c.freeze_us.store(1_234_567 * (i as u64 + 1), Relaxed);
            // Each client a different mix of audio, video, screen, speaking.
            c.flags.store(i as u8 % 16, Relaxed);
        }
        for (i, s) in [
            State::Pending,
            State::Connecting,
            State::Connecting,
            State::Connected,
            State::Connected,
            State::Connected,
            State::Reconnecting,
            State::Failed,
            State::Done,
            State::Away,
        ]
        .into_iter()
        .enumerate()
        {
            m.clients[i].set_state(s);
        }
        // Connected, but nothing acknowledged since the run's first µs: stalled.
        m.clients[5].waiting_since_us.store(1, Relaxed);
        for (i, r) in [
            FailReason::Timeout,
            FailReason::Rejected,
            FailReason::Tls,
            FailReason::Transport,
        ]
        .into_iter()
        .enumerate()
        {
            for _ in 0..=i * 2 {
                m.connect_failed(r);
            }
        }
        // Values below the first bound, between bounds, on a bound and past
        // the last one (counted only in +Inf), scaled apart per histogram.
        let values = |k: u64| [37 * k, 1_000 * k, 4_321 * k, 77_777 * k, 40_000_000 + k];
        let hists = [
            &m.connect,
            &m.lateness,
            &m.latency[0],
            &m.latency[1],
            &m.cross_host_latency[0],
            &m.cross_host_latency[1],
            &m.jitter[0],
            &m.jitter[1],
            &m.keyframe_answer,
            &m.join_visibility,
            &m.rejoin,
            &m.server_rtt,
            &m.keyframe_wait,
        ];
        for (k, h) in hists.into_iter().enumerate() {
            for (i, us) in values(k as u64 + 1).into_iter().take(k % 5 + 1).enumerate() {
                h.record(us, i);
            }
            h.record(values(k as u64 + 1)[4], 0);
        }
        for ms in [0, 1, 3, 12, 2_000] {
            m.loop_delay.record(std::time::Duration::from_millis(ms), 1);
        }
        // One threshold holding, one failing whose name (a scope, as a
        // later config may write) needs every escape of a label value.
        let verdict = |name: &str, expr: &str, pass| Verdict {
            name: name.into(),
            expr: expr.into(),
            actual: None,
            pass,
        };
        m.set_verdicts(&[
            verdict("audio_latency_p99_ms", "< 150", true),
            verdict("audio_mos_p5{group=\"3g\\x\"}", "> 3\n", false),
        ]);
        // Three participants scored: one on a bucket's bound, one without video.
        m.set_interval_audio_mos(Some(4.123));
        *m.score_gauges() = crate::metrics::ScoreGauges {
            interval_audio_mos: Some(4.123),
            interval_behind: Some(true),
            audio_mos: vec![4.2, 2.75, 4.41],
            video_score: vec![4.9, 1.0],
            verdicts: Some([1, 1, 0, 1]),
        };
        m
    }

    /// The participants' scores and verdicts are served once the report
    /// has them, the interval MOS as soon as an interval had audio.
    #[test]
    fn scores_are_served_once_known() {
        use synth_report::model::score::summarize;
        use synth_report::model::ParticipantScore;
        use synth_report::score::{AudioIn, BandIn, BandLimits};
        let m = Metrics::new(3);
        let before = m.render();
        assert!(!before.contains("\nsynth_interval_audio_mos "), "{before}");
        assert!(!before.contains("\nsynth_participants_by_verdict{"));
        assert!(before.contains("\nsynth_participant_audio_mos_count 0\n"));
        let p = |id: &str, concealment: Option<f64>| {
            ParticipantScore::new(
                id,
                "0",
                "m",
                concealment.map(|c| AudioIn {
                    one_way_ms: 5.0,
                    jitter_ms: 1.0,
                    concealed_share: c,
                    bitrate_kbps: Some(32.0),
                }),
                None,
                BandIn {
                    audio_concealment: concealment,
                    ..BandIn::default()
                },
                &BandLimits::default(),
            )
        };
        let scores = summarize(
            &BandLimits::default(),
            &[],
            &[],
            vec![p("a", Some(0.0)), p("b", Some(0.3)), p("c", None)],
        );
        m.set_scores(&scores);
        m.set_interval_audio_mos(Some(3.9));
        let text = m.render();
        for line in [
            "synth_interval_audio_mos 3.9",
            "synth_participant_audio_mos_count 2",
            "synth_participant_audio_mos_bucket{le=\"1.5\"} 1",
            "synth_participant_audio_mos_bucket{le=\"+Inf\"} 2",
            "synth_participant_video_score_count 0",
            "synth_participants_by_verdict{verdict=\"green\"} 1",
            "synth_participants_by_verdict{verdict=\"red\"} 1",
            "synth_participants_by_verdict{verdict=\"none\"} 1",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line}: {text}");
        }
    }

    /// `text` with each of [`PROCESS_SAMPLES`]' values replaced by `<varies>`.
    fn mask_process(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let masked = PROCESS_SAMPLES.iter().find_map(|name| {
                let value = line.strip_prefix(name)?.strip_prefix(' ')?;
                assert!(value.parse::<f64>().is_ok(), "{line}");
                Some(format!("{name} <varies>"))
            });
            out.push_str(masked.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }

    /// The text served is byte for byte the golden file's, but for the
    /// process samples' values. `SYNTH_BLESS=1` rewrites the file from the
    /// current code instead (then review its diff).
    #[test]
    fn render_matches_golden() {
        let text = mask_process(&populated().render());
        assert_eq!(text.matches("<varies>").count(), PROCESS_SAMPLES.len());
        if std::env::var_os("SYNTH_BLESS").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/metrics/testdata/exposition.txt"
            );
            std::fs::write(path, &text).unwrap();
            return;
        }
        if text != GOLDEN {
            let first = text
                .lines()
                .zip(GOLDEN.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(text.lines().count().min(GOLDEN.lines().count()));
            panic!(
                "/metrics differs from the golden exposition from line {}:\n  got:  {:?}\n  want: {:?}",
                first + 1,
                text.lines().nth(first),
                GOLDEN.lines().nth(first)
            );
        }
    }
}
