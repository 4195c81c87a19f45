//! A hostile network, as a model: what happens to each UDP datagram of one
//! participant on its way up (client to server) or down (server to client).
//!
//! Sans-IO: [`Netem::on_datagram`] takes the datagram's length and the time
//! (microseconds from an origin the caller chooses) and returns a
//! [`Verdict`]: dropped (and why), or sent at an instant, once or twice. The
//! replayer's socket wrapper does what the verdict says; QUIC above it
//! reacts as on a real network (a dropped datagram is retransmitted and
//! shows as delay, not as a missing media packet).
//!
//! Each direction ([`Link`]) applies, in this order, as `tc netem` does:
//! loss ([`Loss`]: Bernoulli, or Gilbert–Elliott bursts with netem's
//! `p r 1-h 1-k`), a rate cap (a FIFO served at `rate_bps` with a tail-drop
//! queue limit), delay with jitter ([`Jitter`]), duplication and
//! reordering. Without `reorder` a datagram never leaves before the one sent
//! before it: jitter stretches gaps but never swaps datagrams. A [`Step`]
//! schedule switches profiles or takes the link down at given times.
//!
//! Randomness comes from a small seeded generator (xoshiro256\*\*), so the
//! same seed and the same sequence of calls give the same verdicts.

use std::collections::VecDeque;

/// Microseconds in a second.
const US: u64 = 1_000_000;

/// Which way a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the server.
    Up,
    /// From the server to the client.
    Down,
}

/// How datagrams are lost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Loss {
    /// None lost.
    #[default]
    None,
    /// Each lost with this probability, independently.
    Bernoulli(f64),
    /// Gilbert–Elliott: a good and a bad state, named as netem's
    /// `loss gemodel p r 1-h 1-k`.
    GilbertElliott {
        /// P(good → bad) per datagram.
        p: f64,
        /// P(bad → good) per datagram.
        r: f64,
        /// 1 - loss probability in the bad state.
        h: f64,
        /// 1 - loss probability in the good state.
        k: f64,
    },
}

impl Loss {
    /// The long-run share of datagrams lost. For Gilbert–Elliott, the
    /// stationary share of time in the bad state is `p / (p + r)`.
    pub fn mean(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Bernoulli(p) => p,
            Loss::GilbertElliott { p, r, h, k } => {
                if p + r == 0.0 {
                    return 1.0 - k;
                }
                let bad = p / (p + r);
                bad * (1.0 - h) + (1.0 - bad) * (1.0 - k)
            }
        }
    }
}

/// How the jitter around the delay is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Uniform in `[delay - jitter, delay + jitter]`.
    #[default]
    Uniform,
    /// Normal with mean `delay` and standard deviation `jitter`.
    Normal,
}

/// One direction of a network.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    /// Loss.
    pub loss: Loss,
    /// Added one-way delay, µs.
    pub delay_us: u64,
    /// Jitter around the delay, µs (never below zero delay in total).
    pub jitter_us: u64,
    /// The jitter's distribution.
    pub jitter_dist: Jitter,
    /// The link's rate, bits per second; `None` for no cap.
    pub rate_bps: Option<u64>,
    /// With a rate: bytes waiting for the link beyond which datagrams are
    /// dropped at the tail.
    pub queue_bytes: u64,
    /// With a rate: datagrams waiting beyond which they are dropped.
    pub queue_packets: u64,
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
    /// Probability that a datagram is sent without its delay (overtaking
    /// those still delayed): reordering.
    pub reorder: f64,
}

impl Link {
    /// Whether this link changes anything at all.
    pub fn is_clean(&self) -> bool {
        self.loss.mean() == 0.0
            && self.delay_us == 0
            && self.jitter_us == 0
            && self.rate_bps.is_none()
            && self.duplicate == 0.0
            && self.reorder == 0.0
    }
}

/// Both directions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Profile {
    /// Client to server.
    pub uplink: Link,
    /// Server to client.
    pub downlink: Link,
}

/// Datagrams a rate cap's queue holds by default: netem's default `limit`.
pub const DEFAULT_QUEUE_PACKETS: u64 = 1000;

/// Bytes a rate cap's queue holds by default: half a second at the rate,
/// at least 64 KiB.
pub fn default_queue_bytes(rate_bps: u64) -> u64 {
    (rate_bps / 16).max(64 << 10)
}

/// The built-in profiles by name, for `network: 3g`: (name, one line on
/// where the numbers come from). docs/src/networks.md has the table.
pub const PROFILES: &[(&str, &str)] = &[
    (
        "good_wifi",
        "home Wi-Fi: 20 ms RTT, 2 ms jitter, 0.1 % loss, 30 Mbit/s",
    ),
    (
        "congested_wifi",
        "busy Wi-Fi: 60 ms RTT, 20 ms normal jitter, bursty loss ~1.6 %, 4/2 Mbit/s",
    ),
    ("4g", "WebPageTest \"4G\": 9 Mbit/s each way, 170 ms RTT"),
    ("3g", "750 kbit/s each way, 250 ms RTT, 1.5 % loss"),
    (
        "lossy_mobile",
        "mobile at the cell edge: 100 ms RTT, 30 ms jitter, bursty loss ~5.9 %, 3/1 Mbit/s",
    ),
    (
        "satellite",
        "geostationary: 600 ms RTT, 0.5 % loss, 10/2 Mbit/s",
    ),
    (
        "edge",
        "WebPageTest \"Mobile Edge\": 240/200 kbit/s, 840 ms RTT",
    ),
];

impl Profile {
    /// A built-in profile (see [`PROFILES`]), `None` for an unknown name.
    pub fn named(name: &str) -> Option<Profile> {
        const MS: u64 = 1000;
        let link =
            |rate: u64, delay_ms: u64, jitter_ms: u64, jitter_dist: Jitter, loss: Loss| Link {
                loss,
                delay_us: delay_ms * MS,
                jitter_us: jitter_ms * MS,
                jitter_dist,
                rate_bps: Some(rate),
                queue_bytes: default_queue_bytes(rate),
                queue_packets: DEFAULT_QUEUE_PACKETS,
                duplicate: 0.0,
                reorder: 0.0,
            };
        let both = |up: Link, down: Link| Profile {
            uplink: up,
            downlink: down,
        };
        let u = Jitter::Uniform;
        let n = Jitter::Normal;
        let b = Loss::Bernoulli;
        Some(match name {
            "good_wifi" => both(
                link(30_000_000, 10, 2, u, b(0.001)),
                link(30_000_000, 10, 2, u, b(0.001)),
            ),
            "congested_wifi" => {
                let ge = Loss::GilbertElliott {
                    p: 0.01,
                    r: 0.3,
                    h: 0.5,
                    k: 1.0,
                };
                both(
                    link(2_000_000, 30, 20, n, ge),
                    link(4_000_000, 30, 20, n, ge),
                )
            }
            "4g" => both(
                link(9_000_000, 85, 0, u, Loss::None),
                link(9_000_000, 85, 0, u, Loss::None),
            ),
            "3g" => both(
                link(750_000, 125, 0, u, b(0.015)),
                link(750_000, 125, 0, u, b(0.015)),
            ),
            "lossy_mobile" => {
                let ge = Loss::GilbertElliott {
                    p: 0.02,
                    r: 0.2,
                    h: 0.4,
                    k: 0.995,
                };
                both(
                    link(1_000_000, 50, 30, n, ge),
                    link(3_000_000, 50, 30, n, ge),
                )
            }
            "satellite" => both(
                link(2_000_000, 300, 0, u, b(0.005)),
                link(10_000_000, 300, 0, u, b(0.005)),
            ),
            "edge" => both(
                link(200_000, 420, 0, u, Loss::None),
                link(240_000, 420, 0, u, Loss::None),
            ),
            _ => return None,
        })
    }
}

/// What a schedule does at its time.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// From now on, this profile (the loss state and queues carry over).
    Profile(Box<Profile>),
    /// Every datagram, both ways, is dropped for this long (µs).
    Down(u64),
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When, µs from the origin.
    pub at_us: u64,
    /// What.
    pub change: Change,
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The loss model.
    Loss,
    /// The rate cap's queue was full.
    Queue,
    /// The link was down (a schedule step).
    Down,
}

/// What happens to one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Gone.
    Drop(Reason),
    /// Leaves (or arrives) at `at_us`, `copies` times (1, or 2 when duplicated).
    Send {
        /// When, µs from the origin (never before the call's `now`).
        at_us: u64,
        /// 1, or 2 for a duplicate.
        copies: u8,
    },
}

/// What one direction did, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Datagrams offered.
    pub datagrams: u64,
    /// Datagrams that went on (once or twice).
    pub passed: u64,
    /// Dropped by the loss model.
    pub dropped_loss: u64,
    /// Dropped at the tail of the rate cap's queue.
    pub dropped_queue: u64,
    /// Dropped while the link was down.
    pub dropped_down: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Sent without their delay.
    pub reordered: u64,
    /// Held back at all (delay, jitter, queueing).
    pub delayed: u64,
    /// Time added to the datagrams that went on, summed, µs.
    pub added_delay_us: u64,
}

impl Counters {
    /// Adds `o` to these.
    pub fn add(&mut self, o: &Counters) {
        self.datagrams += o.datagrams;
        self.passed += o.passed;
        self.dropped_loss += o.dropped_loss;
        self.dropped_queue += o.dropped_queue;
        self.dropped_down += o.dropped_down;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.delayed += o.delayed;
        self.added_delay_us += o.added_delay_us;
    }
}

/// xoshiro256\*\* seeded through splitmix64: small, fast, and good enough
/// for drawing losses and jitter.
#[derive(Debug, Clone)]
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (never draws for 0, so a link without a
    /// knob keeps the same sequence of draws for the others).
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One direction's state.
#[derive(Debug, Clone)]
struct LinkState {
    rng: Rng,
    /// Gilbert–Elliott: in the bad state.
    bad: bool,
    /// With a rate cap: when each queued datagram has left the link, with
    /// its length, oldest first.
    queue: VecDeque<(u64, u64)>,
    /// Bytes in `queue`.
    queued_bytes: u64,
    /// When the last datagram that was not reordered leaves.
    last_at: u64,
    counters: Counters,
}

impl LinkState {
    fn new(seed: u64) -> LinkState {
        LinkState {
            rng: Rng::new(seed),
            bad: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            last_at: 0,
            counters: Counters::default(),
        }
    }

    fn lost(&mut self, loss: &Loss) -> bool {
        match *loss {
            Loss::None => false,
            Loss::Bernoulli(p) => self.rng.chance(p),
            Loss::GilbertElliott { p, r, h, k } => {
                // Transition first, then lose by the state's own rate (netem's order).
                if self.bad {
                    if self.rng.chance(r) {
                        self.bad = false;
                    }
                } else if self.rng.chance(p) {
                    self.bad = true;
                }
                let keep = if self.bad { h } else { k };
                self.rng.chance(1.0 - keep)
            }
        }
    }

    fn on_datagram(&mut self, link: &Link, now: u64, len: u64) -> Verdict {
        self.counters.datagrams += 1;
        if self.lost(&link.loss) {
            self.counters.dropped_loss += 1;
            return Verdict::Drop(Reason::Loss);
        }
        // The rate cap: a FIFO served at `rate_bps`; `tx_done` is when this
        // datagram's last bit has left.
        let mut tx_done = now;
        if let Some(rate) = link.rate_bps {
            while self.queue.front().is_some_and(|&(done, _)| done <= now) {
                let (_, l) = self.queue.pop_front().unwrap_or_default();
                self.queued_bytes -= l;
            }
            if self.queued_bytes + len > link.queue_bytes
                || self.queue.len() as u64 >= link.queue_packets
            {
                self.counters.dropped_queue += 1;
                return Verdict::Drop(Reason::Queue);
            }
            let start = self.queue.back().map_or(now, |&(done, _)| done.max(now));
            tx_done = start + (len * 8 * US).div_ceil(rate.max(1));
            self.queue.push_back((tx_done, len));
            self.queued_bytes += len;
        }
        let copies = if self.rng.chance(link.duplicate) {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        let at = if self.rng.chance(link.reorder) {
            // Sent as soon as the link lets it, ahead of the delayed ones.
            self.counters.reordered += 1;
            tx_done
        } else {
            let delay = link.delay_us as f64 + self.jitter(link);
            let at = (tx_done + delay.max(0.0).round() as u64).max(self.last_at);
            self.last_at = at;
            at
        };
        self.counters.passed += 1;
        if at > now {
            self.counters.delayed += 1;
            self.counters.added_delay_us += at - now;
        }
        Verdict::Send { at_us: at, copies }
    }

    fn jitter(&mut self, link: &Link) -> f64 {
        if link.jitter_us == 0 {
            return 0.0;
        }
        let j = link.jitter_us as f64;
        match link.jitter_dist {
            Jitter::Uniform => (self.rng.unit() * 2.0 - 1.0) * j,
            Jitter::Normal => self.rng.normal() * j,
        }
    }
}

/// One participant's network: both directions and the schedule.
#[derive(Debug, Clone)]
pub struct Netem {
    profile: Profile,
    schedule: VecDeque<Step>,
    /// The link is down until then (µs).
    down_until: u64,
    up: LinkState,
    down: LinkState,
}

impl Netem {
    /// A network with `profile` from the origin, then `schedule` (sorted by
    /// time here), drawing from `seed`.
    pub fn new(profile: Profile, mut schedule: Vec<Step>, seed: u64) -> Netem {
        schedule.sort_by_key(|s| s.at_us);
        Netem {
            profile,
            schedule: schedule.into(),
            down_until: 0,
            // Each direction its own stream, so one's traffic never shifts
            // the other's draws.
            up: LinkState::new(seed),
            down: LinkState::new(seed ^ 0xd1b5_4a32_d192_ed03),
        }
    }

    /// The verdict on one datagram of `len` bytes going `dir` at `now` µs.
    /// `now` must not go backwards between calls.
    pub fn on_datagram(&mut self, dir: Direction, now: u64, len: usize) -> Verdict {
        while self.schedule.front().is_some_and(|s| s.at_us <= now) {
            if let Some(step) = self.schedule.pop_front() {
                match step.change {
                    Change::Profile(p) => self.profile = *p,
                    Change::Down(d) => self.down_until = step.at_us.saturating_add(d),
                }
            }
        }
        let (state, link) = match dir {
            Direction::Up => (&mut self.up, &self.profile.uplink),
            Direction::Down => (&mut self.down, &self.profile.downlink),
        };
        if now < self.down_until {
            state.counters.datagrams += 1;
            state.counters.dropped_down += 1;
            return Verdict::Drop(Reason::Down);
        }
        state.on_datagram(link, now, len as u64)
    }

    /// What each direction did so far: uplink, downlink.
    pub fn counters(&self) -> (Counters, Counters) {
        (self.up.counters, self.down.counters)
    }
}

/// A seed for client `index` from the run's `seed`: distinct clients draw
/// distinct streams, the same pair always the same one.
pub fn client_seed(seed: u64, index: usize) -> u64 {
    Rng::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: u64 = 100_000;

    fn link(f: impl FnOnce(&mut Link)) -> Netem {
        let mut l = Link::default();
        f(&mut l);
        Netem::new(
            Profile {
                uplink: l,
                downlink: Link::default(),
            },
            Vec::new(),
            7,
        )
    }

    /// `n` datagrams of `len` bytes, one every `gap` µs: their verdicts.
    fn offer(n: &mut Netem, count: u64, gap: u64, len: usize) -> Vec<Verdict> {
        (0..count)
            .map(|i| n.on_datagram(Direction::Up, i * gap, len))
            .collect()
    }

    fn share(v: &[Verdict], f: impl Fn(&Verdict) -> bool) -> f64 {
        v.iter().filter(|x| f(x)).count() as f64 / v.len() as f64
    }

    #[test]
    fn every_named_profile_exists_and_matches_its_line() {
        for (name, _) in PROFILES {
            let p = Profile::named(name).unwrap_or_else(|| panic!("{name}"));
            assert!(!p.uplink.is_clean() && !p.downlink.is_clean(), "{name}");
        }
        assert!(Profile::named("5g").is_none());
        let g3 = Profile::named("3g").unwrap();
        assert_eq!(g3.uplink.rate_bps, Some(750_000));
        assert_eq!(g3.uplink.delay_us + g3.downlink.delay_us, 250_000);
        assert_eq!(g3.uplink.loss, Loss::Bernoulli(0.015));
        let sat = Profile::named("satellite").unwrap();
        assert_eq!(sat.uplink.delay_us + sat.downlink.delay_us, 600_000);
        let wifi = Profile::named("congested_wifi").unwrap();
        assert!((wifi.uplink.loss.mean() - 0.016).abs() < 0.001);
        let mobile = Profile::named("lossy_mobile").unwrap();
        assert!((mobile.uplink.loss.mean() - 0.059).abs() < 0.001);
    }

    #[test]
    fn clean_link_passes_everything_at_once() {
        let mut n = link(|_| {});
        for (i, v) in offer(&mut n, 1000, 100, 1200).iter().enumerate() {
            assert_eq!(
                *v,
                Verdict::Send {
                    at_us: i as u64 * 100,
                    copies: 1
                }
            );
        }
        assert!(Link::default().is_clean());
        let (up, down) = n.counters();
        assert_eq!((up.datagrams, up.passed, up.delayed), (1000, 1000, 0));
        assert_eq!(down, Counters::default());
    }

    #[test]
    fn bernoulli_loss_matches_its_rate() {
        let mut n = link(|l| l.loss = Loss::Bernoulli(0.05));
        let v = offer(&mut n, N, 100, 1200);
        let lost = share(&v, |x| *x == Verdict::Drop(Reason::Loss));
        assert!((lost - 0.05).abs() < 0.005, "{lost}");
        assert_eq!(
            n.counters().0.dropped_loss,
            (lost * N as f64).round() as u64
        );
    }

    #[test]
    fn gilbert_elliott_matches_its_stationary_loss_and_bursts() {
        let ge = Loss::GilbertElliott {
            p: 0.01,
            r: 0.25,
            h: 0.2,
            k: 0.995,
        };
        let mut n = link(|l| l.loss = ge);
        let v = offer(&mut n, 4 * N, 100, 1200);
        let lost = share(&v, |x| matches!(x, Verdict::Drop(_)));
        let want = ge.mean();
        assert!((lost - want).abs() < 0.1 * want, "{lost} vs {want}");
        // Bursty: a loss is followed by another far more often than the mean rate.
        let drops: Vec<bool> = v.iter().map(|x| matches!(x, Verdict::Drop(_))).collect();
        let pairs = drops.windows(2).filter(|w| w[0] && w[1]).count() as f64;
        let after_loss = pairs / drops.iter().filter(|d| **d).count() as f64;
        assert!(after_loss > 3.0 * want, "P(loss | loss) {after_loss}");
    }

    #[test]
    fn delay_and_jitter_keep_order_and_mean() {
        for dist in [Jitter::Uniform, Jitter::Normal] {
            let mut n = link(|l| {
                l.delay_us = 100_000;
                l.jitter_us = 10_000;
                l.jitter_dist = dist;
            });
            // Gaps of 20 ms: wider than the jitter's usual reach, so the
            // no-reordering floor rarely lifts a datagram.
            let v = offer(&mut n, N, 20_000, 1200);
            let mut last = 0;
            let mut added = 0u64;
            for (i, x) in v.iter().enumerate() {
                let Verdict::Send { at_us, copies: 1 } = *x else {
                    panic!("{x:?}")
                };
                assert!(at_us >= last, "{dist:?}: datagram {i} overtook");
                last = at_us;
                added += at_us - i as u64 * 20_000;
            }
            let mean = added as f64 / N as f64;
            assert!((mean - 100_000.0).abs() < 10_000.0, "{dist:?}: {mean}");
            let c = n.counters().0;
            assert_eq!(c.added_delay_us, added);
            assert_eq!(c.delayed, N);
        }
    }

    #[test]
    fn jitter_never_reorders_even_when_it_exceeds_the_gap() {
        let mut n = link(|l| {
            l.delay_us = 50_000;
            l.jitter_us = 40_000;
        });
        let v = offer(&mut n, N, 100, 1200);
        let ats: Vec<u64> = v
            .iter()
            .map(|x| match x {
                Verdict::Send { at_us, .. } => *at_us,
                _ => panic!(),
            })
            .collect();
        assert!(ats.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(n.counters().0.reordered, 0);
    }

    #[test]
    fn rate_cap_spaces_departures_and_drops_at_the_tail() {
        // 1 Mbit/s: 1250 bytes take 10 ms. Offered every 1 ms: a queue forms.
        let mut n = link(|l| {
            l.rate_bps = Some(1_000_000);
            l.queue_bytes = 10 * 1250;
            l.queue_packets = 1000;
        });
        let v = offer(&mut n, 100, 1000, 1250);
        let sent: Vec<u64> = v
            .iter()
            .filter_map(|x| match x {
                Verdict::Send { at_us, .. } => Some(*at_us),
                _ => None,
            })
            .collect();
        assert_eq!(sent[0], 10_000);
        for w in sent.windows(2) {
            assert_eq!(w[1] - w[0], 10_000, "spaced by len*8/rate");
        }
        let c = n.counters().0;
        assert!(c.dropped_queue > 0);
        assert_eq!(c.dropped_queue + c.passed, 100);
        // What passed is what the link carries in the time offered plus the queue.
        assert!((sent.len() as i64 - 20).abs() <= 1, "{}", sent.len());

        // The packet limit holds on its own.
        let mut n = link(|l| {
            l.rate_bps = Some(1_000_000);
            l.queue_bytes = u64::MAX / 2;
            l.queue_packets = 3;
        });
        let v = offer(&mut n, 10, 0, 1250);
        assert_eq!(share(&v, |x| *x == Verdict::Drop(Reason::Queue)), 0.7);
    }

    #[test]
    fn duplicate_and_reorder_match_their_rates() {
        let mut n = link(|l| {
            l.delay_us = 50_000;
            l.duplicate = 0.02;
            l.reorder = 0.1;
        });
        let v = offer(&mut n, N, 1000, 1200);
        let dup = share(&v, |x| matches!(x, Verdict::Send { copies: 2, .. }));
        assert!((dup - 0.02).abs() < 0.003, "{dup}");
        let c = n.counters().0;
        let re = c.reordered as f64 / N as f64;
        assert!((re - 0.1).abs() < 0.005, "{re}");
        // A reordered datagram leaves at once, ahead of the delayed one before it.
        let overtakes = v
            .windows(2)
            .filter(|w| match (w[0], w[1]) {
                (Verdict::Send { at_us: a, .. }, Verdict::Send { at_us: b, .. }) => b < a,
                _ => false,
            })
            .count();
        assert!(overtakes as u64 >= c.reordered * 8 / 10, "{overtakes}");
    }

    #[test]
    fn schedule_switches_profile_and_takes_the_link_down() {
        let slow = Profile {
            uplink: Link {
                delay_us: 300_000,
                ..Link::default()
            },
            downlink: Link::default(),
        };
        let mut n = Netem::new(
            Profile::default(),
            vec![
                Step {
                    at_us: 2 * US,
                    change: Change::Down(US),
                },
                Step {
                    at_us: US,
                    change: Change::Profile(Box::new(slow)),
                },
            ],
            1,
        );
        let d = Direction::Up;
        assert_eq!(
            n.on_datagram(d, 0, 100),
            Verdict::Send {
                at_us: 0,
                copies: 1
            }
        );
        assert_eq!(
            n.on_datagram(d, US, 100),
            Verdict::Send {
                at_us: US + 300_000,
                copies: 1
            }
        );
        assert_eq!(n.on_datagram(d, 2 * US, 100), Verdict::Drop(Reason::Down));
        assert_eq!(
            n.on_datagram(Direction::Down, 2 * US + 1, 100),
            Verdict::Drop(Reason::Down)
        );
        assert_eq!(
            n.on_datagram(d, 3 * US, 100),
            Verdict::Send {
                at_us: 3 * US + 300_000,
                copies: 1
            }
        );
        let (up, down) = n.counters();
        assert_eq!((up.dropped_down, down.dropped_down), (1, 1));
    }

    #[test]
    fn same_seed_same_verdicts_other_seed_other_ones() {
        let make = |seed| {
            Netem::new(
                Profile {
                    uplink: Link {
                        loss: Loss::Bernoulli(0.1),
                        delay_us: 20_000,
                        jitter_us: 5_000,
                        ..Link::default()
                    },
                    downlink: Link {
                        loss: Loss::GilbertElliott {
                            p: 0.05,
                            r: 0.3,
                            h: 0.5,
                            k: 1.0,
                        },
                        ..Link::default()
                    },
                },
                Vec::new(),
                seed,
            )
        };
        let run = |seed| {
            let mut n = make(seed);
            (0..10_000u64)
                .map(|i| {
                    let dir = if i % 3 == 0 {
                        Direction::Down
                    } else {
                        Direction::Up
                    };
                    n.on_datagram(dir, i * 500, 1000)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        assert_ne!(client_seed(1, 0), client_seed(1, 1));
        assert_eq!(client_seed(1, 5), client_seed(1, 5));
    }
}
