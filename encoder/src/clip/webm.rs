//! WebM and Matroska clips, demuxed by `matroska-demuxer`: the first video
//! track's and the first audio track's frames, in one pass over the file.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use matroska_demuxer::{DemuxError, Frame, MatroskaFile, TrackEntry, TrackType};

use super::{audio_encode_hint, opus_clip, video_encode_hint, AudioClip, Demuxed};
use crate::container::Container;
use crate::Error;

/// How far before its declared end a file's last frame may start: more
/// than a frame or an Opus packet, less than what a cut file loses.
const TRUNCATION_SLACK_S: f64 = 0.5;

/// One track's frames as demuxed.
struct Track {
    /// Its number in the file.
    number: u64,
    /// Its Matroska codec id, e.g. `V_VP9`, `A_OPUS`.
    codec: String,
    /// The frames, in file order.
    frames: Vec<Vec<u8>>,
    /// Their timestamps, in the segment's units.
    timestamps: Vec<u64>,
    /// The frame length the track declares (DefaultDuration), ns.
    default_duration: Option<u64>,
    /// Audio: sampling frequency and channels.
    audio: Option<(f64, u64)>,
}

/// The file's first video and audio tracks.
pub(crate) struct Webm {
    /// `WebM` or `Matroska`, for messages.
    kind: &'static str,
    video: Option<Track>,
    audio: Option<Track>,
    /// Nanoseconds per timestamp unit.
    scale_ns: u64,
}

/// Reads the first video and the first audio track of the file at `path`.
pub(crate) fn read(path: &Path, container: Container) -> Result<Webm, Error> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bad = |e: DemuxError| demux_error(path, e, len);
    let mut mkv = MatroskaFile::open(BufReader::new(file)).map_err(bad)?;
    let scale_ns = mkv.info().timestamp_scale().get();
    let duration_s = mkv.info().duration().map(|d| d * scale_ns as f64 / 1e9);
    let first = |kind: TrackType| {
        mkv.tracks()
            .iter()
            .find(|t| t.track_type() == kind)
            .map(new_track)
    };
    let mut video = first(TrackType::Video);
    let mut audio = first(TrackType::Audio);
    let mut frame = Frame::default();
    let mut last = 0u64;
    while mkv.next_frame(&mut frame).map_err(bad)? {
        last = last.max(frame.timestamp);
        for t in [&mut video, &mut audio].into_iter().flatten() {
            if frame.track == t.number {
                t.frames.push(std::mem::take(&mut frame.data));
                t.timestamps.push(frame.timestamp);
            }
        }
    }
    // A file cut between two blocks reads as a shorter one; its declared
    // length gives it away (a live recording, which declares none, cannot).
    let last_s = last as f64 * scale_ns as f64 / 1e9;
    if let Some(declared) = duration_s.filter(|&d| last_s + TRUNCATION_SLACK_S < d) {
        return Err(Error::media(
            path,
            format!(
                "truncated: its last frame is at {last_s:.2} s, but the file says it lasts {declared:.2} s"
            ),
        ));
    }
    Ok(Webm {
        kind: container.name(),
        video,
        audio,
        scale_ns,
    })
}

fn new_track(t: &TrackEntry) -> Track {
    Track {
        number: t.track_number().get(),
        codec: t.codec_id().to_string(),
        frames: Vec::new(),
        timestamps: Vec::new(),
        default_duration: t.default_duration().map(|d| d.get()),
        audio: t
            .audio()
            .map(|a| (a.sampling_frequency(), a.channels().get())),
    }
}

/// The demuxer's error in a line: a frame that runs past the end of the file
/// is a truncated file.
fn demux_error(path: &Path, e: DemuxError, len: u64) -> Error {
    let reason = match e {
        DemuxError::ElementSizeExceedsStream {
            declared,
            available,
        } => format!(
            "truncated: an element needs {declared} bytes but only {available} are left of the file's {len}"
        ),
        DemuxError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "truncated: the file ends inside an element".to_string()
        }
        DemuxError::IoError(e) => format!("unreadable: {e}"),
        e => format!("not a readable WebM/Matroska file: {e}"),
    };
    Error::media(path, reason)
}

/// A codec id in words.
fn codec_name(id: &str) -> String {
    match id {
        "V_VP9" => "VP9",
        "V_VP8" => "VP8",
        "V_AV1" => "AV1",
        "V_MPEG4/ISO/AVC" => "H.264",
        "V_MPEGH/ISO/HEVC" => "H.265",
        "V_THEORA" => "Theora",
        "A_OPUS" => "Opus",
        "A_VORBIS" => "Vorbis",
        "A_AAC" => "AAC",
        "A_FLAC" => "FLAC",
        "A_MPEG/L3" => "MP3",
        other => other,
    }
    .to_string()
}

impl Webm {
    /// The VP9 video track's frames (not yet checked).
    pub(crate) fn video(self, path: &Path) -> Result<Demuxed, Error> {
        let Some(t) = self.video else {
            return Err(Error::media(
                path,
                format!("{} file with no video track", self.kind),
            ));
        };
        let track = format!("{} track {}", self.kind, t.number);
        if t.codec != "V_VP9" {
            return Err(Error::media(
                path,
                format!(
                    "{track} is {} video, not VP9: passthrough copies VP9 profile 0 only; {}",
                    codec_name(&t.codec),
                    video_encode_hint(path)
                ),
            ));
        }
        Ok(Demuxed {
            track,
            frames: t.frames,
            timestamps: t.timestamps,
            unit: (self.scale_ns, 1_000_000_000),
            default_duration: t
                .default_duration
                .map(|ns| ns as f64 / self.scale_ns as f64),
        })
    }

    /// The Opus audio track's packets, checked.
    pub(crate) fn audio(self, path: &Path) -> Result<AudioClip, Error> {
        let Some(t) = self.audio else {
            return Err(Error::media(
                path,
                format!("{} file with no audio track", self.kind),
            ));
        };
        let track = format!("{} track {}", self.kind, t.number);
        let (rate, channels) = t.audio.unwrap_or((48_000.0, 1));
        if t.codec != "A_OPUS" {
            return Err(Error::media(
                path,
                format!(
                    "{track} is {} audio at {rate} Hz, not Opus: passthrough copies Opus only; {}",
                    codec_name(&t.codec),
                    audio_encode_hint(path)
                ),
            ));
        }
        // Opus always runs on a 48 kHz clock (RFC 6716: its frame sizes are
        // counted at 48 kHz, and every decoder can output 48 kHz); a WebM's
        // sampling frequency other than 48000 is the rate the encoder was fed
        // (ffmpeg writes 24000 for a 22.05 kHz source), so it is only reported.
        let mut clip = opus_clip(path, track, channels.min(u8::MAX as u64) as u8, t.frames)?;
        clip.input_rate = rate.round() as u32;
        Ok(clip)
    }
}
