//! `--capture DIR`: a user's screen-share frames, real VP9 from libvpx, come
//! out as an IVF file that holds exactly what was sent, in order, with the
//! size read from the key frame, and that libvpx (and ffprobe, when on PATH)
//! decodes.

use std::path::Path;
use std::process::Command;

use synth_common::ivf;
use synth_common::wire::{media_type, MediaPrefix};
use synth_encoder::vp9::{Decoder, Encoder, EncoderConfig};
use synth_encoder::yuv::I420;
use synth_relay::RelayConfig;

use super::relay::{media_frame, within, Target};

const W: u32 = 64;
const H: u32 = 48;

/// `n` VP9 frames of a changing picture, the first a key frame.
fn vp9_frames(n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut enc = Encoder::new(EncoderConfig::new(W, H, 10, 200)).unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let mut pic = I420::new(W, H);
        for (j, px) in pic.data_mut().iter_mut().enumerate() {
            *px = (j * 3 + i * 40) as u8;
        }
        for f in enc.encode(&pic, i == 0).unwrap() {
            out.push((f.key, f.data.to_vec()));
        }
    }
    for f in enc.flush().unwrap() {
        out.push((f.key, f.data.to_vec()));
    }
    assert!(out[0].0, "the first frame is a key frame");
    out
}

/// What ffprobe says of `path`: codec, width, height and frames decoded;
/// `None` without ffprobe (a failure under CI, which must have it).
fn ffprobe(path: &Path) -> Option<String> {
    let out = match Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
    {
        Ok(out) => out,
        Err(e) if std::env::var_os("CI").is_some() => panic!("ffprobe is needed under CI: {e}"),
        Err(_) => {
            eprintln!("ffprobe not on PATH: decode checked with libvpx only");
            return None;
        }
    };
    assert!(out.status.success(), "ffprobe failed: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test]
async fn screen_frames_are_captured_as_a_decodable_ivf_file() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture");
    let mut t = Target::relay(RelayConfig {
        capture: Some(capture.clone()),
        ..RelayConfig::default()
    })
    .await;
    let a = t.join("cap-a", "room-cap").await;
    let _b = t.join("cap-b", "room-cap").await;
    let frames = vp9_frames(6);
    let mut pre = MediaPrefix::new("cap-a");
    for (seq, (key, data)) in frames.iter().enumerate() {
        a.send(&media_frame(
            &mut pre,
            media_type::SCREEN,
            seq as u64,
            *key,
            data,
        ))
        .await;
    }
    let n = frames.len() as u64;
    t.stats_when(|s| {
        s.per_user
            .get("cap-a")
            .is_some_and(|u| u.screen_packets == n)
    })
    .await;
    let relay = t.relay.take().unwrap();
    within("relay shutdown", relay.shutdown()).await;

    let path = capture.join("cap-a-screen.ivf");
    let bytes = std::fs::read(&path).unwrap();
    let (h, got) = ivf::frames(&bytes).unwrap();
    assert_eq!(&h.fourcc, b"VP90");
    assert_eq!((u32::from(h.width), u32::from(h.height)), (W, H));
    assert_eq!((h.rate, h.scale, h.frames), (1000, 1, frames.len() as u32));
    let got: Vec<_> = got.map(Result::unwrap).collect();
    assert_eq!(got.len(), frames.len());
    let mut dec = Decoder::new().unwrap();
    for ((_, data), (_, sent)) in got.iter().zip(&frames) {
        assert_eq!(data, sent, "frames as sent, in order");
        assert_eq!(dec.decode(data).unwrap(), Some((W, H)));
    }
    let pts: Vec<u64> = got.iter().map(|(p, _)| *p).collect();
    assert!(pts.windows(2).all(|w| w[0] < w[1]), "{pts:?}");
    assert!(!capture.join("cap-a-video.ivf").exists(), "no video sent");
    assert!(!capture.join("cap-b-screen.ivf").exists());

    // ffprobe decodes it, and also without a size in the header: the VP9
    // bitstream carries it.
    let want = format!("vp9,{W},{H},{}", frames.len());
    if let Some(said) = ffprobe(&path) {
        assert_eq!(said, want);
        let mut sizeless = bytes.clone();
        sizeless[12..16].fill(0);
        let p0 = dir.path().join("sizeless.ivf");
        std::fs::write(&p0, sizeless).unwrap();
        assert_eq!(ffprobe(&p0).unwrap(), want);
    }
}
