//! Errors from reading or writing a pack.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong opening, validating or writing a pack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened, read or written.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The pack path is a directory, a device, a FIFO or a socket, not a file.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead ("a directory", "a FIFO"...).
        kind: &'static str,
    },
    /// The file is larger than a pack may be, or grew past that while it was read.
    #[error("{} is larger than {limit} bytes, the most a pack may hold", path.display())]
    TooLarge {
        /// The path given.
        path: PathBuf,
        /// The limit, [`MAX_LEN`](super::MAX_LEN) bytes.
        limit: u64,
    },
    /// The writer's output path exists and is not a regular file; renaming the
    /// pack over it would replace a device node, a FIFO or a directory entry.
    #[error("{} is {kind}, not a regular file: refusing to replace it with a pack", path.display())]
    OutputNotAFile {
        /// The output path given.
        path: PathBuf,
        /// What it is ("a character device", "a directory"...).
        kind: &'static str,
    },
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
    #[error(
        "unsupported pack version {found} (this build reads versions {} to {supported})",
        super::MIN_VERSION
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u32,
        /// The newest version this build reads (it reads [`MIN_VERSION`](super::MIN_VERSION) and up).
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
    /// The source table (where each track came from) is out of place or malformed.
    #[error("corrupt source table: {0}")]
    BadSources(String),
    /// A track's loop (its last frame's end) differs from the header's loop duration.
    #[error("track {track} loops after {track_us} µs but the header says {header_us} µs")]
    LoopMismatch {
        /// Track number.
        track: usize,
        /// The track's loop, from its last pts + duration, in µs.
        track_us: u64,
        /// The header's `loop_duration_us`.
        header_us: u64,
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
