//! Real speech from Debian's `espeak-ng`, run as a subprocess at build time.
//!
//! Each voice is an espeak-ng voice and variant with its own pitch and speed
//! ([`speaker`]) reading its own sentences ([`sentence`]). Every sentence is
//! synthesized on its own (`espeak-ng -v VOICE -p PITCH -s SPEED -w out.wav
//! TEXT`, a 22050 Hz WAV), resampled to 48 kHz with the WAV input's resampler
//! ([`super::wav::resample`]), normalised to the loop's peak and laid out with
//! a pause of 0.4–1.4 s after it, so voice-activity detection finds talk spurts
//! and pauses as in a meeting. The loop starts with [`LEAD_S`] of pause and is
//! filled with whole sentences; the rest is pause. A light noise floor (the
//! procedural source's) runs under everything, as a microphone in a quiet
//! room gives. Each voice's sentences are synthesized at most once, however
//! long the loop, and the output depends only on espeak-ng's version.

use std::collections::hash_map::{Entry, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::noise::Rng;
use crate::plan::AUDIO_CLOCK;
use crate::Error;

/// The program run.
pub const PROGRAM: &str = "espeak-ng";
/// Pause at the start of the loop, seconds.
pub const LEAD_S: f64 = 0.3;
/// Shortest and longest pause after a sentence, seconds.
pub const PAUSE_S: (f64, f64) = (0.4, 1.4);
/// Peak level the speech is normalised to (-4.4 dBFS, as the procedural source).
const PEAK: f32 = 0.6;
/// Noise floor amplitude (about -66 dBFS RMS, as the procedural source).
const FLOOR: f32 = 0.0009 * 1.7;

/// What a meeting's participants say: one sentence each, plain words.
const SENTENCES: [&str; 48] = [
    "Good morning everyone, can you all hear me?",
    "Let's start with a quick round of updates.",
    "The build finished last night without any errors.",
    "I think we should move the release to next week.",
    "Could you share your screen for a moment?",
    "The numbers for March look better than expected.",
    "We still need a decision on the new office.",
    "I'll send the notes right after this call.",
    "Sorry, I was on mute. Let me say that again.",
    "The customer asked for a demo on Thursday.",
    "Most of the tests pass, but two are still flaky.",
    "Can we take this offline and talk tomorrow?",
    "The design review is booked for Friday afternoon.",
    "I agree, that sounds like the simplest option.",
    "We lost about an hour to the network outage.",
    "Does anyone have questions before we move on?",
    "The new dashboard shows latency per region.",
    "I spoke to the vendor and they can deliver in May.",
    "Let me check and get back to you on that.",
    "The budget for next quarter is almost final.",
    "We hired two engineers for the platform team.",
    "Please update the tickets before the end of the day.",
    "The video was frozen for a second, can you repeat?",
    "I think the second proposal is a bit too risky.",
    "Our users mostly join from their phones.",
    "The migration is halfway done and on schedule.",
    "Let's keep this meeting to thirty minutes.",
    "I have a hard stop at eleven, just so you know.",
    "The report is in the shared folder.",
    "We should write down what we decided today.",
    "The load test showed a problem above a thousand users.",
    "Thanks, that was really helpful.",
    "Can you say a bit more about the timeline?",
    "The weather here is terrible this week.",
    "I will be out of office on Monday and Tuesday.",
    "The fix is small, we can ship it today.",
    "Let's go back to the first item on the agenda.",
    "Who is taking the action item for the docs?",
    "We have three options, and none of them is perfect.",
    "The server logs look clean since the last deploy.",
    "I missed the beginning, what did I miss?",
    "The training session is recorded for later.",
    "Could everyone turn on their camera please?",
    "We are waiting for legal to approve the contract.",
    "It works on my machine, but not in staging.",
    "Next time, let's send the slides before the call.",
    "I like the idea, but we need more data first.",
    "Alright, I think that's everything. Thanks all.",
];

/// An espeak-ng voice (with its variant), pitch (0–99) and speed (words a minute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    /// `-v`: language voice and variant, e.g. `en-gb+f3`.
    pub voice: &'static str,
    /// `-p`: pitch, 0 to 99.
    pub pitch: u32,
    /// `-s`: speed, words a minute.
    pub speed: u32,
}

/// The speakers voices cycle through; a second lap raises the pitch.
const SPEAKERS: [Speaker; 8] = [
    Speaker {
        voice: "en-us+m3",
        pitch: 45,
        speed: 160,
    },
    Speaker {
        voice: "en-gb+f3",
        pitch: 60,
        speed: 165,
    },
    Speaker {
        voice: "en-gb-scotland+m1",
        pitch: 40,
        speed: 150,
    },
    Speaker {
        voice: "en-us+f4",
        pitch: 55,
        speed: 170,
    },
    Speaker {
        voice: "en-gb-x-rp+m4",
        pitch: 50,
        speed: 155,
    },
    Speaker {
        voice: "en-029+f2",
        pitch: 65,
        speed: 160,
    },
    Speaker {
        voice: "en-us-nyc+m2",
        pitch: 35,
        speed: 175,
    },
    Speaker {
        voice: "en-gb-x-gbclan+f1",
        pitch: 58,
        speed: 150,
    },
];

/// The speaker of voice `k`.
pub fn speaker(k: u32) -> Speaker {
    let base = SPEAKERS[k as usize % SPEAKERS.len()];
    let lap = (k as usize / SPEAKERS.len()) as u32;
    Speaker {
        pitch: (base.pitch + 9 * lap).min(99),
        ..base
    }
}

/// The `j`th sentence voice `k` says: voices start 16 sentences apart, so up
/// to 16 voices say different sentences for their first three.
pub fn sentence(k: u32, j: usize) -> usize {
    (k as usize + 16 * j + j / 3) % SENTENCES.len()
}

/// Whether `espeak-ng` is an executable file on `PATH`.
pub fn available() -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join(PROGRAM)))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One loop of `samples` samples at 48 kHz of voice `k` talking.
pub fn synthesize(samples: usize, k: u32) -> Result<Vec<f32>, Error> {
    let dir = Scratch::new()?;
    let speaker = speaker(k);
    let at = |secs: f64| (secs * AUDIO_CLOCK as f64) as usize;
    let mut rng = Rng::new(0x5eec_e5ea_c000 ^ k as u64);
    let mut said: HashMap<usize, Vec<f32>> = HashMap::new();
    let mut out = vec![0.0f32; samples];
    let mut t = at(LEAD_S).min(samples);
    for j in 0.. {
        let index = sentence(k, j);
        if let Entry::Vacant(slot) = said.entry(index) {
            slot.insert(say(&dir.0, speaker, SENTENCES[index])?);
        }
        let pcm = &said[&index];
        let room = samples - t;
        if pcm.len() > room {
            // A loop too short for even one sentence gets a cut one, faded out.
            if j == 0 {
                out[t..].copy_from_slice(&pcm[..room]);
                super::fade_out(&mut out[t..], at(0.01));
            }
            break;
        }
        out[t..t + pcm.len()].copy_from_slice(pcm);
        t += pcm.len() + at(rng.range(PAUSE_S.0, PAUSE_S.1));
        if t >= samples {
            break;
        }
    }
    let peak = out.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if peak > 0.0 { PEAK / peak } else { 0.0 };
    for v in &mut out {
        *v = *v * scale + FLOOR * rng.bipolar();
    }
    Ok(out)
}

/// Runs espeak-ng for one sentence and returns it at 48 kHz mono.
fn say(dir: &Path, speaker: Speaker, text: &str) -> Result<Vec<f32>, Error> {
    let wav = dir.join("sentence.wav");
    let output = Command::new(PROGRAM)
        .args(["-v", speaker.voice, "-p"])
        .arg(speaker.pitch.to_string())
        .arg("-s")
        .arg(speaker.speed.to_string())
        .arg("-w")
        .arg(&wav)
        .arg(text)
        .output()
        .map_err(|e| espeak_error(speaker, format!("could not run it: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("").trim();
        return Err(espeak_error(
            speaker,
            format!("exited with {}: {first}", output.status),
        ));
    }
    let (mono, info) = super::wav::read_mono(&wav, 60.0)?;
    if mono.is_empty() {
        return Err(espeak_error(speaker, "wrote no audio".into()));
    }
    super::wav::resample(&mono, info.sample_rate, AUDIO_CLOCK)
}

fn espeak_error(speaker: Speaker, reason: String) -> Error {
    Error::Espeak {
        voice: speaker.voice,
        reason,
    }
}

/// A private temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "synth-espeak-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_differ_and_sentences_do_too() {
        assert_ne!(speaker(0), speaker(1));
        assert_eq!(speaker(8).voice, speaker(0).voice);
        assert!(
            speaker(8).pitch > speaker(0).pitch,
            "a second lap is higher"
        );
        // The first three sentences of 16 voices are 48 different ones.
        let mut seen: Vec<usize> = (0..16)
            .flat_map(|k| (0..3).map(move |j| sentence(k, j)))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 48);
    }
}
