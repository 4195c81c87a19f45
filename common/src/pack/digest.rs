//! Frame digests: whether a received payload is, byte for byte, one of the pack's frames.
//!
//! Every client sends frames straight from the same pack, so a receiver that
//! holds the pack can check each payload it gets against the set of frames
//! the pack contains; a payload that is not there was corrupted or cut on the
//! way. [`FrameDigests::new`] hashes every frame once, with XXH3-64 (a fast
//! non-cryptographic hash: tens of GB/s, so a 2 KB frame costs well under a
//! microsecond); [`FrameDigests::contains`] hashes the payload and looks the
//! hash up.
//!
//! The digests are kept as sorted, deduplicated `Vec<u64>`s, one for audio
//! and one for video, and looked up by binary search: a pack has a few
//! thousand frames at most, and many of them are identical (silence in audio,
//! static scenes in video), so the sets are small and a lookup is a dozen
//! comparisons in a compact array, with no allocation. A corrupted frame that
//! happens to hash to a pack frame's digest would be accepted; with 64-bit
//! digests and a few thousand frames the chance is about 1 in 10^15 per
//! payload.

use xxhash_rust::xxh3::xxh3_64;

use super::{Reader, TrackKind};

/// The digests of every frame of a pack, audio and video apart.
#[derive(Debug, Clone, Default)]
pub struct FrameDigests {
    audio: Vec<u64>,
    video: Vec<u64>,
}

impl FrameDigests {
    /// Hashes every frame of every track of `reader`.
    pub fn new(reader: &Reader) -> FrameDigests {
        let mut d = FrameDigests::default();
        for (track, info) in reader.tracks().iter().enumerate() {
            let set = d.set_mut(info.kind);
            set.extend(reader.frames(track).map(|f| xxh3_64(f.data)));
        }
        for set in [&mut d.audio, &mut d.video] {
            set.sort_unstable();
            set.dedup();
        }
        d
    }

    /// Whether `payload` is exactly one of the pack's frames of `kind`.
    #[inline]
    pub fn contains(&self, kind: TrackKind, payload: &[u8]) -> bool {
        self.set(kind).binary_search(&xxh3_64(payload)).is_ok()
    }

    /// The number of distinct frames of `kind` (identical frames count once).
    pub fn distinct(&self, kind: TrackKind) -> usize {
        self.set(kind).len()
    }

    fn set(&self, kind: TrackKind) -> &[u64] {
        match kind {
            TrackKind::Audio => &self.audio,
            TrackKind::Video => &self.video,
        }
    }

    fn set_mut(&mut self, kind: TrackKind) -> &mut Vec<u64> {
        match kind {
            TrackKind::Audio => &mut self.audio,
            TrackKind::Video => &mut self.video,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::{Track, Writer};

    /// 10 audio frames, the first six of them identical (silence), and two
    /// video renditions of 6 frames each (200 ms): frame sizes and bytes differ.
    fn pack(dir: &tempfile::TempDir) -> Reader {
        let path = dir.path().join("d.pack");
        let mut w = Writer::create(&path).unwrap();
        let a = w
            .add_track(Track::opus("audio-opus", 32_000, 10 * 960))
            .unwrap();
        let v = [
            w.add_track(Track::vp9("video-64x36", (64, 36), 30, 1, 6 * 3000))
                .unwrap(),
            w.add_track(Track::vp9("video-32x18", (32, 18), 30, 1, 6 * 3000))
                .unwrap(),
        ];
        for i in 0..10u64 {
            let fill = if i < 6 { 0xF8 } else { i as u8 };
            w.push_frame(a, &[fill; 100], i * 960, 960, true).unwrap();
        }
        for (r, &t) in v.iter().enumerate() {
            for i in 0..6u64 {
                let frame: Vec<u8> = (0..2000 + 37 * i as usize + r)
                    .map(|b| (b as u64 * 31 + i * 7 + r as u64) as u8)
                    .collect();
                w.push_frame(t, &frame, i * 3000, 3000, i == 0).unwrap();
            }
        }
        w.finish().unwrap();
        Reader::open(&path).unwrap()
    }

    fn all_frames(r: &Reader, kind: TrackKind) -> Vec<Vec<u8>> {
        (0..r.tracks().len())
            .filter(|&t| r.tracks()[t].kind == kind)
            .flat_map(|t| r.frames(t).map(|f| f.data.to_vec()).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn every_frame_is_contained_and_identical_frames_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let r = pack(&dir);
        let d = FrameDigests::new(&r);
        for kind in [TrackKind::Audio, TrackKind::Video] {
            for f in all_frames(&r, kind) {
                assert!(d.contains(kind, &f), "{kind:?} frame of {} bytes", f.len());
            }
        }
        assert_eq!(
            d.distinct(TrackKind::Audio),
            5,
            "six silent frames count once"
        );
        assert_eq!(d.distinct(TrackKind::Video), 12);
    }

    #[test]
    fn a_flipped_byte_or_a_missing_byte_is_not_contained() {
        let dir = tempfile::tempdir().unwrap();
        let r = pack(&dir);
        let d = FrameDigests::new(&r);
        for kind in [TrackKind::Audio, TrackKind::Video] {
            for f in all_frames(&r, kind) {
                for at in [0, f.len() / 2, f.len() - 1] {
                    let mut bad = f.clone();
                    bad[at] ^= 0x01;
                    assert!(!d.contains(kind, &bad), "{kind:?}: byte {at} flipped");
                }
                assert!(!d.contains(kind, &f[..f.len() - 1]), "{kind:?}: truncated");
                assert!(!d.contains(kind, &f[1..]), "{kind:?}: first byte lost");
            }
        }
        assert!(!d.contains(TrackKind::Video, &[]));
    }

    #[test]
    fn audio_is_not_accepted_as_video_nor_video_as_audio() {
        let dir = tempfile::tempdir().unwrap();
        let r = pack(&dir);
        let d = FrameDigests::new(&r);
        for f in all_frames(&r, TrackKind::Audio) {
            assert!(!d.contains(TrackKind::Video, &f));
        }
        for f in all_frames(&r, TrackKind::Video) {
            assert!(!d.contains(TrackKind::Audio, &f));
        }
    }
}
