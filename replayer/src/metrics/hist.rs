//! Timing distributions in microseconds ([`Hist`]): fixed Prometheus
//! buckets (atomics shared by every client of the run) for `/metrics`, and
//! HdrHistograms sharded by client behind mutexes that are rarely
//! contended, for the report's percentiles.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;

const SHARDS: usize = 16;

/// A timing distribution in microseconds: Prometheus buckets plus HdrHistograms.
#[derive(Debug)]
pub struct Hist {
    pub(super) bounds_us: &'static [u64],
    pub(super) buckets: Box<[AtomicU64]>,
    pub(super) sum_us: AtomicU64,
    pub(super) count: AtomicU64,
    shards: Box<[Mutex<Histogram<u64>>]>,
}

/// The most values one [`Hist::record_correct`] adds.
const MAX_CORRECTED: usize = 10_000;

/// Prometheus bucket bounds (µs) for send lateness.
pub const LATENESS_BUCKETS: &[u64] = &[
    250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 1_000_000,
];
/// Prometheus bucket bounds (µs) for one-way latency.
pub const LATENCY_BUCKETS: &[u64] = &[
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 150_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];
/// Prometheus bucket bounds (µs) for interarrival jitter.
pub const JITTER_BUCKETS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];
/// Prometheus bucket bounds (µs) for connect time.
pub const CONNECT_BUCKETS: &[u64] = &[
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000,
];

impl Hist {
    /// An empty distribution with the given Prometheus bucket bounds.
    pub fn new(bounds_us: &'static [u64]) -> Hist {
        Hist::with_shards(bounds_us, SHARDS)
    }

    /// The same with `shards` HdrHistograms (each about 190 KB) instead of
    /// the usual 16: for what is recorded now and then, not per packet.
    pub fn with_shards(bounds_us: &'static [u64], shards: usize) -> Hist {
        Hist {
            bounds_us,
            buckets: (0..bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
            shards: (0..shards.max(1))
                // The report's shape: 1 µs to 1 hour, 3 significant digits.
                .map(|_| Mutex::new(synth_report::hist::new()))
                .collect(),
        }
    }

    /// Records `us` and, as HdrHistogram's coordinated-omission correction
    /// does, the values a sample every `interval_us` would have had while the
    /// recorder was held up: `us - interval_us`, `us - 2 × interval_us`, …
    pub fn record_correct(&self, us: u64, interval_us: u64, shard: usize) {
        self.record(us, shard);
        if interval_us == 0 {
            return;
        }
        // At most MAX_CORRECTED values (a 200 s stall of 20 ms frames).
        let mut v = us;
        for _ in 0..MAX_CORRECTED {
            if v <= interval_us {
                break;
            }
            v -= interval_us;
            self.record(v, shard);
        }
    }

    /// Records one value; `shard` spreads lock use (pass the client index).
    #[inline]
    pub fn record(&self, us: u64, shard: usize) {
        if let Some(i) = self.bounds_us.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
        if let Ok(mut h) = self.shards[shard % self.shards.len()].lock() {
            h.saturating_record(us.max(1));
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = synth_report::hist::new();
        for s in self.shards.iter() {
            if let Ok(h) = s.lock() {
                let _ = all.add(&*h);
            }
        }
        all
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}
