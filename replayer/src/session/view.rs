//! What a receiver shows (`view: {tiles, layer}`), and what it tells an
//! upstream `RnD` server so: VIEWPORT (the sessions whose video it shows)
//! and LAYER_PREFERENCE (the one layer it wants of each), as
//! [`synth_common::layers`] writes them.
//!
//! Its tiles are the first `tiles` peers it hears, kept until they leave (a
//! browser's tiles do not reshuffle while the same people are there); a
//! peer that leaves frees its tile for the next one heard. Each change is
//! sent after [`DEBOUNCE`] (a join burst is one update, as the browser's
//! 300 ms debounce), never sooner than [`MIN_GAP`] after the last (the
//! server drops updates closer than 200 ms), and again on each new session
//! (the server keeps a session's view, not a client's).
//!
//! It also keeps, per peer, when an update first covered it: the time to a
//! switch is from there to the last packet of that peer the view no longer
//! wanted. Sans-IO: every decision takes `now`.

use std::time::{Duration, Instant};

use synth_common::layers::{self, Preference};
use synth_common::wire::media_kind;

/// How long a change waits before it is sent, so a burst is one update.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// The least time between two updates.
pub const MIN_GAP: Duration = Duration::from_millis(250);

/// One peer as the view knows it.
#[derive(Debug)]
struct Peer {
    user: Box<[u8]>,
    session: u64,
    shown: bool,
    /// When an update sent on this session first covered it.
    asked: Option<Instant>,
}

/// A receiver's view.
#[derive(Debug)]
pub struct View {
    tiles: Option<usize>,
    layer: Option<u32>,
    peers: Vec<Peer>,
    /// Something changed since this instant and is not sent yet.
    changed: Option<Instant>,
    last_sent: Option<Instant>,
}

/// The packets an update sends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// VIEWPORT, when the view has tiles.
    pub viewport: Option<Vec<u8>>,
    /// LAYER_PREFERENCE, when it asks for a layer.
    pub preference: Option<Vec<u8>>,
}

impl View {
    /// A view of `tiles` peers (`None`: all) asking for `layer` (`None`: any).
    pub fn new(tiles: Option<usize>, layer: Option<u32>) -> View {
        View {
            tiles,
            layer,
            peers: Vec::new(),
            changed: None,
            last_sent: None,
        }
    }

    /// Whether it tells the server anything at all.
    fn speaks(&self) -> bool {
        self.tiles.is_some() || self.layer.is_some()
    }

    /// A new session of this receiver began at `now`: the server knows
    /// nothing of its view yet.
    pub fn session(&mut self, now: Instant) {
        for p in &mut self.peers {
            p.asked = None;
        }
        self.last_sent = None;
        if !self.peers.is_empty() && self.speaks() {
            self.changed.get_or_insert(now);
        }
    }

    /// Peer `user` heard on `session` at `now`: whether its video is shown.
    /// A new peer takes a free tile; a shown peer on a new session, or a
    /// newly shown one, changes what is to be sent.
    pub fn heard(&mut self, user: &[u8], session: u64, now: Instant) -> bool {
        let free = self
            .tiles
            .is_none_or(|t| self.peers.iter().filter(|p| p.shown).count() < t);
        let speaks = self.speaks();
        let i = match self.peers.iter().position(|p| &*p.user == user) {
            Some(i) => i,
            None => {
                self.peers.push(Peer {
                    user: user.into(),
                    session,
                    shown: false,
                    asked: None,
                });
                if self.layer.is_some() {
                    // Every peer it hears gets a preference.
                    self.changed.get_or_insert(now);
                }
                self.peers.len() - 1
            }
        };
        let p = &mut self.peers[i];
        if p.session != session && session != 0 {
            p.session = session;
            p.asked = None;
            if speaks {
                self.changed.get_or_insert(now);
            }
        }
        let p = &mut self.peers[i];
        if !p.shown && free {
            p.shown = true;
            if self.tiles.is_some() {
                self.changed.get_or_insert(now);
            }
        }
        self.peers[i].shown
    }

    /// Peer `user` left the meeting: its tile is free.
    pub fn left(&mut self, user: &[u8], now: Instant) {
        if let Some(i) = self.peers.iter().position(|p| &*p.user == user) {
            let p = self.peers.remove(i);
            if p.shown && self.tiles.is_some() {
                self.changed.get_or_insert(now);
            }
        }
    }

    /// Whether a shown peer's video packet of `layer` is wanted: layer 0
    /// always (an `RnD` server always forwards it), another only when it
    /// asks for no layer or for that one.
    pub fn wants_layer(&self, layer: u32) -> bool {
        layer == 0 || self.layer.is_none_or(|l| l == layer)
    }

    /// When an update first covered peer `user` on this session.
    pub fn asked(&self, user: &[u8]) -> Option<Instant> {
        self.peers
            .iter()
            .find(|p| &*p.user == user)
            .and_then(|p| p.asked)
    }

    /// When the next update is due, if one is.
    pub fn next_wake(&self) -> Option<Instant> {
        let changed = self.changed?;
        let after = changed + DEBOUNCE;
        Some(self.last_sent.map_or(after, |t| after.max(t + MIN_GAP)))
    }

    /// The update due at `now` from `user_id`, if one is.
    pub fn due(&mut self, user_id: &str, now: Instant) -> Option<Update> {
        if self.next_wake()? > now {
            return None;
        }
        self.changed = None;
        self.last_sent = Some(now);
        let known = self.peers.iter().filter(|p| p.session != 0);
        let mut u = Update::default();
        if self.tiles.is_some() {
            let shown: Vec<u64> = known
                .clone()
                .filter(|p| p.shown)
                .map(|p| p.session)
                .collect();
            u.viewport = Some(layers::viewport(user_id, &shown));
        }
        if let Some(layer) = self.layer {
            let entries: Vec<Preference> = known
                .filter(|p| p.shown)
                .map(|p| Preference {
                    session_id: p.session,
                    layer,
                    kind: media_kind::VIDEO,
                })
                .collect();
            u.preference = Some(layers::layer_preference(user_id, &entries));
        }
        for p in &mut self.peers {
            if p.session != 0 {
                p.asked.get_or_insert(now);
            }
        }
        Some(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::wire;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_first_peers_heard_take_the_tiles_and_keep_them() {
        let t0 = Instant::now();
        let mut v = View::new(Some(2), None);
        assert!(v.heard(b"a", 10, t0));
        assert!(v.heard(b"b", 11, t0));
        assert!(!v.heard(b"c", 9, t0), "the tiles are taken");
        assert!(v.heard(b"a", 10, t0));
        // One update after the debounce, with the shown sessions.
        assert_eq!(v.due("me", t0 + ms(100)), None);
        assert_eq!(v.next_wake(), Some(t0 + DEBOUNCE));
        let u = v.due("me", t0 + DEBOUNCE).unwrap();
        assert!(u.preference.is_none());
        let w = wire::parse(u.viewport.as_ref().unwrap()).unwrap();
        assert_eq!(layers::parse_viewport(w.data).unwrap(), vec![10, 11]);
        assert_eq!(v.asked(b"c"), Some(t0 + DEBOUNCE));
        assert_eq!(v.next_wake(), None);
        // A shown peer leaves: the next one heard takes its tile.
        v.left(b"a", t0 + ms(400));
        assert!(v.heard(b"c", 9, t0 + ms(410)));
        let u = v.due("me", t0 + ms(700)).unwrap();
        let w = wire::parse(u.viewport.as_ref().unwrap()).unwrap();
        assert_eq!(layers::parse_viewport(w.data).unwrap(), vec![11, 9]);
    }

    #[test]
    fn a_layer_is_asked_of_every_shown_peer_and_updates_keep_their_gap() {
        let t0 = Instant::now();
        let mut v = View::new(None, Some(0));
        v.heard(b"a", 5, t0);
        let u = v.due("me", t0 + DEBOUNCE).unwrap();
        assert!(u.viewport.is_none());
        let w = wire::parse(u.preference.as_ref().unwrap()).unwrap();
        let e = layers::parse_layer_preference(w.data).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].session_id, e[0].layer), (5, 0));
        assert!(v.wants_layer(0) && !v.wants_layer(1) && !v.wants_layer(2));
        // A new peer just after: sent no sooner than MIN_GAP after the last.
        v.heard(b"b", 6, t0 + DEBOUNCE);
        assert_eq!(v.next_wake(), Some(t0 + DEBOUNCE * 2));
        // A peer on a new session is a change too, and so is a new session
        // of the receiver itself.
        v.due("me", t0 + ms(900)).unwrap();
        v.heard(b"a", 7, t0 + ms(1000));
        assert!(v.next_wake().is_some());
        v.due("me", t0 + ms(1300)).unwrap();
        v.session(t0 + ms(2000));
        assert_eq!(v.asked(b"a"), None);
        assert_eq!(v.next_wake(), Some(t0 + ms(2300)));
    }

    #[test]
    fn auto_without_tiles_says_nothing() {
        let t0 = Instant::now();
        let mut v = View::new(None, None);
        assert!(v.heard(b"a", 5, t0));
        assert!(v.wants_layer(2));
        assert_eq!(v.next_wake(), None);
        v.session(t0);
        assert_eq!(v.due("me", t0 + ms(1000)), None);
    }
}
