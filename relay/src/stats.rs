//! What the relay received, per sending user.
//!
//! Each session counts into its own [`Tally`] behind its own mutex, which only
//! that session's task takes per packet (uncontended), so there is no shared
//! lock on the packet path. [`RelayStats`] is built on demand by merging the
//! tallies of live sessions with those of closed ones. Keys are the user id in
//! the received `PacketWrapper` (normally the session's own id).
//!
//! What injected faults (`fault`) did to deliveries is counted at the
//! receiving session ([`Injected`], atomics that senders' tasks add to only
//! when a fault strikes) and filed under that session's own user id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use synth_common::seq;
use synth_common::wire::{self, media_type, packet_type};

use super::fault::Track;

/// Most distinct wrapper user ids counted separately per session; the rest
/// are counted under the session's own id (a client may put anything there).
const MAX_USERS_PER_SESSION: usize = 16;

/// Counters for one sending user. Bytes are whole `PacketWrapper`s as received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserStats {
    /// The meeting of the (last) session that sent these packets.
    pub meeting: String,
    /// Sessions that counted packets under this user.
    pub sessions: u64,
    /// Audio packets (`MediaPacket` AUDIO).
    pub audio_packets: u64,
    /// Bytes of those packets.
    pub audio_bytes: u64,
    /// Video packets (`MediaPacket` VIDEO).
    pub video_packets: u64,
    /// Bytes of those packets.
    pub video_bytes: u64,
    /// Video packets with `frame_type "key"`.
    pub video_keyframes: u64,
    /// Heartbeats.
    pub heartbeats: u64,
    /// CONNECTION packets.
    pub connection_packets: u64,
    /// KEYFRAME_REQUEST packets (including rate-limited ones).
    pub keyframe_requests: u64,
    /// KEYFRAME_REQUEST packets dropped by the 2-per-second limit.
    pub keyframe_requests_limited: u64,
    /// RTT probes (echoed, never relayed).
    pub rtt: u64,
    /// Any other parseable packet.
    pub other: u64,
    /// Packets that were not a valid `PacketWrapper` (or `MediaPacket`): dropped.
    pub malformed: u64,
    /// Of all the above, how many came as datagrams rather than uni streams.
    pub datagrams: u64,
    /// Audio sequence accounting ([`synth_common::seq`]): received, missing
    /// (lost once the run is over), reordered, duplicate, first and last.
    pub audio_seq: seq::Counts,
    /// Video sequence accounting, as for audio.
    pub video_seq: seq::Counts,
    /// Deliveries of this user's packets to other participants (one per
    /// receiver; not those dropped by `--drop-rate`).
    pub relayed_to: u64,
    /// Deliveries dropped because the receiver's queue was full.
    pub relay_drops: u64,
    /// Audio packets of others that `--drop-rate` dropped instead of
    /// delivering them to this user (counted at the receiver: these packets
    /// are still counted as received from their senders).
    pub dropped_audio: u64,
    /// Video packets of others dropped for this user, as for audio.
    pub dropped_video: u64,
    /// Deliveries to this user of packets held back by a stall: those a
    /// sender's reader read in its catch-up, from the end of the stall until
    /// it first found none of its streams or datagrams holding a whole packet.
    pub stalled_deliveries: u64,
}

/// Deliveries dropped by `--drop-rate`, all receivers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InjectedDrops {
    /// Audio packets.
    pub audio: u64,
    /// Video packets.
    pub video: u64,
}

/// One stall of the relay's readers (`--stall-after`, `--stall-for`), as it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StallWindow {
    /// When the readers were told to stop (read just before), Unix ms.
    pub start_unix_ms: u64,
    /// When they were let go again (read just before), Unix ms; `None`
    /// while the stall lasts.
    pub end_unix_ms: Option<u64>,
}

impl StallWindow {
    /// How long it lasted, once over.
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.end_unix_ms?.saturating_sub(self.start_unix_ms))
    }
}

/// A snapshot of the whole relay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayStats {
    /// Sessions accepted since start.
    pub sessions_accepted: u64,
    /// Sessions refused since start.
    pub sessions_rejected: u64,
    /// Refusals by reason (`bad_path`, `bad_id`, `token_expired`, ...).
    pub rejections: BTreeMap<String, u64>,
    /// Sessions open now.
    pub sessions_active: u64,
    /// Participants per meeting now.
    pub meetings: BTreeMap<String, u64>,
    /// Deliveries dropped because a receiver's queue was full (all senders).
    pub relay_drops: u64,
    /// CONGESTION packets sent to senders whose packets were dropped.
    pub congestion_sent: u64,
    /// Deliveries dropped by `--drop-rate` (the sum of the users'
    /// `dropped_audio` and `dropped_video`).
    pub injected_drops: InjectedDrops,
    /// The stall, once begun (`--stall-after`); empty without one.
    pub stalls: Vec<StallWindow>,
    /// Per user: what it sent, keyed by the wrapper's user id, and what
    /// faults did to deliveries to it, under its session's user id.
    pub per_user: BTreeMap<String, UserStats>,
}

impl RelayStats {
    /// Audio and video sequence numbers missing, summed over users (lost,
    /// once the senders have stopped and their packets have drained).
    pub fn missing(&self) -> (u64, u64) {
        self.per_user.values().fold((0, 0), |(a, v), u| {
            (a + u.audio_seq.missing(), v + u.video_seq.missing())
        })
    }

    /// Sum of all users' counters (meeting left empty; the sequence
    /// accounting stays per user: see [`RelayStats::missing`]).
    pub fn total(&self) -> UserStats {
        let mut t = UserStats::default();
        for u in self.per_user.values() {
            t.add_counts(u);
        }
        t
    }
}

impl UserStats {
    /// Adds every counter of `o` (not the sequence bookkeeping).
    fn add_counts(&mut self, o: &UserStats) {
        self.sessions += o.sessions;
        self.audio_packets += o.audio_packets;
        self.audio_bytes += o.audio_bytes;
        self.video_packets += o.video_packets;
        self.video_bytes += o.video_bytes;
        self.video_keyframes += o.video_keyframes;
        self.heartbeats += o.heartbeats;
        self.connection_packets += o.connection_packets;
        self.keyframe_requests += o.keyframe_requests;
        self.keyframe_requests_limited += o.keyframe_requests_limited;
        self.rtt += o.rtt;
        self.other += o.other;
        self.malformed += o.malformed;
        self.datagrams += o.datagrams;
        self.relayed_to += o.relayed_to;
        self.relay_drops += o.relay_drops;
        self.dropped_audio += o.dropped_audio;
        self.dropped_video += o.dropped_video;
        self.stalled_deliveries += o.stalled_deliveries;
    }

    /// Merges a later session's counters for the same user into these: counts
    /// add up, and the sequence spans join (what lies between is missing).
    pub(crate) fn merge_later(&mut self, later: &UserStats) {
        self.add_counts(later);
        self.audio_seq.merge(&later.audio_seq);
        self.video_seq.merge(&later.video_seq);
        if !later.meeting.is_empty() {
            self.meeting.clone_from(&later.meeting);
        }
    }
}

/// What injected faults did to the deliveries to one session.
#[derive(Debug, Default)]
pub(crate) struct Injected {
    dropped_audio: AtomicU64,
    dropped_video: AtomicU64,
    stalled_deliveries: AtomicU64,
}

impl Injected {
    /// Counts a packet of `track` dropped instead of delivered.
    pub(crate) fn dropped(&self, track: Track) {
        match track {
            Track::Audio => &self.dropped_audio,
            Track::Video => &self.dropped_video,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a delivery of a packet held back by a stall.
    pub(crate) fn stalled(&self) {
        self.stalled_deliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds these counts to the receiving user's stats.
    pub(crate) fn add_to(&self, s: &mut UserStats) {
        s.dropped_audio += self.dropped_audio.load(Ordering::Relaxed);
        s.dropped_video += self.dropped_video.load(Ordering::Relaxed);
        s.stalled_deliveries += self.stalled_deliveries.load(Ordering::Relaxed);
    }
}

/// One user's counters inside one session.
#[derive(Debug, Default)]
struct UserTally {
    stats: UserStats,
    audio: seq::Tracker,
    video: seq::Tracker,
}

/// How a received packet is to be handled, decided while counting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Not a valid packet: dropped.
    Malformed,
    /// A MEDIA packet of type AUDIO: uni stream to peers (`--drop-rate` applies).
    Audio,
    /// A MEDIA packet of type VIDEO, as audio.
    Video,
    /// Any other MEDIA packet (heartbeat, screen, ...): uni stream to peers.
    Media,
    /// RTT probe: echo to the sender only.
    Rtt,
    /// KEYFRAME_REQUEST: to the room, rate-limited.
    KeyframeRequest,
    /// HEALTH (processed by the server, not relayed) or CONGESTION from a client: dropped.
    Dropped,
    /// Any other packet: datagram if small, else uni stream.
    Other,
}

/// The counters of one session, keyed by wrapper user id.
#[derive(Debug)]
pub(crate) struct Tally {
    meeting: String,
    /// Entry 0 is the session's own user id.
    users: Vec<(Box<[u8]>, UserTally)>,
}

impl Tally {
    pub(crate) fn new(user_id: &str, meeting: &str) -> Tally {
        Tally {
            meeting: meeting.to_owned(),
            users: vec![(user_id.as_bytes().into(), UserTally::default())],
        }
    }

    fn user(&mut self, id: &[u8]) -> &mut UserTally {
        let i = match self.users.iter().position(|(u, _)| **u == *id) {
            Some(i) => i,
            None if self.users.len() < MAX_USERS_PER_SESSION && !id.is_empty() => {
                self.users.push((id.into(), UserTally::default()));
                self.users.len() - 1
            }
            None => 0,
        };
        &mut self.users[i].1
    }

    /// Counts one received packet and tells how to handle it. `packet` is the
    /// parse of `len` bytes (`None` when it did not parse).
    pub(crate) fn count(
        &mut self,
        packet: Option<&wire::Packet<'_>>,
        len: usize,
        datagram: bool,
    ) -> Kind {
        let len = len as u64;
        let Some(p) = packet else {
            let u = &mut self.users[0].1.stats;
            u.malformed += 1;
            u.datagrams += datagram as u64;
            return Kind::Malformed;
        };
        let t = self.user(p.user_id);
        t.stats.datagrams += datagram as u64;
        let s = &mut t.stats;
        match p.packet_type {
            packet_type::MEDIA => {
                let Ok(m) = wire::parse_media(p.data) else {
                    s.malformed += 1;
                    return Kind::Malformed;
                };
                match m.media_type {
                    media_type::AUDIO => {
                        s.audio_packets += 1;
                        s.audio_bytes += len;
                        if let Some(seq) = m.sequence {
                            t.audio.see(seq);
                        }
                        Kind::Audio
                    }
                    media_type::VIDEO => {
                        s.video_packets += 1;
                        s.video_bytes += len;
                        s.video_keyframes += m.is_key() as u64;
                        if let Some(seq) = m.sequence {
                            t.video.see(seq);
                        }
                        Kind::Video
                    }
                    media_type::HEARTBEAT => {
                        s.heartbeats += 1;
                        Kind::Media
                    }
                    media_type::RTT => {
                        s.rtt += 1;
                        Kind::Rtt
                    }
                    media_type::KEYFRAME_REQUEST => {
                        s.keyframe_requests += 1;
                        Kind::KeyframeRequest
                    }
                    _ => {
                        s.other += 1;
                        Kind::Media
                    }
                }
            }
            packet_type::CONNECTION => {
                s.connection_packets += 1;
                Kind::Other
            }
            packet_type::CONGESTION | packet_type::HEALTH => {
                s.other += 1;
                Kind::Dropped
            }
            _ => {
                s.other += 1;
                Kind::Other
            }
        }
    }

    /// Counts a rate-limited key-frame request of `user_id`.
    pub(crate) fn keyframe_limited(&mut self, user_id: &[u8]) {
        self.user(user_id).stats.keyframe_requests_limited += 1;
    }

    /// Counts the deliveries of one packet of `user_id`.
    pub(crate) fn relayed(&mut self, user_id: &[u8], delivered: u64, dropped: u64) {
        let s = &mut self.user(user_id).stats;
        s.relayed_to += delivered;
        s.relay_drops += dropped;
    }

    /// This session's counters per user, ready to merge.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = (String, UserStats)> + '_ {
        self.users.iter().map(|(id, t)| {
            let mut s = t.stats.clone();
            s.meeting.clone_from(&self.meeting);
            s.sessions = 1;
            s.audio_seq = *t.audio.counts();
            s.video_seq = *t.video.counts();
            (String::from_utf8_lossy(id).into_owned(), s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::wire::MediaFields;

    /// Heartbeat flags of a participant sending audio and video, talking.
    const TALKING: wire::HeartbeatFlags = wire::HeartbeatFlags {
        audio: true,
        video: true,
        screen: false,
        speaking: true,
    };

    fn media(user: &str, media_type: i32, sequence: u64, key: bool) -> Vec<u8> {
        let (timestamp_ms, duration_ms) = (1.0, 33.0);
        let f = MediaFields {
            media_type,
            sequence,
            timestamp_ms,
            duration_ms,
            key,
        };
        wire::media_packet(user, &f, &[1, 2, 3])
    }

    fn count(t: &mut Tally, bytes: &[u8], dgram: bool) -> Kind {
        let p = wire::parse(bytes).ok();
        t.count(p.as_ref(), bytes.len(), dgram)
    }

    #[test]
    fn counts_by_kind_and_user() {
        let mut t = Tally::new("alice", "room");
        assert_eq!(
            count(&mut t, &media("alice", media_type::AUDIO, 7, true), false),
            Kind::Audio
        );
        let a2 = media("alice", media_type::AUDIO, 8, true);
        assert_eq!(count(&mut t, &a2, true), Kind::Audio);
        let v = media("alice", media_type::VIDEO, 1, true);
        assert_eq!(count(&mut t, &v, false), Kind::Video);
        assert_eq!(
            count(&mut t, &wire::heartbeat("alice", 1.0, TALKING), false),
            Kind::Media
        );
        assert_eq!(count(&mut t, &wire::rtt("alice", 1.0), true), Kind::Rtt);
        assert_eq!(
            count(&mut t, &wire::keyframe_request("alice", "bob", 1.0), false),
            Kind::KeyframeRequest
        );
        assert_eq!(
            count(&mut t, &wire::connection("alice", "room"), false),
            Kind::Other
        );
        assert_eq!(count(&mut t, &[0xff, 0xff], false), Kind::Malformed);
        // Another wrapper user id gets its own entry.
        count(&mut t, &media("mallory", media_type::AUDIO, 1, true), false);
        t.relayed(b"alice", 3, 1);

        let snap: BTreeMap<String, UserStats> = t.snapshot().collect();
        let a = &snap["alice"];
        assert_eq!(a.meeting, "room");
        assert_eq!((a.audio_packets, a.audio_bytes), (2, 2 * a2.len() as u64));
        assert_eq!((a.audio_seq.first, a.audio_seq.last), (Some(7), Some(8)));
        assert_eq!((a.audio_seq.received, a.audio_seq.missing()), (2, 0));
        assert_eq!((a.video_packets, a.video_keyframes), (1, 1));
        assert_eq!(a.video_bytes, v.len() as u64);
        assert_eq!((a.heartbeats, a.rtt, a.keyframe_requests), (1, 1, 1));
        assert_eq!((a.connection_packets, a.malformed, a.datagrams), (1, 1, 2));
        assert_eq!((a.relayed_to, a.relay_drops), (3, 1));
        assert_eq!(snap["mallory"].audio_packets, 1);
    }

    #[test]
    fn merge_joins_sessions() {
        let mut t1 = Tally::new("u", "m");
        for s in 0..5 {
            count(&mut t1, &media("u", media_type::AUDIO, s, true), false);
        }
        let mut t2 = Tally::new("u", "m");
        for s in 7..9 {
            count(&mut t2, &media("u", media_type::AUDIO, s, true), false);
        }
        let mut a = t1.snapshot().next().unwrap().1;
        a.merge_later(&t2.snapshot().next().unwrap().1);
        assert_eq!(a.sessions, 2);
        assert_eq!(a.audio_packets, 7);
        assert_eq!((a.audio_seq.received, a.audio_seq.missing()), (7, 2));
        assert_eq!((a.audio_seq.first, a.audio_seq.last), (Some(0), Some(8)));
    }
}
