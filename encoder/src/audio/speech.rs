//! Procedural speech: talk spurts of voiced syllables alternating with pauses.
//!
//! It is not intelligible, but it has what a receiver's voice-activity detector,
//! jitter buffer and Opus's speech mode react to: a glottal pulse train with a
//! falling pitch contour (declination) across each spurt, shaped by three
//! formant resonators that glide between vowels, fricative and plosive noise at
//! some syllable onsets, a syllable-rate amplitude envelope (about 5 per second),
//! and pauses of 0.35–1.6 s holding only a -66 dBFS noise floor, like a quiet
//! room through a microphone.
//!
//! The output is fully determined by the seed and the length. It starts and
//! ends in a pause, so the loop point is silent and clean.
//!
//! Several voices ([`synthesize_voice`]) differ in seed, base pitch (from a
//! low male to a high female voice) and pace (syllable and pause lengths);
//! voice 0 is [`synthesize`] with [`DEFAULT_SEED`].

use std::f64::consts::PI;

use crate::noise::Rng;

/// Seed of the built-in `speech` source.
pub const DEFAULT_SEED: u64 = 0x5eec_4a11_d00d_2024;

/// Peak level the voiced parts are normalised to (-4.4 dBFS).
const PEAK: f32 = 0.6;
/// Noise floor amplitude everywhere (about -66 dBFS RMS).
const FLOOR: f32 = 0.0009;
/// Silence kept at both ends of the loop.
const EDGE_PAUSE_S: f64 = 0.3;

/// Formants (F1, F2, F3 in Hz) of five vowels, adult male averages.
const VOWELS: [[f64; 3]; 5] = [
    [730.0, 1090.0, 2440.0], // a
    [530.0, 1840.0, 2480.0], // e
    [270.0, 2290.0, 3010.0], // i
    [570.0, 840.0, 2410.0],  // o
    [300.0, 870.0, 2240.0],  // u
];
const BANDWIDTHS: [f64; 3] = [80.0, 100.0, 140.0];

/// A syllable to render: where it starts, how long it lasts, what it sounds like.
struct Syllable {
    start: usize,
    len: usize,
    vowel: usize,
    /// Level relative to the loudest syllable.
    gain: f64,
    /// Pitch at the start and the end of the syllable, Hz.
    f0: (f64, f64),
    /// Onset noise: (length in samples, centre frequency Hz, level), if any.
    onset: Option<(usize, f64, f64)>,
}

/// Base pitches (Hz) voices cycle through: voice 0 is the original 118 Hz.
const BASE_F0: [f64; 8] = [118.0, 205.0, 132.0, 182.0, 104.0, 224.0, 148.0, 196.0];
/// Paces (a factor on syllable and pause lengths) voices cycle through.
const PACE: [f64; 5] = [1.0, 0.88, 1.12, 0.94, 1.06];

/// A speaker of the procedural source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speaker {
    /// Seed of the syllables, pauses and noise.
    pub seed: u64,
    /// Pitch the spurts' contour is built around, Hz.
    pub base_f0: f64,
    /// Factor on syllable and pause lengths (above 1 is slower).
    pub pace: f64,
}

impl Speaker {
    /// Voice `k`: its own seed, base pitch and pace; voice 0 is the default
    /// speaker of [`synthesize`].
    pub fn voice(k: u32) -> Speaker {
        let k = k as usize;
        Speaker {
            seed: DEFAULT_SEED.wrapping_add((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            base_f0: BASE_F0[k % BASE_F0.len()],
            pace: PACE[k % PACE.len()],
        }
    }
}

/// Synthesises `samples` samples of speech at `rate` Hz from `seed`.
pub fn synthesize(samples: usize, rate: u32, seed: u64) -> Vec<f32> {
    let speaker = Speaker {
        seed,
        ..Speaker::voice(0)
    };
    synthesize_voice(samples, rate, speaker)
}

/// Synthesises `samples` samples of `speaker` talking at `rate` Hz.
pub fn synthesize_voice(samples: usize, rate: u32, speaker: Speaker) -> Vec<f32> {
    let fs = rate as f64;
    let mut rng = Rng::new(speaker.seed);
    let syllables = schedule(samples, fs, speaker, &mut rng);

    let mut out = vec![0.0f32; samples];
    let mut voice = Voice::new(fs);
    let mut prev_vowel = 0;
    for s in &syllables {
        voice.render(s, prev_vowel, &mut rng, &mut out[s.start..s.start + s.len]);
        prev_vowel = s.vowel;
    }

    let peak = out.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if peak > 0.0 { PEAK / peak } else { 0.0 };
    for v in &mut out {
        *v = *v * scale + FLOOR * rng.bipolar() * 1.7;
    }
    out
}

/// Lays out talk spurts and pauses over the whole loop.
fn schedule(samples: usize, fs: f64, speaker: Speaker, rng: &mut Rng) -> Vec<Syllable> {
    let at = |secs: f64| (secs * fs) as usize;
    let paced = |secs: f64| (secs * speaker.pace * fs) as usize;
    let end = samples.saturating_sub(at(EDGE_PAUSE_S));
    let base_f0 = speaker.base_f0;
    let mut syllables = Vec::new();
    let mut t = at(EDGE_PAUSE_S);
    while t < end {
        // One talk spurt: 2–9 syllables with a pitch that falls across it.
        let count = 2 + (rng.unit() * 8.0) as usize;
        let loudness = rng.range(0.7, 1.0);
        let f0_start = base_f0 * rng.range(1.1, 1.25);
        let f0_end = base_f0 * rng.range(0.8, 0.92);
        for k in 0..count {
            let len = paced(rng.range(0.12, 0.28));
            if t + len > end {
                break;
            }
            let pos = |k: usize| k as f64 / count as f64;
            let accent = if rng.unit() < 0.25 { 1.12 } else { 1.0 };
            let f0 = |p: f64| (f0_start + (f0_end - f0_start) * p) * accent;
            let onset = match rng.unit() {
                u if u < 0.3 => Some((at(rng.range(0.04, 0.09)), rng.range(2500.0, 6000.0), 0.35)),
                u if u < 0.45 => {
                    Some((at(rng.range(0.008, 0.015)), rng.range(1000.0, 3000.0), 0.9))
                }
                _ => None,
            };
            syllables.push(Syllable {
                start: t,
                len,
                vowel: (rng.unit() * VOWELS.len() as f64) as usize,
                gain: loudness * rng.range(0.6, 1.0),
                f0: (f0(pos(k)), f0(pos(k + 1))),
                onset,
            });
            // Short gaps inside a spurt, as between words.
            t += len
                + if rng.unit() < 0.3 {
                    at(rng.range(0.02, 0.08))
                } else {
                    0
                };
        }
        // The pause after the spurt.
        t += paced(rng.range(0.35, 1.6));
    }
    syllables
}

/// The glottal source and the vocal-tract filters, kept across syllables.
struct Voice {
    fs: f64,
    phase: f64,
    last_pulse: f64,
    formants: [Resonator; 3],
    fricative: Resonator,
}

impl Voice {
    fn new(fs: f64) -> Voice {
        Voice {
            fs,
            phase: 0.0,
            last_pulse: 0.0,
            formants: [
                Resonator::default(),
                Resonator::default(),
                Resonator::default(),
            ],
            fricative: Resonator::default(),
        }
    }

    fn render(&mut self, s: &Syllable, prev_vowel: usize, rng: &mut Rng, out: &mut [f32]) {
        let n = out.len();
        let attack = (0.025 * self.fs) as usize;
        let release = (0.05 * self.fs) as usize;
        let glide = (0.04 * self.fs) as usize;
        let onset_len = s.onset.map_or(0, |(len, _, _)| len.min(n / 2));
        if let Some((_, centre, _)) = s.onset {
            self.fricative.tune(centre, 1500.0, self.fs);
        }
        for (i, o) in out.iter_mut().enumerate() {
            // Retune the formants every 16 samples while gliding from the previous vowel.
            if i % 16 == 0 && i <= glide {
                let g = i as f64 / glide as f64;
                for (k, r) in self.formants.iter_mut().enumerate() {
                    let f =
                        VOWELS[prev_vowel][k] + (VOWELS[s.vowel][k] - VOWELS[prev_vowel][k]) * g;
                    r.tune(f, BANDWIDTHS[k], self.fs);
                }
            }
            let p = i as f64 / n as f64;
            // Pitch with a little jitter, like a real larynx.
            let f0 = (s.f0.0 + (s.f0.1 - s.f0.0) * p) * (1.0 + 0.01 * rng.range(-1.0, 1.0));
            self.phase += f0 / self.fs;
            if self.phase >= 1.0 {
                self.phase -= 1.0;
            }
            // Rosenberg glottal pulse; its derivative models lip radiation.
            let pulse = rosenberg(self.phase);
            let excitation = pulse - self.last_pulse;
            self.last_pulse = pulse;
            let mut v = excitation;
            for r in &mut self.formants {
                v = r.step(v);
            }
            let voiced_env = raised(i.saturating_sub(onset_len), attack) * raised(n - i, release);
            let mut sample = v * voiced_env;
            if let Some((_, _, level)) = s.onset {
                if i < onset_len {
                    let env = raised(i, onset_len / 4) * raised(onset_len - i, onset_len / 2);
                    sample += self.fricative.step(rng.range(-1.0, 1.0)) * level * 0.05 * env;
                }
            }
            *o = (sample * s.gain) as f32;
        }
    }
}

/// Rosenberg's glottal flow over one period (phase in `[0, 1)`): rise, fall, closed.
fn rosenberg(phase: f64) -> f64 {
    const OPEN: f64 = 0.4;
    const CLOSE: f64 = 0.16;
    if phase < OPEN {
        0.5 * (1.0 - (PI * phase / OPEN).cos())
    } else if phase < OPEN + CLOSE {
        (PI / 2.0 * (phase - OPEN) / CLOSE).cos()
    } else {
        0.0
    }
}

/// A raised-cosine ramp from 0 to 1 over `len` samples, evaluated at `i`.
fn raised(i: usize, len: usize) -> f64 {
    if len == 0 || i >= len {
        1.0
    } else {
        0.5 * (1.0 - (PI * i as f64 / len as f64).cos())
    }
}

/// Klatt's two-pole resonator: unity gain at DC, a peak at the formant.
#[derive(Default)]
struct Resonator {
    a: f64,
    b: f64,
    c: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn tune(&mut self, freq: f64, bandwidth: f64, fs: f64) {
        let r = (-PI * bandwidth / fs).exp();
        self.c = -r * r;
        self.b = 2.0 * r * (2.0 * PI * freq / fs).cos();
        self.a = 1.0 - self.b - self.c;
    }

    fn step(&mut self, x: f64) -> f64 {
        let y = self.a * x + self.b * self.y1 + self.c * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_rms(x: &[f32]) -> Vec<f32> {
        x.chunks(960)
            .map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt())
            .collect()
    }

    #[test]
    fn is_deterministic() {
        assert_eq!(
            synthesize(48_000, 48_000, DEFAULT_SEED),
            synthesize(48_000, 48_000, DEFAULT_SEED)
        );
        assert_ne!(synthesize(48_000, 48_000, 1), synthesize(48_000, 48_000, 2));
    }

    #[test]
    fn alternates_talk_spurts_and_pauses() {
        let x = synthesize(10 * 48_000, 48_000, DEFAULT_SEED);
        let rms = frame_rms(&x);
        let loud = rms.iter().filter(|&&r| r > 0.03).count();
        let quiet = rms.iter().filter(|&&r| r < 0.002).count();
        // Conversational speech is active roughly 40–70 % of the time.
        assert!(
            loud > rms.len() * 3 / 10,
            "{loud} loud frames of {}",
            rms.len()
        );
        assert!(
            quiet > rms.len() / 5,
            "{quiet} quiet frames of {}",
            rms.len()
        );
        // Both ends are pauses, so the loop point is silent.
        assert!(rms[..10]
            .iter()
            .chain(&rms[rms.len() - 10..])
            .all(|&r| r < 0.002));
        let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak <= PEAK + 0.01 && peak > 0.5, "peak {peak}");
    }

    #[test]
    fn voices_differ_in_pitch_and_content() {
        assert_eq!(Speaker::voice(0).seed, DEFAULT_SEED);
        let a = synthesize_voice(48_000, 48_000, Speaker::voice(1));
        assert_ne!(a, synthesize_voice(48_000, 48_000, Speaker::voice(2)));
        assert_eq!(a, synthesize_voice(48_000, 48_000, Speaker::voice(1)));
        assert_ne!(Speaker::voice(1).base_f0, Speaker::voice(2).base_f0);
    }

    #[test]
    fn voiced_frames_carry_a_speech_pitch() {
        let x = synthesize(4 * 48_000, 48_000, DEFAULT_SEED);
        let rms = frame_rms(&x);
        let loudest = rms
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap();
        // Autocorrelation pitch of the loudest 40 ms.
        let start = loudest.saturating_sub(1) * 960;
        let w = &x[start..start + 1920];
        let corr = |lag: usize| -> f32 {
            w[..1920 - lag]
                .iter()
                .zip(&w[lag..])
                .map(|(a, b)| a * b)
                .sum()
        };
        let best = (48_000 / 300..48_000 / 70)
            .max_by(|&a, &b| corr(a).total_cmp(&corr(b)))
            .unwrap();
        let f0 = 48_000.0 / best as f32;
        assert!((80.0..180.0).contains(&f0), "pitch {f0} Hz");
    }
}
