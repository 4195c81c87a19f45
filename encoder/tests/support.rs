//! Helpers shared by the test modules.

use std::path::Path;
use std::time::Duration;

use synth_common::pack::{Reader, Role, TrackKind};
use synth_encoder::audio::AudioSource;
use synth_encoder::build::{build, BuildOptions, BuildSummary};
use synth_encoder::rendition::{Rendition, Screen};
use synth_encoder::video::VideoSource;
use synth_encoder::vp9::Decoder;

/// Options for a small, quick pack written to `output`: one voice, one
/// variant of each rendition, no screen track.
pub fn small_options(
    output: &Path,
    audio: &str,
    video: &str,
    renditions: &[&str],
    seconds: u64,
) -> BuildOptions {
    BuildOptions {
        audio: audio.parse::<AudioSource>().unwrap(),
        video: video.parse::<VideoSource>().unwrap(),
        renditions: renditions
            .iter()
            .map(|r| r.parse::<Rendition>().unwrap())
            .collect(),
        duration: Duration::from_secs(seconds),
        output: output.to_path_buf(),
        voices: Some(1),
        variants: 1,
        screen: Screen(None),
        ..BuildOptions::default()
    }
}

/// Builds a pack, collecting the progress notes.
pub fn build_pack(options: &BuildOptions) -> (BuildSummary, Vec<String>) {
    let mut notes = Vec::new();
    let summary = build(options, &mut |e| {
        if let synth_encoder::build::Event::Note(n) = e {
            notes.push(n);
        }
    })
    .unwrap_or_else(|e| panic!("build of {} failed: {e}", options.output.display()));
    (summary, notes)
}

/// Asserts that every track's measured bitrate is within ±10 % of its target
/// (but a screen track's: slides that hold still need fewer bits).
pub fn assert_bitrates(summary: &BuildSummary, what: &str) {
    for t in summary.tracks.iter().filter(|t| t.role != Role::Screen) {
        let measured = t.measured_bps(summary.plan.loop_duration());
        let error = (measured - t.target_bps as f64) / t.target_bps as f64;
        assert!(
            error.abs() <= 0.10,
            "{what} {}: {measured:.0} b/s for a target of {} ({:+.1} %)",
            t.name,
            t.target_bps,
            error * 100.0
        );
    }
}

/// Decodes every Opus packet of the (first) audio track; each must give 960 samples.
pub fn decode_audio(reader: &Reader) -> Vec<f32> {
    let id = reader
        .first_track(TrackKind::Audio)
        .expect("an audio track");
    decode_audio_track(reader, id)
}

/// Decodes every Opus packet of audio track `id`; each must give 960 samples.
pub fn decode_audio_track(reader: &Reader, id: usize) -> Vec<f32> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    let mut pcm = Vec::with_capacity(reader.frame_count(id) * 960);
    let mut buf = vec![0f32; 5760];
    for (i, frame) in reader.frames(id).enumerate() {
        let n = decoder
            .decode_float(frame.data, &mut buf, false)
            .unwrap_or_else(|e| panic!("Opus packet {i} does not decode: {e}"));
        assert_eq!(n, 960, "Opus packet {i} decodes to {n} samples");
        pcm.extend_from_slice(&buf[..n]);
    }
    pcm
}

/// Decodes every frame of video track `id` from the first (key) frame; each
/// must show a picture of the track's size. Returns the decoded pictures'
/// counter readings (None where the counter could not be read).
pub fn decode_video(reader: &Reader, id: usize) -> Vec<Option<String>> {
    let track = &reader.tracks()[id];
    let (w, h) = (track.width as u32, track.height as u32);
    let first = reader.frame(id, 0).expect("a first frame");
    assert!(first.key, "{}: frame 0 is not a key frame", track.name);
    let mut decoder = Decoder::new().unwrap();
    let (x, y, scale) = synth_encoder::video::counter_layout(h);
    reader
        .frames(id)
        .enumerate()
        .map(|(i, frame)| {
            let picture = decoder
                .decode_picture(frame.data)
                .unwrap_or_else(|e| panic!("{} frame {i} does not decode: {e}", track.name))
                .unwrap_or_else(|| panic!("{} frame {i} shows no picture", track.name));
            assert_eq!(
                (picture.width(), picture.height()),
                (w, h),
                "{} frame {i}",
                track.name
            );
            synth_encoder::video::font::read_digits(
                picture.y(),
                w,
                x,
                y,
                scale,
                synth_encoder::video::COUNTER_DIGITS,
            )
        })
        .collect()
}

/// Power of `freq` in `x` (Goertzel): A²·N/4 for a sine of amplitude A over N samples.
pub fn goertzel(x: &[f32], freq: f64, rate: f64) -> f64 {
    let coeff = 2.0 * (std::f64::consts::TAU * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = v as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / x.len() as f64
}

/// Asserts that `x` (at `rate`) has its energy at `freq`, far above any other
/// frequency in a sweep of the audio band.
pub fn assert_tone_at(x: &[f32], freq: f64, rate: f64, what: &str) {
    let at = goertzel(x, freq, rate);
    let energy: f64 = x.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / x.len() as f64;
    // For a pure sine of amplitude A the bin holds A²·N/4 and the mean power is
    // A²/2, so this share is 1 when all of the energy is at `freq`.
    let share = at / (energy * x.len() as f64 / 2.0);
    assert!(
        share > 0.8,
        "{what}: only {:.0} % of the energy is at {freq} Hz",
        share * 100.0
    );
    for other in [
        250.0, 500.0, 750.0, 1500.0, 2000.0, 3000.0, 4100.0, 8000.0, 12_000.0, 20_000.0,
    ] {
        if (other - freq).abs() < 100.0 {
            continue;
        }
        let p = goertzel(x, other, rate);
        assert!(
            p < at * 1e-3,
            "{what}: {other} Hz holds {:.1e} of the {freq} Hz power",
            p / at
        );
    }
}

/// Writes `samples` as a 48 kHz mono 16-bit WAV file at `path`.
pub fn write_wav(path: &Path, samples: impl IntoIterator<Item = i16>) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for v in samples {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}
