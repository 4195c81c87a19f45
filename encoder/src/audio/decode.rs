//! Compressed and raw audio files, decoded to mono `f32` at their own rate
//! for the same down-mix, resampling and Opus encoding as a WAV file.
//!
//! - [`symphonia`](https://docs.rs/symphonia) reads MP3, FLAC, AAC (ADTS, or
//!   in MP4/M4A), Vorbis and FLAC in Ogg, and the audio of WebM/Matroska;
//! - an Opus clip (Ogg or WebM) is read with [`crate::clip`] and decoded by
//!   libopus, which symphonia has no decoder for;
//! - raw PCM ([`RawPcm`], `pcm:s16le:48000:2:FILE`) is read as the user
//!   describes it: nothing in the file says its format.
//!
//! Down-mixing averages the channels, as for WAV.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::wav::{MAX_RATE, MIN_RATE};
use crate::clip::AudioClip;
use crate::Error;

/// What a decoded file held, before conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Mono samples at `rate`, at most the length asked for.
    pub mono: Vec<f32>,
    /// Sample rate, Hz.
    pub rate: u32,
    /// Channels in the file.
    pub channels: u16,
    /// The codec or sample format, e.g. `MP3`, `raw s16le`.
    pub format: String,
    /// The file's length in seconds (as far as it was read when unknown).
    pub seconds: f64,
}

/// A raw PCM sample format, as ffmpeg names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Unsigned 8-bit, 128 the middle.
    U8,
    /// Signed 8-bit.
    S8,
    /// Signed 16-bit, little- or big-endian.
    S16 {
        /// Little-endian.
        le: bool,
    },
    /// Signed 24-bit packed in 3 bytes.
    S24 {
        /// Little-endian.
        le: bool,
    },
    /// Signed 32-bit.
    S32 {
        /// Little-endian.
        le: bool,
    },
    /// 32-bit IEEE float.
    F32 {
        /// Little-endian.
        le: bool,
    },
}

impl SampleFormat {
    /// Every format, by its name.
    pub const ALL: [(&'static str, SampleFormat); 10] = [
        ("u8", SampleFormat::U8),
        ("s8", SampleFormat::S8),
        ("s16le", SampleFormat::S16 { le: true }),
        ("s16be", SampleFormat::S16 { le: false }),
        ("s24le", SampleFormat::S24 { le: true }),
        ("s24be", SampleFormat::S24 { le: false }),
        ("s32le", SampleFormat::S32 { le: true }),
        ("s32be", SampleFormat::S32 { le: false }),
        ("f32le", SampleFormat::F32 { le: true }),
        ("f32be", SampleFormat::F32 { le: false }),
    ];

    /// Bytes of one sample.
    pub fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 | SampleFormat::S8 => 1,
            SampleFormat::S16 { .. } => 2,
            SampleFormat::S24 { .. } => 3,
            SampleFormat::S32 { .. } | SampleFormat::F32 { .. } => 4,
        }
    }

    /// Its name, e.g. `s16le`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// One sample from its bytes, scaled to `[-1, 1)`.
    fn sample(self, b: &[u8]) -> f32 {
        let int = |v: i64, bits: u32| v as f32 / (1u64 << (bits - 1)) as f32;
        match self {
            SampleFormat::U8 => (b[0] as f32 - 128.0) / 128.0,
            SampleFormat::S8 => b[0] as i8 as f32 / 128.0,
            SampleFormat::S16 { le } => {
                let v = [b[0], b[1]];
                int(
                    if le {
                        i16::from_le_bytes(v)
                    } else {
                        i16::from_be_bytes(v)
                    } as i64,
                    16,
                )
            }
            SampleFormat::S24 { le } => {
                let (lo, mid, hi) = if le {
                    (b[0], b[1], b[2])
                } else {
                    (b[2], b[1], b[0])
                };
                // Sign-extend from the top byte.
                let v = i32::from_le_bytes([0, lo, mid, hi]) >> 8;
                int(v as i64, 24)
            }
            SampleFormat::S32 { le } => {
                let v = [b[0], b[1], b[2], b[3]];
                int(
                    if le {
                        i32::from_le_bytes(v)
                    } else {
                        i32::from_be_bytes(v)
                    } as i64,
                    32,
                )
            }
            SampleFormat::F32 { le } => {
                let v = [b[0], b[1], b[2], b[3]];
                if le {
                    f32::from_le_bytes(v)
                } else {
                    f32::from_be_bytes(v)
                }
            }
        }
    }
}

/// A raw PCM file and the format the user gives for it:
/// `pcm:FORMAT:RATE:CHANNELS:FILE`, e.g. `pcm:s16le:48000:2:voice.raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPcm {
    /// Sample format.
    pub format: SampleFormat,
    /// Sample rate, Hz.
    pub rate: u32,
    /// Channels, interleaved.
    pub channels: u16,
    /// The file.
    pub path: PathBuf,
}

impl FromStr for RawPcm {
    type Err = Error;

    /// `FORMAT:RATE:CHANNELS:FILE` (what follows `pcm:`); the file may hold colons.
    fn from_str(s: &str) -> Result<RawPcm, Error> {
        let names: Vec<&str> = SampleFormat::ALL.iter().map(|(n, _)| *n).collect();
        let bad = |why: String| {
            Error::invalid(
                "audio source",
                format!("pcm:{s}: {why} (expected pcm:FORMAT:RATE:CHANNELS:FILE, e.g. pcm:s16le:48000:2:voice.raw)"),
            )
        };
        let mut parts = s.splitn(4, ':');
        let (Some(format), Some(rate), Some(channels), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("four fields needed".into()));
        };
        let format = SampleFormat::ALL
            .iter()
            .find(|(n, _)| *n == format)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                bad(format!(
                    "sample format {format:?} is not one of {}",
                    names.join(", ")
                ))
            })?;
        let rate: u32 = rate
            .parse()
            .ok()
            .filter(|r| (MIN_RATE..=MAX_RATE).contains(r))
            .ok_or_else(|| {
                bad(format!(
                    "rate {rate:?} is not a number in {MIN_RATE}..={MAX_RATE}"
                ))
            })?;
        let channels: u16 = channels
            .parse()
            .ok()
            .filter(|c| (1..=32).contains(c))
            .ok_or_else(|| bad(format!("channels {channels:?} is not a number in 1..=32")))?;
        if path.is_empty() {
            return Err(bad("no file".into()));
        }
        Ok(RawPcm {
            format,
            rate,
            channels,
            path: PathBuf::from(path),
        })
    }
}

impl fmt::Display for RawPcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pcm:{}:{}:{}:{}",
            self.format.name(),
            self.rate,
            self.channels,
            self.path.display()
        )
    }
}

/// Reads at most `max_seconds` of the raw PCM file `pcm` as mono.
pub fn read_raw(pcm: &RawPcm, max_seconds: f64) -> Result<Decoded, Error> {
    let path = &pcm.path;
    let read_err = |source| Error::Read {
        path: path.clone(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    let frame = pcm.format.bytes() * pcm.channels as usize;
    if len % frame as u64 != 0 {
        return Err(Error::media(
            path,
            format!(
                "{len} bytes is not a whole number of {} {}-channel frames ({frame} bytes each): check the format",
                pcm.format.name(),
                pcm.channels
            ),
        ));
    }
    let frames = (len / frame as u64) as usize;
    let wanted = frames.min((max_seconds * pcm.rate as f64).ceil() as usize);
    let mut bytes = Vec::with_capacity(wanted * frame);
    file.take((wanted * frame) as u64)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let size = pcm.format.bytes();
    let mono = bytes
        .chunks_exact(frame)
        .map(|f| {
            f.chunks_exact(size)
                .map(|s| pcm.format.sample(s))
                .sum::<f32>()
                / pcm.channels as f32
        })
        .collect();
    Ok(Decoded {
        mono,
        rate: pcm.rate,
        channels: pcm.channels,
        format: format!("raw {}", pcm.format.name()),
        seconds: frames as f64 / pcm.rate as f64,
    })
}

/// Decodes at most `max_seconds` of the first audio track of `path` with
/// symphonia, down-mixed to mono.
pub fn read_file(path: &Path, max_seconds: f64) -> Result<Decoded, Error> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| Error::media(path, reason);
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| {
            bad(format!(
                "not an audio file this build decodes (WAV, MP3, FLAC, AAC or M4A, Ogg Vorbis, WebM): {e}"
            ))
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| bad("has no audio track".into()))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| bad("has no audio track".into()))?
        .clone();
    let track_id = track.id;
    let known_frames = track.num_frames;
    let codecs = symphonia::default::get_codecs();
    let codec = codecs
        .get_audio_decoder(params.codec)
        .map(|c| c.codec.info.short_name.to_ascii_uppercase());
    let mut decoder = codecs
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| {
            bad(format!(
                "its audio codec ({}) has no decoder in this build: {e}",
                codec.clone().unwrap_or_else(|| params.codec.to_string())
            ))
        })?;
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count()) as u16;
    let mut mono = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut decoded_frames = 0u64;
    loop {
        if rate > 0 && mono.len() as f64 >= max_seconds * rate as f64 {
            break;
        }
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A file cut short ends where it is cut.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break
            }
            Err(e) => return Err(bad(format!("reading: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            // A damaged packet: skip it, as a player would.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(bad(format!("decoding: {e}"))),
        };
        rate = buf.spec().rate();
        let n = buf.spec().channels().count().max(1);
        channels = n as u16;
        buf.copy_to_vec_interleaved(&mut interleaved);
        decoded_frames += (interleaved.len() / n) as u64;
        mono.extend(
            interleaved
                .chunks_exact(n)
                .map(|f| f.iter().sum::<f32>() / n as f32),
        );
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(bad(format!(
            "sample rate {rate} Hz is not in {MIN_RATE}..={MAX_RATE}"
        )));
    }
    if mono.is_empty() {
        return Err(bad("holds no audio that decodes".into()));
    }
    let frames = known_frames.unwrap_or(decoded_frames).max(decoded_frames);
    Ok(Decoded {
        mono,
        rate,
        channels,
        format: codec.unwrap_or_else(|| "audio".into()),
        seconds: frames as f64 / rate as f64,
    })
}

/// Decodes an Opus clip's packets with libopus, to 48 kHz mono: each packet
/// gives exactly `clip.packet_samples` samples, so sample `k * n` starts
/// packet `k` (the voice flag of each packet is read off these).
pub fn decode_opus(clip: &AudioClip) -> Result<Vec<f32>, Error> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono)?;
    let n = clip.packet_samples as usize;
    let mut pcm = vec![0f32; clip.packets.len() * n];
    for (packet, out) in clip.packets.iter().zip(pcm.chunks_exact_mut(n)) {
        let got = decoder.decode_float(packet, out, false).map_err(|e| {
            Error::media(
                &clip.path,
                format!("{}: an Opus packet does not decode: {e}", clip.track),
            )
        })?;
        debug_assert_eq!(got, n);
    }
    Ok(pcm)
}

/// An Opus clip, decoded for the encode path (`--audio encode:clip.webm`).
pub fn read_opus_clip(clip: &AudioClip, max_seconds: f64) -> Result<Decoded, Error> {
    let mut mono = decode_opus(clip)?;
    mono.truncate((max_seconds * 48_000.0).ceil() as usize);
    Ok(Decoded {
        mono,
        rate: 48_000,
        channels: clip.channels as u16,
        format: format!("Opus ({}), decoded", clip.track),
        seconds: clip.seconds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_pcm_and_refuses_bad_fields() {
        let p: RawPcm = "s16le:44100:2:a:b.raw".parse().unwrap();
        assert_eq!(
            (p.format, p.rate, p.channels, p.path.to_str()),
            (SampleFormat::S16 { le: true }, 44_100, 2, Some("a:b.raw"))
        );
        assert_eq!(p.to_string(), "pcm:s16le:44100:2:a:b.raw");
        for bad in [
            "s16le:44100:2",
            "s17le:44100:2:x",
            "s16le:1:2:x",
            "s16le:8000:0:x",
            "f32le:8000:1:",
        ] {
            let e = bad.parse::<RawPcm>().unwrap_err();
            assert!(
                e.is_bad_input() && e.to_string().contains("pcm:FORMAT"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn samples_scale_to_plus_minus_one() {
        use SampleFormat::*;
        assert_eq!(U8.sample(&[0]), -1.0);
        assert_eq!(U8.sample(&[128]), 0.0);
        assert_eq!(S8.sample(&[0x80]), -1.0);
        assert_eq!(S16 { le: true }.sample(&[0x00, 0x40]), 0.5);
        assert_eq!(S16 { le: false }.sample(&[0x40, 0x00]), 0.5);
        assert_eq!(S24 { le: true }.sample(&[0, 0, 0xc0]), -0.5);
        assert_eq!(S24 { le: false }.sample(&[0xc0, 0, 0]), -0.5);
        assert_eq!(S32 { le: true }.sample(&[0, 0, 0, 0x40]), 0.5);
        assert_eq!(F32 { le: true }.sample(&0.25f32.to_le_bytes()), 0.25);
        assert_eq!(F32 { le: false }.sample(&0.25f32.to_be_bytes()), 0.25);
    }
}
