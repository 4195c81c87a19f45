//! Snapshots of the live [`Metrics`]: every counter summed and every
//! histogram merged at one instant, as `synth_report::window` takes them
//! (the window between two gives the timeline's samples and the live
//! figures). The report's timeline types are re-exported here.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::LazyLock;

pub use synth_report::model::{Av, ByState, Event, Sample, Timeline, P2};
pub use synth_report::window::{Snapshot, Window};

use synth_report::figure::HistId;

use crate::metrics::{ClientStats, Metrics, Process, State};

/// Everything `m` has counted until now.
pub fn take(m: &Metrics) -> Snapshot {
    let av = |f: &dyn Fn(&ClientStats, usize) -> u64| Av {
        audio: m.sum(|c| f(c, 0)),
        video: m.sum(|c| f(c, 1)),
    };
    let (mut ever, mut failed_unconnected) = (0, 0);
    for c in &m.clients {
        let connected = c.ever_connected.load(Relaxed);
        ever += u64::from(connected);
        failed_unconnected += u64::from(!connected && c.state() == State::Failed);
    }
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
    ] {
        hists[id as usize] = h.merged();
    }
    Snapshot {
        t_s: m.started.elapsed().as_secs_f64(),
        unix_ms: synth_common::clock::unix_ms_u64(),
        clients: by_state(&m.states()),
        ever_connected: ever,
        failed_unconnected,
        sent: av(&|c, i| c.sent_packets[i].load(Relaxed)),
        recv: av(&|c, i| c.recv_packets[i].load(Relaxed)),
        sent_bytes: m.sum(|c| c.sent_bytes.iter().map(|b| b.load(Relaxed)).sum()),
        recv_bytes: m.sum(|c| c.recv_bytes.iter().map(|b| b.load(Relaxed)).sum()),
        missing: av(&|c, i| c.missing[i].load(Relaxed)),
        late: av(&|c, i| c.late[i].load(Relaxed)),
        corrupted: m.sum(|c| c.corrupted.iter().map(|b| b.load(Relaxed)).sum()),
        freezes: m.sum(|c| c.freezes.load(Relaxed)),
        congestion: m.sum(|c| c.congestion.load(Relaxed)),
        reconnects: m.sum(|c| c.reconnects.load(Relaxed)),
        joins: m.sum(|c| c.joins.load(Relaxed)),
        leaves: m.sum(|c| c.leaves.load(Relaxed)),
        rejoins: m.sum(|c| c.rejoins.load(Relaxed)),
        stalls: m.sum(|c| c.stalls.load(Relaxed)),
        server_delay_us: m.sum(|c| c.credit_wait_us.load(Relaxed) + c.skipped_us.load(Relaxed)),
        cpu_seconds: p.cpu_seconds,
        rss_bytes: p.rss_bytes,
        hists,
    }
}

/// A snapshot of nothing at `m`'s start: the origin of cumulative windows.
pub fn zero(m: &Metrics) -> Snapshot {
    Snapshot::zero(
        synth_common::clock::unix_ms_u64().saturating_sub(m.started.elapsed().as_millis() as u64),
        Process::now().cpu_seconds,
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
