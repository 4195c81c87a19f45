//! Packs for meetings that behave like people: several voices with voice
//! activity, a silence track, video variants that differ but stay aligned, a
//! screen share of slides, and espeak-ng's speech.

use std::path::Path;

use synth_common::pack::{Reader, Role, TrackKind};
use synth_encoder::audio::{espeak, vad, AudioSource};
use synth_encoder::build::BuildOptions;
use synth_encoder::rendition::{Rendition, Screen};
use synth_encoder::Error;

use crate::support::{
    assert_bitrates, build_pack, decode_audio_track, decode_video, small_options,
};

/// A 2 s pack of `audio` with `voices` voices, two renditions in 3
/// variants, and a 320x180 screen track at 5 fps.
fn meeting_options(output: &Path, audio: &str, voices: u32) -> BuildOptions {
    BuildOptions {
        voices: Some(voices),
        variants: 3,
        screen: Screen(Some(Rendition::new(320, 180, 100).unwrap())),
        ..small_options(output, audio, "bars", &["320x180@150", "160x90@80"], 2)
    }
}

#[test]
fn voices_variants_silence_and_screen_come_out_as_planned() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("meeting.pack");
    let (summary, _) = build_pack(&meeting_options(&output, "procedural", 3));
    assert_bitrates(&summary, "meeting");
    let r = Reader::open(&output).unwrap();
    let id = |name: &str| r.track_by_name(name).unwrap_or_else(|| panic!("no {name}"));

    // Voices: three main audio variants that differ, each with talk and pauses.
    let voices = r.variants(id("audio-opus"));
    assert_eq!(
        voices,
        [id("audio-opus"), id("audio-opus-v1"), id("audio-opus-v2")]
    );
    assert_eq!(r.variant_count(TrackKind::Audio, Role::Main), 3);
    let mut payloads = Vec::new();
    for &v in &voices {
        let flags: Vec<bool> = r.frames(v).map(|f| f.voice).collect();
        let share = vad::voice_share(&flags);
        assert!(
            (0.2..0.95).contains(&share),
            "{}: {share}",
            r.tracks()[v].name
        );
        assert!(vad::talk_spurts(&flags) >= 1, "{}", r.tracks()[v].name);
        decode_audio_track(&r, v);
        payloads.push(
            r.frames(v)
                .flat_map(|f| f.data.to_vec())
                .collect::<Vec<u8>>(),
        );
    }
    assert!(payloads[0] != payloads[1] && payloads[1] != payloads[2]);

    // Silence: no voice, same CBR size as the voices, decodes to near nothing.
    let silence = id("audio-silence");
    assert_eq!(r.tracks()[silence].role, Role::Silence);
    assert!(r.frames(silence).all(|f| !f.voice && f.data.len() == 80));
    let pcm = decode_audio_track(&r, silence);
    assert!(pcm.iter().all(|v| v.abs() < 1e-3), "silence is silent");

    // Video variants: different bytes, same key frames, readable counters.
    for base in ["video-320x180", "video-160x90"] {
        let variants = r.variants(id(base));
        assert_eq!(variants.len(), 3, "{base}");
        let names: Vec<&str> = variants
            .iter()
            .map(|&t| r.tracks()[t].name.as_str())
            .collect();
        assert_eq!(
            names,
            [base.to_string(), format!("{base}-v1"), format!("{base}-v2")]
        );
        let bytes = |t: usize| {
            r.frames(t)
                .flat_map(|f| f.data.to_vec())
                .collect::<Vec<u8>>()
        };
        assert!(
            bytes(variants[0]) != bytes(variants[1]) && bytes(variants[1]) != bytes(variants[2])
        );
        for &v in &variants {
            assert_eq!(r.keyframes(v), r.keyframes(variants[0]));
            assert!(
                decode_video(&r, v).iter().all(Option::is_some),
                "{}",
                r.tracks()[v].name
            );
        }
    }
    assert!(r.keyframes_aligned());

    // Screen: its own role, rate and key frames (one per slide), same loop.
    let screen = r.first_track_with(TrackKind::Video, Role::Screen).unwrap();
    let t = &r.tracks()[screen];
    assert_eq!(
        (t.name.as_str(), t.fps_num, t.frame_count),
        ("screen-320x180", 5, 10)
    );
    assert_eq!(t.loop_duration_us(), r.loop_duration_us());
    assert_eq!(
        r.keyframes(screen),
        &[0],
        "one slide in 2 s, key-frame interval 2 s"
    );
    let mut decoder = synth_encoder::vp9::Decoder::new().unwrap();
    for (i, f) in r.frames(screen).enumerate() {
        let picture = decoder.decode_picture(f.data).unwrap();
        assert!(
            picture.is_some_and(|p| p.width() == 320),
            "screen frame {i}"
        );
    }
    // The camera tracks come first: clients that pick "the first video" get a camera.
    assert_eq!(r.first_track(TrackKind::Video), Some(id("video-320x180")));
}

#[test]
fn a_wav_with_talk_and_pauses_gets_voice_flags_where_it_talks() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("talk.wav");
    // 0.5 s of a 300 Hz tone, 1.5 s of quiet, twice: frames 0..25 and 100..125 talk.
    let samples = (0..4 * 48_000).map(|i| {
        if i % 96_000 < 24_000 {
            (8000.0 * (std::f32::consts::TAU * 300.0 * i as f32 / 48_000.0).sin()) as i16
        } else {
            ((i * 7919) % 61) as i16 - 30 // about -60 dBFS
        }
    });
    crate::support::write_wav(&wav, samples);
    let output = dir.path().join("wav.pack");
    let options = small_options(&output, wav.to_str().unwrap(), "bars", &["160x90@60"], 4);
    build_pack(&BuildOptions {
        voices: None,
        ..options
    });
    let r = Reader::open(&output).unwrap();
    assert_eq!(
        r.variant_count(TrackKind::Audio, Role::Main),
        1,
        "a WAV is one voice"
    );
    let flags: Vec<bool> = r.frames(0).map(|f| f.voice).collect();
    let hang = vad::HANGOVER_FRAMES;
    let expected: Vec<bool> = (0..200).map(|i| i % 100 < 25 + hang).collect();
    assert_eq!(flags, expected);
    assert_eq!(vad::talk_spurts(&flags), 2);
}

#[test]
fn a_wav_gives_one_voice_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("x.pack");
    let options = BuildOptions {
        voices: Some(2),
        ..small_options(&output, "some.wav", "bars", &["160x90@60"], 1)
    };
    let err = synth_encoder::build::build(&options, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, Error::Invalid { what: "voices", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("an audio file gives exactly one voice"),
        "{err}"
    );
    assert!(!output.exists());
}

/// The one test that needs espeak-ng: it runs when espeak-ng is on PATH; when
/// it is not, it fails under CI (which installs it) and is skipped elsewhere.
#[test]
fn espeak_speech_has_sentences_and_pauses_in_several_voices() {
    if !espeak::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "espeak-ng is not on PATH, and CI is set: CI must install it (scripts/install-deps.sh)"
        );
        println!("skipped: espeak-ng is not on PATH (apt-get install espeak-ng to run this test)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("speech.pack");
    let options = BuildOptions {
        voices: Some(2),
        screen: Screen(None),
        variants: 1,
        ..small_options(&output, "speech", "bars", &["160x90@60"], 8)
    };
    assert_eq!(options.audio, AudioSource::Speech);
    let (_, notes) = build_pack(&options);
    assert!(
        notes.iter().filter(|n| n.contains("espeak-ng")).count() == 2,
        "{notes:?}"
    );
    let r = Reader::open(&output).unwrap();
    let voices = r.variants(r.first_track(TrackKind::Audio).unwrap());
    assert_eq!(voices.len(), 2);
    for &v in &voices {
        let flags: Vec<bool> = r.frames(v).map(|f| f.voice).collect();
        let share = vad::voice_share(&flags);
        // Sentences with pauses of 0.4 s to 1.4 s between them.
        assert!(
            (0.4..0.92).contains(&share),
            "{}: {share}",
            r.tracks()[v].name
        );
        assert!(vad::talk_spurts(&flags) >= 2, "{}", r.tracks()[v].name);
        let pcm = decode_audio_track(&r, v);
        let loud = pcm
            .chunks(960)
            .filter(|c| c.iter().map(|v| v * v).sum::<f32>() / 960.0 > 0.03f32.powi(2))
            .count();
        assert!(loud > 100, "only {loud} loud frames in 8 s of speech");
    }
}
