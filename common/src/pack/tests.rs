//! Round trips and every corrupt-pack case the reader must catch.

use super::format::{u64_at, Header, ENTRY_LEN, HEADER_LEN, TRACK_LEN};
use super::*;
use bytes::Bytes;

fn audio() -> Track {
    Track::opus("audio-opus", 32_000, 48_000 / 10)
}

fn video() -> Track {
    Track::vp9("video-64x36", (64, 36), 30, 100_000, 90_000 / 10)
}

/// A 100 ms pack: 5 audio frames and 3 video frames (key, delta, key), interleaved.
fn sample(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("t.pack");
    let mut w = Writer::create(&path).unwrap();
    let a = w.add_track(audio()).unwrap();
    let v = w.add_track(video()).unwrap();
    for i in 0..5u64 {
        w.push_frame(a, &[i as u8 + 1; 17], i * 960, 960, true)
            .unwrap();
        if i < 3 {
            let key = i != 1;
            w.push_frame(
                v,
                &vec![0x80 + i as u8; 100 + i as usize],
                i * 3000,
                3000,
                key,
            )
            .unwrap();
        }
    }
    w.finish().unwrap();
    path
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.version(), VERSION);
    assert_eq!(r.tracks().len(), 2);
    assert_eq!(r.loop_duration_us(), 100_000);
    let a = r.track_by_name("audio-opus").unwrap();
    let v = r.track_by_name("video-64x36").unwrap();
    assert_eq!(r.frame_count(a), 5);
    assert_eq!(r.frame_count(v), 3);
    assert_eq!(r.tracks()[v].frame_count, 3);
    let f = r.frame(a, 3).unwrap();
    assert_eq!(f.data, &[4u8; 17]);
    assert_eq!(
        (f.pts, f.duration, f.key, f.voice),
        (3 * 960, 960, true, true)
    );
    let f = r.frame(v, 1).unwrap();
    assert_eq!(f.data, &vec![0x81u8; 101][..]);
    assert!(!f.key);
    assert_eq!(r.keyframes(v), &[0, 2]);
    assert_eq!(r.next_keyframe(v, 1), Some(2));
    assert_eq!(r.next_keyframe(v, 3), Some(0), "wraps to the loop's start");
    assert!(r.frame(v, 3).is_none());
    assert!(r.frame(9, 0).is_none());
    assert_eq!(
        &r.frame_bytes(v, 2).unwrap()[..],
        r.frame(v, 2).unwrap().data
    );
    assert_eq!(r.frames(a).count(), 5);
    assert_eq!(r.payload_bytes(a), 5 * 17);
    // 85 bytes over a 100 ms loop.
    assert!((r.bitrate_bps(a) - 85.0 * 8.0 * 10.0).abs() < 1e-9);
    assert_eq!(r.bitrate_bps(9), 0.0);
    // Payloads are aligned and start on the first page after the header.
    for t in 0..2 {
        for f in r.frames(t) {
            let off = f.data.as_ptr() as usize - r.frame(0, 0).unwrap().data.as_ptr() as usize;
            assert_eq!(off % 16, 0);
        }
    }
    assert_eq!(r.file_len(), std::fs::metadata(&path).unwrap().len());
    assert!(!dir.path().join("t.pack.tmp").exists());
}

fn open_bytes(b: Vec<u8>) -> Error {
    Reader::from_bytes(Bytes::from(b)).unwrap_err()
}

/// Rewrites both checksums so a deliberately inconsistent pack reaches the
/// structural checks instead of failing on its checksum.
fn reseal(b: &mut [u8]) {
    let body = crc32fast::hash(&b[HEADER_LEN..]);
    b[80..84].copy_from_slice(&body.to_le_bytes());
    b[84..88].fill(0);
    let head = crc32fast::hash(&b[..HEADER_LEN]);
    b[84..88].copy_from_slice(&head.to_le_bytes());
    // The header still decodes (and its checksum matches).
    Header::decode(b).unwrap();
}

/// `good` with `bytes` written at `at`, resealed.
fn patched(good: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    reseal(&mut b);
    b
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(sample(&dir)).unwrap();
    for cut in [0, 7, 8, 100, 4096, full.len() - 1] {
        let e = open_bytes(full[..cut].to_vec());
        assert!(matches!(e, Error::Truncated { .. }), "cut {cut}: {e}");
        assert!(e.to_string().contains("truncated"));
    }
    // Through the file path too.
    let p = dir.path().join("short.pack");
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    assert!(matches!(
        Reader::open(&p).unwrap_err(),
        Error::Truncated { .. }
    ));
    std::fs::write(&p, &full[..20]).unwrap();
    assert!(matches!(
        Reader::open(&p).unwrap_err(),
        Error::Truncated { .. }
    ));
}

#[test]
fn wrong_magic_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(sample(&dir)).unwrap();
    b[0] = b'X';
    assert!(matches!(open_bytes(b), Error::BadMagic { .. }));
    let foreign = b"RIFF\x24\x00\x00\x00WAVEfmt ".repeat(20);
    let e = open_bytes(foreign);
    assert!(matches!(e, Error::BadMagic { .. }));
    assert!(e.to_string().starts_with("not a pack"), "{e}");
}

#[test]
fn unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = std::fs::read(sample(&dir)).unwrap();
    b[8..12].copy_from_slice(&7u32.to_le_bytes());
    let e = open_bytes(b);
    assert!(
        matches!(
            e,
            Error::UnsupportedVersion {
                found: 7,
                supported: VERSION
            }
        ),
        "{e}"
    );
}

#[test]
fn checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(&dir)).unwrap();
    // A flipped payload bit.
    let mut b = good.clone();
    b[4096 + 3] ^= 1;
    assert!(matches!(
        open_bytes(b),
        Error::Checksum { what: "body", .. }
    ));
    // A changed header field.
    let mut b = good.clone();
    b[72] ^= 1;
    assert!(matches!(
        open_bytes(b),
        Error::Checksum { what: "header", .. }
    ));
}

#[test]
fn index_entry_out_of_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(&dir)).unwrap();
    let index_offset = u64_at(&good, 40) as usize;
    // Offset far past the payload area.
    let mut b = good.clone();
    let at = index_offset + 2 * ENTRY_LEN;
    b[at..at + 8].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
    reseal(&mut b);
    let e = open_bytes(b);
    assert!(
        matches!(
            e,
            Error::BadIndex {
                track: 0,
                frame: 2,
                ..
            }
        ),
        "{e}"
    );
    // Length running into the track table.
    let mut b = good.clone();
    let at = index_offset + 6 * ENTRY_LEN + 8;
    b[at..at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open_bytes(b),
        Error::BadIndex {
            track: 1,
            frame: 1,
            ..
        }
    ));
    // pts going backwards.
    let mut b = good.clone();
    let at = index_offset + 3 * ENTRY_LEN + 16;
    b[at..at + 8].copy_from_slice(&0u64.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(
        open_bytes(b),
        Error::BadIndex {
            track: 0,
            frame: 3,
            ..
        }
    ));
}

#[test]
fn inconsistent_header_and_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(&dir)).unwrap();
    let tracks_offset = u64_at(&good, 32) as usize;
    // Frame count in the header larger than the index.
    let mut b = good.clone();
    b[28..32].copy_from_slice(&1000u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(open_bytes(b), Error::BadHeader(_)));
    // Unknown track kind.
    let mut b = good.clone();
    b[tracks_offset] = 9;
    reseal(&mut b);
    assert!(matches!(open_bytes(b), Error::BadTrack { track: 0, .. }));
    // A video codec on the audio track.
    let mut b = good.clone();
    b[tracks_offset + 1] = 2;
    reseal(&mut b);
    assert!(matches!(open_bytes(b), Error::BadTrack { track: 0, .. }));
    // Second track claiming more frames than the index holds.
    let mut b = good.clone();
    let at = tracks_offset + TRACK_LEN + 28;
    b[at..at + 4].copy_from_slice(&50u32.to_le_bytes());
    reseal(&mut b);
    assert!(matches!(open_bytes(b), Error::BadTrack { track: 1, .. }));
    // Extra bytes after the index.
    let mut b = good.clone();
    b.extend_from_slice(&[0; 8]);
    assert!(matches!(open_bytes(b), Error::BadHeader(_)));
}

#[test]
fn writer_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.pack");
    let mut w = Writer::create(&path).unwrap();
    let v = w.add_track(video()).unwrap();
    assert!(w.add_track(video()).is_err(), "duplicate name");
    let mut long = audio();
    long.name = "x".repeat(32);
    assert!(w.add_track(long).is_err());
    assert!(
        w.push_frame(v, &[1], 0, 3000, false).is_err(),
        "must start with a key frame"
    );
    w.push_frame(v, &[1], 0, 3000, true).unwrap();
    assert!(w.push_frame(v, &[1], 1000, 3000, false).is_err(), "overlap");
    assert!(w.push_frame(v, &[], 3000, 3000, false).is_err(), "empty");
    assert!(
        w.push_frame(7, &[1], 3000, 3000, false).is_err(),
        "no such track"
    );
    // Loop is 9000 ticks but frames end at 3000.
    assert!(matches!(w.finish(), Err(Error::InvalidInput(_))));
    assert!(!path.exists());
    assert!(!dir.path().join("w.pack.tmp").exists());
}

#[test]
fn writer_rejects_mismatched_loops() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::create(dir.path().join("m.pack")).unwrap();
    let mut a = audio();
    a.loop_duration = 960;
    let a = w.add_track(a).unwrap();
    let v = w.add_track(video()).unwrap();
    w.push_frame(a, &[1], 0, 960, true).unwrap();
    for i in 0..3 {
        w.push_frame(v, &[1], i * 3000, 3000, true).unwrap();
    }
    let e = w.finish().unwrap_err();
    assert!(e.to_string().contains("loops after"), "{e}");
}

#[test]
fn dropped_writer_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.pack");
    let mut w = Writer::create(&path).unwrap();
    let a = w.add_track(audio()).unwrap();
    w.push_frame(a, &[1], 0, 960, true).unwrap();
    assert!(dir.path().join("d.pack.tmp").exists());
    drop(w);
    assert!(!dir.path().join("d.pack.tmp").exists());
    assert!(!path.exists());
}

#[test]
fn missing_file_is_io_error() {
    let e = Reader::open("/nonexistent/dir/x.pack").unwrap_err();
    assert!(matches!(e, Error::Io(_)));
}

/// Every frame of every track, copied out, with its timing.
fn all_frames(r: &Reader) -> Vec<(Vec<u8>, u64, u32, bool)> {
    (0..r.tracks().len())
        .flat_map(|t| {
            r.frames(t)
                .map(|f| (f.data.to_vec(), f.pts, f.duration, f.key))
        })
        .collect()
}

/// Regression: a memory-mapped pack killed `synth-replay run` with SIGBUS
/// (exit 135, results lost) when the file was truncated or overwritten while
/// it ran. The reader now owns its bytes; the file changing has no effect.
#[test]
fn pack_truncated_or_overwritten_after_open_reads_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let r = Reader::open(&path).unwrap();
    let before = all_frames(&r);
    let bytes_before: Vec<Bytes> = (0..r.frame_count(1))
        .map(|i| r.frame_bytes(1, i).unwrap())
        .collect();
    // `truncate -s 1000 PACK`, then `cp other PACK`: both in place, same inode.
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(1000).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 1000);
    let other = vec![0xee; 9000];
    std::fs::write(&path, &other).unwrap();
    f.set_len(0).unwrap();
    assert_eq!(all_frames(&r), before);
    for (i, b) in bytes_before.iter().enumerate() {
        assert_eq!(b, &r.frame_bytes(1, i).unwrap());
    }
    assert!(r.frame(0, 4).unwrap().data.iter().all(|&x| x == 5));
}

/// Regression: a directory as pack said "No such device (os error 19)".
#[test]
fn pack_path_that_is_a_directory_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let e = Reader::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotAFile {
                kind: "a directory",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    assert!(msg.ends_with("is a directory, not a regular file"), "{msg}");
    assert!(!msg.contains('\n'));
}

/// Regression: `/dev/zero` as pack read until memory ran out.
#[test]
fn pack_path_that_is_a_device_is_refused_without_reading() {
    let e = Reader::open("/dev/zero").unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotAFile {
                kind: "a character device",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "/dev/zero is a character device, not a regular file"
    );
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// The error of `open` on a fresh FIFO that no writer ever opens: if the
/// open blocked, the thread running it would never answer.
fn error_on_a_fifo(open: fn(&std::path::Path) -> Result<(), Error>) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("p.pack");
    mkfifo(&fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(open(&fifo)).unwrap());
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("opening a FIFO returns")
        .unwrap_err()
}

/// Regression: a FIFO as pack hung in `open` (waiting for a writer).
#[test]
fn pack_path_that_is_a_fifo_is_refused_without_blocking() {
    let e = error_on_a_fifo(|p| Reader::open(p).map(|_| ()));
    assert!(matches!(e, Error::NotAFile { kind: "a FIFO", .. }), "{e}");
}

/// Regression: the pack's path was checked, then opened, so a path swapped
/// for a FIFO in between still blocked the open. The open itself
/// (`open_regular`, no check before it) returns at once on a FIFO and
/// refuses what it opened.
#[test]
fn pack_open_of_a_fifo_swapped_in_after_the_check_does_not_block() {
    let e = error_on_a_fifo(|p| super::reader::open_regular(p).map(|_| ()));
    assert!(matches!(e, Error::NotAFile { kind: "a FIFO", .. }), "{e}");
}

/// Regression: an unbounded input (a file growing while it is read, a
/// device) could exhaust memory. The read stops one byte past the limit.
#[test]
fn pack_reads_are_bounded_by_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir);
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(super::reader::read_bounded(&path, len).is_ok());
    let e = super::reader::read_bounded(&path, len - 1).unwrap_err();
    assert!(
        matches!(e, Error::TooLarge { limit, .. } if limit == len - 1),
        "{e}"
    );
    assert!(e.to_string().contains(&format!("{} bytes", len - 1)), "{e}");
    // An endless stream (what a growing file or /dev/zero looks like to read).
    let mut buf = Vec::new();
    let e = super::reader::read_limited(std::io::repeat(0), &path, 1 << 20, &mut buf).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert_eq!(buf.len(), (1 << 20) + 1);
    // The real limit is in the message of a sparse file over it.
    let big = dir.path().join("big.pack");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_LEN + 1)
        .unwrap();
    let e = Reader::open(&big).unwrap_err();
    assert!(e.to_string().contains(&MAX_LEN.to_string()), "{e}");
}

/// Regression: `pts + duration` was unchecked in the reader: a panic in debug
/// builds, and in release a wrap that let an invalid pack through.
#[test]
fn index_pts_plus_duration_overflow_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(&dir)).unwrap();
    let index_offset = u64_at(&good, 40) as usize;
    // Last audio frame: pts near u64::MAX, so pts + 960 wraps to 0.
    let pts_at = index_offset + 4 * ENTRY_LEN + 16;
    let e = open_bytes(patched(&good, pts_at, &(u64::MAX - 959).to_le_bytes()));
    assert_bad_index(&e, (0, 4), "overflows");
}

/// Asserts `e` is a `BadIndex` of (track, frame) whose message holds `needle`.
fn assert_bad_index(e: &Error, at: (usize, usize), needle: &str) {
    assert!(
        matches!(e, Error::BadIndex { track, frame, .. } if (*track, *frame) == at),
        "{e}"
    );
    assert!(e.to_string().contains(needle), "{e}");
}

/// Regression: the header's `loop_duration_us` was never checked against the
/// tracks; a pack whose tracks loop after another time was accepted.
#[test]
fn header_loop_duration_must_match_the_tracks() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(&dir)).unwrap();
    assert_eq!(u64_at(&good, 72), 100_000);
    for (us, ok) in [
        (100_001u64, true),
        (99_999, true),
        (100_002, false),
        (10_000_000, false),
        (0, false),
    ] {
        match Reader::from_bytes(Bytes::from(patched(&good, 72, &us.to_le_bytes()))) {
            Ok(_) => assert!(ok, "{us} µs accepted"),
            Err(e) => {
                assert!(!ok, "{us} µs refused: {e}");
                assert!(
                    matches!(e, Error::LoopMismatch { track: 0, track_us: 100_000, header_us } if header_us == us),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn writer_rejects_pts_that_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::create(dir.path().join("o.pack")).unwrap();
    let a = w.add_track(audio()).unwrap();
    let e = w.push_frame(a, &[1], u64::MAX - 10, 960, true).unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
}

/// Regression: `synth-encode build -o /dev/null` as root replaced the device
/// node with a regular file (the pack is renamed over its output path).
#[test]
fn writer_refuses_an_output_that_is_not_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.pack");
    mkfifo(&fifo);
    let sub = dir.path().join("sub.pack");
    std::fs::create_dir(&sub).unwrap();
    let link = dir.path().join("link.pack");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    for (path, kind) in [(&fifo, "a FIFO"), (&sub, "a directory"), (&link, "a FIFO")] {
        let e = Writer::create(path).err().expect("refused");
        assert!(
            matches!(&e, Error::OutputNotAFile { kind: k, .. } if *k == kind),
            "{}: {e}",
            path.display()
        );
        assert!(e.to_string().contains("refusing to replace it"), "{e}");
    }
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::metadata(&sub).unwrap().is_dir());
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["fifo.pack", "link.pack", "sub.pack"],
        "no .tmp left"
    );
    // A stale temporary that is a FIFO would block the open: refused too.
    let out = dir.path().join("x.pack");
    mkfifo(&dir.path().join("x.pack.tmp"));
    assert!(matches!(
        Writer::create(&out).err(),
        Some(Error::OutputNotAFile { kind: "a FIFO", .. })
    ));
}

#[test]
fn writer_temporary_file_is_beside_the_target_and_replaces_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pack");
    std::fs::write(&path, b"old").unwrap();
    let stale = dir.path().join("r.pack.tmp");
    std::fs::write(&stale, b"stale").unwrap();
    let mut w = Writer::create(&path).unwrap();
    // The only new entry is the temporary, in the target's own directory.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["r.pack", "r.pack.tmp"]);
    let a = w.add_track(Track::opus("a", 32_000, 960)).unwrap();
    w.push_frame(a, &[1], 0, 960, true).unwrap();
    w.finish().unwrap();
    assert!(!stale.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(Reader::open(&path).unwrap().frame_count(0), 1);
}

/// A pack with two video renditions of 4 frames, keys at `a` and `b`.
fn two_renditions(dir: &tempfile::TempDir, a: [bool; 4], b: [bool; 4]) -> Reader {
    let path = dir.path().join("two.pack");
    let mut w = Writer::create(&path).unwrap();
    let hi = w
        .add_track(Track::vp9("video-64x36", (64, 36), 30, 100_000, 4 * 3000))
        .unwrap();
    let lo = w
        .add_track(Track::vp9("video-32x18", (32, 18), 30, 50_000, 4 * 3000))
        .unwrap();
    for i in 0..4 {
        w.push_frame(hi, &[1; 20], i as u64 * 3000, 3000, a[i])
            .unwrap();
        w.push_frame(lo, &[2; 10], i as u64 * 3000, 3000, b[i])
            .unwrap();
    }
    w.finish().unwrap();
    Reader::open(&path).unwrap()
}

#[test]
fn keyframe_alignment_across_renditions() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [true, false, true, false];
    let r = two_renditions(&dir, keys, keys);
    assert!(r.keyframes_aligned());
    assert_eq!(r.keyframe_mismatch(), None);
    // A key frame the other rendition lacks: not aligned, and it says which.
    let r = two_renditions(&dir, keys, [true, true, false, false]);
    assert!(!r.keyframes_aligned());
    assert_eq!(r.keyframe_mismatch(), Some((0, 1)));
    // One video track: trivially aligned.
    let path = sample(&dir);
    assert!(Reader::open(&path).unwrap().keyframes_aligned());
}

/// A version-2 pack: two voices and a silence track, a rendition with two
/// variants, a second rendition, and a screen track with its own key frames.
fn meeting(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("m.pack");
    let mut w = Writer::create(&path).unwrap();
    let loop_audio = 4 * 960;
    let loop_video = 4 * 1800;
    let voice0 = w
        .add_track(Track::opus("audio-opus", 32_000, loop_audio))
        .unwrap();
    let hi0 = w
        .add_track(Track::vp9("video-64x36", (64, 36), 50, 100_000, loop_video))
        .unwrap();
    let lo = w
        .add_track(Track::vp9("video-32x18", (32, 18), 50, 50_000, loop_video))
        .unwrap();
    let voice1 = w
        .add_track(Track::opus("audio-opus-v1", 32_000, loop_audio).with_variant(1))
        .unwrap();
    let hi1 = w
        .add_track(Track::vp9("video-64x36-v1", (64, 36), 50, 100_000, loop_video).with_variant(1))
        .unwrap();
    let silence = w
        .add_track(Track::opus("audio-silence", 32_000, loop_audio).with_role(Role::Silence))
        .unwrap();
    let screen = w
        .add_track(
            Track::vp9("screen-128x72", (128, 72), 50, 30_000, loop_video).with_role(Role::Screen),
        )
        .unwrap();
    let talk = [true, true, false, true];
    for i in 0..4u64 {
        for (t, voice) in [(voice0, talk[i as usize]), (voice1, !talk[i as usize])] {
            let flags = FrameFlags { key: true, voice };
            w.push_frame_flags(t, &[i as u8 + 1; 9], i * 960, 960, flags)
                .unwrap();
        }
        w.push_frame_flags(
            silence,
            &[0xf8; 3],
            i * 960,
            960,
            FrameFlags {
                key: true,
                voice: false,
            },
        )
        .unwrap();
        for t in [hi0, lo, hi1] {
            w.push_frame(t, &[t as u8; 12], i * 1800, 1800, i % 2 == 0)
                .unwrap();
        }
        w.push_frame(screen, &[7; 30], i * 1800, 1800, i != 2)
            .unwrap();
    }
    w.finish().unwrap();
    path
}

#[test]
fn version_2_round_trips_roles_variants_and_voice() {
    let dir = tempfile::tempdir().unwrap();
    let r = Reader::open(meeting(&dir)).unwrap();
    assert_eq!(r.version(), 2);
    let t = |name: &str| r.track_by_name(name).unwrap();
    let (v0, v1, silence, screen) = (
        t("audio-opus"),
        t("audio-opus-v1"),
        t("audio-silence"),
        t("screen-128x72"),
    );
    assert_eq!(
        (r.tracks()[v1].role, r.tracks()[v1].variant),
        (Role::Main, 1)
    );
    assert_eq!(r.tracks()[silence].role, Role::Silence);
    assert_eq!(r.tracks()[screen].role, Role::Screen);
    assert_eq!(r.tracks()[t("video-64x36-v1")].variant, 1);
    let voice = |track| r.frames(track).map(|f| f.voice).collect::<Vec<_>>();
    assert_eq!(voice(v0), [true, true, false, true]);
    assert_eq!(voice(v1), [false, false, true, false]);
    assert_eq!(voice(silence), [false; 4]);
    assert_eq!(voice(t("video-64x36")), [false; 4]);
    assert_eq!(r.keyframes(screen), &[0, 1, 3]);
}

#[test]
fn variant_helpers_group_renditions_and_voices() {
    let dir = tempfile::tempdir().unwrap();
    let r = Reader::open(meeting(&dir)).unwrap();
    let t = |name: &str| r.track_by_name(name).unwrap();
    let (hi0, hi1, lo) = (t("video-64x36"), t("video-64x36-v1"), t("video-32x18"));
    assert_eq!(r.variants(hi0), [hi0, hi1]);
    assert_eq!(r.variants(hi1), [hi0, hi1], "from any variant");
    assert_eq!(r.variants(lo), [lo]);
    let (a0, a1) = (t("audio-opus"), t("audio-opus-v1"));
    assert_eq!(r.variants(a1), [a0, a1], "the silence track is not a voice");
    assert_eq!(r.variants(99), Vec::<usize>::new());
    assert_eq!(
        (0..5).map(|k| r.variant_of(a0, k)).collect::<Vec<_>>(),
        [a0, a1, a0, a1, a0]
    );
    assert_eq!(r.variant_of(lo, 3), lo);
    assert_eq!(r.variant_of(99, 3), 99);
    assert_eq!(r.first_track_with(TrackKind::Audio, Role::Main), Some(a0));
    assert_eq!(
        r.first_track_with(TrackKind::Audio, Role::Silence),
        Some(t("audio-silence"))
    );
    assert_eq!(
        r.first_track_with(TrackKind::Video, Role::Screen),
        Some(t("screen-128x72"))
    );
    assert_eq!(r.first_track_with(TrackKind::Audio, Role::Screen), None);
    assert_eq!(r.first_track(TrackKind::Video), Some(hi0));
    assert_eq!(r.variant_count(TrackKind::Audio, Role::Main), 2);
    assert_eq!(r.variant_count(TrackKind::Video, Role::Main), 2);
    assert_eq!(r.variant_count(TrackKind::Video, Role::Screen), 1);
    assert_eq!(r.variant_count(TrackKind::Video, Role::Silence), 0);
}

#[test]
fn screen_tracks_do_not_count_in_keyframe_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let r = Reader::open(meeting(&dir)).unwrap();
    // The screen track's key frames (0, 1, 3) differ from the cameras' (0, 2).
    assert_eq!(r.keyframe_mismatch(), None);
    assert!(r.keyframes_aligned());
}

/// `good` with the header's version set to 1 (and resealed).
fn as_version_1(good: &[u8]) -> Vec<u8> {
    patched(good, 8, &1u32.to_le_bytes())
}

#[test]
fn version_1_packs_still_open_as_main_tracks_with_voice_audio() {
    let dir = tempfile::tempdir().unwrap();
    // A pack as version 1 wrote it: only the key flag, reserved bytes zero.
    let path = dir.path().join("v1.pack");
    let mut w = Writer::create(&path).unwrap();
    let a = w.add_track(audio()).unwrap();
    let v = w.add_track(video()).unwrap();
    for i in 0..5u64 {
        w.push_frame_flags(
            a,
            &[1; 5],
            i * 960,
            960,
            FrameFlags {
                key: true,
                voice: false,
            },
        )
        .unwrap();
    }
    for i in 0..3u64 {
        w.push_frame(v, &[2; 5], i * 3000, 3000, i == 0).unwrap();
    }
    w.finish().unwrap();
    let good = std::fs::read(&path).unwrap();
    let tracks_offset = u64_at(&good, 32) as usize;
    let mut b = as_version_1(&good);
    // Reserved bytes in version 1 (now variant and role) are ignored there.
    b[tracks_offset + 3] = 5;
    b[tracks_offset + 72] = 9;
    reseal(&mut b);
    let r = Reader::from_bytes(Bytes::from(b)).unwrap();
    assert_eq!(r.version(), 1);
    for t in r.tracks() {
        assert_eq!((t.role, t.variant), (Role::Main, 0), "{}", t.name);
    }
    assert!(
        r.frames(a).all(|f| f.voice),
        "version 1 had no VAD: all voice"
    );
    assert!(r.frames(v).all(|f| !f.voice));
    assert_eq!(r.variant_count(TrackKind::Audio, Role::Main), 1);
    assert_eq!(r.first_track_with(TrackKind::Audio, Role::Silence), None);
    // The voice bit did not exist in version 1: refused there.
    let e = open_bytes(as_version_1(&std::fs::read(sample(&dir)).unwrap()));
    assert_bad_index(&e, (0, 0), "unknown flag bits 0x2 for version 1");
}

#[test]
fn unknown_roles_flags_and_misplaced_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(sample(&dir)).unwrap();
    let tracks_offset = u64_at(&good, 32) as usize;
    let index_offset = u64_at(&good, 40) as usize;
    let one_line = |e: &Error| assert!(!e.to_string().contains('\n'), "{e}");
    let cases: [(usize, u8, &str); 4] = [
        (tracks_offset + 72, 3, "corrupt track 0: unknown role 3"),
        (
            tracks_offset + 72,
            1,
            "corrupt track 0: role screen on an audio track",
        ),
        (
            tracks_offset + TRACK_LEN + 72,
            2,
            "corrupt track 1: role silence on a video track",
        ),
        (
            index_offset + 12,
            4,
            "track 0 frame 0: unknown flag bits 0x4 for version 2",
        ),
    ];
    for (at, byte, message) in cases {
        let e = open_bytes(patched(&good, at, &[byte]));
        one_line(&e);
        assert!(e.to_string().contains(message), "{e}");
    }
    // The voice bit on a video frame (track 1's first entry is the 6th).
    let e = open_bytes(patched(&good, index_offset + 5 * ENTRY_LEN + 12, &[3]));
    assert_bad_index(&e, (1, 0), "voice flag on a video frame");
}

#[test]
fn writer_refuses_misplaced_roles_and_voice_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writer::create(dir.path().join("x.pack")).unwrap();
    let e = w.add_track(audio().with_role(Role::Screen)).unwrap_err();
    assert!(
        e.to_string().contains("role screen on an audio track"),
        "{e}"
    );
    let e = w.add_track(video().with_role(Role::Silence)).unwrap_err();
    assert!(
        e.to_string().contains("role silence on a video track"),
        "{e}"
    );
    let v = w.add_track(video()).unwrap();
    let s = w
        .add_track(Track::opus("audio-silence", 32_000, 4800).with_role(Role::Silence))
        .unwrap();
    let voice = FrameFlags {
        key: true,
        voice: true,
    };
    for t in [v, s] {
        let e = w.push_frame_flags(t, &[1], 0, 960, voice).unwrap_err();
        assert!(
            e.to_string().contains("voice flag is for main audio"),
            "{e}"
        );
    }
    // push_frame says nothing of voice: silence stays silent.
    w.push_frame(s, &[1], 0, 960, true).unwrap();
}

/// The sample pack with a source recorded for its audio track only.
fn with_sources(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("s.pack");
    let mut w = Writer::create(&path).unwrap();
    let a = w.add_track(audio()).unwrap();
    let v = w.add_track(video()).unwrap();
    w.set_source(
        a,
        Source {
            origin: Origin::Copied,
            from: "clip.ogg (Ogg stream 7, Opus) é".into(),
        },
    )
    .unwrap();
    for i in 0..5u64 {
        w.push_frame(a, &[i as u8 + 1; 17], i * 960, 960, true)
            .unwrap();
    }
    w.push_frame(v, &[0x80; 100], 0, 9000, true).unwrap();
    w.finish().unwrap();
    path
}

#[test]
fn sources_round_trip_and_packs_without_them_have_none() {
    let dir = tempfile::tempdir().unwrap();
    let r = Reader::open(with_sources(&dir)).unwrap();
    let source = r.source(0).unwrap();
    assert_eq!(source.origin, Origin::Copied);
    assert_eq!(source.from, "clip.ogg (Ogg stream 7, Opus) é");
    assert_eq!(r.source(1), None, "no source said for the video track");
    assert_eq!(r.source(9), None);
    assert_eq!(r.frame(0, 4).unwrap().data, &[5u8; 17]);
    // A pack with no source at all has no table: header bytes 88..100 stay zero.
    let plain = std::fs::read(sample(&dir)).unwrap();
    assert!(plain[88..100].iter().all(|&b| b == 0));
    let r = Reader::open(sample(&dir)).unwrap();
    assert!((0..2).all(|t| r.source(t).is_none()));
    let mut w = Writer::create(dir.path().join("x.pack")).unwrap();
    w.add_track(audio()).unwrap();
    let long = Source {
        origin: Origin::Encoded,
        from: "x".repeat(SOURCE_TEXT_MAX + 1),
    };
    assert!(matches!(w.set_source(0, long), Err(Error::InvalidInput(_))));
    assert!(matches!(
        w.set_source(
            3,
            Source {
                origin: Origin::Encoded,
                from: String::new()
            }
        ),
        Err(Error::InvalidInput(_))
    ));
}

/// A reader from before the source table ignored header bytes 88..128 and
/// any payload byte no frame points at: such a reader sees the frames of a
/// pack with a table as a pack without one, so the table needs no new version.
#[test]
fn a_source_table_is_invisible_to_a_reader_that_ignores_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(with_sources(&dir)).unwrap();
    let offset = u64_at(&good, 88);
    let len = u32::from_le_bytes(good[96..100].try_into().unwrap());
    assert!(offset >= 4096 && offset % 16 == 0 && len > 0);
    let payload_end = u64_at(&good, 48) + u64_at(&good, 56);
    assert!(
        offset + len as u64 <= payload_end,
        "inside the payload area"
    );
    // What the old reader saw: the header's pointer as reserved zeros.
    let old_view = patched(&good, 88, &[0; 12]);
    let r = Reader::from_bytes(Bytes::from(old_view)).unwrap();
    assert_eq!(r.source(0), None);
    assert_eq!(
        all_frames(&r),
        all_frames(&Reader::open(with_sources(&dir)).unwrap())
    );
}

#[test]
fn corrupt_source_tables_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(with_sources(&dir)).unwrap();
    let offset = u64_at(&good, 88) as usize;
    let len = u32::from_le_bytes(good[96..100].try_into().unwrap());
    let bad = |b: Vec<u8>, needle: &str| {
        let e = open_bytes(b);
        assert!(
            matches!(e, Error::BadSources(_)) && e.to_string().contains(needle),
            "{e}"
        );
    };
    // Pointing outside the payload area, or into the header.
    bad(
        patched(&good, 88, &1u64.to_le_bytes()),
        "outside the payload area",
    );
    bad(
        patched(&good, 96, &(u32::MAX).to_le_bytes()),
        "outside the payload area",
    );
    // An unknown origin, text past the table, a byte too many.
    bad(patched(&good, offset, &[9]), "unknown origin 9");
    bad(
        patched(&good, offset + 2, &[0xff, 0x7f]),
        "runs past the table",
    );
    bad(patched(&good, 96, &(len + 1).to_le_bytes()), "left after");
    bad(patched(&good, 96, &(len - 1).to_le_bytes()), "ends inside");
    // Text that is not UTF-8.
    bad(patched(&good, offset + 4, &[0xff]), "not UTF-8");
    // A version-1 pack's reserved bytes are not read.
    let mut v1 = patched(&good, 8, &1u32.to_le_bytes());
    v1[88..96].copy_from_slice(&1u64.to_le_bytes());
    reseal(&mut v1);
    let e = open_bytes(v1);
    assert!(!matches!(e, Error::BadSources(_)), "{e}");
}
