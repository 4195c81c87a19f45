//! The `synth-encode` binary end to end: build, inspect, export, errors and exit codes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{build_pack, small_options};

/// The binary, with no configuration leaking in from the environment.
fn synth_encode() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_synth-encode"));
    for var in [
        "PACK",
        "SYNTH_AUDIO",
        "SYNTH_VIDEO",
        "SYNTH_RENDITIONS",
        "SYNTH_FPS",
        "SYNTH_DURATION",
        "SYNTH_KEYFRAME_INTERVAL",
        "SYNTH_AUDIO_BITRATE",
        "SYNTH_HOLD",
        "SYNTH_VOICES",
        "SYNTH_VARIANTS",
        "SYNTH_SCREEN",
        "SYNTH_SCREEN_FPS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(args: &[&str]) -> Output {
    synth_encode()
        .args(args)
        .output()
        .expect("running synth-encode")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failure with exit code 2 and one `error: ...` line naming `needle`.
fn assert_bad_input(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: ") && lines[0].contains(needle),
        "expected one error line containing {needle:?}, got: {stderr}"
    );
}

fn ffprobe_available() -> bool {
    Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ffprobe_stream(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,width,height,nb_read_frames,sample_rate,channels")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"][0].clone()
}

#[test]
fn build_inspect_export_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("nested/dir/e2e.pack");
    let pack_arg = pack.to_str().unwrap();
    let out = run(&[
        "build",
        "--audio",
        "tone",
        "--video",
        "checkerboard",
        "--rendition",
        "320x180@150",
        "--rendition",
        "256x144@120",
        "--duration",
        "2s",
        "--keyframe-interval",
        "1s",
        "--voices",
        "2",
        "--variants",
        "2",
        "--screen",
        "320x180@100",
        "--screen-fps",
        "5",
        "-o",
        pack_arg,
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "build failed: {stderr}");
    assert!(
        text(&out.stdout).contains("wrote "),
        "{}",
        text(&out.stdout)
    );
    // Not a terminal: plain progress lines, no bar.
    // 3 audio tracks of 100 frames, 4 cameras of 60, 10 screen frames.
    assert!(stderr.contains("encoded 550/550 frames"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");

    let out = run(&["inspect", pack_arg, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON");
    assert_eq!(report["checksum_state"], "ok");
    assert_eq!(report["loop_seconds"], 2.0);
    assert_eq!(
        report["file_size"].as_u64(),
        Some(std::fs::metadata(&pack).unwrap().len())
    );
    let tracks = report["tracks"].as_array().unwrap();
    let names: Vec<&str> = tracks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "audio-opus",
            "audio-opus-v1",
            "audio-silence",
            "video-320x180",
            "video-320x180-v1",
            "video-256x144",
            "video-256x144-v1",
            "screen-320x180"
        ]
    );
    let roles: Vec<(&str, u64)> = tracks
        .iter()
        .map(|t| (t["role"].as_str().unwrap(), t["variant"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("main", 0),
            ("main", 1),
            ("silence", 0),
            ("main", 0),
            ("main", 1),
            ("main", 0),
            ("main", 1),
            ("screen", 0)
        ]
    );
    for t in &tracks[..3] {
        assert_eq!(t["frames"], 100);
        assert_eq!(t["codec"], "opus");
    }
    // A tone is all voice, one spurt around the loop; silence is none.
    assert_eq!(tracks[1]["voice_share"], 1.0);
    assert_eq!(tracks[1]["talk_spurts"], 1);
    assert_eq!(tracks[2]["voice_share"], 0.0);
    assert_eq!(tracks[2]["talk_spurts"], 0);
    assert_eq!(tracks[3]["voice_share"], Value::Null);
    for t in &tracks[3..7] {
        assert_eq!(t["frames"], 60);
        assert_eq!(t["codec"], "vp9");
        assert_eq!(t["keyframes"], serde_json::json!([0, 30]));
    }
    assert_eq!(tracks[7]["frames"], 10);
    assert_eq!(tracks[7]["fps"], 5.0);
    // The renditions and their variants share their key frames: a client can
    // switch at any. The screen track does not count.
    assert_eq!(
        report["keyframes"],
        serde_json::json!({"aligned": true, "renditions": 4, "interval_s": 1.0, "differ": null})
    );
    for t in &tracks[..7] {
        let err = t["error_pct"].as_f64().unwrap();
        assert!(err.abs() <= 10.0, "{}: {err:+.1} %", t["name"]);
        let bytes = t["bytes"].as_f64().unwrap();
        assert!((t["measured_bps"].as_f64().unwrap() - bytes * 8.0 / 2.0).abs() < 1e-6);
    }

    let out = run(&["inspect", pack_arg]);
    let table = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        table.contains("(ok)") && table.contains("video-256x144") && table.contains("kb/s"),
        "{table}"
    );
    assert!(
        table.contains("key frames: aligned across the 4 main video tracks (every 1.0 s)"),
        "{table}"
    );

    let ivf = dir.path().join("v.ivf");
    let out = run(&[
        "export",
        pack_arg,
        "--track",
        "video-320x180",
        "-o",
        ivf.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&ivf).unwrap();
    assert_eq!(&bytes[0..4], b"DKIF");
    assert_eq!(&bytes[8..12], b"VP90");
    assert_eq!(u16::from_le_bytes([bytes[12], bytes[13]]), 320);
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 60);

    let ogg = dir.path().join("a.ogg");
    let out = run(&[
        "export",
        pack_arg,
        "--track",
        "audio-opus",
        "-o",
        ogg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(&std::fs::read(&ogg).unwrap()[..4], b"OggS");
    // Every track exports, whatever its role or variant.
    let mut exports = vec![ivf.clone(), ogg.clone()];
    for (name, ext) in [
        ("audio-opus-v1", "ogg"),
        ("audio-silence", "ogg"),
        ("video-256x144-v1", "ivf"),
        ("screen-320x180", "ivf"),
    ] {
        let file = dir.path().join(format!("{name}.{ext}"));
        let out = run(&[
            "export",
            pack_arg,
            "--track",
            name,
            "-o",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        exports.push(file);
    }

    if !ffprobe_available() {
        println!("note: ffprobe is not on PATH; skipping the ffprobe/ffmpeg checks of the exports");
        return;
    }
    let v = ffprobe_stream(&ivf);
    assert_eq!(v["codec_name"], "vp9");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(v["nb_read_frames"], "60");
    let a = ffprobe_stream(&ogg);
    assert_eq!(a["codec_name"], "opus");
    assert_eq!(a["sample_rate"], "48000");
    assert_eq!(a["channels"], 1);
    assert_eq!(a["nb_read_frames"], "100");
    let s = ffprobe_stream(&exports[5]);
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(180))
    );
    assert_eq!(s["nb_read_frames"], "10");
    // A full decode with no complaints (ffmpeg checks the Ogg page CRCs).
    for file in &exports {
        let out = Command::new("ffmpeg")
            .args(["-v", "warning", "-i"])
            .arg(file)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "ffmpeg {}: {}",
            file.display(),
            text(&out.stderr)
        );
    }
}

#[test]
fn damaged_foreign_and_missing_packs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pack");
    build_pack(&small_options(&good, "tone", "bars", &["160x90@60"], 1));
    let bytes = std::fs::read(&good).unwrap();

    let foreign = dir.path().join("foreign.pack");
    std::fs::write(&foreign, b"this is not a pack, just some text that is long enough to hold a header of 128 bytes, or so one hopes; padding padding padding").unwrap();
    assert_bad_input(&run(&["inspect", foreign.to_str().unwrap()]), "not a pack");

    let truncated = dir.path().join("truncated.pack");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_bad_input(&run(&["inspect", truncated.to_str().unwrap()]), "truncated");

    let flipped = dir.path().join("flipped.pack");
    let mut damaged = bytes.clone();
    damaged[5000] ^= 0x40;
    std::fs::write(&flipped, &damaged).unwrap();
    assert_bad_input(&run(&["inspect", flipped.to_str().unwrap()]), "checksum");

    let missing = dir.path().join("missing.pack");
    assert_bad_input(
        &run(&["inspect", missing.to_str().unwrap()]),
        "opening pack",
    );

    let ivf = dir.path().join("x.ivf");
    assert_bad_input(
        &run(&[
            "export",
            flipped.to_str().unwrap(),
            "--track",
            "video-160x90",
            "-o",
            ivf.to_str().unwrap(),
        ]),
        "checksum",
    );
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Regression: `synth-encode build -o /dev/null` as root replaced the device
/// node with a regular file. A FIFO and a directory stand in for the device.
#[test]
fn build_output_that_is_not_a_regular_file_is_refused_and_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.pack");
    mkfifo(&fifo);
    let sub = dir.path().join("sub.pack");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("keep"), b"x").unwrap();
    for (out, kind) in [(&fifo, "a FIFO"), (&sub, "a directory")] {
        let o = out.to_str().unwrap();
        let args = ["build", "--audio", "tone", "--video", "bars", "-o", o];
        assert_bad_input(
            &run(&args),
            &format!("{o} is {kind}, not a regular file: refusing to replace it"),
        );
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(std::fs::read(sub.join("keep")).unwrap(), b"x");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no .tmp");
    // The reader's side: a directory or a FIFO as the pack to inspect.
    assert_bad_input(
        &run(&["inspect", sub.to_str().unwrap()]),
        "is a directory, not a regular file",
    );
    assert_bad_input(
        &run(&["inspect", fifo.to_str().unwrap()]),
        "is a FIFO, not a regular file",
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("p.pack");
    let p = pack.to_str().unwrap();
    build_pack(&small_options(&pack, "tone", "bars", &["160x90@60"], 1));

    assert_bad_input(
        &run(&["export", p, "--track", "video-1x1", "-o", "/tmp/never.ivf"]),
        "audio-opus, audio-silence, video-160x90",
    );
    let ogg = dir.path().join("v.ogg");
    assert_bad_input(
        &run(&[
            "export",
            p,
            "--track",
            "video-160x90",
            "-o",
            ogg.to_str().unwrap(),
        ]),
        ".ivf",
    );
    assert!(!ogg.exists());
    assert_bad_input(
        &run(&["export", p, "--track", "audio-opus", "-o", "/tmp/never.mp4"]),
        ".ogg",
    );

    let out = dir.path().join("never.pack");
    let o = out.to_str().unwrap();
    let missing_wav = dir.path().join("missing.wav");
    assert_bad_input(
        &run(&["build", "--audio", missing_wav.to_str().unwrap(), "-o", o]),
        "missing.wav",
    );
    assert_bad_input(
        &run(&["build", "--video", dir.path().to_str().unwrap(), "-o", o]),
        "no .jpg or .jpeg files",
    );
    assert_bad_input(&run(&["build", "--fps", "0", "-o", o]), "frame rate");
    assert_bad_input(
        &run(&["build", "--screen-fps", "0", "-o", o]),
        "invalid screen frame rate: 0 fps",
    );
    assert_bad_input(
        &run(&["build", "--voices", "0", "-o", o]),
        "invalid voices: 0 (must be 1..=16)",
    );
    assert_bad_input(
        &run(&["build", "--audio", "procedural", "--voices", "17", "-o", o]),
        "invalid voices: 17",
    );
    assert_bad_input(
        &run(&["build", "--variants", "17", "-o", o]),
        "invalid variants: 17 (must be 1..=16)",
    );
    let wav = dir.path().join("one.wav");
    crate::support::write_wav(&wav, [0; 4800]);
    assert_bad_input(
        &run(&[
            "build",
            "--audio",
            wav.to_str().unwrap(),
            "--voices",
            "2",
            "-o",
            o,
        ]),
        "an audio file gives exactly one voice",
    );
    assert_bad_input(
        &run(&["build", "--audio-bitrate", "1", "-o", o]),
        "audio bitrate",
    );
    assert_bad_input(
        &run(&[
            "build",
            "--rendition",
            "320x180@150",
            "--rendition",
            "320x180@100",
            "-o",
            o,
        ]),
        "twice",
    );
    assert!(!out.exists());

    // Argument syntax errors come from clap, which also exits with 2.
    let out = run(&["build", "--rendition", "641x360@500"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("641 is odd"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["build", "--screen", "720p"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("or none"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["build", "--duration", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--audio speech` without espeak-ng on PATH says so in one line and uses
/// the procedural source.
#[test]
fn speech_without_espeak_falls_back_to_procedural_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("fallback.pack");
    let out = synth_encode()
        .args([
            "build",
            "--voices",
            "2",
            "--variants",
            "1",
            "--screen",
            "none",
        ])
        .args(["--rendition", "160x90@60", "--duration", "1s", "-o"])
        .arg(&pack)
        .env("PATH", dir.path())
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("espeak-ng")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("is not on PATH") && warnings[0].contains("apt-get install espeak-ng"),
        "{stderr}"
    );
    assert!(stderr.contains("speech: procedural"), "{stderr}");
}

#[test]
fn build_help_documents_every_flag_with_its_default() {
    let help = text(&run(&["build", "--help"]).stdout);
    for (flag, default) in [
        ("--voices <", "default: 4 for a"),
        ("--variants <", "[default: 4]"),
        ("--screen <", "[default: 1280x720@300]"),
        ("--screen-fps <", "[default: 5]"),
        ("--audio <", "[default: speech]"),
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} missing: {help}"));
        // Up to the next option ("      --x" or "  -o, --output").
        let rest = &help[at + 2..];
        let next = ["\n      --", "\n  -"]
            .iter()
            .filter_map(|p| rest.find(p))
            .min()
            .map_or(help.len(), |n| at + 2 + n);
        assert!(
            help[at..next].contains(default),
            "{flag}: {}",
            &help[at..next]
        );
    }
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in ["build", "inspect", "export"] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(
            help.contains("Examples:") && help.contains(&format!("synth-encode {sub}")),
            "{sub}: {help}"
        );
    }
}

#[test]
fn environment_configures_build_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let from_env = dir.path().join("env.pack");
    let out = synth_encode()
        .args([
            "build",
            "--audio",
            "tone",
            "--video",
            "gradient",
            "--duration",
            "1s",
        ])
        .args(["--voices", "1"])
        .env("SYNTH_RENDITIONS", "160x90@60,192x108@80")
        .env("SYNTH_DURATION", "5s")
        .env("SYNTH_VOICES", "3")
        .env("SYNTH_VARIANTS", "2")
        .env("SYNTH_SCREEN", "none")
        .env("PACK", &from_env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value =
        serde_json::from_slice(&run(&["inspect", from_env.to_str().unwrap(), "--json"]).stdout)
            .unwrap();
    let names: Vec<&str> = report["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // --voices 1 beat SYNTH_VOICES=3; SYNTH_VARIANTS and SYNTH_SCREEN applied.
    assert_eq!(
        names,
        [
            "audio-opus",
            "audio-silence",
            "video-160x90",
            "video-160x90-v1",
            "video-192x108",
            "video-192x108-v1"
        ]
    );
    // --duration 1s beat SYNTH_DURATION=5s.
    assert_eq!(report["loop_seconds"], 1.0);
}
