//! Camera-like 1920x1080 JPEGs encode to every rendition.
//!
//! The frames are made here, by [`camera_frames`]: a webcam shot of a person in
//! a room — lighting gradients, a bright window and a bookshelf near the edges,
//! a wood-grain desk, soft-edged shapes that move between frames, vignetting
//! and sensor noise — written as JPEGs, so the test needs no files beside the
//! repository and still feeds the encoder what a camera gives it: a noisy,
//! detailed, compressed picture in motion, not a flat pattern.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{Rgb, RgbImage};
use synth_common::pack::Reader;
use synth_encoder::noise::Rng;
use synth_encoder::video::images;

use crate::support::{assert_bitrates, build_pack, decode_video, small_options};

/// Frames of the shot, and their names: natural order differs from plain
/// string order (`frame8` .. `frame13`), as with numbered camera dumps.
const FRAMES: u32 = 6;
const FIRST: u32 = 8;
const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

/// The directory of camera-like JPEGs, made once per test run.
fn camera_frames() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("camera-frames");
        // Left over from an older run, a stale frame would change the set.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for k in 0..FRAMES {
            let path = dir.join(format!("frame{}.jpg", FIRST + k));
            let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90)
                .encode_image(&scene(k))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        }
        dir
    })
}

/// 1 inside, 0 outside, with a soft edge of about `soft` in the units of `d`
/// (a signed distance, negative inside): an optical blur, not a hard step.
fn coverage(d: f32, soft: f32) -> f32 {
    (0.5 - d / soft).clamp(0.0, 1.0)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

/// Frame `k` of the shot. The person sways to the right (head 9 px a frame,
/// shoulders 5 px), the rest of the room holds still under new sensor noise.
fn scene(k: u32) -> RgbImage {
    let mut rng = Rng::new(0xca3e_5a11 + k as u64);
    // Books: (shelf, left edge, width, gap above, colour), the same in every frame.
    let mut shelf = Rng::new(0xb00c);
    let mut books = Vec::new();
    for row in 0..4 {
        let mut x = 1570.0;
        while x < 1860.0 {
            let w = shelf.range(14.0, 42.0) as f32;
            let c = [
                shelf.range(90.0, 240.0) as f32,
                shelf.range(70.0, 230.0) as f32,
                shelf.range(60.0, 220.0) as f32,
            ];
            let top = shelf.range(0.0, 50.0) as f32;
            books.push((row, x, w.min(1860.0 - x), top, c));
            x += w + 2.0;
        }
    }
    let (head_x, body_x) = (930.0 + 9.0 * k as f32, 940.0 + 5.0 * k as f32);
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        // The wall: lit from the window on the left, warmer and darker to the right.
        let light = 1.0 - 0.45 * (fx / WIDTH as f32) - 0.15 * (fy / HEIGHT as f32);
        let mut c = [188.0 * light, 174.0 * light, 150.0 * light + 8.0];
        // The window: bright sky behind dark mullions.
        let win =
            coverage((fx - 220.0).abs() - 200.0, 3.0) * coverage((fy - 420.0).abs() - 320.0, 3.0);
        if win > 0.0 {
            let bar = coverage((fx - 220.0).abs() - 7.0, 2.0)
                .max(coverage((fy - 420.0).abs() - 7.0, 2.0));
            let sky = mix([246.0, 247.0, 250.0], [200.0, 216.0, 238.0], fy / 740.0);
            c = mix(c, mix(sky, [70.0, 62.0, 55.0], bar), win);
        }
        // The bookshelf, painted white: four shelves of books of many colours.
        if (1560..1880).contains(&x) && (100..900).contains(&y) {
            let row = ((fy - 100.0) / 200.0) as i32;
            let in_row = fy - 100.0 - row as f32 * 200.0;
            c = [226.0, 222.0, 212.0];
            if in_row > 20.0 {
                for &(r, bx, bw, top, bc) in &books {
                    if r == row && fx >= bx && fx < bx + bw && in_row > 20.0 + top {
                        // A spine is lighter in the middle, like a rounded back.
                        let round = 1.0 - 0.35 * ((fx - bx) / bw - 0.5).powi(2) * 4.0;
                        c = bc.map(|v| v * round);
                    }
                }
            }
        }
        // The desk: wood with a wavy grain.
        if y >= 900 {
            let grain = (fy * 0.9 + 6.0 * (fx * 0.013).sin()).sin() * 0.5 + 0.5;
            c = mix([120.0, 80.0, 48.0], [150.0, 104.0, 66.0], grain);
        }
        // Shoulders and shirt, then the head with its hair; lit from the left.
        let side = ((fx - head_x) / 400.0).clamp(-1.0, 1.0);
        let body = ((fx - body_x) / 380.0).powi(2) + ((fy - 1130.0) / 470.0).powi(2);
        let torso = coverage((body.sqrt() - 1.0) * 380.0, 6.0);
        if torso > 0.0 {
            let fold = 6.0 * ((fx - body_x) * 0.05).sin();
            let shirt = [52.0 + fold, 74.0 + fold, 118.0 + fold].map(|v| v * (1.0 - 0.3 * side));
            c = mix(c, shirt, torso);
        }
        let face = ((fx - head_x) / 150.0).powi(2) + ((fy - 470.0) / 195.0).powi(2);
        let skin = coverage((face.sqrt() - 1.0) * 150.0, 4.0);
        if skin > 0.0 {
            let shade = 1.0 - 0.35 * side.max(-0.3) - 0.1 * ((fy - 470.0) / 195.0);
            let mut s = [214.0 * shade, 166.0 * shade, 136.0 * shade];
            // Eyes and mouth: small dark features that move with the head.
            for (ex, ey, rx, ry) in [
                (-55.0, -20.0, 18.0, 9.0),
                (55.0, -20.0, 18.0, 9.0),
                (0.0, 85.0, 45.0, 10.0),
            ] {
                let e = ((fx - head_x - ex) / rx).powi(2) + ((fy - 470.0 - ey) / ry).powi(2);
                s = mix(s, [60.0, 40.0, 38.0], coverage((e.sqrt() - 1.0) * rx, 3.0));
            }
            let hair = coverage(fy - (350.0 + 0.0015 * (fx - head_x).powi(2)), 5.0);
            s = mix(s, [42.0, 30.0, 24.0], hair);
            c = mix(c, s, skin);
        }
        // Lens vignetting, then sensor noise (luma and a little chroma).
        let (dx, dy) = (
            (fx / WIDTH as f32 - 0.5) * 2.0,
            (fy / HEIGHT as f32 - 0.5) * 2.0,
        );
        let vignette = 1.0 - 0.22 * (dx * dx + dy * dy) / 2.0;
        let luma_noise =
            (rng.range(-1.0, 1.0) + rng.range(-1.0, 1.0) + rng.range(-1.0, 1.0)) as f32 * 5.0;
        Rgb(c.map(|v| {
            let chroma = rng.range(-2.0, 2.0) as f32;
            (v * vignette + luma_noise + chroma)
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
}

#[test]
fn camera_frames_encode_to_every_rendition() {
    let media = camera_frames();
    let files = images::list(media).expect("the camera-like JPEGs were written");
    assert_eq!(files.len(), FRAMES as usize);
    // Natural order: frame8 .. frame13, although "frame10" < "frame8" as strings.
    assert!(files[0].ends_with("frame8.jpg") && files[5].ends_with("frame13.jpg"));

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("camera.pack");
    let renditions = ["1280x720@1200", "640x360@500", "320x180@150"];
    let options = small_options(&output, "tone", media.to_str().unwrap(), &renditions, 2);
    let (summary, notes) = build_pack(&options);
    assert!(
        notes.iter().any(|n| n.contains("6 JPEGs (1920x1080")),
        "notes: {notes:?}"
    );
    let reader = Reader::open(&output).unwrap();
    for r in renditions {
        let (size, _) = r.split_once('@').unwrap();
        let name = format!("video-{size}");
        let id = reader
            .track_by_name(&name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(reader.frame_count(id), 60, "{name}");
        // Every frame decodes at its size; the counter is burned in over the camera picture.
        let counters = decode_video(&reader, id);
        assert_eq!(counters[0].as_deref(), Some("00000"), "{name}");
        assert_eq!(counters[59].as_deref(), Some("00059"), "{name}");
    }
    assert_bitrates(&summary, "camera");
}

#[test]
fn camera_frames_are_cropped_to_cover_other_aspect_ratios() {
    let first = images::decode(&images::list(camera_frames()).unwrap()[0]).unwrap();
    assert_eq!(first.dimensions(), (1920, 1080));
    // 4:3 from 16:9: full height, the sides cut.
    let square = images::cover(&first, 320, 240);
    assert_eq!(square.dimensions(), (320, 240));
    // Its mean colour is that of the centre 1440x1080 of the original, not of the whole frame.
    let mean = |img: &image::RgbImage, x0: u32, x1: u32| -> [f64; 3] {
        let mut sum = [0f64; 3];
        let mut n = 0f64;
        for y in 0..img.height() {
            for x in x0..x1 {
                let p = img.get_pixel(x, y).0;
                for k in 0..3 {
                    sum[k] += p[k] as f64;
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n)
    };
    let got = mean(&square, 0, 320);
    let centre = mean(&first, 240, 1680);
    // The window and the bookshelf fill the cut-off sides, so keeping them
    // (squeezing the whole frame, or cropping off centre) would show in the mean.
    for (what, x0, x1) in [("whole", 0, 1920), ("left", 0, 1440), ("right", 480, 1920)] {
        let wrong = mean(&first, x0, x1);
        assert!(
            (0..3).any(|k| (wrong[k] - centre[k]).abs() > 4.0),
            "the {what} frame must differ from the centre: {wrong:?} vs {centre:?}"
        );
    }
    for k in 0..3 {
        assert!(
            (got[k] - centre[k]).abs() < 1.5,
            "channel {k}: {got:?} vs centre {centre:?}"
        );
    }
}

#[test]
fn camera_variants_tint_and_label_the_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("variants.pack");
    let media = camera_frames().to_str().unwrap();
    let options = synth_encoder::build::BuildOptions {
        variants: 2,
        ..small_options(&output, "tone", media, &["320x180@150"], 1)
    };
    build_pack(&options);
    let reader = Reader::open(&output).unwrap();
    let ids = reader.variants(reader.track_by_name("video-320x180").unwrap());
    assert_eq!(ids.len(), 2);
    assert_eq!(reader.tracks()[ids[1]].name, "video-320x180-v1");
    // Both show the camera picture with its counter; the tint moves the mean chroma.
    let mut means = Vec::new();
    for &id in &ids {
        assert!(decode_video(&reader, id).iter().all(Option::is_some));
        let mut decoder = synth_encoder::vp9::Decoder::new().unwrap();
        let picture = decoder
            .decode_picture(reader.frame(id, 0).unwrap().data)
            .unwrap()
            .unwrap();
        let plane = &picture.data()[320 * 180..];
        means.push(plane.iter().map(|&v| v as f64).sum::<f64>() / plane.len() as f64);
    }
    assert!(
        (means[0] - means[1]).abs() > 3.0,
        "chroma means {means:?}: the variants look alike"
    );
}
