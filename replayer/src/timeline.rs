//! Snapshots of the live [`Metrics`]: every counter summed and every
//! histogram merged at one instant, as `synth_report::window` takes them
//! (the window between two gives the timeline's samples and the live
//! figures). The report's timeline types are re-exported here.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::LazyLock;

pub use synth_report::model::{Av, ByState, Event, Sample, Timeline, P2};
pub use synth_report::window::{Snapshot, Window};

use synth_report::figure::{Counter, HistId};

use crate::metrics::{host_now, ClientStats, Metrics, Process, SessionEnd, State};
use crate::scopes::ScopeDef;

/// Everything `m` has counted until now.
pub fn take(m: &Metrics) -> Snapshot {
    take_of(m, None)
}

/// What the participants of `scope` (all with `None`) have counted until
/// now: their counters and states, their groups' histograms (none for a
/// meeting), and this process's CPU and memory.
pub fn take_of(m: &Metrics, scope: Option<&ScopeDef>) -> Snapshot {
    let mut counts = [0; Counter::COUNT];
    let members: Box<dyn Iterator<Item = &std::sync::Arc<ClientStats>>> = match scope {
        None => Box::new(m.clients.iter()),
        Some(d) => Box::new(d.members.iter().filter_map(|&i| m.clients.get(i))),
    };
    for c in members {
        let connected = c.ever_connected.load(Relaxed);
        counts[Counter::EverConnected as usize] += u64::from(connected);
        counts[Counter::FailedUnconnected as usize] +=
            u64::from(!connected && c.state() == State::Failed);
        for counter in Counter::ALL {
            counts[counter as usize] += read(c, counter);
        }
    }
    let states = match scope {
        None => m.states(),
        Some(d) => m.states_of(&d.members),
    };
    counts[Counter::Failed as usize] = states[State::Failed as usize];
    let p = Process::now();
    let mut hists: Vec<_> = (0..HistId::COUNT)
        .map(|_| synth_report::hist::new())
        .collect();
    for (id, h) in [
        (HistId::Connect, &m.connect),
        (HistId::Lateness, &m.lateness),
        (HistId::AudioLatency, &m.latency[0]),
        (HistId::VideoLatency, &m.latency[1]),
        (HistId::AudioCrossHost, &m.cross_host_latency[0]),
        (HistId::VideoCrossHost, &m.cross_host_latency[1]),
        (HistId::AudioJitter, &m.jitter[0]),
        (HistId::VideoJitter, &m.jitter[1]),
        (HistId::Keyframe, &m.keyframe_answer),
        (HistId::Join, &m.join_visibility),
        (HistId::Rejoin, &m.rejoin),
        (HistId::ServerRtt, &m.server_rtt),
        (HistId::KeyframeWait, &m.keyframe_wait),
    ] {
        hists[id as usize] = match scope.map(|d| d.hist_groups.as_deref()) {
            None => h.merged(),
            Some(Some(groups)) => h.merged_groups(groups),
            Some(None) => continue,
        };
    }
    Snapshot {
        t_s: m.started.elapsed().as_secs_f64(),
        unix_ms: synth_common::clock::unix_ms_u64(),
        clients: by_state(&states),
        counts,
        cpu_seconds: p.cpu_seconds,
        host: host_now(),
        rss_bytes: p.rss_bytes,
        // The server beside the run: read by `monitor::Live`, which watches it.
        server: None,
        hists,
    }
}

/// One client's share of a snapshot's counter (0 for the counters taken
/// from the clients' states rather than summed).
fn read(c: &ClientStats, counter: Counter) -> u64 {
    let all = |a: &[std::sync::atomic::AtomicU64]| a.iter().map(|b| b.load(Relaxed)).sum();
    match counter {
        Counter::Failed | Counter::EverConnected | Counter::FailedUnconnected => 0,
        Counter::AudioSent => c.sent_packets[0].load(Relaxed),
        Counter::VideoSent => c.sent_packets[1].load(Relaxed),
        Counter::AudioReceived => c.recv_packets[0].load(Relaxed),
        Counter::VideoReceived => c.recv_packets[1].load(Relaxed),
        Counter::SentBytes => all(&c.sent_bytes),
        Counter::ReceivedBytes => all(&c.recv_bytes),
        Counter::AudioMissing => c.missing[0].load(Relaxed),
        Counter::VideoMissing => c.missing[1].load(Relaxed),
        Counter::AudioLate => c.late[0].load(Relaxed),
        Counter::VideoLate => c.late[1].load(Relaxed),
        Counter::Corrupted => all(&c.corrupted),
        Counter::Freezes => c.freezes.load(Relaxed),
        Counter::Congestion => c.congestion.load(Relaxed),
        Counter::Reconnects => c.reconnects.load(Relaxed),
        Counter::Joins => c.joins.load(Relaxed),
        Counter::Leaves => c.leaves.load(Relaxed),
        Counter::Rejoins => c.rejoins.load(Relaxed),
        Counter::Stalls => c.stalls.load(Relaxed),
        Counter::ServerDelayUs => c.credit_wait_us.load(Relaxed) + c.skipped_us.load(Relaxed),
        Counter::RoomCongestion => c.room_congestion.load(Relaxed),
        Counter::EndsIdleTimeout => c.session_ends[SessionEnd::IdleTimeout as usize].load(Relaxed),
        Counter::EndsServerClosed => {
            c.session_ends[SessionEnd::ServerClosed as usize].load(Relaxed)
        }
        Counter::EndsReset => c.session_ends[SessionEnd::Reset as usize].load(Relaxed),
        Counter::EndsLocalError => c.session_ends[SessionEnd::LocalError as usize].load(Relaxed),
        Counter::EndsPlanned => c.session_ends[SessionEnd::Planned as usize].load(Relaxed),
    }
}

/// A snapshot of nothing at `m`'s start: the origin of cumulative windows.
pub fn zero(m: &Metrics) -> Snapshot {
    Snapshot::zero(
        synth_common::clock::unix_ms_u64().saturating_sub(m.started.elapsed().as_millis() as u64),
        Process::now().cpu_seconds,
        host_now(),
    )
}

/// Clients by state, from [`Metrics::states`].
pub fn by_state(st: &[u64; 8]) -> ByState {
    ByState {
        pending: st[State::Pending as usize],
        connecting: st[State::Connecting as usize],
        connected: st[State::Connected as usize],
        stalled: st[State::Stalled as usize],
        reconnecting: st[State::Reconnecting as usize],
        failed: st[State::Failed as usize],
        done: st[State::Done as usize],
        away: st[State::Away as usize],
    }
}

/// Whether a figure can be checked on a window (the registry's live figures).
pub fn window_figure(name: &str) -> bool {
    synth_report::figure::is_live(name)
}

/// The live figures outside the percentile families, as errors list them.
pub static WINDOW_FIGURES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    synth_report::figure::FIGURES
        .iter()
        .filter(|f| f.is_live() && !f.percentile)
        .map(|f| f.name)
        .collect()
});
