//! Video sources: JPEG directories and built-in patterns, rendered as I420 frames.
//!
//! A [`VideoSource`] (the `--video` argument) is loaded once into [`Footage`]
//! (each JPEG decoded and scaled straight to every rendition's size, so a long
//! directory of 1080p images never sits in memory at full size), and each
//! rendition gets its own [`Frames`], which renders frame `i` at its size:
//!
//! 1. the picture: a pattern ([`pattern`]) drawn at frame `i`, or the image
//!    that the ping-pong sequence shows at frame `i` ([`images`]), scaled to
//!    cover the rendition and centre-cropped once up front;
//! 2. for a variant ([`Frames::variant`]), a colour tint of its own and a large
//!    label, `P1`, `P2`, …, in the top-right corner ([`tint`], [`label_layout`]),
//!    so that participants sending different variants look different;
//! 3. the burned-in frame counter: the frame number in the loop, five digits,
//!    white on black in the top-left corner ([`font`], [`counter_layout`]);
//! 4. conversion to I420 with BT.601 ([`crate::yuv`]);
//! 5. a light luma grain of ±[`GRAIN`] levels, different on every frame, like
//!    a camera sensor's noise. Without it, flat patterns and held stills leave
//!    a CBR encoder nothing to spend its bits on, and the measured bitrate of
//!    the track would fall far below the target that the load test promises.
//!
//! The screen track's pictures are text slides ([`slides`]).

pub mod font;
pub mod images;
pub mod pattern;
pub mod slides;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use image::{Rgb, RgbImage};

use crate::noise::Rng;
use crate::yuv::I420;
use crate::Error;
pub use pattern::Pattern;

/// Amplitude of the luma grain, in 8-bit levels.
pub const GRAIN: u8 = 3;
/// Digits of the burned-in frame counter.
pub const COUNTER_DIGITS: u32 = 5;

/// Where the video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// A directory of JPEGs.
    Images(PathBuf),
    /// A built-in pattern.
    Pattern(Pattern),
}

impl FromStr for VideoSource {
    type Err = Error;

    /// `bars`, `gradient` and `checkerboard` name the patterns; anything else is
    /// a directory (write `./bars` for a directory named `bars`).
    fn from_str(s: &str) -> Result<VideoSource, Error> {
        Ok(match s {
            "bars" => VideoSource::Pattern(Pattern::Bars),
            "gradient" => VideoSource::Pattern(Pattern::Gradient),
            "checkerboard" => VideoSource::Pattern(Pattern::Checkerboard),
            "" => {
                return Err(Error::invalid(
                    "video source",
                    "empty (expected a JPEG directory, bars, gradient or checkerboard)",
                ))
            }
            dir => VideoSource::Images(PathBuf::from(dir)),
        })
    }
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Images(dir) => write!(f, "{}", dir.display()),
            VideoSource::Pattern(p) => write!(f, "{p}"),
        }
    }
}

/// A loaded video source, shared by all renditions.
#[derive(Debug, Clone)]
pub enum Footage {
    /// A built-in pattern.
    Pattern(Pattern),
    /// JPEGs in natural order, scaled to each requested size, each held `hold` frames.
    Images {
        /// The files, in play order.
        files: Vec<PathBuf>,
        /// Size of the first image as decoded.
        source_size: (u32, u32),
        /// For each requested (width, height), the scaled pictures in play order.
        scaled: Vec<((u32, u32), Vec<RgbImage>)>,
        /// Frames each picture is shown for.
        hold: u32,
    },
}

impl Footage {
    /// Loads `source` for renditions of the given (width, height) `sizes`; a JPEG
    /// directory is listed, decoded and scaled to every size, each image held `hold` frames.
    pub fn load(source: &VideoSource, hold: u32, sizes: &[(u32, u32)]) -> Result<Footage, Error> {
        let dir = match source {
            VideoSource::Pattern(p) => return Ok(Footage::Pattern(*p)),
            VideoSource::Images(dir) => dir,
        };
        if hold == 0 {
            return Err(Error::invalid("image hold", "must be at least 1 frame"));
        }
        let files = images::list(dir)?;
        // Decode and scale on all cores: a 1080p JPEG takes tens of milliseconds.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = files.len().div_ceil(threads);
        let load = |file: &PathBuf| -> Result<((u32, u32), Vec<RgbImage>), Error> {
            let full = images::decode(file)?;
            let scaled = sizes
                .iter()
                .map(|&(w, h)| images::cover(&full, w, h))
                .collect();
            Ok((full.dimensions(), scaled))
        };
        let loaded = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(per_thread)
                .map(|chunk| s.spawn(move || chunk.iter().map(load).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("JPEG decoding thread panicked"))
                .collect::<Result<Vec<_>, Error>>()
        })?;
        let source_size = loaded.first().map_or((0, 0), |(size, _)| *size);
        // Regroup from per-image to per-size.
        let mut scaled: Vec<((u32, u32), Vec<RgbImage>)> = sizes
            .iter()
            .map(|&size| (size, Vec::with_capacity(files.len())))
            .collect();
        for (_, per_size) in loaded {
            for (slot, picture) in scaled.iter_mut().zip(per_size) {
                slot.1.push(picture);
            }
        }
        Ok(Footage::Images {
            files,
            source_size,
            scaled,
            hold,
        })
    }

    /// One line for the user: what will be shown and how.
    pub fn describe(&self) -> String {
        match self {
            Footage::Pattern(p) => format!("pattern {p} with a bouncing ball and a frame counter"),
            Footage::Images {
                files,
                source_size: (w, h),
                hold,
                ..
            } => {
                let name = |f: Option<&PathBuf>| {
                    f.and_then(|f| f.file_name())
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                };
                format!(
                    "{} JPEGs ({w}x{h} first, {} .. {}), each held {hold} frame{}, ping-pong, scaled to cover and centre-cropped",
                    files.len(),
                    name(files.first()),
                    name(files.last()),
                    if *hold == 1 { "" } else { "s" },
                )
            }
        }
    }

    /// A frame renderer for one `width`×`height` rendition at `fps`. For JPEGs,
    /// the size must be one of those given to [`Footage::load`].
    pub fn frames(&self, width: u32, height: u32, fps: u32) -> Result<Frames, Error> {
        let content = match self {
            Footage::Pattern(p) => Content::Pattern(*p),
            Footage::Images { scaled, hold, .. } => {
                let pictures = scaled
                    .iter()
                    .find(|(size, _)| *size == (width, height))
                    .map(|(_, pictures)| pictures.clone())
                    .ok_or_else(|| {
                        Error::invalid("video size", format!("{width}x{height} was not loaded"))
                    })?;
                Content::Stills {
                    scaled: pictures,
                    hold: *hold,
                }
            }
        };
        Ok(Frames {
            content,
            fps,
            rgb: RgbImage::new(width, height),
            yuv: I420::new(width, height),
            rng: Rng::new(grain_seed(width, height, 0)),
            variant: None,
        })
    }
}

enum Content {
    Pattern(Pattern),
    Stills { scaled: Vec<RgbImage>, hold: u32 },
}

/// Renders the frames of one rendition.
pub struct Frames {
    content: Content,
    fps: u32,
    rgb: RgbImage,
    yuv: I420,
    rng: Rng,
    /// The variant drawn (tint and label), if this is one.
    variant: Option<u32>,
}

/// Strength of a variant's tint: the share of the tint colour in each pixel.
pub const TINT_STRENGTH: f32 = 0.35;

/// The seed of a rendition variant's grain.
fn grain_seed(width: u32, height: u32, variant: u32) -> u64 {
    0x6a1f_0000 ^ ((width as u64) << 32) ^ height as u64 ^ ((variant as u64) << 48)
}

impl Frames {
    /// These frames as variant `k` of their rendition: tinted with
    /// [`tint_colour`]`(k)` (none for variant 0), labelled `P{k+1}`, with a
    /// grain of their own.
    pub fn variant(mut self, k: u32) -> Frames {
        self.variant = Some(k);
        self.rng = Rng::new(grain_seed(self.rgb.width(), self.rgb.height(), k));
        self
    }

    /// Renders frame `index` of the loop. Call it with increasing indexes: the
    /// grain is drawn from a running generator.
    pub fn render(&mut self, index: u32) -> &I420 {
        match &self.content {
            Content::Pattern(p) => p.draw(&mut self.rgb, index, self.fps),
            Content::Stills { scaled, hold } => {
                let picture = &scaled[images::sequence_index(index, scaled.len(), *hold)];
                self.rgb.copy_from_slice(picture);
            }
        }
        if let Some(k) = self.variant {
            if let Some(colour) = tint_colour(k) {
                tint(&mut self.rgb, colour, TINT_STRENGTH);
            }
            let text = label_text(k);
            let (x, y, scale) = label_layout(self.rgb.width(), self.rgb.height(), &text);
            font::fill(
                &mut self.rgb,
                x.saturating_sub(scale),
                y.saturating_sub(scale),
                font::text_width(&text, scale) + 2 * scale,
                (font::GLYPH_H + 2) * scale,
                Rgb([0, 0, 0]),
            );
            font::draw_text(&mut self.rgb, x, y, scale, &text, Rgb([255, 255, 255]));
        }
        let (x, y, scale) = counter_layout(self.rgb.height());
        font::draw_digits(&mut self.rgb, x, y, scale, &counter_text(index));
        self.yuv.fill_from_rgb(&self.rgb);
        self.yuv.add_grain(&mut self.rng, GRAIN);
        &self.yuv
    }
}

/// The tint of variant `k`: none for variant 0, else a saturated colour whose
/// hue moves on by the golden angle (137.5°) from one variant to the next, so
/// neighbours differ most.
pub fn tint_colour(k: u32) -> Option<[u8; 3]> {
    if k == 0 {
        return None;
    }
    let hue = (k as f32 * 137.508).rem_euclid(360.0) / 60.0;
    let x = 1.0 - (hue.rem_euclid(2.0) - 1.0).abs();
    let (r, g, b) = match hue as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    Some([r, g, b].map(|v| (v * 255.0).round() as u8))
}

/// Mixes `colour` into every pixel of `img` at `strength` (0 to 1).
pub fn tint(img: &mut RgbImage, colour: [u8; 3], strength: f32) {
    let keep = 1.0 - strength;
    let add = colour.map(|c| c as f32 * strength);
    for px in img.pixels_mut() {
        for (v, a) in px.0.iter_mut().zip(add) {
            *v = (*v as f32 * keep + a).round() as u8;
        }
    }
}

/// The label of variant `k`: `P1` for variant 0, `P2` for 1, …
pub fn label_text(k: u32) -> String {
    format!("P{}", k + 1)
}

/// Where a variant's label `text` sits in a `width`×`height` picture: its
/// top-left corner and scale (a font pixel of 1/30 of the height), in the
/// top-right corner.
pub fn label_layout(width: u32, height: u32, text: &str) -> (u32, u32, u32) {
    let scale = (height / 30).max(1);
    let x = width.saturating_sub(font::text_width(text, scale) + 2 * scale);
    (x, 2 * scale, scale)
}

/// Where the frame counter sits in a picture of `height` rows: (x, y, scale).
pub fn counter_layout(height: u32) -> (u32, u32, u32) {
    let scale = (height / 90).max(1);
    (2 * scale, 2 * scale, scale)
}

/// The counter's text for frame `index`: five digits, wrapping after 99999.
pub fn counter_text(index: u32) -> String {
    format!("{:05}", index % 100_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            "bars".parse::<VideoSource>().unwrap(),
            VideoSource::Pattern(Pattern::Bars)
        );
        assert_eq!(
            "checkerboard".parse::<VideoSource>().unwrap(),
            VideoSource::Pattern(Pattern::Checkerboard)
        );
        assert_eq!(
            "media/".parse::<VideoSource>().unwrap(),
            VideoSource::Images("media/".into())
        );
        assert!("".parse::<VideoSource>().is_err());
    }

    #[test]
    fn frames_carry_their_counter_and_differ() {
        let footage = Footage::load(&VideoSource::Pattern(Pattern::Gradient), 1, &[]).unwrap();
        let mut frames = footage.frames(320, 180, 30).unwrap();
        let (x, y, scale) = counter_layout(180);
        let first = frames.render(0).clone();
        assert_eq!(
            font::read_digits(first.y(), 320, x, y, scale, COUNTER_DIGITS).as_deref(),
            Some("00000")
        );
        let second = frames.render(1);
        assert_eq!(
            font::read_digits(second.y(), 320, x, y, scale, COUNTER_DIGITS).as_deref(),
            Some("00001")
        );
        assert_ne!(&first, second);
    }

    #[test]
    fn variants_are_tinted_labelled_and_keep_their_counter() {
        let footage = Footage::load(&VideoSource::Pattern(Pattern::Bars), 1, &[]).unwrap();
        let plain = footage.frames(320, 180, 30).unwrap().render(3).clone();
        let mut seen = vec![plain];
        for k in 0..4 {
            let mut frames = footage.frames(320, 180, 30).unwrap().variant(k);
            let picture = frames.render(3).clone();
            let (x, y, scale) = counter_layout(180);
            assert_eq!(
                font::read_digits(picture.y(), 320, x, y, scale, COUNTER_DIGITS).as_deref(),
                Some("00003"),
                "variant {k}"
            );
            assert!(!seen.contains(&picture), "variant {k} looks like another");
            seen.push(picture);
        }
        assert_eq!(tint_colour(0), None);
        assert_eq!(tint_colour(1), tint_colour(1));
        assert_ne!(tint_colour(1), tint_colour(2));
        assert_eq!(label_text(0), "P1");
        let (x, _, scale) = label_layout(320, 180, "P1");
        assert_eq!(x + font::text_width("P1", scale) + 2 * scale, 320);
    }

    #[test]
    fn missing_directory_is_a_read_error() {
        let err = Footage::load(
            &VideoSource::Images("/nonexistent/dir".into()),
            1,
            &[(320, 180)],
        )
        .unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
        assert!(err.is_bad_input());
    }
}
