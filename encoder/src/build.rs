//! The build pipeline: sources → Opus and VP9 encoders → one pack.
//!
//! 1. [`Plan`] fixes the loop length and frame counts (rounding the duration up
//!    to whole audio, video and screen frames). A pack that copies clips
//!    (passthrough: a WebM, IVF or Ogg file's VP9 frames or Opus packets, see
//!    [`crate::clip`]) cannot stretch them, so its loop is the shortest of
//!    `--duration` and the clips, rounded *down* to whole frames, and every
//!    copied track is cut there (`fit_loop`).
//! 2. Each voice is rendered to 48 kHz mono, its frames' voice activity is
//!    detected ([`crate::audio::vad`]), and it is Opus-encoded on a thread of
//!    its own (500 frames take a few hundred milliseconds), and so is one loop
//!    of digital silence, the `audio-silence` track.
//! 3. The video source is loaded once; each variant of each rendition, and the
//!    screen track's slides, then renders, converts and encodes its frames on
//!    its own thread, sending the packets over a bounded channel to the calling
//!    thread, which writes them into the pack as they come (the pack writer
//!    takes any interleaving of tracks).
//! 4. The writer finishes the pack under a temporary name and renames it.
//!
//! Tracks come in this order: the voices (`audio-opus`, `audio-opus-v1`, …),
//! `audio-silence`, each rendition's variants (`video-640x360`,
//! `video-640x360-v1`, …), then the screen track (`screen-1280x720`). The
//! pack's source table records where each came from (encoded here from what,
//! or copied from which file), for `inspect`.
//!
//! Every video frame must give exactly one packet (no look-ahead, no frame
//! drops); a frame that gives none or several is reported as an error rather
//! than producing a pack whose frame count does not match its duration.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use synth_common::pack::{FrameFlags, Origin, Role, Source, Track, TrackKind, Writer};

use crate::audio::{self, vad, AudioSource};
use crate::clip::{AudioClip, VideoClip};
use crate::container::Container;
use crate::opus::{OpusFrameEncoder, FRAME_SAMPLES};
use crate::plan::{self, Plan};
use crate::rendition::{Rendition, RenditionFile, Screen};
use crate::video::slides::Slides;
use crate::video::{Footage, Frames, Pattern, VideoSource};
use crate::vp9::{Encoder, EncoderConfig};
use crate::yuv::I420;
use crate::Error;

/// Frames encoded and discarded before each rendition's loop (see `encode_rendition`).
const WARMUP_FRAMES: u32 = 60;

/// Name of the audio track (of its first voice).
pub const AUDIO_TRACK: &str = "audio-opus";
/// Name of the silence track.
pub const SILENCE_TRACK: &str = "audio-silence";
/// Variants of each rendition unless told otherwise.
pub const DEFAULT_VARIANTS: u32 = 4;
/// The most variants of a rendition.
pub const MAX_VARIANTS: u32 = 16;
/// Frames per second of the screen track unless told otherwise.
pub const DEFAULT_SCREEN_FPS: u32 = 5;

/// The name of variant `k` of a track whose variant 0 is `base`: `base`
/// itself for 0, else `base-vK` (`audio-opus-v1`, `video-640x360-v3`).
pub fn variant_name(base: &str, k: u32) -> String {
    if k == 0 {
        base.to_string()
    } else {
        format!("{base}-v{k}")
    }
}

/// Everything `synth-encode build` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// The audio source.
    pub audio: AudioSource,
    /// The video source. A clip to copy ([`VideoSource::clip`]) gives one
    /// rendition, its own; `renditions` must then be empty and `variants` 1.
    pub video: VideoSource,
    /// Video renditions to encode from `video`, one track (per variant) each.
    pub renditions: Vec<Rendition>,
    /// Renditions copied from clips (`--rendition-file WxH=FILE`), in place
    /// of encoded ones: `renditions` must then be empty, `variants` 1 and
    /// `video` is not read (it must not be a clip too).
    pub rendition_files: Vec<RenditionFile>,
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
    /// Voices (audio tracks of role main): `None` for the source's default
    /// ([`audio::voice_count`]: 4 for a generated source, 1 for a WAV).
    pub voices: Option<u32>,
    /// Variants of each video rendition (1..=[`MAX_VARIANTS`]), each with its
    /// own tint and label.
    pub variants: u32,
    /// The screen track's size and bitrate, if the pack has one.
    pub screen: Screen,
    /// The screen track's frames per second.
    pub screen_fps: u32,
    /// The pack to write.
    pub output: PathBuf,
}

impl Default for BuildOptions {
    /// The project's default pack: 4 voices of speech, bars at 640x360@500 and
    /// 320x180@150 in 4 variants each, a 1280x720@300 screen share at 5 fps, 10 s.
    fn default() -> BuildOptions {
        BuildOptions {
            audio: AudioSource::Speech,
            video: VideoSource::Pattern(Pattern::Bars),
            renditions: Rendition::DEFAULTS.to_vec(),
            rendition_files: Vec::new(),
            fps: 30,
            duration: Duration::from_secs(10),
            keyframe_interval: Duration::from_secs(2),
            audio_bitrate: crate::opus::DEFAULT_BITRATE,
            hold: 1,
            voices: None,
            variants: DEFAULT_VARIANTS,
            screen: Screen::DEFAULT,
            screen_fps: DEFAULT_SCREEN_FPS,
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
    /// Audio or video.
    pub kind: TrackKind,
    /// Its role: main, screen or silence.
    pub role: Role,
    /// Which variant of its rendition or voice it is.
    pub variant: u8,
    /// Audio frames marked as voice (0 for video).
    pub voice_frames: u32,
    /// Frames written.
    pub frames: u32,
    /// Key frames among them.
    pub keyframes: u32,
    /// Payload bytes.
    pub bytes: u64,
    /// Target bitrate, bit/s.
    pub target_bps: u32,
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

impl TrackSummary {
    /// Payload bits per second of loop.
    pub fn measured_bps(&self, loop_duration: Duration) -> f64 {
        self.bytes as f64 * 8.0 / loop_duration.as_secs_f64()
    }

    fn new(track: &Track) -> TrackSummary {
        TrackSummary {
            name: track.name.clone(),
            kind: track.kind,
            role: track.role,
            variant: track.variant,
            voice_frames: 0,
            frames: 0,
            keyframes: 0,
            bytes: 0,
            target_bps: track.target_bitrate_bps,
        }
    }
}

struct EncodedVideo {
    track: usize,
    data: Vec<u8>,
    pts: u64,
    duration: u32,
    key: bool,
}

/// One audio track to write: its record, where it came from and what it holds.
struct AudioTrack {
    track: Track,
    source: Source,
    content: AudioContent,
}

/// An audio track's frames to be.
enum AudioContent {
    /// One loop of 48 kHz mono PCM to encode in frames of `frame` samples
    /// (20 ms but for the silence beside a copied clip, which takes the
    /// clip's packet length), and each frame's voice activity.
    Pcm {
        pcm: Vec<f32>,
        voice: Vec<bool>,
        frame: u32,
    },
    /// Opus packets copied from a clip, each `ticks` long, and each packet's
    /// voice activity (from the decoded packets).
    Copied {
        packets: Vec<Vec<u8>>,
        ticks: u32,
        voice: Vec<bool>,
    },
}

/// One copied video track: its record, where it came from, and its frames
/// cut to the loop, as (frame, pts, duration, key).
struct CopiedVideo {
    track: Track,
    source: Source,
    frames: Vec<(Vec<u8>, u64, u32, bool)>,
}

/// Where one video track's pictures come from.
enum Pictures {
    /// A rendition (one variant of it) of the camera source.
    Camera(Frames),
    /// The screen share's slides.
    Screen(Slides),
}

impl Pictures {
    fn render(&mut self, i: u32) -> &I420 {
        match self {
            Pictures::Camera(frames) => frames.render(i),
            Pictures::Screen(slides) => slides.render(i),
        }
    }
}

/// One video track to encode on its own thread.
struct VideoJob {
    /// Its id in the pack.
    track: usize,
    /// Its name, for errors.
    name: String,
    /// Size, frame rate, bitrate and key-frame interval.
    config: EncoderConfig,
    /// Frames in one loop.
    frames: u32,
    /// Whether the track is the screen share (its own clock and key frames).
    screen: bool,
    /// The variant to tint and label, when a camera rendition has several.
    variant: Option<u32>,
}

/// Builds the pack described by `options`, reporting progress to `events`.
pub fn build(options: &BuildOptions, events: &mut dyn FnMut(Event)) -> Result<BuildSummary, Error> {
    let started = Instant::now();
    // Before any slow work: a device, FIFO or directory at `-o` is refused.
    Writer::check_output(&options.output).map_err(|e| pack_write_error(&options.output, e))?;
    let screen_fps = options.screen.0.map(|_| options.screen_fps);
    // Bad arguments fail here, before anything slow.
    let planned = Plan::with_screen(
        options.fps,
        screen_fps,
        options.duration,
        options.keyframe_interval,
    )?;
    check_variants(options.variants)?;
    OpusFrameEncoder::new(options.audio_bitrate)?;
    audio::voice_count(&options.audio, options.voices)?;
    // The clips to copy are read whole (they are compressed) and checked
    // first: a clip that cannot be copied fails before any encoding.
    let audio_clip = audio::clip(&options.audio)?;
    let video_clips = video_clips(options)?;
    if video_clips.is_empty() {
        check_renditions(&options.renditions)?;
        options.video.check()?;
    }
    let (plan, fitted) = if audio_clip.is_none() && video_clips.is_empty() {
        (planned, None)
    } else {
        let (plan, note) = fit_loop(options, screen_fps, audio_clip.as_ref(), &video_clips)?;
        (plan, Some(note))
    };
    // Load both sources before saying anything about either, so bad input gives
    // one error and nothing else.
    let voices = match &audio_clip {
        None => Some(audio::render_voices(
            &options.audio,
            plan.audio_samples(),
            options.voices,
        )?),
        Some(_) => None,
    };
    let footage = if video_clips.is_empty() {
        let sizes: Vec<(u32, u32)> = options
            .renditions
            .iter()
            .map(|r| (r.width, r.height))
            .collect();
        let seconds = plan.loop_duration().as_secs_f64();
        Some(Footage::load_for(
            &options.video,
            options.hold,
            &sizes,
            seconds,
        )?)
    } else {
        None
    };
    if let Some(warning) = voices.as_ref().and_then(|v| v.warning.as_ref()) {
        events(Event::Note(format!("warning: {warning}")));
    }
    for (k, pcm) in voices.iter().flat_map(|v| &v.pcm).enumerate() {
        let name = variant_name(AUDIO_TRACK, k as u32);
        events(Event::Note(format!("audio {name}: {}", pcm.description)));
    }
    if let Some(clip) = &audio_clip {
        events(Event::Note(format!(
            "audio {AUDIO_TRACK}: copied from {}",
            clip.describe()
        )));
    }
    match &footage {
        Some(footage) => events(Event::Note(format!("video: {}", footage.describe()))),
        None => {
            for clip in &video_clips {
                events(Event::Note(format!(
                    "video video-{}x{}: copied from {}",
                    clip.width,
                    clip.height,
                    clip.describe()
                )));
            }
        }
    }
    match fitted {
        Some(note) => events(Event::Note(note)),
        None if plan.rounded() => events(Event::Note(format!(
            "duration {} rounded up to {}: a loop holds whole 20 ms audio frames and whole video frames at {} fps{} (a multiple of {} ms)",
            humantime::format_duration(plan.requested),
            humantime::format_duration(plan.loop_duration()),
            plan.fps,
            screen_fps.map_or(String::new(), |s| format!(" and screen frames at {s} fps")),
            plan.loop_unit_ms()
        ))),
        None => {}
    }

    let audio = audio_tracks(options, &plan, voices, audio_clip)?;
    let copied = copied_videos(&plan, video_clips)?;
    let writer = create_writer(&options.output)?;
    let tracks = write_pack(
        writer,
        options,
        &plan,
        audio,
        copied,
        footage.as_ref(),
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

/// The VP9 clips to copy, one rendition each: `options.video` when it is a
/// clip, else the `rendition_files`; checked against the other options.
fn video_clips(options: &BuildOptions) -> Result<Vec<VideoClip>, Error> {
    let mut clips = Vec::new();
    if options.rendition_files.is_empty() {
        clips.extend(options.video.clip()?);
    } else if let VideoSource::Path(path) = &options.video {
        if !path.is_dir()
            && matches!(
                Container::sniff(path),
                Ok(Container::Matroska { .. } | Container::Ivf)
            )
        {
            return Err(Error::invalid(
                "video source",
                format!(
                    "--video {} is a clip to copy and --rendition-file gives the copied renditions: pass it as one more --rendition-file WxH={}",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    for file in &options.rendition_files {
        let clip = match Container::sniff(&file.path)? {
            c @ (Container::Matroska { .. } | Container::Ivf) => {
                crate::clip::read_video(&file.path, c)?
            }
            other => {
                return Err(Error::media(
                    &file.path,
                    format!(
                        "is {} file: --rendition-file copies VP9 from WebM or IVF clips",
                        match other {
                            Container::Ogg => "an Ogg",
                            Container::Mp4 => "an MP4",
                            Container::Y4m => "a Y4M",
                            Container::Wav => "a WAV",
                            _ => "not a WebM or IVF",
                        }
                    ),
                ))
            }
        };
        if (clip.width, clip.height) != (file.width, file.height) {
            return Err(Error::media(
                &file.path,
                format!(
                    "is {}x{}, not the {}x{} its --rendition-file says",
                    clip.width, clip.height, file.width, file.height
                ),
            ));
        }
        clips.push(clip);
    }
    if clips.is_empty() {
        return Ok(clips);
    }
    for (i, c) in clips.iter().enumerate() {
        if let Some(o) = clips[..i]
            .iter()
            .find(|o| (o.width, o.height) == (c.width, c.height))
        {
            return Err(Error::invalid(
                "renditions",
                format!(
                    "{} and {} are both {}x{} (track names must differ)",
                    o.path.display(),
                    c.path.display(),
                    c.width,
                    c.height
                ),
            ));
        }
    }
    if !options.renditions.is_empty() {
        let shown: Vec<String> = options.renditions.iter().map(|r| r.to_string()).collect();
        return Err(Error::invalid(
            "renditions",
            format!(
                "--rendition {} encodes a source, but {} is copied as it is, a rendition of its own size: \
                 leave out --rendition, or copy more renditions with --rendition-file WxH=FILE",
                shown.join(", "),
                clips[0].path.display()
            ),
        ));
    }
    if options.variants > 1 {
        return Err(Error::invalid(
            "variants",
            format!(
                "{} with copied video: a copied clip is one variant, its own frames (use --variants 1)",
                options.variants
            ),
        ));
    }
    Ok(clips)
}

/// The loop of a pack that copies clips: the shortest of `--duration` and
/// every clip, rounded down to a whole number of audio packets (20 ms, or a
/// copied clip's), of video frames (an encoded rendition's, or a copied
/// clip's when its rate is a whole number of frames a second; a clip at a
/// variable or NTSC rate has its last frame cut short instead), and of
/// screen frames. Copied tracks are cut there; a clip is never stretched or
/// repeated. Returns the plan and a line for the user.
fn fit_loop(
    options: &BuildOptions,
    screen_fps: Option<u32>,
    audio: Option<&AudioClip>,
    videos: &[VideoClip],
) -> Result<(Plan, String), Error> {
    let packet_ms = audio.map_or(20, |a| (a.packet_samples / 48) as u64);
    let mut rates: Vec<u32> = Vec::new();
    if videos.is_empty() {
        rates.push(options.fps);
    }
    rates.extend(videos.iter().filter_map(|v| v.rate.whole()));
    rates.extend(screen_fps);
    rates.sort_unstable();
    rates.dedup();
    // Encoded voices and the silence track are 20 ms frames.
    let unit = plan::loop_unit_ms(plan::lcm(20, packet_ms), &rates);
    let seconds = |ms: u64| format!("{:.2} s", ms as f64 / 1000.0);
    let mut limits = vec![(
        format!(
            "--duration {}",
            humantime::format_duration(options.duration)
        ),
        options.duration.as_millis().min(u64::MAX as u128) as u64,
    )];
    if let Some(a) = audio {
        let ms = a.packets.len() as u64 * packet_ms;
        limits.push((format!("{}'s audio {}", a.path.display(), seconds(ms)), ms));
    }
    for v in videos {
        let ms = v.end * 1000 / plan::VIDEO_CLOCK as u64;
        limits.push((format!("{}'s video {}", v.path.display(), seconds(ms)), ms));
    }
    let (by, limit) = limits
        .iter()
        .min_by_key(|(_, ms)| *ms)
        .cloned()
        .unwrap_or_default();
    let loop_ms = limit / unit * unit;
    let frames = {
        let mut parts = vec![format!("{packet_ms} ms audio packets")];
        let video: Vec<u32> = match videos.is_empty() {
            true => vec![options.fps],
            false => videos.iter().filter_map(|v| v.rate.whole()).collect(),
        };
        parts.extend(video.iter().map(|r| format!("{r} fps video frames")));
        parts.extend(screen_fps.map(|s| format!("{s} fps screen frames")));
        parts.dedup();
        parts.join(", ")
    };
    if loop_ms == 0 {
        return Err(Error::invalid(
            "duration",
            format!(
                "{by} is shorter than the shortest loop, {unit} ms (whole {frames}): nothing to copy"
            ),
        ));
    }
    let plan = Plan::fitted(
        options.fps,
        screen_fps,
        options.duration,
        loop_ms,
        options.keyframe_interval,
    )?;
    let names: Vec<&str> = limits.iter().map(|(n, _)| n.as_str()).collect();
    let note = format!(
        "loop {}: of {}, the shortest rounded down to a multiple of {unit} ms (whole {frames}); the clips are cut there, none is stretched",
        seconds(loop_ms),
        names.join(", ")
    );
    Ok((plan, note))
}

/// Each copied clip cut to the loop: the frames that start before its end,
/// the last one cut short there. Two or more must have the same frame times
/// and key frames: a client switches between renditions at a key frame.
fn copied_videos(plan: &Plan, clips: Vec<VideoClip>) -> Result<Vec<CopiedVideo>, Error> {
    let loop_ticks = plan.video_loop_ticks();
    let mut out: Vec<CopiedVideo> = Vec::new();
    let mut kept: Vec<(PathBuf, Vec<u64>, Vec<u32>)> = Vec::new();
    for clip in clips {
        let n = clip.pts.partition_point(|&p| p < loop_ticks);
        let description = clip.describe();
        let total = clip.frames.len();
        let (Ok(w), Ok(h)) = (u16::try_from(clip.width), u16::try_from(clip.height)) else {
            return Err(Error::media(
                &clip.path,
                format!(
                    "{}x{} is larger than a pack's track",
                    clip.width, clip.height
                ),
            ));
        };
        let mut frames = Vec::with_capacity(n);
        let mut bytes = 0u64;
        for (i, data) in clip.frames.into_iter().take(n).enumerate() {
            let next = clip
                .pts
                .get(i + 1)
                .copied()
                .unwrap_or(loop_ticks)
                .min(loop_ticks);
            let duration = u32::try_from(next - clip.pts[i]).map_err(|_| {
                Error::media(
                    &clip.path,
                    format!("frame {i} lasts longer than a pack's frame may"),
                )
            })?;
            bytes += data.len() as u64;
            frames.push((data, clip.pts[i], duration, clip.keys[i]));
        }
        let bps = (bytes * 8 * 1000 / plan.loop_ms).min(u32::MAX as u64) as u32;
        let mut track = Track::vp9(&format!("video-{w}x{h}"), (w, h), 1, bps.max(1), loop_ticks);
        (track.fps_num, track.fps_den) = clip.rate.fraction();
        let keys = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.3)
            .map(|(i, _)| i as u32)
            .collect();
        kept.push((
            clip.path.clone(),
            frames.iter().map(|f| f.1).collect(),
            keys,
        ));
        let cut = if n < total {
            format!("; its first {n} frames, cut to the loop")
        } else {
            String::new()
        };
        out.push(CopiedVideo {
            track,
            source: Source {
                origin: Origin::Copied,
                from: format!("{description}{cut}"),
            },
            frames,
        });
    }
    check_copies_aligned(&kept)?;
    Ok(out)
}

/// Fails unless every copied rendition has the first one's frame times and
/// key frames. `kept` holds each clip's path, frame times and key frames.
fn check_copies_aligned(kept: &[(PathBuf, Vec<u64>, Vec<u32>)]) -> Result<(), Error> {
    let Some((first, pts, keys)) = kept.first() else {
        return Ok(());
    };
    let shown = |k: &[u32]| {
        let mut s: Vec<String> = k.iter().take(8).map(u32::to_string).collect();
        if k.len() > 8 {
            s.push(format!("… {} in all", k.len()));
        }
        s.join(", ")
    };
    for (path, other_pts, other_keys) in &kept[1..] {
        if other_pts != pts {
            return Err(Error::invalid(
                "renditions",
                format!(
                    "{} ({} frames in the loop) and {} ({}) have frames at different times: \
                     copied renditions need the same frames at the same times (encode them from one source at one frame rate)",
                    first.display(),
                    pts.len(),
                    path.display(),
                    other_pts.len()
                ),
            ));
        }
        if other_keys != keys {
            return Err(Error::invalid(
                "renditions",
                format!(
                    "key frames differ between {} (frames {}) and {} (frames {}): a client switches renditions \
                     at a key frame, so copied renditions need them at the same frames (encode each with one \
                     fixed interval, e.g. ffmpeg -c:v libvpx-vp9 -g 60 -keyint_min 60)",
                    first.display(),
                    shown(keys),
                    path.display(),
                    shown(other_keys)
                ),
            ));
        }
    }
    Ok(())
}

/// The audio tracks: one per voice (variants of role main) with its voice
/// activity, or the copied clip's packets, then one loop of digital silence
/// with none.
fn audio_tracks(
    options: &BuildOptions,
    plan: &Plan,
    voices: Option<audio::Voices>,
    clip: Option<AudioClip>,
) -> Result<Vec<AudioTrack>, Error> {
    let opus = |name: &str| Track::opus(name, options.audio_bitrate, plan.audio_loop_ticks());
    let mut tracks: Vec<AudioTrack> = voices
        .into_iter()
        .flat_map(|v| v.pcm)
        .enumerate()
        .map(|(k, pcm)| AudioTrack {
            track: opus(&variant_name(AUDIO_TRACK, k as u32)).with_variant(k as u8),
            source: Source {
                origin: Origin::Encoded,
                from: pcm.description,
            },
            content: AudioContent::Pcm {
                voice: vad::detect(&pcm.samples),
                pcm: pcm.samples,
                frame: FRAME_SAMPLES as u32,
            },
        })
        .collect();
    // The silence a client sends when it is not its turn replaces the voice
    // frame for frame, so beside a copied clip it has the clip's packet length.
    let mut silence_frame = FRAME_SAMPLES as u32;
    if let Some(mut clip) = clip {
        let samples = clip.packet_samples as u64;
        silence_frame = clip.packet_samples;
        let n = (plan.audio_loop_ticks() / samples) as usize;
        let total = clip.packets.len();
        let description = clip.describe();
        clip.packets.truncate(n);
        // Voice activity of the decoded packets, 20 ms at a time; a packet is
        // voice when any 20 ms of it is.
        let pcm = audio::decode::decode_opus(&clip)?;
        let frames = vad::detect(&pcm);
        let voice = (0..n as u64)
            .map(|k| {
                let first = (k * samples / FRAME_SAMPLES as u64) as usize;
                let last = (((k + 1) * samples - 1) / FRAME_SAMPLES as u64) as usize;
                frames
                    .get(first..=last.min(frames.len().saturating_sub(1)))
                    .is_some_and(|f| f.iter().any(|&v| v))
            })
            .collect();
        let bytes: u64 = clip.packets.iter().map(|p| p.len() as u64).sum();
        let bps = (bytes * 8 * 1000 / plan.loop_ms).min(u32::MAX as u64) as u32;
        let mut track = Track::opus(AUDIO_TRACK, bps.max(1), plan.audio_loop_ticks());
        track.channels = clip.channels;
        let ms = samples / 48;
        let g = plan::gcd(1000, ms);
        (track.fps_num, track.fps_den) = ((1000 / g) as u32, (ms / g) as u32);
        let cut = if n < total {
            format!("; its first {n} packets, cut to the loop")
        } else {
            String::new()
        };
        tracks.push(AudioTrack {
            track,
            source: Source {
                origin: Origin::Copied,
                from: format!("{description}{cut}"),
            },
            content: AudioContent::Copied {
                packets: clip.packets,
                ticks: samples as u32,
                voice,
            },
        });
    }
    tracks.push(AudioTrack {
        track: opus(SILENCE_TRACK).with_role(Role::Silence),
        source: Source {
            origin: Origin::Encoded,
            from: "digital silence".into(),
        },
        content: AudioContent::Pcm {
            pcm: vec![0.0; plan.audio_samples()],
            voice: vec![false; plan.audio_samples() / silence_frame as usize],
            frame: silence_frame,
        },
    });
    Ok(tracks)
}

/// The video tracks to encode: each rendition's variants (none when the
/// renditions are copied), then the screen track.
fn video_tracks(
    options: &BuildOptions,
    plan: &Plan,
    encode_renditions: bool,
) -> Vec<(Track, EncoderConfig)> {
    let mut out = Vec::new();
    let renditions: &[Rendition] = if encode_renditions {
        &options.renditions
    } else {
        &[]
    };
    for r in renditions {
        for k in 0..options.variants {
            let track = Track::vp9(
                &variant_name(&r.track_name(), k),
                (r.width as u16, r.height as u16),
                plan.fps,
                r.bitrate_bps(),
                plan.video_loop_ticks(),
            )
            .with_variant(k as u8);
            let mut config = EncoderConfig::new(r.width, r.height, plan.fps, r.kbps);
            config.keyframe_interval = plan.keyframe_interval;
            out.push((track, config));
        }
    }
    if let (Some(s), Some(fps)) = (options.screen.0, plan.screen_fps) {
        let track = Track::vp9(
            &Screen::track_name(&s),
            (s.width as u16, s.height as u16),
            fps,
            s.bitrate_bps(),
            plan.video_loop_ticks(),
        )
        .with_role(Role::Screen);
        let mut config = EncoderConfig::new(s.width, s.height, fps, s.kbps);
        config.keyframe_interval = plan.screen_keyframe_interval;
        out.push((track, config));
    }
    out
}

/// Declares the tracks, encodes everything into `writer` and finishes the pack.
fn write_pack(
    mut writer: Writer,
    options: &BuildOptions,
    plan: &Plan,
    audio: Vec<AudioTrack>,
    copied: Vec<CopiedVideo>,
    footage: Option<&Footage>,
    events: &mut dyn FnMut(Event),
) -> Result<Vec<TrackSummary>, Error> {
    let written = |e| pack_write_error(&options.output, e);
    let mut tracks = Vec::new();
    let mut audio_ids = Vec::new();
    for a in &audio {
        let id = writer.add_track(a.track.clone()).map_err(written)?;
        writer.set_source(id, a.source.clone()).map_err(written)?;
        audio_ids.push(id);
        tracks.push(TrackSummary::new(&a.track));
    }
    let mut copied_ids = Vec::new();
    for c in &copied {
        let id = writer.add_track(c.track.clone()).map_err(written)?;
        writer.set_source(id, c.source.clone()).map_err(written)?;
        copied_ids.push(id);
        tracks.push(TrackSummary::new(&c.track));
    }
    let mut jobs = Vec::new();
    for (track, config) in video_tracks(options, plan, footage.is_some()) {
        let id = writer.add_track(track.clone()).map_err(written)?;
        let screen = track.role == Role::Screen;
        let from = match footage {
            Some(f) if !screen => match (options.variants > 1).then_some(track.variant) {
                Some(k) => format!("{}; variant {k}: tinted, labelled P{}", f.describe(), k + 1),
                None => f.describe(),
            },
            _ => "text slides, a new one every few seconds".into(),
        };
        let source = Source {
            origin: Origin::Encoded,
            from,
        };
        writer.set_source(id, source).map_err(written)?;
        jobs.push(VideoJob {
            track: id,
            name: track.name.clone(),
            frames: if screen {
                plan.screen_frames
            } else {
                plan.video_frames
            },
            config,
            screen,
            variant: (options.variants > 1 && !screen).then_some(track.variant as u32),
        });
        tracks.push(TrackSummary::new(&track));
    }
    let audio_frames: u64 = audio
        .iter()
        .map(|a| match &a.content {
            AudioContent::Pcm { voice, .. } => voice.len() as u64,
            AudioContent::Copied { packets, .. } => packets.len() as u64,
        })
        .sum();
    events(Event::Started {
        total: audio_frames
            + copied.iter().map(|c| c.frames.len() as u64).sum::<u64>()
            + jobs.iter().map(|j| j.frames as u64).sum::<u64>(),
    });

    let mut encoded = encode_audio(&audio, options.audio_bitrate)?.into_iter();
    for (a, &id) in audio.iter().zip(&audio_ids) {
        let (packets, ticks, voice) = match &a.content {
            AudioContent::Pcm { voice, frame, .. } => {
                (encoded.next().unwrap_or_default(), *frame, voice)
            }
            AudioContent::Copied {
                packets,
                ticks,
                voice,
            } => (packets.clone(), *ticks, voice),
        };
        for (k, data) in packets.iter().enumerate() {
            let voice = voice[k];
            let pts = k as u64 * ticks as u64;
            let flags = FrameFlags { key: true, voice };
            writer
                .push_frame_flags(id, data, pts, ticks, flags)
                .map_err(written)?;
            let t = &mut tracks[id];
            t.frames += 1;
            t.keyframes += 1;
            t.voice_frames += voice as u32;
            t.bytes += data.len() as u64;
            events(Event::Encoded(1));
        }
    }
    for (c, &id) in copied.iter().zip(&copied_ids) {
        for (data, pts, duration, key) in &c.frames {
            writer
                .push_frame(id, data, *pts, *duration, *key)
                .map_err(written)?;
            let t = &mut tracks[id];
            t.frames += 1;
            t.keyframes += *key as u32;
            t.bytes += data.len() as u64;
            events(Event::Encoded(1));
        }
    }

    // Key-frame positions per track, to check the renditions share them.
    let mut keys: Vec<Vec<u32>> = vec![Vec::new(); tracks.len()];
    encode_video(plan, footage, &jobs, |frame| {
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
            .map_err(written)?;
        let t = &mut tracks[frame.track];
        t.frames += 1;
        t.keyframes += frame.key as u32;
        t.bytes += frame.data.len() as u64;
        events(Event::Encoded(1));
        Ok(())
    })?;
    let cameras: Vec<usize> = jobs.iter().filter(|j| !j.screen).map(|j| j.track).collect();
    let summaries: Vec<TrackSummary> = cameras.iter().map(|&t| tracks[t].clone()).collect();
    let camera_keys: Vec<Vec<u32>> = cameras.iter().map(|&t| keys[t].clone()).collect();
    check_keyframes_aligned(&summaries, &camera_keys)?;

    writer.finish().map_err(written)?;
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

fn check_variants(variants: u32) -> Result<(), Error> {
    if !(1..=MAX_VARIANTS).contains(&variants) {
        return Err(Error::invalid(
            "variants",
            format!("{variants} (must be 1..={MAX_VARIANTS})"),
        ));
    }
    Ok(())
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

/// Opus-encodes every audio track that holds PCM (each a whole number of 20
/// ms frames), one thread a track, each with its own encoder at `bitrate`:
/// their packets in order, one list per PCM track (copied tracks have none).
fn encode_audio(audio: &[AudioTrack], bitrate: u32) -> Result<Vec<Vec<Vec<u8>>>, Error> {
    let encode = |pcm: &[f32], frame: u32| -> Result<Vec<Vec<u8>>, Error> {
        let mut encoder = OpusFrameEncoder::with_frame(bitrate, frame as usize)?;
        pcm.chunks_exact(frame as usize)
            .map(|frame| encoder.encode(frame).map(<[u8]>::to_vec))
            .collect()
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = audio
            .iter()
            .filter_map(|a| match &a.content {
                AudioContent::Pcm { pcm, frame, .. } => Some((pcm, *frame)),
                AudioContent::Copied { .. } => None,
            })
            .map(|(pcm, frame)| scope.spawn(move || encode(pcm, frame)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an Opus encoding thread panicked"))
            .collect()
    })
}

/// Encodes every video job on its own thread and hands the frames to `sink`
/// on this thread, in order within each track.
fn encode_video(
    plan: &Plan,
    footage: Option<&Footage>,
    jobs: &[VideoJob],
    mut sink: impl FnMut(EncodedVideo) -> Result<(), Error>,
) -> Result<(), Error> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let threads = (cores / jobs.len().max(1) as u32).max(1);
    let (tx, rx) = mpsc::sync_channel::<Result<EncodedVideo, Error>>(64);
    std::thread::scope(|scope| {
        for job in jobs {
            let tx = tx.clone();
            scope.spawn(move || {
                let run = || {
                    let pictures = pictures(plan, footage, job)?;
                    encode_track(plan, job, pictures, threads, &tx)
                };
                if let Err(e) = run() {
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

/// The picture source of `job`: slides for the screen share, else the
/// footage at the job's size (tinted and labelled for a variant).
fn pictures(plan: &Plan, footage: Option<&Footage>, job: &VideoJob) -> Result<Pictures, Error> {
    let c = &job.config;
    if job.screen {
        let slides = Slides::new(
            c.width,
            c.height,
            c.fps,
            plan.screen_frames,
            c.keyframe_interval,
        );
        return Ok(Pictures::Screen(slides));
    }
    let footage = footage.ok_or_else(|| {
        Error::invalid(
            "video source",
            format!("{}: no footage to encode", job.name),
        )
    })?;
    let frames = footage.frames(c.width, c.height, c.fps)?;
    Ok(Pictures::Camera(match job.variant {
        Some(k) => frames.variant(k),
        None => frames,
    }))
}

/// Renders and encodes one video track, sending its frames on `tx`.
fn encode_track(
    plan: &Plan,
    job: &VideoJob,
    mut pictures: Pictures,
    threads: u32,
    tx: &mpsc::SyncSender<Result<EncodedVideo, Error>>,
) -> Result<(), Error> {
    let mut config = job.config.clone();
    config.threads = threads;
    let mut encoder = Encoder::new(config)?;
    let is_key = |i: u32| match &pictures {
        Pictures::Screen(slides) => slides.is_keyframe(i),
        Pictures::Camera(_) => plan.is_keyframe(i),
    };
    let keys: Vec<bool> = (0..job.frames).map(is_key).collect();
    // Warm-up: run the rate controller over the loop's last frames once and throw
    // the packets away, so the kept loop starts as it does when it repeats: with a
    // settled rate-control buffer, not the encoder's cold start (whose first key
    // frame overspends, which shows in the measured bitrate of a short loop).
    let n = job.frames;
    let warmup = WARMUP_FRAMES.min(n);
    for i in n - warmup..n {
        let picture = pictures.render(i);
        encoder.encode(picture, i == n - warmup)?.for_each(drop);
    }
    for i in 0..n {
        let picture = pictures.render(i);
        let mut packets = encoder.encode(picture, keys[i as usize])?;
        let (Some(packet), None) = (packets.next(), packets.next()) else {
            return Err(Error::Vpx {
                op: "vpx_codec_encode",
                message: format!("{}: frame {i} did not give exactly one packet", job.name),
            });
        };
        let (pts, duration) = if job.screen {
            (plan.screen_pts(i), plan.screen_duration(i))
        } else {
            (plan.video_pts(i), plan.video_duration(i))
        };
        let frame = EncodedVideo {
            track: job.track,
            data: packet.data.to_vec(),
            pts,
            duration,
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
            message: format!("{}: the encoder held back frames", job.name),
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
        assert_eq!(o.voices, None, "4 for speech, see audio::voice_count");
        assert_eq!(audio::voice_count(&o.audio, o.voices).unwrap(), 4);
        assert_eq!(o.variants, 4);
        assert_eq!(o.screen.to_string(), "1280x720@300");
        assert_eq!(o.screen_fps, 5);
    }

    #[test]
    fn variant_names_keep_variant_0_plain() {
        assert_eq!(variant_name("audio-opus", 0), "audio-opus");
        assert_eq!(variant_name("video-640x360", 3), "video-640x360-v3");
    }

    #[test]
    fn bad_variant_and_voice_counts_are_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("x.pack");
        for (variants, voices, what) in [
            (0, None, "variants"),
            (17, None, "variants"),
            (1, Some(0), "voices"),
        ] {
            let options = BuildOptions {
                variants,
                voices,
                output: output.clone(),
                ..BuildOptions::default()
            };
            let err = build(&options, &mut |_| {}).unwrap_err();
            assert!(
                matches!(err, Error::Invalid { what: w, .. } if w == what),
                "{err}"
            );
            assert!(!output.exists());
        }
    }

    #[test]
    fn renditions_with_key_frames_elsewhere_are_refused() {
        let t = |name: &str| TrackSummary {
            name: name.into(),
            kind: TrackKind::Video,
            role: Role::Main,
            variant: 0,
            voice_frames: 0,
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
