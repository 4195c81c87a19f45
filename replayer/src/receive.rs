//! What a client does with each packet it receives: count it, follow each
//! sender's sequence numbers ([`synth_common::seq::Tracker`], one per sender
//! and media), measure latency from senders of this process (they share its
//! clock), and notice key-frame requests aimed at it.
//!
//! Pure: the driver hands over the bytes and the wall-clock time; the state
//! outlives sessions, so a packet lost while the client reconnected stays
//! missing instead of vanishing with a fresh tracker.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;

use synth_common::seq::{Counts, Tracker};
use synth_common::wire::{self, media_type, packet_type, MeetingEvent};

use crate::metrics::{ClientStats, Media};

/// One sender as this client sees it: audio and video trackers.
#[derive(Debug, Default)]
struct Peer {
    seq: [Tracker; 2],
}

/// What one packet asks of the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handled {
    /// A KEYFRAME_REQUEST for this client: answer with a key frame.
    pub keyframe_request: bool,
    /// One-way latency of a media packet from a sender of this process (µs),
    /// with its media (audio or video).
    pub latency: Option<(Media, u64)>,
}

/// A client's receive accounting, kept across its sessions.
#[derive(Debug)]
pub struct Accounting {
    me: Box<[u8]>,
    peers: HashMap<Box<[u8]>, Peer>,
}

impl Accounting {
    /// Accounting for the client `user_id`.
    pub fn new(user_id: &str) -> Accounting {
        Accounting {
            me: user_id.as_bytes().into(),
            peers: HashMap::new(),
        }
    }

    /// Counts one received packet into `stats`. `ours` holds the user ids of
    /// this process (latency is measured only from them); `now_ms` is the
    /// wall clock in ms since the Unix epoch.
    pub fn handle(
        &mut self,
        buf: &[u8],
        now_ms: f64,
        ours: &HashSet<Box<[u8]>>,
        stats: &ClientStats,
    ) -> Handled {
        let mut out = Handled::default();
        let Ok(p) = wire::parse(buf) else {
            stats.bad_packets.fetch_add(1, Relaxed);
            return out;
        };
        match p.packet_type {
            packet_type::MEDIA => {
                let Ok(m) = wire::parse_media(p.data) else {
                    stats.bad_packets.fetch_add(1, Relaxed);
                    return out;
                };
                let media = match m.media_type {
                    media_type::AUDIO => Media::Audio,
                    media_type::VIDEO => Media::Video,
                    media_type::HEARTBEAT => Media::Heartbeat,
                    _ => Media::Other,
                };
                stats.received(media, buf.len());
                match media {
                    Media::Audio | Media::Video => {
                        let i = media as usize;
                        let sender = if p.user_id.is_empty() {
                            m.user_id
                        } else {
                            p.user_id
                        };
                        if let Some(seq) = m.sequence {
                            let peer = match self.peers.get_mut(sender) {
                                Some(peer) => peer,
                                None => self.peers.entry(sender.into()).or_default(),
                            };
                            let t = &mut peer.seq[i];
                            let before = t.counts().missing();
                            let seen = t.see(seq);
                            let after = t.counts().missing();
                            if after > before {
                                stats.missing[i].fetch_add(after - before, Relaxed);
                            } else if before > after {
                                stats.missing[i].fetch_sub(before - after, Relaxed);
                            }
                            if seen.reordered {
                                stats.reordered[i].fetch_add(1, Relaxed);
                            }
                            if seen.duplicate {
                                stats.duplicates[i].fetch_add(1, Relaxed);
                            }
                        }
                        if ours.contains(sender) && m.timestamp_ms > 0.0 {
                            let us = ((now_ms - m.timestamp_ms).max(0.0) * 1000.0) as u64;
                            out.latency = Some((media, us));
                        }
                    }
                    Media::Other
                        if m.media_type == media_type::KEYFRAME_REQUEST
                            && m.user_id == &*self.me =>
                    {
                        stats.keyframe_requests.fetch_add(1, Relaxed);
                        out.keyframe_request = true;
                    }
                    _ => {}
                }
            }
            packet_type::MEETING => {
                stats.received(Media::Other, buf.len());
                match wire::parse_meeting(p.data) {
                    Ok(MeetingEvent::Joined) => {
                        stats.joined_events.fetch_add(1, Relaxed);
                    }
                    Ok(MeetingEvent::Left) => {
                        stats.left_events.fetch_add(1, Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        stats.bad_packets.fetch_add(1, Relaxed);
                    }
                }
            }
            packet_type::CONGESTION => {
                stats.received(Media::Other, buf.len());
                stats.congestion.fetch_add(1, Relaxed);
            }
            _ => stats.received(Media::Other, buf.len()),
        }
        out
    }

    /// Each sender's audio and video counts so far.
    pub fn peers(&self) -> impl Iterator<Item = (&[u8], [&Counts; 2])> {
        self.peers
            .iter()
            .map(|(id, p)| (&id[..], [p.seq[0].counts(), p.seq[1].counts()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::wire::MediaFields;

    fn media(user: &str, media_type: i32, sequence: u64, timestamp_ms: f64) -> Vec<u8> {
        let f = MediaFields {
            media_type,
            sequence,
            timestamp_ms,
            ..MediaFields::default()
        };
        wire::media_packet(user, &f, &[1, 2])
    }

    #[test]
    fn counts_loss_reordering_and_latency_per_sender() {
        let ours: HashSet<Box<[u8]>> = [b"a".as_slice().into()].into();
        let stats = ClientStats::default();
        let mut acc = Accounting::new("me");
        // a: audio 0, 2, 1 (reordered), 5 (3 and 4 missing), 5 again.
        for seq in [0, 2, 1, 5, 5] {
            let h = acc.handle(
                &media("a", media_type::AUDIO, seq, 1000.0),
                1012.5,
                &ours,
                &stats,
            );
            assert_eq!(h.latency, Some((Media::Audio, 12_500)));
        }
        // b is not ours: counted, no latency.
        let h = acc.handle(
            &media("b", media_type::VIDEO, 7, 1000.0),
            1012.5,
            &ours,
            &stats,
        );
        assert_eq!(h, Handled::default());
        assert_eq!(stats.recv_packets[Media::Audio as usize].load(Relaxed), 5);
        assert_eq!(stats.missing[0].load(Relaxed), 2);
        assert_eq!(stats.reordered[0].load(Relaxed), 1);
        assert_eq!(stats.duplicates[0].load(Relaxed), 1);
        // 3 arrives late: no longer missing.
        acc.handle(
            &media("a", media_type::AUDIO, 3, 1000.0),
            1012.5,
            &ours,
            &stats,
        );
        assert_eq!(stats.missing[0].load(Relaxed), 1);
        let peers: HashMap<Vec<u8>, [Counts; 2]> = acc
            .peers()
            .map(|(id, c)| (id.to_vec(), [*c[0], *c[1]]))
            .collect();
        assert_eq!(peers[&b"a"[..]][0].lost(), 1);
        assert_eq!(peers[&b"b"[..]][1].received, 1);
    }

    #[test]
    fn keyframe_requests_meeting_events_congestion_and_garbage() {
        let ours = HashSet::new();
        let stats = ClientStats::default();
        let mut acc = Accounting::new("me");
        let h = acc.handle(&wire::keyframe_request("x", "me", 1.0), 2.0, &ours, &stats);
        assert!(h.keyframe_request);
        let h = acc.handle(
            &wire::keyframe_request("x", "other", 1.0),
            2.0,
            &ours,
            &stats,
        );
        assert!(!h.keyframe_request, "aimed at somebody else");
        let who = wire::Participant {
            user_id: "x",
            session_id: 1,
            display_name: "x",
        };
        acc.handle(&wire::participant("m", who, true), 0.0, &ours, &stats);
        acc.handle(&wire::participant("m", who, false), 0.0, &ours, &stats);
        acc.handle(&wire::congestion("x", 1), 0.0, &ours, &stats);
        acc.handle(&[0xff, 0xff], 0.0, &ours, &stats);
        assert_eq!(stats.keyframe_requests.load(Relaxed), 1);
        assert_eq!(
            (
                stats.joined_events.load(Relaxed),
                stats.left_events.load(Relaxed),
                stats.congestion.load(Relaxed),
                stats.bad_packets.load(Relaxed)
            ),
            (1, 1, 1, 1)
        );
    }
}
