//! A 5×7 bitmap font for the burned-in frame counter, and a reader for it.
//!
//! Digits are drawn white on a black box, each font pixel as a `scale`×`scale`
//! square. [`read_digits`] reads them back from a (decoded) luma plane by
//! sampling the centre of every font pixel, which lets tests check that frame
//! `i` of a pack really shows `i`.

use image::{Rgb, RgbImage};

/// Glyph width in font pixels.
pub const GLYPH_W: u32 = 5;
/// Glyph height in font pixels.
pub const GLYPH_H: u32 = 7;
/// Advance from one glyph to the next, in font pixels.
pub const ADVANCE: u32 = GLYPH_W + 1;

/// Rows of each digit, top to bottom; bit 4 is the leftmost pixel.
const DIGITS: [[u8; GLYPH_H as usize]; 10] = [
    [
        0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
    ], // 0
    [
        0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
    ], // 1
    [
        0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
    ], // 2
    [
        0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
    ], // 3
    [
        0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
    ], // 4
    [
        0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
    ], // 5
    [
        0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
    ], // 6
    [
        0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
    ], // 7
    [
        0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
    ], // 8
    [
        0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
    ], // 9
];

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

/// Draws the decimal `digits` with their top-left corner at (`x`, `y`) on a
/// black box reaching `scale` pixels beyond the text. Anything outside the
/// image is clipped. Characters other than `0`–`9` are drawn as blanks.
pub fn draw_digits(img: &mut RgbImage, x: u32, y: u32, scale: u32, digits: &str) {
    let n = digits.chars().count() as u32;
    let box_w = n * ADVANCE * scale + scale;
    let box_h = (GLYPH_H + 2) * scale;
    fill(
        img,
        x.saturating_sub(scale),
        y.saturating_sub(scale),
        box_w + scale,
        box_h,
        BLACK,
    );
    for (k, c) in digits.chars().enumerate() {
        let Some(glyph) = c.to_digit(10).map(|d| &DIGITS[d as usize]) else {
            continue;
        };
        let gx = x + k as u32 * ADVANCE * scale;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH_W {
                if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                    fill(
                        img,
                        gx + col * scale,
                        y + row as u32 * scale,
                        scale,
                        scale,
                        WHITE,
                    );
                }
            }
        }
    }
}

fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    for yy in y.min(ih)..(y + h).min(ih) {
        for xx in x.min(iw)..(x + w).min(iw) {
            img.put_pixel(xx, yy, colour);
        }
    }
}

/// Reads `count` digits drawn by [`draw_digits`] at (`x`, `y`, `scale`) from a
/// luma plane of `width` pixels per row. Returns `None` if any glyph does not
/// match a digit exactly (after thresholding at mid-grey).
pub fn read_digits(
    luma: &[u8],
    width: u32,
    x: u32,
    y: u32,
    scale: u32,
    count: u32,
) -> Option<String> {
    let mut out = String::with_capacity(count as usize);
    for k in 0..count {
        let gx = x + k * ADVANCE * scale;
        let mut glyph = [0u8; GLYPH_H as usize];
        for (row, bits) in glyph.iter_mut().enumerate() {
            for col in 0..GLYPH_W {
                let px = gx + col * scale + scale / 2;
                let py = y + row as u32 * scale + scale / 2;
                let v = *luma.get((py * width + px) as usize)?;
                if v > 126 {
                    *bits |= 1 << (GLYPH_W - 1 - col);
                }
            }
        }
        let d = DIGITS.iter().position(|g| *g == glyph)?;
        out.push(char::from(b'0' + d as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yuv::I420;

    #[test]
    fn glyphs_are_distinct() {
        for (a, ga) in DIGITS.iter().enumerate() {
            for (b, gb) in DIGITS.iter().enumerate().skip(a + 1) {
                assert_ne!(ga, gb, "{a} and {b}");
            }
        }
    }

    #[test]
    fn drawn_digits_read_back_through_yuv() {
        for scale in [1, 2, 5] {
            let mut img = RgbImage::from_pixel(80 * scale, 12 * scale, Rgb([200, 30, 30]));
            draw_digits(&mut img, scale, scale, scale, "0123456789");
            let yuv = I420::from_rgb(&img);
            assert_eq!(
                read_digits(yuv.y(), img.width(), scale, scale, scale, 10).as_deref(),
                Some("0123456789"),
                "scale {scale}"
            );
        }
    }

    #[test]
    fn clips_at_the_edges_and_rejects_non_digits() {
        let mut img = RgbImage::new(8, 8);
        draw_digits(&mut img, 4, 4, 3, "88");
        let yuv = I420::from_rgb(&img);
        assert_eq!(read_digits(yuv.y(), 8, 4, 4, 3, 1), None);
        let blank = I420::new(64, 16);
        assert_eq!(read_digits(blank.y(), 64, 1, 1, 1, 2), None);
    }
}
