//! Timing distributions in microseconds ([`Hist`]): fixed Prometheus
//! buckets (atomics shared by every client of the run) for `/metrics`, and
//! HdrHistograms sharded by client behind mutexes that are rarely
//! contended, for the report's percentiles. A client's shards belong to its
//! group alone ([`Layout`]), so a group's distribution is the merge of its
//! shards (the report's scopes).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

const SHARDS: usize = 16;

/// Which clients share histogram shards: each group (a group of the
/// config, or the explicit clients) has shards of its own.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Each client's group, by client index.
    group_of: Arc<[u32]>,
    /// How many groups there are (at least 1).
    groups: usize,
}

impl Layout {
    /// `group_of[client]` is the client's group, below `groups`.
    pub fn new(group_of: Vec<u32>, groups: usize) -> Layout {
        Layout {
            group_of: group_of.into(),
            groups: groups.max(1),
        }
    }

    /// The group of client `client` (0 for an index beyond the plan).
    fn group(&self, client: usize) -> usize {
        self.group_of.get(client).map_or(0, |&g| g as usize)
    }
}

/// A timing distribution in microseconds: Prometheus buckets plus HdrHistograms.
#[derive(Debug)]
pub struct Hist {
    pub(super) bounds_us: &'static [u64],
    pub(super) buckets: Box<[AtomicU64]>,
    pub(super) sum_us: AtomicU64,
    pub(super) count: AtomicU64,
    layout: Layout,
    /// Shards per group: group `g`'s are `g * per .. (g + 1) * per`.
    per: usize,
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
        Hist::laid_out(bounds_us, shards, Layout::default())
    }

    /// About `shards` HdrHistograms split among `layout`'s groups (at
    /// least one each).
    pub fn laid_out(bounds_us: &'static [u64], shards: usize, layout: Layout) -> Hist {
        let per = shards.max(1).div_ceil(layout.groups.max(1));
        Hist {
            bounds_us,
            buckets: (0..bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
            shards: (0..per * layout.groups.max(1))
                // The report's shape: 1 µs to 1 hour, 3 significant digits.
                .map(|_| Mutex::new(synth_report::hist::new()))
                .collect(),
            layout,
            per,
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

    /// Records one value of client `shard` (its index: it picks one of its
    /// group's shards, spreading lock use).
    #[inline]
    pub fn record(&self, us: u64, shard: usize) {
        if let Some(i) = self.bounds_us.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
        let k = self.layout.group(shard) * self.per + shard % self.per;
        if let Some(Ok(mut h)) = self.shards.get(k).map(Mutex::lock) {
            h.saturating_record(us.max(1));
        }
    }

    /// All shards merged.
    pub fn merged(&self) -> Histogram<u64> {
        self.merged_of(self.shards.iter())
    }

    /// The shards of `groups` merged: what their clients recorded.
    pub fn merged_groups(&self, groups: &[usize]) -> Histogram<u64> {
        self.merged_of(
            groups
                .iter()
                .filter_map(|g| self.shards.get(g * self.per..(g + 1) * self.per))
                .flatten(),
        )
    }

    fn merged_of<'a>(
        &self,
        shards: impl Iterator<Item = &'a Mutex<Histogram<u64>>>,
    ) -> Histogram<u64> {
        let mut all = synth_report::hist::new();
        for s in shards {
            if let Ok(h) = s.lock() {
                let _ = all.add(&*h);
            }
        }
        all
    }

    /// A distribution of one shard holding what `groups` recorded (nothing
    /// with `None`), for the report of a scope; its Prometheus buckets are
    /// empty.
    pub fn subset(&self, groups: Option<&[usize]>) -> Hist {
        let h = Hist::with_shards(self.bounds_us, 1);
        if let Some(g) = groups {
            let merged = self.merged_groups(g);
            h.count.store(merged.len(), Relaxed);
            if let Ok(mut s) = h.shards[0].lock() {
                *s = merged;
            }
        }
        h
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_reads_its_own_clients_alone() {
        // Clients 0 and 2 in group 0, 1 and 3 in group 1, 4 in group 2.
        let layout = Layout::new(vec![0, 1, 0, 1, 2], 3);
        let h = Hist::laid_out(LATENCY_BUCKETS, 16, layout);
        for (client, us) in [(0, 100), (1, 200), (2, 300), (3, 400), (4, 500), (9, 600)] {
            h.record(us, client);
        }
        let values = |x: Histogram<u64>| -> Vec<u64> {
            x.iter_recorded().map(|v| v.value_iterated_to()).collect()
        };
        assert_eq!(h.merged().len(), 6);
        // A client beyond the plan counts in group 0.
        assert_eq!(values(h.merged_groups(&[0])), vec![100, 300, 600]);
        assert_eq!(values(h.merged_groups(&[1])), vec![200, 400]);
        assert_eq!(values(h.merged_groups(&[1, 2])), vec![200, 400, 500]);
        assert_eq!(h.merged_groups(&[7]).len(), 0, "no such group");
        let sub = h.subset(Some(&[2]));
        assert_eq!((sub.count(), values(sub.merged())), (1, vec![500]));
        assert_eq!(h.subset(None).merged().len(), 0);
    }
}
