//! How the relay routes a received packet: its [`Kind`], which
//! `Tally::count` (`stats`) decides while counting it and the session's
//! reader (`session`) acts on, and the [`Track`] of the audio and video
//! kinds, that injected drops (`fault`) apply to and are counted by.
//!
//! A leaf module: counting, faults and sessions all name these, so they live
//! apart from each of them.

/// How a received packet is to be handled, decided while counting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Not a valid packet: dropped.
    Malformed,
    /// A MEDIA packet of type AUDIO: uni stream to peers (`--drop-rate` applies).
    Audio,
    /// A MEDIA packet of type VIDEO, as audio.
    Video,
    /// A MEDIA packet of type SCREEN: uni stream to peers (no `--drop-rate`).
    Screen,
    /// Any other MEDIA packet (heartbeat, ...): uni stream to peers.
    Media,
    /// RTT probe: echo to the sender only.
    Rtt,
    /// KEYFRAME_REQUEST: to the room, rate-limited.
    KeyframeRequest,
    /// HEALTH (processed by the server, not relayed) or CONGESTION from a client: dropped.
    Dropped,
    /// Any other packet: datagram if small, else uni stream.
    Other,
}

/// The media a drop applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Track {
    Audio,
    Video,
}
