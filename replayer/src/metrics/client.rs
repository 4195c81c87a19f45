//! One client's counters ([`ClientStats`], plain atomics written by that
//! client's own tasks, so the packet path takes no lock and no label map)
//! and what it saw of each sender ([`PeerView`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use super::labels::{Media, SessionEnd, State};

/// One client's counters.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Packets sent, by [`Media`].
    pub sent_packets: [AtomicU64; 5],
    /// Bytes sent (whole PacketWrapper), by [`Media`].
    pub sent_bytes: [AtomicU64; 5],
    /// Packets received, by [`Media`].
    pub recv_packets: [AtomicU64; 5],
    /// Bytes received, by [`Media`].
    pub recv_bytes: [AtomicU64; 5],
    /// Frame bytes (payload only) sent, audio and video.
    pub sent_payload: [AtomicU64; 2],
    /// First and last media send, µs after the run started, plus one (0 = never).
    pub media_span_us: [AtomicU64; 2],
    /// Sequence numbers not received (yet) from the senders heard so far,
    /// audio and video: lost, once the run has ended ([`synth_common::seq`]).
    pub missing: [AtomicU64; 2],
    /// Packets that arrived after a higher sequence number, audio and video.
    pub reordered: [AtomicU64; 2],
    /// Packets whose sequence number had already arrived, audio and video.
    pub duplicates: [AtomicU64; 2],
    /// CONGESTION packets from the server about this client's own packets
    /// (their `session_id` is its session's): the server dropped packets it sent.
    pub congestion: AtomicU64,
    /// CONGESTION packets about other senders of the room (the server
    /// tells the whole room): seen, not this client's.
    pub room_congestion: AtomicU64,
    /// Packets of the types past upstream main's
    /// ([`synth_common::wire::packet_type::NEWER`], in its order), then of
    /// types nobody knows: counted, never an error.
    pub newer_types: [AtomicU64; 7],
    /// Simulcast, as a sender: video packets sent per layer (0, 1, 2 and up).
    pub layer_sent: [AtomicU64; 3],
    /// The server's last LAYER_HINT for its video: the highest layer wanted
    /// plus one; 0 for none yet or "every layer".
    pub layer_hint: AtomicU64,
    /// LAYER_HINTs received.
    pub layer_hints: AtomicU64,
    /// Layers its video sends now (0 without simulcast).
    pub layers_active: AtomicU64,
    /// Times it shed a layer, and restored one, on the server's hint.
    pub layer_changes: [AtomicU64; 2],
    /// As a receiver: video packets received per layer (0, 1, 2 and up),
    /// of what it asked for.
    pub layer_received: [AtomicU64; 3],
    /// Video packets received that it did not ask for: of peers outside its
    /// tiles, or of layers other than the one it wants (before the server
    /// applied its VIEWPORT or LAYER_PREFERENCE); never loss.
    pub unrequested: AtomicU64,
    /// Numbers missing in the layers above 0 it asked for (gaps between the
    /// first and the last heard of each: a layer's edges are not checked).
    pub layer_missing: AtomicU64,
    /// VIEWPORT and LAYER_PREFERENCE packets it sent.
    pub view_sent: [AtomicU64; 2],
    /// From its last VIEWPORT or LAYER_PREFERENCE to the last video packet
    /// that asked-for view no longer wanted (µs, plus one; 0: none arrived
    /// after it, or nothing sent): how long the server took to switch.
    pub view_switch_us: AtomicU64,
    /// Control packets sent (`browser`), by [`Control`](super::Control).
    pub control_sent: [AtomicU64; 4],
    /// Control packets received, by [`Control`](super::Control): others' DIAGNOSTICS and
    /// HEALTH, echoes of its RTT probes, every key-frame request of the room.
    pub control_received: [AtomicU64; 4],
    /// Control packets (`browser`) not sent because the sender had more
    /// queued than it could take.
    pub control_dropped: AtomicU64,
    /// Times a `browser` chose its server among several (`server_urls`).
    pub elections: AtomicU64,
    /// Key-frame requests aimed at this client.
    pub keyframe_requests: AtomicU64,
    /// Key frames sent in answer to one.
    pub keyframes_answered: AtomicU64,
    /// Reconnections after a dropped session.
    pub reconnects: AtomicU64,
    /// Sessions that were up and ended, by [`SessionEnd`]: every end counted
    /// once, where the session ended.
    pub session_ends: [AtomicU64; 5],
    /// The server's closes of its sessions, by `"<code> <reason>"` (code in
    /// hex): at most [`MAX_CLOSE_REASONS`] keys, the rest under `other`.
    pub server_closes: Mutex<BTreeMap<String, u64>>,
    /// Packets that could not be sent (stream or session errors).
    pub send_errors: AtomicU64,
    /// Received packets that did not parse.
    pub bad_packets: AtomicU64,
    /// PARTICIPANT_JOINED events seen.
    pub joined_events: AtomicU64,
    /// PARTICIPANT_LEFT events seen.
    pub left_events: AtomicU64,
    /// Packets the server acknowledged (every byte of their stream), by [`Media`].
    pub acked: [AtomicU64; 5],
    /// Received media packets that were late (more than `late_after` after
    /// they were due), audio and video.
    pub late: [AtomicU64; 2],
    /// Received frames from senders of this process that matched no frame of
    /// the pack (corrupted or truncated), audio and video.
    pub corrupted: [AtomicU64; 2],
    /// Video freezes seen.
    pub freezes: AtomicU64,
    /// Total duration of those freezes, µs.
    pub freeze_us: AtomicU64,
    /// The sequence number this client's sender assigns next, audio and
    /// video: what it really sent, for its peers' exact loss check.
    pub next_seq: [AtomicU64; 2],
    /// µs after the run started (plus one) of the oldest send not yet
    /// acknowledged, or of a send still waiting to go out; 0 when none.
    pub waiting_since_us: AtomicU64,
    /// Unix µs of this client's first packet sent (0 = none yet).
    pub first_packet_unix_us: AtomicU64,
    /// Unix µs of the first packet of its current planned session (0 =
    /// none yet): a peer that comes back is visible from then on.
    pub stay_first_packet_unix_us: AtomicU64,
    /// µs after the run started (plus one) of a key-frame request not yet
    /// answered (0 = none).
    pub keyframe_asked_us: AtomicU64,
    /// Time its sends waited for the server's stream credit (waits of a
    /// millisecond or more), µs: back-pressure.
    pub credit_wait_us: AtomicU64,
    /// Schedule its lanes skipped while its session was down or stalled, µs.
    pub skipped_us: AtomicU64,
    /// Times the client went [`State::Stalled`], counted by the run's monitor.
    pub stalls: AtomicU64,
    /// Time spent stalled, µs, as the run's monitor saw it (1 s steps).
    pub stalled_us: AtomicU64,
    /// Each sender as this client saw it, published when each of its
    /// sessions ends (the report's per-pair figures, library users and tests).
    pub peers: Mutex<BTreeMap<String, PeerView>>,
    /// Rendition switches of an adapting client (`adapt: true`), down and
    /// up, counted when its video lane really changed track.
    pub switches: [AtomicU64; 2],
    /// Time an adapting client's video lane spent on each rendition, in the
    /// order it first went there (empty for a client that does not adapt).
    pub renditions: Mutex<Vec<RenditionTime>>,
    /// Planned sessions that came up as a join (a first session, or an
    /// arrival of a participant free again).
    pub joins: AtomicU64,
    /// Sessions it ended on purpose (its schedule: churn, a storm, a phase).
    pub leaves: AtomicU64,
    /// Planned sessions that came up as a way back after churn or a storm.
    pub rejoins: AtomicU64,
    /// Sessions a storm dropped.
    pub storm_drops: AtomicU64,
    /// Times this sender resumed a medium it had stopped on purpose (audio,
    /// video, screen: unmuted, camera back on, share restarted, back in the
    /// meeting), counted before the first packet after the gap: a receiver
    /// that sees the count change knows the gap was no freeze.
    pub resumes: [AtomicU64; 3],
    /// Its heartbeats' flags now: bit 0 audio, 1 video, 2 screen, 3 speaking.
    pub flags: AtomicU8,
    /// Heartbeats it sent with `is_speaking` true.
    pub speaking_heartbeats: AtomicU64,
    /// Screen shares it started.
    pub screen_shares: AtomicU64,
    /// Actions of its schedule it carried out (mute, camera, screen, rendition).
    pub actions: AtomicU64,
    /// Current [`State`], as its `u8`: read through [`ClientStats::state`].
    state: AtomicU8,
    /// Whether the client was connected at least once.
    pub ever_connected: AtomicBool,
}

/// Distinct `"<code> <reason>"` keys kept of the server's closes (per
/// client, and in the report); later ones are counted under `other`.
pub const MAX_CLOSE_REASONS: usize = synth_report::model::MAX_CLOSE_REASONS;

/// Time an adapting client spent sending one video rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionTime {
    /// The pack's track name.
    pub name: String,
    /// The track's pack bitrate, bits per second.
    pub bps: f64,
    /// Time on it, µs.
    pub us: u64,
}

impl ClientStats {
    /// Adds `us` on rendition `name` (of `bps`) to the client's time per rendition.
    pub fn add_rendition_time(&self, name: &str, bps: f64, us: u64) {
        let Ok(mut r) = self.renditions.lock() else {
            return;
        };
        match r.iter_mut().find(|t| t.name == name) {
            Some(t) => t.us += us,
            None => r.push(RenditionTime {
                name: name.to_owned(),
                bps,
                us,
            }),
        }
    }

    /// The pack bitrate of the video it sent, weighted by the time on each
    /// rendition; `None` for a client that did not adapt (or no time yet).
    pub fn adapted_video_bps(&self) -> Option<f64> {
        let r = self.renditions.lock().ok()?;
        let total: u64 = r.iter().map(|t| t.us).sum();
        (total > 0).then(|| r.iter().map(|t| t.bps * t.us as f64).sum::<f64>() / total as f64)
    }

    /// Counts a session that was up and ended as `cause`; `close` is the
    /// server's `"<code> <reason>"` when it closed the session.
    pub fn session_ended(&self, cause: SessionEnd, close: Option<&str>) {
        self.session_ends[cause as usize].fetch_add(1, Relaxed);
        if let (Some(key), Ok(mut closes)) = (close, self.server_closes.lock()) {
            synth_report::model::add_close_reason(&mut closes, key, 1);
        }
    }

    /// Counts a sent packet.
    #[inline]
    pub fn sent(&self, m: Media, bytes: usize) {
        self.sent_packets[m as usize].fetch_add(1, Relaxed);
        self.sent_bytes[m as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// Counts a received packet.
    #[inline]
    pub fn received(&self, m: Media, bytes: usize) {
        self.recv_packets[m as usize].fetch_add(1, Relaxed);
        self.recv_bytes[m as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// Notes a media send for the client's active time.
    #[inline]
    pub fn mark_media_sent(&self, started: Instant) {
        let t = started.elapsed().as_micros() as u64 + 1;
        if self.media_span_us[0].load(Relaxed) == 0 {
            self.media_span_us[0].store(t, Relaxed);
        }
        self.media_span_us[1].store(t, Relaxed);
    }

    /// Time between the first and the last media send.
    pub fn media_active(&self) -> std::time::Duration {
        let (a, b) = (
            self.media_span_us[0].load(Relaxed),
            self.media_span_us[1].load(Relaxed),
        );
        std::time::Duration::from_micros(b.saturating_sub(a))
    }

    /// Sets the state.
    pub fn set_state(&self, s: State) {
        self.state.store(s as u8, Relaxed);
        if s == State::Connected {
            self.ever_connected.store(true, Relaxed);
        }
    }

    /// The state as set by the client (never [`State::Stalled`]).
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Relaxed))
    }

    /// The state at `now_us` (µs after the run started): [`State::Stalled`]
    /// for a connected client whose oldest unacknowledged send is older than
    /// `stall_after_us`.
    pub fn state_at(&self, now_us: u64, stall_after_us: u64) -> State {
        let s = self.state();
        let since = self.waiting_since_us.load(Relaxed);
        if s == State::Connected && since != 0 && now_us + 1 > since + stall_after_us {
            State::Stalled
        } else {
            s
        }
    }
}

/// One sender as one receiver saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeerView {
    /// Audio and video: sequence accounting and experience figures.
    pub media: [synth_common::quality::Summary; 2],
    /// For a sender of this process: its next audio and video sequence
    /// numbers when this receiver joined (everything from there on had to arrive).
    pub expect_from: Option<[u64; 2]>,
    /// For a sender of this process: its next numbers when this receiver
    /// left the meeting on purpose for the last time (it was away at the
    /// end): nothing from there on had to arrive.
    pub until: Option<[u64; 2]>,
    /// This sender belongs to this process (same clock, known pack).
    pub ours: bool,
    /// This receiver's view did not show the sender's video (`view.tiles`):
    /// none of it was owed.
    pub unshown: bool,
    /// For a sender of this process, audio and video: its numbers sent
    /// while this receiver's session was down (see [`Down`]).
    pub down: [Down; 2],
}

/// One sender's numbers sent while one receiver's session was down: from
/// the moment the receiver knew its session had ended (an idle timeout is
/// known `idle_timeout` late) until its next session was up. Only for
/// senders of this process, whose numbers are known; a receiver that leaves
/// on purpose is not down (what is sent then is excused, never lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Down {
    /// Numbers in the spans that ended (the receiver was up again), within
    /// what was owed to it.
    pub closed: u64,
    /// The sender's next number when the receiver went down, if it is still
    /// down (the span runs to the sender's last number).
    pub open_from: Option<u64>,
    /// Numbers of the ended spans that arrived all the same (sent while the
    /// new session was being set up, delivered on it).
    pub arrived: u64,
}

impl Down {
    /// Numbers the receiver missed while down, when what it was owed ends
    /// at `until` (the exact check's end): never more than `lost`, the
    /// pair's exact loss, which they are part of.
    pub fn missed(&self, until: u64, lost: u64) -> u64 {
        let open = self.open_from.map_or(0, |f| until.saturating_sub(f));
        (self.closed + open).saturating_sub(self.arrived).min(lost)
    }
}
