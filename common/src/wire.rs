//! The videocall-rs wire, as a synthetic client speaks it.
//!
//! Every packet is one protobuf `PacketWrapper` (from `videocall-types`) on its
//! own unidirectional stream. For media, the wrapper's `data` is a `MediaPacket`.
//!
//! Media packets are the hot path, so they are not built through the protobuf
//! message types: [`MediaPrefix`] writes everything *but* the frame bytes into a
//! reused buffer, with the `MediaPacket.data` field placed last (protobuf lets
//! fields come in any order). The packet on the wire is then `prefix ++ frame`,
//! and the frame can go from the pack's map to the socket untouched.
//!
//! Receiving is the other hot path: [`parse`] reads a wrapper and, for media,
//! the `MediaPacket` inside it, borrowing from the input without allocating.
//! Rarely sent packets (CONNECTION, heartbeats, RTT, key-frame requests, and
//! the DIAGNOSTICS and HEALTH reports a browser sends) are built with the
//! protobuf types; they are a handful per second.

use bytes::Bytes;
use protobuf::Message;
use videocall_types::protos::connection_packet::ConnectionPacket;
use videocall_types::protos::diagnostics_packet::{AudioMetrics, DiagnosticsPacket, VideoMetrics};
use videocall_types::protos::health_packet::{HealthPacket, PeerStats, VideoStats};
use videocall_types::protos::media_packet::media_packet::MediaType;
use videocall_types::protos::media_packet::{HeartbeatMetadata, MediaPacket, VideoCodec};
use videocall_types::protos::meeting_packet::meeting_packet::MeetingEventType;
use videocall_types::protos::meeting_packet::MeetingPacket;
use videocall_types::protos::packet_wrapper::packet_wrapper::PacketType;
use videocall_types::protos::packet_wrapper::PacketWrapper;
use videocall_types::SYSTEM_USER_ID;

/// Largest packet either side reads from one uni stream (upstream's `MAX_FRAME_SIZE`).
pub const MAX_STREAM_BYTES: usize = 4_000_000;

/// Largest non-media packet the server sends as a datagram rather than a stream.
pub const DATAGRAM_MAX: usize = 1200;

/// `PacketWrapper.packet_type` values (see `videocall-types`). Unknown values
/// are ignored and counted by receivers, so new upstream types do no harm.
pub mod packet_type {
    /// RSA public key exchange (optional encryption; not used here).
    pub const RSA_PUB_KEY: i32 = 1;
    /// AES key exchange (optional encryption; not used here).
    pub const AES_KEY: i32 = 2;
    /// A `MediaPacket` (media, heartbeats, RTT, key-frame requests).
    pub const MEDIA: i32 = 3;
    /// A `ConnectionPacket` naming the meeting.
    pub const CONNECTION: i32 = 4;
    /// Diagnostics from a client (relayed as-is).
    pub const DIAGNOSTICS: i32 = 5;
    /// Health report from a client, for the server's own telemetry: processed by
    /// the server; the relay counts it and never relays it.
    pub const HEALTH: i32 = 6;
    /// A `MeetingPacket` (meeting started, participant joined or left).
    pub const MEETING: i32 = 7;
    /// The server's first packet: `session_id` is the session.
    pub const SESSION_ASSIGNED: i32 = 8;
    /// The server dropped packets of this sender.
    pub const CONGESTION: i32 = 9;
    /// Upstream `RnD` (`protobuf/types/packet_wrapper.proto`): a peer's
    /// join, leave or state, from the server.
    pub const PEER_EVENT: i32 = 10;
    /// Upstream `RnD`: the tiles a receiver shows.
    pub const VIEWPORT: i32 = 11;
    /// Upstream `RnD`: the simulcast layer a receiver wants of a peer.
    pub const LAYER_PREFERENCE: i32 = 12;
    /// Upstream `RnD`: the server asks a publisher to shed or restore layers.
    pub const LAYER_HINT: i32 = 13;
    /// Upstream `RnD`: the server saw a receiver's downlink congested.
    pub const DOWNLINK_CONGESTION: i32 = 14;
    /// Upstream `RnD`: a meeting reaction.
    pub const REACTION: i32 = 17;

    /// The types past main's, each counted by name when received, in
    /// this order; any other type is counted as `unknown`.
    pub const NEWER: [(i32, &str); 6] = [
        (PEER_EVENT, "peer_event"),
        (VIEWPORT, "viewport"),
        (LAYER_PREFERENCE, "layer_preference"),
        (LAYER_HINT, "layer_hint"),
        (DOWNLINK_CONGESTION, "downlink_congestion"),
        (REACTION, "reaction"),
    ];
}

/// `MediaPacket.media_type` values (see `videocall-types`).
pub mod media_type {
    /// Video frame.
    pub const VIDEO: i32 = 1;
    /// Audio frame.
    pub const AUDIO: i32 = 2;
    /// Screen share frame.
    pub const SCREEN: i32 = 3;
    /// Heartbeat with the sender's media state.
    pub const HEARTBEAT: i32 = 4;
    /// Round-trip probe, echoed by the server to its sender.
    pub const RTT: i32 = 5;
    /// A request that the participant in `user_id` send a key frame.
    pub const KEYFRAME_REQUEST: i32 = 6;
}

/// `PacketWrapper.media_kind` values (upstream `RnD`,
/// `protobuf/types/packet_wrapper.proto` `MediaKind`): what a server filters
/// media by without opening the (possibly encrypted) `MediaPacket`. Absent
/// (0) means "do not filter".
pub mod media_kind {
    use super::media_type;

    /// Camera video.
    pub const VIDEO: i32 = 1;
    /// Microphone audio.
    pub const AUDIO: i32 = 2;
    /// Screen share.
    pub const SCREEN: i32 = 3;

    /// The kind of a `MediaPacket.media_type`: media only (heartbeats, probes
    /// and key-frame requests carry none, as upstream's client sends them).
    pub fn of(media_type: i32) -> Option<i32> {
        match media_type {
            media_type::VIDEO => Some(VIDEO),
            media_type::AUDIO => Some(AUDIO),
            media_type::SCREEN => Some(SCREEN),
            _ => None,
        }
    }
}

/// `VideoMetadata.codec` for VP9 profile 0, 8-bit.
pub const CODEC_VP9_PROFILE0: i32 = VideoCodec::VP9_PROFILE0_LEVEL10_8BIT as i32;

/// Errors parsing a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes end in the middle of a field.
    #[error("packet truncated")]
    Truncated,
    /// A varint is longer than ten bytes.
    #[error("malformed varint")]
    BadVarint,
    /// A field uses a wire type protobuf does not define (or a group).
    #[error("unsupported protobuf wire type {0}")]
    BadWireType(u8),
    /// A field numbered 0, which protobuf does not allow (and upstream's
    /// decoder refuses).
    #[error("protobuf field number 0")]
    FieldZero,
    /// A sub-message that protobuf could not decode.
    #[error("malformed message")]
    Malformed,
}

// ---------------------------------------------------------------------------
// Building

/// Per-packet fields of a media frame; everything else comes from the client or the pack.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MediaFields {
    /// [`media_type::AUDIO`], [`media_type::VIDEO`] or [`media_type::SCREEN`]
    /// (written as video is: `duration`, `video_metadata`).
    pub media_type: i32,
    /// Sequence number, +1 per packet of this media, never reset when the pack loops.
    pub sequence: u64,
    /// Send time in milliseconds since the Unix epoch.
    pub timestamp_ms: f64,
    /// Frame duration in milliseconds (sent for video only, as upstream does).
    pub duration_ms: f64,
    /// Key frame (`frame_type "key"`) or delta (`"delta"`). Audio is always `"key"`.
    pub key: bool,
    /// The simulcast layer (`PacketWrapper.simulcast_layer_id`, upstream
    /// `RnD`): 0, the lowest, is left out of the wrapper as protobuf
    /// leaves out a default.
    pub layer: u32,
}

/// Builds the bytes that precede a frame in a MEDIA packet, for one client.
///
/// Holds the client's user id and two reused buffers, so building a packet
/// allocates nothing once the buffers have grown.
#[derive(Debug, Clone)]
pub struct MediaPrefix {
    user_id: Vec<u8>,
    inner: Vec<u8>,
    out: Vec<u8>,
}

impl MediaPrefix {
    /// A builder for packets from `user_id`.
    pub fn new(user_id: &str) -> MediaPrefix {
        MediaPrefix {
            user_id: user_id.as_bytes().to_vec(),
            inner: Vec::with_capacity(64 + user_id.len()),
            out: Vec::with_capacity(96 + 2 * user_id.len()),
        }
    }

    /// The user id this builder writes.
    pub fn user_id(&self) -> &[u8] {
        &self.user_id
    }

    /// Writes the prefix for a frame of `frame_len` bytes and returns it. The
    /// packet to send is the returned bytes followed by the frame itself.
    pub fn build(&mut self, f: &MediaFields, frame_len: usize) -> &[u8] {
        let inner = &mut self.inner;
        inner.clear();
        put_varint_field(inner, 1, f.media_type as u64);
        put_bytes_field(inner, 2, &self.user_id);
        put_bytes_field(inner, 4, if f.key { b"key" } else { b"delta" });
        put_tag(inner, 5, 1);
        inner.extend_from_slice(&f.timestamp_ms.to_le_bytes());
        if f.media_type == media_type::AUDIO {
            // audio_metadata { sequence = 5 }
            let len = 1 + varint_len(f.sequence);
            put_tag(inner, 7, 2);
            put_varint(inner, len as u64);
            put_varint_field(inner, 5, f.sequence);
        } else {
            put_tag(inner, 6, 1);
            inner.extend_from_slice(&f.duration_ms.to_le_bytes());
            // video_metadata { sequence = 1, codec = 2 }
            let len = 1 + varint_len(f.sequence) + 1 + varint_len(CODEC_VP9_PROFILE0 as u64);
            put_tag(inner, 8, 2);
            put_varint(inner, len as u64);
            put_varint_field(inner, 1, f.sequence);
            put_varint_field(inner, 2, CODEC_VP9_PROFILE0 as u64);
        }
        // data = 3, last, so the frame bytes follow the prefix directly.
        put_tag(inner, 3, 2);
        put_varint(inner, frame_len as u64);

        let out = &mut self.out;
        out.clear();
        put_varint_field(out, 1, packet_type::MEDIA as u64);
        put_bytes_field(out, 2, &self.user_id);
        // Upstream `RnD`'s cleartext routing fields, ahead of `data` so the
        // frame still ends the packet; a server without them skips them.
        if f.layer != 0 {
            put_varint_field(out, 5, f.layer as u64);
        }
        if let Some(kind) = media_kind::of(f.media_type) {
            put_varint_field(out, 6, kind as u64);
        }
        put_tag(out, 3, 2);
        put_varint(out, (inner.len() + frame_len) as u64);
        out.extend_from_slice(inner);
        &self.out
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, ((field as u64) << 3) | wire_type as u64);
}

pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_tag(out, field, 0);
    put_varint(out, v);
}

pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_tag(out, field, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A `PacketWrapper` of `packet_type` (a [`packet_type`] value, known to
/// `videocall-types` or not) from `user_id` around `data`, with
/// `session_id` (0: none).
pub(crate) fn wrapper(packet_type: i32, user_id: &[u8], session_id: u64, data: Vec<u8>) -> Vec<u8> {
    let w = PacketWrapper {
        packet_type: protobuf::EnumOrUnknown::from_i32(packet_type),
        user_id: user_id.to_vec(),
        data,
        session_id,
        ..Default::default()
    };
    w.write_to_bytes()
        .expect("encoding a PacketWrapper into a Vec cannot fail")
}

fn wrap(packet_type: PacketType, user_id: &str, data: Vec<u8>) -> Vec<u8> {
    wrapper(packet_type as i32, user_id.as_bytes(), 0, data)
}

fn media(user_id: &str, p: MediaPacket) -> Vec<u8> {
    let data = p
        .write_to_bytes()
        .expect("encoding a MediaPacket into a Vec cannot fail");
    wrap(PacketType::MEDIA, user_id, data)
}

/// A whole media packet of `user_id` in one buffer: the prefix, then
/// `frame`. The hot path sends the two parts without joining them; this is
/// for tests and tools.
pub fn media_packet(user_id: &str, f: &MediaFields, frame: &[u8]) -> Vec<u8> {
    let mut prefix = MediaPrefix::new(user_id);
    let mut v = prefix.build(f, frame.len()).to_vec();
    v.extend_from_slice(frame);
    v
}

/// The CONNECTION packet a client sends first: `ConnectionPacket{meeting_id}`.
pub fn connection(user_id: &str, meeting_id: &str) -> Vec<u8> {
    let c = ConnectionPacket {
        meeting_id: meeting_id.to_owned(),
        ..Default::default()
    };
    let data = c
        .write_to_bytes()
        .expect("encoding a ConnectionPacket into a Vec cannot fail");
    wrap(PacketType::CONNECTION, user_id, data)
}

/// What a heartbeat says about its sender: the four `heartbeat_metadata` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatFlags {
    /// `audio_enabled`: the microphone is on (false: muted).
    pub audio: bool,
    /// `video_enabled`: the camera is on. A browser that sees false drops
    /// that peer's video.
    pub video: bool,
    /// `screen_enabled`: a screen is being shared.
    pub screen: bool,
    /// `is_speaking`: the sender is talking now (follows the voice).
    pub speaking: bool,
}

/// A heartbeat advertising the sender's state (`flags`).
pub fn heartbeat(user_id: &str, timestamp_ms: f64, flags: HeartbeatFlags) -> Vec<u8> {
    let p = MediaPacket {
        media_type: MediaType::HEARTBEAT.into(),
        user_id: user_id.as_bytes().to_vec(),
        timestamp: timestamp_ms,
        heartbeat_metadata: protobuf::MessageField::some(HeartbeatMetadata {
            audio_enabled: flags.audio,
            video_enabled: flags.video,
            screen_enabled: flags.screen,
            is_speaking: flags.speaking,
            ..Default::default()
        }),
        ..Default::default()
    };
    media(user_id, p)
}

/// An RTT probe; the server echoes it to the sender only.
pub fn rtt(user_id: &str, timestamp_ms: f64) -> Vec<u8> {
    let p = MediaPacket {
        media_type: MediaType::RTT.into(),
        user_id: user_id.as_bytes().to_vec(),
        timestamp: timestamp_ms,
        ..Default::default()
    };
    media(user_id, p)
}

/// A request from `from` that `target` send a video key frame.
pub fn keyframe_request(from: &str, target: &str, timestamp_ms: f64) -> Vec<u8> {
    keyframe_request_for(from, target, false, timestamp_ms)
}

/// A request from `from` that `target` send a key frame of its camera
/// (`data = "VIDEO"`) or, when `screen`, of its screen share (`"SCREEN"`).
pub fn keyframe_request_for(from: &str, target: &str, screen: bool, timestamp_ms: f64) -> Vec<u8> {
    let p = MediaPacket {
        media_type: MediaType::KEYFRAME_REQUEST.into(),
        user_id: target.as_bytes().to_vec(),
        data: if screen {
            KEYFRAME_SCREEN
        } else {
            KEYFRAME_VIDEO
        }
        .to_vec(),
        timestamp: timestamp_ms,
        ..Default::default()
    };
    media(from, p)
}

/// A key-frame request's `data` asking for the camera.
pub const KEYFRAME_VIDEO: &[u8] = b"VIDEO";
/// A key-frame request's `data` asking for the screen share.
pub const KEYFRAME_SCREEN: &[u8] = b"SCREEN";

/// One DIAGNOSTICS report: what a receiver measured of one peer's medium in
/// its last second, as upstream's web client sends it every 500 ms for each
/// (peer, medium) it has received (`DiagnosticsPacket`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnostic<'a> {
    /// The measured peer's server session id (`sender_id`, as a decimal
    /// string on the wire: upstream fills it so).
    pub peer_session: u64,
    /// The reporting client's own user id (`target_id`, as upstream fills it).
    pub reporter: &'a str,
    /// When, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// `media_type`: [`media_type::AUDIO`], [`media_type::VIDEO`] or [`media_type::SCREEN`].
    pub media_type: i32,
    /// Packets (audio) or frames (video, screen) a second.
    pub fps: f32,
    /// Kilobits a second of the `MediaPacket`s received.
    pub kbps: u32,
}

/// A DIAGNOSTICS packet of `user_id` (see [`Diagnostic`]).
pub fn diagnostics(user_id: &str, d: &Diagnostic<'_>) -> Vec<u8> {
    let mut p = DiagnosticsPacket {
        sender_id: d.peer_session.to_string(),
        target_id: d.reporter.to_owned(),
        timestamp_ms: d.timestamp_ms,
        media_type: protobuf::EnumOrUnknown::from_i32(d.media_type),
        ..Default::default()
    };
    if d.media_type == media_type::AUDIO {
        p.audio_metrics = protobuf::MessageField::some(AudioMetrics {
            fps_received: d.fps,
            bitrate_kbps: d.kbps,
            ..Default::default()
        });
    } else {
        p.video_metrics = protobuf::MessageField::some(VideoMetrics {
            fps_received: d.fps,
            bitrate_kbps: d.kbps,
            ..Default::default()
        });
    }
    let data = p
        .write_to_bytes()
        .expect("encoding a DiagnosticsPacket into a Vec cannot fail");
    wrap(PacketType::DIAGNOSTICS, user_id, data)
}

/// What a HEALTH report says of one peer (`PeerStats`), keyed by the peer's
/// server session id. Only what the client measures is set: `neteq_stats`
/// and the decoder's figures stay unset.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerHealth {
    /// Audio of this peer arrived lately (`can_listen`, copied to `audio_enabled`).
    pub can_listen: bool,
    /// Video of this peer arrived lately (`can_see`, copied to `video_enabled`).
    pub can_see: bool,
    /// Video frames a second received of it (`video_stats.fps_received`),
    /// when any video was.
    pub video_fps: Option<f64>,
}

/// One HEALTH report (`HealthPacket`), as upstream's web client sends it
/// every 5 s once it has seen a peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Health<'a> {
    /// The client's own label, `session_<unix seconds when it started>` as
    /// upstream's web client writes it (not the server's session id).
    pub session_label: &'a str,
    /// The meeting.
    pub meeting_id: &'a str,
    /// The reporting client's user id.
    pub user_id: &'a str,
    /// When, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// The client sends audio (`reporting_audio_enabled`).
    pub audio_enabled: bool,
    /// The client sends video (`reporting_video_enabled`).
    pub video_enabled: bool,
    /// Each peer, by its server session id.
    pub peers: &'a [(u64, PeerHealth)],
    /// The server the client uses.
    pub server_url: &'a str,
    /// The mean of its last RTT probes' echo times, ms, when it has any.
    pub server_rtt_ms: Option<f64>,
}

/// A HEALTH packet (see [`Health`]); the server publishes it for upstream's
/// `metrics_server` and relays it to nobody.
pub fn health(h: &Health<'_>) -> Vec<u8> {
    let p = HealthPacket {
        session_id: h.session_label.to_owned(),
        meeting_id: h.meeting_id.to_owned(),
        reporting_user_id: h.user_id.as_bytes().to_vec(),
        timestamp_ms: h.timestamp_ms,
        reporting_audio_enabled: h.audio_enabled,
        reporting_video_enabled: h.video_enabled,
        peer_stats: h
            .peers
            .iter()
            .map(|(session, peer)| {
                let stats = PeerStats {
                    can_listen: peer.can_listen,
                    can_see: peer.can_see,
                    audio_enabled: peer.can_listen,
                    video_enabled: peer.can_see,
                    video_stats: match peer.video_fps {
                        Some(fps) => protobuf::MessageField::some(VideoStats {
                            fps_received: fps,
                            ..Default::default()
                        }),
                        None => protobuf::MessageField::none(),
                    },
                    ..Default::default()
                };
                (session.to_string(), stats)
            })
            .collect(),
        active_server_url: h.server_url.to_owned(),
        active_server_type: "webtransport".to_owned(),
        active_server_rtt_ms: h.server_rtt_ms.unwrap_or(0.0),
        ..Default::default()
    };
    let data = p
        .write_to_bytes()
        .expect("encoding a HealthPacket into a Vec cannot fail");
    wrap(PacketType::HEALTH, h.user_id, data)
}

// ---------------------------------------------------------------------------
// Packets the server sends

fn system_wrapper(packet_type: PacketType, data: Vec<u8>, session_id: u64) -> Bytes {
    wrapper(
        packet_type as i32,
        SYSTEM_USER_ID.as_bytes(),
        session_id,
        data,
    )
    .into()
}

fn meeting(p: MeetingPacket) -> Bytes {
    let data = p
        .write_to_bytes()
        .expect("encoding a MeetingPacket into a Vec cannot fail");
    system_wrapper(PacketType::MEETING, data, 0)
}

/// `PacketWrapper.session_id` (field 4) alone: appended to a wrapper as
/// received, it sets the session id the relayed copy carries (a later field
/// overrides an earlier one), without re-encoding the packet.
pub fn session_id_field(session_id: u64) -> Bytes {
    let mut v = Vec::with_capacity(11);
    put_varint_field(&mut v, 4, session_id);
    v.into()
}

/// SESSION_ASSIGNED: the wrapper's `session_id` is the new session.
pub fn session_assigned(session_id: u64) -> Bytes {
    system_wrapper(PacketType::SESSION_ASSIGNED, Vec::new(), session_id)
}

/// MEETING_STARTED for a session of `user` joining `room` (upstream: start
/// time is the session's start, creator is the joining user).
pub fn meeting_started(room: &str, user: &str, start_time_ms: u64) -> Bytes {
    meeting(MeetingPacket {
        event_type: MeetingEventType::MEETING_STARTED.into(),
        room_id: room.to_owned(),
        start_time_ms,
        creator_id: user.as_bytes().to_vec(),
        ..Default::default()
    })
}

/// Who a PARTICIPANT_JOINED or PARTICIPANT_LEFT is about.
#[derive(Debug, Clone, Copy)]
pub struct Participant<'a> {
    /// The participant's user id.
    pub user_id: &'a str,
    /// Its session.
    pub session_id: u64,
    /// The name peers show.
    pub display_name: &'a str,
}

/// PARTICIPANT_JOINED (`joined`) or PARTICIPANT_LEFT for `who` in `room`.
pub fn participant(room: &str, who: Participant<'_>, joined: bool) -> Bytes {
    let (event, verb) = if joined {
        (MeetingEventType::PARTICIPANT_JOINED, "joined")
    } else {
        (MeetingEventType::PARTICIPANT_LEFT, "left")
    };
    meeting(MeetingPacket {
        event_type: event.into(),
        room_id: room.to_owned(),
        message: format!("{} has {verb} the meeting", who.user_id),
        target_user_id: who.user_id.as_bytes().to_vec(),
        session_id: who.session_id,
        display_name: who.display_name.as_bytes().to_vec(),
        ..Default::default()
    })
}

/// CONGESTION to a sender: `receiver` dropped packets of session `sender_session`.
pub fn congestion(receiver: &str, sender_session: u64) -> Bytes {
    wrapper(
        packet_type::CONGESTION,
        receiver.as_bytes(),
        sender_session,
        Vec::new(),
    )
    .into()
}

/// A meeting event a client reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingEvent {
    /// MEETING_STARTED.
    Started,
    /// PARTICIPANT_JOINED.
    Joined,
    /// PARTICIPANT_LEFT.
    Left,
    /// Anything else (MEETING_ENDED, new upstream events).
    Other,
}

/// The event of a MEETING wrapper's `data`.
pub fn parse_meeting(data: &[u8]) -> Result<MeetingEvent, WireError> {
    let p = MeetingPacket::parse_from_bytes(data).map_err(|_| WireError::Malformed)?;
    Ok(match p.event_type.enum_value() {
        Ok(MeetingEventType::MEETING_STARTED) => MeetingEvent::Started,
        Ok(MeetingEventType::PARTICIPANT_JOINED) => MeetingEvent::Joined,
        Ok(MeetingEventType::PARTICIPANT_LEFT) => MeetingEvent::Left,
        _ => MeetingEvent::Other,
    })
}

/// Who a PARTICIPANT_LEFT (a MEETING wrapper's `data`) is about; `None`
/// for another event or bytes that do not parse.
pub fn meeting_target(data: &[u8]) -> Option<Vec<u8>> {
    let p = MeetingPacket::parse_from_bytes(data).ok()?;
    (p.event_type.enum_value() == Ok(MeetingEventType::PARTICIPANT_LEFT))
        .then_some(p.target_user_id)
}

// ---------------------------------------------------------------------------
// Parsing

/// A parsed `PacketWrapper`, borrowing from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Packet<'a> {
    /// `packet_type` (see [`packet_type`]).
    pub packet_type: i32,
    /// The sender's user id as the wrapper gives it.
    pub user_id: &'a [u8],
    /// The inner message's bytes.
    pub data: &'a [u8],
    /// The session the server assigned (filled in by the server on relay).
    pub session_id: u64,
    /// `simulcast_layer_id` (upstream `RnD`; 0 when absent).
    pub layer: u32,
    /// `media_kind` (see [`media_kind`]; 0 when absent).
    pub media_kind: i32,
}

/// A parsed `MediaPacket`, borrowing from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Media<'a> {
    /// `media_type` (see [`media_type`]).
    pub media_type: i32,
    /// The sender (or, for a key-frame request, the target).
    pub user_id: &'a [u8],
    /// The frame.
    pub data: &'a [u8],
    /// `"key"` or `"delta"`.
    pub frame_type: &'a [u8],
    /// Sender's timestamp, ms since the Unix epoch.
    pub timestamp_ms: f64,
    /// Frame duration in ms.
    pub duration_ms: f64,
    /// `audio_metadata.sequence` or `video_metadata.sequence` (video and
    /// screen), when present.
    pub sequence: Option<u64>,
    /// `video_metadata.codec` (0 when absent).
    pub codec: i32,
    /// `heartbeat_metadata`'s flags, when present (absent flags are false).
    pub heartbeat: Option<HeartbeatFlags>,
}

impl Media<'_> {
    /// Whether the frame is a key frame.
    pub fn is_key(&self) -> bool {
        self.frame_type == b"key"
    }
}

pub(crate) struct Fields<'a> {
    pub(crate) buf: &'a [u8],
}

pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Fields<'a> {
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(v);
            }
        }
        if self.buf.len() < 10 {
            Err(WireError::Truncated)
        } else {
            Err(WireError::BadVarint)
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn next(&mut self) -> Option<Result<(u32, Value<'a>), WireError>> {
        if self.buf.is_empty() {
            return None;
        }
        Some(self.field())
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), WireError> {
        let tag = self.varint()?;
        let field = (tag >> 3) as u32;
        if field == 0 {
            // As rust-protobuf's `Tag::new`: without this, bytes that are no
            // message at all (a framed stream, which starts with zeros) read
            // as one made of its last fields.
            return Err(WireError::FieldZero);
        }
        let value = match (tag & 7) as u8 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            t => return Err(WireError::BadWireType(t)),
        };
        Ok((field, value))
    }
}

/// Parses a `PacketWrapper` without copying.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, WireError> {
    let mut p = Packet::default();
    let mut f = Fields { buf };
    while let Some(field) = f.next() {
        match field? {
            (1, Value::Varint(v)) => p.packet_type = v as i32,
            (2, Value::Bytes(b)) => p.user_id = b,
            (3, Value::Bytes(b)) => p.data = b,
            (4, Value::Varint(v)) => p.session_id = v,
            (5, Value::Varint(v)) => p.layer = v as u32,
            (6, Value::Varint(v)) => p.media_kind = v as i32,
            _ => {}
        }
    }
    Ok(p)
}

/// Parses a `MediaPacket` (a MEDIA wrapper's `data`) without copying.
pub fn parse_media(buf: &[u8]) -> Result<Media<'_>, WireError> {
    let mut m = Media::default();
    let mut f = Fields { buf };
    while let Some(field) = f.next() {
        match field? {
            (1, Value::Varint(v)) => m.media_type = v as i32,
            (2, Value::Bytes(b)) => m.user_id = b,
            (3, Value::Bytes(b)) => m.data = b,
            (4, Value::Bytes(b)) => m.frame_type = b,
            (5, Value::Fixed64(v)) => m.timestamp_ms = f64::from_bits(v),
            (6, Value::Fixed64(v)) => m.duration_ms = f64::from_bits(v),
            (7, Value::Bytes(b)) => m.sequence = Some(sub_varint(b, 5)?.unwrap_or(0)),
            (8, Value::Bytes(b)) => {
                m.sequence = Some(sub_varint(b, 1)?.unwrap_or(0));
                m.codec = sub_varint(b, 2)?.unwrap_or(0) as i32;
            }
            (9, Value::Bytes(b)) => m.heartbeat = Some(heartbeat_flags(b)?),
            _ => {}
        }
    }
    Ok(m)
}

/// `HeartbeatMetadata{video_enabled (1), audio_enabled (2), screen_enabled
/// (3), is_speaking (4)}` in one pass; the last value of a field wins.
fn heartbeat_flags(buf: &[u8]) -> Result<HeartbeatFlags, WireError> {
    let mut h = HeartbeatFlags::default();
    let mut f = Fields { buf };
    while let Some(field) = f.next() {
        if let (n, Value::Varint(v)) = field? {
            let on = v != 0;
            match n {
                1 => h.video = on,
                2 => h.audio = on,
                3 => h.screen = on,
                4 => h.speaking = on,
                _ => {}
            }
        }
    }
    Ok(h)
}

/// The last value of varint field `want` in a sub-message.
fn sub_varint(buf: &[u8], want: u32) -> Result<Option<u64>, WireError> {
    let mut out = None;
    let mut f = Fields { buf };
    while let Some(field) = f.next() {
        if let (n, Value::Varint(v)) = field? {
            if n == want {
                out = Some(v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use videocall_types::protos::media_packet::media_packet::MediaType;

    fn full(prefix: &mut MediaPrefix, f: &MediaFields, frame: &[u8]) -> Vec<u8> {
        let mut v = prefix.build(f, frame.len()).to_vec();
        v.extend_from_slice(frame);
        v
    }

    /// DIAGNOSTICS as upstream's web client fills it: the measured peer's
    /// session id in `sender_id`, the reporter's own id in `target_id`, the
    /// audio or video metrics by medium.
    #[test]
    fn diagnostics_carry_the_peer_session_and_the_reporter() {
        let d = Diagnostic {
            peer_session: 42,
            reporter: "me-1",
            timestamp_ms: 1_700_000_000_000,
            media_type: media_type::VIDEO,
            fps: 29.5,
            kbps: 480,
        };
        let w = PacketWrapper::parse_from_bytes(&diagnostics("me-1", &d)).unwrap();
        assert_eq!(w.packet_type.enum_value(), Ok(PacketType::DIAGNOSTICS));
        assert_eq!(w.user_id, b"me-1");
        let p = DiagnosticsPacket::parse_from_bytes(&w.data).unwrap();
        assert_eq!((p.sender_id.as_str(), p.target_id.as_str()), ("42", "me-1"));
        assert_eq!(p.media_type.enum_value(), Ok(MediaType::VIDEO));
        assert_eq!(
            (p.video_metrics.fps_received, p.video_metrics.bitrate_kbps),
            (29.5, 480)
        );
        assert!(p.audio_metrics.is_none());
        let audio = Diagnostic {
            media_type: media_type::AUDIO,
            fps: 50.0,
            ..d
        };
        let p = DiagnosticsPacket::parse_from_bytes(
            &PacketWrapper::parse_from_bytes(&diagnostics("me-1", &audio))
                .unwrap()
                .data,
        )
        .unwrap();
        assert_eq!(p.audio_metrics.fps_received, 50.0);
        assert!(p.video_metrics.is_none());
    }

    /// HEALTH: each peer by its session id, what is measured set and the
    /// rest (NetEQ, the decoder) left unset; no RTT is 0, as upstream sends.
    #[test]
    fn health_reports_each_peer_and_leaves_unmeasured_fields_unset() {
        let peers = [
            (
                7,
                PeerHealth {
                    can_listen: true,
                    can_see: true,
                    video_fps: Some(30.0),
                },
            ),
            (9, PeerHealth::default()),
        ];
        let h = Health {
            session_label: "session_1700000000",
            meeting_id: "room-1",
            user_id: "me-1",
            timestamp_ms: 1_700_000_005_000,
            audio_enabled: true,
            video_enabled: false,
            peers: &peers,
            server_url: "https://127.0.0.1:4433",
            server_rtt_ms: Some(1.5),
        };
        let w = PacketWrapper::parse_from_bytes(&health(&h)).unwrap();
        assert_eq!(w.packet_type.enum_value(), Ok(PacketType::HEALTH));
        let p = HealthPacket::parse_from_bytes(&w.data).unwrap();
        assert_eq!(
            (p.session_id.as_str(), p.meeting_id.as_str()),
            ("session_1700000000", "room-1")
        );
        assert_eq!(p.reporting_user_id, b"me-1");
        assert!(p.reporting_audio_enabled && !p.reporting_video_enabled);
        assert_eq!(
            (p.active_server_type.as_str(), p.active_server_rtt_ms),
            ("webtransport", 1.5)
        );
        let seen = &p.peer_stats["7"];
        assert!(seen.can_listen && seen.can_see && seen.audio_enabled && seen.video_enabled);
        assert_eq!(seen.video_stats.fps_received, 30.0);
        assert!(seen.neteq_stats.is_none());
        let quiet = &p.peer_stats["9"];
        assert!(!quiet.can_listen && quiet.video_stats.is_none());
    }

    #[test]
    fn keyframe_requests_name_the_camera_or_the_screen() {
        for (screen, want) in [(false, KEYFRAME_VIDEO), (true, KEYFRAME_SCREEN)] {
            let bytes = keyframe_request_for("a", "b", screen, 1.0);
            let m = parse_media(parse(&bytes).unwrap().data).unwrap();
            assert_eq!(
                (m.media_type, m.user_id, m.data),
                (media_type::KEYFRAME_REQUEST, &b"b"[..], want)
            );
        }
    }

    #[test]
    fn video_prefix_parses_with_protobuf() {
        let mut b = MediaPrefix::new("bot-7");
        let frame = vec![0xabu8; 300];
        let f = MediaFields {
            media_type: media_type::VIDEO,
            sequence: 1 << 40,
            timestamp_ms: 1_700_000_000_123.5,
            duration_ms: 33.3,
            key: true,
            layer: 0,
        };
        let bytes = full(&mut b, &f, &frame);
        let w = PacketWrapper::parse_from_bytes(&bytes).unwrap();
        assert_eq!(w.packet_type.enum_value(), Ok(PacketType::MEDIA));
        assert_eq!(w.user_id, b"bot-7");
        let m = MediaPacket::parse_from_bytes(&w.data).unwrap();
        assert_eq!(m.media_type.enum_value(), Ok(MediaType::VIDEO));
        assert_eq!(m.user_id, b"bot-7");
        assert_eq!(m.data, frame);
        assert_eq!(m.frame_type, "key");
        assert_eq!(m.timestamp, 1_700_000_000_123.5);
        assert_eq!(m.duration, 33.3);
        assert_eq!(m.video_metadata.sequence, 1 << 40);
        assert_eq!(
            m.video_metadata.codec.enum_value(),
            Ok(VideoCodec::VP9_PROFILE0_LEVEL10_8BIT)
        );
        assert!(m.audio_metadata.is_none());
    }

    #[test]
    fn audio_prefix_parses_with_protobuf_and_ours() {
        let mut b = MediaPrefix::new("a");
        for (seq, len) in [(0u64, 1usize), (127, 80), (128, 200), (u64::MAX, 16_384)] {
            let frame: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let f = MediaFields {
                media_type: media_type::AUDIO,
                sequence: seq,
                timestamp_ms: 5.0,
                duration_ms: 20.0,
                key: true,
                layer: 0,
            };
            let bytes = full(&mut b, &f, &frame);
            let w = PacketWrapper::parse_from_bytes(&bytes).unwrap();
            let m = MediaPacket::parse_from_bytes(&w.data).unwrap();
            assert_eq!(m.media_type.enum_value(), Ok(MediaType::AUDIO));
            assert_eq!(m.audio_metadata.sequence, seq);
            assert_eq!(m.data, frame);
            assert_eq!(m.frame_type, "key");

            let p = parse(&bytes).unwrap();
            assert_eq!(p.packet_type, packet_type::MEDIA);
            let ours = parse_media(p.data).unwrap();
            assert_eq!(ours.sequence, Some(seq));
            assert_eq!(ours.data, &frame[..]);
            assert!(ours.is_key());
            assert_eq!(ours.timestamp_ms, 5.0);
        }
    }

    #[test]
    fn parses_protobuf_built_packets() {
        let flags = HeartbeatFlags {
            audio: true,
            video: false,
            screen: true,
            speaking: false,
        };
        let hb = heartbeat("u1", 42.0, flags);
        let p = parse(&hb).unwrap();
        assert_eq!(p.user_id, b"u1");
        let m = parse_media(p.data).unwrap();
        assert_eq!(m.media_type, media_type::HEARTBEAT);
        assert_eq!(m.heartbeat, Some(flags));
        assert_eq!(m.timestamp_ms, 42.0);

        let k = keyframe_request("viewer", "target", 1.0);
        let p = parse(&k).unwrap();
        assert_eq!(p.user_id, b"viewer");
        let m = parse_media(p.data).unwrap();
        assert_eq!(m.media_type, media_type::KEYFRAME_REQUEST);
        assert_eq!(m.user_id, b"target");
        assert_eq!(m.data, b"VIDEO");

        let c = connection("u1", "room");
        let p = parse(&c).unwrap();
        assert_eq!(p.packet_type, packet_type::CONNECTION);
        let cp = ConnectionPacket::parse_from_bytes(p.data).unwrap();
        assert_eq!(cp.meeting_id, "room");
    }

    #[test]
    fn heartbeat_flags_each_alone_and_as_protobuf_writes_them() {
        let all = [
            HeartbeatFlags::default(),
            HeartbeatFlags {
                audio: true,
                ..Default::default()
            },
            HeartbeatFlags {
                video: true,
                ..Default::default()
            },
            HeartbeatFlags {
                screen: true,
                ..Default::default()
            },
            HeartbeatFlags {
                speaking: true,
                ..Default::default()
            },
            HeartbeatFlags {
                audio: true,
                video: true,
                screen: true,
                speaking: true,
            },
        ];
        for flags in all {
            let hb = heartbeat("u", 1.0, flags);
            let w = PacketWrapper::parse_from_bytes(&hb).unwrap();
            let m = MediaPacket::parse_from_bytes(&w.data).unwrap();
            let h = &m.heartbeat_metadata;
            assert_eq!(
                (
                    h.audio_enabled,
                    h.video_enabled,
                    h.screen_enabled,
                    h.is_speaking
                ),
                (flags.audio, flags.video, flags.screen, flags.speaking)
            );
            let ours = parse_media(parse(&hb).unwrap().data).unwrap();
            assert_eq!(ours.heartbeat, Some(flags), "{flags:?}");
        }
        // No heartbeat_metadata: no flags; an empty one: all false.
        assert_eq!(parse_media(&[0x08, 0x04]).unwrap().heartbeat, None);
        assert_eq!(
            parse_media(&[0x08, 0x04, 0x4a, 0x00]).unwrap().heartbeat,
            Some(HeartbeatFlags::default())
        );
        // A truncated heartbeat_metadata is an error, not a guess.
        assert_eq!(parse_media(&[0x4a, 0x02, 0x08]), Err(WireError::Truncated));
    }

    #[test]
    fn screen_frames_are_built_and_parsed_as_video() {
        for key in [true, false] {
            let f = MediaFields {
                media_type: media_type::SCREEN,
                sequence: 300,
                timestamp_ms: 7.0,
                duration_ms: 200.0,
                key,
                layer: 0,
            };
            let bytes = media_packet("sharer", &f, &[9; 50]);
            let w = PacketWrapper::parse_from_bytes(&bytes).unwrap();
            let m = MediaPacket::parse_from_bytes(&w.data).unwrap();
            assert_eq!(m.media_type.enum_value(), Ok(MediaType::SCREEN));
            assert_eq!(m.video_metadata.sequence, 300);
            assert_eq!(m.duration, 200.0);
            let ours = parse_media(parse(&bytes).unwrap().data).unwrap();
            assert_eq!(ours.media_type, media_type::SCREEN);
            assert_eq!(ours.sequence, Some(300));
            assert_eq!(ours.codec, CODEC_VP9_PROFILE0);
            assert_eq!(ours.is_key(), key);
            assert_eq!(ours.data, &[9; 50][..]);
        }
    }

    #[test]
    fn rejects_truncated_and_garbage() {
        let mut b = MediaPrefix::new("u");
        let f = MediaFields {
            media_type: media_type::VIDEO,
            sequence: 9,
            timestamp_ms: 1.0,
            duration_ms: 33.0,
            key: false,
            layer: 0,
        };
        let bytes = full(&mut b, &f, &[1, 2, 3, 4]);
        for cut in 1..bytes.len() {
            // Every strict prefix either fails or yields a wrapper whose data is shorter.
            match parse(&bytes[..cut]) {
                Err(e) => assert_eq!(e, WireError::Truncated),
                Ok(p) => assert!(p.data.len() < bytes.len() - 4),
            }
        }
        assert_eq!(parse(&[0x0b]), Err(WireError::BadWireType(3)));
        assert_eq!(parse(&[0xff; 11]), Err(WireError::BadVarint));
    }

    #[test]
    fn varint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn server_packets_parse() {
        use videocall_types::protos::packet_wrapper::packet_wrapper::PacketType;
        let who = Participant {
            user_id: "bob",
            session_id: 42,
            display_name: "Bob",
        };
        let b = participant("room", who, true);
        let w = PacketWrapper::parse_from_bytes(&b).unwrap();
        assert_eq!(w.packet_type.enum_value(), Ok(PacketType::MEETING));
        assert_eq!(w.user_id, SYSTEM_USER_ID.as_bytes());
        assert_eq!(parse_meeting(&w.data), Ok(MeetingEvent::Joined));
        let p = MeetingPacket::parse_from_bytes(&w.data).unwrap();
        assert_eq!(
            (p.session_id, p.target_user_id.as_slice()),
            (42, &b"bob"[..])
        );
        let left = participant("room", who, false);
        let w = PacketWrapper::parse_from_bytes(&left).unwrap();
        assert_eq!(parse_meeting(&w.data), Ok(MeetingEvent::Left));
        let started = meeting_started("room", "bob", 5);
        assert_eq!(parse(&started).unwrap().packet_type, packet_type::MEETING);
        let w = PacketWrapper::parse_from_bytes(&started).unwrap();
        assert_eq!(parse_meeting(&w.data), Ok(MeetingEvent::Started));
        let s = PacketWrapper::parse_from_bytes(&session_assigned(7)).unwrap();
        assert_eq!(s.session_id, 7);
        let c = PacketWrapper::parse_from_bytes(&congestion("r", 7)).unwrap();
        assert_eq!(
            (c.packet_type.enum_value(), c.session_id),
            (Ok(PacketType::CONGESTION), 7)
        );
        assert_eq!(parse_meeting(&[0xff]), Err(WireError::Malformed));
    }

    /// Regression: field number 0 was read as an unknown field and skipped,
    /// so a framed stream read whole (`[0 0 0 len][wrapper]...`) parsed as
    /// its last packet: a one-packet-per-stream relay counted a framed
    /// client's stream as audio and relayed it as such. Upstream's decoder
    /// (rust-protobuf) refuses the tag, so the packet is opaque there.
    #[test]
    fn field_number_zero_is_refused_as_upstream_refuses_it() {
        let mut framed = Vec::new();
        for p in [
            connection("u", "m"),
            heartbeat("u", 1.0, HeartbeatFlags::default()),
        ] {
            framed.extend_from_slice(&(p.len() as u32).to_be_bytes());
            framed.extend_from_slice(&p);
        }
        assert!(PacketWrapper::parse_from_bytes(&framed).is_err());
        assert_eq!(parse(&framed), Err(WireError::FieldZero));
        assert_eq!(parse(&[0, 0]), Err(WireError::FieldZero));
        assert_eq!(parse_media(&[0x02, 0]), Err(WireError::FieldZero));
    }

    #[test]
    fn appended_session_id_field_sets_the_session_id() {
        for id in [1u64, 127, 128, 0xdead_beef_cafe, u64::MAX] {
            let mut w = connection("u", "m");
            w.extend_from_slice(&session_id_field(id));
            let p = PacketWrapper::parse_from_bytes(&w).unwrap();
            assert_eq!(p.session_id, id);
            assert_eq!(parse(&w).unwrap().session_id, id);
        }
    }
}
