//! A hostile network under QUIC: [`Impaired`] wraps a client's UDP socket
//! and carries out what [`synth_common::netem`] decides for each datagram.
//!
//! Because it sits below QUIC, QUIC reacts as on a real network: a dropped
//! datagram is detected as lost and retransmitted (it shows as delay and
//! lower throughput, not as a missing media packet), added delay shows in
//! QUIC's RTT, and a rate cap in its congestion window.
//!
//! - Uplink ([`AsyncUdpSocket::try_send`]): a dropped datagram is reported
//!   sent (`Ok`), as a network loses it after the socket; one due now goes
//!   out at once; a delayed one is copied to a heap that a task of the
//!   client thread's runtime sends from when it is due.
//! - Downlink ([`AsyncUdpSocket::poll_recv`]): every datagram read from the
//!   socket is judged; those that pass wait in a heap until due, then are
//!   handed to QUIC one per slot (the timer of the earliest wakes the reader).
//!
//! Each datagram is judged alone: the wrapper tells QUIC to send one
//! datagram per call (no GSO) and splits what the kernel coalesced (GRO).
//! A client without a network never meets this type: its endpoint is built
//! on the plain socket (`transport::client`).

use std::collections::BinaryHeap;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use synth_common::netem::{Counters, Direction, Netem, Verdict};

/// Bytes read from the socket at once: the most one GRO batch carries.
const SCRATCH_BYTES: usize = 64 << 10;

/// One datagram held back, ordered by when it is due, then by arrival.
struct Held {
    at_us: u64,
    seq: u64,
    addr: SocketAddr,
    ecn: Option<EcnCodepoint>,
    /// Uplink: the source address to send from; downlink: the address it came to.
    ip: Option<IpAddr>,
    data: Box<[u8]>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Held) -> bool {
        (self.at_us, self.seq) == (o.at_us, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    /// Reversed: `BinaryHeap` pops the earliest first.
    fn cmp(&self, o: &Held) -> std::cmp::Ordering {
        (o.at_us, o.seq).cmp(&(self.at_us, self.seq))
    }
}

/// The uplink's held datagrams, shared with the task that sends them.
#[derive(Default)]
struct Uplink {
    heap: BinaryHeap<Held>,
    /// The latest due time of any datagram held: one due before it overtakes.
    latest_us: u64,
    /// Wakes the sending task when a datagram is added.
    waker: Option<std::task::Waker>,
    /// The socket is gone: the task ends.
    closed: bool,
}

/// Everything behind the lock.
struct State {
    model: Netem,
    seq: u64,
    up: Uplink,
    down: BinaryHeap<Held>,
    timer: Pin<Box<tokio::time::Sleep>>,
    scratch: Box<[u8]>,
}

/// A UDP socket that impairs what passes through it (see the module docs).
pub struct Impaired {
    inner: Arc<dyn AsyncUdpSocket>,
    origin: Instant,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Impaired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Impaired").finish_non_exhaustive()
    }
}

impl Impaired {
    /// Wraps `inner`; times in `model` count from now. Must be called on a
    /// tokio runtime: the uplink's sending task is spawned on it.
    pub fn new(inner: Arc<dyn AsyncUdpSocket>, model: Netem) -> Arc<Impaired> {
        let state = Arc::new(Mutex::new(State {
            model,
            seq: 0,
            up: Uplink::default(),
            down: BinaryHeap::new(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            scratch: vec![0; SCRATCH_BYTES].into(),
        }));
        let me = Arc::new(Impaired {
            inner,
            origin: Instant::now(),
            state,
        });
        tokio::spawn(send_held(me.inner.clone(), me.state.clone(), me.origin));
        me
    }

    /// What the impairment did so far: uplink, downlink.
    pub fn counters(&self) -> (Counters, Counters) {
        lock(&self.state).model.counters()
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }
}

impl Drop for Impaired {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        st.up.closed = true;
        if let Some(w) = st.up.waker.take() {
            w.wake();
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic elsewhere while holding it leaves the state usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AsyncUdpSocket for Impaired {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, t: &Transmit) -> io::Result<()> {
        let now = self.now_us();
        let seg = t.segment_size.unwrap_or(t.contents.len()).max(1);
        let mut st = lock(&self.state);
        for part in t.contents.chunks(seg) {
            let Verdict::Send { at_us, copies } =
                st.model.on_datagram(Direction::Up, now, part.len())
            else {
                continue;
            };
            // At once when due and nothing held would go after it
            // (unless it overtakes them: reordering).
            let direct = at_us <= now && (st.up.heap.is_empty() || at_us < st.up.latest_us);
            for _ in 0..copies {
                if direct {
                    let one = Transmit {
                        destination: t.destination,
                        ecn: t.ecn,
                        contents: part,
                        segment_size: None,
                        src_ip: t.src_ip,
                    };
                    match self.inner.try_send(&one) {
                        // A full socket buffer loses it, as a full router queue would.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        other => other?,
                    }
                } else {
                    st.seq += 1;
                    let held = Held {
                        at_us,
                        seq: st.seq,
                        addr: t.destination,
                        ecn: t.ecn,
                        ip: t.src_ip,
                        data: part.into(),
                    };
                    st.up.latest_us = st.up.latest_us.max(at_us);
                    st.up.heap.push(held);
                    if let Some(w) = st.up.waker.take() {
                        w.wake();
                    }
                }
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        loop {
            // Judge everything the socket has now (until it registers `cx`).
            let mut error = None;
            loop {
                let mut m = [RecvMeta::default()];
                let r = {
                    let mut slot = [IoSliceMut::new(&mut st.scratch)];
                    self.inner.poll_recv(cx, &mut slot, &mut m)
                };
                match r {
                    Poll::Ready(Ok(n)) => {
                        let now = self.now_us();
                        for m in &m[..n] {
                            let stride = m.stride.max(1);
                            for part in st.scratch[..m.len].chunks(stride) {
                                if let Verdict::Send { at_us, copies } =
                                    st.model.on_datagram(Direction::Down, now, part.len())
                                {
                                    for _ in 0..copies {
                                        st.seq += 1;
                                        st.down.push(Held {
                                            at_us,
                                            seq: st.seq,
                                            addr: m.addr,
                                            ecn: m.ecn,
                                            ip: m.dst_ip,
                                            data: part.into(),
                                        });
                                    }
                                }
                            }
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        error = Some(e);
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            // Hand over what is due, one datagram per slot.
            let now = self.now_us();
            let mut k = 0;
            while k < bufs.len().min(meta.len()) && st.down.peek().is_some_and(|h| h.at_us <= now) {
                let Some(h) = st.down.pop() else { break };
                let n = h.data.len().min(bufs[k].len());
                bufs[k][..n].copy_from_slice(&h.data[..n]);
                meta[k] = RecvMeta {
                    addr: h.addr,
                    len: n,
                    stride: n,
                    ecn: h.ecn,
                    dst_ip: h.ip,
                };
                k += 1;
            }
            if k > 0 {
                return Poll::Ready(Ok(k));
            }
            if let Some(e) = error {
                return Poll::Ready(Err(e));
            }
            // Nothing due: wake when the earliest held one is.
            let Some(at) = st.down.peek().map(|h| h.at_us) else {
                return Poll::Pending;
            };
            let when = self.origin + Duration::from_micros(at);
            st.timer.as_mut().reset(when.into());
            if st.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// The uplink's sender: each held datagram when it is due, in order, until
/// the socket is dropped.
async fn send_held(inner: Arc<dyn AsyncUdpSocket>, state: Arc<Mutex<State>>, origin: Instant) {
    let mut poller = inner.clone().create_io_poller();
    loop {
        // The next datagram due, or wait for one.
        let next = std::future::poll_fn(|cx| {
            let mut st = lock(&state);
            if st.up.closed {
                return Poll::Ready(None);
            }
            match st.up.heap.peek() {
                Some(h) => Poll::Ready(Some(h.at_us)),
                None => {
                    st.up.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        let Some(at) = next else { return };
        // Sleep until it is due; an earlier one added meanwhile wakes us.
        let due = tokio::time::sleep_until((origin + Duration::from_micros(at)).into());
        tokio::pin!(due);
        let earlier = std::future::poll_fn(|cx| {
            let mut st = lock(&state);
            if st.up.closed || st.up.heap.peek().is_some_and(|h| h.at_us < at) {
                return Poll::Ready(());
            }
            st.up.waker = Some(cx.waker().clone());
            Poll::Pending
        });
        tokio::select! {
            _ = &mut due => {}
            _ = earlier => continue,
        }
        let now = origin.elapsed().as_micros() as u64;
        let pop_due = || {
            let mut st = lock(&state);
            if st.up.heap.peek().is_some_and(|h| h.at_us <= now) {
                st.up.heap.pop()
            } else {
                None
            }
        };
        while let Some(h) = pop_due() {
            let t = Transmit {
                destination: h.addr,
                ecn: h.ecn,
                contents: &h.data,
                segment_size: None,
                src_ip: h.ip,
            };
            loop {
                match inner.try_send(&t) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    // Sent, or an error QUIC would have seen as a loss.
                    _ => break,
                }
            }
        }
    }
}

/// What QUIC saw on one impaired client's connections, sampled
/// periodically and at the end of each session ([`sample`]).
#[derive(Debug, Default)]
pub struct QuicStats {
    /// RTT samples taken.
    pub rtt_samples: AtomicU64,
    /// Their sum, µs.
    pub rtt_sum_us: AtomicU64,
    /// The largest, µs.
    pub rtt_max_us: AtomicU64,
    /// Congestion window at each sample, summed, bytes.
    pub cwnd_sum: AtomicU64,
    /// Packets QUIC declared lost, over every session.
    pub lost_packets: AtomicU64,
    /// Packets QUIC sent, over every session.
    pub sent_packets: AtomicU64,
}

/// One impaired client: its socket wrapper and what QUIC saw above it.
#[derive(Debug, Clone)]
pub struct Tap {
    /// The client's index.
    pub client: usize,
    /// Its network (index into `Settings::networks`).
    pub network: usize,
    /// The socket wrapper, for its counters.
    pub impaired: Arc<Impaired>,
    /// QUIC's figures.
    pub quic: Arc<QuicStats>,
}

/// Samples `conn`'s path statistics into `q` every `every` and once when
/// it closes (lost and sent packets add up over the client's sessions).
pub async fn sample(q: Arc<QuicStats>, conn: quinn::Connection, every: Duration) {
    let mut seen = (0u64, 0u64);
    loop {
        let closed = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = conn.closed() => true,
        };
        let p = conn.stats().path;
        let rtt = conn.rtt().as_micros() as u64;
        q.rtt_samples.fetch_add(1, Relaxed);
        q.rtt_sum_us.fetch_add(rtt, Relaxed);
        q.rtt_max_us.fetch_max(rtt, Relaxed);
        q.cwnd_sum.fetch_add(p.cwnd, Relaxed);
        q.lost_packets
            .fetch_add(p.lost_packets.saturating_sub(seen.0), Relaxed);
        q.sent_packets
            .fetch_add(p.sent_packets.saturating_sub(seen.1), Relaxed);
        seen = (p.lost_packets, p.sent_packets);
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_common::netem::{Link, Loss, Profile};

    fn model(up: Link, down: Link) -> Netem {
        Netem::new(
            Profile {
                uplink: up,
                downlink: down,
            },
            Vec::new(),
            1,
        )
    }

    fn socket() -> Arc<dyn AsyncUdpSocket> {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_nonblocking(true).unwrap();
        quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, s).unwrap()
    }

    async fn recv(s: &Impaired, buf: &mut [u8]) -> (usize, Instant) {
        let n = std::future::poll_fn(|cx| {
            let mut slot = [IoSliceMut::new(buf)];
            let mut m = [RecvMeta::default()];
            s.poll_recv(cx, &mut slot, &mut m)
                .map(|r| r.map(|_| m[0].len))
        })
        .await
        .unwrap();
        (n, Instant::now())
    }

    fn send(s: &Impaired, to: SocketAddr, data: &[u8]) {
        s.try_send(&Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: None,
            src_ip: None,
        })
        .unwrap();
    }

    /// Datagrams go both ways through two wrapped sockets in the order sent,
    /// the delayed ones not before their time, the lost ones never.
    #[tokio::test]
    async fn delays_in_order_and_drops_both_ways() {
        let delay = Link {
            delay_us: 30_000,
            ..Link::default()
        };
        let a = Impaired::new(socket(), model(delay.clone(), Link::default()));
        let b = Impaired::new(socket(), model(Link::default(), delay));
        let to_b = b.local_addr().unwrap();
        let t0 = Instant::now();
        for i in 0..20u8 {
            send(&a, to_b, &[i; 100]);
        }
        let mut buf = [0u8; 2000];
        for i in 0..20u8 {
            let (n, at) = tokio::time::timeout(Duration::from_secs(5), recv(&b, &mut buf))
                .await
                .expect("a datagram");
            assert_eq!((n, buf[0]), (100, i), "in order");
            // 30 ms up and 30 ms down: never earlier (a lower bound, not a timing).
            assert!(at - t0 >= Duration::from_millis(60), "{:?}", at - t0);
        }
        assert_eq!(a.counters().0.delayed, 20);
        assert_eq!(b.counters().1.delayed, 20);

        let lossy = Impaired::new(
            socket(),
            model(
                Link {
                    loss: Loss::Bernoulli(1.0),
                    ..Link::default()
                },
                Link::default(),
            ),
        );
        send(&lossy, to_b, &[9; 10]);
        assert_eq!(lossy.counters().0.dropped_loss, 1);
        send(&a, to_b, &[7; 10]);
        let (_, _) = tokio::time::timeout(Duration::from_secs(5), recv(&b, &mut buf))
            .await
            .unwrap();
        assert_eq!(buf[0], 7, "the lost one never came");
    }

    /// Each datagram is judged alone: no GSO batches from QUIC.
    #[test]
    fn one_datagram_per_call() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Impaired::new(socket(), model(Link::default(), Link::default()));
            assert_eq!(s.max_transmit_segments(), 1);
            assert_eq!(s.max_receive_segments(), 1);
        });
    }
}
