//! Voice-activity detection: which 20 ms frames of a loop are speech.
//!
//! The rule, applied to one loop of 48 kHz mono PCM before it is encoded:
//!
//! 1. each 20 ms frame's level is its RMS in dBFS (silence counts as
//!    [`SILENCE_DB`]);
//! 2. the noise floor is the [`FLOOR_PERCENTILE`]th percentile of those levels:
//!    the loop is analysed whole, and speech pauses at least that often;
//! 3. a frame is *loud* when its level exceeds the floor by [`MARGIN_DB`],
//!    with that threshold kept within [`THRESHOLD_DB`] (a dead-silent floor
//!    does not make every breath speech, and a steady sound well above
//!    -30 dBFS, like the `tone` source, counts as voice however loud its
//!    floor);
//! 4. a loud frame and the [`HANGOVER_FRAMES`] frames after it are voice, so
//!    the quiet tail of a word and the short gaps between words stay in the
//!    talk spurt. The loop repeats, so the hangover of its last frames
//!    carries over to its first ones.
//!
//! A *talk spurt* is a run of voice frames; the loop is circular, so a spurt
//! across the loop point counts once ([`talk_spurts`]).

use crate::opus::FRAME_SAMPLES;

/// Level given to a frame of digital silence, dBFS.
pub const SILENCE_DB: f64 = -100.0;
/// Which percentile of the frame levels is taken as the noise floor.
pub const FLOOR_PERCENTILE: usize = 10;
/// How far above the noise floor a frame must be to count as speech, dB.
pub const MARGIN_DB: f64 = 12.0;
/// The range the threshold is kept in, dBFS.
pub const THRESHOLD_DB: (f64, f64) = (-60.0, -30.0);
/// Frames after a loud one that still count as voice (160 ms).
pub const HANGOVER_FRAMES: usize = 8;

/// The RMS level of each whole 20 ms frame of `pcm`, dBFS.
pub fn frame_levels(pcm: &[f32]) -> Vec<f64> {
    pcm.chunks_exact(FRAME_SAMPLES)
        .map(|frame| {
            let power =
                frame.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / frame.len() as f64;
            if power > 0.0 {
                (10.0 * power.log10()).max(SILENCE_DB)
            } else {
                SILENCE_DB
            }
        })
        .collect()
}

/// The noise floor of a loop: the [`FLOOR_PERCENTILE`]th percentile of its
/// frame levels ([`SILENCE_DB`] for an empty loop).
pub fn noise_floor(levels: &[f64]) -> f64 {
    let mut sorted = levels.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
        .get(sorted.len() * FLOOR_PERCENTILE / 100)
        .copied()
        .unwrap_or(SILENCE_DB)
}

/// The level a frame must exceed to be speech, given the noise floor.
pub fn threshold(floor: f64) -> f64 {
    (floor + MARGIN_DB).clamp(THRESHOLD_DB.0, THRESHOLD_DB.1)
}

/// Voice activity of each whole 20 ms frame of one loop of `pcm` (see the
/// module's rule).
pub fn detect(pcm: &[f32]) -> Vec<bool> {
    let levels = frame_levels(pcm);
    let limit = threshold(noise_floor(&levels));
    let loud: Vec<bool> = levels.iter().map(|&l| l > limit).collect();
    hangover(&loud, HANGOVER_FRAMES)
}

/// `loud` with each loud frame's next `frames` frames set too, wrapping
/// around the end of the loop.
pub fn hangover(loud: &[bool], frames: usize) -> Vec<bool> {
    let n = loud.len();
    let mut voice = loud.to_vec();
    for (i, _) in loud.iter().enumerate().filter(|(_, &l)| l) {
        for k in 1..=frames.min(n) {
            voice[(i + k) % n] = true;
        }
    }
    voice
}

/// The number of talk spurts (runs of voice frames) in a circular loop: a run
/// across the loop point counts once, a loop of only voice is one spurt.
pub fn talk_spurts(voice: &[bool]) -> usize {
    let n = voice.len();
    let starts = (0..n)
        .filter(|&i| voice[i] && !voice[(i + n - 1) % n])
        .count();
    if starts == 0 && voice.iter().any(|&v| v) {
        1
    } else {
        starts
    }
}

/// The share of voice frames, in `[0, 1]` (0 for no frames).
pub fn voice_share(voice: &[bool]) -> f64 {
    if voice.is_empty() {
        return 0.0;
    }
    voice.iter().filter(|&&v| v).count() as f64 / voice.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms frames of a 200 Hz sine at `amplitude`, with a -66 dBFS floor.
    fn frames(amplitudes: &[f32]) -> Vec<f32> {
        let mut rng = crate::noise::Rng::new(3);
        amplitudes
            .iter()
            .flat_map(|&a| (0..FRAME_SAMPLES).map(move |i| (a, i)))
            .map(|(a, i)| {
                a * (std::f32::consts::TAU * 200.0 * i as f32 / 48_000.0).sin()
                    + 0.0009 * rng.bipolar()
            })
            .collect()
    }

    #[test]
    fn talk_and_pauses_give_spurts_with_a_hangover() {
        // 10 frames of talk, 20 of pause, 5 of talk, 25 of pause.
        let mut amp = vec![0.3f32; 10];
        amp.extend([0.0; 20]);
        amp.extend([0.2; 5]);
        amp.extend([0.0; 25]);
        let voice = detect(&frames(&amp));
        assert_eq!(voice.len(), 60);
        let expected: Vec<bool> = (0..60)
            .map(|i| i < 10 + HANGOVER_FRAMES || (30..35 + HANGOVER_FRAMES).contains(&i))
            .collect();
        assert_eq!(voice, expected);
        assert_eq!(talk_spurts(&voice), 2);
        assert!((voice_share(&voice) - 31.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn hangover_wraps_around_the_loop_point_and_spurts_are_circular() {
        let mut loud = vec![false; 20];
        loud[18] = true;
        loud[5] = true;
        let voice = hangover(&loud, 3);
        assert!(voice[19] && voice[0] && voice[1] && !voice[2]);
        // 18..=1 across the loop point, and 5..=8.
        assert_eq!(talk_spurts(&voice), 2);
        assert_eq!(talk_spurts(&[true; 4]), 1);
        assert_eq!(talk_spurts(&[false; 4]), 0);
        assert_eq!(talk_spurts(&[]), 0);
    }

    #[test]
    fn a_steady_tone_is_all_voice_and_silence_none() {
        assert!(detect(&frames(&[0.5; 30])).iter().all(|&v| v));
        assert!(detect(&vec![0.0; 30 * FRAME_SAMPLES]).iter().all(|&v| !v));
        // Steady noise at the floor: nothing rises above it.
        assert!(detect(&frames(&[0.0; 30])).iter().all(|&v| !v));
    }

    #[test]
    fn threshold_follows_the_floor_within_its_range() {
        assert_eq!(threshold(-66.0), -54.0);
        assert_eq!(threshold(-100.0), -60.0);
        assert_eq!(threshold(-9.0), -30.0);
        assert_eq!(noise_floor(&[]), SILENCE_DB);
    }
}
