//! IVF writing: the simple container libvpx's tools use for VP8/VP9 streams.
//!
//! A 32-byte file header (`DKIF`, version 0, header size 32, fourcc `VP90`,
//! width, height, time base rate and scale, frame count, 4 unused bytes), then
//! per frame a 12-byte header (frame size u32, pts u64) and the frame. All
//! integers are little-endian. The time base is `scale/rate` seconds; with
//! `rate/scale` = the frame rate, pts count frames.

use std::io::{self, Write};

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
    let mut h = [0u8; 32];
    h[0..4].copy_from_slice(b"DKIF");
    h[4..6].copy_from_slice(&0u16.to_le_bytes());
    h[6..8].copy_from_slice(&32u16.to_le_bytes());
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
}
