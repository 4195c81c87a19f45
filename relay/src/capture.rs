//! `--capture DIR`: the VP9 frames each user sent, as the relay received
//! them, in IVF files a decoder can check: `DIR/{user_id}-video.ivf` and
//! `DIR/{user_id}-screen.ivf`.
//!
//! One [`Track`] per user and medium lives as long as the relay, so a user's
//! sessions (a rejoin, a reconnection) continue one file. Frames go in
//! sequence order: streams are read concurrently, so a few are held back
//! (up to [`REORDER`]) until the ones before them are in; a frame behind one
//! already written is left out. A file starts at the user's first key frame
//! (a decoder cannot start elsewhere), with that frame's size in its header
//! (0 if the header cannot be read: the VP9 bitstream carries the size
//! anyway), and a time base of 1 ms from that frame's timestamp. It stops
//! at [`MAX_FILE_BYTES`], said once in the log. The frame count in the
//! header is set whenever a session of the user ends.
//!
//! The writes are plain blocking file writes on the session's task: this is
//! for checking what was sent, not for load runs.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use synth_common::{ivf, vp9};

/// Largest capture file; frames that would go past it are not written.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Frames held back waiting for an earlier sequence number.
pub(crate) const REORDER: usize = 16;

/// Longest file-name stem taken from a user id.
const MAX_STEM: usize = 128;

/// IVF time base: milliseconds.
const RATE: u32 = 1000;

/// Which frames of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Medium {
    /// VIDEO packets: `{user}-video.ivf`.
    Video,
    /// SCREEN packets: `{user}-screen.ivf`.
    Screen,
}

impl Medium {
    fn suffix(self) -> &'static str {
        match self {
            Medium::Video => "video",
            Medium::Screen => "screen",
        }
    }
}

/// One received frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// `video_metadata.sequence`, if any.
    pub(crate) seq: Option<u64>,
    /// The sender's timestamp, ms since the Unix epoch.
    pub(crate) timestamp_ms: f64,
    /// `frame_type "key"`.
    pub(crate) key: bool,
    /// The VP9 frame.
    pub(crate) data: &'a [u8],
}

/// A capture file, shared by the sessions of its user.
type Shared = Arc<Mutex<Track>>;

/// The capture directory and its files.
#[derive(Debug)]
pub(crate) struct Capture {
    dir: PathBuf,
    tracks: Mutex<HashMap<(String, Medium), Shared>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A track left half-written by a panic elsewhere is still a valid file.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Capture {
    /// Captures into `dir`, which is created if missing.
    pub(crate) fn new(dir: &Path) -> io::Result<Capture> {
        std::fs::create_dir_all(dir)?;
        Ok(Capture {
            dir: dir.to_path_buf(),
            tracks: Mutex::default(),
        })
    }

    /// The file of `user`'s frames of `medium`, shared by its sessions.
    pub(crate) fn track(&self, user: &str, medium: Medium) -> Shared {
        lock(&self.tracks)
            .entry((user.to_owned(), medium))
            .or_insert_with(|| {
                let name = format!("{}-{}.ivf", file_stem(user), medium.suffix());
                Arc::new(Mutex::new(Track::new(self.dir.join(name))))
            })
            .clone()
    }

    /// Writes out everything held back and closes every file (at shutdown).
    pub(crate) fn finish_all(&self) {
        let tracks: Vec<_> = lock(&self.tracks).values().cloned().collect();
        for t in tracks {
            lock(&t).finish();
        }
    }
}

/// A session's handles on its user's capture files, taken at its first frame
/// of each medium.
#[derive(Debug, Default)]
pub(crate) struct Handles {
    video: Option<Shared>,
    screen: Option<Shared>,
}

impl Handles {
    /// Adds a frame of `user`'s `medium`.
    pub(crate) fn push(&mut self, cap: &Capture, user: &str, medium: Medium, f: &Frame<'_>) {
        let slot = match medium {
            Medium::Video => &mut self.video,
            Medium::Screen => &mut self.screen,
        };
        lock(slot.get_or_insert_with(|| cap.track(user, medium))).push(f);
    }

    /// The session is over: write out its frames and close the files.
    pub(crate) fn finish(&mut self) {
        for t in [self.video.take(), self.screen.take()]
            .into_iter()
            .flatten()
        {
            lock(&t).finish();
        }
    }
}

/// A file-name stem for `user`: the id itself when it is made of
/// `[A-Za-z0-9_-]` (and not too long), else those characters with `_` for
/// the others and a hash of the whole id, so distinct ids never share a file.
pub(crate) fn file_stem(user: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !user.is_empty() && user.len() <= MAX_STEM && user.chars().all(safe) {
        return user.to_owned();
    }
    let mut stem: String = user
        .chars()
        .map(|c| if safe(c) { c } else { '_' })
        .take(MAX_STEM)
        .collect();
    // FNV-1a: stable across runs and platforms.
    let hash = user.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    stem.push_str(&format!("-{hash:016x}"));
    stem
}

/// One capture file and the frames waiting to go in.
#[derive(Debug)]
pub(crate) struct Track {
    path: PathBuf,
    /// Open while a session writes; closed when one ends.
    file: Option<BufWriter<File>>,
    /// The header is written (the first key frame came).
    started: bool,
    /// No more frames: the file is full, or writing failed.
    stopped: bool,
    first_timestamp_ms: f64,
    bytes: u64,
    frames: u32,
    /// The sequence number after the last one written.
    next_seq: Option<u64>,
    pending: BTreeMap<u64, (u64, bool, Box<[u8]>)>,
}

impl Track {
    fn new(path: PathBuf) -> Track {
        Track {
            path,
            file: None,
            started: false,
            stopped: false,
            first_timestamp_ms: 0.0,
            bytes: 0,
            frames: 0,
            next_seq: None,
            pending: BTreeMap::new(),
        }
    }

    /// Adds one received frame.
    pub(crate) fn push(&mut self, f: &Frame<'_>) {
        if self.stopped {
            return;
        }
        let Some(seq) = f.seq else {
            self.write(f.timestamp_ms, f.key, f.data);
            return;
        };
        if self.next_seq.is_some_and(|n| seq < n) {
            // Behind what is written: too late for this file.
            return;
        }
        self.pending
            .insert(seq, (f.timestamp_ms.to_bits(), f.key, f.data.into()));
        loop {
            let held = self.pending.len();
            let Some(entry) = self.pending.first_entry() else {
                break;
            };
            let seq = *entry.key();
            if self.next_seq != Some(seq) && held <= REORDER {
                break;
            }
            let (ts, key, data) = entry.remove();
            self.next_seq = Some(seq + 1);
            self.write(f64::from_bits(ts), key, &data);
        }
    }

    /// Writes what is held back, in order, sets the frame count and closes
    /// the file (reopened if more frames come).
    pub(crate) fn finish(&mut self) {
        for (seq, (ts, key, data)) in std::mem::take(&mut self.pending) {
            self.next_seq = Some(seq + 1);
            self.write(f64::from_bits(ts), key, &data);
        }
        self.close();
    }

    /// Sets the frame count and closes the file.
    fn close(&mut self) {
        if let Some(mut file) = self.file.take() {
            let r = (|| {
                file.flush()?;
                let f = file.get_mut();
                f.seek(SeekFrom::Start(ivf::FRAME_COUNT_OFFSET))?;
                f.write_all(&self.frames.to_le_bytes())
            })();
            if let Err(e) = r {
                self.fail(&e);
            }
        }
    }

    fn fail(&mut self, e: &io::Error) {
        tracing::warn!(path = %self.path.display(), "capture stopped: {e}");
        self.stopped = true;
        self.file = None;
    }

    fn write(&mut self, timestamp_ms: f64, key: bool, data: &[u8]) {
        if self.stopped || (!self.started && !key) {
            return;
        }
        let len = (ivf::FRAME_HEADER_LEN + data.len()) as u64;
        if self.bytes + len > MAX_FILE_BYTES {
            tracing::warn!(
                path = %self.path.display(),
                frames = self.frames,
                "capture file reached {} MiB: no more frames written to it",
                MAX_FILE_BYTES >> 20
            );
            self.stopped = true;
            self.pending.clear();
            self.close();
            return;
        }
        if let Err(e) = self.write_frame(timestamp_ms, data) {
            self.fail(&e);
        }
    }

    fn write_frame(&mut self, timestamp_ms: f64, data: &[u8]) -> io::Result<()> {
        if !self.started {
            let (w, h) = vp9::key_frame_size(data)
                .and_then(|(w, h)| Some((u16::try_from(w).ok()?, u16::try_from(h).ok()?)))
                .unwrap_or((0, 0));
            let mut file = BufWriter::new(File::create(&self.path)?);
            ivf::write_header(&mut file, *b"VP90", w, h, RATE, 1, 0)?;
            self.file = Some(file);
            self.started = true;
            self.first_timestamp_ms = timestamp_ms;
            self.bytes = ivf::HEADER_LEN as u64;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let mut f = OpenOptions::new().write(true).open(&self.path)?;
                f.seek(SeekFrom::End(0))?;
                self.file.insert(BufWriter::new(f))
            }
        };
        let pts = (timestamp_ms - self.first_timestamp_ms).max(0.0).round() as u64;
        ivf::write_frame(file, pts, data)?;
        self.bytes += (ivf::FRAME_HEADER_LEN + data.len()) as u64;
        self.frames += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, key: bool, data: &[u8]) -> Frame<'_> {
        Frame {
            seq: Some(seq),
            timestamp_ms: 1_000.0 + 40.0 * seq as f64,
            key,
            data,
        }
    }

    fn read(path: &Path) -> (ivf::Header, Vec<(u64, Vec<u8>)>) {
        let bytes = std::fs::read(path).unwrap();
        let (h, frames) = ivf::frames(&bytes).unwrap();
        let frames = frames.map(|f| f.map(|(p, d)| (p, d.to_vec())).unwrap());
        (h, frames.collect())
    }

    #[test]
    fn stems_are_safe_and_distinct() {
        assert_eq!(file_stem("bot-001_a"), "bot-001_a");
        let odd = file_stem("../etc/passwd");
        assert!(odd.starts_with("___etc_passwd-"), "{odd}");
        assert_ne!(file_stem("a b"), file_stem("a_b"));
        assert_ne!(file_stem("a b"), file_stem("a/b"));
        assert!(file_stem("").starts_with('-'));
        assert!(file_stem(&"x".repeat(500)).len() <= MAX_STEM + 17);
        assert!(file_stem("é").is_ascii());
    }

    #[test]
    fn frames_go_in_sequence_order_from_the_first_key_frame() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::new(&dir.path().join("cap")).unwrap();
        let t = cap.track("u", Medium::Video);
        {
            let mut t = t.lock().unwrap();
            // A delta frame before any key frame cannot be decoded: left out.
            t.push(&frame(0, false, b"d0"));
            t.push(&frame(1, true, b"k1"));
            t.push(&frame(3, false, b"d3"));
            t.push(&frame(2, false, b"d2"));
            t.finish();
            // Late: behind what is written.
            t.push(&frame(2, false, b"d2"));
            // A later session goes on in the same file.
            t.push(&frame(4, false, b"d4"));
            t.finish();
        }
        let (h, frames) = read(&dir.path().join("cap/u-video.ivf"));
        assert_eq!((h.width, h.height, h.rate, h.scale), (0, 0, 1000, 1));
        assert_eq!(h.frames, 4);
        let got: Vec<_> = frames.iter().map(|(p, d)| (*p, &d[..])).collect();
        assert_eq!(
            got,
            [
                (0, &b"k1"[..]),
                (40, &b"d2"[..]),
                (80, &b"d3"[..]),
                (120, &b"d4"[..])
            ]
        );
    }

    #[test]
    fn a_gap_is_skipped_once_enough_frames_wait_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::new(dir.path()).unwrap();
        let t = cap.track("u", Medium::Screen);
        let mut t = t.lock().unwrap();
        t.push(&frame(0, true, b"k"));
        for seq in 2..2 + REORDER as u64 + 1 {
            t.push(&frame(seq, false, b"d"));
        }
        // Frame 1 never came: the others did not wait for it past REORDER.
        assert!(t.pending.len() <= REORDER);
        assert!(t.next_seq > Some(2));
        t.finish();
        let (h, frames) = read(&dir.path().join("u-screen.ivf"));
        assert_eq!(h.frames as usize, REORDER + 2);
        assert_eq!(frames.len(), REORDER + 2);
    }

    #[test]
    fn a_full_file_takes_no_more_frames() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Capture::new(dir.path()).unwrap();
        let t = cap.track("big", Medium::Video);
        let big = vec![0u8; 20 << 20];
        for seq in 0..5 {
            t.lock().unwrap().push(&Frame {
                seq: None,
                timestamp_ms: seq as f64,
                key: seq == 0,
                data: &big,
            });
        }
        assert!(t.lock().unwrap().stopped);
        cap.finish_all();
        let len = std::fs::metadata(dir.path().join("big-video.ivf"))
            .unwrap()
            .len();
        assert!(len <= MAX_FILE_BYTES, "{len}");
        assert_eq!(read(&dir.path().join("big-video.ivf")).1.len(), 3);
    }
}
