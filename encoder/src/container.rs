//! What a media file is, from its first bytes (not its name).
//!
//! `--audio FILE` and `--video FILE` take their path from the user and decide
//! what to do with it here: a WebM, Matroska, IVF or Ogg clip is copied into the
//! pack (passthrough), a WAV goes to the WAV reader, a Y4M to the Y4M reader,
//! anything else to symphonia (audio) or is refused with a line that says what
//! it is (video). Reading the signature rather than the extension keeps a
//! mislabelled file from going down the wrong path with a confusing error.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::Error;

/// The container a file's first bytes announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// EBML: WebM or Matroska (`webm` says which the header claims).
    Matroska {
        /// The EBML DocType is `webm`.
        webm: bool,
    },
    /// IVF (`DKIF`): libvpx's and ffmpeg's plain VP8/VP9/AV1 frame container.
    Ivf,
    /// Ogg (`OggS`): Opus, Vorbis, FLAC or Theora streams.
    Ogg,
    /// YUV4MPEG2: raw frames with a text header.
    Y4m,
    /// RIFF (WAVE, or a damaged or other RIFF file the WAV reader refuses).
    Wav,
    /// ISO base media (MP4, M4A, MOV): a `ftyp` box at offset 4.
    Mp4,
    /// Anything else (MP3, FLAC, ADTS AAC, ... for symphonia to probe).
    Other,
}

impl Container {
    /// Reads the first bytes of `path` and names its container.
    pub fn sniff(path: &Path) -> Result<Container, Error> {
        let read_err = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut head = Vec::with_capacity(64);
        File::open(path)
            .map_err(read_err)?
            .take(64)
            .read_to_end(&mut head)
            .map_err(read_err)?;
        Ok(Container::of(&head))
    }

    /// The container that bytes starting a file announce.
    pub fn of(head: &[u8]) -> Container {
        if head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
            // The DocType string sits in the first few dozen bytes of the EBML header.
            let webm = head.windows(4).any(|w| w == b"webm");
            Container::Matroska { webm }
        } else if head.starts_with(b"DKIF") {
            Container::Ivf
        } else if head.starts_with(b"OggS") {
            Container::Ogg
        } else if head.starts_with(b"YUV4MPEG2") {
            Container::Y4m
        } else if head.starts_with(b"RIFF") {
            // The WAV reader says what is wrong with a RIFF file that is not WAVE.
            Container::Wav
        } else if head.get(4..8) == Some(b"ftyp") {
            Container::Mp4
        } else {
            Container::Other
        }
    }

    /// Its name in messages: `WebM`, `Matroska`, `IVF`, ...
    pub fn name(self) -> &'static str {
        match self {
            Container::Matroska { webm: true } => "WebM",
            Container::Matroska { webm: false } => "Matroska",
            Container::Ivf => "IVF",
            Container::Ogg => "Ogg",
            Container::Y4m => "Y4M",
            Container::Wav => "WAV",
            Container::Mp4 => "MP4",
            Container::Other => "media",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_containers_by_their_signature() {
        let ebml = [0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x82, 0x84];
        let mut webm = ebml.to_vec();
        webm.extend_from_slice(b"webm");
        assert_eq!(Container::of(&webm), Container::Matroska { webm: true });
        let mut mkv = ebml.to_vec();
        mkv.extend_from_slice(b"matroska");
        assert_eq!(Container::of(&mkv).name(), "Matroska");
        assert_eq!(Container::of(b"DKIF\0\0 \0VP90"), Container::Ivf);
        assert_eq!(Container::of(b"OggS\0\x02"), Container::Ogg);
        assert_eq!(Container::of(b"YUV4MPEG2 W64 H64"), Container::Y4m);
        assert_eq!(Container::of(b"RIFF\x24\0\0\0WAVEfmt "), Container::Wav);
        assert_eq!(Container::of(b"\0\0\0\x20ftypisom"), Container::Mp4);
        assert_eq!(Container::of(b"ID3\x04"), Container::Other);
        assert_eq!(Container::of(b""), Container::Other);
    }
}
