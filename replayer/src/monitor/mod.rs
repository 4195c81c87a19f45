//! What a run does while it goes, every `timeline_interval`: a timeline
//! sample (streamed as JSON lines when asked), the thresholds checked on the
//! figures so far (and an abort when one marked `abort_on_fail` fails after
//! its `delay_abort_eval`), the capacity search's steps judged on their own
//! windows, and the behaviour schedule's phases on theirs.
//!
//! [`Live`] is driven by the run's loop: [`Live::next_wake`] says when it
//! wants to be called, [`Live::tick`] takes a snapshot and says whether the
//! run must stop, [`Live::finish`] takes the last sample (after the honest
//! end) and hands over the timeline, the events, the search and the phases.
//!
//! - this file: [`Live`], which takes the snapshots and hands each part its own;
//! - `stream`: the samples and events kept for the report, and the JSON lines;
//! - `thresholds`: the live threshold checks and the abort;
//! - `search`: the capacity search's steps and their verdicts;
//! - `phases`: the phases and their figures;
//! - [`crate::server_cost`]: the server beside the run, read into each
//!   snapshot when the config watches it ([`Live::with_server`]).

mod phases;
mod search;
mod stream;
mod thresholds;

use std::path::Path;
use std::time::Duration;

use synth_report::threshold::{Scope, Threshold};

pub use stream::{check_path, MAX_EVENTS, MAX_SAMPLES};

use crate::collect::Recorded;
use crate::config::Search;
use crate::metrics::Metrics;
use crate::people::PhaseWindow;
use crate::scopes::{ScopeDef, Scopes};
use crate::server_cost::ServerProbe;
use crate::timeline::{self, Event, Snapshot, Window};
use phases::Phases;
use search::SearchState;
use stream::Recorder;
use synth_report::model::ServerCost;
use thresholds::Thresholds;

/// Why [`Live::tick`] ends the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// A threshold with `abort_on_fail` failed: its verdict line.
    Abort(String),
    /// The capacity search is over: a step broke, or the last one passed.
    Search,
}

/// What the live side of a run does, and on what.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// Time between samples.
    pub interval: Duration,
    /// Where the samples and events are streamed as JSON lines.
    pub jsonl: Option<&'a Path>,
    /// The thresholds, checked live when a window gives their figure.
    pub thresholds: &'a [Threshold],
    /// The capacity search.
    pub search: Option<&'a Search>,
    /// How long past its hold a search step waits for its clients to
    /// connect or fail (the run's `connect_timeout`).
    pub step_wait: Duration,
    /// The cores this process may use (the CPU share's denominator).
    pub cores: f64,
    /// The groups, networks and meetings scoped thresholds read.
    pub scopes: &'a Scopes,
    /// The senders' mean Opus bitrate (kbps), for each sample's audio MOS.
    pub audio_kbps: Option<f64>,
}

/// The run's live side: see the module's doc.
pub struct Live {
    zero: Snapshot,
    prev: Snapshot,
    cores: f64,
    interval: Duration,
    next_sample: Duration,
    recorder: Recorder,
    thresholds: Thresholds,
    scopes: Scopes,
    audio_kbps: Option<f64>,
    search: Option<SearchState>,
    phases: Option<Phases>,
    /// Figures the phases report besides their usual ones (those of the
    /// thresholds scoped to a phase).
    phase_figures: Vec<String>,
    server: Option<ServerProbe>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("samples", &self.recorder.samples.len())
            .field("events", &self.recorder.events.len())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Starts the live side of a run of `m` (its clock started): opens the
    /// timeline's JSON lines file when one is asked for.
    pub fn new(m: &Metrics, setup: Setup<'_>) -> anyhow::Result<Live> {
        let zero = timeline::zero(m);
        let recorder = Recorder::new(setup.jsonl)?;
        let search = setup
            .search
            .map(|cfg| SearchState::new(cfg, timeline::zero(m), setup.step_wait));
        let mut live = Live {
            prev: zero.clone(),
            zero,
            cores: setup.cores,
            interval: setup.interval,
            next_sample: setup.interval,
            recorder,
            thresholds: Thresholds::new(setup.thresholds),
            scopes: setup.scopes.clone(),
            audio_kbps: setup.audio_kbps,
            search,
            phases: None,
            phase_figures: setup
                .thresholds
                .iter()
                .filter(|t| matches!(t.scope, Scope::Phase(_)))
                .map(|t| t.figure.clone())
                .collect(),
            server: None,
        };
        let start = Event::at(
            &live.zero,
            "start",
            "run",
            format!("timeline every {:?}", setup.interval),
        );
        live.recorder.event(start);
        if let Some(s) = &live.search {
            let e = Event::at(&live.zero, "step", s.label(), "");
            live.recorder.event(e);
        }
        Ok(live)
    }

    /// Judges each of `windows` (the behaviour schedule's phases) on its own
    /// window of the run, and names the phase under way in the samples.
    pub fn with_phases(mut self, windows: &[PhaseWindow]) -> Live {
        if let Some((phases, e)) = Phases::new(windows, &self.zero, &self.phase_figures) {
            self.recorder.event(e);
            self.phases = Some(phases);
        }
        self
    }

    /// Reads the server of `probe` into every snapshot from now on: the
    /// timeline's samples, the search's steps and the report's
    /// `server_cost` have its cost. Its first reading is the run's start.
    pub fn with_server(mut self, mut probe: ServerProbe) -> Live {
        let first = probe.read(self.zero.t_s);
        self.zero.server = Some(first.clone());
        self.prev.server = Some(first.clone());
        if let Some(s) = self.search.as_mut() {
            s.with_server_start(&first);
        }
        self.server = Some(probe);
        self
    }

    /// A snapshot of `m` now, with the server's reading when it is watched.
    fn take(&mut self, m: &Metrics) -> Snapshot {
        let mut snap = timeline::take(m);
        if let Some(p) = self.server.as_mut() {
            snap.server = Some(p.read(snap.t_s));
        }
        snap
    }

    /// The capacity-search step under way (0 without a search), and how
    /// much later than planned it began: clients of later steps wait for
    /// it, and start that much later than planned.
    pub fn step(&self) -> (usize, Duration) {
        self.search
            .as_ref()
            .map_or((0, Duration::ZERO), SearchState::step)
    }

    /// Time after the run's start when [`Live::tick`] wants to run next.
    pub fn next_wake(&self) -> Duration {
        let step_end = self
            .search
            .as_ref()
            .map_or(Duration::MAX, SearchState::next_wake);
        let phase_end = self.phases.as_ref().map_or(Duration::MAX, Phases::next_end);
        self.next_sample.min(step_end).min(phase_end)
    }

    /// Does what is due at `m`'s time: a sample, the live thresholds, a
    /// search step's verdict. `Some` when the run must stop.
    pub fn tick(&mut self, m: &Metrics) -> Option<Stop> {
        self.tick_at(m, m.started.elapsed())
    }

    /// [`Live::tick`] at `now` after the run's start.
    fn tick_at(&mut self, m: &Metrics, now: Duration) -> Option<Stop> {
        let snap = self.take(m);
        let mut stop = None;
        if now >= self.next_sample {
            // Catch up without a burst of empty samples after a long stall.
            while self.next_sample <= now {
                self.next_sample += self.interval;
            }
            let (failing, abort) = self.check_thresholds(m, &snap, now);
            stop = abort.map(Stop::Abort);
            let mut sample =
                Window::new(&self.prev, &snap, self.cores).sample(self.phase(), failing);
            // The interval has no frame rate or frozen time per pair: no video score.
            sample.score(self.audio_kbps, None);
            m.set_interval_audio_mos(sample.audio_mos);
            m.set_interval_behind(sample.saturated);
            self.recorder.push_sample(sample);
            self.prev = snap.clone();
        }
        if let Some(p) = self.phases.as_mut() {
            for e in p.tick(&snap, now, self.cores) {
                self.recorder.event(e);
            }
        }
        if let Some(s) = self.search.as_mut() {
            let (over, events) = s.tick(snap, now, self.cores);
            for e in events {
                self.recorder.event(e);
            }
            if over {
                stop = stop.or(Some(Stop::Search));
            }
        }
        stop
    }

    /// Checks the thresholds on the run so far (until `snap`), records what
    /// started or stopped failing, and gives `m` each verdict (its
    /// `synth_threshold_passing`). Returns the thresholds failing now, and
    /// the verdict line of one that aborts the run.
    fn check_thresholds(
        &mut self,
        m: &Metrics,
        snap: &Snapshot,
        now: Duration,
    ) -> (Vec<String>, Option<String>) {
        let so_far = Window::new(&self.zero, snap, self.cores);
        // A scope's snapshot is taken once per check, for the first of its
        // thresholds.
        let mut scoped: Vec<(&ScopeDef, Snapshot)> = Vec::new();
        let (zero, cores, scopes) = (&self.zero, self.cores, &self.scopes);
        let value = |t: &Threshold| -> Option<f64> {
            if !t.is_live() {
                return None;
            }
            let Some(def) = scopes.find(&t.scope) else {
                return so_far.figure(&t.figure);
            };
            let k = match scoped.iter().position(|(d, _)| std::ptr::eq(*d, def)) {
                Some(k) => k,
                None => {
                    scoped.push((def, timeline::take_of(m, Some(def))));
                    scoped.len() - 1
                }
            };
            Window::new(zero, &scoped[k].1, cores).figure(&t.figure)
        };
        let checked = self.thresholds.check(value, snap, now);
        m.set_verdicts(&checked.verdicts);
        for e in checked.events {
            self.recorder.event(e);
        }
        (checked.failing, checked.abort)
    }

    /// The last sample (what happened after the last tick: the honest end),
    /// and everything recorded.
    pub fn finish(mut self, m: &Metrics) -> Recorded {
        let snap = self.take(m);
        // The phase the run stopped in ends with it.
        if let Some(p) = self.phases.as_mut().filter(|p| p.under_way()) {
            for e in p.end(&snap, self.cores) {
                self.recorder.event(e);
            }
        }
        let mut sample =
            Window::new(&self.prev, &snap, self.cores).sample(Some("end".into()), Vec::new());
        sample.score(self.audio_kbps, None);
        m.set_interval_audio_mos(sample.audio_mos);
        m.set_interval_behind(sample.saturated);
        self.recorder.push_sample(sample);
        let (timeline, events) = self
            .recorder
            .finish(&snap, self.interval, self.zero.unix_ms);
        let server_cost = self
            .server
            .as_ref()
            .map(|p| ServerCost::new(&p.watched(), &timeline.samples));
        Recorded {
            timeline,
            events,
            server_cost,
            search: self.search.map(SearchState::into_report),
            phases: self.phases.map_or_else(Vec::new, Phases::into_reports),
        }
    }

    /// The phase under way, or without phases the search step, as the
    /// samples name it.
    fn phase(&self) -> Option<String> {
        if let Some(p) = &self.phases {
            return p.name();
        }
        self.search.as_ref().map(SearchState::label)
    }
}

#[cfg(test)]
mod tests {
    use super::search::RECHECK;
    use super::*;
    use crate::config::Search;
    use crate::metrics::State;
    use crate::timeline::{Av, ByState, Sample, P2};

    /// Samples every `interval`, no JSON lines, no thresholds, on 2 cores;
    /// a search step waits `step_wait` for its clients.
    fn setup(interval: Duration, search: Option<&Search>, step_wait: Duration) -> Setup<'_> {
        Setup {
            interval,
            jsonl: None,
            thresholds: &[],
            search,
            step_wait,
            cores: 2.0,
            scopes: &NO_SCOPES,
            audio_kbps: None,
        }
    }

    static NO_SCOPES: Scopes = Scopes::EMPTY;

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
            audio_mos: None,
            video_score: None,
            jitter_ms: Av::default(),
            session_ends: Default::default(),
            freezes: 1,
            lateness_p99_ms: Some(2.0),
            server_rtt_ms: P2::default(),
            cpu_share: Some(0.5),
            host_busy: None,
            host_pressure: None,
            socket_drops: None,
            rx_queue_kb: None,
            saturated: false,
            rss_mb: k as f64,
            server: None,
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
        let s = Duration::from_secs(1);
        let mut live = Live::new(&m, setup(s, None, s)).unwrap();
        let n = 2 * MAX_SAMPLES as u64 + 5;
        for k in 1..=n {
            live.recorder.push_sample(sample(k));
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
        let mut live = Live::new(&m, setup(s(1), Some(&cfg), s(5))).unwrap();
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
        let mut live = Live::new(&m, setup(s(1), Some(&cfg), s(5))).unwrap();
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
        let s = Duration::from_secs(1);
        let mut live = Live::new(&m, setup(s, None, s)).unwrap();
        let snap = timeline::zero(&m);
        for _ in 0..MAX_EVENTS + 9 {
            live.recorder
                .event(Event::at(&snap, "threshold_failed", "audio_lost", ""));
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
