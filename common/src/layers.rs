//! Upstream `RnD`'s simulcast control messages, which the crates.io
//! `videocall-types` does not carry, written and read here from their field
//! numbers (`RnD:protobuf/types/`):
//!
//! - VIEWPORT (`viewport_packet.proto`): the publishers' sessions whose
//!   video a receiver shows, `repeated uint64 session_ids = 1`. The server
//!   stops a receiver's camera video from anyone else (empty: everyone).
//! - LAYER_PREFERENCE (`layer_preference_packet.proto`): per publisher
//!   session and kind, the one layer a receiver wants, `repeated Entry
//!   entries = 1`, `Entry{uint64 session_id = 1, uint32 desired_layer = 2,
//!   kind media_kind = 3}`. Layer 0 always goes through; a publisher without
//!   an entry sends every layer.
//! - LAYER_HINT (`layer_hint_packet.proto`): from the server to a publisher,
//!   the highest layer any receiver wants, per kind, `repeated Entry entries
//!   = 1`, `Entry{kind media_kind = 1, uint32 max_requested_layer = 2}`;
//!   [`FULL_LADDER`] means every layer.
//!
//! All three travel unencrypted in a `PacketWrapper`'s `data`; a client
//! leaves the wrapper's session id out (the server fills it in).

use crate::wire::{
    packet_type, put_bytes_field, put_tag, put_varint, put_varint_field, varint_len, wrapper,
    Fields, Value, WireError,
};

/// `max_requested_layer` meaning "every layer" (no receiver limits it).
pub const FULL_LADDER: u32 = u32::MAX;

/// Layers video is counted by, sent and received: 0, 1, and 2 or above.
pub const COUNTED_LAYERS: usize = 3;

/// Where a packet of `layer` is counted in a [`COUNTED_LAYERS`] array:
/// layers above the last are counted in it.
pub fn slot(layer: u32) -> usize {
    (layer as usize).min(COUNTED_LAYERS - 1)
}

/// One LAYER_PREFERENCE entry: of publisher `session_id`'s `kind`
/// ([`crate::wire::media_kind`]; 0 is read as video), only `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    /// The publisher's session.
    pub session_id: u64,
    /// The layer wanted.
    pub layer: u32,
    /// The media kind.
    pub kind: i32,
}

/// One LAYER_HINT entry: of `kind`, receivers want layers up to `max_layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// The media kind ([`crate::wire::media_kind`]).
    pub kind: i32,
    /// The highest layer wanted ([`FULL_LADDER`]: all).
    pub max_layer: u32,
}

/// VIEWPORT from `user_id`: it shows the video of `sessions`.
pub fn viewport(user_id: &str, sessions: &[u64]) -> Vec<u8> {
    let mut data = Vec::new();
    if !sessions.is_empty() {
        // proto3 packs repeated numbers.
        let len: usize = sessions.iter().map(|&s| varint_len(s)).sum();
        put_tag(&mut data, 1, 2);
        put_varint(&mut data, len as u64);
        for &s in sessions {
            put_varint(&mut data, s);
        }
    }
    wrapper(packet_type::VIEWPORT, user_id.as_bytes(), 0, data)
}

/// The sessions of a VIEWPORT's `data` (packed or not).
pub fn parse_viewport(data: &[u8]) -> Result<Vec<u64>, WireError> {
    let mut out = Vec::new();
    let mut f = Fields { buf: data };
    while let Some(field) = f.next() {
        match field? {
            (1, Value::Varint(v)) => out.push(v),
            (1, Value::Bytes(b)) => {
                let mut packed = Fields { buf: b };
                while !packed.buf.is_empty() {
                    out.push(packed.varint()?);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// LAYER_PREFERENCE from `user_id` with `entries` (empty: no preference,
/// every layer of everyone).
pub fn layer_preference(user_id: &str, entries: &[Preference]) -> Vec<u8> {
    let data = put_entries(
        entries
            .iter()
            .map(|e| [e.session_id, u64::from(e.layer), e.kind as u64]),
    );
    wrapper(packet_type::LAYER_PREFERENCE, user_id.as_bytes(), 0, data)
}

/// The entries of a LAYER_PREFERENCE's `data`.
pub fn parse_layer_preference(data: &[u8]) -> Result<Vec<Preference>, WireError> {
    Ok(parse_entries(data)?
        .into_iter()
        .map(|[session_id, layer, kind]| Preference {
            session_id,
            layer: layer as u32,
            kind: kind as i32,
        })
        .collect())
}

/// LAYER_HINT to publisher `user_id` of session `session_id`.
pub fn layer_hint(user_id: &str, session_id: u64, hints: &[Hint]) -> Vec<u8> {
    let data = put_entries(
        hints
            .iter()
            .map(|h| [h.kind as u64, u64::from(h.max_layer), 0]),
    );
    wrapper(
        packet_type::LAYER_HINT,
        user_id.as_bytes(),
        session_id,
        data,
    )
}

/// The entries of a LAYER_HINT's `data`.
pub fn parse_layer_hint(data: &[u8]) -> Result<Vec<Hint>, WireError> {
    Ok(parse_entries(data)?
        .into_iter()
        .map(|[kind, max_layer, _]| Hint {
            kind: kind as i32,
            max_layer: u32::try_from(max_layer).unwrap_or(FULL_LADDER),
        })
        .collect())
}

/// `repeated Entry entries = 1` of entries made of varint fields 1 to 3,
/// each given in that order; a 0 is left out, as protobuf leaves out a default.
fn put_entries(entries: impl Iterator<Item = [u64; 3]>) -> Vec<u8> {
    let (mut data, mut entry) = (Vec::new(), Vec::new());
    for fields in entries {
        entry.clear();
        for (n, v) in (1..).zip(fields) {
            if v != 0 {
                put_varint_field(&mut entry, n, v);
            }
        }
        put_bytes_field(&mut data, 1, &entry);
    }
    data
}

/// The entries (field 1) of `data`, each as its varint fields 1 to 3
/// (0 when absent; other fields are skipped).
fn parse_entries(data: &[u8]) -> Result<Vec<[u64; 3]>, WireError> {
    let mut out = Vec::new();
    let mut f = Fields { buf: data };
    while let Some(field) = f.next() {
        if let (1, Value::Bytes(b)) = field? {
            let mut e = [0; 3];
            let mut g = Fields { buf: b };
            while let Some(field) = g.next() {
                if let (n @ 1..=3, Value::Varint(v)) = field? {
                    e[n as usize - 1] = v;
                }
            }
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, media_kind, media_type, MediaFields, MediaPrefix};

    #[test]
    fn viewport_round_trips_packed_and_reads_unpacked() {
        let p = viewport("u-1", &[3, 300, 70_000]);
        let w = wire::parse(&p).unwrap();
        assert_eq!(w.packet_type, packet_type::VIEWPORT);
        assert_eq!(w.user_id, b"u-1");
        assert_eq!(w.session_id, 0, "a client leaves the session to the server");
        assert_eq!(parse_viewport(w.data).unwrap(), vec![3, 300, 70_000]);
        // Unpacked, as an older encoder may write it.
        let mut data = Vec::new();
        put_varint_field(&mut data, 1, 5);
        put_varint_field(&mut data, 1, 6);
        assert_eq!(parse_viewport(&data).unwrap(), vec![5, 6]);
        // Empty: everyone.
        let w = wire::parse(&viewport("u-1", &[])).unwrap().data.to_vec();
        assert!(parse_viewport(&w).unwrap().is_empty());
        // Truncated packed list.
        assert!(parse_viewport(&[0x0a, 0x02, 0x80]).is_err());
    }

    #[test]
    fn preferences_and_hints_round_trip_with_defaults_left_out() {
        let e = [
            Preference {
                session_id: 7,
                layer: 0,
                kind: media_kind::VIDEO,
            },
            Preference {
                session_id: 9,
                layer: 2,
                kind: 0,
            },
        ];
        let p = layer_preference("u-2", &e);
        let w = wire::parse(&p).unwrap();
        assert_eq!(w.packet_type, packet_type::LAYER_PREFERENCE);
        assert_eq!(parse_layer_preference(w.data).unwrap(), e);

        let h = [
            Hint {
                kind: media_kind::VIDEO,
                max_layer: 0,
            },
            Hint {
                kind: media_kind::SCREEN,
                max_layer: FULL_LADDER,
            },
        ];
        let p = layer_hint("u-3", 42, &h);
        let w = wire::parse(&p).unwrap();
        assert_eq!(w.packet_type, packet_type::LAYER_HINT);
        assert_eq!(w.session_id, 42);
        assert_eq!(parse_layer_hint(w.data).unwrap(), h);
    }

    #[test]
    fn media_carries_its_layer_and_kind_ahead_of_the_frame() {
        let mut prefix = MediaPrefix::new("u-4");
        for (ty, layer, kind) in [
            (media_type::VIDEO, 2, media_kind::VIDEO),
            (media_type::VIDEO, 0, media_kind::VIDEO),
            (media_type::AUDIO, 0, media_kind::AUDIO),
            (media_type::SCREEN, 1, media_kind::SCREEN),
        ] {
            let f = MediaFields {
                media_type: ty,
                sequence: 5,
                layer,
                ..MediaFields::default()
            };
            let mut p = prefix.build(&f, 3).to_vec();
            p.extend_from_slice(b"abc");
            let w = wire::parse(&p).unwrap();
            assert_eq!((w.layer, w.media_kind), (layer, kind));
            let m = wire::parse_media(w.data).unwrap();
            assert_eq!(m.data, b"abc");
            assert_eq!(m.sequence, Some(5));
        }
        // A heartbeat has no kind: a server never filters it.
        let hb = wire::heartbeat("u-4", 1.0, wire::HeartbeatFlags::default());
        assert_eq!(wire::parse(&hb).unwrap().media_kind, 0);
    }
}
