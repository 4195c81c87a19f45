//! Sequence tracking that tells loss from reordering.
//!
//! Every packet travels on its own QUIC stream, so packets of one sender can
//! arrive out of order without any being lost. A [`Tracker`] keeps a 64-packet
//! window behind the highest sequence number seen: a hole that is filled
//! within the window counts as reordered; a hole that slides out of the
//! window (or is still open when the session ends) counts as a gap (a packet
//! that never arrived).

/// Per-sender, per-media sequence state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tracker {
    /// Highest sequence number seen plus one; 0 before the first packet.
    next: u64,
    /// Bit i set: sequence `next - 1 - i` arrived. Bits before the first packet are set.
    window: u64,
    started: bool,
}

/// What one packet told.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Sequence numbers now known to be lost.
    pub lost: u64,
    /// The packet filled a hole (it came late, but within the window).
    pub reordered: bool,
    /// The packet was seen before, or came after its hole was counted lost.
    pub duplicate_or_late: bool,
}

const WINDOW: u64 = 64;

impl Tracker {
    /// Records `seq`.
    pub fn see(&mut self, seq: u64) -> Seen {
        let mut out = Seen::default();
        if !self.started {
            self.started = true;
            self.next = seq.saturating_add(1);
            self.window = u64::MAX;
            return out;
        }
        if seq >= self.next {
            let shift = seq - self.next + 1;
            if shift >= WINDOW {
                out.lost = WINDOW - self.window.count_ones() as u64 + (shift - WINDOW);
                self.window = 1;
            } else {
                let leaving = self.window >> (WINDOW - shift);
                out.lost = shift - leaving.count_ones() as u64;
                self.window = (self.window << shift) | 1;
            }
            self.next = seq.saturating_add(1);
        } else {
            let age = self.next - 1 - seq;
            if age >= WINDOW || self.window & (1 << age) != 0 {
                out.duplicate_or_late = true;
            } else {
                self.window |= 1 << age;
                out.reordered = true;
            }
        }
        out
    }

    /// Holes still open: lost if nothing more arrives.
    pub fn open_holes(&self) -> u64 {
        if self.started {
            WINDOW - self.window.count_ones() as u64
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u64]) -> (u64, u64, u64, u64) {
        let mut t = Tracker::default();
        let (mut lost, mut reordered, mut dup) = (0, 0, 0);
        for &s in seqs {
            let r = t.see(s);
            lost += r.lost;
            reordered += r.reordered as u64;
            dup += r.duplicate_or_late as u64;
        }
        (lost, reordered, dup, t.open_holes())
    }

    #[test]
    fn in_order_has_no_gaps() {
        let seqs: Vec<u64> = (5..500).collect();
        assert_eq!(run(&seqs), (0, 0, 0, 0));
    }

    #[test]
    fn reordering_is_not_loss() {
        assert_eq!(run(&[0, 2, 1, 3, 5, 4, 6]), (0, 2, 0, 0));
    }

    #[test]
    fn loss_is_counted_once_it_leaves_the_window() {
        // 3 and 10 never arrive.
        let seqs: Vec<u64> = (0..200).filter(|s| *s != 3 && *s != 10).collect();
        assert_eq!(run(&seqs), (2, 0, 0, 0));
        // Still inside the window at the end: an open hole.
        assert_eq!(run(&[0, 1, 3, 4]), (0, 0, 0, 1));
    }

    #[test]
    fn big_jump_and_duplicates() {
        // 2..=999 missing: 935 fell out of the window, 63 are still open holes.
        let (lost, _, _, open) = run(&[0, 1, 1000]);
        assert_eq!((lost, open), (935, 63));
        assert_eq!(lost + open, 998);
        assert_eq!(run(&[0, 1, 1, 0]), (0, 0, 2, 0));
        // Arrives after its hole was counted lost.
        let mut seqs: Vec<u64> = (0..100).filter(|s| *s != 7).collect();
        seqs.push(7);
        assert_eq!(run(&seqs), (1, 0, 1, 0));
    }
}
