//! What both sides of the wire share: the pack format, the videocall-rs
//! packets, the loss model, and the small helpers the replayer and the relay
//! would otherwise each write.
//!
//! - [`pack`] is the on-disk file of pre-encoded Opus and VP9 frames: a fixed
//!   little-endian header, a track table, a fixed-size frame index and aligned
//!   payloads, made to be read once and shared by every client.
//!   [`pack::Writer`] builds one in a single streaming pass; [`pack::Reader`]
//!   maps and validates one and hands out frames as `&[u8]` without copying.
//! - [`wire`] builds and parses the videocall-rs packets: what a client sends
//!   (`PacketWrapper` around `MediaPacket`, from `videocall-types`, media
//!   built as a per-client prefix followed by the frame bytes straight from
//!   the pack), what the server sends (SESSION_ASSIGNED, MEETING_STARTED,
//!   PARTICIPANT_*, CONGESTION), the packet types and the stream limit.
//!   [`framing`] is the other way to carry them on uni streams, upstream's
//!   RnD wire: length-prefixed frames on persistent streams ([`framing::Wire`]
//!   names which of the two a side speaks).
//!   [`layers`] writes and reads RnD's simulcast control: VIEWPORT,
//!   LAYER_PREFERENCE and LAYER_HINT (media carry their layer and kind in
//!   [`wire::MediaFields`]).
//! - [`seq`] is the loss model: one sequence tracker, used by the relay for
//!   what each sender delivered and by each client for what each peer did.
//!   [`quality`] builds on it what a receiver experiences of one sender:
//!   late packets, jitter, frame rate, freezes, and the exact loss check.
//! - [`ids`] (the server's id rule), [`jwt`] (room-access tokens),
//!   [`fingerprint`] (certificate pins), [`redact`] (secrets and overlong
//!   values out of logs and errors) and [`clock`] (the wall clock on the wire).
//! - [`ivf`] writes and reads IVF files (VP9 frames for ffmpeg and libvpx's
//!   tools), and [`vp9`] reads a key frame's size from its header.
//! - [`netem`] models a hostile network per participant (loss, delay and
//!   jitter, a rate cap, duplication, reordering, a schedule) as verdicts on
//!   datagrams; the replayer's socket wrapper carries them out.
//! - [`net`] (feature `net`): a UDP socket builder and readers of uni streams
//!   (whole streams, or the frames of framed ones), and [`http`] (feature
//!   `net`), the small HTTP server of `/metrics` and the relay's health port:
//!   the only parts that touch sockets.
//!
//! Everything but [`net`] and [`http`] is sans-IO. This crate has no CLI and no `anyhow`:
//! errors are typed.

pub mod clock;
pub mod fingerprint;
pub mod framing;
#[cfg(feature = "net")]
pub mod http;
pub mod ids;
pub mod ivf;
pub mod jwt;
pub mod layers;
#[cfg(feature = "net")]
pub mod net;
pub mod netem;
pub mod pack;
pub mod quality;
pub mod redact;
pub mod seq;
pub mod vp9;
pub mod wire;
