//! Audio sources, rendered as one loop of 48 kHz mono `f32` PCM.
//!
//! - a file: WAV ([`wav`]), MP3, FLAC, AAC/M4A or Ogg Vorbis (decoded by
//!   symphonia, [`decode`]), raw PCM in a format given on the command line
//!   (`pcm:s16le:48000:2:FILE`), or an Opus clip decoded with libopus
//!   (`encode:clip.webm`): down-mixed to mono and resampled to 48 kHz. A file
//!   shorter than the loop is padded with silence; a longer one is cut at the
//!   loop length with a 10 ms fade-out so the loop point does not click. An
//!   Opus clip (WebM or Ogg) given as it is is not rendered at all: its
//!   packets are copied into the pack ([`clip`], [`crate::clip`]);
//! - `tone`: a 440 Hz sine at -6 dBFS (a whole number of cycles fits every loop
//!   length, so it loops without a click);
//! - `speech`: real speech from `espeak-ng` when it is on `PATH` ([`espeak`]),
//!   else the procedural source, with a warning saying so;
//! - `procedural`: procedural talk spurts and pauses ([`speech`]).
//!
//! A generated source gives several voices ([`render_voices`]): other espeak-ng
//! speakers and sentences, other procedural speakers, or (for `tone`) other
//! frequencies, 110 Hz apart. A file gives one. [`vad`] then marks which
//! 20 ms frames of each voice are speech, and the PCM goes to [`crate::opus`]
//! in 20 ms frames.

pub mod decode;
pub mod espeak;
pub mod speech;
pub mod vad;
pub mod wav;

use std::f64::consts::TAU;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::clip::AudioClip;
use crate::container::Container;
use crate::plan::AUDIO_CLOCK;
use crate::Error;
pub use decode::RawPcm;

/// Frequency of the built-in `tone`.
pub const TONE_HZ: f64 = 440.0;
/// Amplitude of the built-in `tone` (-6 dBFS).
pub const TONE_AMPLITUDE: f64 = 0.5;
/// Fade-out applied where a longer WAV is cut.
const CUT_FADE_S: f64 = 0.010;
/// Voices a generated source gives unless told otherwise.
pub const DEFAULT_VOICES: u32 = 4;
/// The most voices a pack may have.
pub const MAX_VOICES: u32 = 16;
/// How far apart the `tone` source's voices are, Hz (a whole number of
/// cycles still fits every 100 ms).
pub const TONE_STEP_HZ: f64 = 110.0;

/// Where the audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    /// A file, taken by what it holds: a WebM or Ogg clip's Opus packets are
    /// copied; a WAV, MP3, FLAC, AAC/M4A or Ogg Vorbis file is decoded and
    /// encoded (Ogg Vorbis and WebM without Opus need [`AudioSource::Encode`]).
    File(PathBuf),
    /// `encode:FILE`: any file above decoded and encoded, an Opus clip too.
    Encode(PathBuf),
    /// `pcm:FORMAT:RATE:CHANNELS:FILE`: raw PCM, decoded and encoded.
    Pcm(RawPcm),
    /// A 440 Hz sine.
    Tone,
    /// Speech from espeak-ng, or procedural speech when it is not installed.
    Speech,
    /// Procedural speech.
    Procedural,
}

impl FromStr for AudioSource {
    type Err = Error;

    /// `tone`, `speech` and `procedural` name the built-ins, `encode:FILE`
    /// and `pcm:FORMAT:RATE:CHANNELS:FILE` say how to read a file; anything
    /// else is a file (write `./tone` for a file named `tone`).
    fn from_str(s: &str) -> Result<AudioSource, Error> {
        if let Some(raw) = s.strip_prefix("pcm:") {
            return raw.parse().map(AudioSource::Pcm);
        }
        match s {
            "tone" => Ok(AudioSource::Tone),
            "speech" => Ok(AudioSource::Speech),
            "procedural" => Ok(AudioSource::Procedural),
            "" | "encode:" => Err(Error::invalid(
                "audio source",
                "empty (expected a file, encode:FILE, pcm:FORMAT:RATE:CHANNELS:FILE, tone, speech or procedural)",
            )),
            _ => Ok(match s.strip_prefix("encode:") {
                Some(path) => AudioSource::Encode(PathBuf::from(path)),
                None => AudioSource::File(PathBuf::from(s)),
            }),
        }
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::File(p) => write!(f, "{}", p.display()),
            AudioSource::Encode(p) => write!(f, "encode:{}", p.display()),
            AudioSource::Pcm(raw) => write!(f, "{raw}"),
            AudioSource::Tone => f.write_str("tone"),
            AudioSource::Speech => f.write_str("speech"),
            AudioSource::Procedural => f.write_str("procedural"),
        }
    }
}

/// One loop of audio, ready for the encoder.
#[derive(Debug, Clone)]
pub struct Pcm {
    /// 48 kHz mono samples in `[-1, 1]`, exactly the loop length.
    pub samples: Vec<f32>,
    /// What was done to get them, for the user (e.g. "44100 Hz stereo, resampled").
    pub description: String,
}

/// The voices of a source, and what the user should know about them.
#[derive(Debug, Clone)]
pub struct Voices {
    /// One loop per voice, voice 0 first.
    pub pcm: Vec<Pcm>,
    /// Set when `speech` fell back to the procedural source (espeak-ng missing).
    pub warning: Option<String>,
}

/// The line printed when `speech` cannot find espeak-ng.
pub const NO_ESPEAK: &str = "espeak-ng is not on PATH: --audio speech uses the procedural \
    source instead (install espeak-ng: apt-get install espeak-ng, or bash scripts/install-deps.sh)";

impl AudioSource {
    /// The file the source reads, if it reads one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            AudioSource::File(p) | AudioSource::Encode(p) => Some(p),
            AudioSource::Pcm(raw) => Some(&raw.path),
            AudioSource::Tone | AudioSource::Speech | AudioSource::Procedural => None,
        }
    }
}

/// How many voices `source` gives: `voices` when given (1..=[`MAX_VOICES`];
/// a file gives only one), else 1 for a file and [`DEFAULT_VOICES`] for a
/// generated source.
pub fn voice_count(source: &AudioSource, voices: Option<u32>) -> Result<u32, Error> {
    match (source.path(), voices) {
        (_, Some(n)) if !(1..=MAX_VOICES).contains(&n) => Err(Error::invalid(
            "voices",
            format!("{n} (must be 1..={MAX_VOICES})"),
        )),
        (Some(path), Some(n)) if n > 1 => Err(Error::invalid(
            "voices",
            format!(
                "{n} with the file {}: an audio file gives exactly one voice (use --voices 1, \
                 or a generated source: speech, procedural or tone)",
                path.display()
            ),
        )),
        (_, Some(n)) => Ok(n),
        (Some(_), None) => Ok(1),
        (None, None) => Ok(DEFAULT_VOICES),
    }
}

/// The Opus clip whose packets go into the pack as they are, when `source`
/// is one: a WebM/Matroska or Ogg file given as it is (not `encode:`).
/// Such a file that holds no Opus is refused, with the `encode:` way to use it.
pub fn clip(source: &AudioSource) -> Result<Option<AudioClip>, Error> {
    let AudioSource::File(path) = source else {
        return Ok(None);
    };
    match Container::sniff(path)? {
        c @ (Container::Matroska { .. } | Container::Ogg) => {
            crate::clip::read_audio(path, c).map(Some)
        }
        _ => Ok(None),
    }
}

/// Renders `voices` voices of `source` (see [`voice_count`]), each exactly
/// `samples` samples of 48 kHz mono.
pub fn render_voices(
    source: &AudioSource,
    samples: usize,
    voices: Option<u32>,
) -> Result<Voices, Error> {
    let n = voice_count(source, voices)?;
    let espeak = *source == AudioSource::Speech && espeak::available();
    let warning = (*source == AudioSource::Speech && !espeak).then(|| NO_ESPEAK.to_string());
    let voice = |k: u32| match source {
        AudioSource::Speech if espeak => Ok(Pcm {
            samples: espeak::synthesize(samples, k)?,
            description: format!(
                "speech: espeak-ng {} (pitch {}, {} words/min), sentences and pauses",
                espeak::speaker(k).voice,
                espeak::speaker(k).pitch,
                espeak::speaker(k).speed
            ),
        }),
        AudioSource::Speech | AudioSource::Procedural => Ok(procedural(samples, k)),
        AudioSource::Tone => Ok(tone(samples, TONE_HZ + TONE_STEP_HZ * k as f64)),
        AudioSource::File(_) | AudioSource::Encode(_) | AudioSource::Pcm(_) => {
            file_loop(source, samples)
        }
    };
    // One thread a voice: espeak-ng and the procedural source take a few hundred ms each.
    let pcm = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n).map(|k| scope.spawn(move || voice(k))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a voice's rendering thread panicked"))
            .collect::<Result<Vec<Pcm>, Error>>()
    })?;
    Ok(Voices { pcm, warning })
}

/// Renders `source` as exactly `samples` samples of 48 kHz mono: its first
/// voice (`speech` without espeak-ng is the procedural source).
pub fn render(source: &AudioSource, samples: usize) -> Result<Pcm, Error> {
    let mut voices = render_voices(source, samples, Some(1))?;
    Ok(voices.pcm.remove(0))
}

fn tone(samples: usize, hz: f64) -> Pcm {
    Pcm {
        samples: (0..samples)
            .map(|i| (TONE_AMPLITUDE * (TAU * hz * i as f64 / AUDIO_CLOCK as f64).sin()) as f32)
            .collect(),
        description: format!("tone: {hz} Hz sine at -6 dBFS"),
    }
}

fn procedural(samples: usize, k: u32) -> Pcm {
    let speaker = speech::Speaker::voice(k);
    Pcm {
        samples: speech::synthesize_voice(samples, AUDIO_CLOCK, speaker),
        description: format!(
            "speech: procedural talk spurts and pauses (seed {:#x}, {} Hz, pace {})",
            speaker.seed, speaker.base_f0, speaker.pace
        ),
    }
}

/// Reads at most `max_seconds` of the file `source` names as mono at its own
/// rate: a WAV with hound, raw PCM as described, an Opus clip with libopus,
/// anything else with symphonia.
fn read_file(source: &AudioSource, max_seconds: f64) -> Result<decode::Decoded, Error> {
    let path = match source {
        AudioSource::Pcm(raw) => return decode::read_raw(raw, max_seconds),
        AudioSource::File(path) | AudioSource::Encode(path) => path,
        other => {
            return Err(Error::invalid(
                "audio source",
                format!("{other} is not a file"),
            ))
        }
    };
    match Container::sniff(path)? {
        Container::Wav => {
            let (mono, info) = wav::read_mono(path, max_seconds)?;
            Ok(decode::Decoded {
                mono,
                rate: info.sample_rate,
                channels: info.channels,
                format: format!(
                    "{}-bit {}",
                    info.bits,
                    if info.float { "float" } else { "int" }
                ),
                seconds: info.seconds(),
            })
        }
        c @ (Container::Matroska { .. } | Container::Ogg) => {
            // Opus is libopus's; other codecs in these containers are symphonia's.
            // A clip that is not Opus (or is damaged) goes to symphonia; if that
            // fails too, the clip reader's error says more.
            match crate::clip::read_audio(path, c) {
                Ok(clip) => decode::read_opus_clip(&clip, max_seconds),
                Err(e) => decode::read_file(path, max_seconds).map_err(|_| e),
            }
        }
        _ => decode::read_file(path, max_seconds),
    }
}

/// One loop of the file `source` names: resampled, cut or padded to `samples`.
fn file_loop(source: &AudioSource, samples: usize) -> Result<Pcm, Error> {
    let loop_s = samples as f64 / AUDIO_CLOCK as f64;
    // Read 100 ms more than needed so the resampler's filter has context at the cut.
    let info = read_file(source, loop_s + 0.1)?;
    let mut pcm = wav::resample(&info.mono, info.rate, AUDIO_CLOCK)?;
    let mut description = format!(
        "{}: {}, {} Hz, {} ch, {:.2} s",
        source
            .path()
            .map_or_else(String::new, |p| p.display().to_string()),
        info.format,
        info.rate,
        info.channels,
        info.seconds,
    );
    if info.channels > 1 {
        description.push_str(", down-mixed to mono");
    }
    if info.rate != AUDIO_CLOCK {
        description.push_str(", resampled to 48 kHz");
    }
    if pcm.len() > samples {
        pcm.truncate(samples);
        fade_out(&mut pcm, (CUT_FADE_S * AUDIO_CLOCK as f64) as usize);
        description.push_str(&format!(", cut to the {loop_s:.2} s loop"));
    } else if pcm.len() < samples {
        let pad = samples - pcm.len();
        pcm.resize(samples, 0.0);
        description.push_str(&format!(
            ", padded with {:.2} s of silence to the {loop_s:.2} s loop",
            pad as f64 / AUDIO_CLOCK as f64
        ));
    }
    Ok(Pcm {
        samples: pcm,
        description,
    })
}

pub(crate) fn fade_out(pcm: &mut [f32], len: usize) {
    let len = len.min(pcm.len());
    let start = pcm.len() - len;
    for (i, v) in pcm[start..].iter_mut().enumerate() {
        *v *= 1.0 - (i + 1) as f32 / len as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!("tone".parse::<AudioSource>().unwrap(), AudioSource::Tone);
        assert_eq!(
            "speech".parse::<AudioSource>().unwrap(),
            AudioSource::Speech
        );
        assert_eq!(
            "a/b.wav".parse::<AudioSource>().unwrap(),
            AudioSource::File("a/b.wav".into())
        );
        assert_eq!(
            "encode:a.webm".parse::<AudioSource>().unwrap(),
            AudioSource::Encode("a.webm".into())
        );
        let raw = "pcm:s16le:48000:2:v.raw".parse::<AudioSource>().unwrap();
        assert_eq!(raw.to_string(), "pcm:s16le:48000:2:v.raw");
        assert_eq!(raw.path(), Some(Path::new("v.raw")));
        assert!("".parse::<AudioSource>().is_err());
        assert!("encode:".parse::<AudioSource>().is_err());
        assert!("pcm:s16le".parse::<AudioSource>().is_err());
    }

    #[test]
    fn tone_loops_without_a_jump() {
        // 100 ms holds exactly 44 cycles of 440 Hz, so sample n == sample 0 wraps cleanly.
        let pcm = render(&AudioSource::Tone, 4800).unwrap().samples;
        assert_eq!(pcm.len(), 4800);
        let next = (TONE_AMPLITUDE * (TAU * TONE_HZ * 4800.0 / 48_000.0).sin()) as f32;
        assert!((next - pcm[0]).abs() < 1e-4);
    }

    #[test]
    fn fade_out_ends_at_zero() {
        let mut x = vec![1.0f32; 100];
        fade_out(&mut x, 10);
        assert_eq!(x[89], 1.0);
        assert_eq!(x[99], 0.0);
        assert!(x[95] > 0.0 && x[95] < 1.0);
    }
}
