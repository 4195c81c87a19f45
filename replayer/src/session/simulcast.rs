//! A simulcast sender's layers (`simulcast: true`): the pack's renditions
//! sent at once, layer 0 on the video lane's own track and numbers, each
//! layer above it on its own track with numbers of its own (so a receiver
//! that gets one layer sees an unbroken sequence, and a layer shed and
//! restored leaves no gap). Which layers go out follows the server's
//! LAYER_HINT as upstream `RnD`'s publisher does
//! (`videocall-aq/src/controller.rs`): layers above what any receiver wants
//! are shed at once; they come back one at a time, at least
//! [`RESTORE_GAP`] after the last change. Sans-IO: every decision takes `now`.

use std::time::{Duration, Instant};

/// The least time between a change of the layers sent and a restore
/// (upstream: 1.5 s since the last transition, checked on a 1 s tick).
pub const RESTORE_GAP: Duration = Duration::from_millis(1500);

/// What a hint changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Layers shed, down to this many.
    Shed(usize),
    /// One layer restored, up to this many.
    Restored(usize),
}

/// A simulcast sender's upper layers and how many are sent.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// The tracks of layers 1, 2, …
    tracks: Vec<usize>,
    /// Each upper layer's next sequence number.
    seq: Vec<u64>,
    /// Layers sent now, layer 0 included.
    active: usize,
    /// Layers the server wants (`None`: all).
    wanted: Option<usize>,
    /// When `active` last changed.
    changed: Option<Instant>,
}

impl Ladder {
    /// The ladder of `layers` (layer 0 first); `None` for fewer than two.
    pub fn new(layers: &[usize]) -> Option<Ladder> {
        if layers.len() < 2 {
            return None;
        }
        Some(Ladder {
            tracks: layers[1..].to_vec(),
            seq: vec![0; layers.len() - 1],
            active: layers.len(),
            wanted: None,
            changed: None,
        })
    }

    /// Layers in all.
    pub fn total(&self) -> usize {
        self.tracks.len() + 1
    }

    /// Layers sent now.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The server's hint: receivers want layers up to `max` (`None`: all).
    pub fn hint(&mut self, max: Option<u32>) {
        self.wanted = max.map(|m| (m as usize).saturating_add(1).min(self.total()));
    }

    /// Applies the hint at `now`: sheds at once, restores one layer once
    /// [`RESTORE_GAP`] has passed since the last change.
    pub fn poll(&mut self, now: Instant) -> Option<Change> {
        let want = self.wanted.unwrap_or(self.total()).max(1);
        if want < self.active {
            self.active = want;
            self.changed = Some(now);
            return Some(Change::Shed(want));
        }
        let rested = self
            .changed
            .is_none_or(|c| now.saturating_duration_since(c) >= RESTORE_GAP);
        if want > self.active && rested {
            self.active += 1;
            self.changed = Some(now);
            return Some(Change::Restored(self.active));
        }
        None
    }

    /// The upper layers sent now: layer id and track.
    pub fn upper(&self) -> impl Iterator<Item = (u32, usize)> + '_ {
        self.tracks[..self.active - 1]
            .iter()
            .enumerate()
            .map(|(i, &t)| (i as u32 + 1, t))
    }

    /// Takes layer `layer`'s next sequence number (layer ≥ 1).
    pub fn take_seq(&mut self, layer: u32) -> u64 {
        let s = &mut self.seq[layer as usize - 1];
        *s += 1;
        *s - 1
    }

    /// Layer `layer`'s last packet never went out: its number goes to the next.
    pub fn unsend(&mut self, layer: u32) {
        let s = &mut self.seq[layer as usize - 1];
        *s = s.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rendition_is_no_ladder() {
        assert!(Ladder::new(&[3]).is_none());
        assert!(Ladder::new(&[]).is_none());
    }

    #[test]
    fn every_layer_goes_until_a_hint_sheds_at_once_and_restores_one_at_a_time() {
        let t0 = Instant::now();
        let mut l = Ladder::new(&[4, 5, 6]).unwrap();
        assert_eq!(l.active(), 3);
        assert_eq!(l.upper().collect::<Vec<_>>(), vec![(1, 5), (2, 6)]);
        assert_eq!(l.poll(t0), None);
        // Nobody wants more than layer 0: shed both at once.
        l.hint(Some(0));
        assert_eq!(l.poll(t0), Some(Change::Shed(1)));
        assert_eq!(l.upper().count(), 0);
        // Everything wanted again: one layer per RESTORE_GAP.
        l.hint(None);
        assert_eq!(l.poll(t0 + Duration::from_millis(1000)), None);
        assert_eq!(l.poll(t0 + RESTORE_GAP), Some(Change::Restored(2)));
        assert_eq!(l.poll(t0 + RESTORE_GAP), None);
        assert_eq!(l.poll(t0 + RESTORE_GAP * 2), Some(Change::Restored(3)));
        assert_eq!(l.poll(t0 + RESTORE_GAP * 3), None);
        // A hint past the ladder is the whole ladder.
        l.hint(Some(7));
        assert_eq!(l.poll(t0 + RESTORE_GAP * 4), None);
        l.hint(Some(1));
        assert_eq!(l.poll(t0 + RESTORE_GAP * 4), Some(Change::Shed(2)));
    }

    #[test]
    fn each_layer_numbers_its_own_packets() {
        let mut l = Ladder::new(&[1, 2, 3]).unwrap();
        assert_eq!(l.take_seq(1), 0);
        assert_eq!(l.take_seq(1), 1);
        assert_eq!(l.take_seq(2), 0);
        l.unsend(1);
        assert_eq!(l.take_seq(1), 1);
    }
}
