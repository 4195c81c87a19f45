//! The build pipeline: sources → Opus and VP9 encoders → one pack.
//!
//! 1. [`Plan`] fixes the loop length and frame counts (rounding the duration up
//!    to whole audio and video frames).
//! 2. The audio is rendered to 48 kHz mono and Opus-encoded on the calling
//!    thread (500 frames take a few milliseconds).
//! 3. The video source is loaded once; each rendition then renders, converts
//!    and encodes its frames on its own thread, sending the packets over a
//!    bounded channel to the calling thread, which writes them into the pack
//!    as they come (the pack writer takes any interleaving of tracks).
//! 4. The writer finishes the pack under a temporary name and renames it.
//!
//! Every video frame must give exactly one packet (no look-ahead, no frame
//! drops); a frame that gives none or several is reported as an error rather
//! than producing a pack whose frame count does not match its duration.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use synth_common::pack::{Track, Writer};

use crate::audio::{self, AudioSource};
use crate::opus::{OpusFrameEncoder, FRAME_SAMPLES};
use crate::plan::{Plan, AUDIO_FRAME_TICKS};
use crate::rendition::Rendition;
use crate::video::{Footage, Pattern, VideoSource};
use crate::vp9::{Encoder, EncoderConfig};
use crate::Error;

/// Frames encoded and discarded before each rendition's loop (see `encode_rendition`).
const WARMUP_FRAMES: u32 = 60;

/// Name of the audio track.
pub const AUDIO_TRACK: &str = "audio-opus";

/// Everything `synth-encode build` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// The audio source.
    pub audio: AudioSource,
    /// The video source.
    pub video: VideoSource,
    /// Video renditions, one track each.
    pub renditions: Vec<Rendition>,
    /// Video frames per second.
    pub fps: u32,
    /// Requested loop length (rounded up, see [`Plan`]).
    pub duration: Duration,
    /// Time between forced key frames.
    pub keyframe_interval: Duration,
    /// Opus bitrate, bit/s.
    pub audio_bitrate: u32,
    /// Frames each JPEG is held for (JPEG sources only).
    pub hold: u32,
    /// The pack to write.
    pub output: PathBuf,
}

impl Default for BuildOptions {
    /// The project's default pack: speech, bars at 640x360@500 and 320x180@150, 10 s.
    fn default() -> BuildOptions {
        BuildOptions {
            audio: AudioSource::Speech,
            video: VideoSource::Pattern(Pattern::Bars),
            renditions: Rendition::DEFAULTS.to_vec(),
            fps: 30,
            duration: Duration::from_secs(10),
            keyframe_interval: Duration::from_secs(2),
            audio_bitrate: crate::opus::DEFAULT_BITRATE,
            hold: 1,
            output: PathBuf::from("packs/default.pack"),
        }
    }
}

/// What the build reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Encoding starts; `total` frames (audio and video of all tracks) will follow.
    Started {
        /// Frames to encode in all.
        total: u64,
    },
    /// Something the user should know (source details, a rounded duration).
    Note(String),
    /// `n` more frames were encoded and written.
    Encoded(u64),
}

/// One track as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSummary {
    /// Track name.
    pub name: String,
    /// Frames written.
    pub frames: u32,
    /// Key frames among them.
    pub keyframes: u32,
    /// Payload bytes.
    pub bytes: u64,
    /// Target bitrate, bit/s.
    pub target_bps: u32,
}

impl TrackSummary {
    /// Payload bits per second of loop.
    pub fn measured_bps(&self, loop_duration: Duration) -> f64 {
        self.bytes as f64 * 8.0 / loop_duration.as_secs_f64()
    }
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    /// The loop plan that was used.
    pub plan: Plan,
    /// The tracks, in pack order.
    pub tracks: Vec<TrackSummary>,
    /// The pack that was written.
    pub output: PathBuf,
    /// Its size in bytes.
    pub file_len: u64,
    /// Wall time of the build.
    pub elapsed: Duration,
}

struct EncodedVideo {
    track: usize,
    data: Vec<u8>,
    pts: u64,
    duration: u32,
    key: bool,
}

/// Builds the pack described by `options`, reporting progress to `events`.
pub fn build(options: &BuildOptions, events: &mut dyn FnMut(Event)) -> Result<BuildSummary, Error> {
    let started = Instant::now();
    // Before any slow work: a device, FIFO or directory at `-o` is refused.
    Writer::check_output(&options.output).map_err(|e| pack_write_error(&options.output, e))?;
    let plan = Plan::new(options.fps, options.duration, options.keyframe_interval)?;
    check_renditions(&options.renditions)?;
    let audio_encoder = OpusFrameEncoder::new(options.audio_bitrate)?;
    // Load both sources before saying anything about either, so bad input gives
    // one error and nothing else.
    let pcm = audio::render(&options.audio, plan.audio_samples())?;
    let sizes: Vec<(u32, u32)> = options
        .renditions
        .iter()
        .map(|r| (r.width, r.height))
        .collect();
    let footage = Footage::load(&options.video, options.hold, &sizes)?;
    events(Event::Note(format!("audio: {}", pcm.description)));
    events(Event::Note(format!("video: {}", footage.describe())));
    if plan.rounded() {
        events(Event::Note(format!(
            "duration {} rounded up to {}: a loop holds whole 20 ms audio frames and whole video frames at {} fps (a multiple of {} ms)",
            humantime::format_duration(plan.requested),
            humantime::format_duration(plan.loop_duration()),
            plan.fps,
            Plan::unit_ms(plan.fps)
        )));
    }

    let writer = create_writer(&options.output)?;
    let tracks = write_pack(
        writer,
        options,
        &plan,
        &pcm.samples,
        audio_encoder,
        &footage,
        events,
    )?;
    let file_len = fs::metadata(&options.output)
        .map_err(|source| Error::Read {
            path: options.output.clone(),
            source,
        })?
        .len();
    Ok(BuildSummary {
        plan,
        tracks,
        output: options.output.clone(),
        file_len,
        elapsed: started.elapsed(),
    })
}

/// Declares the tracks, encodes everything into `writer` and finishes the pack.
fn write_pack(
    mut writer: Writer,
    options: &BuildOptions,
    plan: &Plan,
    pcm: &[f32],
    audio_encoder: OpusFrameEncoder,
    footage: &Footage,
    events: &mut dyn FnMut(Event),
) -> Result<Vec<TrackSummary>, Error> {
    let mut tracks = Vec::new();
    let audio_track = writer.add_track(Track::opus(
        AUDIO_TRACK,
        options.audio_bitrate,
        plan.audio_loop_ticks(),
    ))?;
    tracks.push(TrackSummary {
        name: AUDIO_TRACK.into(),
        frames: 0,
        keyframes: 0,
        bytes: 0,
        target_bps: options.audio_bitrate,
    });
    for r in &options.renditions {
        let id = writer.add_track(Track::vp9(
            &r.track_name(),
            (r.width as u16, r.height as u16),
            plan.fps,
            r.bitrate_bps(),
            plan.video_loop_ticks(),
        ))?;
        debug_assert_eq!(id, tracks.len());
        tracks.push(TrackSummary {
            name: r.track_name(),
            frames: 0,
            keyframes: 0,
            bytes: 0,
            target_bps: r.bitrate_bps(),
        });
    }
    events(Event::Started {
        total: plan.audio_frames as u64
            + plan.video_frames as u64 * options.renditions.len() as u64,
    });

    encode_audio(pcm, audio_encoder, |data, pts| {
        writer
            .push_frame(audio_track, data, pts, AUDIO_FRAME_TICKS, true)
            .map_err(|e| pack_write_error(&options.output, e))?;
        let t = &mut tracks[audio_track];
        t.frames += 1;
        t.keyframes += 1;
        t.bytes += data.len() as u64;
        events(Event::Encoded(1));
        Ok(())
    })?;

    // Key-frame positions per track, to check the renditions share them.
    let mut keys: Vec<Vec<u32>> = vec![Vec::new(); tracks.len()];
    encode_video(plan, footage, &options.renditions, |frame| {
        if frame.key {
            keys[frame.track].push(tracks[frame.track].frames);
        }
        writer
            .push_frame(
                frame.track,
                &frame.data,
                frame.pts,
                frame.duration,
                frame.key,
            )
            .map_err(|e| pack_write_error(&options.output, e))?;
        let t = &mut tracks[frame.track];
        t.frames += 1;
        t.keyframes += frame.key as u32;
        t.bytes += frame.data.len() as u64;
        events(Event::Encoded(1));
        Ok(())
    })?;
    check_keyframes_aligned(&tracks[1..], &keys[1..])?;

    writer
        .finish()
        .map_err(|e| pack_write_error(&options.output, e))?;
    Ok(tracks)
}

/// Fails unless every video track has its key frames where the first one has
/// them: the replayer's adaptation switches renditions at a key frame.
fn check_keyframes_aligned(videos: &[TrackSummary], keys: &[Vec<u32>]) -> Result<(), Error> {
    let shown = |k: &[u32]| {
        let mut s: Vec<String> = k.iter().take(8).map(u32::to_string).collect();
        if k.len() > 8 {
            s.push(format!("… {} in all", k.len()));
        }
        s.join(", ")
    };
    match keys.iter().position(|k| *k != keys[0]) {
        None => Ok(()),
        Some(i) => Err(Error::KeyframesMisaligned {
            first: videos[0].name.clone(),
            first_keys: shown(&keys[0]),
            other: videos[i].name.clone(),
            other_keys: shown(&keys[i]),
        }),
    }
}

fn check_renditions(renditions: &[Rendition]) -> Result<(), Error> {
    if renditions.is_empty() {
        return Err(Error::invalid("renditions", "at least one is needed"));
    }
    for (i, r) in renditions.iter().enumerate() {
        if renditions[..i]
            .iter()
            .any(|o| (o.width, o.height) == (r.width, r.height))
        {
            return Err(Error::invalid(
                "renditions",
                format!(
                    "{}x{} is given twice (track names must differ)",
                    r.width, r.height
                ),
            ));
        }
    }
    Ok(())
}

fn create_writer(output: &Path) -> Result<Writer, Error> {
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|source| Error::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    Writer::create(output).map_err(|e| pack_write_error(output, e))
}

/// Names the file in I/O errors of the writer, which knows only the error.
fn pack_write_error(output: &Path, e: synth_common::pack::Error) -> Error {
    match e {
        synth_common::pack::Error::Io(source) => Error::Write {
            path: output.to_path_buf(),
            source,
        },
        // The user's `-o` names something a pack must not replace.
        e @ synth_common::pack::Error::OutputNotAFile { .. } => {
            Error::invalid("output", e.to_string())
        }
        e => Error::Pack(e),
    }
}

/// Opus-encodes `pcm` (a whole number of 20 ms frames) and hands each packet and its pts on.
fn encode_audio(
    pcm: &[f32],
    mut encoder: OpusFrameEncoder,
    mut sink: impl FnMut(&[u8], u64) -> Result<(), Error>,
) -> Result<(), Error> {
    for (k, frame) in pcm.chunks_exact(FRAME_SAMPLES).enumerate() {
        let packet = encoder.encode(frame)?;
        sink(packet, k as u64 * AUDIO_FRAME_TICKS as u64)?;
    }
    Ok(())
}

/// Encodes every rendition on its own thread and hands the frames to `sink` on
/// this thread, in order within each track.
fn encode_video(
    plan: &Plan,
    footage: &Footage,
    renditions: &[Rendition],
    mut sink: impl FnMut(EncodedVideo) -> Result<(), Error>,
) -> Result<(), Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let threads = (cores / renditions.len() as u32).max(1);
    let (tx, rx) = mpsc::sync_channel::<Result<EncodedVideo, Error>>(64);
    std::thread::scope(|scope| {
        for (k, r) in renditions.iter().enumerate() {
            let tx = tx.clone();
            scope.spawn(move || {
                // Track 0 is the audio; video tracks follow in rendition order.
                if let Err(e) = encode_rendition(plan, footage, *r, threads, k + 1, &tx) {
                    let _ = tx.send(Err(e));
                }
            });
        }
        drop(tx);
        // Ends when every encoder thread has hung up; an error returns early,
        // which drops `rx` and makes the other threads' sends fail, so they stop.
        for msg in rx {
            sink(msg?)?;
        }
        Ok(())
    })
}

fn encode_rendition(
    plan: &Plan,
    footage: &Footage,
    r: Rendition,
    threads: u32,
    track: usize,
    tx: &mpsc::SyncSender<Result<EncodedVideo, Error>>,
) -> Result<(), Error> {
    let mut frames = footage.frames(r.width, r.height, plan.fps)?;
    let mut config = EncoderConfig::new(r.width, r.height, plan.fps, r.kbps);
    config.keyframe_interval = plan.keyframe_interval;
    config.threads = threads;
    let mut encoder = Encoder::new(config)?;
    // Warm-up: run the rate controller over the loop's last frames once and throw
    // the packets away, so the kept loop starts as it does when it repeats: with a
    // settled rate-control buffer, not the encoder's cold start (whose first key
    // frame overspends, which shows in the measured bitrate of a short loop).
    let n = plan.video_frames;
    let warmup = WARMUP_FRAMES.min(n);
    for i in n - warmup..n {
        let picture = frames.render(i);
        encoder.encode(picture, i == n - warmup)?.for_each(drop);
    }
    for i in 0..plan.video_frames {
        let picture = frames.render(i);
        let mut packets = encoder.encode(picture, plan.is_keyframe(i))?;
        let (Some(packet), None) = (packets.next(), packets.next()) else {
            return Err(Error::Vpx {
                op: "vpx_codec_encode",
                message: format!(
                    "{}: frame {i} did not give exactly one packet",
                    r.track_name()
                ),
            });
        };
        let frame = EncodedVideo {
            track,
            data: packet.data.to_vec(),
            pts: plan.video_pts(i),
            duration: plan.video_duration(i),
            key: packet.key,
        };
        if tx.send(Ok(frame)).is_err() {
            // The writer gave up; its error is the one that counts.
            return Ok(());
        }
    }
    if encoder.flush()?.next().is_some() {
        return Err(Error::Vpx {
            op: "vpx_codec_encode (flush)",
            message: format!("{}: the encoder held back frames", r.track_name()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_the_project_default_pack() {
        let o = BuildOptions::default();
        assert_eq!(o.audio, AudioSource::Speech);
        assert_eq!(o.video, VideoSource::Pattern(Pattern::Bars));
        assert_eq!(o.renditions, Rendition::DEFAULTS.to_vec());
        assert_eq!(o.duration, Duration::from_secs(10));
        assert_eq!(o.output, PathBuf::from("packs/default.pack"));
    }

    #[test]
    fn renditions_with_key_frames_elsewhere_are_refused() {
        let t = |name: &str| TrackSummary {
            name: name.into(),
            frames: 90,
            keyframes: 0,
            bytes: 0,
            target_bps: 0,
        };
        let videos = [t("video-640x360"), t("video-320x180")];
        let same = vec![vec![0, 30, 60], vec![0, 30, 60]];
        assert!(check_keyframes_aligned(&videos, &same).is_ok());
        let err = check_keyframes_aligned(&videos, &[vec![0, 30, 60], vec![0, 30, 45, 60]])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "key frames differ between renditions video-640x360 (frames 0, 30, 60) and \
             video-320x180 (frames 0, 30, 45, 60); renditions must share key-frame positions"
        );
    }

    #[test]
    fn rejects_duplicate_or_missing_renditions_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("x.pack");
        let r: Rendition = "320x180@150".parse().unwrap();
        for renditions in [vec![], vec![r, Rendition { kbps: 200, ..r }]] {
            let options = BuildOptions {
                renditions,
                output: output.clone(),
                ..BuildOptions::default()
            };
            let err = build(&options, &mut |_| {}).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{err}");
            assert!(!output.exists());
        }
    }
}
