//! I420 pictures (8-bit 4:2:0 planar) and the RGB → YUV conversion.
//!
//! Conversion uses BT.601 in studio range (Y 16–235, Cb/Cr 16–240), the matrix
//! VP9 profile 0 streams are assumed to carry and that the encoder signals
//! (`VP9E_SET_COLOR_SPACE` = BT.601). Integer coefficients are the usual 8-bit
//! fixed-point ones (×256), as in libyuv. Each chroma sample is computed from
//! the average of its 2×2 block of RGB pixels.

use image::RgbImage;

use crate::noise::Rng;

/// An 8-bit 4:2:0 planar picture: the Y plane, then U, then V, in one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl I420 {
    /// A black picture. `width` and `height` must be even and non-zero.
    pub fn new(width: u32, height: u32) -> I420 {
        assert!(
            width > 0 && height > 0 && width % 2 == 0 && height % 2 == 0,
            "I420 needs even, non-zero sizes, got {width}x{height}"
        );
        let luma = (width * height) as usize;
        let mut data = vec![16u8; luma + luma / 2];
        data[luma..].fill(128);
        I420 {
            width,
            height,
            data,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// All three planes, contiguous (what `vpx_img_wrap` expects).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// All three planes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    fn luma_len(&self) -> usize {
        (self.width * self.height) as usize
    }

    /// The Y plane (stride = width).
    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    /// The U (Cb) plane (stride = width / 2).
    pub fn u(&self) -> &[u8] {
        let l = self.luma_len();
        &self.data[l..l + l / 4]
    }

    /// The V (Cr) plane (stride = width / 2).
    pub fn v(&self) -> &[u8] {
        let l = self.luma_len();
        &self.data[l + l / 4..]
    }

    /// The three planes, mutable.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let l = self.luma_len();
        let (y, uv) = self.data.split_at_mut(l);
        let (u, v) = uv.split_at_mut(l / 4);
        (y, u, v)
    }

    /// Converts `rgb` (same size as this picture) into this picture.
    pub fn fill_from_rgb(&mut self, rgb: &RgbImage) {
        assert_eq!(
            (rgb.width(), rgb.height()),
            (self.width, self.height),
            "RGB and I420 sizes differ"
        );
        let w = self.width as usize;
        let src = rgb.as_raw();
        let (y_plane, u_plane, v_plane) = self.planes_mut();
        for (row, ys) in y_plane.chunks_exact_mut(w).enumerate() {
            let line = &src[row * w * 3..(row + 1) * w * 3];
            for (y, px) in ys.iter_mut().zip(line.chunks_exact(3)) {
                *y = luma(px[0], px[1], px[2]);
            }
        }
        let cw = w / 2;
        for (crow, (us, vs)) in u_plane
            .chunks_exact_mut(cw)
            .zip(v_plane.chunks_exact_mut(cw))
            .enumerate()
        {
            let top = &src[2 * crow * w * 3..(2 * crow + 1) * w * 3];
            let bottom = &src[(2 * crow + 1) * w * 3..(2 * crow + 2) * w * 3];
            for (i, (u, v)) in us.iter_mut().zip(vs.iter_mut()).enumerate() {
                let at = i * 6;
                let avg = |c: usize| {
                    (top[at + c] as u32
                        + top[at + 3 + c] as u32
                        + bottom[at + c] as u32
                        + bottom[at + 3 + c] as u32
                        + 2)
                        / 4
                };
                let (r, g, b) = (avg(0) as i32, avg(1) as i32, avg(2) as i32);
                *u = chroma_u(r, g, b);
                *v = chroma_v(r, g, b);
            }
        }
    }

    /// A new picture converted from `rgb`.
    pub fn from_rgb(rgb: &RgbImage) -> I420 {
        let mut out = I420::new(rgb.width(), rgb.height());
        out.fill_from_rgb(rgb);
        out
    }

    /// Adds uniform luma noise of ±`amplitude` levels, like a camera sensor's.
    pub fn add_grain(&mut self, rng: &mut Rng, amplitude: u8) {
        if amplitude == 0 {
            return;
        }
        let span = 2 * amplitude as u64 + 1;
        let l = self.luma_len();
        for chunk in self.data[..l].chunks_mut(8) {
            // One 64-bit draw feeds eight pixels: cheap enough to run on every frame.
            let mut bits = rng.next_u64();
            for y in chunk {
                let n = (bits & 0xff) * span / 256;
                bits >>= 8;
                *y = (*y as i32 + n as i32 - amplitude as i32).clamp(16, 235) as u8;
            }
        }
    }
}

/// Converts an 8-bit 4:2:0 picture given as planes (chroma planes
/// `ceil(width/2)` × `ceil(height/2)`, so odd sizes work) to RGB with BT.601:
/// studio range (Y 16–235), or full range (0–255) when `full_range`.
pub fn planes_to_rgb(
    (y, u, v): (&[u8], &[u8], &[u8]),
    width: u32,
    height: u32,
    full_range: bool,
) -> RgbImage {
    let (w, cw) = (width as usize, width.div_ceil(2) as usize);
    let mut out = RgbImage::new(width, height);
    for (row, line) in out.chunks_exact_mut(w * 3).enumerate() {
        let ys = &y[row * w..][..w];
        let us = &u[row / 2 * cw..][..cw];
        let vs = &v[row / 2 * cw..][..cw];
        for (x, px) in line.chunks_exact_mut(3).enumerate() {
            let (c, d, e) = (ys[x] as i32, us[x / 2] as i32 - 128, vs[x / 2] as i32 - 128);
            // ×256 fixed point: studio range stretches Y by 255/219 and
            // chroma by 255/224; full range takes them as they are.
            let (c, k) = if full_range {
                (256 * c, [359, 88, 183, 454])
            } else {
                (298 * (c - 16), [409, 100, 208, 516])
            };
            let clamp = |v: i32| ((v + 128) >> 8).clamp(0, 255) as u8;
            px[0] = clamp(c + k[0] * e);
            px[1] = clamp(c - k[1] * d - k[2] * e);
            px[2] = clamp(c + k[3] * d);
        }
    }
    out
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    (((66 * r as i32 + 129 * g as i32 + 25 * b as i32 + 128) >> 8) + 16) as u8
}

fn chroma_u(r: i32, g: i32, b: i32) -> u8 {
    (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8
}

fn chroma_v(r: i32, g: i32, b: i32) -> u8 {
    (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(r: u8, g: u8, b: u8) -> I420 {
        I420::from_rgb(&RgbImage::from_pixel(4, 2, image::Rgb([r, g, b])))
    }

    fn yuv(p: &I420) -> (u8, u8, u8) {
        (p.y()[0], p.u()[0], p.v()[0])
    }

    #[test]
    fn bt601_studio_range_reference_colours() {
        // BT.601 limited range; real-valued results rounded, within 1 (green's
        // Y is 144.55, which the 8-bit fixed-point matrix floors to 144, as libyuv does).
        assert_eq!(yuv(&solid(0, 0, 0)), (16, 128, 128));
        assert_eq!(yuv(&solid(255, 255, 255)), (235, 128, 128));
        assert_eq!(yuv(&solid(255, 0, 0)), (82, 90, 240));
        assert_eq!(yuv(&solid(0, 255, 0)), (144, 54, 34));
        assert_eq!(yuv(&solid(0, 0, 255)), (41, 240, 110));
    }

    #[test]
    fn planes_convert_back_to_the_reference_colours() {
        for rgb in [
            [0, 0, 0],
            [255, 255, 255],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [90, 140, 200],
        ] {
            let p = solid(rgb[0], rgb[1], rgb[2]);
            let back = planes_to_rgb((p.y(), p.u(), p.v()), 4, 2, false);
            for (c, (&want, &got)) in rgb.iter().zip(&back.get_pixel(3, 1).0).enumerate() {
                assert!(
                    (want as i32 - got as i32).abs() <= 3,
                    "{rgb:?} channel {c}: {got}"
                );
            }
        }
        // Full range: Y 0 is black and 255 white; an odd size reads its last
        // column's chroma from the rounded-up plane.
        let img = planes_to_rgb(
            (&[0, 255, 0, 255, 0, 255], &[128, 128], &[128, 128]),
            3,
            2,
            true,
        );
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(2, 1).0, [255, 255, 255]);
    }

    #[test]
    fn chroma_averages_each_2x2_block() {
        let mut rgb = RgbImage::new(2, 2);
        rgb.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        rgb.put_pixel(1, 0, image::Rgb([255, 0, 0]));
        let p = I420::from_rgb(&rgb);
        assert_eq!(p.y(), &[82, 82, 16, 16]);
        // Half red, half black: r = 128.
        assert_eq!(
            (p.u()[0], p.v()[0]),
            (chroma_u(128, 0, 0), chroma_v(128, 0, 0))
        );
        assert_eq!(p.data().len(), 6);
    }

    #[test]
    fn grain_stays_in_range_and_is_centred() {
        let mut p = solid(128, 128, 128);
        let before = p.y()[0] as i32;
        let mut big = I420::new(64, 64);
        big.data_mut()[..64 * 64].fill(before as u8);
        big.add_grain(&mut Rng::new(3), 4);
        let ys = big.y();
        assert!(ys.iter().all(|&y| (y as i32 - before).abs() <= 4));
        let mean = ys.iter().map(|&y| y as f64).sum::<f64>() / ys.len() as f64;
        assert!((mean - before as f64).abs() < 0.3, "mean {mean}");
        assert!(ys.iter().any(|&y| y as i32 != before));
        // Chroma is untouched.
        p.add_grain(&mut Rng::new(3), 4);
        assert_eq!(p.u()[0], 128);
    }
}
