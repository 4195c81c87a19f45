//! synth-encoder: pre-encodes Opus audio and VP9 video into a pack that
//! `synth-replay` reads once and sends, so synthetic clients cost no encoding.
//!
//! How the parts fit:
//!
//! - [`plan`] turns `--fps`/`--duration`/`--keyframe-interval` into frame counts
//!   and timestamps, with audio and video loops of exactly the same length;
//! - [`audio`] renders one loop of 48 kHz mono PCM per voice from a file
//!   (WAV, MP3, FLAC, AAC, Vorbis or raw PCM: down-mixed and resampled; one
//!   voice), tones, espeak-ng's speech or procedural speech, and marks each
//!   20 ms frame as voice or not ([`audio::vad`]); [`opus`] encodes it in
//!   20 ms CBR frames;
//! - [`video`] renders each rendition's frames from a Y4M or raw I420 file, a
//!   JPEG directory or a pattern (with a burned-in counter and grain), in
//!   variants with their own tint and label, and the screen share's slides
//!   ([`video::slides`]); [`yuv`] converts them to I420 (BT.601), and [`vp9`]
//!   wraps libvpx's encoder and decoder;
//! - [`clip`] reads what is copied instead of encoded (passthrough): the VP9
//!   frames of a WebM or IVF clip and the Opus packets of a WebM or Ogg one;
//!   [`container`] tells which file is which from its first bytes;
//! - [`build`] runs the whole pipeline into a [`synth_common::pack::Writer`];
//! - [`inspect`] measures a pack, and [`export`] writes a track as IVF
//!   ([`ivf`]) or Ogg Opus ([`ogg`]) for ffprobe, ffmpeg or a browser.
//!
//! [`opus::OpusFrameEncoder`] and [`vp9::Encoder`] are also the "live"
//! encoders a benchmark uses to compare encoding on the fly with replaying a
//! pack. The `synth-encode` binary (`src/main.rs`) only parses arguments and
//! prints; everything else is here. Errors are one [`Error`] enum.

pub mod audio;
pub mod build;
pub mod clip;
pub mod container;
mod error;
pub mod export;
pub mod inspect;
pub mod ivf;
pub mod noise;
pub mod ogg;
pub mod opus;
pub mod plan;
pub mod rendition;
pub mod video;
pub mod vp9;
pub mod yuv;

pub use error::Error;
