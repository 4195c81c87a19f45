//! Bring your own media: every input kind builds a pack that plays, copied
//! clips come out byte for byte, and bad files get one line each.
//!
//! The clips to copy are made here without any tool: a pack built by the
//! project's own encoder, its tracks exported as IVF and Ogg Opus. Where
//! `ffmpeg` is on PATH (CI installs it) it makes the rest: an MP3, a WebM of
//! VP9 and Opus as `ffmpeg -c:v libvpx-vp9` writes it, an H.264 MP4; the
//! frames copied from its WebM are then compared with what `ffmpeg -c copy`
//! extracts. Without ffmpeg those tests say so and pass, except under CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use synth_common::pack::{Origin, Reader, TrackKind};
use synth_encoder::build::BuildOptions;
use synth_encoder::export;
use synth_encoder::rendition::RenditionFile;

use crate::support::{build_pack, decode_audio_track, decode_video, small_options};

/// Options for a pack of copied video: no encoded rendition, one variant, no screen.
fn copy_options(output: &Path, audio: &Path, video: &Path, seconds: u64) -> BuildOptions {
    BuildOptions {
        renditions: Vec::new(),
        ..small_options(
            output,
            audio.to_str().unwrap(),
            video.to_str().unwrap(),
            &[],
            seconds,
        )
    }
}

/// A pack built here with `keyframe_s` between key frames, its renditions
/// exported as IVF (`v-WxH.ivf`) and its voice as Ogg Opus (`a.ogg`).
fn own_clips(dir: &Path, name: &str, renditions: &[&str], seconds: u64, keyframe_s: u64) {
    let pack = dir.join(format!("{name}.pack"));
    let mut options = small_options(&pack, "tone", "bars", renditions, seconds);
    options.keyframe_interval = std::time::Duration::from_secs(keyframe_s);
    build_pack(&options);
    for r in renditions {
        let size = r.split_once('@').unwrap().0;
        let out = dir.join(format!("{name}-{size}.ivf"));
        export::export(&pack, &format!("video-{size}"), &out).unwrap();
    }
    export::export(&pack, "audio-opus", &dir.join(format!("{name}.ogg"))).unwrap();
}

/// The frames of an IVF file.
fn ivf_frames(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let (_, frames) = synth_common::ivf::frames(&bytes).unwrap();
    frames.map(|f| f.unwrap().1.to_vec()).collect()
}

/// The audio packets of an Ogg Opus file (its two header packets left out).
fn ogg_packets(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let streams = synth_encoder::ogg::read_streams(&bytes).unwrap();
    streams[0].packets[2..].to_vec()
}

fn track_frames(reader: &Reader, name: &str) -> Vec<Vec<u8>> {
    let id = reader
        .track_by_name(name)
        .unwrap_or_else(|| panic!("no {name}"));
    reader.frames(id).map(|f| f.data.to_vec()).collect()
}

#[test]
fn copied_ivf_and_ogg_frames_are_the_files_bytes_and_export_gives_them_back() {
    let dir = tempfile::tempdir().unwrap();
    own_clips(dir.path(), "src", &["320x180@150"], 2, 1);
    let (ivf, ogg) = (
        dir.path().join("src-320x180.ivf"),
        dir.path().join("src.ogg"),
    );
    let output = dir.path().join("copied.pack");
    let (summary, notes) = build_pack(&copy_options(&output, &ogg, &ivf, 10));
    // A clip is never stretched: the 2 s clips make a 2 s loop, not 10 s.
    assert_eq!(summary.plan.loop_ms, 2_000);
    assert!(
        notes.iter().any(|n| n.starts_with("loop 2.00 s")),
        "{notes:?}"
    );
    let reader = Reader::open(&output).unwrap();
    assert_eq!(track_frames(&reader, "video-320x180"), ivf_frames(&ivf));
    assert_eq!(track_frames(&reader, "audio-opus"), ogg_packets(&ogg));
    let video = reader.track_by_name("video-320x180").unwrap();
    // Key frames from the VP9 headers: where the source pack had them.
    assert_eq!(reader.keyframes(video), &[0, 30]);
    let t = &reader.tracks()[video];
    assert_eq!((t.fps_num, t.fps_den, t.frame_count), (30, 1, 60));
    assert!(reader
        .frames(video)
        .enumerate()
        .all(|(i, f)| f.pts == i as u64 * 3000 && f.duration == 3000));
    // Every frame still decodes, and shows the source's own counter.
    let counters = decode_video(&reader, video);
    assert_eq!(counters[59].as_deref(), Some("00059"));
    let audio = reader.track_by_name("audio-opus").unwrap();
    assert_eq!(decode_audio_track(&reader, audio).len(), 100 * 960);
    // A tone: every packet is voice, from the decoded audio.
    assert!(reader.frames(audio).all(|f| f.voice));

    // The pack says where each track came from.
    let source = |name: &str| reader.source(reader.track_by_name(name).unwrap()).unwrap();
    assert_eq!(source("video-320x180").origin, Origin::Copied);
    assert!(source("video-320x180")
        .from
        .contains("src-320x180.ivf (IVF, VP9 320x180, 30 fps"));
    assert_eq!(source("audio-opus").origin, Origin::Copied);
    assert!(source("audio-opus").from.contains("src.ogg (Ogg stream"));
    assert_eq!(source("audio-silence").origin, Origin::Encoded);

    // Export gives back the same bytes, and the same timing.
    let again = dir.path().join("again.ivf");
    export::export(&output, "video-320x180", &again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&ivf).unwrap());
    let again = dir.path().join("again.ogg");
    export::export(&output, "audio-opus", &again).unwrap();
    assert_eq!(ogg_packets(&again), ogg_packets(&ogg));
}

/// A copied clip longer than the loop is cut; the shorter of audio and video sets the loop.
#[test]
fn the_loop_is_the_shortest_clip_rounded_down_and_the_rest_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    own_clips(dir.path(), "long", &["160x90@60"], 3, 1);
    own_clips(dir.path(), "short", &["160x90@60"], 2, 1);
    let output = dir.path().join("cut.pack");
    let ivf = dir.path().join("short-160x90.ivf");
    let ogg = dir.path().join("long.ogg");
    let (summary, _) = build_pack(&copy_options(&output, &ogg, &ivf, 10));
    assert_eq!(summary.plan.loop_ms, 2_000);
    let reader = Reader::open(&output).unwrap();
    let audio = track_frames(&reader, "audio-opus");
    assert_eq!(audio, ogg_packets(&ogg)[..100]);
    let source = reader
        .source(reader.track_by_name("audio-opus").unwrap())
        .unwrap();
    assert!(
        source
            .from
            .contains("its first 100 packets, cut to the loop"),
        "{}",
        source.from
    );
    // --duration shorter still, and not on a frame: 1.25 s becomes 1.2 s (30 fps, 20 ms).
    let mut options = copy_options(&output, &ogg, &ivf, 10);
    options.duration = std::time::Duration::from_millis(1_250);
    let (summary, _) = build_pack(&options);
    assert_eq!(summary.plan.loop_ms, 1_200);
    let reader = Reader::open(&output).unwrap();
    assert_eq!(
        track_frames(&reader, "video-160x90"),
        ivf_frames(&ivf)[..36]
    );
    // With an encoded screen track at 5 fps the unit is 200 ms.
    options.screen = "160x90@60".parse().unwrap();
    options.duration = std::time::Duration::from_millis(1_390);
    assert_eq!(build_pack(&options).0.plan.loop_ms, 1_200);
}

/// A clip at a variable frame rate keeps its frames' own times.
#[test]
fn a_variable_rate_clip_keeps_its_times_and_exports_them() {
    let dir = tempfile::tempdir().unwrap();
    own_clips(dir.path(), "src", &["160x90@60"], 2, 1);
    let frames = ivf_frames(&dir.path().join("src-160x90.ivf"));
    // A camera's jitter: 33, 34, 40 and 27 ms apart, in milliseconds.
    let vfr = dir.path().join("vfr.ivf");
    let mut out = Vec::new();
    synth_common::ivf::write_header(&mut out, *b"VP90", 160, 90, 1000, 1, 60).unwrap();
    let mut t = 0u64;
    let gaps = [33u64, 34, 40, 27];
    let mut times = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        synth_common::ivf::write_frame(&mut out, t, f).unwrap();
        times.push(t);
        t += gaps[i % 4];
    }
    std::fs::write(&vfr, &out).unwrap();
    let output = dir.path().join("vfr.pack");
    let ogg = dir.path().join("src.ogg");
    let (summary, _) = build_pack(&copy_options(&output, &ogg, &vfr, 10));
    // The last frame at 1.983 s lasts the median gap, 34 ms: 2.017 s of video, 2.00 s of audio.
    assert_eq!(summary.plan.loop_ms, 2_000);
    let reader = Reader::open(&output).unwrap();
    let id = reader.track_by_name("video-160x90").unwrap();
    let pts: Vec<u64> = reader.frames(id).map(|f| f.pts).collect();
    let want: Vec<u64> = times
        .iter()
        .take_while(|&&t| t < 2000)
        .map(|t| t * 90)
        .collect();
    assert_eq!(pts, want);
    let last = reader.frame(id, pts.len() - 1).unwrap();
    assert_eq!(last.pts + last.duration as u64, 180_000, "cut at the loop");
    let t = &reader.tracks()[id];
    assert_eq!(t.fps_den, 1000, "a mean rate: {}/{}", t.fps_num, t.fps_den);
    // Exported on the 90 kHz clock, frames unchanged.
    let back = dir.path().join("back.ivf");
    export::export(&output, "video-160x90", &back).unwrap();
    let bytes = std::fs::read(&back).unwrap();
    let (header, got) = synth_common::ivf::frames(&bytes).unwrap();
    assert_eq!((header.rate, header.scale), (90_000, 1));
    let got: Vec<(u64, Vec<u8>)> = got
        .map(|f| f.unwrap())
        .map(|(p, d)| (p, d.to_vec()))
        .collect();
    assert_eq!(got.len(), pts.len());
    assert!(got.iter().zip(&pts).all(|((p, _), q)| p == q));
    assert!(got.iter().zip(&frames).all(|((_, d), f)| d == f));
}

#[test]
fn several_rendition_files_must_share_their_key_frames() {
    let dir = tempfile::tempdir().unwrap();
    own_clips(dir.path(), "a", &["320x180@150", "160x90@60"], 2, 1);
    own_clips(dir.path(), "b", &["160x90@60"], 2, 2);
    let file = |s: &str| s.parse::<RenditionFile>().unwrap();
    let d = dir.path().display();
    let output = dir.path().join("two.pack");
    let options = |files: Vec<RenditionFile>| BuildOptions {
        rendition_files: files,
        ..copy_options(&output, &dir.path().join("a.ogg"), Path::new("bars"), 10)
    };
    let two = vec![
        file(&format!("320x180={d}/a-320x180.ivf")),
        file(&format!("160x90={d}/a-160x90.ivf")),
    ];
    build_pack(&options(two));
    let reader = Reader::open(&output).unwrap();
    assert!(reader.keyframes_aligned());
    assert_eq!(
        reader.variant_count(TrackKind::Video, synth_common::pack::Role::Main),
        1
    );
    assert!(reader.track_by_name("video-160x90").is_some());
    assert_eq!(
        track_frames(&reader, "video-320x180"),
        ivf_frames(&dir.path().join("a-320x180.ivf"))
    );

    // Key frames every 1 s against every 2 s: refused, saying where they are.
    let misaligned = vec![
        file(&format!("320x180={d}/a-320x180.ivf")),
        file(&format!("160x90={d}/b-160x90.ivf")),
    ];
    let err = synth_encoder::build::build(&options(misaligned), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("key frames differ between")
            && err.contains("(frames 0, 30)")
            && err.contains("(frames 0)"),
        "{err}"
    );
    // The size given must be the clip's.
    let wrong = vec![file(&format!("640x360={d}/a-320x180.ivf"))];
    let err = synth_encoder::build::build(&options(wrong), &mut |_| {}).unwrap_err();
    assert!(
        err.is_bad_input() && err.to_string().contains("is 320x180, not the 640x360"),
        "{err}"
    );
}

#[test]
fn y4m_raw_i420_and_raw_pcm_are_encoded_into_every_rendition() {
    let dir = tempfile::tempdir().unwrap();
    // 1 s of 25 fps 176x144 frames whose luma ramps up frame by frame, as Y4M and raw I420.
    let (w, h) = (176usize, 144usize);
    let frame = |k: usize| {
        let mut f = vec![(40 + 6 * k) as u8; w * h];
        f.extend(std::iter::repeat_n(128u8, 2 * (w / 2) * (h / 2)));
        f
    };
    let y4m = dir.path().join("cam.y4m");
    let yuv = dir.path().join("cam.yuv");
    let mut a = format!("YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n").into_bytes();
    let mut b = Vec::new();
    for k in 0..25 {
        a.extend_from_slice(b"FRAME\n");
        a.extend(frame(k));
        b.extend(frame(k));
    }
    std::fs::write(&y4m, a).unwrap();
    std::fs::write(&yuv, b).unwrap();
    // 2 s of a 660 Hz tone, s16le stereo at 44.1 kHz.
    let raw = dir.path().join("tone.raw");
    let pcm: Vec<u8> = (0..88_200)
        .flat_map(|i| {
            let v = (0.4 * (std::f64::consts::TAU * 660.0 * i as f64 / 44_100.0).sin() * 32767.0)
                as i16;
            [v.to_le_bytes(), v.to_le_bytes()].concat()
        })
        .collect();
    std::fs::write(&raw, pcm).unwrap();
    let audio = format!("pcm:s16le:44100:2:{}", raw.display());
    for video in [
        y4m.display().to_string(),
        format!("i420:{w}x{h}:25:{}", yuv.display()),
    ] {
        let output = dir.path().join("enc.pack");
        let options = small_options(&output, &audio, &video, &["320x180@150", "160x90@60"], 2);
        let (_, notes) = build_pack(&options);
        assert!(
            notes.iter().any(|n| n
                .contains("176x144 at 25 fps, 25 frames read (1.00 s), played forward and back")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("raw s16le, 44100 Hz, 2 ch")),
            "{notes:?}"
        );
        let reader = Reader::open(&output).unwrap();
        for name in ["video-320x180", "video-160x90"] {
            let id = reader.track_by_name(name).unwrap();
            assert_eq!(reader.frame_count(id), 60);
            let counters = decode_video(&reader, id);
            assert_eq!(counters[42].as_deref(), Some("00042"), "{name}");
        }
        // The file plays at its own 25 fps: pack frame 30 (1.0 s) is file frame 24 or 25
        // on the way back, so the picture is as bright as near the end of the file.
        let id = reader.track_by_name("video-160x90").unwrap();
        let mut decoder = synth_encoder::vp9::Decoder::new().unwrap();
        let mut luma = Vec::new();
        for f in reader.frames(id) {
            let p = decoder.decode_picture(f.data).unwrap().unwrap();
            // The middle row, away from the counter.
            luma.push(p.y()[45 * 160 + 80] as i32);
        }
        assert!(luma[28] > luma[2] + 60, "{luma:?}");
        assert!((luma[30] - luma[29]).abs() < 20, "{luma:?}");
        let audio_id = reader.track_by_name("audio-opus").unwrap();
        let decoded = decode_audio_track(&reader, audio_id);
        crate::support::assert_tone_at(&decoded[4800..4800 + 57_600], 660.0, 48_000.0, "raw PCM");
        let source = reader.source(audio_id).unwrap();
        assert_eq!(source.origin, Origin::Encoded);
        assert!(
            source.from.contains("tone.raw: raw s16le"),
            "{}",
            source.from
        );
    }
}

fn ffmpeg_available() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg is not on PATH, and CI installs it"
        );
        println!("note: ffmpeg is not on PATH; skipping the tests of files it makes");
    }
    ok
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ffmpeg -f lavfi` sources: 4 s of testsrc and a 440 Hz sine.
fn webm(dir: &Path, name: &str, pix_fmt: &str) -> PathBuf {
    let out = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x180:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "4",
        "-pix_fmt",
        pix_fmt,
        "-c:v",
        "libvpx-vp9",
        "-b:v",
        "300k",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-g",
        "60",
        "-c:a",
        "libopus",
        "-b:a",
        "32k",
        out.to_str().unwrap(),
    ]);
    out
}

#[test]
fn ffmpeg_webm_frames_are_copied_as_ffmpeg_c_copy_extracts_them() {
    if !ffmpeg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = webm(dir.path(), "clip.webm", "yuv420p");
    let output = dir.path().join("webm.pack");
    let (summary, _) = build_pack(&copy_options(&output, &clip, &clip, 10));
    assert_eq!(summary.plan.loop_ms, 4_000);
    let reader = Reader::open(&output).unwrap();
    // What ffmpeg itself extracts, without decoding.
    let (ivf, ogg) = (dir.path().join("ff.ivf"), dir.path().join("ff.ogg"));
    let c = clip.to_str().unwrap();
    ffmpeg(&["-i", c, "-map", "0:v", "-c", "copy", ivf.to_str().unwrap()]);
    ffmpeg(&["-i", c, "-map", "0:a", "-c", "copy", ogg.to_str().unwrap()]);
    let video = track_frames(&reader, "video-320x180");
    assert_eq!(video.len(), 120);
    assert_eq!(video, ivf_frames(&ivf));
    let audio = track_frames(&reader, "audio-opus");
    assert_eq!(audio.len(), 200);
    assert_eq!(audio, ogg_packets(&ogg)[..200], "the first 4 s of packets");
    let id = reader.track_by_name("video-320x180").unwrap();
    assert_eq!(reader.keyframes(id), &[0, 60]);
    // ffmpeg's WebM stores milliseconds: the frames are put back on the 30 fps grid.
    assert!(reader.frames(id).all(|f| f.duration == 3000));
    decode_video(&reader, id);
    // And `export` gives ffmpeg's frames back.
    let back = dir.path().join("back.ivf");
    export::export(&output, "video-320x180", &back).unwrap();
    assert_eq!(ivf_frames(&back), ivf_frames(&ivf));

    // The same stream in an Ogg file, as ffmpeg writes it.
    let from_ogg = dir.path().join("ogg.pack");
    let options = small_options(&from_ogg, ogg.to_str().unwrap(), "bars", &["160x90@60"], 10);
    let (summary, _) = build_pack(&options);
    assert_eq!(summary.plan.loop_ms, 4_000);
    let reader = Reader::open(&from_ogg).unwrap();
    assert_eq!(track_frames(&reader, "audio-opus"), audio);
}

#[test]
fn ffmpeg_mp3_is_decoded_and_encoded() {
    if !ffmpeg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mp3 = dir.path().join("tone.mp3");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        "3",
        mp3.to_str().unwrap(),
    ]);
    let output = dir.path().join("mp3.pack");
    let options = small_options(&output, mp3.to_str().unwrap(), "bars", &["160x90@60"], 2);
    let (_, notes) = build_pack(&options);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("tone.mp3: MP3, 44100 Hz, 1 ch")),
        "{notes:?}"
    );
    let reader = Reader::open(&output).unwrap();
    let id = reader.track_by_name("audio-opus").unwrap();
    let pcm = decode_audio_track(&reader, id);
    crate::support::assert_tone_at(&pcm[4800..4800 + 72_000], 440.0, 48_000.0, "MP3");
    assert!(reader.frames(id).all(|f| f.voice));
}

/// Regression: a copied clip of 60 ms Opus packets stood beside a silence
/// track of 20 ms frames, and a client that stopped talking took the silence
/// frame of the same index, 40 ms of the loop per frame away from the voice
/// packet it replaced. The silence now has the clip's packet length.
#[test]
fn the_silence_beside_a_copied_clip_has_its_packet_length() {
    if !ffmpeg_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ogg = dir.path().join("sixty.ogg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "3",
        "-c:a",
        "libopus",
        "-frame_duration",
        "60",
        ogg.to_str().unwrap(),
    ]);
    let output = dir.path().join("sixty.pack");
    let options = small_options(&output, ogg.to_str().unwrap(), "bars", &["160x90@60"], 2);
    build_pack(&options);
    let reader = Reader::open(&output).unwrap();
    let voice = reader.track_by_name("audio-opus").unwrap();
    let silence = reader.track_by_name("audio-silence").unwrap();
    let lengths = |id: usize| reader.frames(id).map(|f| f.duration).collect::<Vec<_>>();
    assert!(
        lengths(voice).iter().all(|&d| d == 2880),
        "{:?}",
        lengths(voice)
    );
    assert_eq!(lengths(silence), lengths(voice));
    for f in reader.frames(silence) {
        assert_eq!(opus::packet::get_nb_samples(f.data, 48_000).unwrap(), 2880);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synth-encode"))
        .args(args)
        .env_remove("SYNTH_AUDIO")
        .env_remove("SYNTH_VIDEO")
        .env_remove("SYNTH_RENDITIONS")
        .output()
        .unwrap()
}

/// Exit code 2 and one `error:` line that holds each of `needles`.
fn assert_one_line(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        lines.len() == 1
            && lines[0].starts_with("error: ")
            && needles.iter().all(|n| lines[0].contains(n)),
        "expected one error line with {needles:?}, got: {stderr}"
    );
}

#[test]
fn bad_clips_and_files_get_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let out = d("never.pack");
    own_clips(dir.path(), "own", &["160x90@60"], 1, 1);
    // A Y4M of 4:4:4, and one cut inside its second frame.
    let mut y4m = b"YUV4MPEG2 W32 H32 F25:1 C444\nFRAME\n".to_vec();
    y4m.extend([0u8; 32 * 32 * 3]);
    std::fs::write(d("444.y4m"), &y4m).unwrap();
    let mut cut = b"YUV4MPEG2 W32 H32 F25:1 C420\nFRAME\n".to_vec();
    cut.extend([0u8; 1536]);
    cut.extend_from_slice(b"FRAME\n");
    cut.extend([0u8; 100]);
    std::fs::write(d("cut.y4m"), &cut).unwrap();
    // An Ogg cut inside a page, and raw files of the wrong length.
    let ogg = std::fs::read(d("own.ogg")).unwrap();
    std::fs::write(d("cut.ogg"), &ogg[..ogg.len() - 40]).unwrap();
    std::fs::write(d("odd.raw"), [0u8; 1001]).unwrap();
    std::fs::write(d("odd.yuv"), [0u8; 1001]).unwrap();
    std::fs::write(d("text.txt"), b"just some text").unwrap();

    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["--video".into(), d("444.y4m")],
            vec!["444.y4m: is a Y4M of 4:4:4 (C444)", "-pix_fmt yuv420p"],
        ),
        (
            vec!["--video".into(), d("cut.y4m")],
            vec!["cut.y4m: truncated"],
        ),
        (
            vec!["--audio".into(), d("cut.ogg")],
            vec!["cut.ogg: truncated"],
        ),
        (
            vec![
                "--audio".into(),
                format!("pcm:s16le:48000:2:{}", d("odd.raw")),
            ],
            vec!["1001 bytes is not a whole number of s16le 2-channel frames"],
        ),
        (
            vec!["--video".into(), format!("i420:32x32:25:{}", d("odd.yuv"))],
            vec!["1001 bytes is not a whole number of 32x32 I420 frames"],
        ),
        (
            vec!["--video".into(), d("text.txt")],
            vec!["text.txt: is not a video file synth-encode reads"],
        ),
        (
            vec!["--audio".into(), d("text.txt")],
            vec!["text.txt: not an audio file this build decodes"],
        ),
        (
            vec![
                "--video".into(),
                d("own-160x90.ivf"),
                "--fps".into(),
                "25".into(),
            ],
            vec!["--fps sets how video is encoded", "copied from a clip"],
        ),
        (
            vec![
                "--video".into(),
                d("own-160x90.ivf"),
                "--rendition".into(),
                "160x90@60".into(),
            ],
            vec![
                "--rendition 160x90@60 encodes a source",
                "own-160x90.ivf is copied",
            ],
        ),
        (
            vec![
                "--rendition-file".into(),
                format!("320x180={}", d("own-160x90.ivf")),
            ],
            vec!["is 160x90, not the 320x180"],
        ),
        (
            vec![
                "--audio".into(),
                d("own.ogg"),
                "--voices".into(),
                "2".into(),
            ],
            vec!["an audio file gives exactly one voice"],
        ),
    ];
    for (args, needles) in &cases {
        let mut all: Vec<&str> = vec!["build"];
        all.extend(args.iter().map(String::as_str));
        all.extend(["-o", &out]);
        assert_one_line(&run(&all), needles);
    }
    assert!(!Path::new(&out).exists());

    if !ffmpeg_available() {
        return;
    }
    let c = |name: &str| {
        let p = d(name);
        move |args: &[&str]| {
            let mut all = args.to_vec();
            all.push(&p);
            ffmpeg(&all);
        }
    };
    c("h264.mp4")(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x90:rate=30",
        "-t",
        "1",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
    ]);
    c("vorbis.ogg")(&[
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=44100",
        "-t",
        "1",
        "-c:a",
        "libvorbis",
    ]);
    let good = webm(dir.path(), "good.webm", "yuv420p");
    webm(dir.path(), "444.webm", "yuv444p");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(d("cut.webm"), &bytes[..bytes.len() / 2]).unwrap();
    // Cut where its last cluster starts, between two blocks.
    let cluster = bytes
        .windows(4)
        .rposition(|w| w == [0x1f, 0x43, 0xb6, 0x75])
        .expect("a WebM has clusters");
    std::fs::write(d("clusters.webm"), &bytes[..cluster]).unwrap();
    let ffmpeg_cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec!["--video".into(), d("h264.mp4")],
            vec!["h264.mp4: is an MP4 file", "ffmpeg -i", "clip.y4m"],
        ),
        (
            vec!["--video".into(), d("cut.webm")],
            vec!["cut.webm: truncated"],
        ),
        (
            vec!["--audio".into(), d("cut.webm")],
            vec!["cut.webm: truncated"],
        ),
        (
            vec!["--video".into(), d("clusters.webm")],
            vec!["clusters.webm: truncated"],
        ),
        (
            vec!["--video".into(), d("444.webm")],
            vec![
                "444.webm: WebM track 1 is VP9 profile 1",
                "not profile 0",
                "--video clip.y4m",
            ],
        ),
        (
            vec!["--audio".into(), d("vorbis.ogg")],
            vec![
                "vorbis.ogg: holds Vorbis audio, not Opus",
                "--audio encode:",
            ],
        ),
        (
            vec!["--audio".into(), d("h264.mp4")],
            vec!["h264.mp4: has no audio track"],
        ),
    ];
    for (args, needles) in &ffmpeg_cases {
        let mut all: Vec<&str> = vec!["build"];
        all.extend(args.iter().map(String::as_str));
        all.extend(["-o", &out]);
        assert_one_line(&run(&all), needles);
    }
    // Vorbis goes through the encode path when asked.
    let encoded = d("vorbis.pack");
    let vorbis = format!("encode:{}", d("vorbis.ogg"));
    let ok = run(&[
        "build",
        "--audio",
        &vorbis,
        "--voices",
        "1",
        "--variants",
        "1",
        "--screen",
        "none",
        "--rendition",
        "160x90@60",
        "--duration",
        "1s",
        "-o",
        &encoded,
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn inspect_says_where_each_track_came_from() {
    let dir = tempfile::tempdir().unwrap();
    own_clips(dir.path(), "src", &["160x90@60"], 1, 1);
    let pack = dir.path().join("mixed.pack");
    let ivf = dir.path().join("src-160x90.ivf");
    let out = run(&[
        "build",
        "--audio",
        "tone",
        "--video",
        ivf.to_str().unwrap(),
        "--screen",
        "none",
        "-o",
        pack.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["inspect", pack.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sources:"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name) && l.contains("from"))
            .unwrap_or_else(|| panic!("no source line for {name}: {text}"))
            .to_string()
    };
    assert!(
        line("audio-opus ").contains("encoded here from tone: 440 Hz sine"),
        "{text}"
    );
    assert!(
        line("audio-silence").contains("encoded here from digital silence"),
        "{text}"
    );
    assert!(
        line("video-160x90").contains("copied from ")
            && line("video-160x90").contains("src-160x90.ivf (IVF, VP9 160x90"),
        "{text}"
    );
    let out = run(&["inspect", "--json", pack.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let video = json["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "video-160x90")
        .unwrap();
    assert_eq!(video["source"]["origin"], "copied");
}
