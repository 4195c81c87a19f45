//! Loss accounting for one stream of sequence numbers: one sender's audio
//! (or video) as one receiver sees it. The relay counts what each sender
//! delivered to it; each client counts what each peer delivered to it; both
//! use this [`Tracker`], so the words mean the same on both sides:
//!
//! - **received**: every packet that arrived, duplicates included.
//! - **duplicate**: a sequence number that had already arrived (recognised
//!   within the last [`WINDOW`] numbers).
//! - **reordered**: arrived after a higher sequence number had (a hole filled
//!   late). Every packet travels on its own QUIC stream, so reordering is
//!   normal and is never loss.
//! - **missing**: sequence numbers between the first and the highest seen that
//!   have not arrived (yet). A hole that slides out of the window stays
//!   missing, and a packet that fills it later still counts; only the end of
//!   the run turns missing into *lost*, which is what [`Counts::lost`] means
//!   once nothing more can arrive.
//!
//! The span runs from the lowest to the highest number seen, so a receiver
//! that joins late is not charged for what was sent before it joined. A sender's numbers keep
//! rising across its reconnects, so a tracker kept across sessions (and
//! [`Counts::merge`] across trackers of one sender) sees the packets written
//! into a dead session as missing.
//!
//! Sans-IO: no clock, no allocation after creation.

use serde::{Deserialize, Serialize};

/// Sequence numbers remembered behind the highest one seen, to recognise
/// duplicates and to tell which holes a late packet fills.
pub const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What a tracker counted so far. Plain numbers, so they add up across
/// sessions, receivers and processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Lowest sequence number seen (the span's start).
    pub first: Option<u64>,
    /// Highest sequence number seen.
    pub last: Option<u64>,
    /// Packets that arrived, duplicates included.
    pub received: u64,
    /// Distinct sequence numbers in the span that arrived.
    pub distinct: u64,
    /// Packets whose sequence number had already arrived.
    pub duplicate: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// Numbers in the span the receiver did not expect: sent while it had
    /// left the meeting on purpose ([`Tracker::excuse`]). Never missing.
    #[serde(default)]
    pub excused: u64,
}

impl Counts {
    /// Sequence numbers from `first` to `last`.
    pub fn span(&self) -> u64 {
        match (self.first, self.last) {
            (Some(f), Some(l)) if l >= f => l - f + 1,
            _ => 0,
        }
    }

    /// Numbers in the span that have not arrived. Once nothing more can
    /// arrive (the run has ended and drained), these are lost.
    pub fn missing(&self) -> u64 {
        self.span()
            .saturating_sub(self.distinct)
            .saturating_sub(self.excused)
    }

    /// [`Counts::missing`] at the end of a run: packets that never arrived.
    pub fn lost(&self) -> u64 {
        self.missing()
    }

    /// Adds the counts of another span of the same sender (a later session,
    /// or the same sender seen by another receiver when summing). The spans
    /// join: what lies between them is missing.
    pub fn merge(&mut self, o: &Counts) {
        self.first = self.first.into_iter().chain(o.first).min();
        self.last = self.last.into_iter().chain(o.last).max();
        self.received += o.received;
        self.distinct += o.distinct;
        self.duplicate += o.duplicate;
        self.reordered += o.reordered;
        self.excused += o.excused;
    }
}

/// Counts summed over unrelated streams (senders, media): spans do not join.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Packets that arrived, duplicates included.
    pub received: u64,
    /// Numbers that have not arrived (lost, at the end of a run).
    pub missing: u64,
    /// Duplicates.
    pub duplicate: u64,
    /// Reordered packets.
    pub reordered: u64,
}

impl Totals {
    /// Adds one stream's counts.
    pub fn add(&mut self, c: &Counts) {
        self.received += c.received;
        self.missing += c.missing();
        self.duplicate += c.duplicate;
        self.reordered += c.reordered;
    }
}

impl From<&Counts> for Totals {
    fn from(c: &Counts) -> Totals {
        let mut t = Totals::default();
        t.add(c);
        t
    }
}

/// What one packet was.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// It came after a higher sequence number (it filled a hole).
    pub reordered: bool,
    /// Its number had already arrived.
    pub duplicate: bool,
    /// Numbers it skipped over: holes it opened (missing for now).
    pub skipped: u64,
}

/// Per-sender, per-media sequence state (144 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    counts: Counts,
    /// Ring of the last [`WINDOW`] numbers at or below `last`: bit `n % WINDOW`
    /// set when `n` arrived.
    seen: [u64; WORDS],
}

impl Default for Tracker {
    fn default() -> Tracker {
        Tracker {
            counts: Counts::default(),
            seen: [0; WORDS],
        }
    }
}

impl Tracker {
    fn bit(n: u64) -> (usize, u64) {
        let i = n % WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn set(&mut self, n: u64) {
        let (w, b) = Tracker::bit(n);
        self.seen[w] |= b;
    }

    fn is_set(&self, n: u64) -> bool {
        let (w, b) = Tracker::bit(n);
        self.seen[w] & b != 0
    }

    fn clear(&mut self, n: u64) {
        let (w, b) = Tracker::bit(n);
        self.seen[w] &= !b;
    }

    /// Records a packet numbered `seq`.
    pub fn see(&mut self, seq: u64) -> Seen {
        let c = &mut self.counts;
        c.received += 1;
        let Some(last) = c.last else {
            c.first = Some(seq);
            c.last = Some(seq);
            c.distinct = 1;
            self.set(seq);
            return Seen::default();
        };
        let first = c.first.unwrap_or(seq);
        if seq > last {
            let skipped = seq - last - 1;
            // Forget the numbers the ring now reuses (all of it on a big jump).
            if skipped >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for n in last + 1..seq {
                    self.clear(n);
                }
            }
            self.set(seq);
            let c = &mut self.counts;
            c.last = Some(seq);
            c.distinct += 1;
            return Seen {
                skipped,
                ..Seen::default()
            };
        }
        if seq < first {
            // Lower than any seen yet (sent before the first packet that
            // arrived, delivered after it): the span grows down to it.
            c.first = Some(seq);
            c.distinct += 1;
            c.reordered += 1;
            if last - seq < WINDOW {
                self.set(seq);
            }
            return Seen {
                reordered: true,
                ..Seen::default()
            };
        }
        if last - seq < WINDOW {
            if self.is_set(seq) {
                self.counts.duplicate += 1;
                return Seen {
                    duplicate: true,
                    ..Seen::default()
                };
            }
            self.set(seq);
        }
        // Within the window: a hole filled. Beyond it the number is not
        // remembered; QUIC and the relay never duplicate, so it counts as new.
        let c = &mut self.counts;
        c.distinct += 1;
        c.reordered += 1;
        Seen {
            reordered: true,
            ..Seen::default()
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The receiver left the meeting on purpose and came back when the
    /// sender's next number was `next`: every number after the highest seen
    /// (or from `origin`, the sender's next number when the receiver first
    /// joined, if nothing arrived yet) up to `next` was sent while it was
    /// away, so none of them is expected. They join the span as excused,
    /// never as missing. A number of that range that still arrives counts
    /// as a hole filled late.
    pub fn excuse(&mut self, origin: u64, next: u64) {
        let c = &mut self.counts;
        let from = match c.last {
            Some(l) => l + 1,
            None => origin,
        };
        if next <= from {
            return;
        }
        if next - from >= WINDOW {
            self.seen = [0; WORDS];
        } else {
            for n in from..next {
                self.clear(n);
            }
        }
        let c = &mut self.counts;
        c.first.get_or_insert(from);
        c.last = Some(next - 1);
        c.excused += next - from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (received, missing, reordered, duplicate)
    fn run(seqs: &[u64]) -> (u64, u64, u64, u64) {
        let mut t = Tracker::default();
        for &s in seqs {
            t.see(s);
        }
        let c = t.counts();
        (c.received, c.missing(), c.reordered, c.duplicate)
    }

    #[test]
    fn in_order_has_no_loss() {
        let seqs: Vec<u64> = (5..5000).collect();
        assert_eq!(run(&seqs), (4995, 0, 0, 0));
    }

    #[test]
    fn reordering_is_not_loss() {
        assert_eq!(run(&[0, 2, 1, 3, 5, 4, 6]), (7, 0, 2, 0));
    }

    #[test]
    fn a_hole_is_missing_until_filled_even_beyond_the_window() {
        // 3 and 10 never arrive.
        let seqs: Vec<u64> = (0..3000).filter(|s| *s != 3 && *s != 10).collect();
        assert_eq!(run(&seqs), (2998, 2, 0, 0));
        // 7 arrives 2000 numbers late: out of the window, still not lost.
        let mut seqs: Vec<u64> = (0..3000).filter(|s| *s != 7).collect();
        seqs.push(7);
        assert_eq!(run(&seqs), (3000, 0, 1, 0));
    }

    #[test]
    fn big_jump_then_duplicates() {
        let mut t = Tracker::default();
        t.see(0);
        t.see(1);
        let s = t.see(100_000);
        assert_eq!(s.skipped, 99_998);
        assert_eq!(t.counts().missing(), 99_998);
        assert!(t.see(100_000).duplicate);
        assert!(t.see(99_999).reordered);
        assert!(t.see(99_999).duplicate);
        assert_eq!(t.counts().missing(), 99_997);
        assert_eq!(run(&[0, 1, 1, 0]), (4, 0, 0, 2));
    }

    #[test]
    fn a_late_joiner_is_not_charged_for_what_came_before() {
        // Joined at 500; 499 was still in flight and comes after 500.
        assert_eq!(run(&[500, 499, 501, 502]), (4, 0, 1, 0));
        // A lower number that arrives late extends the span: 497 and 498
        // arrived, 499 is missing.
        assert_eq!(run(&[500, 497, 498, 501]), (4, 1, 2, 0));
        let mut t = Tracker::default();
        for s in [500, 497, 497] {
            t.see(s);
        }
        assert_eq!(t.counts().duplicate, 1);
    }

    #[test]
    fn spans_of_two_sessions_merge_and_the_outage_is_missing() {
        // Session 1 saw 0..100, the sender wrote 100..150 into a dead
        // session, session 2 saw 150..200.
        let (mut a, mut b) = (Tracker::default(), Tracker::default());
        for s in 0..100 {
            a.see(s);
        }
        for s in 150..200 {
            b.see(s);
        }
        let mut c = *a.counts();
        c.merge(b.counts());
        assert_eq!((c.received, c.span(), c.lost()), (150, 200, 50));
        let mut t = Totals::from(a.counts());
        t.add(b.counts());
        assert_eq!(
            (t.received, t.missing),
            (150, 0),
            "totals do not join spans"
        );
    }

    #[test]
    fn numbers_sent_while_the_receiver_was_away_are_excused() {
        let mut t = Tracker::default();
        for s in 0..100 {
            t.see(s);
        }
        // 100..150 sent while this receiver had left; 98 and 99 had arrived.
        t.excuse(0, 150);
        for s in 150..200 {
            assert_eq!(t.see(s).skipped, 0);
        }
        let c = t.counts();
        assert_eq!((c.missing(), c.excused, c.span()), (0, 50, 200));
        // A hole after the return is still missing.
        t.see(201);
        assert_eq!(t.counts().missing(), 1);
        // Nothing heard before leaving: the excused range starts at the origin.
        let mut t = Tracker::default();
        t.excuse(10, 40);
        t.see(40);
        t.see(42);
        assert_eq!((t.counts().first, t.counts().missing()), (Some(10), 1));
        // Coming back before anything new was sent changes nothing.
        let mut t = Tracker::default();
        t.see(5);
        t.excuse(0, 6);
        assert_eq!(*t.counts(), {
            let mut u = Tracker::default();
            u.see(5);
            *u.counts()
        });
    }

    #[test]
    fn ring_reuse_forgets_old_numbers_only() {
        // A duplicate of a number exactly WINDOW behind is no longer known.
        let mut t = Tracker::default();
        for s in 0..=WINDOW {
            t.see(s);
        }
        assert!(t.see(1).duplicate, "1 is WINDOW - 1 behind: remembered");
        let s = t.see(0);
        assert!(!s.duplicate && s.reordered, "0 fell out of the ring");
    }
}
