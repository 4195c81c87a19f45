//! IVF: the simple container libvpx's tools (and ffmpeg) read VP8/VP9 from.
//!
//! A 32-byte file header (`DKIF`, version 0, header size 32, fourcc `VP90`,
//! width, height, time base rate and scale, frame count, 4 unused bytes), then
//! per frame a 12-byte header (frame size u32, pts u64) and the frame. All
//! integers are little-endian. The time base is `scale/rate` seconds; with
//! `rate/scale` = the frame rate, pts count frames.
//!
//! The encoder's `export` writes packs' video tracks with it, and the relay's
//! `--capture` what each user sent. [`frames`] reads a file back without
//! copying, for tests and checks.

use std::io::{self, Write};

/// Bytes of the file header.
pub const HEADER_LEN: usize = 32;

/// Bytes of each frame's header.
pub const FRAME_HEADER_LEN: usize = 12;

/// Where the frame count sits in the file header (a little-endian u32), to
/// patch it once the frames are written.
pub const FRAME_COUNT_OFFSET: u64 = 24;

/// Writes the 32-byte IVF file header.
pub fn write_header(
    out: &mut impl Write,
    fourcc: [u8; 4],
    width: u16,
    height: u16,
    rate: u32,
    scale: u32,
    frames: u32,
) -> io::Result<()> {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"DKIF");
    h[4..6].copy_from_slice(&0u16.to_le_bytes());
    h[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    h[8..12].copy_from_slice(&fourcc);
    h[12..14].copy_from_slice(&width.to_le_bytes());
    h[14..16].copy_from_slice(&height.to_le_bytes());
    h[16..20].copy_from_slice(&rate.to_le_bytes());
    h[20..24].copy_from_slice(&scale.to_le_bytes());
    h[24..28].copy_from_slice(&frames.to_le_bytes());
    out.write_all(&h)
}

/// Writes one frame with its 12-byte header.
pub fn write_frame(out: &mut impl Write, pts: u64, data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "IVF frame larger than 4 GiB"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&pts.to_le_bytes())?;
    out.write_all(data)
}

/// An IVF file header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The codec, `VP90` for VP9.
    pub fourcc: [u8; 4],
    /// Width in pixels (0 when the writer did not know it).
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Time base denominator.
    pub rate: u32,
    /// Time base numerator.
    pub scale: u32,
    /// Frames, as the writer declared them.
    pub frames: u32,
}

/// Why bytes are not an IVF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IvfError {
    /// No `DKIF` signature or an unexpected header size.
    #[error("not an IVF file")]
    NotIvf,
    /// The bytes end inside a header or a frame.
    #[error("IVF file truncated")]
    Truncated,
}

/// Reads an IVF file: its header, and its frames as `(pts, data)`, borrowed.
pub fn frames(buf: &[u8]) -> Result<(Header, Frames<'_>), IvfError> {
    let h = buf.get(..HEADER_LEN).ok_or(IvfError::Truncated)?;
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if &h[0..4] != b"DKIF" || usize::from(u16_at(6)) != HEADER_LEN {
        return Err(IvfError::NotIvf);
    }
    let header = Header {
        fourcc: [h[8], h[9], h[10], h[11]],
        width: u16_at(12),
        height: u16_at(14),
        rate: u32_at(16),
        scale: u32_at(20),
        frames: u32_at(24),
    };
    Ok((
        header,
        Frames {
            rest: &buf[HEADER_LEN..],
        },
    ))
}

/// The frames of an IVF file, in file order (see [`frames`]).
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<(u64, &'a [u8]), IvfError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(head) = self.rest.get(..FRAME_HEADER_LEN) else {
            self.rest = &[];
            return Some(Err(IvfError::Truncated));
        };
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        let pts = u64::from_le_bytes(head[4..12].try_into().expect("8 bytes"));
        let Some(data) = self.rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            self.rest = &[];
            return Some(Err(IvfError::Truncated));
        };
        self.rest = &self.rest[FRAME_HEADER_LEN + len..];
        Some(Ok((pts, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut out = Vec::new();
        write_header(&mut out, *b"VP90", 640, 360, 30, 1, 2).unwrap();
        write_frame(&mut out, 0, &[1, 2, 3]).unwrap();
        write_frame(&mut out, 1, &[4]).unwrap();
        assert_eq!(out.len(), 32 + 12 + 3 + 12 + 1);
        assert_eq!(&out[..12], b"DKIF\0\0\x20\0VP90");
        assert_eq!(&out[12..16], &[0x80, 0x02, 0x68, 0x01]);
        assert_eq!(&out[16..28], &[30, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&out[32..47], &[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
        assert_eq!(&out[47..51], &[1, 0, 0, 0]);
        assert_eq!(out[51], 1);
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let mut out = Vec::new();
        write_header(&mut out, *b"VP90", 320, 180, 1000, 1, 2).unwrap();
        write_frame(&mut out, 0, &[1, 2, 3]).unwrap();
        write_frame(&mut out, 40, &[]).unwrap();
        let (h, f) = frames(&out).unwrap();
        let want = Header {
            fourcc: *b"VP90",
            width: 320,
            height: 180,
            rate: 1000,
            scale: 1,
            frames: 2,
        };
        assert_eq!(h, want);
        let got: Vec<_> = f.collect::<Result<_, _>>().unwrap();
        assert_eq!(got, [(0, &[1, 2, 3][..]), (40, &[][..])]);

        assert_eq!(frames(&out[..31]).unwrap_err(), IvfError::Truncated);
        assert_eq!(frames(&[0; 32]).unwrap_err(), IvfError::NotIvf);
        let cut: Vec<_> = frames(&out[..out.len() - 5]).unwrap().1.collect();
        assert_eq!(cut, [Ok((0, &[1, 2, 3][..])), Err(IvfError::Truncated)]);
    }
}
