//! What one receiver experiences of one sender's audio or video: the
//! sequence accounting of [`crate::seq`] plus the figures a person notices —
//! late packets, interarrival jitter, frame rate, video freezes and audio
//! concealment.
//!
//! One [`Stream`] per (sender, receiver, media). Sans-IO: the caller hands
//! over each packet's sequence number, the sender's timestamp and the arrival
//! time (both wall-clock ms); nothing here reads a clock or allocates.
//!
//! - **late**: arrived more than `late_after` after it was due. A packet is due
//!   when it was sent: for a sender sharing the receiver's clock (same
//!   process) that is its timestamp; for any other sender the clocks may
//!   differ, so the due time is estimated as the timestamp plus the lowest
//!   transit time seen from that sender.
//! - **jitter**: RFC 3550 §6.4.1 interarrival jitter, `J += (|D| - J) / 16`
//!   with `D` the change in transit time between consecutive arrivals (clock
//!   offsets cancel, so it holds across hosts).
//! - **freeze** (video): a frame interval longer than
//!   `max(3 × mean, mean + 150 ms)`, WebRTC's rule. Where WebRTC's
//!   `VideoQualityObserver` averages the last intervals including the one
//!   tested, the mean here is over the last [`FREEZE_WINDOW`] intervals
//!   before it that were not freezes, so one long stall does not raise the
//!   bar for the next; detected once [`FREEZE_MIN_SAMPLES`] intervals are
//!   known. Its duration is the whole interval.
//! - **watched**: from the first to the last arrival, less the gaps after
//!   a [`Stream::pause`] (a sender muted, off camera or away on purpose).
//! - **concealment** (audio), which the report computes from these figures:
//!   each packet is one 20 ms slot; a slot is concealed when its packet was
//!   lost or late (it had not arrived by its playout time, `late_after`
//!   after it was due).
//! - **latency** (same clock only): each packet's one-way latency in
//!   [`Latencies`]' fixed buckets, with their sum, so a pair's mean and a
//!   participant's 95th percentile can be read at the end (the scores).
//! - **frames per second** (video): the frames that moved the stream forward
//!   in each whole second of watched time, counted in [`FpsSeconds`], so the
//!   share of seconds below any frame rate can be read at the end.

use serde::{Deserialize, Serialize};

use crate::seq::{Counts, Seen, Tracker};

/// Frame intervals the freeze rule averages over.
pub const FREEZE_WINDOW: usize = 30;
/// Intervals needed before a freeze can be detected.
pub const FREEZE_MIN_SAMPLES: usize = 5;
/// The least increase over the mean interval that is a freeze, ms.
pub const FREEZE_MIN_INCREASE_MS: f64 = 150.0;

/// Freezes of one video stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Freezes {
    /// How many.
    pub count: u64,
    /// Their total duration, ms.
    pub total_ms: f64,
    /// The longest, ms.
    pub longest_ms: f64,
}

impl Freezes {
    /// Adds another stream's (or session's) freezes.
    pub fn merge(&mut self, o: &Freezes) {
        self.count += o.count;
        self.total_ms += o.total_ms;
        self.longest_ms = self.longest_ms.max(o.longest_ms);
    }
}

/// Upper edges (ms) of the [`Latencies`] buckets; the last is open.
pub const LATENCY_EDGES_MS: [f64; 31] = [
    5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 120.0, 140.0, 160.0,
    180.0, 200.0, 250.0, 300.0, 350.0, 400.0, 500.0, 600.0, 800.0, 1_000.0, 1_500.0, 2_000.0,
    3_000.0, 5_000.0, 10_000.0, 30_000.0,
];

/// One-way latencies of a stream's packets: counts per bucket (bucket `k`
/// holds latencies up to [`LATENCY_EDGES_MS`]`[k]`, the last everything
/// above), their sum and number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    /// Packets per bucket.
    pub buckets: [u32; 32],
    /// Their latencies summed, ms.
    pub sum_ms: f64,
    /// How many.
    pub n: u64,
}

impl Latencies {
    /// Counts one latency.
    pub fn add(&mut self, ms: f64) {
        let k = LATENCY_EDGES_MS
            .iter()
            .position(|&e| ms <= e)
            .unwrap_or(LATENCY_EDGES_MS.len());
        self.buckets[k] = self.buckets[k].saturating_add(1);
        self.sum_ms += ms.max(0.0);
        self.n += 1;
    }

    /// Adds another stream's.
    pub fn merge(&mut self, o: &Latencies) {
        for (a, b) in self.buckets.iter_mut().zip(&o.buckets) {
            *a = a.saturating_add(*b);
        }
        self.sum_ms += o.sum_ms;
        self.n += o.n;
    }

    /// The mean, ms; `None` with none.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum_ms / self.n as f64)
    }

    /// An upper bound of the `q` quantile (0..1): the upper edge of the
    /// bucket it falls in (the last bucket's lower edge for the open one);
    /// `None` with none.
    pub fn quantile_at_most_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().map(|&c| u64::from(c)).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (k, &c) in self.buckets.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some(LATENCY_EDGES_MS[k.min(LATENCY_EDGES_MS.len() - 1)]);
            }
        }
        LATENCY_EDGES_MS.last().copied()
    }
}

/// Whole seconds of a video stream by the frames that moved it forward in
/// them: `counts[k]` seconds had `k` frames (the last, 31 or more).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FpsSeconds {
    /// Seconds per frame count.
    pub counts: [u32; 32],
}

impl FpsSeconds {
    /// Adds another stream's.
    pub fn merge(&mut self, o: &FpsSeconds) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a = a.saturating_add(*b);
        }
    }

    /// Seconds counted.
    pub fn seconds(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// The share of seconds with fewer than `fps` frames; `None` with none.
    pub fn share_below(&self, fps: f64) -> Option<f64> {
        let n = self.seconds();
        let below: u64 = (0..self.counts.len())
            .filter(|&k| (k as f64) < fps)
            .map(|k| u64::from(self.counts[k]))
            .sum();
        (n > 0).then(|| below as f64 / n as f64)
    }
}

/// The second of video under way: when it began and its frames so far.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SecondUnderWay {
    start_ms: f64,
    frames: u32,
}

/// Everything a [`Stream`] measured, as plain data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Sequence accounting.
    pub seq: Counts,
    /// Packets that arrived more than `late_after` after they were due.
    pub late: u64,
    /// RFC 3550 interarrival jitter at the last arrival, ms.
    pub jitter_ms: f64,
    /// First to last arrival, ms.
    pub watched_ms: f64,
    /// Video freezes (zero for audio).
    pub freezes: Freezes,
    /// One-way latencies from a sender sharing the receiver's clock.
    #[serde(default)]
    pub latency: Latencies,
    /// Video: whole seconds by their frame count (empty for audio).
    #[serde(default)]
    pub fps_seconds: FpsSeconds,
}

impl Summary {
    /// Frames (packets) received per second of watched time: the intervals
    /// between the distinct arrivals over their total.
    pub fn rate(&self) -> Option<f64> {
        (self.watched_ms > 0.0)
            .then(|| self.seq.distinct.saturating_sub(1) as f64 * 1000.0 / self.watched_ms)
    }

    /// Share of watched time spent frozen (0..1).
    pub fn freeze_share(&self) -> Option<f64> {
        (self.watched_ms > 0.0).then(|| (self.freezes.total_ms / self.watched_ms).min(1.0))
    }
}

/// What one packet was.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Arrival {
    /// Its sequence accounting.
    pub seen: Seen,
    /// It was late.
    pub late: bool,
    /// It ended a freeze of this many ms (video).
    pub freeze_ms: Option<f64>,
}

/// The freeze rule's state.
#[derive(Debug, Clone, PartialEq)]
struct FreezeRule {
    intervals: [f32; FREEZE_WINDOW],
    next: usize,
    filled: usize,
    sum: f64,
    last_frame_ms: Option<f64>,
    freezes: Freezes,
}

impl Default for FreezeRule {
    fn default() -> FreezeRule {
        FreezeRule {
            intervals: [0.0; FREEZE_WINDOW],
            next: 0,
            filled: 0,
            sum: 0.0,
            last_frame_ms: None,
            freezes: Freezes::default(),
        }
    }
}

impl FreezeRule {
    /// A frame shown at `at_ms`; returns the freeze it ended, if any.
    fn frame(&mut self, at_ms: f64) -> Option<f64> {
        let last = self.last_frame_ms.replace(at_ms)?;
        let interval = (at_ms - last).max(0.0);
        if self.filled >= FREEZE_MIN_SAMPLES {
            let mean = self.sum / self.filled as f64;
            if interval > (3.0 * mean).max(mean + FREEZE_MIN_INCREASE_MS) {
                let f = &mut self.freezes;
                f.count += 1;
                f.total_ms += interval;
                f.longest_ms = f.longest_ms.max(interval);
                return Some(interval);
            }
        }
        if self.filled == FREEZE_WINDOW {
            self.sum -= self.intervals[self.next] as f64;
        } else {
            self.filled += 1;
        }
        self.intervals[self.next] = interval as f32;
        self.sum += interval as f32 as f64;
        self.next = (self.next + 1) % FREEZE_WINDOW;
        None
    }
}

/// One sender's audio or video at one receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    seq: Tracker,
    late: u64,
    jitter_ms: f64,
    last_transit_ms: Option<f64>,
    min_transit_ms: f64,
    first_arrival_ms: Option<f64>,
    last_arrival_ms: f64,
    /// Watched time of the segments before the last pause, ms.
    watched_before_ms: f64,
    /// The sender paused on purpose (muted, camera off, left): the next
    /// arrival starts a new segment.
    paused: bool,
    freeze: Option<Box<FreezeRule>>,
    latency: Latencies,
    fps_seconds: FpsSeconds,
    /// Video: the second under way.
    second: Option<SecondUnderWay>,
}

impl Stream {
    /// A stream of audio (`video` false) or video, which also watches for freezes.
    pub fn new(video: bool) -> Stream {
        Stream {
            seq: Tracker::default(),
            late: 0,
            jitter_ms: 0.0,
            last_transit_ms: None,
            min_transit_ms: f64::INFINITY,
            first_arrival_ms: None,
            last_arrival_ms: 0.0,
            watched_before_ms: 0.0,
            paused: false,
            freeze: video.then(Box::default),
            latency: Latencies::default(),
            fps_seconds: FpsSeconds::default(),
            second: None,
        }
    }

    /// The sender stopped this stream on purpose (muted, turned its camera
    /// off, left the meeting) or this receiver left: the gap until the next
    /// arrival is neither watched time, a freeze nor jitter. Sequence
    /// accounting is untouched (a sender's numbers do not move while it
    /// pauses).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Records a packet numbered `seq`, stamped `sent_ms` by its sender and
    /// arriving at `arrival_ms`. `same_clock` when the sender shares the
    /// receiver's clock; `late_after_ms` is the playout budget.
    pub fn see(
        &mut self,
        seq: u64,
        sent_ms: f64,
        arrival_ms: f64,
        same_clock: bool,
        late_after_ms: f64,
    ) -> Arrival {
        let seen = self.seq.see(seq);
        if std::mem::take(&mut self.paused) {
            if let Some(first) = self.first_arrival_ms.take() {
                self.watched_before_ms += (self.last_arrival_ms - first).max(0.0);
            }
            self.last_transit_ms = None;
            if let Some(f) = &mut self.freeze {
                f.last_frame_ms = None;
            }
            // A second cut short by the pause is not a second of video.
            self.second = None;
        }
        let transit = arrival_ms - sent_ms;
        if same_clock {
            self.latency.add(transit.max(0.0));
        }
        if let Some(prev) = self.last_transit_ms {
            let d = (transit - prev).abs();
            self.jitter_ms += (d - self.jitter_ms) / 16.0;
        }
        self.last_transit_ms = Some(transit);
        self.min_transit_ms = self.min_transit_ms.min(transit);
        let due = if same_clock {
            sent_ms
        } else {
            sent_ms + self.min_transit_ms
        };
        let late = arrival_ms - due > late_after_ms;
        if late {
            self.late += 1;
        }
        self.first_arrival_ms.get_or_insert(arrival_ms);
        self.last_arrival_ms = self.last_arrival_ms.max(arrival_ms);
        // A frame that filled a hole or repeated one was never shown in
        // its turn: only frames moving the stream forward count.
        let forward = !seen.duplicate && !seen.reordered;
        let freeze_ms = match &mut self.freeze {
            Some(f) if forward => f.frame(arrival_ms),
            _ => None,
        };
        if forward && self.freeze.is_some() {
            self.count_frame(arrival_ms);
        }
        Arrival {
            seen,
            late,
            freeze_ms,
        }
    }

    /// Counts a video frame at `at_ms` in its second, closing the seconds
    /// before it (those with no frame count as 0 fps).
    fn count_frame(&mut self, at_ms: f64) {
        let s = self.second.get_or_insert(SecondUnderWay {
            start_ms: at_ms,
            frames: 0,
        });
        let last = self.fps_seconds.counts.len() - 1;
        while at_ms >= s.start_ms + 1000.0 {
            let k = (s.frames as usize).min(last);
            self.fps_seconds.counts[k] = self.fps_seconds.counts[k].saturating_add(1);
            s.start_ms += 1000.0;
            s.frames = 0;
        }
        s.frames += 1;
    }

    /// The sequence counts so far.
    pub fn counts(&self) -> &Counts {
        self.seq.counts()
    }

    /// The receiver was away on purpose until the sender's next number was
    /// `next` (see [`Tracker::excuse`]; `origin` is the sender's next number
    /// when the receiver first joined).
    pub fn excuse(&mut self, origin: u64, next: u64) {
        self.seq.excuse(origin, next);
    }

    /// RFC 3550 interarrival jitter at the last arrival, ms.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_ms
    }

    /// Everything measured so far.
    pub fn summary(&self) -> Summary {
        Summary {
            seq: *self.seq.counts(),
            late: self.late,
            jitter_ms: self.jitter_ms,
            watched_ms: self.watched_before_ms
                + self
                    .first_arrival_ms
                    .map_or(0.0, |f| (self.last_arrival_ms - f).max(0.0)),
            freezes: self
                .freeze
                .as_ref()
                .map_or_else(Freezes::default, |f| f.freezes),
            latency: self.latency,
            fps_seconds: self.fps_seconds,
        }
    }
}

/// Loss of one stream checked against what its sender really sent: every
/// number from `from` (the sender's next number when the receiver joined)
/// up to, not including, `until` (its next number when it stopped) was sent
/// after the receiver joined and had to arrive. Numbers below `from` that
/// arrived anyway widen the span; nothing is inferred from what arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exact {
    /// Numbers that had to arrive.
    pub expected: u64,
    /// Of those, how many never did.
    pub lost: u64,
}

impl Exact {
    /// The check for `counts`, the receiver's view of the sender's numbers.
    pub fn check(counts: &Counts, from: u64, until: u64) -> Exact {
        let low = counts.first.map_or(from, |f| f.min(from));
        let expected = until.saturating_sub(low);
        // Distinct numbers received all lie below `until`, so they are in the span.
        Exact {
            expected,
            lost: expected
                .saturating_sub(counts.distinct)
                .saturating_sub(counts.excused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_follows_rfc3550() {
        let mut s = Stream::new(false);
        // Transit 10, 14, 10, 14 ms: |D| = 4 each time after the first.
        let mut j = 0.0f64;
        for (i, transit) in [10.0, 14.0, 10.0, 14.0].into_iter().enumerate() {
            let sent = i as f64 * 20.0;
            s.see(i as u64, sent, sent + transit, true, 100.0);
            if i > 0 {
                j += (4.0 - j) / 16.0;
            }
        }
        assert!((s.summary().jitter_ms - j).abs() < 1e-9);
        assert!(j > 0.7 && j < 0.8, "{j}");
        // A constant offset (another host's clock) changes nothing.
        let mut t = Stream::new(false);
        for (i, transit) in [10.0, 14.0, 10.0, 14.0].into_iter().enumerate() {
            let sent = i as f64 * 20.0 - 5_000.0;
            t.see(i as u64, sent, sent + 5_000.0 + transit, false, 100.0);
        }
        assert!((t.summary().jitter_ms - j).abs() < 1e-9);
    }

    #[test]
    fn latencies_are_bucketed_from_the_same_clock_only() {
        let mut s = Stream::new(false);
        for (i, transit) in [4.0, 12.0, 100.0, 101.0, 250.0].into_iter().enumerate() {
            let sent = i as f64 * 20.0;
            s.see(i as u64, sent, sent + transit, true, 1000.0);
        }
        // Another clock's transit says nothing of latency.
        s.see(9, 0.0, 5_000.0, false, 1000.0);
        let l = s.summary().latency;
        assert_eq!(l.n, 5);
        assert_eq!(l.mean_ms(), Some(93.4));
        assert_eq!(l.quantile_at_most_ms(0.2), Some(5.0));
        assert_eq!(
            l.quantile_at_most_ms(0.6),
            Some(100.0),
            "100 is in the bucket up to 100"
        );
        assert_eq!(l.quantile_at_most_ms(0.8), Some(120.0));
        assert_eq!(l.quantile_at_most_ms(0.95), Some(250.0));
        let mut big = Latencies::default();
        big.add(60_000.0);
        assert_eq!(
            big.quantile_at_most_ms(0.5),
            Some(30_000.0),
            "the open bucket"
        );
        assert_eq!(Latencies::default().quantile_at_most_ms(0.5), None);
        big.merge(&l);
        assert_eq!(big.n, 6);
    }

    /// 30 fps for 3 s, nothing for 2 s, 10 fps for 2 s: seconds of 30, 30,
    /// 30, 0, 0 (the stall), then 10 (the last second under way is not counted).
    #[test]
    fn seconds_are_counted_by_their_frames() {
        let mut s = Stream::new(true);
        let mut seq = 0;
        let mut frame = |s: &mut Stream, t: f64| {
            s.see(seq, t, t + 1.0, true, 1000.0);
            seq += 1;
        };
        for k in 0..90 {
            frame(&mut s, k as f64 * 1000.0 / 30.0);
        }
        for k in 0..20 {
            frame(&mut s, 5_000.0 + k as f64 * 100.0);
        }
        let f = s.summary().fps_seconds;
        assert_eq!(f.seconds(), 6);
        assert_eq!((f.counts[30], f.counts[0], f.counts[10]), (3, 2, 1));
        assert_eq!(f.share_below(15.0), Some(0.5));
        assert_eq!(f.share_below(0.5), Some(2.0 / 6.0));
        // Audio counts no seconds; a pause drops the second under way.
        let mut a = Stream::new(false);
        a.see(0, 0.0, 1.0, true, 100.0);
        a.see(1, 3000.0, 3001.0, true, 100.0);
        assert_eq!(a.summary().fps_seconds.seconds(), 0);
        let mut p = Stream::new(true);
        p.see(0, 0.0, 1.0, true, 100.0);
        p.pause();
        p.see(1, 5000.0, 5001.0, true, 100.0);
        assert_eq!(p.summary().fps_seconds.seconds(), 0);
    }

    #[test]
    fn late_is_against_the_due_time() {
        let mut s = Stream::new(false);
        assert!(!s.see(0, 0.0, 99.0, true, 100.0).late);
        assert!(s.see(1, 20.0, 121.0, true, 100.0).late);
        assert_eq!(s.summary().late, 1);
        // Another clock, 1 s ahead: the due time is the lowest transit.
        let mut o = Stream::new(false);
        assert!(!o.see(0, -1000.0, 5.0, false, 100.0).late);
        assert!(!o.see(1, -980.0, 125.0, false, 100.0).late);
        assert!(o.see(2, -960.0, 146.0, false, 100.0).late);
    }

    /// Frames every 33 ms with one 1 s stall: exactly one freeze of 1 s.
    #[test]
    fn one_stall_is_one_freeze() {
        let mut s = Stream::new(true);
        let mut t = 0.0;
        let mut freezes = Vec::new();
        for seq in 0..100u64 {
            t += if seq == 50 { 1000.0 } else { 33.0 };
            if let Some(f) = s.see(seq, t - 2.0, t, true, 500.0).freeze_ms {
                freezes.push((seq, f));
            }
        }
        assert_eq!(freezes, vec![(50, 1000.0)]);
        let sum = s.summary();
        assert_eq!(sum.freezes.count, 1);
        assert_eq!(sum.freezes.longest_ms, 1000.0);
        let share = sum.freeze_share().unwrap();
        assert!(
            (share - 1000.0 / (99.0 * 33.0 + 967.0)).abs() < 1e-9,
            "{share}"
        );
        let rate = sum.rate().unwrap();
        assert!((rate - 99.0 * 1000.0 / sum.watched_ms).abs() < 1e-9);
    }

    #[test]
    fn a_pause_on_purpose_is_no_freeze_and_not_watched() {
        let mut s = Stream::new(true);
        let mut t = 0.0;
        for seq in 0..50u64 {
            assert_eq!(s.see(seq, t - 2.0, t, true, 500.0).freeze_ms, None);
            t += 33.0;
        }
        // Camera off for 10 s, then on again: the numbers go on.
        s.pause();
        t += 10_000.0;
        for seq in 50..100u64 {
            assert_eq!(s.see(seq, t - 2.0, t, true, 500.0).freeze_ms, None);
            t += 33.0;
        }
        let sum = s.summary();
        assert_eq!((sum.freezes.count, sum.seq.missing()), (0, 0));
        assert!(
            (sum.watched_ms - 2.0 * 49.0 * 33.0).abs() < 1e-9,
            "{}",
            sum.watched_ms
        );
    }

    #[test]
    fn no_freeze_below_the_rule() {
        let mut s = Stream::new(true);
        let mut t = 0.0;
        // A mean of 33 ms: 180 ms is below mean + 150 ms (3 × 33 is less).
        for seq in 0..40u64 {
            t += if seq == 20 { 180.0 } else { 33.0 };
            assert_eq!(s.see(seq, t, t, true, 500.0).freeze_ms, None, "{seq}");
        }
        // Too few intervals to judge: nothing is a freeze yet.
        let mut s = Stream::new(true);
        for (seq, t) in [0.0, 33.0, 2000.0].into_iter().enumerate() {
            assert_eq!(s.see(seq as u64, t, t, true, 500.0).freeze_ms, None);
        }
        // Audio never freezes; a late or refilled frame is not a new one.
        let mut a = Stream::new(false);
        for seq in 0..10 {
            a.see(seq, 0.0, seq as f64 * 5000.0, true, 100.0);
        }
        assert_eq!(a.summary().freezes, Freezes::default());
    }

    #[test]
    fn exact_loss_counts_what_was_sent_after_the_join() {
        let mut t = Tracker::default();
        // Sender was at 10 when the receiver joined and stopped at 20;
        // 8 and 9 arrived anyway, 12 and 19 (the tail) never did.
        for n in [8, 9, 10, 11, 13, 14, 15, 16, 17, 18] {
            t.see(n);
        }
        let e = Exact::check(t.counts(), 10, 20);
        assert_eq!(
            e,
            Exact {
                expected: 12,
                lost: 2
            }
        );
        // Inferred from the span alone, the tail would not count.
        assert_eq!(t.counts().missing(), 1);
        // Nothing arrived: everything sent after the join is lost.
        let e = Exact::check(&Counts::default(), 5, 9);
        assert_eq!(
            e,
            Exact {
                expected: 4,
                lost: 4
            }
        );
    }
}
