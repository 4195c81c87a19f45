//! Built-in moving test patterns.
//!
//! Each pattern moves continuously so the encoder sees real motion, and all
//! of them carry a bouncing ball, whose curved edges and changing direction a
//! motion search cannot predict perfectly (unlike a pure translation):
//!
//! - `bars`: 75 % colour bars on the top two thirds scrolling left (one
//!   screen width every 4 s) over a grey ramp scrolling right;
//! - `gradient`: three colour waves (one horizontal, one vertical, one
//!   diagonal) drifting at different speeds;
//! - `checkerboard`: squares of 1/8 of the height sliding diagonally.
//!
//! Positions depend only on the frame number and the frame rate.

use std::f64::consts::TAU;
use std::fmt;

use image::{Rgb, RgbImage};

/// Which built-in pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Scrolling colour bars.
    Bars,
    /// Drifting colour waves.
    Gradient,
    /// A sliding checkerboard.
    Checkerboard,
}

/// 75 % bars: white, yellow, cyan, green, magenta, red, blue.
const BARS: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

impl Pattern {
    /// Draws frame `index` at `fps` over the whole of `img`.
    pub fn draw(self, img: &mut RgbImage, index: u32, fps: u32) {
        let t = index as f64 / fps as f64;
        match self {
            Pattern::Bars => bars(img, t),
            Pattern::Gradient => gradient(img, t),
            Pattern::Checkerboard => checkerboard(img, t),
        }
        ball(img, t);
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pattern::Bars => "bars",
            Pattern::Gradient => "gradient",
            Pattern::Checkerboard => "checkerboard",
        })
    }
}

/// Copies a row of `w` RGB pixels to every row in `rows`.
fn fill_rows(img: &mut RgbImage, rows: std::ops::Range<u32>, row: &[u8]) {
    let stride = row.len();
    let buf: &mut [u8] = img;
    for y in rows {
        let at = y as usize * stride;
        buf[at..at + stride].copy_from_slice(row);
    }
}

fn bars(img: &mut RgbImage, t: f64) {
    let (w, h) = img.dimensions();
    let split = h * 2 / 3;
    let shift = (t * w as f64 / 4.0) as u32;
    let mut row = vec![0u8; w as usize * 3];
    for x in 0..w {
        let bar = ((x + shift) % w) as usize * BARS.len() / w as usize;
        row[x as usize * 3..x as usize * 3 + 3].copy_from_slice(&BARS[bar]);
    }
    fill_rows(img, 0..split, &row);
    for x in 0..w {
        let v = ((x + w - shift % w) % w * 255 / w) as u8;
        row[x as usize * 3..x as usize * 3 + 3].fill(v);
    }
    fill_rows(img, split..h, &row);
}

fn gradient(img: &mut RgbImage, t: f64) {
    let (w, h) = img.dimensions();
    let wave = |p: f64| (127.5 + 127.0 * (TAU * p).sin()) as u8;
    let red: Vec<u8> = (0..w)
        .map(|x| wave(x as f64 / w as f64 + t / 4.0))
        .collect();
    let green: Vec<u8> = (0..h)
        .map(|y| wave(y as f64 / h as f64 + t / 5.0))
        .collect();
    let blue: Vec<u8> = (0..w + h)
        .map(|d| wave(d as f64 / (w + h) as f64 - t / 3.0))
        .collect();
    for (y, line) in img.chunks_exact_mut(w as usize * 3).enumerate() {
        for (x, px) in line.chunks_exact_mut(3).enumerate() {
            px[0] = red[x];
            px[1] = green[y];
            px[2] = blue[x + y];
        }
    }
}

fn checkerboard(img: &mut RgbImage, t: f64) {
    let (w, h) = img.dimensions();
    let size = (h / 8).max(2);
    let dx = (t * size as f64 * 1.5) as u32;
    let dy = (t * size as f64) as u32;
    let light = [225, 225, 225];
    let dark = [40, 60, 150];
    for (y, line) in img.chunks_exact_mut(w as usize * 3).enumerate() {
        let row = (y as u32 + dy) / size;
        for (x, px) in line.chunks_exact_mut(3).enumerate() {
            let col = (x as u32 + dx) / size;
            px.copy_from_slice(if (row + col) % 2 == 0 { &light } else { &dark });
        }
    }
}

/// An orange ball on a Lissajous path.
fn ball(img: &mut RgbImage, t: f64) {
    let (w, h) = img.dimensions();
    let r = (h / 8).max(2) as f64;
    let cx = w as f64 / 2.0 + (w as f64 / 2.0 - r) * (TAU * t / 3.7).sin();
    let cy = h as f64 / 2.0 + (h as f64 / 2.0 - r) * (TAU * t / 2.3).sin();
    let y0 = (cy - r).max(0.0) as u32;
    let y1 = ((cy + r).ceil() as u32).min(h);
    let x0 = (cx - r).max(0.0) as u32;
    let x1 = ((cx + r).ceil() as u32).min(w);
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let d2 = dx * dx + dy * dy;
            if d2 <= r * r {
                // A little shading so the ball has texture, not a flat disc.
                let shade = 1.0 - 0.35 * (d2 / (r * r));
                img.put_pixel(
                    x,
                    y,
                    Rgb([
                        (250.0 * shade) as u8,
                        (140.0 * shade) as u8,
                        (20.0 * shade) as u8,
                    ]),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_moves_between_frames() {
        for p in [Pattern::Bars, Pattern::Gradient, Pattern::Checkerboard] {
            let mut a = RgbImage::new(320, 180);
            let mut b = RgbImage::new(320, 180);
            p.draw(&mut a, 10, 30);
            p.draw(&mut b, 11, 30);
            let changed = a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count();
            assert!(
                changed > 320 * 180 / 20,
                "{p}: only {changed} pixels changed"
            );
            let mut c = RgbImage::new(320, 180);
            p.draw(&mut c, 10, 30);
            assert_eq!(a, c, "{p} is not deterministic");
        }
    }

    #[test]
    fn bars_show_the_seven_colours() {
        let mut img = RgbImage::new(70, 30);
        Pattern::Bars.draw(&mut img, 0, 30);
        // Top row, at frame 0 no shift: bar k spans x in [10k, 10k+10).
        for (k, colour) in BARS.iter().enumerate() {
            assert_eq!(img.get_pixel(10 * k as u32 + 5, 0).0, *colour, "bar {k}");
        }
    }
}
