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
//! 2. the burned-in frame counter: the frame number in the loop, five digits,
//!    white on black in the top-left corner ([`font`], [`counter_layout`]);
//! 3. conversion to I420 with BT.601 ([`crate::yuv`]);
//! 4. a light luma grain of ±[`GRAIN`] levels, different on every frame, like
//!    a camera sensor's noise. Without it, flat patterns and held stills leave
//!    a CBR encoder nothing to spend its bits on, and the measured bitrate of
//!    the track would fall far below the target that the load test promises.

pub mod font;
pub mod images;
pub mod pattern;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use image::RgbImage;

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
            rng: Rng::new(0x6a1f_0000 ^ ((width as u64) << 32) ^ height as u64),
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
}

impl Frames {
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
        let (x, y, scale) = counter_layout(self.rgb.height());
        font::draw_digits(&mut self.rgb, x, y, scale, &counter_text(index));
        self.yuv.fill_from_rgb(&self.rgb);
        self.yuv.add_grain(&mut self.rng, GRAIN);
        &self.yuv
    }
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
