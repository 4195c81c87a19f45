//! What a run does while it goes, every `timeline_interval`: a timeline
//! sample (streamed as JSON lines when asked), the thresholds checked on the
//! figures so far (and an abort when one marked `abort_on_fail` fails after
//! its `delay_abort_eval`), and the capacity search's steps judged on their
//! own windows.
//!
//! [`Live`] is driven by the run's loop: [`Live::next_wake`] says when it
//! wants to be called, [`Live::tick`] takes a snapshot and says whether the
//! run must stop, [`Live::finish`] takes the last sample (after the honest
//! end) and hands over the timeline, the events and the search.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use synth_report::figure::FIGURES;
use synth_report::model::{PhaseReport, SearchReport, Step};
use synth_report::num::round3;
use synth_report::threshold::Threshold;

use crate::collect::Recorded;
use crate::config::Search;
use crate::metrics::Metrics;
use crate::timeline::{self, Event, Sample, Snapshot, Timeline, Window};

/// Why [`Live::tick`] ends the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// A threshold with `abort_on_fail` failed: its verdict line.
    Abort(String),
    /// The capacity search is over: a step broke, or the last one passed.
    Search,
}

/// Samples the report keeps: past this, pairs of samples are merged into one
/// of twice the interval (see [`Sample::absorb`]), so a run of days keeps a
/// timeline of bounded size. The JSON lines stream keeps every interval.
pub const MAX_SAMPLES: usize = 10_000;

/// Events the report keeps; later ones only go to the JSON lines stream.
pub const MAX_EVENTS: usize = 10_000;

struct PhaseState {
    windows: Vec<crate::people::PhaseWindow>,
    /// The phase under way.
    k: usize,
    from: Snapshot,
    done: Vec<PhaseReport>,
}

struct SearchState {
    cfg: Search,
    /// The step under way.
    k: usize,
    from: Snapshot,
    report: SearchReport,
    /// When the step under way began (its clients were let in), since the
    /// run's start: its hold counts from there.
    began: Duration,
    /// How long past its hold a step waits for its clients to connect or
    /// fail before it is judged (the run's `connect_timeout`).
    wait: Duration,
    /// While a step waits for its clients: when to look again.
    recheck: Option<Duration>,
}

impl SearchState {
    fn hold_end(&self) -> Duration {
        self.began + self.cfg.hold
    }

    /// How much later than planned the step under way began: its clients
    /// start that much later (a step before it waited for its clients).
    fn late(&self) -> Duration {
        self.began
            .saturating_sub(self.cfg.hold.saturating_mul(self.k as u32))
    }
}

/// How often a step past its hold looks whether its clients are all in.
const RECHECK: Duration = Duration::from_millis(50);

/// The run's live side: see the module's doc.
pub struct Live {
    zero: Snapshot,
    prev: Snapshot,
    cores: f64,
    interval: Duration,
    next_sample: Duration,
    samples: Vec<Sample>,
    /// Intervals merged into one sample of the report (doubles each time
    /// the report reaches [`MAX_SAMPLES`]).
    coarse: u32,
    /// The sample being filled when `coarse` > 1, and how many intervals it holds.
    pending: Option<(Sample, u32)>,
    events: Vec<Event>,
    events_dropped: u64,
    jsonl: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    thresholds: Vec<Threshold>,
    failing: BTreeSet<String>,
    search: Option<SearchState>,
    phases: Option<PhaseState>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("samples", &self.samples.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// Checks before a run that the timeline can be streamed to `path`.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "timeline {} is a directory: give a file name",
            path.display()
        );
    }
    Ok(())
}

impl Live {
    /// Starts the live side of a run of `m` (its clock started): opens the
    /// timeline's JSON lines file when one is asked for.
    pub fn new(
        m: &Metrics,
        interval: Duration,
        jsonl: Option<&Path>,
        thresholds: &[Threshold],
        search: Option<&Search>,
        cores: f64,
    ) -> anyhow::Result<Live> {
        let zero = timeline::zero(m);
        let jsonl = match jsonl {
            Some(p) => {
                check_path(p)?;
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("timeline {}: creating its folder", p.display())
                    })?;
                }
                let f = std::fs::File::create(p)
                    .with_context(|| format!("timeline {}: cannot write there", p.display()))?;
                Some((p.to_path_buf(), std::io::BufWriter::new(f)))
            }
            None => None,
        };
        let mut live = Live {
            prev: zero.clone(),
            zero,
            cores,
            interval,
            next_sample: interval,
            samples: Vec::new(),
            coarse: 1,
            pending: None,
            events: Vec::new(),
            events_dropped: 0,
            jsonl,
            thresholds: thresholds.to_vec(),
            failing: BTreeSet::new(),
            search: search.map(|cfg| SearchState {
                report: SearchReport {
                    start: cfg.start,
                    step: cfg.step,
                    max: cfg.max,
                    hold_s: cfg.hold.as_secs_f64(),
                    meeting_size: cfg.meeting_size,
                    knee: None,
                    first_broken: None,
                    ended: "stopped".into(),
                    steps: Vec::new(),
                },
                cfg: cfg.clone(),
                k: 0,
                from: timeline::zero(m),
                began: Duration::ZERO,
                wait: crate::config::defaults::CONNECT_TIMEOUT,
                recheck: None,
            }),
            phases: None,
        };
        let start = Event::at(
            &live.zero,
            "start",
            "run",
            format!("timeline every {:?}", interval),
        );
        live.event(start);
        if let Some(s) = &live.search {
            let e = Event::at(&live.zero, "step", step_label(&s.cfg, 0), "");
            live.event(e);
        }
        Ok(live)
    }

    /// Judges each of `windows` (the behaviour schedule's phases) on its own
    /// window of the run, and names the phase under way in the samples.
    pub fn with_phases(mut self, windows: &[crate::people::PhaseWindow]) -> Live {
        if let Some(first) = windows.first() {
            let e = Event::at(&self.zero, "phase", first.name.clone(), first.kind);
            self.event(e);
            self.phases = Some(PhaseState {
                windows: windows.to_vec(),
                k: 0,
                from: self.zero.clone(),
                done: Vec::new(),
            });
        }
        self
    }

    /// How long past its hold a search step waits for its clients to
    /// connect or fail (the run's `connect_timeout`).
    pub fn with_step_wait(mut self, wait: Duration) -> Live {
        if let Some(s) = self.search.as_mut() {
            s.wait = wait;
        }
        self
    }

    /// The capacity-search step under way (0 without a search), and how
    /// much later than planned it began: clients of later steps wait for
    /// it, and start that much later than planned.
    pub fn step(&self) -> (usize, Duration) {
        self.search
            .as_ref()
            .map_or((0, Duration::ZERO), |s| (s.k, s.late()))
    }

    /// Time after the run's start when [`Live::tick`] wants to run next.
    pub fn next_wake(&self) -> Duration {
        let step_end = self
            .search
            .as_ref()
            .map_or(Duration::MAX, |s| s.recheck.unwrap_or_else(|| s.hold_end()));
        let phase_end = self
            .phases
            .as_ref()
            .and_then(|p| p.windows.get(p.k))
            .map_or(Duration::MAX, |w| w.end);
        self.next_sample.min(step_end).min(phase_end)
    }

    /// Does what is due at `m`'s time: a sample, the live thresholds, a
    /// search step's verdict. `Some` when the run must stop.
    pub fn tick(&mut self, m: &Metrics) -> Option<Stop> {
        self.tick_at(m, m.started.elapsed())
    }

    /// [`Live::tick`] at `now` after the run's start.
    fn tick_at(&mut self, m: &Metrics, now: Duration) -> Option<Stop> {
        let snap = timeline::take(m);
        let mut stop = None;
        if now >= self.next_sample {
            // Catch up without a burst of empty samples after a long stall.
            while self.next_sample <= now {
                self.next_sample += self.interval;
            }
            let failing = self.check_thresholds(&snap, now, &mut stop);
            let sample = Window::new(&self.prev, &snap, self.cores).sample(self.phase(), failing);
            self.push_sample(sample);
            self.prev = snap.clone();
        }
        while let Some(w) = self.phases.as_ref().and_then(|p| p.windows.get(p.k)) {
            if now < w.end {
                break;
            }
            self.end_phase(&snap);
        }
        if let Some(s) = self.search.as_mut() {
            if now >= s.hold_end() {
                // Judged once every client started so far has connected or
                // failed: one still connecting would count in the next
                // step's window, whose verdict it is not. It waits `wait`
                // at most; one still connecting then breaks the step.
                let started = s.cfg.clients_at(s.k) as u64;
                let unresolved = started.saturating_sub(snap.resolved());
                if unresolved > 0 && now < s.hold_end() + s.wait {
                    s.recheck = Some(now + RECHECK);
                } else if self.judge_step(snap, unresolved, now) {
                    stop = stop.or(Some(Stop::Search));
                }
            }
        }
        stop
    }

    /// The phase under way is over at `snap`: its figures, its events, the next.
    fn end_phase(&mut self, snap: &Snapshot) {
        let cores = self.cores;
        let Some(p) = self.phases.as_mut() else {
            return;
        };
        let Some(w) = p.windows.get(p.k) else { return };
        let win = Window::new(&p.from, snap, cores);
        let figures = FIGURES
            .iter()
            .filter(|f| f.phase)
            .map(|f| (f.name.to_string(), win.figure(f.name).map(round3)))
            .collect();
        p.done.push(PhaseReport {
            name: w.name.clone(),
            kind: w.kind.to_string(),
            t_start_s: round3(p.from.t_s),
            t_end_s: round3(snap.t_s),
            connected_at_end: snap.connected(),
            figures,
        });
        let mut events = vec![Event::at(snap, "phase_end", w.name.clone(), "")];
        p.k += 1;
        p.from = snap.clone();
        if let Some(next) = p.windows.get(p.k) {
            events.push(Event::at(snap, "phase", next.name.clone(), next.kind));
        }
        for e in events {
            self.event(e);
        }
    }

    /// The last sample (what happened after the last tick: the honest end),
    /// and everything recorded.
    pub fn finish(mut self, m: &Metrics) -> Recorded {
        let snap = timeline::take(m);
        // The phase the run stopped in ends with it.
        if self.phases.as_ref().is_some_and(|p| p.k < p.windows.len()) {
            self.end_phase(&snap);
        }
        let sample =
            Window::new(&self.prev, &snap, self.cores).sample(Some("end".into()), Vec::new());
        self.push_sample(sample);
        if let Some((path, w)) = &mut self.jsonl {
            if let Err(e) = w.flush() {
                tracing::warn!("timeline {}: {e}", path.display());
            }
        }
        if let Some((s, _)) = self.pending.take() {
            self.samples.push(s);
        }
        if self.events_dropped > 0 {
            self.events.push(Event::at(
                &snap,
                "truncated",
                "events",
                format!(
                    "{} later events are only in the timeline stream",
                    self.events_dropped
                ),
            ));
        }
        let timeline = Timeline {
            interval_s: self.interval.as_secs_f64() * f64::from(self.coarse),
            start_unix_ms: self.zero.unix_ms,
            samples: self.samples,
        };
        Recorded {
            timeline,
            events: self.events,
            search: self.search.map(|s| s.report),
            phases: self.phases.map_or_else(Vec::new, |p| p.done),
        }
    }

    fn phase(&self) -> Option<String> {
        if let Some(p) = &self.phases {
            return p.windows.get(p.k).map(|w| w.name.clone());
        }
        self.search.as_ref().map(|s| step_label(&s.cfg, s.k))
    }

    /// Checks every threshold whose figure a window gives on the run so far;
    /// records what started or stopped failing; sets `stop` for an abort.
    fn check_thresholds(
        &mut self,
        snap: &Snapshot,
        now: Duration,
        stop: &mut Option<Stop>,
    ) -> Vec<String> {
        let so_far = Window::new(&self.zero, snap, self.cores);
        let mut failing = Vec::new();
        let mut events = Vec::new();
        for t in &self.thresholds {
            if !crate::timeline::window_figure(&t.name) {
                continue;
            }
            // No data yet (no latency before the first packet) is not a failure while the run goes.
            let Some(v) = so_far.figure(&t.name) else {
                continue;
            };
            let verdict = t.check(Some(v));
            let line = format!("{} {} (was {})", t.name, t.expr, short(v));
            if verdict.pass {
                if self.failing.remove(&t.name) {
                    events.push(Event::at(snap, "threshold_recovered", &t.name, line));
                }
                continue;
            }
            failing.push(t.name.clone());
            if self.failing.insert(t.name.clone()) {
                events.push(Event::at(snap, "threshold_failed", &t.name, line.clone()));
            }
            if t.abort_on_fail && now >= t.delay_abort_eval && stop.is_none() {
                events.push(Event::at(snap, "abort", &t.name, line.clone()));
                *stop = Some(Stop::Abort(line));
            }
        }
        for e in events {
            self.event(e);
        }
        failing
    }

    /// Judges the step under way on its own window; true when the search is over.
    /// `unresolved`: clients of the step still connecting after its wait.
    fn judge_step(&mut self, snap: Snapshot, unresolved: u64, now: Duration) -> bool {
        let cores = self.cores;
        let Some(s) = self.search.as_mut() else {
            return true;
        };
        let w = Window::new(&s.from, &snap, cores);
        let mut broken = Vec::new();
        let mut figures = BTreeMap::new();
        for t in &s.cfg.slo {
            let v = w.figure(&t.name);
            figures.insert(t.name.clone(), v.map(round3));
            if !t.check(v).pass {
                broken.push(format!(
                    "{} {} (was {})",
                    t.name,
                    t.expr,
                    v.map_or("no data".into(), short)
                ));
            }
        }
        for f in FIGURES.iter().filter(|f| f.step) {
            figures
                .entry(f.name.to_string())
                .or_insert_with(|| w.figure(f.name).map(round3));
        }
        figures.insert("cpu_share".into(), w.cpu_share().map(round3));
        // Built in: every client of the step connected.
        if let Some(rate) = w.figure("connect_success_rate").filter(|&r| r < 1.0) {
            broken.push(format!(
                "connect_success_rate >= 1 (built in) (was {})",
                short(rate)
            ));
        }
        if unresolved > 0 {
            broken.push(format!(
                "{unresolved} client(s) of the step still connecting {} after its hold (connect_timeout)",
                humantime::format_duration(s.wait)
            ));
        }
        let saturated = w.saturated(&crate::health::Limits::default());
        if saturated && !s.cfg.ignore_saturation {
            broken.push(
                "generator saturated: this machine, not the server, could not keep up".into(),
            );
        }
        let clients = s.cfg.clients_at(s.k);
        let passed = broken.is_empty();
        let t_start_s = round3(s.from.t_s);
        let step = Step {
            clients,
            t_start_s,
            t_end_s: round3(snap.t_s),
            passed,
            broken: broken.clone(),
            saturated,
            figures,
        };
        s.report.steps.push(step);
        let detail = if passed {
            "passed".to_string()
        } else {
            format!("broke: {}", broken.join("; "))
        };
        let mut events = vec![Event::at(
            &snap,
            "step_end",
            step_label(&s.cfg, s.k),
            detail,
        )];
        let over = if passed {
            s.report.knee = Some(clients);
            if clients >= s.cfg.max {
                s.report.ended = "max".into();
                true
            } else {
                s.k += 1;
                events.push(Event::at(&snap, "step", step_label(&s.cfg, s.k), ""));
                false
            }
        } else {
            s.report.first_broken = broken.first().cloned();
            s.report.ended = "broken".into();
            true
        };
        s.from = snap;
        s.began = now;
        s.recheck = None;
        for e in events {
            self.event(e);
        }
        over
    }

    fn push_sample(&mut self, s: Sample) {
        if let Some((path, w)) = &mut self.jsonl {
            let ok = serde_json::to_writer(&mut *w, &s).is_ok()
                && w.write_all(b"\n").is_ok()
                && w.flush().is_ok();
            if !ok {
                tracing::warn!(
                    "timeline {}: write failed; no more lines go there",
                    path.display()
                );
                self.jsonl = None;
            }
        }
        if self.coarse == 1 {
            self.samples.push(s);
        } else {
            match &mut self.pending {
                Some((p, n)) => {
                    p.absorb(&s);
                    *n += 1;
                }
                None => self.pending = Some((s, 1)),
            }
            if self
                .pending
                .as_ref()
                .is_some_and(|(_, n)| *n >= self.coarse)
            {
                if let Some((p, _)) = self.pending.take() {
                    self.samples.push(p);
                }
            }
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples = coarsen(std::mem::take(&mut self.samples));
            self.coarse = self.coarse.saturating_mul(2);
        }
    }

    fn event(&mut self, e: Event) {
        if let Some((_, w)) = &mut self.jsonl {
            let _ = serde_json::to_writer(&mut *w, &e);
            let _ = w.write_all(b"\n");
            let _ = w.flush();
        }
        if self.events.len() < MAX_EVENTS {
            self.events.push(e);
        } else {
            self.events_dropped += 1;
        }
    }
}

/// Merges each pair of consecutive samples into one.
fn coarsen(samples: Vec<Sample>) -> Vec<Sample> {
    let mut out = Vec::with_capacity(samples.len() / 2 + 1);
    let mut it = samples.into_iter();
    while let Some(mut a) = it.next() {
        if let Some(b) = it.next() {
            a.absorb(&b);
        }
        out.push(a);
    }
    out
}

fn step_label(cfg: &Search, k: usize) -> String {
    format!("step {}: {} clients", k + 1, cfg.clients_at(k))
}

fn short(v: f64) -> String {
    format!("{}", round3(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::State;
    use crate::timeline::{Av, ByState, P2};

    fn sample(k: u64) -> Sample {
        Sample {
            t_s: k as f64,
            unix_ms: 1_000 * k,
            phase: None,
            clients: ByState {
                connected: k,
                ..ByState::default()
            },
            sent_packets: Av {
                audio: 50,
                video: 30,
            },
            recv_packets: Av {
                audio: 100,
                video: 60,
            },
            sent_mbps: 1.0,
            recv_mbps: 2.0,
            lost: Av {
                audio: 1,
                video: -1,
            },
            latency_ms: Av {
                audio: P2 {
                    p50: Some(1.0),
                    p99: Some(k as f64),
                },
                video: P2::default(),
            },
            jitter_ms: Av::default(),
            freezes: 1,
            lateness_p99_ms: Some(2.0),
            cpu_share: Some(0.5),
            rss_mb: k as f64,
            failing: if k == 7 {
                vec!["audio_lost".into()]
            } else {
                Vec::new()
            },
        }
    }

    /// A run of days keeps a timeline of bounded size: past MAX_SAMPLES the
    /// samples are merged in pairs, the interval doubles, and the counts
    /// still add up to what every interval had.
    #[test]
    fn a_long_run_keeps_a_bounded_timeline_whose_counts_still_add_up() {
        let m = Metrics::new(1);
        let mut live = Live::new(&m, Duration::from_secs(1), None, &[], None, 2.0).unwrap();
        let n = 2 * MAX_SAMPLES as u64 + 5;
        for k in 1..=n {
            live.push_sample(sample(k));
        }
        let Recorded {
            timeline: t,
            events,
            ..
        } = live.finish(&m);
        assert!(t.samples.len() <= MAX_SAMPLES, "{}", t.samples.len());
        assert_eq!(t.interval_s, 4.0);
        let sent: u64 = t.samples.iter().map(|s| s.sent_packets.audio).sum();
        let lost: i64 = t.samples.iter().map(|s| s.lost.audio).sum();
        // n samples pushed, plus the end's (nothing happened in it: zero counts).
        assert_eq!((sent, lost), (50 * n, n as i64));
        let last = &t.samples[t.samples.len() - 2];
        assert!(last.latency_ms.audio.p99.unwrap() >= last.t_s - 4.0);
        assert!(t.samples.iter().any(|s| s.failing == ["audio_lost"]));
        // (The end's sample is a real snapshot, taken at this test's clock.)
        let ticks = &t.samples[..t.samples.len() - 1];
        assert!(ticks.windows(2).all(|w| w[0].t_s < w[1].t_s));
        assert_eq!(events.len(), 1, "the start only");
    }

    /// A search step past its hold waits for its clients to connect or
    /// fail, so that a late one counts in its own step's verdict; one still
    /// connecting after the wait breaks the step. The next step's hold
    /// counts from its own start, and its clients start that much later.
    #[test]
    fn a_step_is_judged_once_its_clients_connected_or_failed() {
        let m = Metrics::new(4);
        let cfg = Search {
            start: 2,
            step: 1,
            max: 4,
            hold: Duration::from_secs(2),
            meeting_size: 2,
            slo: Vec::new(),
            ignore_saturation: true,
        };
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let mut live = Live::new(&m, s(1), None, &[], Some(&cfg), 2.0)
            .unwrap()
            .with_step_wait(s(5));
        m.clients[0].set_state(State::Connected);
        // At its hold's end one client of two is still connecting: no verdict.
        assert_eq!(live.tick_at(&m, s(2)), None);
        assert_eq!(live.step(), (0, Duration::ZERO));
        assert_eq!(live.next_wake(), s(2) + RECHECK);
        // It connects 1.5 s late: step 1 passes then and step 2 begins.
        m.clients[1].set_state(State::Connected);
        assert_eq!(live.tick_at(&m, ms(3500)), None);
        assert_eq!(live.step(), (1, ms(1500)));
        let hold_end = live.search.as_ref().unwrap().hold_end();
        assert_eq!(hold_end, ms(5500), "its hold counts from its start");
        // The third client is refused: the step breaks on it, not a later one.
        m.clients[2].set_state(State::Failed);
        assert_eq!(live.tick_at(&m, ms(5500)), Some(Stop::Search));
        let search = live.finish(&m).search;
        let search = search.unwrap();
        let verdicts: Vec<_> = search
            .steps
            .iter()
            .map(|st| (st.clients, st.passed))
            .collect();
        assert_eq!(verdicts, [(2, true), (3, false)]);
        assert_eq!(search.knee, Some(2));
        assert!(search.steps[1].broken[0].starts_with("connect_success_rate >= 1"));

        // A client still connecting once the wait is over breaks its step.
        let m = Metrics::new(2);
        let mut live = Live::new(&m, s(1), None, &[], Some(&cfg), 2.0)
            .unwrap()
            .with_step_wait(s(5));
        m.clients[0].set_state(State::Connected);
        assert_eq!(live.tick_at(&m, ms(6900)), None);
        assert_eq!(live.tick_at(&m, s(7)), Some(Stop::Search));
        let search = live.finish(&m).search;
        let broken = &search.unwrap().steps[0].broken;
        assert_eq!(
            broken[0],
            "1 client(s) of the step still connecting 5s after its hold (connect_timeout)"
        );
    }

    #[test]
    fn events_past_the_cap_are_counted_not_kept() {
        let m = Metrics::new(1);
        let mut live = Live::new(&m, Duration::from_secs(1), None, &[], None, 2.0).unwrap();
        let snap = timeline::zero(&m);
        for _ in 0..MAX_EVENTS + 9 {
            live.event(Event::at(&snap, "threshold_failed", "audio_lost", ""));
        }
        let events = live.finish(&m).events;
        assert_eq!(events.len(), MAX_EVENTS + 1);
        let last = events.last().unwrap();
        assert_eq!(last.kind, "truncated");
        assert!(
            last.detail.starts_with("10 later events"),
            "{}",
            last.detail
        );
    }
}
