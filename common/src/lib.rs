//! Shared by `synth-encode` and `synth-replay`: the pack format and the wire.
//!
//! - [`pack`] is the on-disk file of pre-encoded Opus and VP9 frames: a fixed
//!   little-endian header, a track table, a fixed-size frame index and aligned
//!   payloads, made to be memory-mapped once and shared by every client.
//!   [`pack::Writer`] builds one in a single streaming pass; [`pack::Reader`]
//!   maps and validates one and hands out frames as `&[u8]` without copying.
//! - [`wire`] builds and parses the videocall-rs packets a synthetic client
//!   sends (`PacketWrapper` around `MediaPacket`, from `videocall-types`). Media
//!   packets are built as a small per-client prefix followed by the frame bytes
//!   straight from the map, so nothing but the per-client fields is rewritten.
//!
//! This crate has no CLI, no sockets and no `anyhow`: errors are typed.

pub mod ids;
pub mod pack;
pub mod wire;
