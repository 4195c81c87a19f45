//! Rendition adaptation (`adapt: true` on a group): when a client's uplink
//! cannot carry its video rendition it steps down to the next lower one of
//! the pack, and back up once the link has shown headroom for a while, as a
//! browser's bitrate adaptation does. Audio is never touched.
//!
//! [`Controller`] is the decision alone, sans-IO: the client's driver feeds it
//! a [`Sample`] of what it can see every [`SAMPLE_EVERY`] (QUIC's congestion
//! window over its RTT, the CONGESTION packets counted so far, how long the
//! oldest unacknowledged send has waited, the time spent waiting for stream
//! credit) and gets [`Decision::Hold`] or [`Decision::SwitchTo`] a track. The
//! pacer then makes the switch at the target's next key frame.
//!
//! Hysteresis: down after [`DOWN_AFTER`] of continuous trouble; up only after
//! [`UP_AFTER`] with an estimate of at least [`HEADROOM`] times the higher
//! rendition's bitrate and no trouble at all.

use std::time::{Duration, Instant};

/// How often the driver samples an adapting client.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Continuous trouble before a step down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1500);

/// Continuous headroom before a step up.
pub const UP_AFTER: Duration = Duration::from_secs(8);

/// A step up needs an estimate of this many times the higher rendition's bitrate.
pub const HEADROOM: f64 = 1.5;

/// A send unacknowledged for this long means the uplink queues.
pub const QUEUE_LIMIT: Duration = Duration::from_millis(500);

/// Waiting for stream credit this long within one sample means the uplink queues.
pub const CREDIT_LIMIT: Duration = Duration::from_millis(100);

/// What the driver sees at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was taken.
    pub now: Instant,
    /// QUIC's estimate of the path: congestion window over RTT, bits per second.
    pub estimate_bps: f64,
    /// CONGESTION packets received so far (a running count).
    pub congestion: u64,
    /// How long the oldest send not yet acknowledged has waited (zero for none).
    pub oldest_unacked: Duration,
    /// Time spent waiting for stream credit so far (a running total).
    pub credit_wait: Duration,
}

/// What to do after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep the current rendition.
    Hold,
    /// Switch the video lane to this track at its next key frame.
    SwitchTo(usize),
}

/// One adapting client's decisions, over the pack's video renditions.
#[derive(Debug, Clone)]
pub struct Controller {
    /// `(track, bits per second)`, lowest bitrate first.
    ladder: Vec<(usize, f64)>,
    /// The rendition chosen last, an index into `ladder`.
    current: usize,
    trouble_since: Option<Instant>,
    headroom_since: Option<Instant>,
    /// The running counts at the previous sample.
    last_congestion: u64,
    last_credit_wait: Duration,
}

impl Controller {
    /// A controller over `renditions` (`(track, bps)`, any order) that starts
    /// on `track`. `None` if `track` is not one of them.
    pub fn new(mut renditions: Vec<(usize, f64)>, track: usize) -> Option<Controller> {
        renditions.sort_by(|a, b| a.1.total_cmp(&b.1));
        let current = renditions.iter().position(|r| r.0 == track)?;
        Some(Controller {
            ladder: renditions,
            current,
            trouble_since: None,
            headroom_since: None,
            last_congestion: 0,
            last_credit_wait: Duration::ZERO,
        })
    }

    /// The track chosen last.
    pub fn track(&self) -> usize {
        self.ladder[self.current].0
    }

    /// Takes one sample and decides.
    pub fn sample(&mut self, s: &Sample) -> Decision {
        let congested = s.congestion > self.last_congestion;
        let credit = s.credit_wait.saturating_sub(self.last_credit_wait);
        self.last_congestion = s.congestion;
        self.last_credit_wait = s.credit_wait;
        let bps = self.ladder[self.current].1;
        let trouble = congested
            || s.oldest_unacked >= QUEUE_LIMIT
            || credit >= CREDIT_LIMIT
            || s.estimate_bps < bps;
        if trouble {
            self.headroom_since = None;
            let since = *self.trouble_since.get_or_insert(s.now);
            if self.current > 0 && s.now.saturating_duration_since(since) >= DOWN_AFTER {
                return self.step(self.current - 1);
            }
            return Decision::Hold;
        }
        self.trouble_since = None;
        let Some(&(_, higher)) = self.ladder.get(self.current + 1) else {
            return Decision::Hold;
        };
        if s.estimate_bps < HEADROOM * higher {
            self.headroom_since = None;
            return Decision::Hold;
        }
        let since = *self.headroom_since.get_or_insert(s.now);
        if s.now.saturating_duration_since(since) >= UP_AFTER {
            return self.step(self.current + 1);
        }
        Decision::Hold
    }

    /// Moves to `ladder[to]`; the next step needs its own run of samples.
    fn step(&mut self, to: usize) -> Decision {
        self.current = to;
        self.trouble_since = None;
        self.headroom_since = None;
        Decision::SwitchTo(self.ladder[to].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three renditions: track 3 at 150 kb/s, track 1 at 500, track 2 at 1200.
    fn ladder() -> Vec<(usize, f64)> {
        vec![(1, 500_000.0), (2, 1_200_000.0), (3, 150_000.0)]
    }

    /// Feeds `c` one sample every 250 ms from `t0 + from_ms` to `t0 + to_ms`
    /// (exclusive) built by `f`; returns each switch with its instant (ms).
    fn run(
        c: &mut Controller,
        t0: Instant,
        from_ms: u64,
        to_ms: u64,
        f: impl Fn(Instant) -> Sample,
    ) -> Vec<(u64, usize)> {
        let mut switches = Vec::new();
        for ms in (from_ms..to_ms).step_by(250) {
            let now = t0 + Duration::from_millis(ms);
            if let Decision::SwitchTo(t) = c.sample(&f(now)) {
                switches.push((ms, t));
            }
        }
        switches
    }

    fn calm(now: Instant, estimate_bps: f64) -> Sample {
        Sample {
            now,
            estimate_bps,
            congestion: 0,
            oldest_unacked: Duration::from_millis(20),
            credit_wait: Duration::ZERO,
        }
    }

    #[test]
    fn steps_down_after_sustained_trouble_never_below_the_lowest() {
        let t0 = Instant::now();
        let mut c = Controller::new(ladder(), 2).unwrap();
        // The estimate alone, below 1.2 Mb/s: down to 500 kb/s after 1.5 s,
        // then (still below 500 kb/s) to 150 kb/s after 1.5 s more, then never lower.
        let s = run(&mut c, t0, 0, 10_000, |now| calm(now, 300_000.0));
        assert_eq!(s, vec![(1500, 1), (3250, 3)]);
        assert_eq!(c.track(), 3);
    }

    #[test]
    fn short_trouble_does_not_switch() {
        let t0 = Instant::now();
        let mut c = Controller::new(ladder(), 1).unwrap();
        // 1.25 s of queueing, then calm (but no headroom for 1.2 Mb/s), repeated.
        let f = |now: Instant| {
            let ms = (now - t0).as_millis() as u64 % 2000;
            Sample {
                oldest_unacked: Duration::from_millis(if ms < 1250 { 800 } else { 10 }),
                ..calm(now, 1_000_000.0)
            }
        };
        assert_eq!(run(&mut c, t0, 0, 20_000, f), vec![]);
        assert_eq!(c.track(), 1);
    }

    #[test]
    fn each_signal_counts_as_trouble() {
        let t0 = Instant::now();
        let signals: [&dyn Fn(Instant, u64) -> Sample; 3] = [
            // A CONGESTION packet in every sample.
            &|now, i| Sample {
                congestion: i,
                ..calm(now, 10e6)
            },
            // 120 ms of stream-credit wait in every sample.
            &|now, i| Sample {
                credit_wait: Duration::from_millis(120 * i),
                ..calm(now, 10e6)
            },
            // Sends waiting 600 ms for their acknowledgement.
            &|now, _| Sample {
                oldest_unacked: Duration::from_millis(600),
                ..calm(now, 10e6)
            },
        ];
        for (n, f) in signals.iter().enumerate() {
            let mut c = Controller::new(ladder(), 1).unwrap();
            let s = run(&mut c, t0, 0, 2000, |now| {
                f(now, 1 + (now - t0).as_millis() as u64 / 250)
            });
            assert_eq!(s, vec![(1500, 3)], "signal {n}");
        }
        // A running count that stops growing is no longer trouble.
        let mut c = Controller::new(ladder(), 1).unwrap();
        let s = run(&mut c, t0, 0, 5000, |now| Sample {
            congestion: 4,
            credit_wait: Duration::from_secs(3),
            ..calm(now, 600_000.0)
        });
        assert_eq!(s, vec![], "only the first sample saw them grow");
    }

    #[test]
    fn steps_up_only_after_sustained_headroom_never_above_the_highest() {
        let t0 = Instant::now();
        let mut c = Controller::new(ladder(), 3).unwrap();
        // 700 kb/s: headroom for 150 kb/s, but below 1.5 × 500 kb/s: stay.
        assert_eq!(run(&mut c, t0, 0, 20_000, |n| calm(n, 700_000.0)), vec![]);
        // 2 Mb/s: 1.5 × 500 kb/s fits; up 8 s after the first such sample,
        // then 1.5 × 1.2 Mb/s fits too: up again 8 s after the next sample, then no higher.
        let s = run(&mut c, t0, 20_000, 60_000, |n| calm(n, 2_000_000.0));
        assert_eq!(s, vec![(28_000, 1), (36_250, 2)]);
        assert_eq!(c.track(), 2);
    }

    #[test]
    fn trouble_resets_the_headroom_clock() {
        let t0 = Instant::now();
        let mut c = Controller::new(ladder(), 3).unwrap();
        // A CONGESTION packet every 5 s keeps it down though the estimate is high.
        let s = run(&mut c, t0, 0, 30_000, |now| {
            let ms = (now - t0).as_millis() as u64;
            Sample {
                congestion: ms / 5000,
                ..calm(now, 2_000_000.0)
            }
        });
        assert_eq!(s, vec![]);
        assert_eq!(c.track(), 3);
        // Once they stop, up 8 s after the first calm sample (the last
        // CONGESTION came at 25 s, so from 25.25 s).
        let s = run(&mut c, t0, 30_000, 40_000, |now| Sample {
            congestion: 5,
            ..calm(now, 2_000_000.0)
        });
        assert_eq!(s, vec![(33_250, 1)]);
    }

    #[test]
    fn an_unknown_track_has_no_controller() {
        assert!(Controller::new(ladder(), 0).is_none());
    }
}
