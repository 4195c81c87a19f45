//! Upstream RnD's simulcast at the relay, on both wires: VIEWPORT and
//! LAYER_PREFERENCE withhold media from the receiver that sent them (and
//! are relayed to nobody), and a publisher of layers gets LAYER_HINTs.
//!
//! As elsewhere, what a receiver got is compared with what the relay says
//! it sent it (`sent_video_layers`, `sent_by_type`), once the relay has
//! counted it. The rules' corner cases and their timing on explicit
//! instants are in the relay's unit tests (`layers.rs`, `session.rs`); here
//! only the LAYER_HINT test waits, for the 2 s upstream waits before it
//! hints a lower layer, with both wires at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::framing::Wire;
use synth_common::layers::{self, Hint, Preference, FULL_LADDER};
use synth_common::wire::{self, media_kind, media_type, packet_type, MediaFields, MediaPrefix};
use synth_relay::{HintsSent, RelayConfig, RelayStats, UserStats, ViewUpdates};

use crate::framed::{FramedPeer, Lane};
use crate::relay::{audio, within, Peer, Target};

/// A participant on either wire.
enum Client {
    PerPacket(Peer),
    Framed(FramedPeer),
}

impl Client {
    async fn join(t: &Target, wire: Wire, user: &str, room: &str) -> Client {
        match wire {
            Wire::PerPacket => Client::PerPacket(t.join(user, room).await),
            Wire::Framed => Client::Framed(FramedPeer::join(t, user, room).await),
        }
    }

    fn session_id(&self) -> u64 {
        match self {
            Client::PerPacket(p) => p.session_id,
            Client::Framed(p) => p.session_id,
        }
    }

    /// Sends `packets`, each on a stream of its own or, framed, on the
    /// stream of its kind, all in one write (as one burst, in this order:
    /// what the rate-limit checks need).
    async fn send(&mut self, packets: &[&[u8]]) {
        match self {
            Client::PerPacket(p) => {
                for bytes in packets {
                    p.send(bytes).await;
                }
            }
            Client::Framed(p) => {
                let w = wire::parse(packets[0]).unwrap();
                let lane = match wire::parse_media(w.data).map(|m| m.media_type) {
                    Ok(media_type::AUDIO) if w.packet_type == packet_type::MEDIA => Lane::Audio,
                    Ok(media_type::VIDEO) if w.packet_type == packet_type::MEDIA => Lane::Video,
                    _ => Lane::Control,
                };
                p.send(lane, packets).await;
            }
        }
    }

    /// Control packets that must be read in this order: in one write on
    /// the framed wire; as datagrams on the other (which a session reads in
    /// order, where its streams are read as they come).
    async fn send_in_order(&mut self, packets: &[&[u8]]) {
        match self {
            Client::PerPacket(p) => {
                for bytes in packets {
                    p.send_datagram(bytes);
                }
            }
            Client::Framed(_) => self.send(packets).await,
        }
    }

    async fn next(&mut self) -> Bytes {
        match self {
            Client::PerPacket(p) => p.next().await.bytes,
            Client::Framed(p) => p.next().await.bytes,
        }
    }

    fn close(&self) {
        match self {
            Client::PerPacket(p) => p.close(),
            Client::Framed(p) => p.session.close(0, b"bye"),
        }
    }
}

/// What a client received: media per (sender, media type, layer), and
/// LAYER_HINTs with when they came.
#[derive(Debug, Default)]
struct Received {
    media: BTreeMap<(String, i32, u32), u64>,
    hints: Vec<(Instant, u64, Vec<Hint>)>,
}

impl Received {
    fn add(&mut self, bytes: &[u8]) {
        let p = wire::parse(bytes).expect("a PacketWrapper");
        match p.packet_type {
            packet_type::MEDIA => {
                let m = wire::parse_media(p.data).unwrap();
                let user = String::from_utf8_lossy(p.user_id).into_owned();
                *self.media.entry((user, m.media_type, p.layer)).or_default() += 1;
            }
            packet_type::LAYER_HINT => {
                let h = layers::parse_layer_hint(p.data).unwrap();
                self.hints.push((Instant::now(), p.session_id, h));
            }
            packet_type::VIEWPORT | packet_type::LAYER_PREFERENCE => {
                panic!("relayed: {}", p.packet_type)
            }
            _ => {}
        }
    }

    /// Video of `user` by layer 0, 1, 2.
    fn video(&self, user: &str) -> [u64; 3] {
        std::array::from_fn(|l| self.count(user, media_type::VIDEO, l as u32))
    }

    fn count(&self, user: &str, mt: i32, layer: u32) -> u64 {
        let key = (user.to_string(), mt, layer);
        self.media.get(&key).copied().unwrap_or(0)
    }
}

/// What `c` receives until `done` holds for it.
async fn receive(c: &mut Client, r: &mut Received, what: &str, done: impl Fn(&Received) -> bool) {
    within(what, async {
        while !done(r) {
            let bytes = c.next().await;
            r.add(&bytes);
        }
    })
    .await
}

/// A video packet of `layer`, tagged as upstream RnD's client tags it.
fn video(p: &mut MediaPrefix, seq: u64, layer: u32) -> Vec<u8> {
    let f = MediaFields {
        media_type: media_type::VIDEO,
        sequence: seq,
        timestamp_ms: 1_700_000_000_000.0 + seq as f64,
        duration_ms: 33.3,
        key: seq == 0,
        layer,
    };
    let frame = [seq as u8; 600];
    let mut v = p.build(&f, frame.len()).to_vec();
    v.extend_from_slice(&frame);
    v
}

/// Three layers of frame `seq`: every layer has its own sequence numbers.
async fn ladder(c: &mut Client, p: &mut MediaPrefix, seq: u64) {
    let l: Vec<Vec<u8>> = (0..3).map(|layer| video(p, seq, layer)).collect();
    c.send(&[&l[0], &l[1], &l[2]]).await;
}

fn prefer(user: &str, entries: &[(u64, u32)]) -> Vec<u8> {
    let e: Vec<Preference> = entries
        .iter()
        .map(|&(session_id, layer)| Preference {
            session_id,
            layer,
            kind: media_kind::VIDEO,
        })
        .collect();
    layers::layer_preference(user, &e)
}

fn user<'a>(s: &'a RelayStats, name: &str) -> &'a UserStats {
    &s.per_user[name]
}

fn updates(accepted: u64, rate_limited: u64) -> ViewUpdates {
    ViewUpdates {
        accepted,
        rate_limited,
        malformed: 0,
    }
}

/// Two publishers of three layers and three receivers: one showing only
/// the first publisher (its video only, their audio both); one wanting
/// layer 0 of the first and layer 2 of the second (0; 0 and 2); one whose
/// updates ask for nothing (its own id, a layer above 7) and whose second
/// ones, within 200 ms, are dropped. Each gets exactly what the relay says
/// it sent, the rest counted as withheld.
async fn filters(wire: Wire) {
    let t = Target::default_relay_on(wire).await;
    let room = format!("ly-{wire}");
    let names = ["s1", "s2", "view", "pref", "none"].map(|n| format!("{n}-{wire}"));
    let [s1n, s2n, vn, pn, nn] = names.each_ref().map(String::as_str);
    let mut c = Vec::new();
    for n in &names {
        c.push(Client::join(&t, wire, n, &room).await);
    }
    t.members(&[(&room, 5)]).await;
    let [s1, s2, v, p, none] = &mut c[..] else {
        unreachable!()
    };
    let (sid1, sid2) = (s1.session_id(), s2.session_id());
    v.send(&[&layers::viewport(vn, &[sid1])]).await;
    p.send(&[&prefer(pn, &[(sid1, 0), (sid2, 2)])]).await;
    let own = layers::viewport(nn, &[none.session_id()]);
    let above_7 = prefer(nn, &[(sid1, 8)]);
    let too_soon = [layers::viewport(nn, &[sid2]), prefer(nn, &[(sid1, 0)])];
    none.send_in_order(&[&own, &above_7, &too_soon[0], &too_soon[1]])
        .await;
    t.stats_when(|s| {
        let u = |n| s.per_user.get(n).map(|u: &UserStats| u.view_updates);
        (u(vn), u(pn), u(nn))
            == (
                Some(updates(1, 0)),
                Some(updates(1, 0)),
                Some(updates(2, 2)),
            )
    })
    .await;

    let n = 6;
    for (sender, name) in [(&mut *s1, s1n), (&mut *s2, s2n)] {
        let mut pre = MediaPrefix::new(name);
        for seq in 0..n {
            sender.send(&[&audio(&mut pre, seq)]).await;
            ladder(sender, &mut pre, seq).await;
        }
    }
    let all = [n, n, n];
    let s = t
        .stats_when(|s| {
            [s1n, s2n]
                .iter()
                .all(|n| s.per_user.get(*n).is_some_and(|u| u.video_layers == all))
                && user(s, vn).sent_video_layers == [n, n, n]
                && user(s, pn).sent_video_layers == [2 * n, 0, n]
                && user(s, nn).sent_video_layers == [2 * n; 3]
        })
        .await
        .unwrap();
    assert_eq!(user(&s, s1n).video_seq.received, n, "layer 0's numbers");
    assert_eq!(user(&s, s1n).video_seq.missing(), 0);
    for (name, viewport, layer) in [(vn, 3 * n, 0), (pn, 0, 3 * n), (nn, 0, 0)] {
        let u = user(&s, name);
        assert_eq!(
            (u.viewport_filtered, u.layer_filtered),
            (viewport, layer),
            "{name}"
        );
        assert_eq!(u.sent_by_type.audio.total(), 2 * n, "{name}: both audio");
        assert_eq!(
            u.sent_by_type.viewport.total() + u.sent_by_type.layer_preference.total(),
            0
        );
    }
    assert_eq!((s.viewport_filtered, s.layer_filtered), (3 * n, 3 * n));
    assert_eq!(s.view_updates, updates(4, 2));
    assert_eq!(s.relay_drops, 0);

    let want = [
        (vn, [n, n, n], [0, 0, 0]),
        (pn, [n, 0, 0], [n, 0, n]),
        (nn, [n, n, n], [n, n, n]),
    ];
    for (i, (name, from1, from2)) in want.into_iter().enumerate() {
        let mut got = Received::default();
        let rx = &mut c[2 + i];
        receive(rx, &mut got, name, |r| {
            r.video(s1n) == from1
                && r.video(s2n) == from2
                && r.count(s1n, media_type::AUDIO, 0) == n
                && r.count(s2n, media_type::AUDIO, 0) == n
        })
        .await;
    }
    for x in &c {
        x.close();
    }
    t.close().await;
}

#[tokio::test]
async fn viewports_and_layer_preferences_withhold_what_they_leave_out() {
    for wire in Wire::ALL {
        filters(wire).await;
    }
}

/// A publisher of layers in a room of three: both receivers want only its
/// layer 0, and it is hinted down to layer 0, not at once but 2 s after the
/// second asked; one of them clears its preference and the hint back up
/// to the full ladder comes while the publisher sends nothing.
async fn hints(wire: Wire) {
    let t = Target::default_relay_on(wire).await;
    let room = format!("lh-{wire}");
    let [pn, r1n, r2n] = ["pub", "r1", "r2"].map(|n| format!("{n}-{wire}"));
    let mut publisher = Client::join(&t, wire, &pn, &room).await;
    let mut r1 = Client::join(&t, wire, &r1n, &room).await;
    let mut r2 = Client::join(&t, wire, &r2n, &room).await;
    t.members(&[(&room, 3)]).await;
    let sid = publisher.session_id();
    let mut pre = MediaPrefix::new(&pn);
    ladder(&mut publisher, &mut pre, 0).await;
    t.stats_when(|s| s.per_user.get(&pn).is_some_and(|u| u.video_layers[2] == 1))
        .await;

    r1.send(&[&prefer(&r1n, &[(sid, 0)])]).await;
    let asked = Instant::now();
    r2.send(&[&prefer(&r2n, &[(sid, 0)])]).await;
    let mut got = Received::default();
    let mut seq = 1;
    within("the hint down", async {
        while got.hints.is_empty() {
            ladder(&mut publisher, &mut pre, seq).await;
            seq += 1;
            let until = tokio::time::sleep(Duration::from_millis(40));
            tokio::pin!(until);
            loop {
                tokio::select! {
                    bytes = publisher.next() => got.add(&bytes),
                    _ = &mut until => break,
                }
            }
        }
    })
    .await;
    let (at, to, hint) = got.hints.remove(0);
    assert!(
        at.duration_since(asked) >= Duration::from_secs(2),
        "{wire}: hinted {:?} after the second receiver asked",
        at.duration_since(asked)
    );
    assert_eq!(to, sid);
    let down = Hint {
        kind: media_kind::VIDEO,
        max_layer: 0,
    };
    assert_eq!(hint, [down], "{wire}: video only, down to 0");

    // The publisher stops; a receiver clears its preference (more than
    // 200 ms after its last): up again at once, from that receiver's reader.
    r1.send(&[&layers::layer_preference(&r1n, &[])]).await;
    receive(&mut publisher, &mut got, "the hint up", |r| {
        !r.hints.is_empty()
    })
    .await;
    let up = Hint {
        kind: media_kind::VIDEO,
        max_layer: FULL_LADDER,
    };
    assert_eq!(got.hints[0].2, [up], "{wire}");
    let s = t
        .stats_when(|s| user(s, &pn).sent_by_type.layer_hint.total() == 2)
        .await
        .unwrap();
    let both = HintsSent {
        suppress: 1,
        restore: 1,
    };
    assert_eq!((user(&s, &pn).hints_sent, s.hints_sent), (both, both));
    for c in [publisher, r1, r2] {
        c.close();
    }
    t.close().await;
}

#[tokio::test]
async fn a_publisher_is_hinted_down_after_2_s_and_back_up_at_once() {
    let [a, b] = Wire::ALL;
    tokio::join!(hints(a), hints(b));
}

impl Target {
    async fn default_relay_on(wire: Wire) -> Target {
        Target::relay(RelayConfig {
            wire,
            leave_grace: Duration::ZERO,
            ..RelayConfig::default()
        })
        .await
    }
}
