//! How the relay routes a received packet: its [`Kind`], which
//! `Tally::count` (`stats`) decides while counting it and the session's
//! reader (`session`) acts on; the [`Track`] of the audio and video kinds,
//! that injected drops (`fault`) apply to and are counted by; and the
//! [`Type`] a packet is counted under, received or sent.
//!
//! A leaf module: counting, faults and sessions all name these, so they live
//! apart from each of them.

/// How a received packet is to be handled, decided while counting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Not a `PacketWrapper`: forwarded unchanged, as a datagram if small
    /// (upstream's `classify_packet` calls it opaque data; no session id
    /// can be filled in, so its drops tell nobody).
    Opaque,
    /// A MEDIA wrapper whose `MediaPacket` does not parse (encrypted
    /// media): forwarded like media, on a uni stream.
    OpaqueMedia,
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
    /// Any other packet (CONNECTION, DIAGNOSTICS, ...): datagram if small, else uni stream.
    Other,
}

/// The media a drop applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Track {
    Audio,
    Video,
}

/// What a packet is, for counting by type: the wrapper's `packet_type`,
/// and a MEDIA wrapper's `media_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Connection,
    Audio,
    Video,
    Screen,
    Heartbeat,
    Rtt,
    KeyframeRequest,
    /// MEDIA of another (or no) media type.
    MediaOther,
    /// MEDIA whose `MediaPacket` does not parse.
    MediaUnparsed,
    Diagnostics,
    Health,
    Meeting,
    SessionAssigned,
    Congestion,
    /// Any other packet type.
    Other,
    /// Not a `PacketWrapper` (or a stream too long to read).
    Unparsed,
}

impl Type {
    /// How many there are.
    pub(crate) const COUNT: usize = 16;

    /// Every type, in declaration order (`self as usize` indexes it).
    pub(crate) const ALL: [Type; Type::COUNT] = [
        Type::Connection,
        Type::Audio,
        Type::Video,
        Type::Screen,
        Type::Heartbeat,
        Type::Rtt,
        Type::KeyframeRequest,
        Type::MediaOther,
        Type::MediaUnparsed,
        Type::Diagnostics,
        Type::Health,
        Type::Meeting,
        Type::SessionAssigned,
        Type::Congestion,
        Type::Other,
        Type::Unparsed,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, t) in Type::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
        }
    }
}
