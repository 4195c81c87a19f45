//! The send side of the framed wire (upstream's `RnD` branch): a session's
//! few persistent uni streams, one per kind of traffic as upstream's web
//! client keeps them (audio, video, screen, everything else), each packet
//! written as one `[u32 big-endian length][PacketWrapper]` frame
//! ([`synth_common::framing`]).
//!
//! A stream is acknowledged as a whole, at its end: its packets count as
//! acknowledged when the session ends properly and the stream's data and
//! FIN were all acknowledged, never before. While the session runs, the
//! connection's ACK frames tell that the server still takes what is sent:
//! a send waiting since the last one that came marks the client stalled,
//! as an unacknowledged stream does on the per-packet wire.

use std::future::Future as _;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use synth_common::framing;
use tokio::time::timeout;
use web_transport_quinn::{SendStream, Session};

use crate::metrics::{ClientStats, Media};

/// Whether a stream's data and FIN were all acknowledged: `Some(true)`,
/// `Some(false)` when it never will be (stopped by the peer, or the session
/// is gone), `None` while it is in flight. Never waits.
pub(super) fn acked(s: &SendStream) -> Option<bool> {
    let fut = s.stopped();
    let mut fut = std::pin::pin!(fut);
    match fut
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        Poll::Ready(Ok(None)) => Some(true),
        Poll::Ready(_) => Some(false),
        Poll::Pending => None,
    }
}

/// Streams a session keeps: audio, video, screen, the rest.
const KINDS: usize = 4;

/// Media classes counted per stream (as [`Media`]).
const MEDIA: usize = 5;

/// The stream a packet of `media` rides on (upstream's `MediaStreamKey`:
/// audio, video, screen, control).
fn kind(media: Media) -> usize {
    match media {
        Media::Audio => 0,
        Media::Video => 1,
        Media::Screen => 2,
        Media::Heartbeat | Media::Other => 3,
    }
}

/// One session's persistent streams.
#[derive(Default)]
pub(super) struct Persistent {
    /// By kind: the stream and the packets written on it, per media.
    streams: [Option<(SendStream, [u64; MEDIA])>; KINDS],
    /// ACK frames the connection had received when last looked.
    acks: u64,
}

/// Why a framed send failed.
pub(super) enum Failed {
    /// No stream could be opened (nothing was written).
    Unopened(String),
    /// Writing broke the stream (the packet is counted sent, not delivered).
    Broken(String),
}

impl Persistent {
    /// Notes whether the server acknowledged anything since the last look:
    /// if so, nothing sent before now is waiting. Then a send from
    /// `began` (µs after the run's start, plus one) waits, if none did.
    pub(super) fn look(&mut self, session: &Session, stats: &ClientStats, began: u64) {
        let conn: &quinn::Connection = session;
        let acks = conn.stats().frame_rx.acks;
        if acks != self.acks {
            self.acks = acks;
            stats.waiting_since_us.store(0, Relaxed);
        }
        if began != 0 && stats.waiting_since_us.load(Relaxed) == 0 {
            stats.waiting_since_us.store(began, Relaxed);
        }
    }

    /// Whether `media`'s stream is open.
    pub(super) fn has(&self, media: Media) -> bool {
        self.streams[kind(media)].is_some()
    }

    /// Keeps `stream` as `media`'s.
    pub(super) fn adopt(&mut self, media: Media, stream: SendStream) {
        self.streams[kind(media)] = Some((stream, [0; MEDIA]));
    }

    /// Writes `chunks` as one frame on `media`'s stream (opened before with
    /// [`Persistent::adopt`]); how long the write waited for flow-control
    /// credit. A broken stream is dropped (the next send opens another).
    pub(super) async fn write(
        &mut self,
        media: Media,
        chunks: &[Bytes],
    ) -> Result<Duration, Failed> {
        let k = kind(media);
        let Some((stream, counts)) = self.streams[k].as_mut() else {
            return Err(Failed::Unopened("no stream for this media".into()));
        };
        let len: usize = chunks.iter().map(Bytes::len).sum();
        if len > framing::MAX_FRAME {
            return Err(Failed::Unopened(format!(
                "a packet of {len} bytes is more than a frame holds ({})",
                framing::MAX_FRAME
            )));
        }
        let mut frame = Vec::with_capacity(chunks.len() + 1);
        frame.push(Bytes::copy_from_slice(&framing::header(len)));
        frame.extend(chunks.iter().cloned());
        let began = Instant::now();
        match stream.write_all_chunks(&mut frame).await {
            Ok(()) => {
                counts[media as usize] += 1;
                Ok(began.elapsed())
            }
            Err(e) => {
                self.streams[k] = None;
                Err(Failed::Broken(e.to_string()))
            }
        }
    }

    /// The session ends properly: finishes every stream and waits (at most
    /// `limit`) for each to be acknowledged whole; the packets of those
    /// that were count as acknowledged.
    pub(super) async fn drain(&mut self, stats: &ClientStats, limit: Duration) {
        let mut open: Vec<(SendStream, [u64; MEDIA])> =
            self.streams.iter_mut().filter_map(Option::take).collect();
        for (s, _) in open.iter_mut() {
            let _ = s.finish();
        }
        let all = async {
            for (s, _) in open.iter() {
                let _ = s.stopped().await;
            }
        };
        let _ = timeout(limit, all).await;
        for (s, counts) in open {
            if acked(&s) == Some(true) {
                for (m, n) in counts.iter().enumerate() {
                    stats.acked[m].fetch_add(*n, Relaxed);
                }
            }
        }
        stats.waiting_since_us.store(0, Relaxed);
    }

    /// The session is gone: nothing written on its streams will be known
    /// acknowledged.
    pub(super) fn forget(&mut self, stats: &ClientStats) {
        self.streams = Default::default();
        stats.waiting_since_us.store(0, Relaxed);
    }
}
