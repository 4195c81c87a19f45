//! Streaming pack writer: payloads go straight to disk, tables are written last.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::format::{
    encode_sources, encode_track, validate_track, Entry, FrameFlags, Header, Role, Source, Track,
    TrackKind, ENTRY_LEN, FLAG_KEY, FLAG_VOICE, FRAME_ALIGN, HEADER_LEN, MAX_LEN, PAYLOAD_START,
    SOURCE_TEXT_MAX, VERSION,
};
use super::reader::file_kind;
use super::Error;

/// Builds a pack in one pass. Frames of different tracks may be pushed in any
/// interleaving; within a track they must come in pts order.
///
/// The file is written as `PATH.tmp` and renamed over `PATH` by [`Writer::finish`],
/// so a reader never sees a half-written pack. A writer dropped without
/// `finish` (an error, a cancelled build) removes its temporary file.
pub struct Writer {
    out: BufWriter<File>,
    tmp_path: PathBuf,
    path: PathBuf,
    /// Next write position (absolute file offset).
    pos: u64,
    body_crc: crc32fast::Hasher,
    tracks: Vec<Track>,
    entries: Vec<Vec<Entry>>,
    /// Where each track came from, if the caller said ([`Writer::set_source`]).
    sources: Vec<Option<Source>>,
    /// Set once the file has been renamed into place.
    done: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

const ZEROS: [u8; FRAME_ALIGN as usize] = [0; FRAME_ALIGN as usize];

impl Writer {
    /// Starts a pack at `path` (written to `path.tmp` until [`Writer::finish`]).
    ///
    /// `path` may be missing or a regular file (which the pack replaces). A
    /// directory, a device node, a FIFO or a socket (or a symbolic link to one)
    /// is refused before anything is written: renaming the pack over it would
    /// replace the node, and `-o /dev/null` run as root would delete the device.
    /// The temporary file is `path` with `.tmp` appended, so it sits in the
    /// same directory and the rename never crosses file systems.
    pub fn create(path: impl AsRef<Path>) -> Result<Writer, Error> {
        let path = path.as_ref().to_path_buf();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp_path = PathBuf::from(tmp);
        Writer::check_output(&path)?;
        // A stale temporary from a killed build is replaced; a FIFO there would
        // block the open below, a directory would fail it less clearly.
        refuse_special(&tmp_path, fs::symlink_metadata(&tmp_path))?;
        let file = File::create(&tmp_path)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // Header placeholder plus zero padding up to the payload area. The padding
        // is part of the body checksum; the header is not.
        out.write_all(&vec![0u8; PAYLOAD_START as usize])?;
        let mut body_crc = crc32fast::Hasher::new();
        body_crc.update(&vec![0u8; PAYLOAD_START as usize - HEADER_LEN]);
        Ok(Writer {
            out,
            tmp_path,
            path,
            pos: PAYLOAD_START,
            body_crc,
            tracks: Vec::new(),
            entries: Vec::new(),
            sources: Vec::new(),
            done: false,
        })
    }

    /// Whether a pack may be written at `path`: missing or a regular file (or a
    /// symbolic link to one). [`Writer::create`] checks it too; a caller with
    /// slow work to do before creating the writer checks it first.
    pub fn check_output(path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        refuse_special(path, fs::metadata(path))
    }

    /// Declares a track and returns its id for [`Writer::push_frame`].
    pub fn add_track(&mut self, mut track: Track) -> Result<usize, Error> {
        validate_track(&track).map_err(Error::InvalidInput)?;
        if self.tracks.iter().any(|t| t.name == track.name) {
            return Err(Error::InvalidInput(format!(
                "two tracks are named {:?}",
                track.name
            )));
        }
        track.frame_count = 0;
        self.tracks.push(track);
        self.entries.push(Vec::new());
        self.sources.push(None);
        Ok(self.tracks.len() - 1)
    }

    /// Records where `track`'s frames came from (encoded here, or copied
    /// from a file), for `synth-encode inspect`. Optional: a pack with no
    /// source recorded for any track has no source table.
    pub fn set_source(&mut self, track: usize, source: Source) -> Result<(), Error> {
        let Some(slot) = self.sources.get_mut(track) else {
            return Err(Error::InvalidInput(format!("no track {track}")));
        };
        if source.from.len() > SOURCE_TEXT_MAX {
            return Err(Error::InvalidInput(format!(
                "track {}: source text of {} bytes (at most {SOURCE_TEXT_MAX})",
                self.tracks[track].name,
                source.from.len()
            )));
        }
        *slot = Some(source);
        Ok(())
    }

    /// Appends one encoded frame to `track`. `pts` and `duration` are in the
    /// track's clock ticks; pts must increase within a track.
    ///
    /// It says nothing of voice activity, so it writes what a version-1 pack
    /// meant: a frame of a [`Role::Main`] audio track is marked as voice (the
    /// replayer sends it as talk, as it did before there was detection), any
    /// other frame is not. [`Writer::push_frame_flags`] sets the flag itself.
    pub fn push_frame(
        &mut self,
        track: usize,
        data: &[u8],
        pts: u64,
        duration: u32,
        key: bool,
    ) -> Result<(), Error> {
        let voice = self
            .tracks
            .get(track)
            .is_some_and(|t| t.kind == TrackKind::Audio && t.role == Role::Main);
        self.push_frame_flags(track, data, pts, duration, FrameFlags { key, voice })
    }

    /// [`Writer::push_frame`] with every flag given: `flags.voice` only on an
    /// audio track that is not [`Role::Silence`] (refused otherwise).
    pub fn push_frame_flags(
        &mut self,
        track: usize,
        data: &[u8],
        pts: u64,
        duration: u32,
        flags: FrameFlags,
    ) -> Result<(), Error> {
        let FrameFlags { key, voice } = flags;
        let Some(info) = self.tracks.get(track) else {
            return Err(Error::InvalidInput(format!("no track {track}")));
        };
        if voice && (info.kind != TrackKind::Audio || info.role == Role::Silence) {
            return Err(Error::InvalidInput(format!(
                "track {}: the voice flag is for main audio frames only",
                info.name
            )));
        }
        let entries = &self.entries[track];
        if data.is_empty() || data.len() > u32::MAX as usize {
            return Err(Error::InvalidInput(format!(
                "track {}: frame of {} bytes",
                info.name,
                data.len()
            )));
        }
        if duration == 0 {
            return Err(Error::InvalidInput(format!(
                "track {}: frame with zero duration",
                info.name
            )));
        }
        if let Some(last) = entries.last() {
            // The previous end was checked not to overflow when it was pushed.
            if pts < last.pts + last.duration as u64 {
                return Err(Error::InvalidInput(format!(
                    "track {}: pts {pts} overlaps the previous frame ({} + {})",
                    info.name, last.pts, last.duration
                )));
            }
        } else if info.kind == TrackKind::Video && !key {
            return Err(Error::InvalidInput(format!(
                "track {}: a video track must start with a key frame",
                info.name
            )));
        }
        if pts.checked_add(duration as u64).is_none() {
            return Err(Error::InvalidInput(format!(
                "track {}: pts {pts} + duration {duration} overflows a 64-bit tick count",
                info.name
            )));
        }
        let offset = self.pos;
        self.out.write_all(data)?;
        self.body_crc.update(data);
        self.pos += data.len() as u64;
        let pad = (FRAME_ALIGN - self.pos % FRAME_ALIGN) % FRAME_ALIGN;
        self.write_body(&ZEROS[..pad as usize])?;
        self.entries[track].push(Entry {
            offset,
            len: data.len() as u32,
            flags: if key { FLAG_KEY } else { 0 } | if voice { FLAG_VOICE } else { 0 },
            pts,
            duration,
        });
        Ok(())
    }

    fn write_body(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.out.write_all(bytes)?;
        self.body_crc.update(bytes);
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes the track table, the index and the header, then renames the file
    /// into place. Every track must have frames, and all tracks must loop after
    /// the same time.
    pub fn finish(mut self) -> Result<(), Error> {
        // On error, Drop removes the temporary file.
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> Result<(), Error> {
        if self.tracks.is_empty() {
            return Err(Error::InvalidInput(
                "a pack needs at least one track".into(),
            ));
        }
        let mut loop_us = None;
        for (t, entries) in self.tracks.iter_mut().zip(&self.entries) {
            let Some(last) = entries.last() else {
                return Err(Error::InvalidInput(format!(
                    "track {} has no frames",
                    t.name
                )));
            };
            let end = last.pts + last.duration as u64;
            if end != t.loop_duration {
                return Err(Error::InvalidInput(format!(
                    "track {}: frames end at tick {end} but loop_duration is {}",
                    t.name, t.loop_duration
                )));
            }
            t.frame_count = u32::try_from(entries.len())
                .map_err(|_| Error::InvalidInput(format!("track {}: too many frames", t.name)))?;
            let us = t.loop_duration_us();
            match loop_us {
                None => loop_us = Some(us),
                // Tolerate rounding of a tick to the microsecond.
                Some(prev) if prev.abs_diff(us) > 1 => {
                    return Err(Error::InvalidInput(format!(
                        "track {} loops after {us} µs but an earlier track after {prev} µs",
                        t.name
                    )))
                }
                Some(_) => {}
            }
        }
        // The source table goes at the end of the payload area, where a
        // reader that does not know it (an older version-2 build) never looks.
        let (sources_offset, sources_len) = if self.sources.iter().any(Option::is_some) {
            let table = encode_sources(&self.sources);
            let offset = self.pos;
            self.write_body(&table)?;
            let pad = (FRAME_ALIGN - self.pos % FRAME_ALIGN) % FRAME_ALIGN;
            self.write_body(&ZEROS[..pad as usize])?;
            (offset, table.len() as u32)
        } else {
            (0, 0)
        };
        let payload_len = self.pos - PAYLOAD_START;
        let tracks_offset = self.pos;
        let mut first = 0u32;
        let mut table = Vec::with_capacity(self.tracks.len() * super::format::TRACK_LEN);
        for t in &self.tracks {
            table.extend_from_slice(&encode_track(t, first));
            first += t.frame_count;
        }
        self.write_body(&table)?;
        let index_offset = self.pos;
        let mut index = Vec::with_capacity(first as usize * ENTRY_LEN);
        for e in self.entries.iter().flatten() {
            index.extend_from_slice(&e.encode());
        }
        self.write_body(&index)?;
        if self.pos > MAX_LEN {
            return Err(Error::InvalidInput(format!(
                "the pack would be {} bytes, over the {MAX_LEN} a reader takes",
                self.pos
            )));
        }
        let header = Header {
            version: VERSION,
            track_count: self.tracks.len() as u32,
            frame_count: first,
            tracks_offset,
            index_offset,
            payload_offset: PAYLOAD_START,
            payload_len,
            file_len: self.pos,
            loop_duration_us: loop_us.unwrap_or(0),
            body_crc32: self.body_crc.clone().finalize(),
            header_crc32: 0,
            sources_offset,
            sources_len,
        };
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header.encode())?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        fs::rename(&self.tmp_path, &self.path)?;
        self.done = true;
        Ok(())
    }
}

/// Refuses an existing path that is not a regular file (`meta` is its metadata,
/// or the error getting it: a missing path is fine).
fn refuse_special(path: &Path, meta: std::io::Result<fs::Metadata>) -> Result<(), Error> {
    match meta {
        Ok(meta) if !meta.is_file() => Err(Error::OutputNotAFile {
            path: path.to_path_buf(),
            kind: file_kind(&meta),
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(e)),
    }
}
