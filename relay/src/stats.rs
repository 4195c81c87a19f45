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
//!
//! Besides counters, each user has two bounded logs: its sessions
//! ([`SessionRecord`], filed under the session's own user id) and the
//! changes of its heartbeat flags ([`FlagChange`]). Audio, video and screen
//! packets are also counted by the state the sender's last heartbeat
//! announced, and the time between its heartbeats is summed per state
//! (`Heartbeats`).
//!
//! For cadence checks every packet is also counted by type and transport
//! ([`ByType`]): received, under the wrapper's user id with the time of the
//! first and the last; and sent, under the receiving session's own user id,
//! counted by its writer as it hands a packet to QUIC ([`SentCounts`]).
//!
//! Simulcast (upstream RnD, `layers`): video is counted per layer both ways
//! (`video_layers`, `sent_video_layers`), and sequence numbers are tracked
//! on layer 0 only, each layer having numbers of its own. What the relay
//! withheld from a receiver is counted at that receiver ([`Withheld`]), and
//! the VIEWPORT and LAYER_PREFERENCE updates under their sender.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use synth_common::layers::slot as layer_slot;
use synth_common::seq;
use synth_common::wire::{self, media_type, packet_type, HeartbeatFlags};

use super::layers::Verdict;
use super::route::{Kind, Track, Type};

/// Most distinct wrapper user ids counted separately per session; the rest
/// are counted under the session's own id (a client may put anything there).
const MAX_USERS_PER_SESSION: usize = 16;

/// Sessions kept in a user's `session_log`; later ones are only counted.
pub const SESSION_LOG_MAX: usize = 1_000;

/// Heartbeat flag changes kept per user (and per session, over all the
/// user ids it sends under); later ones are only counted.
pub const FLAG_CHANGES_MAX: usize = 10_000;

/// Simulcast layers video is counted by (`video_layers`,
/// `sent_video_layers`): 0, 1, and 2 or above.
pub const VIDEO_LAYERS: usize = synth_common::layers::COUNTED_LAYERS;

/// How a session ended, as far as the relay can tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionEnd {
    /// Still open; or open until the relay itself shut down (then
    /// `left_unix_ms` is set).
    #[default]
    Running,
    /// The client closed it: WebTransport's close capsule, or a QUIC
    /// CONNECTION_CLOSE (as a dropped session sends).
    Closed,
    /// It went away without a close: QUIC's idle timeout, a reset, a
    /// transport error, or 30 s without a packet.
    Lost,
}

/// One session of a user, from accept to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// The id SESSION_ASSIGNED gave it.
    pub session_id: u64,
    /// Its meeting.
    pub meeting: String,
    /// Admitted with an observer token.
    pub observer: bool,
    /// When the relay accepted it, Unix ms.
    pub accepted_unix_ms: u64,
    /// When it joined the meeting: its first packet that was not an RTT
    /// probe (activation, as upstream); `None` if it sent none.
    pub joined_unix_ms: Option<u64>,
    /// When it ended, Unix ms; `None` while open.
    pub left_unix_ms: Option<u64>,
    /// How it ended.
    pub end: SessionEnd,
}

/// A heartbeat whose flags differ from the previous heartbeat of the same
/// user in the same session (or the first one of a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlagChange {
    /// When the relay read it, Unix ms.
    pub unix_ms: u64,
    /// `audio_enabled`.
    pub audio: bool,
    /// `video_enabled`.
    pub video: bool,
    /// `screen_enabled`.
    pub screen: bool,
    /// `is_speaking`.
    pub speaking: bool,
}

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
    /// Video packets by the simulcast layer of their wrapper
    /// (`simulcast_layer_id`, upstream RnD; absent is 0): layers 0, 1, and
    /// 2 or above. Without simulcast all are layer 0.
    pub video_layers: [u64; VIDEO_LAYERS],
    /// Screen-share packets (`MediaPacket` SCREEN).
    pub screen_packets: u64,
    /// Bytes of those packets.
    pub screen_bytes: u64,
    /// Screen-share packets with `frame_type "key"`.
    pub screen_keyframes: u64,
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
    /// DIAGNOSTICS packets (relayed to the room, as datagrams when small).
    pub diagnostics: u64,
    /// HEALTH packets (never relayed).
    pub health: u64,
    /// Any other parseable packet: other packet types (a client's
    /// CONGESTION, MEETING, ...) and other media types.
    pub other: u64,
    /// Packets that were not a valid `PacketWrapper`, and MEDIA wrappers
    /// whose `MediaPacket` does not parse (encrypted media): forwarded to
    /// the room unchanged all the same, as upstream does (see
    /// `received_by_type.unparsed` and `.media_unparsed`). Also streams
    /// longer than the limit, which are not read, and on the framed wire
    /// streams whose framing broke (`malformed_streams`).
    pub malformed: u64,
    /// Framed wire (`--wire framed`): uni streams of this user's sessions
    /// closed because their framing broke: a frame length of 0 or over
    /// 4,000,000 (what a one-packet-per-stream client's packet reads as), or
    /// a stream ending inside a frame. Each is also one `malformed` packet
    /// and one `received_by_type.unparsed.stream`; what the stream carried
    /// after the break is not read.
    pub malformed_streams: u64,
    /// Of all the above, how many came as datagrams rather than uni streams.
    pub datagrams: u64,
    /// Every packet received under this user id, by type and transport
    /// (the counts above, split by how they came; `ping` keep-alives and
    /// datagrams dropped at the mailbox are not in it).
    pub received_by_type: ByType,
    /// When the relay read the first of those packets, Unix ms (`None`
    /// if none).
    pub first_packet_unix_ms: Option<u64>,
    /// When it read the last of them, Unix ms.
    pub last_packet_unix_ms: Option<u64>,
    /// Inbound datagrams of this user's sessions dropped because the
    /// session's mailbox (`--mailbox`) was full: never read, so in no
    /// other count (upstream drops them silently; no CONGESTION).
    pub mailbox_drops: u64,
    /// What the relay sent to this user's sessions, by type and transport,
    /// as each session's writer handed it to QUIC (a datagram the path
    /// could not carry counts as the stream it went on).
    pub sent_by_type: ByType,
    /// Of `sent_by_type.video`, how many were of each simulcast layer (as
    /// `video_layers`).
    pub sent_video_layers: [u64; VIDEO_LAYERS],
    /// Camera video of others withheld from this user's sessions because
    /// their VIEWPORT left the sender out: neither sent nor dropped.
    pub viewport_filtered: u64,
    /// Media of others withheld from this user's sessions because their
    /// LAYER_PREFERENCE wanted another layer of that sender: neither sent
    /// nor dropped.
    pub layer_filtered: u64,
    /// VIEWPORT and LAYER_PREFERENCE packets of this user, by what became
    /// of them (none is relayed).
    pub view_updates: ViewUpdates,
    /// LAYER_HINT entries sent to this user's sessions as a publisher, by
    /// direction (each is also in `sent_by_type.layer_hint`, one packet
    /// holding one or two entries, which the rest of the room is sent too).
    pub hints_sent: HintsSent,
    /// Audio sequence accounting ([`synth_common::seq`]): received, missing
    /// (lost once the run is over), reordered, duplicate, first and last;
    /// of simulcast layer 0 only (each layer numbers its packets itself).
    pub audio_seq: seq::Counts,
    /// Video sequence accounting, as for audio (layer 0 only:
    /// `video_seq.received` is `video_layers[0]`).
    pub video_seq: seq::Counts,
    /// Screen-share sequence accounting, as for audio.
    pub screen_seq: seq::Counts,
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
    /// Packets of an observer session that were not relayed because it is
    /// an observer (as upstream: everything but RTT probes, HEALTH and
    /// CONGESTION, which are echoed or dropped for everyone).
    pub observer_media_dropped: u64,
    /// Heartbeats with `audio_enabled` true.
    pub heartbeats_audio: u64,
    /// Heartbeats with `video_enabled` true.
    pub heartbeats_video: u64,
    /// Heartbeats with `screen_enabled` true.
    pub heartbeats_screen: u64,
    /// Heartbeats with `is_speaking` true.
    pub heartbeats_speaking: u64,
    /// Audio packets after a heartbeat (of the same user, same session)
    /// with `audio_enabled` and `is_speaking` true.
    pub audio_while_speaking: u64,
    /// Audio packets after a heartbeat with `audio_enabled` true and
    /// `is_speaking` false.
    pub audio_while_not_speaking: u64,
    /// Audio packets after a heartbeat with `audio_enabled` false (muted).
    pub audio_while_muted: u64,
    /// Audio packets before the session's first heartbeat of this user.
    pub audio_before_heartbeat: u64,
    /// Time from each heartbeat to the next of the same session, summed
    /// by the state the first of the two announced: speaking.
    pub speaking_ms: u64,
    /// As `speaking_ms`, not speaking (audio on).
    pub not_speaking_ms: u64,
    /// As `speaking_ms`, muted (`audio_enabled` false).
    pub muted_ms: u64,
    /// Video packets after a heartbeat with `video_enabled` false.
    pub video_while_camera_off: u64,
    /// Screen-share packets after a heartbeat with `screen_enabled` false.
    pub screen_while_not_sharing: u64,
    /// Each session's first heartbeat, then each one whose flags changed;
    /// the first [`FLAG_CHANGES_MAX`].
    pub flag_changes: Vec<FlagChange>,
    /// Flag changes beyond those kept.
    pub flag_changes_dropped: u64,
    /// The sessions admitted under this user id, oldest first; the first
    /// [`SESSION_LOG_MAX`].
    pub session_log: Vec<SessionRecord>,
    /// Sessions beyond those kept.
    pub session_log_dropped: u64,
}

/// What became of a user's VIEWPORT and LAYER_PREFERENCE packets (upstream
/// RnD): each is one of these, and none is relayed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ViewUpdates {
    /// Applied: the session's viewport or layer preferences are now these.
    pub accepted: u64,
    /// Dropped because the last accepted one of the same type was less
    /// than 200 ms before.
    pub rate_limited: u64,
    /// Dropped because their content does not parse (the state is kept).
    pub malformed: u64,
}

impl ViewUpdates {
    pub(crate) fn add(&mut self, o: &ViewUpdates) {
        self.accepted += o.accepted;
        self.rate_limited += o.rate_limited;
        self.malformed += o.malformed;
    }
}

/// LAYER_HINT entries the relay decided for publishers (each sent to the
/// publisher's room), by direction (upstream RnD's
/// `relay_layer_hint_emitted_total{direction}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HintsSent {
    /// Fewer layers than the last hint of that kind (after 2 s of it).
    pub suppress: u64,
    /// More layers than the last hint of that kind (at once).
    pub restore: u64,
}

impl HintsSent {
    pub(crate) fn add(&mut self, o: &HintsSent) {
        self.suppress += o.suppress;
        self.restore += o.restore;
    }
}

/// Packets of one type by how they travelled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Transports {
    /// On uni streams.
    pub stream: u64,
    /// As datagrams.
    pub datagram: u64,
}

impl Transports {
    /// Both together.
    pub fn total(&self) -> u64 {
        self.stream + self.datagram
    }
}

/// Packets by type, each by transport: the wrapper's `packet_type`, and a
/// MEDIA wrapper's `media_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByType {
    /// CONNECTION (4).
    pub connection: Transports,
    /// MEDIA, AUDIO.
    pub audio: Transports,
    /// MEDIA, VIDEO.
    pub video: Transports,
    /// MEDIA, SCREEN.
    pub screen: Transports,
    /// MEDIA, HEARTBEAT.
    pub heartbeat: Transports,
    /// MEDIA, RTT (probes received; echoes sent).
    pub rtt: Transports,
    /// MEDIA, KEYFRAME_REQUEST.
    pub keyframe_request: Transports,
    /// MEDIA of any other media type.
    pub media_other: Transports,
    /// MEDIA whose `MediaPacket` does not parse (encrypted media).
    pub media_unparsed: Transports,
    /// DIAGNOSTICS (5).
    pub diagnostics: Transports,
    /// HEALTH (6).
    pub health: Transports,
    /// MEETING (7): PARTICIPANT_JOINED/LEFT, MEETING_STARTED.
    pub meeting: Transports,
    /// SESSION_ASSIGNED (8).
    pub session_assigned: Transports,
    /// CONGESTION (9).
    pub congestion: Transports,
    /// VIEWPORT (11, upstream RnD): received, never relayed.
    pub viewport: Transports,
    /// LAYER_PREFERENCE (12, upstream RnD): received, never relayed.
    pub layer_preference: Transports,
    /// LAYER_HINT (13, upstream RnD): sent by the relay to publishers; a
    /// client's is dropped.
    pub layer_hint: Transports,
    /// Any other packet type.
    pub other: Transports,
    /// Not a `PacketWrapper`, or a stream longer than the limit.
    pub unparsed: Transports,
}

impl ByType {
    /// The counts of `ty`.
    pub(crate) fn get_mut(&mut self, ty: Type) -> &mut Transports {
        match ty {
            Type::Connection => &mut self.connection,
            Type::Audio => &mut self.audio,
            Type::Video => &mut self.video,
            Type::Screen => &mut self.screen,
            Type::Heartbeat => &mut self.heartbeat,
            Type::Rtt => &mut self.rtt,
            Type::KeyframeRequest => &mut self.keyframe_request,
            Type::MediaOther => &mut self.media_other,
            Type::MediaUnparsed => &mut self.media_unparsed,
            Type::Diagnostics => &mut self.diagnostics,
            Type::Health => &mut self.health,
            Type::Meeting => &mut self.meeting,
            Type::SessionAssigned => &mut self.session_assigned,
            Type::Congestion => &mut self.congestion,
            Type::Viewport => &mut self.viewport,
            Type::LayerPreference => &mut self.layer_preference,
            Type::LayerHint => &mut self.layer_hint,
            Type::Other => &mut self.other,
            Type::Unparsed => &mut self.unparsed,
        }
    }

    /// Counts one packet of `ty`.
    fn count(&mut self, ty: Type, datagram: bool) {
        let t = self.get_mut(ty);
        if datagram {
            t.datagram += 1;
        } else {
            t.stream += 1;
        }
    }

    /// Adds every count of `o`.
    fn add(&mut self, o: &ByType) {
        let mut o = *o;
        for ty in Type::ALL {
            let (mine, theirs) = (self.get_mut(ty), o.get_mut(ty));
            mine.stream += theirs.stream;
            mine.datagram += theirs.datagram;
        }
    }

    /// All packets, both transports.
    pub fn total(&self) -> Transports {
        let mut me = *self;
        Type::ALL.iter().fold(Transports::default(), |acc, &ty| {
            let t = me.get_mut(ty);
            Transports {
                stream: acc.stream + t.stream,
                datagram: acc.datagram + t.datagram,
            }
        })
    }
}

/// What a session's writer sent, by type and transport, and its video by
/// layer: atomics, written by that writer only and read by the stats.
#[derive(Debug)]
pub(crate) struct SentCounts {
    by_type: [AtomicU64; 2 * Type::COUNT],
    video_layers: [AtomicU64; VIDEO_LAYERS],
}

impl Default for SentCounts {
    fn default() -> SentCounts {
        SentCounts {
            by_type: std::array::from_fn(|_| AtomicU64::new(0)),
            video_layers: Default::default(),
        }
    }
}

impl SentCounts {
    /// Counts one packet of `ty` (of simulcast layer `layer`) handed to QUIC.
    pub(crate) fn count(&self, ty: Type, datagram: bool, layer: u32) {
        self.by_type[2 * ty as usize + datagram as usize].fetch_add(1, Ordering::Relaxed);
        if ty == Type::Video {
            self.video_layers[layer_slot(layer)].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds these counts to the receiving user's stats.
    pub(crate) fn add_to(&self, s: &mut UserStats) {
        for ty in Type::ALL {
            let t = s.sent_by_type.get_mut(ty);
            t.stream += self.by_type[2 * ty as usize].load(Ordering::Relaxed);
            t.datagram += self.by_type[2 * ty as usize + 1].load(Ordering::Relaxed);
        }
        for (sum, n) in s.sent_video_layers.iter_mut().zip(&self.video_layers) {
            *sum += n.load(Ordering::Relaxed);
        }
    }
}

/// Media withheld from one receiving session by what it asked for
/// (`layers::Verdict`): atomics, added to by senders' tasks.
#[derive(Debug, Default)]
pub(crate) struct Withheld {
    viewport: AtomicU64,
    layer: AtomicU64,
}

impl Withheld {
    /// Counts a packet withheld for `why` (a `Forward` is not counted).
    pub(crate) fn count(&self, why: Verdict) {
        match why {
            Verdict::Forward => return,
            Verdict::Viewport => &self.viewport,
            Verdict::Layer => &self.layer,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Adds these counts to the receiving user's stats.
    pub(crate) fn add_to(&self, s: &mut UserStats) {
        s.viewport_filtered += self.viewport.load(Ordering::Relaxed);
        s.layer_filtered += self.layer.load(Ordering::Relaxed);
    }
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
    /// CONGESTION notices: each time 5 drops of one sender's packets at
    /// one receiver made the relay send CONGESTION to the whole meeting
    /// (each delivery is in that receiver's `sent_by_type.congestion`).
    pub congestion_sent: u64,
    /// Inbound datagrams dropped at full mailboxes (the sum of the users'
    /// `mailbox_drops`).
    pub mailbox_drops: u64,
    /// Uni streams closed because their framing broke, on the framed wire
    /// (the sum of the users' `malformed_streams`).
    pub malformed_streams: u64,
    /// Deliveries dropped by `--drop-rate` (the sum of the users'
    /// `dropped_audio` and `dropped_video`).
    pub injected_drops: InjectedDrops,
    /// Camera video withheld from receivers by their VIEWPORT (the sum of
    /// the users' `viewport_filtered`).
    pub viewport_filtered: u64,
    /// Media withheld from receivers by their LAYER_PREFERENCE (the sum
    /// of the users' `layer_filtered`).
    pub layer_filtered: u64,
    /// VIEWPORT and LAYER_PREFERENCE packets by what became of them (the
    /// sum of the users' `view_updates`).
    pub view_updates: ViewUpdates,
    /// LAYER_HINT entries sent to publishers by direction (the sum of the
    /// users' `hints_sent`).
    pub hints_sent: HintsSent,
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
        for (a, b) in self.video_layers.iter_mut().zip(&o.video_layers) {
            *a += b;
        }
        self.screen_packets += o.screen_packets;
        self.screen_bytes += o.screen_bytes;
        self.screen_keyframes += o.screen_keyframes;
        self.heartbeats += o.heartbeats;
        self.connection_packets += o.connection_packets;
        self.keyframe_requests += o.keyframe_requests;
        self.keyframe_requests_limited += o.keyframe_requests_limited;
        self.rtt += o.rtt;
        self.diagnostics += o.diagnostics;
        self.health += o.health;
        self.other += o.other;
        self.malformed += o.malformed;
        self.malformed_streams += o.malformed_streams;
        self.datagrams += o.datagrams;
        self.received_by_type.add(&o.received_by_type);
        self.first_packet_unix_ms = earliest(self.first_packet_unix_ms, o.first_packet_unix_ms);
        self.last_packet_unix_ms = self.last_packet_unix_ms.max(o.last_packet_unix_ms);
        self.mailbox_drops += o.mailbox_drops;
        self.sent_by_type.add(&o.sent_by_type);
        for (a, b) in self.sent_video_layers.iter_mut().zip(&o.sent_video_layers) {
            *a += b;
        }
        self.viewport_filtered += o.viewport_filtered;
        self.layer_filtered += o.layer_filtered;
        self.view_updates.add(&o.view_updates);
        self.hints_sent.add(&o.hints_sent);
        self.relayed_to += o.relayed_to;
        self.relay_drops += o.relay_drops;
        self.dropped_audio += o.dropped_audio;
        self.dropped_video += o.dropped_video;
        self.stalled_deliveries += o.stalled_deliveries;
        self.observer_media_dropped += o.observer_media_dropped;
        self.heartbeats_audio += o.heartbeats_audio;
        self.heartbeats_video += o.heartbeats_video;
        self.heartbeats_screen += o.heartbeats_screen;
        self.heartbeats_speaking += o.heartbeats_speaking;
        self.audio_while_speaking += o.audio_while_speaking;
        self.audio_while_not_speaking += o.audio_while_not_speaking;
        self.audio_while_muted += o.audio_while_muted;
        self.audio_before_heartbeat += o.audio_before_heartbeat;
        self.speaking_ms += o.speaking_ms;
        self.not_speaking_ms += o.not_speaking_ms;
        self.muted_ms += o.muted_ms;
        self.video_while_camera_off += o.video_while_camera_off;
        self.screen_while_not_sharing += o.screen_while_not_sharing;
        self.flag_changes_dropped += o.flag_changes_dropped;
        self.session_log_dropped += o.session_log_dropped;
    }

    /// Merges a later session's counters for the same user into these: counts
    /// add up, the sequence spans join (what lies between is missing), and
    /// the logs are appended up to their bounds.
    pub(crate) fn merge_later(&mut self, later: &UserStats) {
        self.add_counts(later);
        self.audio_seq.merge(&later.audio_seq);
        self.video_seq.merge(&later.video_seq);
        self.screen_seq.merge(&later.screen_seq);
        if !later.meeting.is_empty() {
            self.meeting.clone_from(&later.meeting);
        }
        self.flag_changes_dropped += append_bounded(
            &mut self.flag_changes,
            &later.flag_changes,
            FLAG_CHANGES_MAX,
        );
        if !later.session_log.is_empty() {
            self.session_log_dropped +=
                append_bounded(&mut self.session_log, &later.session_log, SESSION_LOG_MAX);
            // Sessions are filed as they end, not as they start.
            self.session_log
                .sort_by_key(|r| (r.accepted_unix_ms, r.session_id));
        }
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Appends what fits of `more` to `log` (at most `max` in all); returns how
/// many did not fit.
fn append_bounded<T: Clone>(log: &mut Vec<T>, more: &[T], max: usize) -> u64 {
    let room = max.saturating_sub(log.len()).min(more.len());
    log.extend_from_slice(&more[..room]);
    (more.len() - room) as u64
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
    screen: seq::Tracker,
    heartbeats: Heartbeats,
}

impl UserTally {
    /// Counts a parsed packet by what it is (all but the transport and the
    /// time, which [`Tally::count`] adds), and tells how to route it.
    /// `flag_budget` is what the session may still log of flag changes.
    fn classify(
        &mut self,
        p: &wire::Packet<'_>,
        len: u64,
        unix_ms: u64,
        flag_budget: &mut usize,
    ) -> (Kind, Type) {
        let s = &mut self.stats;
        match p.packet_type {
            packet_type::MEDIA => {
                let Ok(m) = wire::parse_media(p.data) else {
                    s.malformed += 1;
                    return (Kind::OpaqueMedia, Type::MediaUnparsed);
                };
                match m.media_type {
                    media_type::AUDIO => {
                        s.audio_packets += 1;
                        s.audio_bytes += len;
                        self.heartbeats.audio(s);
                        if let (Some(seq), 0) = (m.sequence, p.layer) {
                            self.audio.see(seq);
                        }
                        (Kind::Audio, Type::Audio)
                    }
                    media_type::VIDEO => {
                        s.video_packets += 1;
                        s.video_bytes += len;
                        s.video_keyframes += m.is_key() as u64;
                        s.video_layers[layer_slot(p.layer)] += 1;
                        self.heartbeats.video(s);
                        if let (Some(seq), 0) = (m.sequence, p.layer) {
                            self.video.see(seq);
                        }
                        (Kind::Video, Type::Video)
                    }
                    media_type::SCREEN => {
                        s.screen_packets += 1;
                        s.screen_bytes += len;
                        s.screen_keyframes += m.is_key() as u64;
                        self.heartbeats.screen(s);
                        if let (Some(seq), 0) = (m.sequence, p.layer) {
                            self.screen.see(seq);
                        }
                        (Kind::Screen, Type::Screen)
                    }
                    media_type::HEARTBEAT => {
                        s.heartbeats += 1;
                        // A heartbeat without heartbeat_metadata says nothing of the state.
                        if let Some(flags) = m.heartbeat {
                            if self.heartbeats.heartbeat(s, unix_ms, flags) {
                                if *flag_budget > 0 && s.flag_changes.len() < FLAG_CHANGES_MAX {
                                    *flag_budget -= 1;
                                    s.flag_changes.push(FlagChange {
                                        unix_ms,
                                        audio: flags.audio,
                                        video: flags.video,
                                        screen: flags.screen,
                                        speaking: flags.speaking,
                                    });
                                } else {
                                    s.flag_changes_dropped += 1;
                                }
                            }
                        }
                        (Kind::Media, Type::Heartbeat)
                    }
                    media_type::RTT => {
                        s.rtt += 1;
                        (Kind::Rtt, Type::Rtt)
                    }
                    media_type::KEYFRAME_REQUEST => {
                        s.keyframe_requests += 1;
                        (Kind::KeyframeRequest, Type::KeyframeRequest)
                    }
                    _ => {
                        s.other += 1;
                        (Kind::Media, Type::MediaOther)
                    }
                }
            }
            packet_type::CONNECTION => {
                s.connection_packets += 1;
                (Kind::Other, Type::Connection)
            }
            packet_type::DIAGNOSTICS => {
                s.diagnostics += 1;
                (Kind::Other, Type::Diagnostics)
            }
            packet_type::HEALTH => {
                s.health += 1;
                (Kind::Dropped, Type::Health)
            }
            packet_type::CONGESTION => {
                s.other += 1;
                (Kind::Dropped, Type::Congestion)
            }
            // Counted in `view_updates` once handled.
            packet_type::VIEWPORT => (Kind::Viewport, Type::Viewport),
            packet_type::LAYER_PREFERENCE => (Kind::LayerPreference, Type::LayerPreference),
            // The relay's own to send (upstream RnD's `classify_packet`).
            packet_type::LAYER_HINT => {
                s.other += 1;
                (Kind::Dropped, Type::LayerHint)
            }
            t => {
                s.other += 1;
                let ty = match t {
                    packet_type::MEETING => Type::Meeting,
                    packet_type::SESSION_ASSIGNED => Type::SessionAssigned,
                    _ => Type::Other,
                };
                (Kind::Other, ty)
            }
        }
    }
}

/// What a user's heartbeats announced in one session: the last one, to
/// classify the media that follows it and to time each state.
#[derive(Debug, Default, Clone, Copy)]
struct Heartbeats {
    /// The last heartbeat: when the relay read it (Unix ms) and its flags.
    last: Option<(u64, HeartbeatFlags)>,
}

impl Heartbeats {
    /// Counts a heartbeat with `flags` read at `unix_ms`. Returns whether
    /// it is a change to log (the first, or flags unlike the last ones).
    fn heartbeat(&mut self, s: &mut UserStats, unix_ms: u64, flags: HeartbeatFlags) -> bool {
        s.heartbeats_audio += flags.audio as u64;
        s.heartbeats_video += flags.video as u64;
        s.heartbeats_screen += flags.screen as u64;
        s.heartbeats_speaking += flags.speaking as u64;
        let changed = match self.last {
            Some((at, before)) => {
                // The relay's clock may step back; such a gap counts as none.
                let ms = unix_ms.saturating_sub(at);
                if !before.audio {
                    s.muted_ms += ms;
                } else if before.speaking {
                    s.speaking_ms += ms;
                } else {
                    s.not_speaking_ms += ms;
                }
                before != flags
            }
            None => true,
        };
        self.last = Some((unix_ms, flags));
        changed
    }

    /// Counts an audio packet by the state the last heartbeat announced.
    fn audio(&self, s: &mut UserStats) {
        match self.last {
            None => s.audio_before_heartbeat += 1,
            Some((_, f)) if !f.audio => s.audio_while_muted += 1,
            Some((_, f)) if f.speaking => s.audio_while_speaking += 1,
            Some(_) => s.audio_while_not_speaking += 1,
        }
    }

    /// Counts a video packet sent with the camera announced off.
    fn video(&self, s: &mut UserStats) {
        if self.last.is_some_and(|(_, f)| !f.video) {
            s.video_while_camera_off += 1;
        }
    }

    /// Counts a screen packet sent with no share announced.
    fn screen(&self, s: &mut UserStats) {
        if self.last.is_some_and(|(_, f)| !f.screen) {
            s.screen_while_not_sharing += 1;
        }
    }
}

/// The counters of one session, keyed by wrapper user id.
#[derive(Debug)]
pub(crate) struct Tally {
    /// The session itself, filed in its own user's `session_log`.
    session: SessionRecord,
    /// Entry 0 is the session's own user id.
    users: Vec<(Box<[u8]>, UserTally)>,
    /// Flag changes this session may still log, over all its user ids.
    flag_budget: usize,
}

impl Tally {
    /// The tally of a session of `user_id`, accepted as `session` says.
    pub(crate) fn new(user_id: &str, session: SessionRecord) -> Tally {
        Tally {
            session,
            users: vec![(user_id.as_bytes().into(), UserTally::default())],
            flag_budget: FLAG_CHANGES_MAX,
        }
    }

    /// Records that the session joined its meeting at `unix_ms` (its first
    /// packet but an RTT probe); later calls change nothing.
    pub(crate) fn joined(&mut self, unix_ms: u64) {
        self.session.joined_unix_ms.get_or_insert(unix_ms);
    }

    /// Records that the session ended at `unix_ms`, and how.
    pub(crate) fn ended(&mut self, unix_ms: u64, end: SessionEnd) {
        self.session.left_unix_ms = Some(unix_ms);
        self.session.end = end;
    }

    fn user(&mut self, id: &[u8]) -> &mut UserTally {
        let i = self.user_index(id);
        &mut self.users[i].1
    }

    fn user_index(&mut self, id: &[u8]) -> usize {
        match self.users.iter().position(|(u, _)| **u == *id) {
            Some(i) => i,
            None if self.users.len() < MAX_USERS_PER_SESSION && !id.is_empty() => {
                self.users.push((id.into(), UserTally::default()));
                self.users.len() - 1
            }
            None => 0,
        }
    }

    /// Counts one received packet, read at `unix_ms`, and tells how to
    /// handle it and what it is. `packet` is the parse of `len` bytes (`None` when it did
    /// not parse).
    pub(crate) fn count(
        &mut self,
        packet: Option<&wire::Packet<'_>>,
        len: usize,
        datagram: bool,
        unix_ms: u64,
    ) -> (Kind, Type) {
        let len = len as u64;
        let i = match packet {
            Some(p) => self.user_index(p.user_id),
            None => 0,
        };
        let t = &mut self.users[i].1;
        let (kind, ty) = match packet {
            None => {
                t.stats.malformed += 1;
                (Kind::Opaque, Type::Unparsed)
            }
            Some(p) => t.classify(p, len, unix_ms, &mut self.flag_budget),
        };
        let s = &mut t.stats;
        s.datagrams += datagram as u64;
        s.received_by_type.count(ty, datagram);
        s.first_packet_unix_ms.get_or_insert(unix_ms);
        s.last_packet_unix_ms = Some(unix_ms);
        (kind, ty)
    }

    /// Counts a uni stream closed because its framing broke (framed wire),
    /// read at `unix_ms`: as a packet that did not parse, under the session's
    /// own user id (the stream's packets were never read), and in
    /// `malformed_streams`.
    pub(crate) fn broken_stream(&mut self, unix_ms: u64) {
        self.count(None, 0, false, unix_ms);
        self.users[0].1.stats.malformed_streams += 1;
    }

    /// Counts a rate-limited key-frame request of `user_id`.
    pub(crate) fn keyframe_limited(&mut self, user_id: &[u8]) {
        self.user(user_id).stats.keyframe_requests_limited += 1;
    }

    /// The VIEWPORT and LAYER_PREFERENCE counts of `user_id`.
    pub(crate) fn view_updates(&mut self, user_id: &[u8]) -> &mut ViewUpdates {
        &mut self.user(user_id).stats.view_updates
    }

    /// Counts a packet of `user_id` from an observer session, not relayed.
    pub(crate) fn observer_dropped(&mut self, user_id: &[u8]) {
        self.user(user_id).stats.observer_media_dropped += 1;
    }

    /// Counts the deliveries of one packet of `user_id`.
    pub(crate) fn relayed(&mut self, user_id: &[u8], delivered: u64, dropped: u64) {
        let s = &mut self.user(user_id).stats;
        s.relayed_to += delivered;
        s.relay_drops += dropped;
    }

    /// This session's counters per user, ready to merge.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = (String, UserStats)> + '_ {
        self.users.iter().enumerate().map(|(i, (id, t))| {
            let mut s = t.stats.clone();
            s.meeting.clone_from(&self.session.meeting);
            s.sessions = 1;
            s.audio_seq = *t.audio.counts();
            s.video_seq = *t.video.counts();
            s.screen_seq = *t.screen.counts();
            if i == 0 {
                s.session_log = vec![self.session.clone()];
            }
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
            layer: 0,
        };
        wire::media_packet(user, &f, &[1, 2, 3])
    }

    fn count(t: &mut Tally, bytes: &[u8], dgram: bool) -> Kind {
        count_at(t, bytes, dgram, 0)
    }

    fn count_at(t: &mut Tally, bytes: &[u8], dgram: bool, unix_ms: u64) -> Kind {
        let p = wire::parse(bytes).ok();
        t.count(p.as_ref(), bytes.len(), dgram, unix_ms).0
    }

    fn tally(user: &str, meeting: &str) -> Tally {
        tally_of(user, meeting, 1, 0)
    }

    fn tally_of(user: &str, meeting: &str, session_id: u64, accepted: u64) -> Tally {
        let session = SessionRecord {
            session_id,
            meeting: meeting.into(),
            accepted_unix_ms: accepted,
            ..Default::default()
        };
        Tally::new(user, session)
    }

    #[test]
    fn counts_by_kind_and_user() {
        let mut t = tally("alice", "room");
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
        assert_eq!(count(&mut t, &[0xff, 0xff], false), Kind::Opaque);
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

    /// Every packet by type and transport, with the time of the first and
    /// the last; two sessions' counts add up and their spans join.
    #[test]
    fn counts_by_type_and_transport_with_the_span() {
        let mut t = tally_of("u", "m", 1, 0);
        count_at(
            &mut t,
            &media("u", media_type::AUDIO, 0, true),
            false,
            1_000,
        );
        count_at(&mut t, &wire::heartbeat("u", 1.0, TALKING), true, 1_100);
        count_at(&mut t, &wire::rtt("u", 1.0), true, 1_200);
        count_at(&mut t, &wire::connection("u", "m"), false, 1_300);
        count_at(&mut t, &[0xff], true, 1_400);
        count_at(&mut t, &wire::congestion("u", 1), false, 1_500);
        let mut s = t.snapshot().next().unwrap().1;
        let b = s.received_by_type;
        assert_eq!((b.audio.stream, b.audio.datagram), (1, 0));
        assert_eq!((b.heartbeat.datagram, b.rtt.datagram), (1, 1));
        assert_eq!((b.connection.stream, b.unparsed.datagram), (1, 1));
        assert_eq!((b.congestion.stream, b.other.total()), (1, 0));
        assert_eq!((b.total().stream, b.total().datagram), (3, 3));
        assert_eq!(b.total().datagram, s.datagrams);
        assert_eq!(
            (s.first_packet_unix_ms, s.last_packet_unix_ms),
            (Some(1_000), Some(1_500))
        );
        // A client's CONGESTION is dropped, counted as `other`.
        assert_eq!(s.other, 1);

        let mut later = tally_of("u", "m", 2, 2_000);
        count_at(&mut later, &wire::heartbeat("u", 1.0, TALKING), true, 2_500);
        s.merge_later(&later.snapshot().next().unwrap().1);
        assert_eq!(s.received_by_type.heartbeat.datagram, 2);
        assert_eq!(
            (s.first_packet_unix_ms, s.last_packet_unix_ms),
            (Some(1_000), Some(2_500))
        );

        let sent = SentCounts::default();
        sent.count(Type::Congestion, true, 0);
        sent.count(Type::Audio, false, 1);
        sent.count(Type::Audio, false, 0);
        for layer in [0, 2, 5] {
            sent.count(Type::Video, false, layer);
        }
        let mut to = UserStats::default();
        sent.add_to(&mut to);
        let by = to.sent_by_type;
        assert_eq!(
            (by.audio.stream, by.congestion.datagram, by.total().total()),
            (2, 1, 6)
        );
        assert_eq!(
            to.sent_video_layers,
            [1, 0, 2],
            "video only, 2 and up together"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["received_by_type"]["heartbeat"]["datagram"], 2);
        assert_eq!(json["first_packet_unix_ms"], 1_000);
    }

    fn hb(audio: bool, video: bool, screen: bool, speaking: bool) -> Vec<u8> {
        let flags = HeartbeatFlags {
            audio,
            video,
            screen,
            speaking,
        };
        wire::heartbeat("u", 1.0, flags)
    }

    fn change(unix_ms: u64, audio: bool, video: bool, screen: bool, speaking: bool) -> FlagChange {
        FlagChange {
            unix_ms,
            audio,
            video,
            screen,
            speaking,
        }
    }

    #[test]
    fn media_is_counted_by_the_state_the_last_heartbeat_announced() {
        let mut t = tally("u", "m");
        let mut seq = 0;
        let mut send = |t: &mut Tally, mt: i32, at: u64| {
            seq += 1;
            count_at(t, &media("u", mt, seq, false), false, at)
        };
        send(&mut t, media_type::AUDIO, 900);
        count_at(&mut t, &hb(true, true, false, true), false, 1_000);
        send(&mut t, media_type::AUDIO, 1_100);
        send(&mut t, media_type::AUDIO, 1_200);
        send(&mut t, media_type::VIDEO, 1_200);
        assert_eq!(send(&mut t, media_type::SCREEN, 1_300), Kind::Screen);
        // Unchanged: no new entry in the log, 1 s more of speaking.
        count_at(&mut t, &hb(true, true, false, true), false, 2_000);
        count_at(&mut t, &hb(true, true, false, false), false, 3_000);
        send(&mut t, media_type::AUDIO, 3_100);
        // Muted, camera off, sharing: 500 ms later.
        count_at(&mut t, &hb(false, false, true, true), false, 3_500);
        send(&mut t, media_type::AUDIO, 3_600);
        send(&mut t, media_type::VIDEO, 3_600);
        send(&mut t, media_type::SCREEN, 3_600);
        count_at(&mut t, &hb(true, true, false, true), false, 4_500);

        let s = t.snapshot().next().unwrap().1;
        assert_eq!(s.heartbeats, 5);
        assert_eq!(
            (
                s.heartbeats_audio,
                s.heartbeats_video,
                s.heartbeats_screen,
                s.heartbeats_speaking
            ),
            (4, 4, 1, 4)
        );
        assert_eq!(
            (
                s.audio_before_heartbeat,
                s.audio_while_speaking,
                s.audio_while_not_speaking,
                s.audio_while_muted
            ),
            (1, 2, 1, 1)
        );
        assert_eq!(
            (s.speaking_ms, s.not_speaking_ms, s.muted_ms),
            (2_000, 500, 1_000)
        );
        assert_eq!(
            (s.video_while_camera_off, s.screen_while_not_sharing),
            (1, 1)
        );
        assert_eq!(
            s.flag_changes,
            [
                change(1_000, true, true, false, true),
                change(3_000, true, true, false, false),
                change(3_500, false, false, true, true),
                change(4_500, true, true, false, true),
            ]
        );
        assert_eq!((s.screen_packets, s.screen_keyframes), (2, 0));
        assert_eq!((s.screen_seq.received, s.screen_seq.first), (2, Some(5)));
        assert_eq!(s.video_seq.received, 2);
    }

    #[test]
    fn screen_is_counted_apart_from_video() {
        let mut t = tally("u", "m");
        let mut bytes = 0;
        for seq in [0, 1, 3] {
            let p = media("u", media_type::SCREEN, seq, seq == 0);
            bytes += p.len() as u64;
            assert_eq!(count(&mut t, &p, false), Kind::Screen);
        }
        let s = t.snapshot().next().unwrap().1;
        assert_eq!((s.screen_packets, s.screen_keyframes), (3, 1));
        assert_eq!(s.screen_bytes, bytes);
        assert_eq!((s.screen_seq.received, s.screen_seq.missing()), (3, 1));
        assert_eq!((s.video_packets, s.other), (0, 0));
        assert_eq!(s.screen_while_not_sharing, 0, "no heartbeat yet");
    }

    #[test]
    fn flag_changes_are_bounded_per_session_and_per_user() {
        let mut t = tally("u", "m");
        for i in 0..FLAG_CHANGES_MAX as u64 + 5 {
            count_at(&mut t, &hb(i % 2 == 0, true, false, false), false, i);
        }
        let s = t.snapshot().next().unwrap().1;
        assert_eq!(s.flag_changes.len(), FLAG_CHANGES_MAX);
        assert_eq!(s.flag_changes_dropped, 5);
        // A second session's changes are counted, not kept, once the user's log is full.
        let mut t2 = tally_of("u", "m", 2, 1);
        count_at(&mut t2, &hb(true, true, false, false), false, 0);
        let mut all = s.clone();
        all.merge_later(&t2.snapshot().next().unwrap().1);
        assert_eq!(all.flag_changes.len(), FLAG_CHANGES_MAX);
        assert_eq!(all.flag_changes_dropped, 6);
    }

    #[test]
    fn session_log_one_entry_per_session_oldest_first_and_bounded() {
        let mut first = tally_of("u", "m", 7, 100);
        count(&mut first, &wire::rtt("u", 1.0), false);
        first.joined(150);
        first.joined(160);
        first.ended(900, SessionEnd::Closed);
        let mut second = tally_of("u", "m2", 8, 1_000);
        second.joined(1_010);
        // Filed in the order they ended: the later session first.
        let mut s = second.snapshot().next().unwrap().1;
        s.merge_later(&first.snapshot().next().unwrap().1);
        let log: Vec<_> = s
            .session_log
            .iter()
            .map(|r| (r.session_id, r.joined_unix_ms, r.left_unix_ms, r.end))
            .collect();
        assert_eq!(
            log,
            [
                (7, Some(150), Some(900), SessionEnd::Closed),
                (8, Some(1_010), None, SessionEnd::Running)
            ]
        );
        assert_eq!(s.session_log[1].meeting, "m2");
        // Another user id in the same session gets no entry of its own.
        let mut t = tally("u", "m");
        count(&mut t, &media("other", media_type::AUDIO, 0, true), false);
        let snap: BTreeMap<String, UserStats> = t.snapshot().collect();
        assert!(snap["other"].session_log.is_empty());

        let mut many = UserStats::default();
        for i in 0..SESSION_LOG_MAX as u64 + 3 {
            many.merge_later(&tally_of("u", "m", i, i).snapshot().next().unwrap().1);
        }
        assert_eq!(many.session_log.len(), SESSION_LOG_MAX);
        assert_eq!(many.session_log_dropped, 3);
        assert_eq!(many.sessions, SESSION_LOG_MAX as u64 + 3);
        let json = serde_json::to_value(&many.session_log[0]).unwrap();
        assert_eq!(json["end"], "running");
        assert!(json["left_unix_ms"].is_null());
    }

    #[test]
    fn observer_drops_are_counted_per_user() {
        let mut t = tally("obs", "m");
        t.observer_dropped(b"obs");
        t.observer_dropped(b"obs");
        let s = t.snapshot().next().unwrap().1;
        assert_eq!(s.observer_media_dropped, 2);
        let mut total = RelayStats::default();
        total.per_user.insert("obs".into(), s);
        assert_eq!(total.total().observer_media_dropped, 2);
    }

    #[test]
    fn merge_joins_sessions() {
        let mut t1 = tally_of("u", "m", 1, 10);
        for s in 0..5 {
            count(&mut t1, &media("u", media_type::AUDIO, s, true), false);
        }
        let mut t2 = tally_of("u", "m", 2, 20);
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
