//! What a VP9 frame says about itself in its uncompressed header: its
//! profile, whether it is a key frame, and a key frame's bit depth and size.
//!
//! Only the first bits of the header are read (VP9 bitstream specification,
//! section 6.2: `frame_marker`, `profile`, `show_existing_frame`,
//! `frame_type`, the sync code, `color_config`, `frame_size`). A superframe
//! starts with its first frame, so the same read works on it.

/// `frame_sync_code` of key and intra-only frames.
const SYNC_CODE: u32 = 0x49_83_42;

/// `color_space` value for RGB, which has no `color_range` bit.
const CS_RGB: u32 = 7;

/// Reads bits most significant first.
struct Bits<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            let byte = *self.buf.get(self.pos / 8)?;
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }
}

/// What a VP9 key frame's header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFrame {
    /// The profile, 0 to 3 (0: 8-bit 4:2:0, what browsers decode everywhere).
    pub profile: u8,
    /// Bits per sample: 8, or 10 or 12 in profiles 2 and 3.
    pub bit_depth: u8,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The profile a VP9 frame header declares (0 to 3), whatever the frame's
/// type; `None` for bytes that are not a VP9 frame header.
pub fn profile(frame: &[u8]) -> Option<u8> {
    let mut b = Bits { buf: frame, pos: 0 };
    read_profile(&mut b)
}

/// The frame marker and the profile, the first bits of every VP9 frame
/// header; `None` when the marker is wrong or the reserved bit of profile 3
/// is set.
fn read_profile(b: &mut Bits<'_>) -> Option<u8> {
    if b.read(2)? != 2 {
        return None;
    }
    let low = b.read(1)?;
    let profile = (b.read(1)? << 1) | low;
    if profile == 3 && b.read(1)? != 0 {
        return None;
    }
    Some(profile as u8)
}

/// The width and height a VP9 key frame declares; `None` for any other
/// frame, or bytes that are not a VP9 frame header.
pub fn key_frame_size(frame: &[u8]) -> Option<(u32, u32)> {
    key_frame(frame).map(|k| (k.width, k.height))
}

/// What a VP9 key frame declares (profile, bit depth, size); `None` for any
/// other frame, or bytes that are not a VP9 frame header.
pub fn key_frame(frame: &[u8]) -> Option<KeyFrame> {
    let mut b = Bits { buf: frame, pos: 0 };
    let profile = u32::from(read_profile(&mut b)?);
    // show_existing_frame: a frame shown again, no header of its own.
    if b.read(1)? == 1 {
        return None;
    }
    // frame_type: 0 is KEY_FRAME.
    if b.read(1)? != 0 {
        return None;
    }
    b.read(2)?; // show_frame, error_resilient_mode
    if b.read(24)? != SYNC_CODE {
        return None;
    }
    // color_config
    let mut bit_depth = 8;
    if profile >= 2 {
        bit_depth = if b.read(1)? == 1 { 12 } else { 10 }; // ten_or_twelve_bit
    }
    let color_space = b.read(3)?;
    let odd_profile = profile == 1 || profile == 3;
    if color_space != CS_RGB {
        b.read(1)?; // color_range
        if odd_profile {
            b.read(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if odd_profile {
        b.read(1)?; // reserved_zero
    }
    let width = b.read(16)? + 1;
    let height = b.read(16)? + 1;
    Some(KeyFrame {
        profile: profile as u8,
        bit_depth,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits most significant first.
    fn bits(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = 0;
        for &(len, v) in fields {
            for i in (0..len).rev() {
                if n % 8 == 0 {
                    out.push(0);
                }
                *out.last_mut().unwrap() |= (((v >> i) & 1) as u8) << (7 - n % 8);
                n += 1;
            }
        }
        out
    }

    #[test]
    fn reads_the_size_of_a_profile_0_key_frame() {
        // marker, profile 0, shown key frame, sync code, BT.601, studio range, 640x360.
        let header = bits(&[
            (2, 2),
            (2, 0),
            (1, 0),
            (1, 0),
            (1, 1),
            (1, 0),
            (24, SYNC_CODE),
            (3, 1),
            (1, 0),
            (16, 639),
            (16, 359),
            (8, 0),
        ]);
        assert_eq!(key_frame_size(&header), Some((640, 360)));
        // Profile 1 has subsampling bits before the size.
        let p1 = bits(&[
            (2, 2),
            (1, 1),
            (1, 0),
            (1, 0),
            (1, 0),
            (2, 0),
            (24, SYNC_CODE),
            (3, 2),
            (1, 1),
            (3, 0),
            (16, 1919),
            (16, 1079),
        ]);
        assert_eq!(key_frame_size(&p1), Some((1920, 1080)));
        assert_eq!(profile(&header), Some(0));
        assert_eq!(profile(&p1), Some(1));
        assert_eq!(key_frame(&header).map(|k| k.bit_depth), Some(8));
        // Profile 2, 10-bit (ten_or_twelve_bit 0), BT.709, 1280x720.
        let p2 = bits(&[
            (2, 2),
            (1, 0),
            (1, 1),
            (1, 0),
            (1, 0),
            (2, 0),
            (24, SYNC_CODE),
            (1, 0),
            (3, 2),
            (1, 0),
            (16, 1279),
            (16, 719),
        ]);
        let k = key_frame(&p2).unwrap();
        assert_eq!(
            (k.profile, k.bit_depth, k.width, k.height),
            (2, 10, 1280, 720)
        );
        // An inter frame still says its profile.
        let inter = bits(&[(2, 2), (1, 0), (1, 1), (1, 0), (1, 1), (2, 0)]);
        assert_eq!((profile(&inter), key_frame(&inter)), (Some(2), None));
        assert_eq!(profile(&[0x00]), None);
    }

    #[test]
    fn other_frames_and_garbage_have_no_size() {
        // An inter frame (frame_type 1).
        let inter = bits(&[(2, 2), (2, 0), (1, 0), (1, 1), (2, 0), (24, SYNC_CODE)]);
        assert_eq!(key_frame_size(&inter), None);
        // A shown-again frame.
        assert_eq!(
            key_frame_size(&bits(&[(2, 2), (2, 0), (1, 1), (3, 0)])),
            None
        );
        // A wrong marker or sync code, and truncated headers.
        assert_eq!(key_frame_size(&[0x00; 16]), None);
        let bad_sync = bits(&[
            (2, 2),
            (2, 0),
            (1, 0),
            (1, 0),
            (2, 0),
            (24, 0x123456),
            (32, 0),
            (8, 0),
        ]);
        assert_eq!(key_frame_size(&bad_sync), None);
        assert_eq!(key_frame_size(&[]), None);
        assert_eq!(key_frame_size(&[0x82, 0x49, 0x83, 0x42, 0x00]), None);
    }
}
