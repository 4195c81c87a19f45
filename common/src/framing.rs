//! The framing of upstream's RnD wire, sans-IO: packets as
//! `[u32 big-endian length][PacketWrapper]` frames, one after another on a
//! long-lived uni stream.
//!
//! Upstream's main branch sends every packet on a uni stream of its own: the
//! stream's end is the packet's end. Its `RnD` branch (since 320ca5af,
//! discussion #756) keeps a few uni streams open for a whole session, one
//! per kind of traffic, and delimits packets on them with a 4-byte length
//! (`RnD:actix-api/src/webtransport/bridge.rs` `read_length_prefixed_frame`,
//! `RnD:videocall-client/src/connection/webtransport.rs`). The two are not
//! compatible, and neither side falls back to the other: [`Wire`] names
//! which one a relay or a client speaks. Datagrams are never framed.
//!
//! [`frame`] writes a frame; [`FrameReader`] takes a stream's chunks as they
//! arrive and hands back whole frames, and refuses a length it can never
//! accept (0, or more than [`MAX_FRAME`]) as soon as it has read it, before
//! any of the payload, as upstream's reader does: a peer that speaks the
//! other wire is told at its first packet.

use std::fmt;
use std::str::FromStr;

use bytes::{Buf, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// The most bytes one frame may carry (upstream's `MAX_FRAME_SIZE`, the
/// same as a whole stream's limit on main, [`crate::wire::MAX_STREAM_BYTES`]).
pub const MAX_FRAME: usize = 4_000_000;

/// Bytes of a frame's length prefix.
pub const HEADER_LEN: usize = 4;

/// The length prefix of a frame carrying `len` bytes.
///
/// # Panics
/// If `len` does not fit in a `u32` (4 GiB or more; no packet comes near).
pub fn header(len: usize) -> [u8; HEADER_LEN] {
    u32::try_from(len)
        .expect("a frame's length fits in 32 bits")
        .to_be_bytes()
}

/// Appends `packet` to `out` as one frame: its length as a big-endian `u32`,
/// then its bytes. A packet of 0 or more than [`MAX_FRAME`] bytes makes a
/// frame that the peer refuses (and with it the rest of the stream): the
/// caller does not send one.
///
/// # Panics
/// As [`header`].
pub fn frame(packet: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + packet.len());
    out.extend_from_slice(&header(packet.len()));
    out.extend_from_slice(packet);
}

/// Why a framed stream cannot be read further. Any of them ends the stream:
/// where the next frame would start is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame's length is 0 or more than [`MAX_FRAME`]: the peer does not
    /// frame its packets (one packet per stream reads as a huge length), or
    /// lost its place. Refused before any of the payload is buffered.
    Malformed {
        /// The length the prefix gave.
        len: u64,
    },
    /// The stream ended inside a length prefix (1 to 3 of its 4 bytes).
    TruncatedHeader,
    /// The stream ended inside a frame's payload.
    TruncatedPayload {
        /// The length its prefix gave.
        expected: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Malformed { len: 0 } => write!(
                f,
                "a frame of 0 bytes, which no packet makes: the peer speaks another wire \
                 (one packet per stream?)"
            ),
            FrameError::Malformed { len } => write!(
                f,
                "a frame of {len} bytes, more than the {MAX_FRAME} a frame may hold: the peer \
                 speaks another wire (one packet per stream?)"
            ),
            FrameError::TruncatedHeader => write!(
                f,
                "the stream ended inside a frame's 4-byte length: the peer stopped in the middle \
                 of a frame, or does not frame its packets"
            ),
            FrameError::TruncatedPayload { expected } => write!(
                f,
                "the stream ended inside a frame of {expected} bytes: the peer stopped in the \
                 middle of a frame"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// What a frame's prefix says, checked.
fn checked_len(prefix: &[u8]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    match len as usize {
        0 => Err(FrameError::Malformed { len: 0 }),
        n if n > MAX_FRAME => Err(FrameError::Malformed { len: len.into() }),
        n => Ok(n),
    }
}

/// Splits one framed stream into its frames, fed with the stream's chunks as
/// they arrive.
///
/// Feed a chunk with [`FrameReader::push`], then take frames with
/// [`FrameReader::next`] until it gives `Ok(None)`; at the stream's end,
/// [`FrameReader::finish`] tells whether it ended between frames. Used that
/// way, the reader holds at most the part of one frame that has arrived plus
/// one chunk: it never reserves room for a payload ahead of its bytes, so a
/// peer announcing large frames it does not send costs nothing. Once it has
/// failed it keeps failing the same way and drops what it is given.
///
/// A frame is handed out without copying, as a slice of the reader's buffer:
/// a caller that keeps frames long copies them, so as not to keep the buffer
/// they came from.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
    failed: Option<FrameError>,
}

impl FrameReader {
    /// A reader at the start of a stream.
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// Appends the stream's next chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The next whole frame, `None` until more of the stream has arrived, or
    /// why the stream cannot be read further (from then on, every call).
    #[allow(clippy::should_implement_trait)] // fallible, unlike Iterator::next
    pub fn next(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = match checked_len(&self.buf[..HEADER_LEN]) {
            Ok(len) => len,
            Err(e) => {
                self.failed = Some(e);
                self.buf = BytesMut::new();
                return Err(e);
            }
        };
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Whether the stream, ended now, ended cleanly: between two frames.
    /// Frames still held (not yet taken with [`FrameReader::next`]) are
    /// whole and not an error; what follows them is checked.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut rest = &self.buf[..];
        loop {
            match rest.len() {
                0 => return Ok(()),
                n if n < HEADER_LEN => return Err(FrameError::TruncatedHeader),
                n => {
                    let len = checked_len(rest)?;
                    if n < HEADER_LEN + len {
                        return Err(FrameError::TruncatedPayload { expected: len });
                    }
                    rest = &rest[HEADER_LEN + len..];
                }
            }
        }
    }

    /// Bytes held: the part of the next frame that has arrived, and any
    /// whole frames not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Which of upstream's two wires a relay or a client speaks on uni streams.
/// Datagrams are the same on both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wire {
    /// One packet per uni stream, the stream's end its end (upstream main).
    #[default]
    PerPacket,
    /// `[u32 BE length][packet]` frames on a few persistent uni streams, one
    /// per kind of traffic (upstream RnD).
    Framed,
}

impl Wire {
    /// Both, in the order the help text gives them.
    pub const ALL: [Wire; 2] = [Wire::PerPacket, Wire::Framed];

    /// The name in configs, on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::PerPacket => "per_packet",
            Wire::Framed => "framed",
        }
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`Wire`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown wire {given:?}: expected \"per_packet\" (one packet per uni stream, upstream main) \
     or \"framed\" (length-prefixed packets on persistent uni streams, upstream RnD)"
)]
pub struct UnknownWire {
    /// What was given.
    pub given: String,
}

impl FromStr for Wire {
    type Err = UnknownWire;

    fn from_str(s: &str) -> Result<Wire, UnknownWire> {
        Wire::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| UnknownWire {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed<P: AsRef<[u8]>>(packets: &[P]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in packets {
            frame(p.as_ref(), &mut out);
        }
        out
    }

    /// Pushes `chunks` one at a time, taking every frame after each, as a
    /// stream's reader does; then finishes.
    fn read(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Result<(), FrameError>) {
        let mut r = FrameReader::new();
        let mut got = Vec::new();
        for c in chunks {
            r.push(c);
            loop {
                match r.next() {
                    Ok(Some(f)) => got.push(f.to_vec()),
                    Ok(None) => break,
                    Err(e) => return (got, Err(e)),
                }
            }
        }
        (got, r.finish())
    }

    #[test]
    fn a_frame_is_a_big_endian_length_then_the_packet() {
        assert_eq!(framed(&[b"abc"]), [0, 0, 0, 3, b'a', b'b', b'c']);
        assert_eq!(header(0x0102_0304), [1, 2, 3, 4]);
    }

    /// Three frames (small, empty-ish, large), split in two at every byte
    /// boundary, read back whole and in order.
    #[test]
    fn round_trip_split_at_every_byte() {
        let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let packets: [&[u8]; 3] = [b"first", b"x", &big];
        let bytes = framed(&packets);
        let want: Vec<Vec<u8>> = packets.iter().map(|p| p.to_vec()).collect();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let (got, end) = read(&[a, b]);
            assert_eq!(got, want, "cut at {cut}");
            assert_eq!(end, Ok(()), "cut at {cut}");
        }
        // And one byte at a time.
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(read(&chunks), (want, Ok(())));
    }

    #[test]
    fn two_frames_in_one_chunk() {
        let bytes = framed(&[b"one", b"two"]);
        let mut r = FrameReader::new();
        r.push(&bytes);
        assert_eq!(r.next().unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(r.next().unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(r.next(), Ok(None));
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn the_limit_exactly_is_a_frame_and_one_above_is_malformed_at_once() {
        let mut r = FrameReader::new();
        r.push(&header(MAX_FRAME));
        assert_eq!(r.next(), Ok(None), "a whole frame of the limit is awaited");
        r.push(&vec![7; MAX_FRAME]);
        let f = r.next().unwrap().expect("the whole frame");
        assert_eq!(f.len(), MAX_FRAME);

        let mut r = FrameReader::new();
        r.push(&header(MAX_FRAME + 1));
        let e = FrameError::Malformed {
            len: MAX_FRAME as u64 + 1,
        };
        assert_eq!(r.next(), Err(e), "refused on the length alone");
        r.push(&[0; 100]);
        assert_eq!(r.buffered(), 0, "nothing more is held once failed");
        assert_eq!(r.next(), Err(e), "and it stays failed");
        assert_eq!(r.finish(), Err(e));
    }

    /// A zero length is malformed, as upstream's reader has it: no packet
    /// is empty, and it would let a peer spin the reader.
    #[test]
    fn zero_length_is_malformed() {
        let (got, end) = read(&[&framed(&[b"ok"]), &[0, 0, 0, 0, 9][..]]);
        assert_eq!(got, [b"ok".to_vec()]);
        assert_eq!(end, Err(FrameError::Malformed { len: 0 }));
    }

    /// What a one-packet-per-stream peer sends: a PacketWrapper, whose
    /// first bytes (field 1, a varint; field 2, a length) read as a length
    /// far over the limit.
    #[test]
    fn a_per_packet_stream_reads_as_a_huge_length() {
        let packet = crate::wire::connection("alice", "room");
        let (got, end) = read(&[&packet[..]]);
        assert!(got.is_empty());
        match end {
            Err(FrameError::Malformed { len }) => assert!(len > MAX_FRAME as u64, "{len}"),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn truncation_at_the_end() {
        let bytes = framed(&[&b"whole"[..], b"cut short"]);
        let second = HEADER_LEN + 5;
        for cut in second + 1..second + HEADER_LEN {
            let (got, end) = read(&[&bytes[..cut]]);
            assert_eq!(got, [b"whole".to_vec()]);
            assert_eq!(end, Err(FrameError::TruncatedHeader), "cut at {cut}");
        }
        for cut in second + HEADER_LEN..bytes.len() {
            let (_, end) = read(&[&bytes[..cut]]);
            assert_eq!(end, Err(FrameError::TruncatedPayload { expected: 9 }));
        }
        // Frames not yet taken are no truncation; what follows them is checked.
        let mut r = FrameReader::new();
        r.push(&bytes);
        assert_eq!(r.finish(), Ok(()));
        r.push(&[0, 0]);
        assert_eq!(r.finish(), Err(FrameError::TruncatedHeader));
    }

    /// The reader holds no more than the frame in progress and one chunk.
    #[test]
    fn holds_one_frame_and_one_chunk_at_most() {
        let big = vec![1u8; 50_000];
        let bytes = framed(&[&big[..], b"small", &big]);
        let mut r = FrameReader::new();
        let mut most = 0;
        for chunk in bytes.chunks(1200) {
            r.push(chunk);
            most = most.max(r.buffered());
            while r.next().unwrap().is_some() {}
            assert!(r.buffered() < HEADER_LEN + big.len());
        }
        assert!(most <= HEADER_LEN + big.len() + 1200, "{most}");
    }

    /// A peer announcing the largest frame and sending little of it makes
    /// the reader hold what it sent, not reserve what it announced
    /// (upstream's reader allocates the announced length at once).
    #[test]
    fn a_large_announced_frame_reserves_nothing_ahead() {
        let mut r = FrameReader::new();
        r.push(&header(MAX_FRAME));
        r.push(&[1; 100]);
        assert_eq!(r.next(), Ok(None));
        assert!(r.buf.capacity() < 4096, "{}", r.buf.capacity());
    }

    #[test]
    fn errors_say_what_to_fix() {
        let e = FrameError::Malformed { len: 134_414_850 };
        assert_eq!(
            e.to_string(),
            "a frame of 134414850 bytes, more than the 4000000 a frame may hold: the peer speaks \
             another wire (one packet per stream?)"
        );
        assert!(FrameError::Malformed { len: 0 }
            .to_string()
            .contains("0 bytes"));
        assert!(FrameError::TruncatedPayload { expected: 9 }
            .to_string()
            .contains("frame of 9 bytes"));
    }

    #[test]
    fn wire_names() {
        for w in Wire::ALL {
            assert_eq!(w.to_string().parse::<Wire>(), Ok(w));
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(json, format!("\"{w}\""));
            assert_eq!(serde_json::from_str::<Wire>(&json).unwrap(), w);
        }
        assert_eq!(Wire::default(), Wire::PerPacket);
        let e = "per-packet".parse::<Wire>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown wire \"per-packet\": expected \"per_packet\""),
            "{e}"
        );
    }
}
