//! The I/O helpers both sides share (feature `net`): a UDP socket with large
//! buffers, [`Reads`], which reads many uni streams of one session at once,
//! each to its end, [`FramedReads`], which reads the frames of many framed
//! streams at once, and what the binaries share: [`main_runtime`] (logging
//! and the runtime) and [`terminated`] (their shutdown signal).
//!
//! On upstream's main wire every videocall-rs packet is one whole uni stream.
//! Reading streams one after another would let one large key frame hold up
//! every small audio packet behind it (and skew the latency a receiver
//! measures), so streams are read together and each packet is handed on the
//! moment its stream ends. Only a stream that has news is polled (a
//! `FuturesUnordered`), so a wake-up costs the same with one stream in flight
//! as with hundreds. On the framed wire ([`crate::framing`]) a few streams
//! last the whole session, each carrying one kind of traffic in frames:
//! [`FramedReads`] reads them together the same way and hands on each frame
//! as soon as it is whole.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::pin::pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, Stream as _};
use web_transport_quinn::RecvStream;

use crate::framing::{FrameError, FrameReader};
use crate::wire::MAX_STREAM_BYTES;

/// Both socket buffers (SO_RCVBUF and SO_SNDBUF) of the relay's and the
/// clients' sockets: 4 MiB, enough for hundreds of handshakes at once (the
/// kernel's default of about 200 KB lost handshakes at 500).
pub const UDP_BUFFER_BYTES: usize = 4 << 20;

/// The application error code a too-long stream is stopped with, and on the
/// framed wire a stream whose framing broke.
pub const STOP_TOO_LONG: u32 = 1;

/// The most bytes taken from a framed stream at once: with the frame in
/// progress, what a [`FrameReader`] may hold.
const FRAMED_READ_CHUNK: usize = 64 * 1024;

/// A UDP socket bound to `bind` (port 0 for any), non-blocking, with both
/// buffers set to `buffer` bytes when it is not 0 (past `net.core.rmem_max`
/// when privileged, through SO_RCVBUFFORCE). An IPv6 wildcard also accepts
/// IPv4 (dual stack), so one socket reaches 127.0.0.1 and ::1.
pub fn udp_socket(bind: SocketAddr, buffer: usize) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    if bind.is_ipv6() {
        let _ = s.set_only_v6(false);
    }
    if buffer > 0 {
        set_buffers(&s, buffer);
    }
    s.set_nonblocking(true)?;
    s.bind(&bind.into())?;
    Ok(s.into())
}

/// Sets both socket buffers, forcing past the sysctl limit when allowed;
/// logs when the kernel gave less than asked.
fn set_buffers(s: &socket2::Socket, bytes: usize) {
    use std::os::fd::AsRawFd;
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        // SAFETY: `s` is an open socket for the duration of the call, and the
        // option value is a c_int passed by pointer with its exact size.
        let forced = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                force,
                (&want as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        } == 0;
        if !forced {
            let _ = if plain == libc::SO_RCVBUF {
                s.set_recv_buffer_size(bytes)
            } else {
                s.set_send_buffer_size(bytes)
            };
        }
    }
    // Linux reports twice the size set (it counts its own overhead).
    let got = s.recv_buffer_size().unwrap_or(0) / 2;
    if got < bytes {
        tracing::warn!(
            requested = bytes,
            got,
            "UDP receive buffer is smaller than requested (raise net.core.rmem_max)"
        );
    }
}

/// Why a stream gave no packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFail {
    /// Longer than [`MAX_STREAM_BYTES`]: stopped and dropped.
    TooLong,
    /// Reset by the peer, or the session ended.
    Reset,
}

/// A uni stream being read to its end.
struct Pending {
    stream: RecvStream,
    /// The first chunk: most packets are one chunk, kept without copying.
    first: Bytes,
    /// Later chunks, appended after `first` was copied in.
    more: Vec<u8>,
    len: usize,
}

impl Pending {
    fn new(stream: RecvStream) -> Pending {
        Pending {
            stream,
            first: Bytes::new(),
            more: Vec::new(),
            len: 0,
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, ReadFail>> {
        loop {
            // Quinn keeps the waker with the stream, not in this future, so a
            // fresh future per poll loses nothing.
            let want = MAX_STREAM_BYTES + 1 - self.len;
            let r = ready!(pin!(self.stream.read_chunk(want, true)).poll(cx));
            match r {
                Ok(Some(chunk)) => {
                    self.len += chunk.bytes.len();
                    if self.len > MAX_STREAM_BYTES {
                        let _ = self.stream.stop(STOP_TOO_LONG);
                        return Poll::Ready(Err(ReadFail::TooLong));
                    }
                    if self.first.is_empty() && self.more.is_empty() {
                        self.first = chunk.bytes;
                    } else {
                        if self.more.is_empty() {
                            self.more.reserve(2 * self.len);
                            self.more.extend_from_slice(&self.first);
                        }
                        self.more.extend_from_slice(&chunk.bytes);
                    }
                }
                Ok(None) => {
                    let packet = if self.more.is_empty() {
                        std::mem::take(&mut self.first)
                    } else {
                        std::mem::take(&mut self.more).into()
                    };
                    return Poll::Ready(Ok(packet));
                }
                Err(_) => return Poll::Ready(Err(ReadFail::Reset)),
            }
        }
    }
}

impl std::future::Future for Pending {
    type Output = Result<Bytes, ReadFail>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_read(cx)
    }
}

/// The uni streams of one session being read, each to its end.
#[derive(Default)]
pub struct Reads {
    pending: FuturesUnordered<Pending>,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Reads {
    /// No stream is being read.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Starts reading `stream`.
    pub fn push(&mut self, stream: RecvStream) {
        self.pending.push(Pending::new(stream));
    }

    /// Starts reading `stream` and reads what has already arrived: most
    /// packets are whole by the time their stream is accepted, and are
    /// returned at once without being queued. A stream not yet ended is
    /// queued like [`Reads::push`] (and polled at the next
    /// [`Reads::poll_next`]).
    pub fn start(
        &mut self,
        stream: RecvStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, ReadFail>> {
        let mut p = Pending::new(stream);
        match p.poll_read(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => {
                self.pending.push(p);
                Poll::Pending
            }
        }
    }

    /// The next stream read to its end, whichever ends first. Pending while
    /// no stream is being read.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, ReadFail>> {
        match std::pin::Pin::new(&mut self.pending).poll_next(cx) {
            Poll::Ready(Some(r)) => Poll::Ready(r),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

/// Why a framed stream gives no more frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameFail {
    /// Its framing broke ([`FrameError`]): a bad length (the stream is
    /// stopped with [`STOP_TOO_LONG`] and dropped) or an end inside a frame.
    Framing(FrameError),
    /// Reset by the peer, or the session ended.
    Reset,
}

/// A framed uni stream and what has arrived of its next frame.
struct Framed {
    stream: RecvStream,
    frames: FrameReader,
}

/// What one turn of reading a framed stream gave.
enum Step {
    Frame(Bytes),
    /// Ended between two frames.
    End,
    Fail(FrameFail),
}

/// The next frame of one stream; hands the stream back with it, to be read
/// on (`None` once the stream is over).
struct NextFrame(Option<Framed>);

impl std::future::Future for NextFrame {
    type Output = (Option<Framed>, Step);

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(f) = self.0.as_mut() else {
            return Poll::Ready((None, Step::End));
        };
        loop {
            match f.frames.next() {
                Ok(Some(frame)) => return Poll::Ready((self.0.take(), Step::Frame(frame))),
                Ok(None) => {}
                Err(e) => {
                    let _ = f.stream.stop(STOP_TOO_LONG);
                    return Poll::Ready((None, Step::Fail(FrameFail::Framing(e))));
                }
            }
            // As in `Pending::poll_read`: quinn keeps the waker with the stream.
            let r = ready!(pin!(f.stream.read_chunk(FRAMED_READ_CHUNK, true)).poll(cx));
            let step = match r {
                Ok(Some(chunk)) => {
                    f.frames.push(&chunk.bytes);
                    continue;
                }
                Ok(None) => match f.frames.finish() {
                    Ok(()) => Step::End,
                    Err(e) => Step::Fail(FrameFail::Framing(e)),
                },
                Err(_) => Step::Fail(FrameFail::Reset),
            };
            return Poll::Ready((None, step));
        }
    }
}

/// The framed uni streams of one session being read, frame by frame, each
/// until it ends ([`crate::framing`]).
#[derive(Default)]
pub struct FramedReads {
    pending: FuturesUnordered<NextFrame>,
}

impl std::fmt::Debug for FramedReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedReads")
            .field("streams", &self.pending.len())
            .finish()
    }
}

impl FramedReads {
    /// No stream is being read.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Starts reading `stream`'s frames.
    pub fn push(&mut self, stream: RecvStream) {
        self.pending.push(NextFrame(Some(Framed {
            stream,
            frames: FrameReader::new(),
        })));
    }

    /// The next whole frame of any stream (a stream's frames in their
    /// order), or a stream that failed (and is dropped). A stream that ends
    /// between frames is dropped without a word. Pending while no stream is
    /// being read.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, FrameFail>> {
        loop {
            let (back, step) = match std::pin::Pin::new(&mut self.pending).poll_next(cx) {
                Poll::Ready(Some(r)) => r,
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            };
            if let Some(f) = back {
                // Read on: frames already held come at the next poll.
                self.pending.push(NextFrame(Some(f)));
            }
            match step {
                Step::Frame(frame) => return Poll::Ready(Ok(frame)),
                Step::End => {}
                Step::Fail(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Completes on the first Ctrl-C or SIGTERM (Ctrl-C only where SIGTERM
/// cannot be watched). The binaries pass it as their shutdown future.
pub async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Targets whose debug lines print the CONNECT request, token included:
/// never logged below `info`, whatever the filter says.
const SECRET_TARGETS: &[&str] = &["web_transport_quinn"];

/// `filter` with the targets that print secrets held at `info` or above: a directive
/// naming one at `debug` or `trace` becomes `info`, and a filter that does not
/// name one gets `target=info` added (a plain `debug` would reach it).
pub fn cap_secret_logs(filter: &str) -> String {
    let mut named = vec![false; SECRET_TARGETS.len()];
    let mut out: Vec<String> = filter
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let d = d.trim();
            let (target, level) = d.split_once('=').unwrap_or((d, ""));
            match SECRET_TARGETS.iter().position(|t| target.starts_with(t)) {
                Some(i) => {
                    named[i] = true;
                    let lower = level.to_ascii_lowercase();
                    if lower == "debug" || lower == "trace" || lower.is_empty() {
                        format!("{target}=info")
                    } else {
                        d.to_string()
                    }
                }
                None => d.to_string(),
            }
        })
        .collect();
    for (t, named) in SECRET_TARGETS.iter().zip(named) {
        if !named {
            out.push(format!("{t}=info"));
        }
    }
    out.join(",")
}

/// What a binary's `main` sets up first: logging to stderr with `filter`
/// (tracing env-filter syntax; an invalid one falls back to `warn`), then a
/// multi-threaded runtime. `None` (after printing why) if the runtime cannot
/// start.
pub fn main_runtime(filter: &str) -> Option<tokio::runtime::Runtime> {
    let filter = tracing_subscriber::EnvFilter::try_new(cap_secret_logs(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_carrying_targets_never_log_below_info() {
        assert_eq!(cap_secret_logs("debug"), "debug,web_transport_quinn=info");
        assert_eq!(
            cap_secret_logs("warn,web_transport_quinn=error"),
            "warn,web_transport_quinn=error"
        );
        assert_eq!(
            cap_secret_logs("info,web_transport_quinn=trace"),
            "info,web_transport_quinn=info"
        );
        assert_eq!(cap_secret_logs(""), "web_transport_quinn=info");
    }
}
