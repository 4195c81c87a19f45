//! Meetings (rooms) and their members, and the meeting packets the relay sends.
//!
//! A [`Room`] holds its members behind a mutex taken only when someone joins
//! or leaves; each join or leave also publishes an immutable snapshot of the
//! member list and bumps a version number. A sending session keeps a [`View`]:
//! per packet it compares one atomic version and walks its cached snapshot, so
//! fan-out takes no lock. Each member has a bounded queue ([`QUEUE_LEN`], as
//! upstream); a full queue drops the packet for that member only.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use synth_common::wire;
use tokio::sync::mpsc;

use super::layers;
use super::route::Type;
use super::stats::{Injected, SentCounts, Withheld};

/// Packets queued per receiving session before the relay drops (upstream's channel size).
pub(crate) const QUEUE_LEN: usize = 256;

/// Something to send to one session, and what it is (counted once sent).
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub(crate) ty: Type,
    pub(crate) carry: Carry,
    /// The wrapper's simulcast layer (video is counted by it once sent).
    pub(crate) layer: u32,
}

/// How a packet goes out.
#[derive(Debug, Clone)]
pub(crate) enum Carry {
    /// One uni stream carrying the first bytes then the second (a session-id
    /// field appended to a relayed wrapper, or empty).
    Stream(Bytes, Bytes),
    /// One datagram.
    Datagram(Bytes),
}

impl Outbound {
    /// A packet on a uni stream of its own.
    pub(crate) fn stream(ty: Type, body: Bytes) -> Outbound {
        Outbound {
            ty,
            carry: Carry::Stream(body, Bytes::new()),
            layer: 0,
        }
    }

    /// A packet with `suffix` appended, as a datagram if it is not media and
    /// small enough, else as a uni stream (upstream's `send_auto`).
    pub(crate) fn auto(ty: Type, body: Bytes, suffix: Bytes, media: bool) -> Outbound {
        let carry = if media || body.len() + suffix.len() > wire::DATAGRAM_MAX {
            Carry::Stream(body, suffix)
        } else if suffix.is_empty() {
            Carry::Datagram(body)
        } else {
            let mut v = Vec::with_capacity(body.len() + suffix.len());
            v.extend_from_slice(&body);
            v.extend_from_slice(&suffix);
            Carry::Datagram(v.into())
        };
        Outbound {
            ty,
            carry,
            layer: 0,
        }
    }

    /// The same, of simulcast layer `layer`.
    pub(crate) fn of_layer(self, layer: u32) -> Outbound {
        Outbound { layer, ..self }
    }
}

/// What became of a queued packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued.
    Queued,
    /// The receiver's queue was full: dropped.
    Full,
    /// The receiver is gone.
    Closed,
}

/// One session in a room, as the others see it.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) session_id: u64,
    /// Join order (the relay's count of sessions before this one).
    pub(crate) order: u64,
    pub(crate) user_id: String,
    pub(crate) display_name: String,
    pub(crate) observer: bool,
    pub(crate) tx: mpsc::Sender<Outbound>,
    /// What injected faults did to deliveries to this session.
    pub(crate) injected: Injected,
    /// What this session's writer sent, by type and transport.
    pub(crate) sent: SentCounts,
    /// What it asked not to receive (VIEWPORT, LAYER_PREFERENCE) and, as a
    /// publisher, its LAYER_HINTs.
    pub(crate) layers: layers::Session,
    /// What senders withheld from it for what it asked.
    pub(crate) withheld: Withheld,
}

impl Member {
    /// Who this member is, for PARTICIPANT_JOINED/LEFT.
    pub(crate) fn participant(&self) -> wire::Participant<'_> {
        wire::Participant {
            user_id: &self.user_id,
            session_id: self.session_id,
            display_name: &self.display_name,
        }
    }

    /// Queues `out` without waiting.
    pub(crate) fn offer(&self, out: Outbound) -> Offer {
        match self.tx.try_send(out) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

type Snapshot = Arc<[Arc<Member>]>;

/// A meeting: the sessions connected to it.
#[derive(Debug)]
pub(crate) struct Room {
    pub(crate) name: String,
    version: AtomicU64,
    members: Mutex<Snapshot>,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, Snapshot> {
        // A panic while holding this lock cannot leave the snapshot half-written.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The members now.
    pub(crate) fn members(&self) -> Snapshot {
        self.lock().clone()
    }

    /// Queues `out` for every member (but `except`); returns how many were full.
    pub(crate) fn broadcast(&self, out: &Outbound, except: Option<u64>) -> u64 {
        let mut full = 0;
        for m in self.members().iter() {
            if Some(m.session_id) != except && m.offer(out.clone()) == Offer::Full {
                full += 1;
            }
        }
        full
    }
}

/// A sender's cached view of its room.
#[derive(Debug)]
pub(crate) struct View {
    room: Arc<Room>,
    version: u64,
    members: Snapshot,
}

impl View {
    pub(crate) fn new(room: Arc<Room>) -> View {
        let (version, members) = {
            let g = room.lock();
            (room.version.load(Ordering::Acquire), g.clone())
        };
        View {
            room,
            version,
            members,
        }
    }

    pub(crate) fn room(&self) -> &Arc<Room> {
        &self.room
    }

    /// The version of the members [`View::members`] last gave: it changes
    /// with every join and leave.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The members, refreshed if anyone joined or left since the last call.
    pub(crate) fn members(&mut self) -> &[Arc<Member>] {
        if self.room.version.load(Ordering::Acquire) != self.version {
            let g = self.room.lock();
            self.version = self.room.version.load(Ordering::Acquire);
            self.members = g.clone();
        }
        &self.members
    }
}

/// A member gone from the room, waiting out the grace period. Like upstream,
/// it still counts as present for newcomers until PARTICIPANT_LEFT is due.
#[derive(Debug, Clone)]
struct Departure {
    member: Arc<Member>,
    was_active: bool,
}

/// All rooms, and the departures waiting out their grace period.
#[derive(Debug, Default)]
pub(crate) struct Rooms {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    departures: Mutex<HashMap<(String, String), Departure>>,
}

/// What a new member needs to know about the room it joined.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) room: Arc<Room>,
    /// The members already there (not observers, departures in their grace
    /// period included), to announce to the newcomer.
    pub(crate) existing: Vec<Arc<Member>>,
    /// The same user left this room within the grace period: a reconnection,
    /// announced to nobody.
    pub(crate) reconnection: bool,
}

impl Rooms {
    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn departures(&self) -> MutexGuard<'_, HashMap<(String, String), Departure>> {
        self.departures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `m` to room `name`, creating the room if needed.
    pub(crate) fn join(&self, name: &str, m: Arc<Member>) -> Joined {
        let (reconnection, departed) = {
            let mut deps = self.departures();
            let reconnection = deps.remove(&(name.to_owned(), m.user_id.clone())).is_some();
            let departed: Vec<Arc<Member>> = deps
                .iter()
                .filter(|((room, _), _)| room == name)
                .map(|(_, d)| d.member.clone())
                .collect();
            (reconnection, departed)
        };
        // Holding the map's lock while adding keeps a concurrent `leave` from
        // dropping the room between finding it and joining it.
        let mut rooms = self.rooms();
        let room = rooms
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Room {
                    name: name.to_owned(),
                    version: AtomicU64::new(0),
                    members: Mutex::new(Arc::new([])),
                })
            })
            .clone();
        let existing = {
            let mut g = room.lock();
            let mut existing: Vec<_> = g.iter().filter(|o| !o.observer).cloned().collect();
            existing.extend(departed);
            let mut v = g.to_vec();
            v.push(m);
            *g = v.into();
            room.version.fetch_add(1, Ordering::Release);
            existing
        };
        drop(rooms);
        Joined {
            room,
            existing,
            reconnection,
        }
    }

    /// Removes session `session_id` from `room`, dropping the room when empty.
    pub(crate) fn leave(&self, room: &Arc<Room>, session_id: u64) {
        let mut rooms = self.rooms();
        let empty = {
            let mut g = room.lock();
            let v: Vec<_> = g
                .iter()
                .filter(|m| m.session_id != session_id)
                .cloned()
                .collect();
            *g = v.into();
            room.version.fetch_add(1, Ordering::Release);
            g.is_empty()
        };
        if empty && rooms.get(&room.name).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&room.name);
        }
    }

    /// Records that member `m` left `room`: PARTICIPANT_LEFT is due after the
    /// grace period unless the same user joins again first.
    pub(crate) fn depart(&self, room: &str, m: Arc<Member>, was_active: bool) {
        self.departures().insert(
            (room.to_owned(), m.user_id.clone()),
            Departure {
                member: m,
                was_active,
            },
        );
    }

    /// Ends the grace period of a departure: the room to announce it to, if it
    /// is still due (not superseded by a reconnection) and the session had
    /// been active.
    pub(crate) fn departure_due(
        &self,
        room: &str,
        user: &str,
        session_id: u64,
    ) -> Option<Arc<Room>> {
        let key = (room.to_owned(), user.to_owned());
        let mut deps = self.departures();
        match deps.get(&key) {
            Some(d) if d.member.session_id == session_id => {
                let d = deps.remove(&key).expect("present");
                drop(deps);
                if d.was_active {
                    self.rooms().get(room).cloned()
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Members per room now.
    pub(crate) fn sizes(&self) -> BTreeMap<String, u64> {
        self.rooms()
            .iter()
            .map(|(k, r)| (k.clone(), r.members().len() as u64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(sid: u64, user: &str, observer: bool) -> (Arc<Member>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(2);
        let m = Member {
            session_id: sid,
            order: sid,
            user_id: user.into(),
            display_name: user.into(),
            observer,
            tx,
            injected: Injected::default(),
            sent: SentCounts::default(),
            layers: layers::Session::default(),
            withheld: Withheld::default(),
        };
        (Arc::new(m), rx)
    }

    #[test]
    fn join_leave_and_views() {
        let rooms = Rooms::default();
        let (a, _ra) = member(1, "a", false);
        let (o, _ro) = member(2, "obs", true);
        let (b, _rb) = member(3, "b", false);
        let j = rooms.join("r", a);
        assert!(j.existing.is_empty() && !j.reconnection);
        let mut view = View::new(j.room.clone());
        assert_eq!(view.members().len(), 1);
        rooms.join("r", o);
        let jb = rooms.join("r", b);
        // Observers are not announced to newcomers.
        assert_eq!(jb.existing.len(), 1);
        assert_eq!(view.members().len(), 3);
        assert_eq!(rooms.sizes()["r"], 3);

        rooms.leave(&j.room, 2);
        assert_eq!(view.members().len(), 2);
        rooms.leave(&j.room, 1);
        rooms.leave(&j.room, 3);
        assert!(rooms.sizes().is_empty());
    }

    #[test]
    fn departures_and_reconnection() {
        let rooms = Rooms::default();
        let (a, _ra) = member(1, "a", false);
        let (w, _rw) = member(9, "w", false);
        let j = rooms.join("r", a.clone());
        rooms.join("r", w.clone());
        rooms.leave(&j.room, 1);
        rooms.depart("r", a, true);
        // A newcomer meanwhile still hears of a (and will hear it left).
        let (n, _rn) = member(5, "n", false);
        let existing: Vec<u64> = rooms
            .join("r", n)
            .existing
            .iter()
            .map(|m| m.session_id)
            .collect();
        assert_eq!(existing, [9, 1]);
        // Reconnection within the grace period cancels the departure.
        let (a2, _ra2) = member(2, "a", false);
        assert!(rooms.join("r", a2.clone()).reconnection);
        assert!(rooms.departure_due("r", "a", 1).is_none());
        // A departure that runs out is due once, and only if it had been active.
        rooms.leave(&j.room, 2);
        rooms.depart("r", a2, true);
        assert!(rooms.departure_due("r", "a", 2).is_some());
        assert!(rooms.departure_due("r", "a", 2).is_none());
        rooms.depart("r", w, false);
        assert!(rooms.departure_due("r", "w", 9).is_none());
    }

    #[test]
    fn full_queue_is_reported_and_others_still_get_it() {
        let rooms = Rooms::default();
        let (a, _ra) = member(1, "a", false);
        let (b, mut rb) = member(2, "b", false);
        let j = rooms.join("r", a);
        rooms.join("r", b);
        let out = Outbound::auto(Type::Other, Bytes::from_static(b"x"), Bytes::new(), false);
        // Queue of 2: the third broadcast finds a's queue full (a never drains).
        assert_eq!(j.room.broadcast(&out, None), 0);
        assert_eq!(j.room.broadcast(&out, None), 0);
        rb.try_recv().unwrap();
        assert_eq!(j.room.broadcast(&out, None), 1);
    }

    #[test]
    fn outbound_auto() {
        let small = Bytes::from_static(&[1; 100]);
        let sfx = Bytes::from_static(&[0x20, 5]);
        let auto =
            |body: &Bytes, media| Outbound::auto(Type::Other, body.clone(), sfx.clone(), media);
        assert!(matches!(auto(&small, true).carry, Carry::Stream(..)));
        match auto(&small, false).carry {
            Carry::Datagram(d) => assert_eq!(d.len(), 102),
            o => panic!("{o:?}"),
        }
        let big = Bytes::from(vec![0u8; wire::DATAGRAM_MAX]);
        assert!(matches!(auto(&big, false).carry, Carry::Stream(..)));
    }
}
