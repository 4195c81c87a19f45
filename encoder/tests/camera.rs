//! The real 1920x1080 camera frames from upstream encode to every rendition.

use synth_common::pack::Reader;
use synth_encoder::video::images;

use crate::support::{assert_bitrates, build_pack, decode_video, small_options, upstream_media};

#[test]
fn upstream_camera_frames_encode_to_every_rendition() {
    let media = upstream_media();
    let files = images::list(&media).expect("../shared/upstream-media holds the camera JPEGs");
    assert_eq!(files.len(), 6);
    assert!(files[0].ends_with("output_120.jpg") && files[5].ends_with("output_125.jpg"));

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
    let first = images::decode(&images::list(&upstream_media()).unwrap()[0]).unwrap();
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
    for k in 0..3 {
        assert!(
            (got[k] - centre[k]).abs() < 1.5,
            "channel {k}: {got:?} vs centre {centre:?}"
        );
    }
}
