//! The fixed generators behind a schedule: SplitMix64 streams for every
//! random choice and FNV-1a for its digest. Both give the same bits on every
//! machine and release; a library generator may change between versions,
//! and with it every schedule.

use std::time::Duration;

/// The independent random streams, one per concern.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    Phase = 1,
    Churn,
    Storm,
    Action,
    TurnLength,
    TurnPick,
}

/// SplitMix64's finaliser: scatters nearby inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64: fixed output on every machine and release (a library
/// generator may change between versions, and with it every schedule).
pub(super) struct Rng(u64);

impl Rng {
    /// The stream `kind` of `seed`, for the item `path` (a phase's index, a
    /// member's, a group's and an action's).
    pub(super) fn stream(seed: u64, kind: Stream, path: &[usize]) -> Rng {
        let start = mix(seed ^ mix(kind as u64));
        Rng(path
            .iter()
            .fold(start, |s, &p| mix(s ^ mix((p as u64).wrapping_add(GOLDEN)))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub(super) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Moves `n` uniformly chosen items of `items` to its front (a partial
    /// Fisher–Yates shuffle) and returns them.
    pub(super) fn choose<'a, T>(&mut self, items: &'a mut [T], n: usize) -> &'a [T] {
        let n = n.min(items.len());
        for j in 0..n {
            let r = j + self.below(items.len() - j);
            items.swap(j, r);
        }
        &items[..n]
    }
}

/// A duration from seconds, in whole microseconds (so schedules do not
/// depend on the last bits of floating point).
pub(super) fn secs(x: f64) -> Duration {
    Duration::from_micros((x.max(0.0) * 1e6).round() as u64)
}

/// FNV-1a, 64 bits.
pub(super) struct Fnv(u64);

impl Fnv {
    /// FNV-1a's offset basis.
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// The hash so far.
    pub(super) fn finish(&self) -> u64 {
        self.0
    }

    /// Its length, then its bytes.
    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Its 8 bytes, little-endian.
    pub(super) fn u64(&mut self, x: u64) {
        for x in x.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}
