//! Upstream `RnD`'s simulcast at the relay: what each receiver asked to be
//! spared (VIEWPORT, LAYER_PREFERENCE), the rule that withholds a media
//! packet from it, and the LAYER_HINT each publisher is owed
//! (`RnD:actix-api/src/actors/chat_server.rs`; the notes' spec,
//! `docs/src/relay.md` "Simulcast").
//!
//! - [`Wanted`] is one receiver's state: the publishers whose camera video
//!   it shows (its viewport; empty, everyone's) and, per publisher and
//!   kind, the one layer it wants (no entry, every layer). [`forward`] is
//!   the rule. A session starts with nothing wanted, which withholds nothing.
//! - [`HintState`] is a publisher's debounce of one kind's hint: a higher
//!   union of what receivers want goes out at once (restore), a lower one
//!   only if it is still lower [`SUPPRESS_DEBOUNCE`] after it was first seen
//!   (suppress); [`max_requested`] is that union.
//! - [`Session`] holds both for one session, shared with every sender of its
//!   room: a flag that the senders read per media packet, so that a receiver
//!   that asked for nothing costs them one relaxed load, and the two states
//!   behind mutexes.
//!
//! A leaf module: no clock, no I/O, nothing of the relay's other modules.

use std::cmp::Ordering as Cmp;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use synth_common::layers::{Hint, Preference, FULL_LADDER};
use synth_common::wire::media_kind;

/// Session ids a VIEWPORT may list; the rest are ignored (upstream's
/// `VIEWPORT_MAX_SESSION_IDS`).
pub(crate) const VIEWPORT_MAX_IDS: usize = 64;

/// Entries a LAYER_PREFERENCE may hold; the rest are ignored (upstream's
/// `LAYER_PREFERENCE_MAX_ENTRIES`).
pub(crate) const PREFERENCE_MAX_ENTRIES: usize = 64;

/// Highest layer a LAYER_PREFERENCE entry may ask for; an entry above it is
/// skipped (upstream's `LAYER_PREFERENCE_MAX_LAYER_ID`).
pub(crate) const MAX_LAYER: u32 = 7;

/// An update of either kind closer than this to the last one of that kind
/// that was accepted is dropped, not deferred (upstream's
/// `VIEWPORT_MIN_UPDATE_INTERVAL`, `LAYER_PREFERENCE_MIN_UPDATE_INTERVAL`).
pub(crate) const MIN_UPDATE_INTERVAL: Duration = Duration::from_millis(200);

/// How long a lower union must last before it is hinted (upstream's
/// `LAYER_HINT_SUPPRESS_DEBOUNCE_MS`).
pub(crate) const SUPPRESS_DEBOUNCE: Duration = Duration::from_millis(2000);

/// How long after a join or a leave a publisher's hints are recomputed
/// (upstream's `LAYER_HINT_RECOMPUTE_COALESCE_MS`, a window opened by the
/// first change and not extended by later ones).
pub(crate) const RECOMPUTE_COALESCE: Duration = Duration::from_millis(300);

/// Receivers a union looks at; with more, it is the full ladder (upstream's
/// `LAYER_HINT_MAX_RECEIVERS_SCANNED`).
pub(crate) const MAX_RECEIVERS_SCANNED: usize = 256;

/// The kinds hinted, each with its place in [`Hints::states`]: camera video
/// and screen share, never audio (upstream's `LAYER_HINT_MEDIA_KINDS`).
const HINT_KINDS: [i32; 2] = [media_kind::VIDEO, media_kind::SCREEN];

/// The kind a LAYER_PREFERENCE entry is kept under: audio and screen as
/// they are, anything else (0 included) as video (upstream's
/// `normalize_pref_media_kind`).
pub(crate) fn normalize(kind: i32) -> i32 {
    match kind {
        media_kind::AUDIO | media_kind::SCREEN => kind,
        _ => media_kind::VIDEO,
    }
}

/// What one receiver asked to be spared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The publisher sessions whose camera video it shows; empty: everyone's.
    pub(crate) viewport: HashSet<u64>,
    /// Per (publisher session, [`normalize`]d kind), the one layer it wants
    /// besides layer 0; a pair without an entry gets every layer.
    pub(crate) layers: HashMap<(u64, i32), u32>,
}

impl Wanted {
    /// The viewport of a VIEWPORT listing `ids`, sent by session `own`: the
    /// first [`VIEWPORT_MAX_IDS`] of them but `own` (a session never shows
    /// itself; a lone `[own]` would otherwise withhold everyone's video).
    pub(crate) fn viewport_of(ids: &[u64], own: u64) -> HashSet<u64> {
        ids.iter()
            .take(VIEWPORT_MAX_IDS)
            .copied()
            .filter(|&id| id != own)
            .collect()
    }

    /// The layers of a LAYER_PREFERENCE: its first
    /// [`PREFERENCE_MAX_ENTRIES`] entries but those above [`MAX_LAYER`]
    /// (skipped, not clamped: that pair then gets every layer); a later
    /// entry for the same pair wins.
    pub(crate) fn layers_of(entries: &[Preference]) -> HashMap<(u64, i32), u32> {
        entries
            .iter()
            .take(PREFERENCE_MAX_ENTRIES)
            .filter(|e| e.layer <= MAX_LAYER)
            .map(|e| ((e.session_id, normalize(e.kind)), e.layer))
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.viewport.is_empty() && self.layers.is_empty()
    }
}

/// What becomes of one media packet for one receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Sent.
    Forward,
    /// Withheld: camera video of a publisher outside the receiver's viewport.
    Viewport,
    /// Withheld: a layer of a publisher other than the one the receiver wants.
    Layer,
}

/// Whether a MEDIA packet whose wrapper says `kind` and `layer` can be
/// withheld at all: camera video (the viewport), or any medium's layer
/// other than 0. Unspecified and unknown kinds never are.
pub(crate) fn filterable(kind: i32, layer: u32) -> bool {
    match kind {
        media_kind::VIDEO => true,
        media_kind::AUDIO | media_kind::SCREEN => layer != 0,
        _ => false,
    }
}

/// The rule (upstream's `handle_msg`, in this order): camera video from
/// `src` is withheld from a receiver with a viewport that leaves `src` out;
/// then a packet of `kind` (VIDEO, AUDIO, SCREEN) and a layer other than 0
/// is withheld if the receiver wants one layer of (`src`, `kind`) and it is
/// another. Layer 0 always goes through; so does a pair without an entry,
/// and anything of another kind.
pub(crate) fn forward(w: &Wanted, src: u64, kind: i32, layer: u32) -> Verdict {
    if !filterable(kind, layer) {
        return Verdict::Forward;
    }
    if kind == media_kind::VIDEO && !w.viewport.is_empty() && !w.viewport.contains(&src) {
        return Verdict::Viewport;
    }
    if layer != 0
        && w.layers
            .get(&(src, kind))
            .is_some_and(|&want| want != layer)
    {
        return Verdict::Layer;
    }
    Verdict::Forward
}

/// Which way a hint goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Fewer layers than last hinted.
    Suppress,
    /// More layers than last hinted.
    Restore,
}

/// A publisher's hint of one kind (upstream's `LayerHintEmitState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HintState {
    /// What was last hinted; [`FULL_LADDER`] before any.
    pub(crate) last_emitted: u32,
    /// When a union lower than `last_emitted` was first seen, since when it
    /// has not been back at `last_emitted` or above.
    pub(crate) lower_since: Option<Instant>,
}

impl Default for HintState {
    fn default() -> HintState {
        HintState {
            last_emitted: FULL_LADDER,
            lower_since: None,
        }
    }
}

impl HintState {
    /// Whether to hint `union` now (upstream's `decide_layer_hint`): higher
    /// than last hinted, at once; equal, no, and a pending lowering is
    /// forgotten; lower, only once it has been lower for
    /// [`SUPPRESS_DEBOUNCE`] (the first sight of it starts the wait). A
    /// hint sent is recorded as the last one.
    pub(crate) fn decide(&mut self, union: u32, now: Instant) -> Option<Direction> {
        let direction = match union.cmp(&self.last_emitted) {
            Cmp::Greater => Direction::Restore,
            Cmp::Equal => {
                self.lower_since = None;
                return None;
            }
            Cmp::Less => match self.lower_since {
                Some(since) if now.duration_since(since) >= SUPPRESS_DEBOUNCE => {
                    Direction::Suppress
                }
                Some(_) => return None,
                None => {
                    self.lower_since = Some(now);
                    return None;
                }
            },
        };
        self.last_emitted = union;
        self.lower_since = None;
        Some(direction)
    }

    /// When a pending lowering is to be looked at again.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.lower_since.map(|t| t + SUPPRESS_DEBOUNCE)
    }
}

/// The union of what receivers want of one publisher's kind: the highest
/// of `wants` (each receiver's layer, [`FULL_LADDER`] for one without an
/// entry), the full ladder past [`MAX_RECEIVERS_SCANNED`] of them, and 0
/// with none at all: upstream's quirk, kept, so a publisher alone in its
/// room is hinted down to layer 0 (`compute_max_requested_layer`).
pub(crate) fn max_requested(wants: impl Iterator<Item = u32>) -> u32 {
    let mut union = 0;
    for (i, want) in wants.enumerate() {
        if i == MAX_RECEIVERS_SCANNED {
            return FULL_LADDER;
        }
        union = union.max(want);
        if union == FULL_LADDER {
            break;
        }
    }
    union
}

/// A publisher's hints, both kinds, and what it was sent.
#[derive(Debug, Default)]
struct Hints {
    /// Per kind of [`HINT_KINDS`].
    states: [HintState; 2],
    /// A recompute owed after a join or a leave.
    room_due: Option<Instant>,
    /// Hint entries sent, by direction.
    suppress: u64,
    restore: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section leaves its data whole; go on after a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One session's simulcast state, as the senders of its room see it.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// Set while `wanted` is not empty: all a sender reads otherwise.
    constrained: AtomicBool,
    wanted: Mutex<Wanted>,
    /// It sent a media packet with a layer other than 0: it is hinted.
    simulcast: AtomicBool,
    hints: Mutex<Hints>,
}

impl Session {
    /// What becomes of a packet of `kind` and `layer` from session `src`
    /// for this receiver.
    pub(crate) fn check(&self, src: u64, kind: i32, layer: u32) -> Verdict {
        if !self.constrained.load(Ordering::Relaxed) {
            return Verdict::Forward;
        }
        forward(&lock(&self.wanted), src, kind, layer)
    }

    /// A copy of what this receiver wants now.
    #[cfg(test)]
    pub(crate) fn wanted(&self) -> Wanted {
        lock(&self.wanted).clone()
    }

    /// Replaces the viewport (each VIEWPORT is the whole set).
    pub(crate) fn set_viewport(&self, viewport: HashSet<u64>) {
        let mut w = lock(&self.wanted);
        w.viewport = viewport;
        self.constrained.store(!w.is_empty(), Ordering::Relaxed);
    }

    /// Replaces the layers wanted (each LAYER_PREFERENCE is the whole map);
    /// returns the publishers whose entry of some kind was added, removed
    /// or changed (upstream's `changed_pref_sources`).
    pub(crate) fn set_layers(&self, layers: HashMap<(u64, i32), u32>) -> Vec<u64> {
        let mut w = lock(&self.wanted);
        let differ = |a: &HashMap<(u64, i32), u32>, b: &HashMap<(u64, i32), u32>| {
            a.iter()
                .filter(|(k, v)| b.get(k) != Some(v))
                .map(|((src, _), _)| *src)
                .collect::<HashSet<u64>>()
        };
        let mut changed = differ(&w.layers, &layers);
        changed.extend(differ(&layers, &w.layers));
        w.layers = layers;
        self.constrained.store(!w.is_empty(), Ordering::Relaxed);
        let mut changed: Vec<u64> = changed.into_iter().collect();
        changed.sort_unstable();
        changed
    }

    /// The layer this receiver wants of (`src`, `kind`); [`FULL_LADDER`]
    /// without an entry.
    fn wants(&self, src: u64, kind: i32) -> u32 {
        if !self.constrained.load(Ordering::Relaxed) {
            return FULL_LADDER;
        }
        let w = lock(&self.wanted);
        w.layers.get(&(src, kind)).copied().unwrap_or(FULL_LADDER)
    }

    /// Whether it has sent a media packet of a layer other than 0.
    pub(crate) fn is_simulcast(&self) -> bool {
        self.simulcast.load(Ordering::Relaxed)
    }

    /// Records that it sent a media packet of a layer other than 0.
    pub(crate) fn set_simulcast(&self) {
        self.simulcast.store(true, Ordering::Relaxed);
    }

    /// Asked by the publisher's own reader, at `now`: whether its hints
    /// are to be recomputed now. `room_changed`: someone joined or left
    /// since it last asked, which makes them due [`RECOMPUTE_COALESCE`]
    /// later (unless already due by then).
    pub(crate) fn hints_due(&self, now: Instant, room_changed: bool) -> bool {
        let mut h = lock(&self.hints);
        if room_changed && h.room_due.is_none() {
            h.room_due = Some(now + RECOMPUTE_COALESCE);
        }
        let [a, b] = h.states;
        [h.room_due, a.due(), b.due()]
            .into_iter()
            .flatten()
            .any(|due| due <= now)
    }

    /// Recomputes this publisher's hints (it being session `me`) from what
    /// `receivers` want (the room's other members, observers left out) at
    /// `now`, and hands the entries to send, if any, to `emit`, under the
    /// lock, so that hints reach the publisher in the order they were decided.
    pub(crate) fn recompute<'a, I>(
        &self,
        me: u64,
        receivers: I,
        now: Instant,
        emit: impl FnOnce(&[Hint]),
    ) where
        I: Iterator<Item = &'a Session> + Clone,
    {
        let mut h = lock(&self.hints);
        h.room_due = None;
        let mut out = Vec::new();
        for (i, kind) in HINT_KINDS.into_iter().enumerate() {
            let union = max_requested(receivers.clone().map(|r| r.wants(me, kind)));
            match h.states[i].decide(union, now) {
                Some(Direction::Suppress) => h.suppress += 1,
                Some(Direction::Restore) => h.restore += 1,
                None => continue,
            }
            out.push(Hint {
                kind,
                max_layer: union,
            });
        }
        if !out.is_empty() {
            emit(&out);
        }
    }

    /// Hint entries decided for it, each sent to its room: (suppress, restore).
    pub(crate) fn hints_sent(&self) -> (u64, u64) {
        let h = lock(&self.hints);
        (h.suppress, h.restore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media_kind::{AUDIO, SCREEN, VIDEO};

    fn wanted(viewport: &[u64], layers: &[(u64, i32, u32)]) -> Wanted {
        Wanted {
            viewport: viewport.iter().copied().collect(),
            layers: layers.iter().map(|&(s, k, l)| ((s, k), l)).collect(),
        }
    }

    #[test]
    fn the_viewport_withholds_camera_video_only() {
        let w = wanted(&[1], &[]);
        assert_eq!(forward(&w, 1, VIDEO, 0), Verdict::Forward);
        assert_eq!(forward(&w, 2, VIDEO, 0), Verdict::Viewport);
        assert_eq!(forward(&w, 2, VIDEO, 2), Verdict::Viewport);
        for kind in [AUDIO, SCREEN, 0, 9] {
            assert_eq!(forward(&w, 2, kind, 0), Verdict::Forward, "{kind}");
            assert_eq!(forward(&w, 2, kind, 1), Verdict::Forward, "{kind}");
        }
        // Empty: everyone.
        assert_eq!(forward(&Wanted::default(), 2, VIDEO, 1), Verdict::Forward);
    }

    #[test]
    fn a_preference_keeps_layer_0_and_the_one_wanted() {
        let w = wanted(&[], &[(1, VIDEO, 0), (2, VIDEO, 2), (3, AUDIO, 1)]);
        let got = |src, kind| -> Vec<u32> {
            (0..4)
                .filter(|&l| forward(&w, src, kind, l) == Verdict::Forward)
                .collect()
        };
        assert_eq!(got(1, VIDEO), [0]);
        assert_eq!(got(2, VIDEO), [0, 2]);
        // No entry: every layer; an entry of another kind does not count.
        assert_eq!(got(4, VIDEO), [0, 1, 2, 3]);
        assert_eq!(got(1, SCREEN), [0, 1, 2, 3]);
        assert_eq!(got(3, AUDIO), [0, 1]);
        assert_eq!(got(3, VIDEO), [0, 1, 2, 3]);
        // An unspecified kind is never withheld.
        assert_eq!(got(1, 0), [0, 1, 2, 3]);
        assert_eq!(forward(&w, 1, VIDEO, 1), Verdict::Layer);
        // The viewport comes first.
        let both = wanted(&[9], &[(1, VIDEO, 0)]);
        assert_eq!(forward(&both, 1, VIDEO, 1), Verdict::Viewport);
        assert!(!filterable(AUDIO, 0) && !filterable(0, 3) && filterable(VIDEO, 0));
    }

    #[test]
    fn updates_are_bounded_and_normalised() {
        let ids: Vec<u64> = (1..=70).collect();
        let v = Wanted::viewport_of(&ids, 5);
        assert_eq!(v.len(), 63, "the first 64, less its own");
        assert!(!v.contains(&5) && v.contains(&64) && !v.contains(&65));
        assert!(
            Wanted::viewport_of(&[5], 5).is_empty(),
            "[own] is no constraint"
        );

        let p = |session_id, layer, kind| Preference {
            session_id,
            layer,
            kind,
        };
        let l = Wanted::layers_of(&[
            p(1, 0, 0),
            p(2, 8, VIDEO),
            p(3, 7, 3),
            p(4, 1, 2),
            p(5, 1, 42),
        ]);
        let want: HashMap<_, _> = [
            ((1, VIDEO), 0),
            ((3, SCREEN), 7),
            ((4, AUDIO), 1),
            ((5, VIDEO), 1),
        ]
        .into();
        assert_eq!(l, want, "layer 8 skipped, kinds 0 and 42 read as video");
        let many: Vec<_> = (0..80).map(|s| p(s, 1, VIDEO)).collect();
        assert_eq!(Wanted::layers_of(&many).len(), PREFERENCE_MAX_ENTRIES);
    }

    #[test]
    fn a_session_reports_the_publishers_whose_entries_changed() {
        let s = Session::default();
        assert_eq!(s.check(1, VIDEO, 1), Verdict::Forward);
        let m = |e: &[(u64, i32, u32)]| wanted(&[], e).layers;
        assert_eq!(s.set_layers(m(&[(1, VIDEO, 0), (2, VIDEO, 1)])), [1, 2]);
        assert_eq!(s.check(1, VIDEO, 1), Verdict::Layer);
        assert_eq!(s.wants(2, VIDEO), 1);
        assert_eq!(s.wants(2, SCREEN), FULL_LADDER);
        // 1 unchanged, 2 changed kind, 3 added.
        let changed = s.set_layers(m(&[(1, VIDEO, 0), (2, SCREEN, 1), (3, AUDIO, 0)]));
        assert_eq!(changed, [2, 3]);
        assert_eq!(s.set_layers(HashMap::new()), [1, 2, 3]);
        assert_eq!(s.check(1, VIDEO, 1), Verdict::Forward);
        s.set_viewport([7].into());
        assert_eq!(s.check(1, VIDEO, 0), Verdict::Viewport);
        s.set_viewport(HashSet::new());
        assert!(
            !s.constrained.load(Ordering::Relaxed),
            "nothing wanted: the fast path"
        );
    }

    #[test]
    fn hints_restore_at_once_and_suppress_after_the_debounce() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut h = HintState::default();
        assert_eq!(h.decide(FULL_LADDER, t), None, "nothing to say");
        // Lower: wait, and keep the first sighting while it stays lower.
        assert_eq!(h.decide(0, t), None);
        assert_eq!(h.due(), Some(ms(2000)));
        assert_eq!(h.decide(1, ms(1000)), None);
        assert_eq!(h.due(), Some(ms(2000)));
        assert_eq!(h.decide(1, ms(2000)), Some(Direction::Suppress));
        assert_eq!((h.last_emitted, h.due()), (1, None));
        // Higher: at once, and a pending lowering is dropped with it.
        assert_eq!(h.decide(0, ms(2100)), None);
        assert_eq!(h.decide(2, ms(2200)), Some(Direction::Restore));
        assert_eq!((h.last_emitted, h.due()), (2, None));
        // Back at the level hinted: the wait starts again next time.
        assert_eq!(h.decide(0, ms(3000)), None);
        assert_eq!(h.decide(2, ms(4000)), None);
        assert_eq!(h.due(), None);
        assert_eq!(h.decide(0, ms(5500)), None);
        assert_eq!(h.decide(0, ms(7499)), None);
        assert_eq!(h.decide(0, ms(7500)), Some(Direction::Suppress));
        assert_eq!(h.decide(FULL_LADDER, ms(7600)), Some(Direction::Restore));
    }

    #[test]
    fn the_union_is_the_highest_want_and_0_for_nobody() {
        assert_eq!(max_requested([].into_iter()), 0, "upstream's quirk");
        assert_eq!(max_requested([0, 2, 1].into_iter()), 2);
        assert_eq!(max_requested([0, FULL_LADDER, 1].into_iter()), FULL_LADDER);
        let crowd = std::iter::repeat_n(0, MAX_RECEIVERS_SCANNED);
        assert_eq!(max_requested(crowd.clone()), 0);
        assert_eq!(max_requested(crowd.chain([0])), FULL_LADDER);
    }

    #[test]
    fn a_publisher_is_hinted_from_its_receivers() {
        let t = Instant::now();
        let (publisher, r1, r2) = (Session::default(), Session::default(), Session::default());
        let mut sent = Vec::new();
        let mut run = |at: u64, rs: &[&Session]| {
            let now = t + Duration::from_millis(at);
            let mut got = None;
            publisher.recompute(10, rs.iter().copied(), now, |h| got = Some(h.to_vec()));
            sent.push(got);
        };
        r1.set_layers([((10, VIDEO), 0), ((10, SCREEN), 0)].into());
        run(0, &[&r1, &r2]);
        r2.set_layers([((10, VIDEO), 1), ((10, SCREEN), 0)].into());
        run(10, &[&r1, &r2]);
        run(2010, &[&r1, &r2]);
        r1.set_layers(HashMap::new());
        run(2020, &[&r1, &r2]);
        let hint = |kind, max_layer| Hint { kind, max_layer };
        assert_eq!(
            sent,
            [
                None,
                None,
                Some(vec![hint(VIDEO, 1), hint(SCREEN, 0)]),
                Some(vec![hint(VIDEO, FULL_LADDER), hint(SCREEN, FULL_LADDER)]),
            ]
        );
        assert_eq!(publisher.hints_sent(), (2, 2));
        // Alone: the union is 0, hinted once the debounce is over.
        let alone = Session::default();
        assert!(!alone.hints_due(t, false));
        assert!(!alone.hints_due(t, true), "a join: due a moment later");
        assert!(alone.hints_due(t + RECOMPUTE_COALESCE, false));
        alone.recompute(1, [].into_iter(), t, |_| panic!("not yet"));
        assert!(!alone.hints_due(t + Duration::from_millis(1999), false));
        assert!(alone.hints_due(t + SUPPRESS_DEBOUNCE, false));
    }
}
