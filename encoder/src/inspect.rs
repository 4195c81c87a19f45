//! `inspect`: what a pack holds, and how close each track came to its target bitrate.
//!
//! Opening the pack validates it completely (layout, index bounds, both
//! checksums), so a report exists only for an intact pack and its checksum
//! state is always "ok"; a damaged pack fails to open with the reader's error.
//! The measured bitrate of a track is its payload bytes × 8 divided by the
//! loop length. For each audio track it also gives the share of frames
//! flagged as voice and the number of talk spurts (runs of voice frames, the
//! loop taken as circular; see [`crate::audio::vad`]). Each track's source
//! says where its frames came from: encoded here (from what), or copied
//! unchanged from which file, as the pack's source table records it (packs
//! written before the table existed record nothing).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use synth_common::pack::{Codec, Reader, Role, TrackKind};

use crate::audio::vad;
use crate::Error;

/// Everything `inspect` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The pack file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub file_size: u64,
    /// Pack format version.
    pub version: u32,
    /// Body checksum (CRC-32), hex.
    pub checksum: String,
    /// Result of the checksum check: always `"ok"` (a mismatch fails to open).
    pub checksum_state: &'static str,
    /// Loop length in seconds.
    pub loop_seconds: f64,
    /// The tracks, in file order.
    pub tracks: Vec<TrackReport>,
    /// Whether a client can switch between the video renditions at a key
    /// frame; `None` with fewer than two video tracks.
    pub keyframes: Option<Alignment>,
}

/// How the video renditions' key frames line up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    /// Same frame times and key frames at the same positions in every rendition.
    pub aligned: bool,
    /// How many main video tracks (renditions and their variants; screen tracks do not count).
    pub renditions: usize,
    /// The distance between key frames when it is regular (seconds), else `None`.
    pub interval_s: Option<f64>,
    /// When not aligned, the two renditions that differ first.
    pub differ: Option<[String; 2]>,
}

/// One track of the report.
#[derive(Debug, Clone, Serialize)]
pub struct TrackReport {
    /// Track name.
    pub name: String,
    /// `audio` or `video`.
    pub kind: &'static str,
    /// `opus` or `vp9`.
    pub codec: &'static str,
    /// `main`, `screen` or `silence`.
    pub role: &'static str,
    /// Which variant of its rendition or voice the track is (0 for the first).
    pub variant: u8,
    /// Ticks per second.
    pub clock_rate: u32,
    /// Width in pixels (0 for audio).
    pub width: u16,
    /// Height in pixels (0 for audio).
    pub height: u16,
    /// Frames per second.
    pub fps: f64,
    /// Audio channels (0 for video).
    pub channels: u8,
    /// Frames in one loop.
    pub frames: u32,
    /// Loop length in ticks.
    pub loop_duration: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Largest frame, bytes.
    pub max_frame_bytes: u32,
    /// Target bitrate, bit/s.
    pub target_bps: u32,
    /// Measured bitrate, bit/s (bytes × 8 / loop seconds).
    pub measured_bps: f64,
    /// (measured - target) / target, in per cent.
    pub error_pct: f64,
    /// Indexes of the key frames.
    pub keyframes: Vec<u32>,
    /// Audio: the share of frames flagged as voice, 0 to 1 (`None` for video).
    pub voice_share: Option<f64>,
    /// Audio: runs of voice frames in the loop (`None` for video).
    pub talk_spurts: Option<usize>,
    /// Where the frames came from, if the pack records it.
    pub source: Option<SourceReport>,
}

/// Where a track's frames came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// `encoded` (here, by synth-encode) or `copied` (unchanged, from a file).
    pub origin: &'static str,
    /// What from: the file (and its track) or the generated source.
    pub from: String,
}

impl Report {
    /// Opens and validates the pack at `path` and measures its tracks.
    pub fn open(path: &Path) -> Result<Report, Error> {
        let reader = Reader::open(path).map_err(|source| Error::OpenPack {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Report::from_reader(path, &reader))
    }

    /// Measures the tracks of an open pack.
    pub fn from_reader(path: &Path, reader: &Reader) -> Report {
        let tracks = reader
            .tracks()
            .iter()
            .enumerate()
            .map(|(id, t)| {
                let (bytes, max) = reader.frames(id).fold((0u64, 0u32), |(sum, max), f| {
                    (sum + f.data.len() as u64, max.max(f.data.len() as u32))
                });
                let measured = t.bitrate_bps(bytes);
                let target = t.target_bitrate_bps;
                let voice: Vec<bool> = reader.frames(id).map(|f| f.voice).collect();
                let audio = t.kind == TrackKind::Audio;
                TrackReport {
                    name: t.name.clone(),
                    kind: match t.kind {
                        TrackKind::Audio => "audio",
                        TrackKind::Video => "video",
                    },
                    codec: match t.codec {
                        Codec::Opus => "opus",
                        Codec::Vp9 => "vp9",
                    },
                    role: t.role.as_str(),
                    variant: t.variant,
                    clock_rate: t.clock_rate,
                    width: t.width,
                    height: t.height,
                    fps: t.fps(),
                    channels: t.channels,
                    frames: t.frame_count,
                    loop_duration: t.loop_duration,
                    bytes,
                    max_frame_bytes: max,
                    target_bps: target,
                    measured_bps: measured,
                    error_pct: if target > 0 {
                        (measured - target as f64) / target as f64 * 100.0
                    } else {
                        0.0
                    },
                    keyframes: reader.keyframes(id).to_vec(),
                    voice_share: audio.then(|| vad::voice_share(&voice)),
                    talk_spurts: audio.then(|| vad::talk_spurts(&voice)),
                    source: reader.source(id).map(|s| SourceReport {
                        origin: s.origin.as_str(),
                        from: s.from.clone(),
                    }),
                }
            })
            .collect::<Vec<TrackReport>>();
        let renditions = reader
            .tracks()
            .iter()
            .filter(|t| t.kind == TrackKind::Video && t.role == Role::Main)
            .count();
        let first_video = tracks
            .iter()
            .find(|t| t.kind == "video" && t.role == Role::Main.as_str());
        let keyframes = first_video.filter(|_| renditions >= 2).map(|first| {
            let differ = reader
                .keyframe_mismatch()
                .map(|(a, b)| [a, b].map(|t| reader.tracks()[t].name.clone()));
            Alignment {
                aligned: differ.is_none(),
                renditions,
                interval_s: regular_interval(&first.keyframes, first.frames)
                    .map(|n| n as f64 / first.fps.max(f64::MIN_POSITIVE)),
                differ,
            }
        });
        Report {
            keyframes,
            path: path.to_path_buf(),
            file_size: reader.file_len(),
            version: reader.version(),
            checksum: format!("{:08x}", reader.checksum()),
            checksum_state: "ok",
            loop_seconds: reader.loop_duration_us() as f64 / 1e6,
            tracks,
        }
    }
}

/// The distance in frames between key frames when they come every `n`
/// frames from frame 0 (the last interval of the loop may be shorter).
fn regular_interval(keys: &[u32], frames: u32) -> Option<u32> {
    match keys {
        [0] => Some(frames),
        [0, n, ..] => keys.windows(2).all(|w| w[1] - w[0] == *n).then_some(*n),
        _ => None,
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pack      {}", self.path.display())?;
        writeln!(
            f,
            "size      {} bytes ({:.2} MiB), format version {}",
            self.file_size,
            self.file_size as f64 / (1024.0 * 1024.0),
            self.version
        )?;
        writeln!(f, "checksum  {} ({})", self.checksum, self.checksum_state)?;
        writeln!(f, "loop      {:.3} s", self.loop_seconds)?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<20} {:<5} {:<7} {:>3} {:<5} {:>9} {:>6} {:>7} {:>10} {:>10} {:>7} {:>9}",
            "track",
            "kind",
            "role",
            "var",
            "codec",
            "size",
            "fps",
            "frames",
            "target",
            "measured",
            "error",
            "max frame"
        )?;
        for t in &self.tracks {
            let size = if t.kind == "video" {
                format!("{}x{}", t.width, t.height)
            } else {
                format!("{} ch", t.channels)
            };
            writeln!(
                f,
                "{:<20} {:<5} {:<7} {:>3} {:<5} {:>9} {:>6.2} {:>7} {:>6.1} kb/s {:>5.1} kb/s {:>+6.1}% {:>7} B",
                t.name,
                t.kind,
                t.role,
                t.variant,
                t.codec,
                size,
                t.fps,
                t.frames,
                t.target_bps as f64 / 1000.0,
                t.measured_bps / 1000.0,
                t.error_pct,
                t.max_frame_bytes
            )?;
        }
        writeln!(f)?;
        for t in &self.tracks {
            if t.kind == "audio" && t.keyframes.len() == t.frames as usize {
                let spurts = t.talk_spurts.unwrap_or(0);
                writeln!(
                    f,
                    "{}: all {} frames are key frames (Opus packets decode on their own); \
                     {:.0}% voice, {spurts} talk spurt{}",
                    t.name,
                    t.frames,
                    t.voice_share.unwrap_or(0.0) * 100.0,
                    if spurts == 1 { "" } else { "s" }
                )?;
                continue;
            }
            let times: Vec<String> = t
                .keyframes
                .iter()
                .map(|&k| format!("{k} ({:.2} s)", k as f64 / t.fps.max(f64::MIN_POSITIVE)))
                .collect();
            writeln!(f, "{} key frames: {}", t.name, times.join(", "))?;
        }
        if let Some(a) = &self.keyframes {
            match (&a.differ, a.interval_s) {
                (None, Some(s)) => writeln!(
                    f,
                    "key frames: aligned across the {} main video tracks (every {s:.1} s)",
                    a.renditions
                )?,
                (None, None) => writeln!(
                    f,
                    "key frames: aligned across the {} main video tracks",
                    a.renditions
                )?,
                (Some([x, y]), _) => writeln!(
                    f,
                    "key frames: NOT aligned: {x} and {y} differ (clients cannot switch between them cleanly)"
                )?,
            }
        }
        writeln!(f)?;
        if self.tracks.iter().all(|t| t.source.is_none()) {
            writeln!(
                f,
                "sources: not recorded (the pack was written before synth-encode recorded them)"
            )?;
        } else {
            writeln!(f, "sources:")?;
            for t in &self.tracks {
                let what = match &t.source {
                    Some(s) if s.origin == "copied" => format!("copied from {}", s.from),
                    Some(s) => format!("encoded here from {}", s.from),
                    None => "not recorded".into(),
                };
                writeln!(f, "  {:<20} {what}", t.name)?;
            }
        }
        Ok(())
    }
}
