//! The pack reader past its checksums: the input's header gets the right
//! magic, version, record sizes and file length and both CRC-32s are
//! recomputed, so the fuzzer reaches the track table and the frame index.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synth_common::pack::Reader;

/// Header offsets (common/PACK_FORMAT.md).
const HEADER: usize = 128;

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let mut b = data.to_vec();
    if b.len() < HEADER {
        b.resize(HEADER, 0);
    }
    b[0..8].copy_from_slice(b"SYNTHPAK");
    put32(&mut b, 8, 1);
    put32(&mut b, 12, HEADER as u32);
    // Small counts, so the tables fit the input more often than not.
    let tracks = u32::from_le_bytes(b[16..20].try_into().unwrap()) % 5;
    put32(&mut b, 16, tracks);
    put32(&mut b, 20, 96);
    put32(&mut b, 24, 32);
    let frames = u32::from_le_bytes(b[28..32].try_into().unwrap()) % 256;
    put32(&mut b, 28, frames);
    let len = b.len() as u64;
    // Tables somewhere inside the input.
    for at in [32, 40] {
        let v = u64::from_le_bytes(b[at..at + 8].try_into().unwrap()) % len.max(1);
        put64(&mut b, at, v);
    }
    put64(&mut b, 64, len);
    let body = crc32fast::hash(&b[HEADER..]);
    put32(&mut b, 80, body);
    put32(&mut b, 84, 0);
    let head = crc32fast::hash(&b[..HEADER]);
    put32(&mut b, 84, head);
    if let Ok(r) = Reader::from_bytes(bytes::Bytes::from(b)) {
        synth_fuzz::walk(&r);
    }
});
