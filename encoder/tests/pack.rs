//! Built packs play: every packet decodes, counts and pts follow the plan, bitrates hit their targets.

use synth_common::pack::{Reader, TrackKind};
use synth_encoder::plan::Plan;

use crate::support::{assert_bitrates, build_pack, decode_audio, decode_video, small_options};

#[test]
fn speech_and_bars_decode_frame_by_frame_with_planned_timing() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("p.pack");
    let options = small_options(
        &output,
        "speech",
        "bars",
        &["640x360@500", "320x180@150"],
        3,
    );
    let (summary, _) = build_pack(&options);
    let reader = Reader::open(&output).unwrap();
    let plan = Plan::new(
        30,
        std::time::Duration::from_secs(3),
        options.keyframe_interval,
    )
    .unwrap();
    assert_eq!(summary.plan, plan);
    // One voice, the silence track and the two renditions.
    assert_eq!(reader.tracks().len(), 4);

    // Audio: 150 frames of 960 ticks, each decoding to 960 samples.
    let audio = reader.track_by_name("audio-opus").unwrap();
    let t = &reader.tracks()[audio];
    assert_eq!(
        (t.kind, t.clock_rate, t.channels),
        (TrackKind::Audio, 48_000, 1)
    );
    assert_eq!(t.frame_count, 150);
    assert_eq!(t.loop_duration, 3 * 48_000);
    for (i, f) in reader.frames(audio).enumerate() {
        assert_eq!(
            (f.pts, f.duration),
            (i as u64 * 960, 960),
            "audio frame {i}"
        );
    }
    let pcm = decode_audio(&reader);
    assert_eq!(pcm.len(), 150 * 960);
    // The speech has talk spurts: some 20 ms frames are loud after decoding.
    let loud = pcm
        .chunks(960)
        .filter(|c| c.iter().map(|v| v * v).sum::<f32>() / 960.0 > 0.03f32.powi(2))
        .count();
    assert!(loud > 20, "only {loud} loud frames in 3 s of speech");

    // Video: 90 frames of 3000 ticks per rendition, key frames at 0 and 60.
    for name in ["video-640x360", "video-320x180"] {
        let id = reader
            .track_by_name(name)
            .unwrap_or_else(|| panic!("no {name}"));
        let t = &reader.tracks()[id];
        assert_eq!(
            (t.kind, t.clock_rate, t.fps_num, t.fps_den),
            (TrackKind::Video, 90_000, 30, 1)
        );
        assert_eq!(t.frame_count, 90, "{name}");
        assert_eq!(t.loop_duration, 3 * 90_000, "{name}");
        for (i, f) in reader.frames(id).enumerate() {
            assert_eq!(
                (f.pts, f.duration),
                (i as u64 * 3000, 3000),
                "{name} frame {i}"
            );
        }
        assert_eq!(reader.keyframes(id), &[0, 60], "{name}");
        // Every frame decodes at the rendition's size, and shows its own number.
        let counters = decode_video(&reader, id);
        for (i, c) in counters.iter().enumerate() {
            assert_eq!(
                c.as_deref(),
                Some(format!("{i:05}").as_str()),
                "{name} frame {i}"
            );
        }
    }

    assert_bitrates(&summary, "speech+bars");
    assert_eq!(summary.file_len, reader.file_len());
}

#[test]
fn every_pattern_holds_its_bitrate_and_tone_decodes() {
    let dir = tempfile::tempdir().unwrap();
    for video in ["gradient", "checkerboard"] {
        let output = dir.path().join(format!("{video}.pack"));
        let options = small_options(&output, "tone", video, &["320x180@150"], 2);
        let (summary, _) = build_pack(&options);
        let reader = Reader::open(&output).unwrap();
        let id = reader.track_by_name("video-320x180").unwrap();
        assert_eq!(reader.frame_count(id), 60);
        assert!(
            decode_video(&reader, id).iter().all(Option::is_some),
            "{video}: unreadable counters"
        );
        assert_bitrates(&summary, video);
        let pcm = decode_audio(&reader);
        // Skip the decoder's start-up; 440 Hz fits 11 cycles in every 1200 samples.
        crate::support::assert_tone_at(&pcm[4800..4800 + 72_000], 440.0, 48_000.0, "decoded tone");
    }
}

#[test]
fn rounded_duration_keeps_audio_and_video_loops_equal() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("r.pack");
    let mut options = small_options(&output, "tone", "checkerboard", &["160x90@60"], 1);
    options.duration = std::time::Duration::from_millis(1_250);
    options.fps = 24;
    let (summary, notes) = build_pack(&options);
    // LCM of 20 ms and 1/24 s is 500 ms: 1.25 s becomes 1.5 s, and the user is told.
    assert_eq!(summary.plan.loop_ms, 1_500);
    assert!(
        notes.iter().any(|n| n.contains("rounded up")),
        "notes: {notes:?}"
    );
    let reader = Reader::open(&output).unwrap();
    let a = &reader.tracks()[reader.track_by_name("audio-opus").unwrap()];
    let v = &reader.tracks()[reader.track_by_name("video-160x90").unwrap()];
    assert_eq!((a.frame_count, v.frame_count), (75, 36));
    assert_eq!(a.loop_duration_us(), v.loop_duration_us());
    assert_eq!(v.loop_duration, 135_000);
    let id = reader.track_by_name("video-160x90").unwrap();
    assert!(reader.frames(id).all(|f| f.duration == 3750));
}
