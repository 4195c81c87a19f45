//! A video rendition: frame size and target bitrate, written `WxH@KBPS` on
//! the command line; or a rendition copied from a clip, `WxH=FILE`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::Error;

/// Smallest accepted width or height.
pub const MIN_SIDE: u32 = 16;
/// Largest accepted width or height (4K UHD is 3840x2160).
pub const MAX_SIDE: u32 = 4096;

/// One video rendition of the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rendition {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Target bitrate in kbit/s (1000 bit/s).
    pub kbps: u32,
}

impl Rendition {
    /// The renditions `synth-encode build` uses when none are given.
    pub const DEFAULTS: [Rendition; 2] = [
        Rendition {
            width: 640,
            height: 360,
            kbps: 500,
        },
        Rendition {
            width: 320,
            height: 180,
            kbps: 150,
        },
    ];

    /// Checks the size and bitrate limits.
    pub fn new(width: u32, height: u32, kbps: u32) -> Result<Rendition, Error> {
        let bad = |reason: String| Error::invalid("rendition", reason);
        for (side, v) in [("width", width), ("height", height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&v) {
                return Err(bad(format!("{side} {v} is not in {MIN_SIDE}..={MAX_SIDE}")));
            }
            // 4:2:0 chroma is subsampled 2x2; odd sizes would need a half chroma sample.
            if v % 2 != 0 {
                return Err(bad(format!("{side} {v} is odd (4:2:0 needs even sizes)")));
            }
        }
        if !(10..=100_000).contains(&kbps) {
            return Err(bad(format!("bitrate {kbps} kbps is not in 10..=100000")));
        }
        Ok(Rendition {
            width,
            height,
            kbps,
        })
    }

    /// The pack track name, e.g. `video-640x360`.
    pub fn track_name(&self) -> String {
        format!("video-{}x{}", self.width, self.height)
    }

    /// Target bitrate in bit/s.
    pub fn bitrate_bps(&self) -> u32 {
        self.kbps * 1000
    }
}

/// The `--screen` argument: the screen track's size and bitrate
/// (`WxH@KBPS`), or `none` for a pack without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Screen(pub Option<Rendition>);

impl Screen {
    /// The screen track `synth-encode build` makes unless told otherwise: 1280x720@300.
    pub const DEFAULT: Screen = Screen(Some(Rendition {
        width: 1280,
        height: 720,
        kbps: 300,
    }));

    /// The pack track name of a screen track of size `r`, e.g. `screen-1280x720`.
    pub fn track_name(r: &Rendition) -> String {
        format!("screen-{}x{}", r.width, r.height)
    }
}

impl FromStr for Screen {
    type Err = Error;

    fn from_str(s: &str) -> Result<Screen, Error> {
        if s.trim() == "none" {
            return Ok(Screen(None));
        }
        s.parse::<Rendition>()
            .map(|r| Screen(Some(r)))
            .map_err(|_| {
                Error::invalid(
                    "screen",
                    format!("{s:?} (expected WIDTHxHEIGHT@KBPS, e.g. 1280x720@300, or none)"),
                )
            })
    }
}

impl fmt::Display for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(r) => write!(f, "{r}"),
            None => f.write_str("none"),
        }
    }
}

/// A rendition copied from a VP9 clip (`--rendition-file WxH=FILE`): the
/// size says which rendition the file is, and is checked against the clip.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenditionFile {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The WebM or IVF clip.
    pub path: PathBuf,
}

impl FromStr for RenditionFile {
    type Err = Error;

    fn from_str(s: &str) -> Result<RenditionFile, Error> {
        let bad = || {
            Error::invalid(
                "rendition file",
                format!("{s:?} (expected WIDTHxHEIGHT=FILE, e.g. 640x360=clip-360p.webm)"),
            )
        };
        let (size, path) = s.split_once('=').ok_or_else(bad)?;
        let (w, h) = size.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let num = |v: &str| v.trim().parse::<u32>().map_err(|_| bad());
        let (width, height) = (num(w)?, num(h)?);
        if path.is_empty() || width == 0 || height == 0 {
            return Err(bad());
        }
        Ok(RenditionFile {
            width,
            height,
            path: PathBuf::from(path),
        })
    }
}

impl fmt::Display for RenditionFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}={}", self.width, self.height, self.path.display())
    }
}

impl FromStr for Rendition {
    type Err = Error;

    fn from_str(s: &str) -> Result<Rendition, Error> {
        let bad = || {
            Error::invalid(
                "rendition",
                format!("{s:?} (expected WIDTHxHEIGHT@KBPS, e.g. 640x360@500)"),
            )
        };
        let (size, kbps) = s.trim().split_once('@').ok_or_else(bad)?;
        let (w, h) = size.split_once(['x', 'X']).ok_or_else(bad)?;
        let num = |v: &str| v.trim().parse::<u32>().map_err(|_| bad());
        Rendition::new(num(w)?, num(h)?, num(kbps)?)
    }
}

impl fmt::Display for Rendition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}@{}", self.width, self.height, self.kbps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let r: Rendition = "1280x720@1200".parse().unwrap();
        assert_eq!((r.width, r.height, r.kbps), (1280, 720, 1200));
        assert_eq!(r.to_string(), "1280x720@1200");
        assert_eq!(r.track_name(), "video-1280x720");
        assert_eq!(r.bitrate_bps(), 1_200_000);
    }

    #[test]
    fn rejects_malformed_and_out_of_range() {
        for bad in [
            "",
            "640x360",
            "640@500",
            "640x360@",
            "x360@500",
            "641x360@500",
            "640x361@500",
            "8x8@100",
            "8192x360@500",
            "640x360@5",
            "640x360@-1",
            "axb@c",
        ] {
            assert!(bad.parse::<Rendition>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn screen_is_a_rendition_or_none() {
        assert_eq!("none".parse::<Screen>().unwrap(), Screen(None));
        let s: Screen = "1280x720@300".parse().unwrap();
        assert_eq!(s, Screen::DEFAULT);
        assert_eq!(s.to_string(), "1280x720@300");
        assert_eq!(Screen::track_name(&s.0.unwrap()), "screen-1280x720");
        let err = "720p".parse::<Screen>().unwrap_err().to_string();
        assert!(err.contains("or none"), "{err}");
    }

    #[test]
    fn rendition_files_are_a_size_and_a_path() {
        let r: RenditionFile = "640x360=a=b.webm".parse().unwrap();
        assert_eq!((r.width, r.height), (640, 360));
        assert_eq!(r.path, PathBuf::from("a=b.webm"));
        assert_eq!(r.to_string(), "640x360=a=b.webm");
        for bad in [
            "640x360",
            "640x360=",
            "640=a.webm",
            "0x360=a.webm",
            "ax360=a.webm",
        ] {
            assert!(bad.parse::<RenditionFile>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn defaults_are_valid() {
        for r in Rendition::DEFAULTS {
            assert_eq!(Rendition::new(r.width, r.height, r.kbps).unwrap(), r);
        }
    }
}
