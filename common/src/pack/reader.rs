//! Pack reader: read the file once into memory, validate it, then slice without copying.
//!
//! The reader owns its bytes. A memory map would share pages with the file,
//! so another process truncating or rewriting the pack while it runs would kill
//! this one with SIGBUS (or change frames under its feet); a copy costs one
//! read of the file at open and the pack's size in memory once per process,
//! however many clients share the reader.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use bytes::Bytes;

use super::format::{
    decode_sources, decode_track, known_flags, Entry, Header, Role, Source, Track, TrackKind,
    ENTRY_LEN, FLAG_KEY, FLAG_VOICE, HEADER_LEN, MAX_LEN, TRACK_LEN,
};
use super::Error;

/// One frame of a track, borrowed from the reader's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The encoded frame (one Opus packet or one VP9 frame).
    pub data: &'a [u8],
    /// Presentation time in the track's clock ticks, from the start of the loop.
    pub pts: u64,
    /// Duration in the track's clock ticks.
    pub duration: u32,
    /// Whether a decoder can start at this frame.
    pub key: bool,
    /// Audio only: the encoder's voice-activity detection found speech in this
    /// 20 ms frame. Always false on video and on [`Role::Silence`] tracks; true
    /// on every audio frame of a version-1 pack, which had no detection.
    pub voice: bool,
}

/// An open, validated pack.
///
/// The whole file is read once at open; [`Reader::frame`] and
/// [`Reader::frame_bytes`] return views of that one buffer, so later changes
/// to the file have no effect on a reader. Cloning a [`Bytes`] from
/// [`Reader::frame_bytes`] costs a reference count, so one reader serves any
/// number of clients.
#[derive(Debug)]
pub struct Reader {
    bytes: Bytes,
    header: Header,
    tracks: Vec<Track>,
    first_entry: Vec<usize>,
    keyframes: Vec<Vec<u32>>,
    /// Each track's source, or none where the pack records none.
    sources: Vec<Option<Source>>,
}

impl Reader {
    /// Reads and validates the pack at `path`.
    ///
    /// Only a regular file of at most [`MAX_LEN`](super::MAX_LEN) bytes is
    /// read: a directory, a device or a FIFO is refused before it is opened
    /// (a FIFO would block the open, `/dev/zero` would never end), and a file
    /// that grows while it is read is cut off at the limit and refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, Error> {
        Reader::from_bytes(read_bounded(path.as_ref(), MAX_LEN)?)
    }

    /// Validates a pack held in memory (or any [`Bytes`] owner).
    pub fn from_bytes(bytes: Bytes) -> Result<Reader, Error> {
        let b: &[u8] = &bytes;
        let header = Header::decode(b)?;
        let len = b.len() as u64;
        if header.file_len > len {
            return Err(Error::Truncated {
                what: "file",
                needed: header.file_len,
                len,
            });
        }
        if header.file_len < len {
            return Err(Error::BadHeader(format!(
                "file is {len} bytes but the header says {}",
                header.file_len
            )));
        }
        check_layout(&header)?;
        let computed = crc32fast::hash(&b[HEADER_LEN..]);
        if computed != header.body_crc32 {
            return Err(Error::Checksum {
                what: "body",
                stored: header.body_crc32,
                computed,
            });
        }

        let mut tracks = Vec::with_capacity(header.track_count as usize);
        let mut first_entry = Vec::with_capacity(header.track_count as usize);
        let mut keyframes = Vec::with_capacity(header.track_count as usize);
        let mut next_first = 0u64;
        for i in 0..header.track_count as usize {
            let at = header.tracks_offset as usize + i * TRACK_LEN;
            let (track, first) = decode_track(&b[at..at + TRACK_LEN], i, header.version)?;
            if first as u64 != next_first {
                return Err(Error::BadTrack {
                    track: i,
                    reason: format!("first frame {first}, expected {next_first}"),
                });
            }
            next_first += track.frame_count as u64;
            if next_first > header.frame_count as u64 {
                return Err(Error::BadTrack {
                    track: i,
                    reason: format!(
                        "frames run past the index ({next_first} > {})",
                        header.frame_count
                    ),
                });
            }
            if tracks.iter().any(|t: &Track| t.name == track.name) {
                return Err(Error::BadTrack {
                    track: i,
                    reason: format!("duplicate name {:?}", track.name),
                });
            }
            keyframes.push(check_entries(b, &header, i, &track, first as usize)?);
            // All tracks loop together after the header's time; the writer
            // tolerates a microsecond of rounding between tracks, so does this.
            let track_us = track.loop_duration_us();
            if track_us.abs_diff(header.loop_duration_us) > 1 {
                return Err(Error::LoopMismatch {
                    track: i,
                    track_us,
                    header_us: header.loop_duration_us,
                });
            }
            first_entry.push(first as usize);
            tracks.push(track);
        }
        if next_first != header.frame_count as u64 {
            return Err(Error::BadHeader(format!(
                "tracks hold {next_first} frames but the header counts {}",
                header.frame_count
            )));
        }
        let sources = read_sources(b, &header)?;
        Ok(Reader {
            bytes,
            header,
            tracks,
            first_entry,
            keyframes,
            sources,
        })
    }

    /// The format version of the file.
    pub fn version(&self) -> u32 {
        self.header.version
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.header.file_len
    }

    /// The body checksum (CRC-32), verified at open.
    pub fn checksum(&self) -> u32 {
        self.header.body_crc32
    }

    /// Length of one loop of the pack in microseconds (all tracks loop together).
    pub fn loop_duration_us(&self) -> u64 {
        self.header.loop_duration_us
    }

    /// The tracks, in file order.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Where `track`'s frames came from (encoded by the writer, or copied
    /// from which file), if the pack records it: packs written before the
    /// source table existed, and tracks a writer said nothing of, give `None`.
    pub fn source(&self, track: usize) -> Option<&Source> {
        self.sources.get(track).and_then(Option::as_ref)
    }

    /// The id of the track named `name`.
    pub fn track_by_name(&self, name: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.name == name)
    }

    /// The first track of `kind`, if any: the first [`Role::Main`] track of
    /// that kind ([`Reader::first_track_with`]) when there is one, else the
    /// first of any role. A version-1 pack has only main tracks.
    pub fn first_track(&self, kind: TrackKind) -> Option<usize> {
        self.first_track_with(kind, Role::Main)
            .or_else(|| self.tracks.iter().position(|t| t.kind == kind))
    }

    /// The first track of `kind` and `role` in file order that is variant 0,
    /// else the first of that kind and role whatever its variant; `None` when
    /// the pack has none (e.g. no screen track, or a version-1 pack's silence).
    pub fn first_track_with(&self, kind: TrackKind, role: Role) -> Option<usize> {
        let of = |t: &Track| t.kind == kind && t.role == role;
        self.tracks
            .iter()
            .position(|t| of(t) && t.variant == 0)
            .or_else(|| self.tracks.iter().position(of))
    }

    /// Every track that is a variant of the same rendition or voice as
    /// `track` (same kind, role, width, height and target bitrate), `track`
    /// included, sorted by variant (then file order). Empty when `track` does
    /// not exist. Variants carry the same timing and, for main video, key
    /// frames at the same positions, so a client may send any of them in
    /// place of another; giving participants different variants keeps them
    /// from all sending identical media.
    pub fn variants(&self, track: usize) -> Vec<usize> {
        let Some(me) = self.tracks.get(track) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = (0..self.tracks.len())
            .filter(|&t| same_rendition(me, &self.tracks[t]))
            .collect();
        out.sort_by_key(|&t| (self.tracks[t].variant, t));
        out
    }

    /// Variant number `k` (modulo their count) of `track`'s rendition or
    /// voice: `variants(track)[k % len]`, so participant `k` of a meeting can
    /// take `variant_of(track, k)`. `track` itself when it does not exist.
    pub fn variant_of(&self, track: usize, k: usize) -> usize {
        let variants = self.variants(track);
        if variants.is_empty() {
            return track;
        }
        variants[k % variants.len()]
    }

    /// How many variants the first track of `kind` and `role`
    /// ([`Reader::first_track_with`]) has; 0 when the pack has no such track.
    pub fn variant_count(&self, kind: TrackKind, role: Role) -> usize {
        self.first_track_with(kind, role)
            .map_or(0, |t| self.variants(t).len())
    }

    /// Number of frames in `track` (0 for a track that does not exist).
    pub fn frame_count(&self, track: usize) -> usize {
        self.tracks.get(track).map_or(0, |t| t.frame_count as usize)
    }

    fn entry(&self, track: usize, index: usize) -> Option<Entry> {
        if index >= self.frame_count(track) {
            return None;
        }
        let at = self.header.index_offset as usize + (self.first_entry[track] + index) * ENTRY_LEN;
        Some(Entry::decode(&self.bytes[at..at + ENTRY_LEN]))
    }

    /// Frame `index` of `track`, borrowed from the reader.
    pub fn frame(&self, track: usize, index: usize) -> Option<Frame<'_>> {
        let e = self.entry(track, index)?;
        let start = e.offset as usize;
        // Version 1 had no voice-activity flag: its audio counts as all voice.
        let voice = if self.header.version >= 2 {
            e.flags & FLAG_VOICE != 0
        } else {
            self.tracks[track].kind == TrackKind::Audio
        };
        Some(Frame {
            data: &self.bytes[start..start + e.len as usize],
            pts: e.pts,
            duration: e.duration,
            key: e.flags & FLAG_KEY != 0,
            voice,
        })
    }

    /// Frame `index` of `track` as a [`Bytes`] sharing the reader's buffer (no copy).
    pub fn frame_bytes(&self, track: usize, index: usize) -> Option<Bytes> {
        let e = self.entry(track, index)?;
        let start = e.offset as usize;
        Some(self.bytes.slice(start..start + e.len as usize))
    }

    /// All frames of `track`, in order.
    pub fn frames(&self, track: usize) -> impl Iterator<Item = Frame<'_>> + '_ {
        (0..self.frame_count(track)).filter_map(move |i| self.frame(track, i))
    }

    /// Total frame bytes of `track` over one loop.
    pub fn payload_bytes(&self, track: usize) -> u64 {
        self.frames(track).map(|f| f.data.len() as u64).sum()
    }

    /// The measured bitrate of `track`: its frame bytes over one loop, bits per second.
    pub fn bitrate_bps(&self, track: usize) -> f64 {
        self.tracks
            .get(track)
            .map_or(0.0, |t| t.bitrate_bps(self.payload_bytes(track)))
    }

    /// Indexes of the key frames of `track`, ascending.
    pub fn keyframes(&self, track: usize) -> &[u32] {
        self.keyframes.get(track).map_or(&[], |k| k.as_slice())
    }

    /// Whether a client can switch between the video renditions at any key
    /// frame: every main video track (renditions and their variants; screen
    /// tracks do not count) has the same frame count, clock and frame times as
    /// the first one, and its key frames at the same positions. True for a
    /// pack with fewer than two main video tracks.
    pub fn keyframes_aligned(&self) -> bool {
        self.keyframe_mismatch().is_none()
    }

    /// The first main video track whose frames or key frames do not line up
    /// with the first main video track's, as `(first, other)`; `None` when all
    /// do. Screen tracks are left out: they have their own frame rate and key
    /// frames, and a client never switches between them and a camera.
    pub fn keyframe_mismatch(&self) -> Option<(usize, usize)> {
        let mut videos = (0..self.tracks.len()).filter(|&t| {
            self.tracks[t].kind == TrackKind::Video && self.tracks[t].role == Role::Main
        });
        let first = videos.next()?;
        let same = |t: usize| {
            self.frame_count(t) == self.frame_count(first)
                && self.tracks[t].clock_rate == self.tracks[first].clock_rate
                && self.keyframes(t) == self.keyframes(first)
                && self
                    .frames(t)
                    .zip(self.frames(first))
                    .all(|(a, b)| a.pts == b.pts)
        };
        videos.find(|&t| !same(t)).map(|t| (first, t))
    }

    /// The first key frame at or after `index`, wrapping to the loop's start.
    pub fn next_keyframe(&self, track: usize, index: usize) -> Option<usize> {
        let keys = self.keyframes(track);
        let pos = keys.partition_point(|&k| (k as usize) < index);
        keys.get(pos).or(keys.first()).map(|&k| k as usize)
    }
}

/// Whether `b` is a variant of the same rendition or voice as `a`.
fn same_rendition(a: &Track, b: &Track) -> bool {
    (a.kind, a.role, a.width, a.height, a.target_bitrate_bps)
        == (b.kind, b.role, b.width, b.height, b.target_bitrate_bps)
}

/// The source table, when the header points at one: it must lie inside the
/// payload area and hold one well-formed record per track.
fn read_sources(b: &[u8], h: &Header) -> Result<Vec<Option<Source>>, Error> {
    let none = vec![None; h.track_count as usize];
    if h.sources_offset == 0 && h.sources_len == 0 {
        return Ok(none);
    }
    let bad = |m: String| Err(Error::BadSources(m));
    let payload_end = h.payload_offset + h.payload_len;
    let end = h.sources_offset.checked_add(h.sources_len as u64);
    if h.sources_offset < h.payload_offset || end.is_none_or(|end| end > payload_end) {
        return bad(format!(
            "{}+{} lies outside the payload area {}..{payload_end}",
            h.sources_offset, h.sources_len, h.payload_offset
        ));
    }
    let table = &b[h.sources_offset as usize..(h.sources_offset + h.sources_len as u64) as usize];
    decode_sources(table, h.track_count as usize).or_else(bad)
}

/// Sections must sit inside the file, in order, without overlapping.
fn check_layout(h: &Header) -> Result<(), Error> {
    let bad = |m: String| Err(Error::BadHeader(m));
    let payload_end = h.payload_offset.checked_add(h.payload_len);
    let tracks_end = (h.track_count as u64)
        .checked_mul(TRACK_LEN as u64)
        .and_then(|n| n.checked_add(h.tracks_offset));
    let index_end = (h.frame_count as u64)
        .checked_mul(ENTRY_LEN as u64)
        .and_then(|n| n.checked_add(h.index_offset));
    let (Some(payload_end), Some(tracks_end), Some(index_end)) =
        (payload_end, tracks_end, index_end)
    else {
        return bad("section sizes overflow".into());
    };
    if h.payload_offset < HEADER_LEN as u64 {
        return bad(format!(
            "payload offset {} is inside the header",
            h.payload_offset
        ));
    }
    if payload_end > h.tracks_offset || tracks_end > h.index_offset || index_end != h.file_len {
        return bad(format!(
            "sections out of place: payload {}..{payload_end}, tracks {}..{tracks_end}, \
             index {}..{index_end}, file {}",
            h.payload_offset, h.tracks_offset, h.index_offset, h.file_len
        ));
    }
    if h.track_count == 0 {
        return bad("no tracks".into());
    }
    Ok(())
}

/// Checks every index entry of one track; returns its key-frame positions.
fn check_entries(
    b: &[u8],
    h: &Header,
    track_no: usize,
    track: &Track,
    first: usize,
) -> Result<Vec<u32>, Error> {
    let payload_end = h.payload_offset + h.payload_len;
    let mut keys = Vec::new();
    let mut next_pts = 0u64;
    for i in 0..track.frame_count as usize {
        let bad = |reason: String| Error::BadIndex {
            track: track_no,
            frame: i,
            reason,
        };
        let at = h.index_offset as usize + (first + i) * ENTRY_LEN;
        let e = Entry::decode(&b[at..at + ENTRY_LEN]);
        let end = e.offset.checked_add(e.len as u64);
        if e.len == 0 || e.offset < h.payload_offset || end.is_none_or(|end| end > payload_end) {
            return Err(bad(format!(
                "payload {}+{} lies outside the payload area {}..{payload_end}",
                e.offset, e.len, h.payload_offset
            )));
        }
        if e.duration == 0 || e.pts < next_pts {
            return Err(bad(format!(
                "pts {} (duration {}) goes back before {next_pts}",
                e.pts, e.duration
            )));
        }
        // A wrapped sum would let a later frame "go back" to tick 0 unnoticed.
        next_pts = e.pts.checked_add(e.duration as u64).ok_or_else(|| {
            bad(format!(
                "pts {} + duration {} overflows a 64-bit tick count",
                e.pts, e.duration
            ))
        })?;
        let unknown = e.flags & !known_flags(h.version);
        if unknown != 0 {
            return Err(bad(format!(
                "unknown flag bits {unknown:#x} for version {}",
                h.version
            )));
        }
        if e.flags & FLAG_VOICE != 0 && track.kind != TrackKind::Audio {
            return Err(bad("voice flag on a video frame".into()));
        }
        if e.flags & FLAG_VOICE != 0 && track.role == Role::Silence {
            return Err(bad("voice flag on a silence track".into()));
        }
        if e.flags & FLAG_KEY != 0 {
            keys.push(i as u32);
        }
        if i == 0 && track.kind == TrackKind::Video && e.flags & FLAG_KEY == 0 {
            return Err(bad("a video track must start with a key frame".into()));
        }
    }
    if track.frame_count == 0 {
        return Err(Error::BadTrack {
            track: track_no,
            reason: "no frames".into(),
        });
    }
    if next_pts != track.loop_duration {
        return Err(Error::BadTrack {
            track: track_no,
            reason: format!(
                "frames end at tick {next_pts} but the loop is {} ticks",
                track.loop_duration
            ),
        });
    }
    Ok(keys)
}

/// Reads the whole regular file at `path`, refusing anything else and anything
/// over `limit` bytes.
pub(super) fn read_bounded(path: &Path, limit: u64) -> Result<Bytes, Error> {
    // Before opening, so the error names a directory or device as such.
    check_regular(path, &std::fs::metadata(path)?)?;
    let (file, meta) = open_regular(path)?;
    if meta.len() > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    // The length is a hint, not a promise: the file may shrink or grow while it
    // is read, which the validation or the bound below catches.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    read_limited(file, path, limit, &mut bytes)?;
    Ok(Bytes::from(bytes))
}

/// Opens `path` for reading if what it names is a regular file, with its
/// metadata. The open never blocks: `O_NONBLOCK` makes opening a FIFO return
/// at once (a path swapped for one after a check would otherwise wait for a
/// writer), and the check is made on the opened file itself (fstat), so no
/// swap between a check and the open can get anything but a regular file read.
pub(super) fn open_regular(path: &Path) -> Result<(File, Metadata), Error> {
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // No effect on a regular file's reads.
        open.custom_flags(libc::O_NONBLOCK);
    }
    let file = open.open(path)?;
    let meta = file.metadata()?;
    check_regular(path, &meta)?;
    Ok((file, meta))
}

/// Appends at most `limit` bytes of `from` to `buf`; one more is an error.
pub(super) fn read_limited(
    from: impl Read,
    path: &Path,
    limit: u64,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    from.take(limit.saturating_add(1)).read_to_end(buf)?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(())
}

/// Refuses a directory, a device, a FIFO or a socket, naming which it is.
pub(super) fn check_regular(path: &Path, meta: &Metadata) -> Result<(), Error> {
    if meta.is_file() {
        return Ok(());
    }
    Err(Error::NotAFile {
        path: path.to_path_buf(),
        kind: file_kind(meta),
    })
}

/// What a file that is not a regular file is, for an error message.
pub(super) fn file_kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    if t.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}
