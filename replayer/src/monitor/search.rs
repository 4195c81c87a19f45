//! The capacity search while the run goes: each step judged on its own
//! window once its hold is over and its clients have connected or failed.

use std::collections::BTreeMap;
use std::time::Duration;

use synth_report::figure::FIGURES;
use synth_report::model::{SearchReport, Step};
use synth_report::num::round3;

use crate::config::Search;
use crate::monitor::thresholds::{line, short};
use crate::timeline::{Event, Snapshot, Window};

/// How often a step past its hold looks whether its clients are all in.
pub(super) const RECHECK: Duration = Duration::from_millis(50);

/// The search: its step under way, and the steps judged.
pub(super) struct SearchState {
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
    /// The search of `cfg`, its first step starting at `zero`; a step waits
    /// `wait` past its hold for its clients.
    pub(super) fn new(cfg: &Search, zero: Snapshot, wait: Duration) -> SearchState {
        SearchState {
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
                ..SearchReport::default()
            },
            cfg: cfg.clone(),
            k: 0,
            from: zero,
            began: Duration::ZERO,
            wait,
            recheck: None,
        }
    }

    pub(super) fn hold_end(&self) -> Duration {
        self.began + self.cfg.hold
    }

    /// How much later than planned the step under way began: its clients
    /// start that much later (a step before it waited for its clients).
    fn late(&self) -> Duration {
        self.began
            .saturating_sub(self.cfg.hold.saturating_mul(self.k as u32))
    }

    /// The step under way, and how much later than planned it began.
    pub(super) fn step(&self) -> (usize, Duration) {
        (self.k, self.late())
    }

    /// The step under way, as the samples name it.
    pub(super) fn label(&self) -> String {
        step_label(&self.cfg, self.k)
    }

    /// When the search wants to look next, after the run's start.
    pub(super) fn next_wake(&self) -> Duration {
        self.recheck.unwrap_or_else(|| self.hold_end())
    }

    /// Judges the step under way at `snap` (`now` after the run's start)
    /// once it is due; its events, and true when the search is over.
    pub(super) fn tick(&mut self, snap: Snapshot, now: Duration, cores: f64) -> (bool, Vec<Event>) {
        if now < self.hold_end() {
            return (false, Vec::new());
        }
        // Judged once every client started so far has connected or
        // failed: one still connecting would count in the next
        // step's window, whose verdict it is not. It waits `wait`
        // at most; one still connecting then breaks the step.
        let started = self.cfg.clients_at(self.k) as u64;
        let unresolved = started.saturating_sub(snap.resolved());
        if unresolved > 0 && now < self.hold_end() + self.wait {
            self.recheck = Some(now + RECHECK);
            return (false, Vec::new());
        }
        self.judge(snap, unresolved, now, cores)
    }

    /// Judges the step under way on its own window; true when the search is over.
    /// `unresolved`: clients of the step still connecting after its wait.
    fn judge(
        &mut self,
        snap: Snapshot,
        unresolved: u64,
        now: Duration,
        cores: f64,
    ) -> (bool, Vec<Event>) {
        let w = Window::new(&self.from, &snap, cores);
        let (broken, figures, saturated) = self.verdict(&w, unresolved);
        let clients = self.cfg.clients_at(self.k);
        let passed = broken.is_empty();
        self.report.steps.push(Step {
            clients,
            t_start_s: round3(self.from.t_s),
            t_end_s: round3(snap.t_s),
            passed,
            broken: broken.clone(),
            saturated,
            figures,
            server_cores: w.server_cores(),
        });
        let detail = if passed {
            "passed".to_string()
        } else {
            format!("broke: {}", broken.join("; "))
        };
        let mut events = vec![Event::at(&snap, "step_end", self.label(), detail)];
        let over = if passed {
            self.report.knee = Some(clients);
            if clients >= self.cfg.max {
                self.report.ended = "max".into();
                true
            } else {
                self.k += 1;
                events.push(Event::at(&snap, "step", self.label(), ""));
                false
            }
        } else {
            self.report.first_broken = broken.first().cloned();
            self.report.ended = "broken".into();
            true
        };
        self.from = snap;
        self.began = now;
        self.recheck = None;
        (over, events)
    }

    /// What broke the step whose window is `w` (nothing: it passed), its
    /// figures, and whether the generator was saturated.
    fn verdict(
        &self,
        w: &Window,
        unresolved: u64,
    ) -> (Vec<String>, BTreeMap<String, Option<f64>>, bool) {
        let mut broken = Vec::new();
        let mut figures = BTreeMap::new();
        for t in &self.cfg.slo {
            let v = w.figure(&t.name);
            figures.insert(t.name.clone(), v.map(round3));
            if !t.check(v).pass {
                broken.push(line(t, v));
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
                humantime::format_duration(self.wait)
            ));
        }
        let saturated = w.saturated(&crate::health::Limits::default());
        if saturated && !self.cfg.ignore_saturation {
            broken.push(
                "generator saturated: this machine, not the server, could not keep up".into(),
            );
        }
        (broken, figures, saturated)
    }

    /// The search as the report shows it.
    pub(super) fn into_report(mut self) -> SearchReport {
        self.report.server_at_knee();
        self.report
    }

    /// Gives the step under way's start the server's reading (taken when
    /// the watch began, after this search was set up).
    pub(super) fn with_server_start(&mut self, r: &crate::server_cost::ServerReading) {
        self.from.server = Some(r.clone());
    }
}

fn step_label(cfg: &Search, k: usize) -> String {
    format!("step {}: {} clients", k + 1, cfg.clients_at(k))
}
