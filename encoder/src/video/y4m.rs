//! Frame files: Y4M (YUV4MPEG2) and raw I420, both 8-bit 4:2:0 planar.
//!
//! A Y4M file says its size, frame rate, colour space and range in a text
//! header (`YUV4MPEG2 W640 H360 F30:1 Ip A1:1 C420jpeg`) and starts each
//! frame with a `FRAME` line; a raw I420 file is the frames alone, so its size
//! and rate come from the command line (`i420:640x360:30:FILE`). Any 8-bit
//! 4:2:0 colour space tag is taken (`420`, `420jpeg`, `420paldv`,
//! `420mpeg2`: they differ only in where chroma sits, which no scaler here
//! heeds); 4:2:2, 4:4:4, monochrome, alpha or more than 8 bits are refused
//! with the `ffmpeg` line that converts them. `XCOLORRANGE=FULL` marks
//! full-range samples; otherwise they are studio range (BT.601).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::Error;

/// The largest width or height of a frame file (8K is 7680).
pub const MAX_SOURCE_SIDE: u32 = 16_384;

/// What a frame file holds, from its header or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second, as `num / den`.
    pub rate: (u32, u32),
    /// Samples span 0–255 rather than 16–235.
    pub full_range: bool,
}

impl Format {
    /// Bytes of one frame: the luma plane and two chroma planes of
    /// `ceil(width/2)` × `ceil(height/2)`.
    pub fn frame_len(&self) -> usize {
        let luma = self.width as usize * self.height as usize;
        let chroma = self.width.div_ceil(2) as usize * self.height.div_ceil(2) as usize;
        luma + 2 * chroma
    }

    /// The three planes of one frame's bytes.
    pub fn planes<'a>(&self, frame: &'a [u8]) -> (&'a [u8], &'a [u8], &'a [u8]) {
        let luma = self.width as usize * self.height as usize;
        let chroma = (frame.len() - luma) / 2;
        let (y, uv) = frame.split_at(luma);
        let (u, v) = uv.split_at(chroma);
        (y, u, v)
    }

    fn check(&self, what: &str) -> Result<(), String> {
        for (side, v) in [("width", self.width), ("height", self.height)] {
            if !(1..=MAX_SOURCE_SIDE).contains(&v) {
                return Err(format!("{what}{side} {v} is not in 1..={MAX_SOURCE_SIDE}"));
            }
        }
        if self.rate.0 == 0 || self.rate.1 == 0 {
            return Err(format!(
                "{what}frame rate {}/{} is not valid",
                self.rate.0, self.rate.1
            ));
        }
        Ok(())
    }
}

/// `i420:WIDTHxHEIGHT:RATE:FILE`: a raw I420 file and its size and rate
/// (`RATE` a number of frames a second, or `NUM/DEN` such as `30000/1001`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawI420 {
    /// Size and rate.
    pub format: Format,
    /// The file.
    pub path: PathBuf,
}

impl FromStr for RawI420 {
    type Err = Error;

    /// What follows `i420:`; the file may hold colons.
    fn from_str(s: &str) -> Result<RawI420, Error> {
        let bad = |why: String| {
            Error::invalid(
                "video source",
                format!("i420:{s}: {why} (expected i420:WIDTHxHEIGHT:RATE:FILE, e.g. i420:640x360:30:clip.yuv)"),
            )
        };
        let mut parts = s.splitn(3, ':');
        let (Some(size), Some(rate), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("three fields needed".into()));
        };
        let (w, h) = size
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .ok_or_else(|| bad(format!("size {size:?} is not WIDTHxHEIGHT")))?;
        let rate =
            parse_rate(rate, '/').ok_or_else(|| bad(format!("rate {rate:?} is not N or N/D")))?;
        if path.is_empty() {
            return Err(bad("no file".into()));
        }
        let format = Format {
            width: w,
            height: h,
            rate,
            full_range: false,
        };
        format.check("").map_err(bad)?;
        Ok(RawI420 {
            format,
            path: PathBuf::from(path),
        })
    }
}

impl fmt::Display for RawI420 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Format {
            width,
            height,
            rate: (num, den),
            ..
        } = self.format;
        let rate = if den == 1 {
            num.to_string()
        } else {
            format!("{num}/{den}")
        };
        write!(f, "i420:{width}x{height}:{rate}:{}", self.path.display())
    }
}

fn parse_rate(s: &str, sep: char) -> Option<(u32, u32)> {
    let (num, den) = s.split_once(sep).unwrap_or((s, "1"));
    let rate = (num.parse().ok()?, den.parse().ok()?);
    (rate.0 > 0 && rate.1 > 0).then_some(rate)
}

/// An open frame file, read one frame at a time.
pub struct FrameFile {
    path: PathBuf,
    format: Format,
    reader: BufReader<File>,
    /// Whether each frame starts with a `FRAME` line (Y4M).
    y4m: bool,
    /// Frames read so far.
    read: usize,
}

impl FrameFile {
    /// Opens a Y4M file and reads its header.
    pub fn y4m(path: &Path) -> Result<FrameFile, Error> {
        let mut reader = open(path)?;
        let mut line = Vec::new();
        reader
            .by_ref()
            .take(4096)
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let format = parse_header(&line).map_err(|reason| {
            Error::media(path, reason.replace("{in}", &path.display().to_string()))
        })?;
        Ok(FrameFile {
            path: path.to_path_buf(),
            format,
            reader,
            y4m: true,
            read: 0,
        })
    }

    /// Opens a raw I420 file; its length must be a whole number of frames.
    pub fn raw(raw: &RawI420) -> Result<FrameFile, Error> {
        let reader = open(&raw.path)?;
        let len = reader
            .get_ref()
            .metadata()
            .map_err(|source| Error::Read {
                path: raw.path.clone(),
                source,
            })?
            .len();
        let frame = raw.format.frame_len() as u64;
        if len == 0 || len % frame != 0 {
            return Err(Error::media(
                &raw.path,
                format!(
                    "{len} bytes is not a whole number of {}x{} I420 frames ({frame} bytes each): check the size",
                    raw.format.width, raw.format.height
                ),
            ));
        }
        Ok(FrameFile {
            path: raw.path.clone(),
            format: raw.format.clone(),
            reader,
            y4m: false,
            read: 0,
        })
    }

    /// Its size, rate and range.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Reads the next frame into `buf` (resized to a frame's length); false
    /// at the end of the file. A frame cut short is an error.
    pub fn next_frame(&mut self, buf: &mut Vec<u8>) -> Result<bool, Error> {
        let read_err = |source| Error::Read {
            path: self.path.clone(),
            source,
        };
        if self.y4m {
            let mut line = Vec::new();
            self.reader
                .by_ref()
                .take(1024)
                .read_until(b'\n', &mut line)
                .map_err(read_err)?;
            if line.is_empty() {
                return Ok(false);
            }
            if !line.starts_with(b"FRAME") || line.last() != Some(&b'\n') {
                return Err(Error::media(
                    &self.path,
                    format!(
                        "truncated or damaged: no FRAME line where frame {} should start",
                        self.read
                    ),
                ));
            }
        }
        buf.resize(self.format.frame_len(), 0);
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]).map_err(read_err)? {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 && !self.y4m {
            return Ok(false);
        }
        if got < buf.len() {
            return Err(Error::media(
                &self.path,
                format!(
                    "truncated: frame {} has {got} of its {} bytes",
                    self.read,
                    buf.len()
                ),
            ));
        }
        self.read += 1;
        Ok(true)
    }
}

fn open(path: &Path) -> Result<BufReader<File>, Error> {
    File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// The conversion that makes any video 8-bit 4:2:0 Y4M.
const CONVERT: &str = "convert it: ffmpeg -i {in} -pix_fmt yuv420p out.y4m";

/// Parses a Y4M stream header line.
fn parse_header(line: &[u8]) -> Result<Format, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not a Y4M header".to_string())?;
    let mut words = text.trim_end().split(' ');
    if words.next() != Some("YUV4MPEG2") || !line.ends_with(b"\n") {
        return Err("not a Y4M file (no YUV4MPEG2 header line)".into());
    }
    let (mut width, mut height, mut rate) = (None, None, None);
    let mut colour = "420jpeg".to_string();
    let mut full_range = false;
    for word in words.filter(|w| !w.is_empty()) {
        let (tag, value) = word.split_at(1);
        match tag {
            "W" => width = value.parse().ok(),
            "H" => height = value.parse().ok(),
            "F" => rate = parse_rate(value, ':'),
            "C" => colour = value.to_string(),
            "X" if value.eq_ignore_ascii_case("COLORRANGE=FULL") => full_range = true,
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (width, height) else {
        return Err("the Y4M header gives no size (W and H)".into());
    };
    let rate = rate.ok_or("the Y4M header gives no frame rate (F)")?;
    if !matches!(colour.as_str(), "420" | "420jpeg" | "420paldv" | "420mpeg2") {
        let what = match colour.as_str() {
            "444" => "4:4:4".to_string(),
            "422" => "4:2:2".to_string(),
            "411" => "4:1:1".to_string(),
            "mono" => "monochrome".to_string(),
            "444alpha" => "4:4:4 with alpha".to_string(),
            c if c.contains('p') => format!("{c} (more than 8 bits)"),
            c => c.to_string(),
        };
        return Err(format!(
            "is a Y4M of {what} (C{colour}); synth-encode takes 8-bit 4:2:0 Y4M: {CONVERT}"
        ));
    }
    let format = Format {
        width,
        height,
        rate,
        full_range,
    };
    format.check("the Y4M header's ")?;
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_y4m_headers() {
        let f =
            parse_header(b"YUV4MPEG2 W640 H360 F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n").unwrap();
        assert_eq!(
            f,
            Format {
                width: 640,
                height: 360,
                rate: (30, 1),
                full_range: false
            }
        );
        assert_eq!(f.frame_len(), 640 * 360 * 3 / 2);
        let f = parse_header(b"YUV4MPEG2 W321 H241 F30000:1001 XCOLORRANGE=FULL\n").unwrap();
        assert_eq!((f.rate, f.full_range), ((30_000, 1001), true));
        assert_eq!(f.frame_len(), 321 * 241 + 2 * 161 * 121);
        let e = parse_header(b"YUV4MPEG2 W64 H64 F25:1 C444\n").unwrap_err();
        assert!(e.contains("4:4:4") && e.contains("ffmpeg"), "{e}");
        let e = parse_header(b"YUV4MPEG2 W64 H64 F25:1 C420p10 XYSCSS=420P10\n").unwrap_err();
        assert!(e.contains("more than 8 bits"), "{e}");
        assert!(parse_header(b"YUV4MPEG2 W64 F25:1\n").is_err());
        assert!(parse_header(b"YUV4MPEG2 W64 H64\n").is_err());
        assert!(parse_header(b"RIFF").is_err());
    }

    #[test]
    fn parses_raw_i420_arguments() {
        let r: RawI420 = "640x360:30000/1001:a:b.yuv".parse().unwrap();
        assert_eq!((r.format.width, r.format.rate), (640, (30_000, 1001)));
        assert_eq!(r.path, PathBuf::from("a:b.yuv"));
        assert_eq!(r.to_string(), "i420:640x360:30000/1001:a:b.yuv");
        for bad in [
            "640x360:30",
            "640:30:x",
            "640x360:0:x",
            "0x8:30:x",
            "640x360:30:",
        ] {
            let e = bad.parse::<RawI420>().unwrap_err();
            assert!(
                e.is_bad_input() && e.to_string().contains("i420:WIDTH"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn frames_come_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let y4m = dir.path().join("a.y4m");
        let mut bytes = b"YUV4MPEG2 W4 H2 F10:1\n".to_vec();
        for k in 0..2u8 {
            bytes.extend_from_slice(b"FRAME\n");
            bytes.extend_from_slice(&[k; 12]);
        }
        std::fs::write(&y4m, &bytes).unwrap();
        let mut f = FrameFile::y4m(&y4m).unwrap();
        let mut buf = Vec::new();
        assert!(f.next_frame(&mut buf).unwrap());
        assert!(f.next_frame(&mut buf).unwrap());
        assert_eq!(buf, [1; 12]);
        assert!(!f.next_frame(&mut buf).unwrap());
        std::fs::write(&y4m, &bytes[..bytes.len() - 3]).unwrap();
        let mut f = FrameFile::y4m(&y4m).unwrap();
        assert!(f.next_frame(&mut buf).unwrap());
        let e = f.next_frame(&mut buf).unwrap_err().to_string();
        assert!(
            e.contains("truncated: frame 1 has 9 of its 12 bytes"),
            "{e}"
        );

        let raw = dir.path().join("a.yuv");
        std::fs::write(&raw, [0u8; 30]).unwrap();
        let spec: RawI420 = format!("4x2:10:{}", raw.display()).parse().unwrap();
        let e = FrameFile::raw(&spec).err().unwrap().to_string();
        assert!(
            e.contains("not a whole number of 4x2 I420 frames (12 bytes each)"),
            "{e}"
        );
        std::fs::write(&raw, [7u8; 24]).unwrap();
        let mut f = FrameFile::raw(&spec).unwrap();
        assert!(f.next_frame(&mut buf).unwrap() && f.next_frame(&mut buf).unwrap());
        assert!(!f.next_frame(&mut buf).unwrap());
    }
}
