//! The library's error type: one enum for everything `synth-encode` can hit.

use std::io;
use std::path::PathBuf;

/// What can go wrong reading sources, encoding, or reading and writing packs.
///
/// [`Error::is_bad_input`] tells a caller whether the user's input was at fault
/// (the CLI exits with code 2 then) or the machine was (exit code 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input file or directory could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An output file or directory could not be created or written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The WAV file is malformed.
    #[error("reading WAV {}: {source}", path.display())]
    Wav {
        /// The WAV file.
        path: PathBuf,
        /// What hound reported.
        #[source]
        source: hound::Error,
    },
    /// The WAV file ends early: inside its header, or before its data chunk's
    /// promised length.
    #[error("{}: truncated WAV file ({detail})", path.display())]
    TruncatedWav {
        /// The WAV file.
        path: PathBuf,
        /// Where it ends, e.g. "data chunk promises 96000 bytes, 4000 present".
        detail: String,
    },
    /// The WAV file is well-formed but uses a rate or sample format we do not take.
    #[error("unsupported WAV {}: {reason}", path.display())]
    UnsupportedWav {
        /// The WAV file.
        path: PathBuf,
        /// Which property is out of range.
        reason: String,
    },
    /// A media file is malformed, truncated, or holds what this input does
    /// not take (another codec, profile or sample format); the reason says
    /// what it is and, where there is one, the way to use it.
    #[error("{}: {reason}", path.display())]
    Media {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one line.
        reason: String,
    },
    /// A JPEG could not be decoded.
    #[error("decoding image {}: {source}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder reported.
        #[source]
        source: image::ImageError,
    },
    /// The video source directory holds no `.jpg`/`.jpeg` files.
    #[error("no .jpg or .jpeg files in {}", .0.display())]
    NoImages(PathBuf),
    /// An argument is out of range or malformed (rendition, duration, frame rate...).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The pack has no track with the requested name.
    #[error("no track named {name:?} in the pack (it has: {available})")]
    NoSuchTrack {
        /// The requested name.
        name: String,
        /// The pack's track names, comma-separated.
        available: String,
    },
    /// espeak-ng is installed but failed to speak a sentence.
    #[error("espeak-ng (voice {voice}): {reason}")]
    Espeak {
        /// The espeak-ng voice it was run with.
        voice: &'static str,
        /// What went wrong: it could not start, exited with an error, or wrote no audio.
        reason: String,
    },
    /// The resampler could not be built or failed.
    #[error("resampling: {0}")]
    Resample(String),
    /// libopus reported an error.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// libvpx reported an error.
    #[error("libvpx {op}: {message}")]
    Vpx {
        /// The call that failed.
        op: &'static str,
        /// libvpx's error string and detail.
        message: String,
    },
    /// The pack could not be opened: missing, truncated, corrupt or not a pack.
    #[error("opening pack {}: {source}", path.display())]
    OpenPack {
        /// The pack file.
        path: PathBuf,
        /// What the reader found.
        #[source]
        source: synth_common::pack::Error,
    },
    /// The renditions came out with key frames at different positions, so a
    /// client could not switch between them at a key frame.
    #[error("key frames differ between renditions {first} (frames {first_keys}) and {other} (frames {other_keys}); renditions must share key-frame positions")]
    KeyframesMisaligned {
        /// The first video rendition.
        first: String,
        /// Its key-frame positions, shortened.
        first_keys: String,
        /// The rendition that differs.
        other: String,
        /// Its key-frame positions, shortened.
        other_keys: String,
    },
    /// Writing the pack failed.
    #[error("writing pack: {0}")]
    Pack(#[from] synth_common::pack::Error),
}

impl Error {
    /// True when the user's input caused the error (a missing or malformed source
    /// file, a bad argument, a corrupt pack), false when the system did (a full
    /// disk, a codec failure).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Read { .. }
            | Error::Wav { .. }
            | Error::TruncatedWav { .. }
            | Error::UnsupportedWav { .. }
            | Error::Media { .. }
            | Error::Image { .. }
            | Error::NoImages(_)
            | Error::Invalid { .. }
            | Error::NoSuchTrack { .. }
            | Error::OpenPack { .. } => true,
            Error::Write { .. }
            | Error::Resample(_)
            | Error::Espeak { .. }
            | Error::Opus(_)
            | Error::Vpx { .. }
            | Error::KeyframesMisaligned { .. }
            | Error::Pack(_) => false,
        }
    }

    pub(crate) fn media(path: &std::path::Path, reason: impl Into<String>) -> Error {
        Error::Media {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
