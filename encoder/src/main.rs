//! `synth-encode`: the command line of synth-encoder.
//!
//! Parses the arguments, draws the progress bar, prints results, and maps
//! errors to one line and an exit code (2 for bad input, 1 otherwise). All
//! the work is in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use synth_common::pack::{Role, TrackKind};
use synth_encoder::audio::AudioSource;
use synth_encoder::build::{self, BuildOptions, Event};
use synth_encoder::export;
use synth_encoder::inspect::Report;
use synth_encoder::rendition::{Rendition, RenditionFile, Screen};
use synth_encoder::video::VideoSource;

#[derive(Debug, Parser)]
#[command(
    name = "synth-encode",
    version,
    about = "Pre-encode Opus audio and VP9 video into a pack for synth-replay",
    after_help = "Examples:
  synth-encode build                      # the default pack: 4 voices of speech, bars at 640x360@500 and
                                          # 320x180@150 in 4 variants each, a 1280x720@300 screen share, 10 s
  synth-encode inspect packs/default.pack
  synth-encode export packs/default.pack --track video-640x360 -o /tmp/v.ivf"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(BuildArgs),
    Inspect(InspectArgs),
    Export(ExportArgs),
}

/// Encode audio and video sources into a pack, or copy clips into it.
///
/// Audio is down-mixed to mono, resampled to 48 kHz and Opus-encoded (VOIP,
/// CBR, 20 ms frames), one track per voice (audio-opus, audio-opus-v1, ...),
/// each frame flagged as voice or not by an energy-based voice-activity
/// detector; an audio-silence track holds encoded silence. Each rendition is
/// VP9-encoded (profile 0, real time, CBR) in --variants tinted and labelled
/// variants (video-WxH, video-WxH-v1, ...) with a key frame on frame 0 and
/// every --keyframe-interval, at the same positions in all of them. A screen
/// share of text slides (screen-WxH) has a key frame on each new slide. The
/// loop length is --duration rounded up to whole audio, video and screen
/// frames (a multiple of 200 ms at 30 fps with a 5 fps screen). With no
/// arguments it builds the project's default pack.
///
/// A WebM, IVF or Ogg clip (--video clip.webm, --audio clip.ogg,
/// --rendition-file WxH=FILE) is copied instead: its VP9 frames or Opus
/// packets go into the pack unchanged. A clip is never stretched, so the loop
/// is then the shortest of --duration and the clips, rounded down to whole
/// frames, and the clips are cut there. docs/src/inputs.md has an example of
/// every input.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  synth-encode build
  synth-encode build --audio voice.wav --video ./frames --rendition 1280x720@1200 \\
      --rendition 640x360@500 --rendition 320x180@150 --duration 30s -o packs/camera.pack
  synth-encode build --audio tone --video checkerboard --fps 25 --duration 4s -o /tmp/t.pack
  synth-encode build --audio talk.mp3 --video talk.y4m --duration 20s -o /tmp/talk.pack
  synth-encode build --audio call.webm --video call.webm -o /tmp/call.pack     # copied as they are
  synth-encode build --audio pcm:s16le:48000:2:voice.raw --video i420:640x360:30:cam.yuv
  synth-encode build --voices 1 --variants 1 --screen none -o /tmp/small.pack
  synth-encode build --audio procedural --voices 8 --variants 8 --screen 1920x1080@500 --screen-fps 10
  SYNTH_RENDITIONS=640x360@500,320x180@150 PACK=packs/x.pack synth-encode build")]
struct BuildArgs {
    /// Audio source: a file, one voice: a WebM or Ogg clip of Opus (its packets
    /// copied as they are), or a file to decode and encode: WAV (8–192 kHz,
    /// 8/16/24/32-bit int or 32-bit float, any channels), MP3, FLAC, AAC/M4A;
    /// `encode:FILE` to decode and encode any of those, Ogg Vorbis or an Opus
    /// clip; `pcm:FORMAT:RATE:CHANNELS:FILE` for raw PCM (FORMAT u8, s8,
    /// s16le, s16be, s24le, s24be, s32le, s32be, f32le or f32be). Or `tone`
    /// (440 Hz sine; voice k 110·k Hz higher), `speech` (sentences spoken by
    /// espeak-ng with pauses between them, a different speaker and sentences
    /// per voice; the procedural source when espeak-ng is not installed) or
    /// `procedural` (synthetic talk spurts and pauses).
    #[arg(
        long,
        env = "SYNTH_AUDIO",
        default_value = "speech",
        value_name = "FILE|encode:FILE|pcm:...|tone|speech|procedural"
    )]
    audio: AudioSource,

    /// Voices: audio tracks of different speakers, 1 to 16 [default: 4 for a
    /// generated source, 1 for a file, which gives only one].
    #[arg(long, env = "SYNTH_VOICES", value_name = "N")]
    voices: Option<u32>,

    /// Variants of each video rendition, 1 to 16: each with its own colour
    /// tint and a large label (P1, P2, ...), key frames at the same positions.
    #[arg(long, env = "SYNTH_VARIANTS", default_value_t = build::DEFAULT_VARIANTS, value_name = "N")]
    variants: u32,

    /// The screen-share track, WIDTHxHEIGHT@KBPS (text slides, named
    /// screen-WIDTHxHEIGHT), or `none`.
    #[arg(
        long,
        env = "SYNTH_SCREEN",
        default_value = "1280x720@300",
        value_name = "WxH@KBPS|none"
    )]
    screen: Screen,

    /// Frames per second of the screen track.
    #[arg(long, env = "SYNTH_SCREEN_FPS", default_value_t = build::DEFAULT_SCREEN_FPS, value_name = "FPS")]
    screen_fps: u32,

    /// Video source: a WebM or IVF clip of VP9 profile 0 (its frames copied
    /// as they are, one rendition of the clip's size), or a source to encode
    /// into each --rendition: a Y4M file (8-bit 4:2:0, any size and rate),
    /// `i420:WIDTHxHEIGHT:RATE:FILE` (raw I420 frames), a directory of JPEGs
    /// (natural order, played ping-pong), or a pattern: `bars`, `gradient`,
    /// `checkerboard`. Files and JPEGs are scaled to cover each rendition and
    /// centre-cropped; a Y4M or I420 file plays at its own rate.
    #[arg(
        long,
        env = "SYNTH_VIDEO",
        default_value = "bars",
        value_name = "CLIP|Y4M|i420:...|DIR|bars|gradient|checkerboard"
    )]
    video: VideoSource,

    /// A video rendition to encode, WIDTHxHEIGHT@KBPS; repeat for several (one
    /// track each, named video-WIDTHxHEIGHT). Default: 640x360@500 and
    /// 320x180@150; none when the video is copied.
    #[arg(
        long = "rendition",
        env = "SYNTH_RENDITIONS",
        value_delimiter = ',',
        value_name = "WxH@KBPS"
    )]
    renditions: Vec<Rendition>,

    /// A rendition copied from a WebM or IVF clip of VP9, WIDTHxHEIGHT=FILE
    /// (the size is checked against the clip); repeat for several, which must
    /// have the same frame times and key frames. In place of --video and --rendition.
    #[arg(
        long = "rendition-file",
        env = "SYNTH_RENDITION_FILES",
        value_delimiter = ',',
        value_name = "WxH=FILE"
    )]
    rendition_files: Vec<RenditionFile>,

    /// Video frames per second.
    #[arg(long, env = "SYNTH_FPS", default_value_t = 30)]
    fps: u32,

    /// Loop length, e.g. 10s, 1m, 2m30s (rounded up to whole audio and video frames).
    #[arg(long, env = "SYNTH_DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Time between video key frames.
    #[arg(long, env = "SYNTH_KEYFRAME_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    keyframe_interval: Duration,

    /// Opus bitrate in kbit/s (constant bitrate).
    #[arg(
        long,
        env = "SYNTH_AUDIO_BITRATE",
        default_value_t = 32,
        value_name = "KBPS"
    )]
    audio_bitrate: u32,

    /// Frames each JPEG is shown for (JPEG directories only). 1 plays the
    /// directory as a video at --fps; use e.g. 30 for unrelated stills.
    #[arg(long, env = "SYNTH_HOLD", default_value_t = 1, value_name = "FRAMES")]
    hold: u32,

    /// The pack to write (its directory is created).
    #[arg(short, long, env = "PACK", default_value = "packs/default.pack")]
    output: PathBuf,
}

/// Show a pack's tracks, frame counts, bitrates and key frames.
///
/// Opening the pack validates it (layout, index, checksums); a damaged or
/// foreign file is reported and exits with code 2.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  synth-encode inspect packs/default.pack
  synth-encode inspect packs/default.pack --json | jq '.tracks[] | {name, measured_bps, error_pct}'")]
struct InspectArgs {
    /// The pack.
    #[arg(env = "PACK", default_value = "packs/default.pack")]
    pack: PathBuf,

    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Write one track as IVF (VP9) or Ogg Opus, for ffprobe, ffmpeg or a browser.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  synth-encode export packs/default.pack --track video-640x360 -o /tmp/v.ivf
  synth-encode export packs/default.pack --track audio-opus -o /tmp/a.ogg
  ffprobe -count_frames -show_streams /tmp/v.ivf")]
struct ExportArgs {
    /// The pack.
    #[arg(env = "PACK", default_value = "packs/default.pack")]
    pack: PathBuf,

    /// Track name, e.g. video-640x360 or audio-opus (see `inspect`).
    #[arg(long)]
    track: String,

    /// Output file: .ivf for a VP9 track, .ogg or .opus for the Opus track.
    #[arg(short, long)]
    output: PathBuf,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Build(args) => {
            let given = matches.subcommand_matches("build").map(given_flags);
            run_build(args, &given.unwrap_or_default())
        }
        Command::Inspect(args) => run_inspect(args),
        Command::Export(args) => run_export(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            let bad_input = err.chain().any(|e| {
                e.downcast_ref::<synth_encoder::Error>()
                    .is_some_and(|e| e.is_bad_input())
            });
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// The error and its causes on one line, `a: b: c`, leaving out a cause whose
/// text the line already ends with (many errors print their source themselves).
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The build flags given on the command line (not from the environment or
/// a default), by their argument ids.
fn given_flags(matches: &ArgMatches) -> Vec<String> {
    matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect()
}

/// Fills in what depends on the video being copied: the default renditions
/// (none for a copied clip) and variants (one), and refuses the encoding
/// flags given with a clip, which they could not change.
fn video_defaults(args: &mut BuildArgs, given: &[String]) -> anyhow::Result<()> {
    let copied = !args.rendition_files.is_empty() || args.video.is_clip();
    let given = |id: &str| given.iter().any(|g| g == id);
    if !copied {
        if args.renditions.is_empty() {
            args.renditions = Rendition::DEFAULTS.to_vec();
        }
        return Ok(());
    }
    for (id, flag) in [
        ("fps", "--fps"),
        ("keyframe_interval", "--keyframe-interval"),
        ("hold", "--hold"),
    ] {
        if given(id) {
            return Err(synth_encoder::Error::Invalid {
                what: "arguments",
                reason: format!(
                    "{flag} sets how video is encoded, but the video is copied from a clip, \
                     which keeps its own frames, rate and key frames: leave out {flag}"
                ),
            }
            .into());
        }
    }
    if !given("variants") {
        args.variants = 1;
    }
    Ok(())
}

fn run_build(mut args: BuildArgs, given: &[String]) -> anyhow::Result<()> {
    video_defaults(&mut args, given)?;
    let options = BuildOptions {
        audio: args.audio,
        video: args.video,
        renditions: args.renditions,
        rendition_files: args.rendition_files,
        fps: args.fps,
        duration: args.duration,
        keyframe_interval: args.keyframe_interval,
        audio_bitrate: args.audio_bitrate.saturating_mul(1000),
        hold: args.hold,
        voices: args.voices,
        variants: args.variants,
        screen: args.screen,
        screen_fps: args.screen_fps,
        output: args.output,
    };
    let mut progress = Progress::new();
    let summary = build::build(&options, &mut |event| progress.on(event))
        .with_context(|| format!("building {}", options.output.display()))?;
    progress.finish();
    let loop_duration = summary.plan.loop_duration();
    println!(
        "wrote {}: {:.2} MiB, {} loop, built in {:.1} s",
        summary.output.display(),
        summary.file_len as f64 / (1024.0 * 1024.0),
        humantime::format_duration(loop_duration),
        summary.elapsed.as_secs_f64()
    );
    for t in &summary.tracks {
        let measured = t.measured_bps(loop_duration);
        let error = (measured - t.target_bps as f64) / t.target_bps as f64 * 100.0;
        // Slides that hold still need few bits: a screen share undershoots, as in a browser.
        if error.abs() > 10.0 && t.role != Role::Screen {
            eprintln!(
                "warning: {} is {error:+.0}% off its target; very low bitrates for the size, \
                 short loops and short key-frame intervals make VP9 miss it",
                t.name
            );
        }
        let voice = match t.role {
            Role::Main if t.kind == TrackKind::Audio => {
                format!(
                    "  {:.0}% voice",
                    t.voice_frames as f64 * 100.0 / t.frames.max(1) as f64
                )
            }
            _ => String::new(),
        };
        println!(
            "  {:<20} {:>6} frames {:>4} key  {:>7.1} kb/s (target {:.1}, {:+.1}%){voice}",
            t.name,
            t.frames,
            t.keyframes,
            measured / 1000.0,
            t.target_bps as f64 / 1000.0,
            error
        );
    }
    Ok(())
}

fn run_inspect(args: InspectArgs) -> anyhow::Result<()> {
    let report = Report::open(&args.pack)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("serialising the report")?
        );
    } else {
        print!("{report}");
    }
    Ok(())
}

fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let summary = export::export(&args.pack, &args.track, &args.output)
        .with_context(|| format!("exporting {} from {}", args.track, args.pack.display()))?;
    println!(
        "wrote {}: {} frames of {} ({:?})",
        summary.output.display(),
        summary.frames,
        summary.track,
        summary.format
    );
    Ok(())
}

/// A progress bar on a terminal; otherwise a plain line every quarter.
struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    next_line: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            bar: None,
            total: 0,
            done: 0,
            next_line: 0,
        }
    }

    fn on(&mut self, event: Event) {
        match event {
            Event::Note(line) => match &self.bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            },
            Event::Started { total } => {
                self.total = total;
                self.next_line = total / 4;
                if std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(total);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames ({per_sec}, eta {eta})",
                        )
                        .expect("valid progress template"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.bar = Some(bar);
                } else {
                    eprintln!("encoding {total} frames");
                }
            }
            Event::Encoded(n) => {
                self.done += n;
                match &self.bar {
                    Some(bar) => bar.inc(n),
                    None if self.done >= self.next_line && self.done < self.total => {
                        eprintln!(
                            "encoded {}/{} frames ({}%)",
                            self.done,
                            self.total,
                            self.done * 100 / self.total.max(1)
                        );
                        self.next_line += self.total / 4;
                    }
                    None => {}
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        } else if self.total > 0 {
            eprintln!("encoded {0}/{0} frames", self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_drops_causes_already_printed() {
        // synth_encoder::Error::Read prints its io::Error and also returns it as
        // its source: the chain would repeat it.
        let err = anyhow::Error::new(synth_encoder::Error::Read {
            path: "a.wav".into(),
            source: std::io::Error::other("gone"),
        })
        .context("building x.pack");
        assert_eq!(one_line(&err), "building x.pack: reading a.wav: gone");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
