//! Memory-mapped pack reader: validate once at open, then slice without copying.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

use super::format::{
    decode_track, Entry, Header, Track, TrackKind, ENTRY_LEN, FLAG_KEY, HEADER_LEN, TRACK_LEN,
};
use super::Error;

/// One frame of a track, borrowed from the map.
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
}

/// An open, validated pack.
///
/// The whole file is mapped once; [`Reader::frame`] and [`Reader::frame_bytes`]
/// return views of the map. Cloning a [`Bytes`] from [`Reader::frame_bytes`]
/// costs a reference count, so one reader serves any number of clients.
#[derive(Debug)]
pub struct Reader {
    map: Bytes,
    header: Header,
    tracks: Vec<Track>,
    first_entry: Vec<usize>,
    keyframes: Vec<Vec<u32>>,
}

impl Reader {
    /// Maps and validates the pack at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, Error> {
        let file = File::open(path.as_ref())?;
        let len = file.metadata()?.len();
        if len < HEADER_LEN as u64 {
            // Too short to map meaningfully; read what is there for the error.
            let bytes = std::fs::read(path.as_ref())?;
            return Reader::from_bytes(Bytes::from(bytes));
        }
        // SAFETY: the map is read-only and private to this process. Another process
        // truncating or rewriting the file while it is mapped would be undefined
        // behaviour; packs are written once (to a temporary name, then renamed) and
        // never modified in place, which is what makes sharing one map sound.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Reader::from_bytes(Bytes::from_owner(map))
    }

    /// Validates a pack held in memory (or any [`Bytes`] owner).
    pub fn from_bytes(map: Bytes) -> Result<Reader, Error> {
        let b: &[u8] = &map;
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
            let (track, first) = decode_track(&b[at..at + TRACK_LEN], i)?;
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
            first_entry.push(first as usize);
            tracks.push(track);
        }
        if next_first != header.frame_count as u64 {
            return Err(Error::BadHeader(format!(
                "tracks hold {next_first} frames but the header counts {}",
                header.frame_count
            )));
        }
        Ok(Reader {
            map,
            header,
            tracks,
            first_entry,
            keyframes,
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

    /// The id of the track named `name`.
    pub fn track_by_name(&self, name: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.name == name)
    }

    /// The first track of `kind`, if any.
    pub fn first_track(&self, kind: TrackKind) -> Option<usize> {
        self.tracks.iter().position(|t| t.kind == kind)
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
        Some(Entry::decode(&self.map[at..at + ENTRY_LEN]))
    }

    /// Frame `index` of `track`, borrowed from the map.
    pub fn frame(&self, track: usize, index: usize) -> Option<Frame<'_>> {
        let e = self.entry(track, index)?;
        let start = e.offset as usize;
        Some(Frame {
            data: &self.map[start..start + e.len as usize],
            pts: e.pts,
            duration: e.duration,
            key: e.flags & FLAG_KEY != 0,
        })
    }

    /// Frame `index` of `track` as a [`Bytes`] sharing the map (no copy).
    pub fn frame_bytes(&self, track: usize, index: usize) -> Option<Bytes> {
        let e = self.entry(track, index)?;
        let start = e.offset as usize;
        Some(self.map.slice(start..start + e.len as usize))
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

    /// The first key frame at or after `index`, wrapping to the loop's start.
    pub fn next_keyframe(&self, track: usize, index: usize) -> Option<usize> {
        let keys = self.keyframes(track);
        let pos = keys.partition_point(|&k| (k as usize) < index);
        keys.get(pos).or(keys.first()).map(|&k| k as usize)
    }
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
        next_pts = e.pts + e.duration as u64;
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
