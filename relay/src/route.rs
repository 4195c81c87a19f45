//! How the relay routes a received packet: its [`Kind`], which
//! `Tally::count` (`stats`) decides while counting it and the session's
//! reader (`session`) acts on; the [`Track`] of the audio and video kinds,
//! that injected drops (`fault`) apply to and are counted by; and the
//! [`Type`] a packet is counted under, received or sent; and on the framed
//! wire the persistent stream ([`Lane`]) a packet of each type goes out on.
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
    /// VIEWPORT (upstream RnD): sets which publishers' camera video the
    /// sending session gets (`layers`); relayed to nobody.
    Viewport,
    /// LAYER_PREFERENCE (upstream RnD): sets which layer of each publisher
    /// the sending session gets (`layers`); relayed to nobody.
    LayerPreference,
    /// HEALTH (processed by the server, not relayed), or CONGESTION or
    /// LAYER_HINT from a client (the relay's own to send): dropped.
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
    /// VIEWPORT (11).
    Viewport,
    /// LAYER_PREFERENCE (12).
    LayerPreference,
    /// LAYER_HINT (13).
    LayerHint,
    /// Any other packet type.
    Other,
    /// Not a `PacketWrapper` (or a stream too long to read).
    Unparsed,
}

impl Type {
    /// How many there are.
    pub(crate) const COUNT: usize = 19;

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
        Type::Viewport,
        Type::LayerPreference,
        Type::LayerHint,
        Type::Other,
        Type::Unparsed,
    ];
}

/// On the framed wire, which of a receiver's persistent uni streams a packet
/// goes out on: one per kind, as upstream's client keeps them
/// (`RnD:videocall-client/src/connection/webmedia.rs` `MediaStreamKey`:
/// audio 1, video 2, screen 3, control 4), so a large video frame never
/// holds up audio behind it in one stream's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    Audio,
    Video,
    Screen,
    /// Everything else: heartbeats, key-frame requests, meeting and other
    /// packets (LAYER_HINT among them), echoes, and what does not parse
    /// (upstream's `Control`).
    Control,
}

impl Lane {
    /// How many there are.
    pub(crate) const COUNT: usize = 4;

    /// The lane of a packet of type `ty` (already known from counting it:
    /// nothing is parsed again).
    pub(crate) fn of(ty: Type) -> Lane {
        match ty {
            Type::Audio => Lane::Audio,
            Type::Video => Lane::Video,
            Type::Screen => Lane::Screen,
            _ => Lane::Control,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_have_lanes_of_their_own_and_the_rest_is_control() {
        assert_eq!(Lane::of(Type::Audio), Lane::Audio);
        assert_eq!(Lane::of(Type::Video), Lane::Video);
        assert_eq!(Lane::of(Type::Screen), Lane::Screen);
        // As upstream's client: heartbeats and key-frame requests are control.
        for t in [
            Type::Heartbeat,
            Type::KeyframeRequest,
            Type::Rtt,
            Type::MediaUnparsed,
            Type::SessionAssigned,
            Type::Meeting,
            Type::LayerHint,
            Type::Unparsed,
        ] {
            assert_eq!(Lane::of(t), Lane::Control, "{t:?}");
        }
        assert_eq!(Lane::Control as usize + 1, Lane::COUNT);
    }

    #[test]
    fn all_is_in_declaration_order() {
        for (i, t) in Type::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "{t:?}");
        }
    }
}
