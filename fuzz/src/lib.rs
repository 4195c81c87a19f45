//! What the fuzz targets share: exercising a pack that opened.

use synth_common::pack::Reader;

/// Reads everything a replaying client would of a pack that opened: every
/// frame of every track, key-frame lookups and bitrates. Panics on nothing.
pub fn walk(r: &Reader) {
    for t in 0..r.tracks().len() {
        let n = r.frame_count(t);
        for i in 0..n {
            let f = r.frame(t, i).expect("every indexed frame is readable");
            assert!(!f.data.is_empty(), "frames are at least one byte");
            let b = r.frame_bytes(t, i).expect("and as Bytes");
            assert_eq!(b.len(), f.data.len());
            let _ = r.next_keyframe(t, i);
        }
        let _ = r.bitrate_bps(t);
        let _ = r.payload_bytes(t);
        assert!(r.frame(t, n).is_none());
    }
}
