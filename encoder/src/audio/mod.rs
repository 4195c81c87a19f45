//! Audio sources, rendered as one loop of 48 kHz mono `f32` PCM.
//!
//! - a WAV file ([`wav`]): down-mixed to mono and resampled to 48 kHz. A file
//!   shorter than the loop is padded with silence; a longer one is cut at the
//!   loop length with a 10 ms fade-out so the loop point does not click;
//! - `tone`: a 440 Hz sine at -6 dBFS (a whole number of cycles fits every loop
//!   length, so it loops without a click);
//! - `speech`: procedural talk spurts and pauses ([`speech`]).
//!
//! The PCM then goes to [`crate::opus`] in 20 ms frames.

pub mod speech;
pub mod wav;

use std::f64::consts::TAU;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::plan::AUDIO_CLOCK;
use crate::Error;

/// Frequency of the built-in `tone`.
pub const TONE_HZ: f64 = 440.0;
/// Amplitude of the built-in `tone` (-6 dBFS).
pub const TONE_AMPLITUDE: f64 = 0.5;
/// Fade-out applied where a longer WAV is cut.
const CUT_FADE_S: f64 = 0.010;

/// Where the audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSource {
    /// A PCM WAV file.
    Wav(PathBuf),
    /// A 440 Hz sine.
    Tone,
    /// Procedural speech.
    Speech,
}

impl FromStr for AudioSource {
    type Err = Error;

    /// `tone` and `speech` name the built-ins; anything else is a WAV path
    /// (write `./tone` for a file named `tone`).
    fn from_str(s: &str) -> Result<AudioSource, Error> {
        match s {
            "tone" => Ok(AudioSource::Tone),
            "speech" => Ok(AudioSource::Speech),
            "" => Err(Error::invalid(
                "audio source",
                "empty (expected a WAV path, tone or speech)",
            )),
            path => Ok(AudioSource::Wav(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for AudioSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AudioSource::Wav(p) => write!(f, "{}", p.display()),
            AudioSource::Tone => f.write_str("tone"),
            AudioSource::Speech => f.write_str("speech"),
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

/// Renders `source` as exactly `samples` samples of 48 kHz mono.
pub fn render(source: &AudioSource, samples: usize) -> Result<Pcm, Error> {
    match source {
        AudioSource::Tone => Ok(Pcm {
            samples: (0..samples)
                .map(|i| {
                    (TONE_AMPLITUDE * (TAU * TONE_HZ * i as f64 / AUDIO_CLOCK as f64).sin()) as f32
                })
                .collect(),
            description: format!("tone: {TONE_HZ} Hz sine at -6 dBFS"),
        }),
        AudioSource::Speech => Ok(Pcm {
            samples: speech::synthesize(samples, AUDIO_CLOCK, speech::DEFAULT_SEED),
            description: format!(
                "speech: procedural talk spurts and pauses (seed {:#x})",
                speech::DEFAULT_SEED
            ),
        }),
        AudioSource::Wav(path) => {
            let loop_s = samples as f64 / AUDIO_CLOCK as f64;
            // Read 100 ms more than needed so the resampler's filter has context at the cut.
            let (mono, info) = wav::read_mono(path, loop_s + 0.1)?;
            let mut pcm = wav::resample(&mono, info.sample_rate, AUDIO_CLOCK)?;
            let mut description = format!(
                "{}: {} Hz, {} ch, {}-bit {}, {:.2} s",
                path.display(),
                info.sample_rate,
                info.channels,
                info.bits,
                if info.float { "float" } else { "int" },
                info.seconds(),
            );
            if info.channels > 1 {
                description.push_str(", down-mixed to mono");
            }
            if info.sample_rate != AUDIO_CLOCK {
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
    }
}

fn fade_out(pcm: &mut [f32], len: usize) {
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
            AudioSource::Wav("a/b.wav".into())
        );
        assert!("".parse::<AudioSource>().is_err());
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
