//! Video sources: JPEG directories, Y4M and raw I420 files, and built-in
//! patterns, rendered as I420 frames; and the VP9 clips that are copied
//! instead ([`VideoSource::clip`], [`crate::clip`]).
//!
//! A [`VideoSource`] (the `--video` argument) is loaded once into [`Footage`]
//! (each JPEG or frame decoded and scaled straight to every rendition's size,
//! so a long 1080p source never sits in memory at full size), and each
//! rendition gets its own [`Frames`], which renders frame `i` at its size:
//!
//! 1. the picture: a pattern ([`pattern`]) drawn at frame `i`, the image
//!    that the ping-pong sequence shows at frame `i` ([`images`]), or the
//!    frame of a Y4M or I420 file ([`y4m`]) shown at frame `i`'s time (the
//!    file plays at its own rate whatever `--fps` is, forward then backward
//!    when it is shorter than the loop, like a JPEG sequence), scaled to
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
pub mod y4m;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use image::{Rgb, RgbImage};

use crate::clip::VideoClip;
use crate::container::Container;
use crate::noise::Rng;
use crate::yuv::I420;
use crate::Error;
pub use pattern::Pattern;
pub use y4m::RawI420;

/// Amplitude of the luma grain, in 8-bit levels.
pub const GRAIN: u8 = 3;
/// Digits of the burned-in frame counter.
pub const COUNTER_DIGITS: u32 = 5;

/// Where the video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// A path, taken by what it is: a directory of JPEGs, a Y4M file, or a
    /// WebM or IVF clip whose VP9 frames are copied ([`VideoSource::clip`]).
    Path(PathBuf),
    /// `i420:WIDTHxHEIGHT:RATE:FILE`: raw I420 frames.
    Raw(RawI420),
    /// A built-in pattern.
    Pattern(Pattern),
}

impl FromStr for VideoSource {
    type Err = Error;

    /// `bars`, `gradient` and `checkerboard` name the patterns, `i420:...`
    /// a raw file; anything else is a path (write `./bars` for a directory
    /// named `bars`).
    fn from_str(s: &str) -> Result<VideoSource, Error> {
        if let Some(raw) = s.strip_prefix("i420:") {
            return raw.parse().map(VideoSource::Raw);
        }
        Ok(match s {
            "bars" => VideoSource::Pattern(Pattern::Bars),
            "gradient" => VideoSource::Pattern(Pattern::Gradient),
            "checkerboard" => VideoSource::Pattern(Pattern::Checkerboard),
            "" => {
                return Err(Error::invalid(
                    "video source",
                    "empty (expected a JPEG directory, a Y4M, WebM or IVF file, i420:WxH:RATE:FILE, bars, gradient or checkerboard)",
                ))
            }
            path => VideoSource::Path(PathBuf::from(path)),
        })
    }
}

impl fmt::Display for VideoSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoSource::Path(path) => write!(f, "{}", path.display()),
            VideoSource::Raw(raw) => write!(f, "{raw}"),
            VideoSource::Pattern(p) => write!(f, "{p}"),
        }
    }
}

impl VideoSource {
    /// Whether the source is a clip to copy (a WebM, Matroska or IVF file),
    /// from its first bytes; [`VideoSource::clip`] reads and checks it.
    pub fn is_clip(&self) -> bool {
        match self {
            VideoSource::Path(path) if !path.is_dir() => matches!(
                Container::sniff(path),
                Ok(Container::Matroska { .. } | Container::Ivf)
            ),
            _ => false,
        }
    }

    /// Opens what the source names and reads its header, without loading
    /// it: a bad file is refused before slow work on the other source.
    pub fn check(&self) -> Result<(), Error> {
        match self {
            VideoSource::Pattern(_) => Ok(()),
            VideoSource::Raw(raw) => y4m::FrameFile::raw(raw).map(drop),
            VideoSource::Path(path) if path.is_dir() => images::list(path).map(drop),
            VideoSource::Path(path) => match Container::sniff(path)? {
                Container::Y4m => y4m::FrameFile::y4m(path).map(drop),
                Container::Matroska { .. } | Container::Ivf => Ok(()),
                other => Err(refuse_file(path, other)),
            },
        }
    }

    /// The VP9 clip whose frames go into the pack as they are, when the
    /// source is one: a WebM, Matroska or IVF file. Such a file whose video
    /// is not VP9 profile 0 is refused, with the way to encode it instead.
    pub fn clip(&self) -> Result<Option<VideoClip>, Error> {
        match self {
            VideoSource::Path(path) if !path.is_dir() => match Container::sniff(path)? {
                c @ (Container::Matroska { .. } | Container::Ivf) => {
                    crate::clip::read_video(path, c).map(Some)
                }
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

/// Refuses a file `--video` cannot take, saying what it is.
fn refuse_file(path: &Path, container: Container) -> Error {
    let what =
        match container {
            Container::Mp4 => format!(
            "is an MP4 file, whose video synth-encode does not demux: {}; or, to copy its frames, \
             put VP9 in WebM: ffmpeg -i {} -c:v libvpx-vp9 clip.webm",
            crate::clip::video_encode_hint(path),
            path.display()
        ),
            Container::Ogg | Container::Wav => {
                format!(
            "is {} file, not video: --video takes a JPEG directory, a Y4M, WebM or IVF file, \
             or i420:WxH:RATE:FILE",
            if container == Container::Ogg { "an Ogg" } else { "a WAV" }
        )
            }
            _ => "is not a video file synth-encode reads: --video takes a JPEG directory, a Y4M, \
              WebM or IVF file, or i420:WxH:RATE:FILE"
                .to_string(),
        };
    Error::media(path, what)
}

/// A loaded video source, shared by all renditions.
#[derive(Debug, Clone)]
pub enum Footage {
    /// A built-in pattern.
    Pattern(Pattern),
    /// The frames of a Y4M or I420 file, scaled to each requested size.
    Motion {
        /// What was read, for the user.
        description: String,
        /// Frames per second of the file, as `num / den`.
        rate: (u32, u32),
        /// For each requested (width, height), the scaled frames in order.
        scaled: Vec<((u32, u32), Vec<RgbImage>)>,
    },
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
    /// Loads `source` for renditions of the given (width, height) `sizes`:
    /// [`Footage::load_for`] a loop of any length (a Y4M or I420 file is read whole).
    pub fn load(source: &VideoSource, hold: u32, sizes: &[(u32, u32)]) -> Result<Footage, Error> {
        Footage::load_for(source, hold, sizes, f64::INFINITY)
    }

    /// Loads `source` for renditions of the given (width, height) `sizes`
    /// and a loop of `seconds`: a JPEG directory is listed, decoded and scaled
    /// to every size, each image held `hold` frames; a Y4M or I420 file's
    /// first `seconds` (all of it, when shorter) are read and scaled. A clip
    /// to copy ([`VideoSource::clip`]) is not footage, and is refused here.
    pub fn load_for(
        source: &VideoSource,
        hold: u32,
        sizes: &[(u32, u32)],
        seconds: f64,
    ) -> Result<Footage, Error> {
        let dir = match source {
            VideoSource::Pattern(p) => return Ok(Footage::Pattern(*p)),
            VideoSource::Raw(raw) => {
                let file = y4m::FrameFile::raw(raw)?;
                return load_motion(file, &raw.path, "I420", sizes, seconds);
            }
            VideoSource::Path(path) if path.is_dir() => path,
            VideoSource::Path(path) => {
                return match Container::sniff(path)? {
                    Container::Y4m => {
                        load_motion(y4m::FrameFile::y4m(path)?, path, "Y4M", sizes, seconds)
                    }
                    Container::Matroska { .. } | Container::Ivf => Err(Error::invalid(
                        "video source",
                        format!(
                            "{} is a clip to copy, not footage to encode",
                            path.display()
                        ),
                    )),
                    // (A missing path fails to open in `sniff`.)
                    other => Err(refuse_file(path, other)),
                };
            }
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
            Footage::Motion { description, .. } => description.clone(),
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
        let at_size = |scaled: &[((u32, u32), Vec<RgbImage>)]| {
            scaled
                .iter()
                .find(|(size, _)| *size == (width, height))
                .map(|(_, pictures)| pictures.clone())
                .ok_or_else(|| {
                    Error::invalid("video size", format!("{width}x{height} was not loaded"))
                })
        };
        let content = match self {
            Footage::Pattern(p) => Content::Pattern(*p),
            Footage::Images { scaled, hold, .. } => Content::Stills {
                scaled: at_size(scaled)?,
                hold: *hold,
            },
            Footage::Motion { scaled, rate, .. } => Content::Motion {
                scaled: at_size(scaled)?,
                rate: *rate,
            },
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
    Stills {
        scaled: Vec<RgbImage>,
        hold: u32,
    },
    Motion {
        scaled: Vec<RgbImage>,
        rate: (u32, u32),
    },
}

/// Reads a frame file's first `seconds` (with a frame to spare) and scales
/// every frame to every size, a batch of frames at a time on all cores.
fn load_motion(
    mut file: y4m::FrameFile,
    path: &Path,
    kind: &str,
    sizes: &[(u32, u32)],
    seconds: f64,
) -> Result<Footage, Error> {
    let format = file.format().clone();
    let (num, den) = format.rate;
    // Saturates for an unbounded loop: the whole file.
    let wanted = ((seconds * num as f64 / den as f64).ceil() as usize).saturating_add(1);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut scaled: Vec<((u32, u32), Vec<RgbImage>)> =
        sizes.iter().map(|&size| (size, Vec::new())).collect();
    let mut read = 0;
    let mut ended = false;
    while read < wanted && !ended {
        let mut batch = Vec::new();
        while batch.len() < threads * 2 && read + batch.len() < wanted {
            let mut buf = Vec::new();
            if !file.next_frame(&mut buf)? {
                ended = true;
                break;
            }
            batch.push(buf);
        }
        let convert = |frame: &Vec<u8>| -> Vec<RgbImage> {
            let rgb = crate::yuv::planes_to_rgb(
                format.planes(frame),
                format.width,
                format.height,
                format.full_range,
            );
            sizes
                .iter()
                .map(|&(w, h)| images::cover(&rgb, w, h))
                .collect()
        };
        let done: Vec<Vec<RgbImage>> = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|frame| s.spawn(move || convert(frame)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a frame scaling thread panicked"))
                .collect()
        });
        read += done.len();
        for per_size in done {
            for (slot, picture) in scaled.iter_mut().zip(per_size) {
                slot.1.push(picture);
            }
        }
    }
    if read == 0 {
        return Err(Error::media(path, "holds no frames"));
    }
    let rate = if den == 1 {
        format!("{num} fps")
    } else {
        format!("{:.3} fps", num as f64 / den as f64)
    };
    let description = format!(
        "{}: {kind} {}x{} at {rate}{}, {read} frames read ({:.2} s){}, scaled to cover and centre-cropped",
        path.display(),
        format.width,
        format.height,
        if format.full_range { ", full range" } else { "" },
        read as f64 * den as f64 / num as f64,
        if ended && (read as f64) < seconds * num as f64 / den as f64 {
            ", played forward and back to fill the loop"
        } else {
            ""
        }
    );
    Ok(Footage::Motion {
        description,
        rate: format.rate,
        scaled,
    })
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
            Content::Motion { scaled, rate } => {
                // The file's frame at this frame's time, at the file's own rate.
                let at = index as u64 * rate.0 as u64 / (rate.1 as u64 * self.fps.max(1) as u64);
                let at = at.min(u32::MAX as u64) as u32;
                let picture = &scaled[images::sequence_index(at, scaled.len(), 1)];
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
            VideoSource::Path("media/".into())
        );
        let raw = "i420:320x180:25:a.yuv".parse::<VideoSource>().unwrap();
        assert_eq!(raw.to_string(), "i420:320x180:25:a.yuv");
        assert!("i420:320x180".parse::<VideoSource>().is_err());
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
            &VideoSource::Path("/nonexistent/dir".into()),
            1,
            &[(320, 180)],
        )
        .unwrap_err();
        assert!(matches!(err, Error::Read { .. }), "{err}");
        assert!(err.is_bad_input());
    }
}
