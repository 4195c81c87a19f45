//! WAV input: any rate, depth and channel count becomes 48 kHz mono with the tone in place.

use std::f64::consts::TAU;
use std::path::Path;

use synth_common::pack::Reader;
use synth_encoder::audio::{self, AudioSource};
use synth_encoder::Error;

use crate::support::{assert_tone_at, build_pack, decode_audio, small_options};

/// A WAV file to write: its format and a sine at amplitude 0.5 on channel 0.
struct TestWav {
    rate: u32,
    channels: u16,
    bits: u16,
    float: bool,
    seconds: f64,
    freq: f64,
    /// Gain of channels 1.. relative to channel 0.
    other: f64,
}

impl TestWav {
    /// A 1 kHz tone on every channel.
    fn tone(rate: u32, channels: u16, bits: u16, float: bool, seconds: f64) -> TestWav {
        TestWav {
            rate,
            channels,
            bits,
            float,
            seconds,
            freq: 1000.0,
            other: 1.0,
        }
    }

    fn write(&self, path: &Path) {
        let spec = hound::WavSpec {
            channels: self.channels,
            sample_rate: self.rate,
            bits_per_sample: self.bits,
            sample_format: if self.float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let frames = (self.seconds * self.rate as f64) as usize;
        for i in 0..frames {
            let v = 0.5 * (TAU * self.freq * i as f64 / self.rate as f64).sin();
            for ch in 0..self.channels {
                let v = if ch == 0 { v } else { v * self.other };
                match (self.float, self.bits) {
                    (true, _) => w.write_sample(v as f32).unwrap(),
                    (false, 8) => w.write_sample((v * 127.0).round() as i8).unwrap(),
                    (false, 16) => w.write_sample((v * 32767.0).round() as i16).unwrap(),
                    (false, b) => w
                        .write_sample((v * ((1i64 << (b - 1)) - 1) as f64).round() as i32)
                        .unwrap(),
                }
            }
        }
        w.finalize().unwrap();
    }
}

#[test]
fn every_wav_format_becomes_48k_mono_with_the_tone_at_1khz() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, channels, bits, float) in [
        (44_100, 2, 16, false),
        (8_000, 1, 16, false),
        (22_050, 1, 8, false),
        (96_000, 6, 24, false),
        (192_000, 2, 32, false),
        (48_000, 1, 32, true),
        (32_000, 3, 32, true),
    ] {
        let what = format!(
            "{rate} Hz {channels} ch {bits}-bit{}",
            if float { " float" } else { "" }
        );
        let path = dir
            .path()
            .join(format!("{rate}-{channels}-{bits}-{float}.wav"));
        TestWav::tone(rate, channels, bits, float, 1.0).write(&path);
        let pcm = audio::render(&AudioSource::File(path), 48_000)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(pcm.samples.len(), 48_000, "{what}");
        // 1 kHz is 48 samples a cycle at 48 kHz: analyse whole cycles away from the edges.
        let body = &pcm.samples[4800..4800 + 38_400];
        assert_tone_at(body, 1000.0, 48_000.0, &what);
        // Same signal on every channel: the average keeps the 0.5 amplitude.
        let peak = body.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let tolerance = if bits == 8 { 0.02 } else { 0.005 };
        assert!((peak - 0.5).abs() < tolerance, "{what}: peak {peak}");
        if channels > 1 {
            assert!(
                pcm.description.contains("down-mixed"),
                "{what}: {}",
                pcm.description
            );
        }
        if rate != 48_000 {
            assert!(
                pcm.description.contains("resampled"),
                "{what}: {}",
                pcm.description
            );
        }
    }
}

#[test]
fn stereo_44k_tone_survives_resampling_and_opus() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone-44k1-stereo.wav");
    TestWav::tone(44_100, 2, 16, false, 2.0).write(&wav);
    let output = dir.path().join("w.pack");
    let options = small_options(
        &output,
        wav.to_str().unwrap(),
        "checkerboard",
        &["160x90@60"],
        2,
    );
    build_pack(&options);
    let reader = Reader::open(&output).unwrap();
    let pcm = decode_audio(&reader);
    assert_eq!(pcm.len(), 2 * 48_000);
    // Skip Opus's start-up and stop before the end: 1 s of whole 1 kHz cycles.
    assert_tone_at(&pcm[9600..9600 + 48_000], 1000.0, 48_000.0, "after Opus");
}

#[test]
fn down_mix_averages_the_channels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("left-only.wav");
    TestWav {
        other: 0.0,
        ..TestWav::tone(48_000, 2, 16, false, 0.5)
    }
    .write(&path);
    let pcm = audio::render(&AudioSource::File(path), 24_000)
        .unwrap()
        .samples;
    let peak = pcm.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!((peak - 0.25).abs() < 0.002, "peak {peak}");
}

#[test]
fn short_wav_is_padded_and_long_wav_is_cut_to_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.wav");
    TestWav::tone(44_100, 1, 16, false, 0.5).write(&path);
    let pcm = audio::render(&AudioSource::File(path.clone()), 48_000).unwrap();
    assert_eq!(pcm.samples.len(), 48_000);
    assert!(
        pcm.description.contains("padded with 0.50 s of silence"),
        "{}",
        pcm.description
    );
    assert!(pcm.samples[24_100..].iter().all(|&v| v.abs() < 1e-3));
    assert!(pcm.samples[12_000..12_048].iter().any(|&v| v.abs() > 0.4));

    let pcm = audio::render(&AudioSource::File(path), 9_600).unwrap();
    assert_eq!(pcm.samples.len(), 9_600);
    assert!(
        pcm.description.contains("cut to the 0.20 s loop"),
        "{}",
        pcm.description
    );
    // The cut fades out, so the loop point does not click.
    assert!(pcm.samples[9_599].abs() < 1e-3);
}

#[test]
fn unsupported_and_malformed_wavs_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("4k.wav");
    TestWav {
        freq: 500.0,
        ..TestWav::tone(4_000, 1, 16, false, 0.1)
    }
    .write(&slow);
    let err = audio::render(&AudioSource::File(slow), 4800).unwrap_err();
    assert!(matches!(err, Error::UnsupportedWav { .. }), "{err}");
    assert!(err.to_string().contains("4000 Hz"), "{err}");

    let junk = dir.path().join("junk.wav");
    std::fs::write(&junk, b"RIFF but not really a wave file").unwrap();
    let err = audio::render(&AudioSource::File(junk), 4800).unwrap_err();
    assert!(matches!(err, Error::Wav { .. }), "{err}");

    let missing = dir.path().join("missing.wav");
    let err = audio::render(&AudioSource::File(missing), 4800).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
    assert!(err.is_bad_input());
}

/// Regression: a truncated WAV said only "Failed to read enough bytes."
#[test]
fn truncated_wav_says_what_its_data_chunk_promised_and_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.wav");
    TestWav::tone(48_000, 1, 16, false, 0.1).write(&full);
    let bytes = std::fs::read(&full).unwrap();
    let data_start = bytes.len() - 9600;
    assert_eq!(&bytes[data_start - 8..data_start - 4], b"data");

    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..data_start + 1000]).unwrap();
    let err = audio::render(&AudioSource::File(cut.clone()), 4800).unwrap_err();
    assert!(matches!(err, Error::TruncatedWav { .. }), "{err}");
    assert!(err.is_bad_input());
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated WAV file (data chunk promises 9600 bytes, 1000 present)",
            cut.display()
        )
    );

    let head = dir.path().join("head.wav");
    std::fs::write(&head, &bytes[..20]).unwrap();
    let err = audio::render(&AudioSource::File(head.clone()), 4800).unwrap_err();
    assert!(matches!(err, Error::TruncatedWav { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: truncated WAV file (the file ends after 20 bytes, inside its header)",
            head.display()
        )
    );
}
