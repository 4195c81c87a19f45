//! The label values of the metrics: media, client states, heartbeat flags,
//! connect-failure reasons and why sessions ended.

/// Declares a label's enum, indexed from 0 in the order written, and the
/// label values indexed by it.
macro_rules! label {
    (
        $(#[$doc:meta])* $name:ident, $values:ident:
        $($(#[$vdoc:meta])* $variant:ident = $value:literal,)*
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        #[doc = concat!("Label values, indexed by [`", stringify!($name), "`].")]
        pub const $values: [&str; [$($value),*].len()] = [$($value),*];
    };
}

label! {
    /// Media classes used as the `media` label.
    Media, MEDIA:
    /// Opus frames.
    Audio = "audio",
    /// VP9 frames.
    Video = "video",
    /// Heartbeats.
    Heartbeat = "heartbeat",
    /// Everything else (CONNECTION, RTT, key-frame requests, meeting events).
    Other = "other",
    /// Screen-share frames (VP9, media type SCREEN).
    Screen = "screen",
}

/// A client's connection state (the `state` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Not started yet (ramp-up).
    Pending = 0,
    /// First connection in progress.
    Connecting = 1,
    /// Session up.
    Connected = 2,
    /// Lost its session, trying again.
    Reconnecting = 3,
    /// Gave up (rejected, or every attempt failed).
    Failed = 4,
    /// Finished cleanly at the end of the run.
    Done = 5,
    /// Session open, but nothing sent has been acknowledged for `stall_after`
    /// (or a send has waited that long): derived when read, never stored.
    Stalled = 6,
    /// Left the meeting on purpose (its schedule's churn, a storm, a phase
    /// that lowered the count): between sessions, or gone for good.
    Away = 7,
}

impl State {
    /// Every state, indexed by its `u8`.
    pub const ALL: [State; 8] = [
        State::Pending,
        State::Connecting,
        State::Connected,
        State::Reconnecting,
        State::Failed,
        State::Done,
        State::Stalled,
        State::Away,
    ];

    pub(crate) fn from_u8(v: u8) -> State {
        State::ALL.get(v as usize).copied().unwrap_or(State::Done)
    }
}

/// Heartbeat flags, by their bit in [`super::ClientStats::flags`] (the `flag` label).
pub const FLAGS: [&str; 4] = ["audio", "video", "screen", "speaking"];

label! {
    /// What a `browser` client sends besides media and heartbeats (the
    /// `kind` label of the control packets).
    Control, CONTROL:
    /// DIAGNOSTICS: what it receives of each peer's medium.
    Diagnostics = "diagnostics",
    /// HEALTH: each peer's state.
    Health = "health",
    /// RTT probes (sent) and their echoes (received).
    Rtt = "rtt",
    /// Key-frame requests (received: any in the room, whoever they ask).
    KeyframeRequest = "keyframe_request",
}

label! {
    /// Why a connection attempt failed (the `reason` label).
    FailReason, REASONS:
    /// No answer within the connect timeout.
    Timeout = "timeout",
    /// The server refused the session (bad id or token, or meeting rules).
    Rejected = "rejected",
    /// The TLS handshake failed (certificate not trusted).
    Tls = "tls",
    /// Any other transport error.
    Transport = "transport",
}

label! {
    /// Why a session that was up ended (the `cause` label): taken once, where
    /// the session ended, from QUIC's and WebTransport's close reason.
    SessionEnd, SESSION_ENDS:
    /// No packet from the server for the QUIC idle timeout (the smaller of
    /// ours, `idle_timeout`, and the server's): noticed that late.
    IdleTimeout = "idle_timeout",
    /// The server closed the session or the connection (its code and
    /// reason are kept).
    ServerClosed = "server_closed",
    /// The server reset the connection (a stateless reset: it no longer
    /// knew the connection).
    Reset = "reset",
    /// Our side ended it for a reason that was not planned: a write or read
    /// that failed while the connection was still up, a QUIC protocol error
    /// it detected, or a close of its own.
    LocalError = "local_error",
    /// Ended on purpose: a leave of the schedule (churn, a storm, a phase)
    /// or the end of the run. Not a failure.
    Planned = "planned",
}

impl SessionEnd {
    /// Every cause, in label order.
    pub const ALL: [SessionEnd; 5] = [
        SessionEnd::IdleTimeout,
        SessionEnd::ServerClosed,
        SessionEnd::Reset,
        SessionEnd::LocalError,
        SessionEnd::Planned,
    ];
}
