//! Fixed little-endian records: the header and the track table, and the index entry.
//!
//! Every record has a fixed size and explicit field offsets, so a reader can
//! decode it straight from the file's bytes with no parser state. Reserved bytes are
//! written as zero and ignored on read.

use super::Error;

/// The first eight bytes of every pack.
pub const MAGIC: [u8; 8] = *b"SYNTHPAK";
/// The format version this build writes. It also reads [`MIN_VERSION`] and up.
pub const VERSION: u32 = 2;
/// The oldest format version this build reads (version 1: no roles, variants
/// or voice flags; read as main tracks, variant 0, audio all voice).
pub const MIN_VERSION: u32 = 1;

/// The largest pack the reader reads, in bytes (4 GiB). The reader holds the
/// whole file in memory, and frame lengths are 32-bit; the default pack is
/// under 1 MB, a long 1080p one a few hundred.
pub const MAX_LEN: u64 = 4 << 30;

pub(crate) const HEADER_LEN: usize = 128;
pub(crate) const TRACK_LEN: usize = 96;
pub(crate) const ENTRY_LEN: usize = 32;
/// Payloads start on a page boundary (a file offset of 4096).
pub(crate) const PAYLOAD_START: u64 = 4096;
/// Each frame's payload starts on this alignment.
pub(crate) const FRAME_ALIGN: u64 = 16;
/// Longest track name, in bytes (the record holds 32 with a terminating zero).
pub(crate) const NAME_MAX: usize = 31;

/// Bit 0 of an index entry's flags: the frame is a key frame.
pub(crate) const FLAG_KEY: u32 = 1;
/// Bit 1 of an index entry's flags (version 2, audio only): the frame is speech.
pub(crate) const FLAG_VOICE: u32 = 2;
/// The flag bits a version-1 pack may set.
const FLAGS_V1: u32 = FLAG_KEY;
/// The flag bits a version-2 pack may set.
const FLAGS_V2: u32 = FLAG_KEY | FLAG_VOICE;

/// The flag bits a pack of `version` may set; others are refused on read.
pub(crate) fn known_flags(version: u32) -> u32 {
    if version >= 2 {
        FLAGS_V2
    } else {
        FLAGS_V1
    }
}

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// Audio frames.
    Audio,
    /// Video frames.
    Video,
}

/// How a track's frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus packets (48 kHz, one frame each).
    Opus,
    /// VP9 profile 0 frames, 8-bit 4:2:0.
    Vp9,
}

/// What a track is for, beyond its kind (version 2; a version-1 track is [`Role::Main`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A participant's camera (video) or microphone (audio).
    Main,
    /// A screen share (video only).
    Screen,
    /// Encoded silence, sent for a participant who is not talking (audio only).
    Silence,
}

impl Role {
    /// The role's byte in a track record.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Role::Main => 0,
            Role::Screen => 1,
            Role::Silence => 2,
        }
    }

    /// The role a track record's byte names, if any.
    pub(crate) fn from_byte(b: u8) -> Option<Role> {
        match b {
            0 => Some(Role::Main),
            1 => Some(Role::Screen),
            2 => Some(Role::Silence),
            _ => None,
        }
    }

    /// Its name in text: `main`, `screen` or `silence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Screen => "screen",
            Role::Silence => "silence",
        }
    }
}

/// Where a track's frames came from, as recorded in the pack's optional
/// source table (see [`Source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The pack's writer encoded them (from a file or a generated source).
    Encoded,
    /// They were copied unchanged from a file (passthrough).
    Copied,
}

impl Origin {
    /// The origin's byte in the source table.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Origin::Encoded => 1,
            Origin::Copied => 2,
        }
    }

    /// The origin a source-table byte names (0: not recorded).
    pub(crate) fn from_byte(b: u8) -> Option<Option<Origin>> {
        match b {
            0 => Some(None),
            1 => Some(Some(Origin::Encoded)),
            2 => Some(Some(Origin::Copied)),
            _ => None,
        }
    }

    /// Its name in text: `encoded` or `copied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Encoded => "encoded",
            Origin::Copied => "copied",
        }
    }
}

/// Where one track came from: written with
/// [`Writer::set_source`](super::Writer::set_source), read with
/// [`Reader::source`](super::Reader::source). Informative only: nothing
/// that sends a pack reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Encoded by the writer, or copied from a file.
    pub origin: Origin,
    /// What from, in words: a file (and its track) or a generated source,
    /// e.g. `clip.webm (WebM track 1, VP9 640x360)` or `tone: 440 Hz sine`.
    pub from: String,
}

/// The longest `from` text a source record holds, in bytes.
pub const SOURCE_TEXT_MAX: usize = 4096;

/// Bytes before the text in a source record: origin, reserved, text length.
pub(crate) const SOURCE_RECORD_HEAD: usize = 4;

/// Encodes the source table: one record per track, in track order.
pub(crate) fn encode_sources(sources: &[Option<Source>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in sources {
        let (origin, text) = match s {
            Some(s) => (s.origin.to_byte(), s.from.as_bytes()),
            None => (0, &[][..]),
        };
        out.push(origin);
        out.push(0);
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text);
    }
    out
}

/// Decodes a source table of `tracks` records that fills `b` exactly.
pub(crate) fn decode_sources(b: &[u8], tracks: usize) -> Result<Vec<Option<Source>>, String> {
    let mut out = Vec::with_capacity(tracks);
    let mut at = 0;
    for t in 0..tracks {
        let head = b
            .get(at..at + SOURCE_RECORD_HEAD)
            .ok_or_else(|| format!("ends inside track {t}'s record"))?;
        let origin = Origin::from_byte(head[0])
            .ok_or_else(|| format!("track {t}: unknown origin {}", head[0]))?;
        let len = u16_at(head, 2) as usize;
        let text = b
            .get(at + SOURCE_RECORD_HEAD..at + SOURCE_RECORD_HEAD + len)
            .ok_or_else(|| format!("track {t}'s text runs past the table"))?;
        let from = std::str::from_utf8(text)
            .map_err(|_| format!("track {t}'s text is not UTF-8"))?
            .to_owned();
        out.push(match origin {
            Some(origin) => Some(Source { origin, from }),
            None if from.is_empty() => None,
            None => return Err(format!("track {t}: text without an origin")),
        });
        at += SOURCE_RECORD_HEAD + len;
    }
    if at != b.len() {
        return Err(format!(
            "{} bytes left after the {tracks} records",
            b.len() - at
        ));
    }
    Ok(out)
}

/// A frame's flags, as [`Writer::push_frame_flags`](super::Writer::push_frame_flags) takes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameFlags {
    /// A decoder can start at this frame (every Opus packet is one).
    pub key: bool,
    /// Audio only: voice-activity detection found speech in this frame.
    pub voice: bool,
}

/// One track's header record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// Audio or video.
    pub kind: TrackKind,
    /// Opus or VP9.
    pub codec: Codec,
    /// Short name, at most 31 bytes, e.g. `audio-opus` or `video-640x360`.
    pub name: String,
    /// Ticks per second of pts and durations (48000 for audio, 90000 for video).
    pub clock_rate: u32,
    /// Frame width in pixels (0 for audio).
    pub width: u16,
    /// Frame height in pixels (0 for audio).
    pub height: u16,
    /// Frames per second, numerator (audio: 50 for 20 ms frames).
    pub fps_num: u32,
    /// Frames per second, denominator.
    pub fps_den: u32,
    /// Audio channels (0 for video).
    pub channels: u8,
    /// Bitrate the encoder aimed at, in bits per second.
    pub target_bitrate_bps: u32,
    /// Length of one loop of the track, in ticks of `clock_rate`.
    pub loop_duration: u64,
    /// Number of frames; counted by the writer, filled in by the reader.
    pub frame_count: u32,
    /// What the track is for (version 2; [`Role::Main`] in version 1).
    pub role: Role,
    /// Which variant of its rendition or voice the track is: 0 for the first or
    /// only one (version 2; 0 in version 1). See [`Reader::variants`](super::Reader::variants).
    pub variant: u8,
}

impl Track {
    /// An Opus track as every pack has it: 48 kHz clock, mono, 20 ms frames
    /// (50 a second); `loop_duration` in 48 kHz ticks.
    pub fn opus(name: &str, target_bitrate_bps: u32, loop_duration: u64) -> Track {
        Track {
            kind: TrackKind::Audio,
            codec: Codec::Opus,
            name: name.into(),
            clock_rate: 48_000,
            width: 0,
            height: 0,
            fps_num: 50,
            fps_den: 1,
            channels: 1,
            target_bitrate_bps,
            loop_duration,
            frame_count: 0,
            role: Role::Main,
            variant: 0,
        }
    }

    /// A VP9 rendition on the 90 kHz video clock at `fps` frames a second;
    /// `loop_duration` in 90 kHz ticks.
    pub fn vp9(
        name: &str,
        (width, height): (u16, u16),
        fps: u32,
        target_bitrate_bps: u32,
        loop_duration: u64,
    ) -> Track {
        Track {
            kind: TrackKind::Video,
            codec: Codec::Vp9,
            name: name.into(),
            clock_rate: 90_000,
            width,
            height,
            fps_num: fps,
            fps_den: 1,
            channels: 0,
            target_bitrate_bps,
            loop_duration,
            frame_count: 0,
            role: Role::Main,
            variant: 0,
        }
    }

    /// The same track with role `role` (the constructors give [`Role::Main`]).
    pub fn with_role(mut self, role: Role) -> Track {
        self.role = role;
        self
    }

    /// The same track as variant `variant` (the constructors give 0).
    pub fn with_variant(mut self, variant: u8) -> Track {
        self.variant = variant;
        self
    }

    /// Length of one loop in microseconds.
    pub fn loop_duration_us(&self) -> u64 {
        if self.clock_rate == 0 {
            return 0;
        }
        (self.loop_duration as u128 * 1_000_000 / self.clock_rate as u128) as u64
    }

    /// Bitrate of `payload_bytes` spread over one loop, bits per second.
    pub fn bitrate_bps(&self, payload_bytes: u64) -> f64 {
        if self.clock_rate == 0 || self.loop_duration == 0 {
            return 0.0;
        }
        payload_bytes as f64 * 8.0 * self.clock_rate as f64 / self.loop_duration as f64
    }

    /// Frames per second as a float.
    pub fn fps(&self) -> f64 {
        if self.fps_den == 0 {
            return 0.0;
        }
        self.fps_num as f64 / self.fps_den as f64
    }
}

/// The decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub version: u32,
    pub track_count: u32,
    pub frame_count: u32,
    pub tracks_offset: u64,
    pub index_offset: u64,
    pub payload_offset: u64,
    pub payload_len: u64,
    pub file_len: u64,
    pub loop_duration_us: u64,
    pub body_crc32: u32,
    pub header_crc32: u32,
    /// Where the source table sits (0 with `sources_len` 0: none).
    pub sources_offset: u64,
    /// Its length in bytes.
    pub sources_len: u32,
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Header {
    /// Header offsets: magic 0, version 8, header_len 12, track_count 16, track_len 20,
    /// entry_len 24, frame_count 28, tracks_offset 32, index_offset 40, payload_offset 48,
    /// payload_len 56, file_len 64, loop_duration_us 72, body_crc32 80, header_crc32 84,
    /// sources_offset 88, sources_len 96.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.version.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..20].copy_from_slice(&self.track_count.to_le_bytes());
        b[20..24].copy_from_slice(&(TRACK_LEN as u32).to_le_bytes());
        b[24..28].copy_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
        b[28..32].copy_from_slice(&self.frame_count.to_le_bytes());
        b[32..40].copy_from_slice(&self.tracks_offset.to_le_bytes());
        b[40..48].copy_from_slice(&self.index_offset.to_le_bytes());
        b[48..56].copy_from_slice(&self.payload_offset.to_le_bytes());
        b[56..64].copy_from_slice(&self.payload_len.to_le_bytes());
        b[64..72].copy_from_slice(&self.file_len.to_le_bytes());
        b[72..80].copy_from_slice(&self.loop_duration_us.to_le_bytes());
        b[80..84].copy_from_slice(&self.body_crc32.to_le_bytes());
        b[88..96].copy_from_slice(&self.sources_offset.to_le_bytes());
        b[96..100].copy_from_slice(&self.sources_len.to_le_bytes());
        // header_crc32 covers the header with its own field zeroed.
        let crc = crc32fast::hash(&b);
        b[84..88].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks magic, version, record sizes and the header checksum.
    pub fn decode(b: &[u8]) -> Result<Header, Error> {
        if b.len() < 8 || b[0..8] != MAGIC {
            let mut found = [0u8; 8];
            let n = b.len().min(8);
            found[..n].copy_from_slice(&b[..n]);
            if b.len() < 8 {
                return Err(Error::Truncated {
                    what: "header",
                    needed: HEADER_LEN as u64,
                    len: b.len() as u64,
                });
            }
            return Err(Error::BadMagic { found });
        }
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "header",
                needed: HEADER_LEN as u64,
                len: b.len() as u64,
            });
        }
        let version = u32_at(b, 8);
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let mut zeroed = [0u8; HEADER_LEN];
        zeroed.copy_from_slice(&b[..HEADER_LEN]);
        zeroed[84..88].fill(0);
        let stored = u32_at(b, 84);
        let computed = crc32fast::hash(&zeroed);
        if stored != computed {
            return Err(Error::Checksum {
                what: "header",
                stored,
                computed,
            });
        }
        let sizes = (u32_at(b, 12), u32_at(b, 20), u32_at(b, 24));
        if sizes != (HEADER_LEN as u32, TRACK_LEN as u32, ENTRY_LEN as u32) {
            return Err(Error::BadHeader(format!(
                "record sizes {sizes:?} differ from version {VERSION}'s"
            )));
        }
        Ok(Header {
            version,
            track_count: u32_at(b, 16),
            frame_count: u32_at(b, 28),
            tracks_offset: u64_at(b, 32),
            index_offset: u64_at(b, 40),
            payload_offset: u64_at(b, 48),
            payload_len: u64_at(b, 56),
            file_len: u64_at(b, 64),
            loop_duration_us: u64_at(b, 72),
            body_crc32: u32_at(b, 80),
            header_crc32: stored,
            // Reserved, so ignored, in version 1.
            sources_offset: if version >= 2 { u64_at(b, 88) } else { 0 },
            sources_len: if version >= 2 { u32_at(b, 96) } else { 0 },
        })
    }
}

/// Track record offsets: kind 0, codec 1, channels 2, variant 3, clock_rate 4, width 8,
/// height 10, fps_num 12, fps_den 16, target_bitrate_bps 20, first_frame 24, frame_count 28,
/// loop_duration 32, name 40..72 (zero-padded UTF-8), role 72.
pub(crate) fn encode_track(t: &Track, first_frame: u32) -> [u8; TRACK_LEN] {
    let mut b = [0u8; TRACK_LEN];
    b[0] = match t.kind {
        TrackKind::Audio => 1,
        TrackKind::Video => 2,
    };
    b[1] = match t.codec {
        Codec::Opus => 1,
        Codec::Vp9 => 2,
    };
    b[2] = t.channels;
    b[3] = t.variant;
    b[4..8].copy_from_slice(&t.clock_rate.to_le_bytes());
    b[8..10].copy_from_slice(&t.width.to_le_bytes());
    b[10..12].copy_from_slice(&t.height.to_le_bytes());
    b[12..16].copy_from_slice(&t.fps_num.to_le_bytes());
    b[16..20].copy_from_slice(&t.fps_den.to_le_bytes());
    b[20..24].copy_from_slice(&t.target_bitrate_bps.to_le_bytes());
    b[24..28].copy_from_slice(&first_frame.to_le_bytes());
    b[28..32].copy_from_slice(&t.frame_count.to_le_bytes());
    b[32..40].copy_from_slice(&t.loop_duration.to_le_bytes());
    b[40..40 + t.name.len()].copy_from_slice(t.name.as_bytes());
    b[72] = t.role.to_byte();
    b
}

/// Decodes a track record of a pack of `version`; returns the track and the
/// index of its first frame. Version 1 had no variant or role: bytes 3 and 72
/// were reserved, so they are ignored and the track is variant 0, [`Role::Main`].
pub(crate) fn decode_track(b: &[u8], track: usize, version: u32) -> Result<(Track, u32), Error> {
    let bad = |reason: String| Error::BadTrack { track, reason };
    let kind = match b[0] {
        1 => TrackKind::Audio,
        2 => TrackKind::Video,
        k => return Err(bad(format!("unknown kind {k}"))),
    };
    let codec = match (b[1], kind) {
        (1, TrackKind::Audio) => Codec::Opus,
        (2, TrackKind::Video) => Codec::Vp9,
        (c, _) => return Err(bad(format!("codec {c} does not fit a {kind:?} track"))),
    };
    let name_bytes = &b[40..72];
    let name_len = name_bytes.iter().position(|&c| c == 0).unwrap_or(32);
    if name_len == 0 || name_len > NAME_MAX {
        return Err(bad("name is empty or not zero-terminated".into()));
    }
    let name = std::str::from_utf8(&name_bytes[..name_len])
        .map_err(|_| bad("name is not UTF-8".into()))?
        .to_owned();
    let (variant, role) = if version >= 2 {
        let role = Role::from_byte(b[72]).ok_or_else(|| bad(format!("unknown role {}", b[72])))?;
        (b[3], role)
    } else {
        (0, Role::Main)
    };
    let t = Track {
        kind,
        codec,
        name,
        channels: b[2],
        clock_rate: u32_at(b, 4),
        width: u16_at(b, 8),
        height: u16_at(b, 10),
        fps_num: u32_at(b, 12),
        fps_den: u32_at(b, 16),
        target_bitrate_bps: u32_at(b, 20),
        frame_count: u32_at(b, 28),
        loop_duration: u64_at(b, 32),
        role,
        variant,
    };
    validate_track(&t).map_err(bad)?;
    Ok((t, u32_at(b, 24)))
}

/// Checks the invariants the writer and the reader both rely on.
pub(crate) fn validate_track(t: &Track) -> Result<(), String> {
    if t.name.is_empty() || t.name.len() > NAME_MAX || t.name.contains('\0') {
        return Err(format!(
            "name {:?} must be 1 to {NAME_MAX} bytes with no NUL",
            t.name
        ));
    }
    if t.clock_rate == 0 {
        return Err("clock rate is 0".into());
    }
    if t.fps_num == 0 || t.fps_den == 0 {
        return Err(format!(
            "frame rate {}/{} is not valid",
            t.fps_num, t.fps_den
        ));
    }
    match (t.kind, t.role) {
        (TrackKind::Video, _) if t.width == 0 || t.height == 0 => {
            Err(format!("video size {}x{} is not valid", t.width, t.height))
        }
        (TrackKind::Audio, _) if t.channels == 0 => Err("audio track with 0 channels".into()),
        (TrackKind::Audio, Role::Screen) => Err("role screen on an audio track".into()),
        (TrackKind::Video, Role::Silence) => Err("role silence on a video track".into()),
        _ => Ok(()),
    }
}

/// One decoded frame index entry. Offsets: offset 0 (u64, absolute), len 8, flags 12,
/// pts 16 (u64 ticks), duration 24 (u32 ticks), reserved 28.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub offset: u64,
    pub len: u32,
    pub flags: u32,
    pub pts: u64,
    pub duration: u32,
}

impl Entry {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.pts.to_le_bytes());
        b[24..28].copy_from_slice(&self.duration.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Entry {
        Entry {
            offset: u64_at(b, 0),
            len: u32_at(b, 8),
            flags: u32_at(b, 12),
            pts: u64_at(b, 16),
            duration: u32_at(b, 24),
        }
    }
}
