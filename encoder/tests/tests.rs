//! Integration tests of synth-encoder: one binary, one module per area.
//!
//! - `pack`: built packs decode (every Opus packet, every VP9 frame from the
//!   first key frame), have the planned frame counts, pts and bitrates;
//! - `audio`: WAV input of many formats comes out as 48 kHz mono with the
//!   tone where it belongs, before and after Opus;
//! - `camera`: camera-like 1080p JPEGs (made by the test) encode to every
//!   rendition and are cropped to cover other aspect ratios;
//! - `meeting`: voices with voice activity, the silence track, video
//!   variants, the screen track, and espeak-ng's speech (skipped without it,
//!   unless `CI` is set);
//! - `cli`: the `synth-encode` binary end to end (build, inspect, export,
//!   ffprobe when installed, errors and exit codes);
//! - `inputs`: bring your own media: clips copied byte for byte (IVF, Ogg,
//!   and ffmpeg's WebM), the loop fitted to them, several rendition files,
//!   Y4M, raw I420 and PCM, MP3, and one line for each bad file.

mod audio;
mod camera;
mod cli;
mod inputs;
mod meeting;
mod pack;
mod support;
