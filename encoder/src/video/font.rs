//! A 5×7 bitmap font for the burned-in frame counter, variant labels and
//! slides, and a reader for the counter.
//!
//! It has digits, capital letters (lower case is drawn as capitals) and some
//! punctuation. Each font pixel is drawn as a `scale`×`scale` square. The
//! counter's digits are drawn white on a black box ([`draw_digits`]); any text
//! in any colour with [`draw_text`]. [`read_digits`] reads them back from a (decoded) luma plane by
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

/// Capital letters A to Z, as [`DIGITS`].
const LETTERS: [[u8; GLYPH_H as usize]; 26] = [
    [
        0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
    ], // A
    [
        0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
    ], // B
    [
        0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
    ], // C
    [
        0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100,
    ], // D
    [
        0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
    ], // E
    [
        0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
    ], // F
    [
        0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
    ], // G
    [
        0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
    ], // H
    [
        0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
    ], // I
    [
        0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
    ], // J
    [
        0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
    ], // K
    [
        0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
    ], // L
    [
        0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
    ], // M
    [
        0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
    ], // N
    [
        0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
    ], // O
    [
        0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
    ], // P
    [
        0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
    ], // Q
    [
        0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
    ], // R
    [
        0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
    ], // S
    [
        0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
    ], // T
    [
        0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
    ], // U
    [
        0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
    ], // V
    [
        0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
    ], // W
    [
        0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
    ], // X
    [
        0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100,
    ], // Y
    [
        0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
    ], // Z
];

/// Punctuation, as [`DIGITS`]; `*` is a bullet.
const PUNCTUATION: [(char, [u8; GLYPH_H as usize]); 16] = [
    ('.', [0, 0, 0, 0, 0, 0b01100, 0b01100]),
    (',', [0, 0, 0, 0, 0b01100, 0b00100, 0b01000]),
    ('-', [0, 0, 0, 0b11111, 0, 0, 0]),
    (':', [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0]),
    (
        '!',
        [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0, 0b00100],
    ),
    (
        '?',
        [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100],
    ),
    ('\'', [0b01100, 0b00100, 0b01000, 0, 0, 0, 0]),
    ('/', [0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0]),
    (
        '%',
        [
            0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011,
        ],
    ),
    (
        '(',
        [
            0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010,
        ],
    ),
    (
        ')',
        [
            0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000,
        ],
    ),
    (
        '&',
        [
            0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101,
        ],
    ),
    ('+', [0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0]),
    ('*', [0, 0, 0b01110, 0b01110, 0b01110, 0, 0]),
    ('=', [0, 0, 0b11111, 0, 0b11111, 0, 0]),
    (
        '#',
        [
            0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010,
        ],
    ),
];

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

/// The glyph of `c`, if the font has one (lower case gives the capital).
pub fn glyph(c: char) -> Option<&'static [u8; GLYPH_H as usize]> {
    let c = c.to_ascii_uppercase();
    match c {
        '0'..='9' => Some(&DIGITS[c as usize - '0' as usize]),
        'A'..='Z' => Some(&LETTERS[c as usize - 'A' as usize]),
        _ => PUNCTUATION.iter().find(|(p, _)| *p == c).map(|(_, g)| g),
    }
}

/// Width in pixels of `text` drawn at `scale` (no trailing gap).
pub fn text_width(text: &str, scale: u32) -> u32 {
    (text.chars().count() as u32 * ADVANCE).saturating_sub(1) * scale
}

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
    let only_digits: String = digits
        .chars()
        .map(|c| if c.is_ascii_digit() { c } else { ' ' })
        .collect();
    draw_text(img, x, y, scale, &only_digits, WHITE);
}

/// Draws `text` in `colour` with its top-left corner at (`x`, `y`), on what
/// is there. Anything outside the image is clipped; characters the font does
/// not have are drawn as blanks.
pub fn draw_text(img: &mut RgbImage, x: u32, y: u32, scale: u32, text: &str, colour: Rgb<u8>) {
    for (k, c) in text.chars().enumerate() {
        let Some(glyph) = glyph(c) else {
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
                        colour,
                    );
                }
            }
        }
    }
}

/// Fills the `w`×`h` rectangle at (`x`, `y`) with `colour`, clipped to the image.
pub fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, colour: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    let (x0, x1) = (x.min(iw) as usize, x.saturating_add(w).min(iw) as usize);
    let stride = iw as usize * 3;
    let buf: &mut [u8] = img;
    for row in y.min(ih)..y.saturating_add(h).min(ih) {
        let at = row as usize * stride;
        for px in buf[at + 3 * x0..at + 3 * x1].chunks_exact_mut(3) {
            px.copy_from_slice(&colour.0);
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
    fn letters_and_punctuation_are_distinct_and_lower_case_is_upper() {
        let chars: Vec<char> = ('0'..='9')
            .chain('A'..='Z')
            .chain(PUNCTUATION.iter().map(|(c, _)| *c))
            .collect();
        for (i, a) in chars.iter().enumerate() {
            for b in &chars[i + 1..] {
                assert_ne!(glyph(*a), glyph(*b), "{a} and {b}");
            }
        }
        assert_eq!(glyph('p'), glyph('P'));
        assert_eq!(glyph('~'), None);
        assert_eq!(text_width("P12", 2), (3 * ADVANCE - 1) * 2);
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
