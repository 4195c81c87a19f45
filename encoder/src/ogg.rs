//! Ogg Opus writing (RFC 3533 pages, RFC 7845 Opus mapping), and reading
//! an Ogg file's packets back ([`read_streams`]) for `--audio clip.ogg`.
//!
//! The stream is an `OpusHead` page (beginning of stream), an `OpusTags` page,
//! then audio pages of up to 50 packets (one second of 20 ms frames). Each
//! audio page's granule position is the 48 kHz sample count at the end of its
//! last packet, counted from the start of the stream including the pre-skip;
//! the last page carries the end-of-stream flag. Page checksums are the Ogg
//! CRC-32: polynomial 0x04c11db7, no reflection, initial value 0, no final XOR,
//! computed over the page with its checksum field zeroed.

use std::io::{self, Write};

/// Packets per audio page at most (50 × 20 ms = 1 s).
const PACKETS_PER_PAGE: usize = 50;
/// Lacing values per page at most.
const MAX_SEGMENTS: usize = 255;

const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;

/// Writes an Ogg Opus stream.
pub struct OggOpusWriter<W: Write> {
    out: W,
    serial: u32,
    sequence: u32,
    granule: u64,
    /// Packets waiting for the current page.
    pending: Vec<Vec<u8>>,
    /// 48 kHz samples the pending packets decode to.
    pending_samples: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// Starts a stream: writes the `OpusHead` and `OpusTags` pages.
    ///
    /// `pre_skip` is the encoder's look-ahead in 48 kHz samples, which a player
    /// drops from the start; `input_rate` the original sample rate (informative).
    pub fn new(
        mut out: W,
        serial: u32,
        channels: u8,
        pre_skip: u16,
        input_rate: u32,
        vendor: &str,
    ) -> io::Result<OggOpusWriter<W>> {
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(channels);
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&input_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono or stereo, no table
        write_page(&mut out, FLAG_BOS, 0, serial, 0, &[&head])?;

        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        write_page(&mut out, 0, 0, serial, 1, &[&tags])?;

        Ok(OggOpusWriter {
            out,
            serial,
            sequence: 2,
            granule: 0,
            pending: Vec::new(),
            pending_samples: 0,
        })
    }

    /// Adds one Opus packet that decodes to `samples` samples at 48 kHz.
    pub fn push(&mut self, packet: &[u8], samples: u64) -> io::Result<()> {
        let segments: usize = self.pending.iter().map(|p| lacing_len(p.len())).sum();
        if self.pending.len() == PACKETS_PER_PAGE
            || segments + lacing_len(packet.len()) > MAX_SEGMENTS
        {
            self.flush_page(0)?;
        }
        self.pending.push(packet.to_vec());
        self.pending_samples += samples;
        Ok(())
    }

    /// Writes the last page (end of stream) and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_page(FLAG_EOS)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn flush_page(&mut self, flags: u8) -> io::Result<()> {
        if self.pending.is_empty() && flags & FLAG_EOS == 0 {
            return Ok(());
        }
        self.granule += self.pending_samples;
        let packets: Vec<&[u8]> = self.pending.iter().map(|p| p.as_slice()).collect();
        write_page(
            &mut self.out,
            flags,
            self.granule,
            self.serial,
            self.sequence,
            &packets,
        )?;
        self.sequence += 1;
        self.pending.clear();
        self.pending_samples = 0;
        Ok(())
    }
}

/// One logical stream of an Ogg file, as read by [`read_streams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OggStream {
    /// Its serial number.
    pub serial: u32,
    /// Its packets, whole, in order (the first is the codec's header).
    pub packets: Vec<Vec<u8>>,
    /// Its last page carried the end-of-stream flag.
    pub ended: bool,
}

/// Why bytes are not a well-formed Ogg file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OggError {
    /// No page starts where one should.
    #[error("no Ogg page at byte {0} (not an Ogg file, or damaged)")]
    NotOgg(usize),
    /// The file ends inside a page.
    #[error("truncated: the page at byte {at} needs {needed} bytes, {left} are left")]
    Truncated {
        /// Where the page starts.
        at: usize,
        /// Bytes the page needs.
        needed: usize,
        /// Bytes left in the file.
        left: usize,
    },
    /// A page's CRC does not match its bytes.
    #[error("the page at byte {0} is damaged (checksum mismatch)")]
    Checksum(usize),
    /// A page continues a packet its stream never started.
    #[error("the page at byte {0} continues a packet that never started")]
    Orphan(usize),
}

/// Reads every page of `buf` (checking each page's CRC) and returns the
/// packets of each logical stream, streams in the order their first pages
/// come. A packet still open when its stream's pages run out is dropped; the
/// stream's [`OggStream::ended`] then is false, as it is when the last page
/// lacks the end-of-stream flag: both mean the file was cut short.
pub fn read_streams(buf: &[u8]) -> Result<Vec<OggStream>, OggError> {
    let mut streams: Vec<OggStream> = Vec::new();
    // The packet each stream has open across a page boundary.
    let mut open: Vec<Option<Vec<u8>>> = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let left = buf.len() - at;
        let truncated = |needed| OggError::Truncated { at, needed, left };
        let head = buf.get(at..at + 27).ok_or_else(|| truncated(27))?;
        if &head[..4] != b"OggS" || head[4] != 0 {
            return Err(OggError::NotOgg(at));
        }
        let flags = head[5];
        let serial = u32::from_le_bytes(head[14..18].try_into().expect("4 bytes"));
        let nseg = head[26] as usize;
        let lacing = buf
            .get(at + 27..at + 27 + nseg)
            .ok_or_else(|| truncated(27 + nseg))?;
        let body_len: usize = lacing.iter().map(|&v| v as usize).sum();
        let len = 27 + nseg + body_len;
        let page = buf.get(at..at + len).ok_or_else(|| truncated(len))?;
        let mut zeroed = page.to_vec();
        zeroed[22..26].fill(0);
        if crc32(&zeroed) != u32::from_le_bytes(page[22..26].try_into().expect("4 bytes")) {
            return Err(OggError::Checksum(at));
        }
        let s = match streams.iter().position(|s| s.serial == serial) {
            Some(s) => s,
            None => {
                streams.push(OggStream {
                    serial,
                    packets: Vec::new(),
                    ended: false,
                });
                open.push(None);
                streams.len() - 1
            }
        };
        let mut packet = match (flags & 0x01 != 0, open[s].take()) {
            (true, Some(p)) => p,
            (true, None) => return Err(OggError::Orphan(at)),
            // A fresh packet; one left open by a page without the continuation flag is lost.
            (false, _) => Vec::new(),
        };
        let mut body = &page[27 + nseg..];
        for &v in lacing {
            let (part, rest) = body.split_at(v as usize);
            packet.extend_from_slice(part);
            body = rest;
            if v < 255 {
                streams[s].packets.push(std::mem::take(&mut packet));
            }
        }
        // A last lacing value of 255 leaves the packet open for the next page.
        if lacing.last() == Some(&255) {
            open[s] = Some(packet);
        }
        streams[s].ended = flags & FLAG_EOS != 0 && open[s].is_none();
        at += len;
    }
    Ok(streams)
}

/// Lacing values a packet of `len` bytes takes: 255s, then the remainder (possibly 0).
fn lacing_len(len: usize) -> usize {
    len / 255 + 1
}

/// Writes one page holding whole `packets`.
fn write_page(
    out: &mut impl Write,
    flags: u8,
    granule: u64,
    serial: u32,
    sequence: u32,
    packets: &[&[u8]],
) -> io::Result<()> {
    let mut lacing = Vec::new();
    for p in packets {
        lacing.extend(std::iter::repeat_n(255u8, p.len() / 255));
        lacing.push((p.len() % 255) as u8);
    }
    debug_assert!(lacing.len() <= MAX_SEGMENTS);
    let mut page =
        Vec::with_capacity(27 + lacing.len() + packets.iter().map(|p| p.len()).sum::<usize>());
    page.extend_from_slice(b"OggS");
    page.push(0); // stream structure version
    page.push(flags);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&serial.to_le_bytes());
    page.extend_from_slice(&sequence.to_le_bytes());
    page.extend_from_slice(&[0; 4]); // checksum, filled in below
    page.push(lacing.len() as u8);
    page.extend_from_slice(&lacing);
    for p in packets {
        page.extend_from_slice(p);
    }
    let crc = crc32(&page);
    page[22..26].copy_from_slice(&crc.to_le_bytes());
    out.write_all(&page)
}

/// The Ogg CRC-32 (polynomial 0x04c11db7, MSB first, init 0, no final XOR).
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut r = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
                bit += 1;
            }
            table[i] = r;
            i += 1;
        }
        table
    };
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ b) as usize]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_reference_check_value() {
        // CRC-32/CKSUM (catalogue check value 0x765e7680) is this CRC with a final
        // XOR of 0xffffffff, so the Ogg CRC of "123456789" is its complement.
        assert_eq!(crc32(b"123456789"), 0x89a1_897f);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn pages_are_laced_and_numbered() {
        let mut w = OggOpusWriter::new(Vec::new(), 7, 1, 312, 48_000, "test").unwrap();
        for k in 0..120usize {
            // One packet of 300 bytes needs two lacing values (255 + 45).
            let len = if k == 3 { 300 } else { 80 };
            w.push(&vec![k as u8; len], 960).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut pages = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            assert_eq!(&bytes[at..at + 4], b"OggS");
            let nseg = bytes[at + 26] as usize;
            let body: usize = bytes[at + 27..at + 27 + nseg]
                .iter()
                .map(|&v| v as usize)
                .sum();
            let len = 27 + nseg + body;
            let page = &bytes[at..at + len];
            let mut zeroed = page.to_vec();
            zeroed[22..26].fill(0);
            assert_eq!(
                u32::from_le_bytes(page[22..26].try_into().unwrap()),
                crc32(&zeroed)
            );
            let granule = u64::from_le_bytes(page[6..14].try_into().unwrap());
            let seq = u32::from_le_bytes(page[18..22].try_into().unwrap());
            pages.push((page[5], granule, seq));
            at += len;
        }
        // Head (BOS), tags, then 50 + 50 + 20 packets, the last page EOS.
        assert_eq!(
            pages,
            vec![
                (2, 0, 0),
                (0, 0, 1),
                (0, 50 * 960, 2),
                (0, 100 * 960, 3),
                (4, 120 * 960, 4)
            ]
        );
        assert_eq!(&bytes[28..36], b"OpusHead");
        assert_eq!(u16::from_le_bytes([bytes[38], bytes[39]]), 312);
    }

    #[test]
    fn reads_back_what_it_wrote_and_refuses_damage() {
        let mut w = OggOpusWriter::new(Vec::new(), 9, 2, 312, 48_000, "test").unwrap();
        // A packet of 600 bytes crosses lacing values; 120 packets cross pages.
        let packets: Vec<Vec<u8>> = (0..120usize)
            .map(|k| vec![k as u8; if k == 7 { 600 } else { 60 + k }])
            .collect();
        for p in &packets {
            w.push(p, 960).unwrap();
        }
        let bytes = w.finish().unwrap();
        let streams = read_streams(&bytes).unwrap();
        assert_eq!(streams.len(), 1);
        let s = &streams[0];
        assert_eq!((s.serial, s.ended), (9, true));
        assert_eq!(&s.packets[0][..8], b"OpusHead");
        assert_eq!(&s.packets[1][..8], b"OpusTags");
        assert_eq!(&s.packets[2..], &packets[..]);

        // Cut inside a page, a flipped byte, and a file cut at a page boundary.
        let cut = read_streams(&bytes[..bytes.len() - 10]).unwrap_err();
        assert!(matches!(cut, OggError::Truncated { .. }), "{cut}");
        let mut flipped = bytes.clone();
        flipped[200] ^= 1;
        assert!(matches!(read_streams(&flipped), Err(OggError::Checksum(_))));
        let second_page = 28 + 19;
        let third = second_page + 27 + 1 + bytes[second_page + 27] as usize;
        let head_only = read_streams(&bytes[..third]).unwrap();
        assert!(!head_only[0].ended);
        assert!(matches!(
            read_streams(b"RIFF0000WAVEfmt xxxxxxxxxxxxxxxxxxx"),
            Err(OggError::NotOgg(0))
        ));
    }

    /// A packet of 255 × n bytes ends with a lacing value of 0, and one
    /// longer than a page's 255 lacing values continues on the next page.
    #[test]
    fn packets_across_pages_are_joined() {
        let packet = vec![7u8; 255 * 300];
        let mut lacing_first = vec![255u8; 255];
        let mut body = packet[..255 * 255].to_vec();
        let mut pages = Vec::new();
        // Two pages by hand: 255 full segments, then 45 more and a 0.
        let mut raw = Vec::new();
        raw.extend_from_slice(b"OggS");
        raw.extend_from_slice(&[0, 0]);
        raw.extend_from_slice(&u64::MAX.to_le_bytes());
        raw.extend_from_slice(&5u32.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&[0; 4]);
        raw.push(255);
        raw.append(&mut lacing_first);
        raw.append(&mut body);
        let crc = crc32(&raw);
        raw[22..26].copy_from_slice(&crc.to_le_bytes());
        pages.extend_from_slice(&raw);
        let mut raw = Vec::new();
        raw.extend_from_slice(b"OggS");
        raw.extend_from_slice(&[0, 0x01 | FLAG_EOS]);
        raw.extend_from_slice(&0u64.to_le_bytes());
        raw.extend_from_slice(&5u32.to_le_bytes());
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.extend_from_slice(&[0; 4]);
        raw.push(46);
        raw.extend(std::iter::repeat_n(255u8, 45));
        raw.push(0);
        raw.extend_from_slice(&packet[255 * 255..]);
        let crc = crc32(&raw);
        raw[22..26].copy_from_slice(&crc.to_le_bytes());
        pages.extend_from_slice(&raw);
        let streams = read_streams(&pages).unwrap();
        assert_eq!(streams[0].packets, vec![packet]);
        assert!(streams[0].ended);
        // The second page alone continues nothing.
        assert_eq!(
            read_streams(&raw),
            Err(OggError::Orphan(0)),
            "a continuation with no start"
        );
    }
}
