//! The pack reader on raw bytes: any input is refused with a typed error or
//! opens into a pack whose every frame can be read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synth_common::pack::Reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Reader::from_bytes(bytes::Bytes::copy_from_slice(data)) {
        synth_fuzz::walk(&r);
    }
});
