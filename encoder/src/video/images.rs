//! A directory of JPEGs as a video source.
//!
//! Files ending in `.jpg` or `.jpeg` (any case) are taken in natural order —
//! digit runs compare as numbers, so `img2.jpg` comes before `img10.jpg`. Each
//! image is scaled to *cover* the rendition (scaled until both sides are at
//! least the rendition's, keeping the aspect ratio) and then centre-cropped to
//! the rendition size: no black bars, nothing stretched, and the edges of an
//! image of another aspect ratio are cut off. Shrinking averages the source
//! area under each output pixel; enlarging a small image is bilinear.
//!
//! The images play as a sequence: each is shown for `hold` frames, forward
//! then backward (ping-pong: 1 2 3 … n n-1 … 2, then again), until the loop
//! is full. Ping-pong keeps consecutive frames similar even where the
//! sequence turns, as a camera's would be, and a directory holding a few
//! consecutive camera frames (like the ones `encoder/tests/camera.rs` draws) plays as
//! real motion with the default `hold` of 1.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::RgbImage;

use crate::Error;

/// Lists the JPEGs of `dir` in natural order.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_err = |source| Error::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_jpeg = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
        if is_jpeg && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::NoImages(dir.to_path_buf()));
    }
    files.sort_by(|a, b| {
        let name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        natural_cmp(&name(a), &name(b))
    });
    Ok(files)
}

/// Decodes one JPEG to RGB.
pub fn decode(path: &Path) -> Result<RgbImage, Error> {
    let bytes = fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let image = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).map_err(
        |source| Error::Image {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(image.into_rgb8())
}

/// Compares file names so that digit runs compare by value: `a2` < `a10`.
/// Equal values with different zero padding (`a02`, `a2`) fall back to plain order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (n, rest_x) = digit_run(x);
                let (m, rest_y) = digit_run(y);
                let (n, m) = (trim_zeros(n), trim_zeros(m));
                let ord = n.len().cmp(&m.len()).then_with(|| n.cmp(m));
                if ord != Ordering::Equal {
                    return ord;
                }
                (x, y) = (rest_x, rest_y);
            }
            (Some(c), Some(d)) => {
                let ord = c.cmp(d);
                if ord != Ordering::Equal {
                    return ord;
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

fn digit_run(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    s.split_at(end)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| c != b'0').unwrap_or(s.len());
    &s[start..]
}

/// Scales `img` to cover `width`×`height` and crops the centre.
pub fn cover(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    // The largest centred region of the source with the target's aspect ratio.
    let (cw, ch) = if sw as u64 * height as u64 > sh as u64 * width as u64 {
        (
            ((sh as u64 * width as u64) / height as u64).max(1) as u32,
            sh,
        )
    } else {
        (
            sw,
            ((sw as u64 * height as u64) / width as u64).max(1) as u32,
        )
    };
    let (x0, y0) = ((sw - cw) / 2, (sh - ch) / 2);
    if cw >= width && ch >= height {
        return shrink(img, (x0, y0, cw, ch), width, height);
    }
    // Enlarging (a source smaller than the rendition) is rare: bilinear will do.
    let region = imageops::crop_imm(img, x0, y0, cw, ch).to_image();
    imageops::resize(&region, width, height, FilterType::Triangle)
}

/// Shrinks the `(x, y, w, h)` region of `img` to `width`×`height` by area
/// averaging: each output pixel is the mean of the source area it covers,
/// partly covered pixels weighted by their share. Exact for any ratio >= 1,
/// free of aliasing for photos, and much faster than a general filter.
fn shrink(img: &RgbImage, (x, y, w, h): (u32, u32, u32, u32), width: u32, height: u32) -> RgbImage {
    let cols = area_taps(w, width);
    let rows = area_taps(h, height);
    let src = img.as_raw();
    let stride = img.width() as usize * 3;
    // Horizontal pass over the region's rows, into f32.
    let mut wide = vec![0f32; h as usize * width as usize * 3];
    for (r, out) in wide.chunks_exact_mut(width as usize * 3).enumerate() {
        let line = &src[(y as usize + r) * stride + x as usize * 3..][..w as usize * 3];
        for (o, (start, weights)) in out.chunks_exact_mut(3).zip(&cols) {
            let mut acc = [0f32; 3];
            for (k, &wt) in weights.iter().enumerate() {
                let p = &line[(start + k) * 3..][..3];
                for c in 0..3 {
                    acc[c] += p[c] as f32 * wt;
                }
            }
            o.copy_from_slice(&acc);
        }
    }
    // Vertical pass into the output.
    let mut out = RgbImage::new(width, height);
    let row_len = width as usize * 3;
    for (line, (start, weights)) in out.chunks_exact_mut(row_len).zip(&rows) {
        let mut acc = vec![0f32; row_len];
        for (k, &wt) in weights.iter().enumerate() {
            let src_row = &wide[(start + k) * row_len..][..row_len];
            for (a, &v) in acc.iter_mut().zip(src_row) {
                *a += v * wt;
            }
        }
        for (o, a) in line.iter_mut().zip(&acc) {
            *o = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// For each of `dst` output samples, the first source sample it covers and the
/// weights (summing to 1) of the `src` samples under it.
fn area_taps(src: u32, dst: u32) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|o| {
            let (a, b) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).min(src as usize);
            let weights = (first..last)
                .map(|i| ((b.min(i as f64 + 1.0) - a.max(i as f64)) / scale) as f32)
                .collect();
            (first, weights)
        })
        .collect()
}

/// Which of `n` images frame `frame` shows when each is held `hold` frames, ping-pong.
pub fn sequence_index(frame: u32, n: usize, hold: u32) -> usize {
    if n <= 1 {
        return 0;
    }
    let period = 2 * n as u64 - 2;
    let k = (frame / hold.max(1)) as u64 % period;
    (if k < n as u64 { k } else { period - k }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn natural_order() {
        let mut names = vec![
            "img10.jpg",
            "img2.jpg",
            "img1.jpg",
            "IMG3.jpg",
            "img02.jpg",
            "a.jpg",
            "img.jpg",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            vec![
                "IMG3.jpg",
                "a.jpg",
                "img.jpg",
                "img1.jpg",
                "img02.jpg",
                "img2.jpg",
                "img10.jpg"
            ]
        );
        assert_eq!(
            natural_cmp("output_120.jpg", "output_99.jpg"),
            Ordering::Greater
        );
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn ping_pong_with_hold() {
        let seq: Vec<usize> = (0..10).map(|f| sequence_index(f, 4, 1)).collect();
        assert_eq!(seq, vec![0, 1, 2, 3, 2, 1, 0, 1, 2, 3]);
        let seq: Vec<usize> = (0..8).map(|f| sequence_index(f, 2, 2)).collect();
        assert_eq!(seq, vec![0, 0, 1, 1, 0, 0, 1, 1]);
        assert!((0..5).all(|f| sequence_index(f, 1, 3) == 0));
    }

    #[test]
    fn cover_crops_the_long_side_and_keeps_the_centre() {
        // 40x10 source: left quarter red, middle half green, right quarter blue.
        let src = RgbImage::from_fn(40, 10, |x, _| match x {
            0..=9 => Rgb([255, 0, 0]),
            10..=29 => Rgb([0, 255, 0]),
            _ => Rgb([0, 0, 255]),
        });
        // A square target keeps the middle 10x10: all green.
        let out = cover(&src, 10, 10);
        assert_eq!(out.dimensions(), (10, 10));
        assert!(out.pixels().all(|p| p.0 == [0, 255, 0]));
        // Upscaling a tall image to a wide target crops top and bottom.
        let tall = RgbImage::from_fn(4, 8, |_, y| {
            if !(2..6).contains(&y) {
                Rgb([0, 0, 0])
            } else {
                Rgb([200, 200, 200])
            }
        });
        let out = cover(&tall, 16, 8);
        assert_eq!(out.dimensions(), (16, 8));
        assert!(
            out.pixels().all(|p| p.0[0] > 150),
            "black bands must be cropped away"
        );
    }

    #[test]
    fn shrinking_averages_areas() {
        // A 3x2 source is cropped to 3x1 (the 2:1 target's aspect), then shrunk
        // to 2x1: the middle pixel is split half and half between the outputs.
        let src = RgbImage::from_fn(3, 2, |x, _| Rgb([[0, 90, 180][x as usize]; 3]));
        let out = cover(&src, 2, 1);
        assert_eq!(out.dimensions(), (2, 1));
        assert_eq!(out.get_pixel(0, 0).0[0], 30); // (0 + 0.5 * 90) / 1.5
        assert_eq!(out.get_pixel(1, 0).0[0], 150); // (0.5 * 90 + 180) / 1.5
        for taps in [area_taps(1920, 640), area_taps(1080, 1000), area_taps(7, 3)] {
            for (_, w) in &taps {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
        // A flat image stays flat.
        let flat = cover(
            &RgbImage::from_pixel(1920, 1080, Rgb([17, 99, 201])),
            640,
            360,
        );
        assert!(flat.pixels().all(|p| p.0 == [17, 99, 201]));
    }

    #[test]
    fn lists_jpegs_only_in_natural_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["f10.jpg", "f9.JPEG", "notes.txt", "f1.jpg"] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::create_dir(dir.path().join("sub.jpg")).unwrap();
        let names: Vec<String> = list(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["f1.jpg", "f9.JPEG", "f10.jpg"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(list(empty.path()), Err(Error::NoImages(_))));
        assert!(matches!(
            decode(&dir.path().join("f1.jpg")),
            Err(Error::Image { .. })
        ));
    }
}
