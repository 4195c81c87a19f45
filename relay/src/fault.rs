//! Faults the relay can be told to inject, to test clients against a
//! misbehaving server: random drops of audio and video (`--drop-rate`) and
//! one stall (`--stall-after`, `--stall-for`).
//!
//! A drop is decided per delivery, where the sender's task would queue a
//! packet for one receiver: SplitMix64 (a counter-based generator) of the
//! seed, the sender's and the receiver's join order and the sender's count
//! of audio and video packets. So no state is shared between tasks, and the
//! drops of one sender at one receiver depend on neither the other members
//! nor the timing: given the order the relay reads a sender's packets and the
//! order sessions joined, the same seed drops the same packets.
//!
//! The stall is one task ([`Stalls::run`]) that flips a phase from
//! [`Phase::Before`] to [`Phase::Stalled`] to [`Phase::Over`], recording the
//! wall clock at each flip. Each session's reader stops at its next event
//! once the phase is `Stalled`, and when it is `Over` reads whatever queued
//! up in QUIC meanwhile (the catch-up, `session.rs`) before going on as usual.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use synth_common::clock;
use tokio::sync::watch;

use super::route::{Kind, Track};
use super::stats::StallWindow;

/// A stall of every session's reader (`--stall-after`, `--stall-for`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    /// How long after [`crate::Relay::start`] the stall begins.
    pub after: Duration,
    /// How long it lasts.
    pub duration: Duration,
}

/// `--drop-rate` and `--drop-seed`, for one sending session.
#[derive(Debug)]
pub(crate) struct SenderFaults {
    /// Drop probability; 0 drops nothing.
    rate: f64,
    /// The seed mixed with the sender's join order.
    key: u64,
    /// Audio and video packets fanned out so far.
    packets: u64,
    /// The reader is catching up after a stall: deliveries count as stalled.
    pub(crate) catching_up: bool,
    /// (receiver's join order, media) that already had a delivery from this
    /// sender: the first of each is never dropped, so a receiver's first
    /// packet of a sender marks where what it must receive begins.
    delivered: std::collections::HashSet<(u64, Track)>,
}

/// What to inject into the fan-out of one packet.
#[derive(Debug)]
pub(crate) struct Inject {
    /// Probability, key and media, for audio and video when drops are on.
    drop: Option<(f64, u64, Track)>,
    /// The packet was held back by a stall.
    pub(crate) stalled: bool,
}

impl SenderFaults {
    /// The faults of the sender that joined `order`-th, drops with
    /// probability `rate` (in [0, 1]) from `seed`.
    pub(crate) fn new(rate: f64, seed: u64, order: u64) -> SenderFaults {
        SenderFaults {
            rate,
            key: mix(seed ^ mix(order)),
            packets: 0,
            catching_up: false,
            delivered: std::collections::HashSet::new(),
        }
    }

    /// What to inject into the fan-out of a packet of `kind`; `None` for nothing.
    pub(crate) fn packet(&mut self, kind: Kind) -> Option<Inject> {
        let track = match kind {
            Kind::Audio => Some(Track::Audio),
            Kind::Video => Some(Track::Video),
            _ => None,
        };
        let drop = match track {
            Some(t) if self.rate > 0.0 => {
                self.packets += 1;
                Some((self.rate, mix(self.key ^ self.packets), t))
            }
            _ => None,
        };
        (drop.is_some() || self.catching_up).then_some(Inject {
            drop,
            stalled: self.catching_up,
        })
    }
}

impl SenderFaults {
    /// Whether `inject` drops its packet for the receiver that joined
    /// `order`-th: never the first audio or video packet this sender's
    /// session delivers to it, otherwise with the drop probability.
    pub(crate) fn drops(&self, inject: &Inject, order: u64) -> Option<Track> {
        let (rate, key, track) = inject.drop?;
        if !self.delivered.contains(&(order, track)) {
            return None;
        }
        (unit(mix(key ^ mix(order))) < rate).then_some(track)
    }

    /// `inject`'s packet was queued for the receiver that joined `order`-th
    /// (its first of that media, once, is what [`SenderFaults::drops`] spares).
    pub(crate) fn delivered(&mut self, inject: &Inject, order: u64) {
        if let Some((_, _, track)) = inject.drop {
            self.delivered.insert((order, track));
        }
    }
}

/// SplitMix64's output function: a bijection that scatters nearby inputs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The top 53 bits of `x` as a number in [0, 1).
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Where the relay is in its stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not yet begun: readers read.
    Before,
    /// Readers read nothing.
    Stalled,
    /// Over (or cut short by shutdown): readers catch up, then read as usual.
    Over,
}

/// The configured stall: its phase, which every reader watches, and what happened.
#[derive(Debug)]
pub(crate) struct Stalls {
    plan: Stall,
    phase: watch::Sender<Phase>,
    windows: Mutex<Vec<StallWindow>>,
}

impl Stalls {
    pub(crate) fn new(plan: Stall) -> Stalls {
        Stalls {
            plan,
            phase: watch::Sender::new(Phase::Before),
            windows: Mutex::default(),
        }
    }

    /// The phase, for one reader; its first [`watch::Receiver::has_changed`]
    /// is true, so a reader started during the stall stops at once.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Phase> {
        let mut rx = self.phase.subscribe();
        rx.mark_changed();
        rx
    }

    fn windows(&self) -> MutexGuard<'_, Vec<StallWindow>> {
        // Pushing or setting a field cannot leave the list torn.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stalls so far (the last one open while it lasts).
    pub(crate) fn snapshot(&self) -> Vec<StallWindow> {
        self.windows().clone()
    }

    /// Runs the stall from now on: waits, stalls, resumes. Shutdown before
    /// the stall skips it; shutdown during it ends it then.
    pub(crate) async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(self.plan.after) => {}
            _ = shutdown.wait_for(|v| *v) => return,
        }
        // The clock is read just before each flip. The window is listed only
        // once readers have been told to stop, and closed before they are let
        // go: stats that show it open were taken while no reader read.
        let start_unix_ms = clock::unix_ms_u64();
        self.phase.send_replace(Phase::Stalled);
        self.windows().push(StallWindow {
            start_unix_ms,
            end_unix_ms: None,
        });
        tracing::info!(duration = ?self.plan.duration, "stall: readers stopped");
        tokio::select! {
            _ = tokio::time::sleep(self.plan.duration) => {}
            _ = shutdown.wait_for(|v| *v) => {}
        }
        if let Some(w) = self.windows().last_mut() {
            w.end_unix_ms = Some(clock::unix_ms_u64());
        }
        self.phase.send_replace(Phase::Over);
        tracing::info!("stall over: readers catch up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Of `n` audio packets of sender 0, how many are dropped at receiver 1.
    fn dropped(rate: f64, seed: u64, n: u64) -> Vec<u64> {
        let mut f = SenderFaults::new(rate, seed, 0);
        (0..n)
            .filter(|_| match f.packet(Kind::Audio) {
                Some(i) => {
                    let dropped = f.drops(&i, 1).is_some();
                    if !dropped {
                        f.delivered(&i, 1);
                    }
                    dropped
                }
                None => false,
            })
            .collect()
    }

    #[test]
    fn drops_at_the_rate_and_as_the_seed_says() {
        let n = 100_000;
        let d = dropped(0.1, 1, n);
        let rate = d.len() as f64 / n as f64;
        assert!((0.095..0.105).contains(&rate), "{rate}");
        assert_eq!(
            d,
            dropped(0.1, 1, n),
            "the same seed drops the same packets"
        );
        assert_ne!(d, dropped(0.1, 2, n), "another seed drops others");
        assert!(dropped(0.0, 1, 1000).is_empty());
        // Everything but the first delivery, which is never dropped.
        assert_eq!(dropped(1.0, 1, 1000), (1..1000).collect::<Vec<_>>());
    }

    #[test]
    fn only_audio_and_video_are_dropped() {
        let mut f = SenderFaults::new(1.0, 7, 3);
        // The first video and the first audio packet to receiver 4 go through.
        for k in [Kind::Video, Kind::Audio] {
            let i = f.packet(k).unwrap();
            assert_eq!(f.drops(&i, 4), None, "{k:?}");
            f.delivered(&i, 4);
        }
        let i = f.packet(Kind::Video).unwrap();
        assert_eq!(f.drops(&i, 4), Some(Track::Video));
        for k in [Kind::Media, Kind::KeyframeRequest, Kind::Other] {
            assert!(f.packet(k).is_none(), "{k:?}");
        }
        // While catching up, every packet is marked stalled; audio still drops.
        f.catching_up = true;
        let i = f.packet(Kind::Other).unwrap();
        assert!(i.stalled && f.drops(&i, 4).is_none());
        let i = f.packet(Kind::Audio).unwrap();
        assert_eq!(f.drops(&i, 4), Some(Track::Audio));
    }

    #[test]
    fn receivers_draw_independently() {
        let mut f = SenderFaults::new(0.5, 1, 0);
        let (mut both, n) = (0, 10_000);
        for _ in 0..n {
            let i = f.packet(Kind::Audio).unwrap();
            both += (f.drops(&i, 1).is_some() && f.drops(&i, 2).is_some()) as u32;
            f.delivered(&i, 1);
            f.delivered(&i, 2);
        }
        // Independent halves: a quarter dropped at both.
        assert!((2300..2700).contains(&both), "{both}");
    }

    #[tokio::test(start_paused = true)]
    async fn stall_phases_and_window() {
        let s = Stalls::new(Stall {
            after: Duration::from_secs(5),
            duration: Duration::from_secs(2),
        });
        let mut rx = s.subscribe();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), Phase::Before);
        let (_stop, shutdown) = watch::channel(false);
        let run = s.run(shutdown);
        tokio::pin!(run);
        tokio::select! {
            _ = &mut run => panic!("ended early"),
            _ = rx.changed() => {}
        }
        assert_eq!(*rx.borrow_and_update(), Phase::Stalled);
        let w = s.snapshot();
        assert!(w.len() == 1 && w[0].end_unix_ms.is_none(), "{w:?}");
        run.await;
        assert_eq!(*rx.borrow(), Phase::Over);
        let w = s.snapshot()[0];
        assert!(w.end_unix_ms.unwrap() >= w.start_unix_ms);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_before_the_stall_skips_it() {
        let s = Stalls::new(Stall {
            after: Duration::from_secs(5),
            duration: Duration::from_secs(2),
        });
        let (_stop, shutdown) = watch::channel(true);
        s.run(shutdown).await;
        assert!(s.snapshot().is_empty());
        assert_eq!(*s.subscribe().borrow(), Phase::Before);
    }
}
