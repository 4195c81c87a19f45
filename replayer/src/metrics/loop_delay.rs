//! The event-loop delay of the run's runtimes: [`LoopDelay::probe`], spawned
//! on each client runtime, asks to wake every [`LoopDelay::PERIOD`] and
//! records how late it woke. A runtime thread busy with other tasks, or
//! starved of CPU, wakes it late; the generator's verdict
//! (`synth_report::health`) takes its [`LoopFigures`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use synth_report::health::LoopFigures;
use tokio::sync::watch;

use super::hist::{Hist, LATENESS_BUCKETS};

/// Event-loop delay of the runtimes it is spawned on, in microseconds.
///
/// Each wake-up is scheduled one period after the previous one actually
/// happened, so one late wake-up is counted once and not carried into the
/// next. Tokio's timer has a resolution of 1 ms, so an idle runtime reads
/// 0 to 1 ms.
#[derive(Debug)]
pub struct LoopDelay {
    period: Duration,
    delay: Hist,
}

impl Default for LoopDelay {
    fn default() -> Self {
        LoopDelay::new(LoopDelay::PERIOD)
    }
}

impl LoopDelay {
    /// How often a probe asks to wake up.
    pub const PERIOD: Duration = Duration::from_millis(50);

    /// A probe set that wakes every `period`, with nothing recorded yet.
    pub fn new(period: Duration) -> LoopDelay {
        LoopDelay {
            period,
            delay: Hist::with_shards(LATENESS_BUCKETS, 4),
        }
    }

    /// The probe of one runtime, to spawn on it: it sleeps one period at a
    /// time and records how late each wake-up was, until `stop` is true (or
    /// its sender is gone). `shard` spreads lock use: pass the runtime's index.
    pub fn probe(
        self: &Arc<Self>,
        shard: usize,
        mut stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let me = Arc::clone(self);
        async move {
            let mut due = tokio::time::Instant::now() + me.period;
            loop {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|&stopped| stopped) => return,
                    () = tokio::time::sleep_until(due) => {}
                }
                let now = tokio::time::Instant::now();
                me.record(now.saturating_duration_since(due), shard);
                due = now + me.period;
            }
        }
    }

    /// Records one wake-up that came `late` after it was due.
    pub fn record(&self, late: Duration, shard: usize) {
        self.delay.record(late.as_micros() as u64, shard);
    }

    /// The distribution, for `/metrics`.
    pub fn hist(&self) -> &Hist {
        &self.delay
    }

    /// Wake-ups recorded.
    pub fn count(&self) -> u64 {
        self.delay.count()
    }

    /// 99th percentile of the delay, ms (0 when nothing was recorded).
    pub fn p99_ms(&self) -> f64 {
        self.delay.merged().value_at_quantile(0.99) as f64 / 1000.0
    }

    /// Largest delay, ms (0 when nothing was recorded).
    pub fn max_ms(&self) -> f64 {
        self.delay.merged().max() as f64 / 1000.0
    }

    /// The figures the generator's verdict takes.
    pub fn figures(&self) -> LoopFigures {
        let h = self.delay.merged();
        LoopFigures {
            p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_probe_records_how_late_it_woke_and_stops_on_the_signal() {
        let d = Arc::new(LoopDelay::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let probe = tokio::spawn(d.probe(0, stop_rx));
        // Let the probe arm its first timer (due at 50 ms), then jump the
        // clock to 120 ms as a runtime blocked for that long would.
        tokio::task::yield_now().await;
        tokio::time::advance(Duration::from_millis(120)).await;
        // Sleeping lets the probe run: woken 70 ms late, it re-arms for 170 ms.
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(d.count(), 1);
        assert!(d.max_ms() >= 70.0 && d.max_ms() < 70.1, "{}", d.max_ms());
        // On a paused clock an idle runtime's wake-ups are on time: 0 ms late
        // (recorded as 1 µs, the histogram's floor).
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(d.count(), 5);
        assert!(d.p99_ms() >= 70.0 && d.p99_ms() < 70.1, "{}", d.p99_ms());
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), probe)
            .await
            .expect("the probe stops when told")
            .unwrap();
        assert_eq!(d.count(), 5);
    }
}
