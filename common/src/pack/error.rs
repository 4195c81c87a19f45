//! Errors from reading or writing a pack.

use std::io;

/// Everything that can go wrong opening, validating or writing a pack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, mapped, read or written.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file is shorter than its header or than the sizes its header declares.
    #[error("truncated pack: {what} needs {needed} bytes but the file has {len}")]
    Truncated {
        /// Which part of the file is cut short.
        what: &'static str,
        /// How many bytes that part needs (end offset).
        needed: u64,
        /// The file's actual length.
        len: u64,
    },
    /// The file does not start with the pack magic: it is not a pack.
    #[error("not a pack: wrong magic {found:02x?} (expected \"SYNTHPAK\")")]
    BadMagic {
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// The pack was written by a format version this build does not read.
    #[error("unsupported pack version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// A header field is inconsistent (sizes, offsets or counts that cannot be right).
    #[error("corrupt pack header: {0}")]
    BadHeader(String),
    /// A track record is invalid (unknown kind or codec, bad name, bad rates).
    #[error("corrupt track {track}: {reason}")]
    BadTrack {
        /// Track number.
        track: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A frame index entry points outside the payload area or is out of order.
    #[error("corrupt frame index: track {track} frame {frame}: {reason}")]
    BadIndex {
        /// Track number.
        track: usize,
        /// Frame number within the track.
        frame: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored checksum does not match the bytes.
    #[error("checksum mismatch in {what}: stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// `"header"` or `"body"`.
        what: &'static str,
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed from the file.
        computed: u32,
    },
    /// The writer was given something the format cannot hold.
    #[error("invalid input for pack writer: {0}")]
    InvalidInput(String),
}
