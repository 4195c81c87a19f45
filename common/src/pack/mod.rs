//! The pack: one file of pre-encoded frames, read once into memory and shared by every client.
//!
//! Layout (all integers little-endian; see `common/PACK_FORMAT.md`):
//!
//! ```text
//! 0       header (128 bytes): magic, version, offsets, counts, checksums
//! 4096    payloads, each frame aligned to 16 bytes
//! ...     track table (track_count × 96 bytes)
//! ...     frame index (frame_count × 32 bytes), grouped by track, in pts order
//! ```
//!
//! The writer streams payloads first and writes the tables at the end, so it
//! never holds the media in memory; the header is written last. The reader
//! reads the whole file once into memory it owns (so the file changing later
//! cannot affect it) and checks everything there (bounds, order, timing,
//! checksums), after which every frame access is a bounds-safe slice.

mod digest;
mod error;
mod format;
mod reader;
mod writer;

pub use digest::FrameDigests;
pub use error::Error;
pub use format::{
    Codec, FrameFlags, Origin, Role, Source, Track, TrackKind, MAGIC, MAX_LEN, MIN_VERSION,
    SOURCE_TEXT_MAX, VERSION,
};
pub use reader::{Frame, Reader};
pub use writer::Writer;

#[cfg(test)]
mod tests;
