//! Connecting: the session URL, one attempt, what a failed one means, and
//! the backoff between attempts.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio::time::timeout;
use web_transport_quinn::{ClientError, Session};

use crate::client::context::{Client, Shared};
use crate::config::Credentials;
use crate::metrics::{FailReason, State};
use crate::plan::ClientPlan;

/// What a failed connection attempt means.
#[derive(Debug)]
pub struct ConnectFailure {
    /// Metric label.
    pub reason: FailReason,
    /// One line for the log.
    pub message: String,
}

/// The URL a client connects to: path form, or token form when credentials are set.
pub fn session_url(
    server: &url::Url,
    plan: &ClientPlan,
    credentials: &Credentials,
) -> anyhow::Result<url::Url> {
    let mut u = server.clone();
    match credentials {
        Credentials::None => {
            // Ids are [A-Za-z0-9_ -]: only the space needs escaping.
            u.set_path(&format!(
                "/lobby/{}/{}",
                plan.user_id.replace(' ', "%20"),
                plan.meeting_id.replace(' ', "%20")
            ));
        }
        Credentials::Token(t) => {
            u.set_path("/lobby");
            u.query_pairs_mut().clear().append_pair("token", t);
        }
        Credentials::Mint { secret, ttl } => {
            let mut claims =
                synth_common::jwt::Claims::participant(&plan.user_id, &plan.meeting_id, *ttl);
            if plan.behaviour.viewer {
                // A viewer: the server lets it receive and drops its media.
                claims.room_join = false;
                claims.observer = true;
            }
            let token = synth_common::jwt::mint(&claims, secret);
            u.set_path("/lobby");
            u.query_pairs_mut().clear().append_pair("token", &token);
        }
    }
    Ok(u)
}

/// Sorts a connection error into a metric reason and a one-line message.
pub fn classify(e: &ClientError, url: &url::Url) -> ConnectFailure {
    use quinn::ConnectionError as C;
    use web_transport_quinn::ConnectError as H;
    let shown = synth_common::redact::url(url);
    let (reason, what) = match e {
        ClientError::HttpError(H::ConnectionError(C::TimedOut))
        | ClientError::Connection(C::TimedOut) => (FailReason::Timeout, "timed out".to_string()),
        ClientError::HttpError(H::ErrorStatus(s)) => {
            (FailReason::Rejected, format!("rejected with HTTP status {s}"))
        }
        // The videocall server refuses a session by ending the CONNECT stream.
        ClientError::HttpError(other) => (
            FailReason::Rejected,
            format!("rejected by the server ({other}): check the ids, the token and the server's meeting rules"),
        ),
        ClientError::Rustls(err) => (FailReason::Tls, format!("TLS: {err}")),
        ClientError::Connection(C::TransportError(t))
            if t.code.to_string().contains("crypto") || t.to_string().contains("certificate") =>
        {
            (FailReason::Tls, format!("TLS handshake failed: {t}"))
        }
        ClientError::Connection(C::ConnectionClosed(c)) if c.error_code.to_string().contains("crypto") => {
            (FailReason::Tls, format!("TLS handshake refused by the server: {c}"))
        }
        other => (FailReason::Transport, other.to_string()),
    };
    ConnectFailure {
        reason,
        message: format!("{shown}: {what}"),
    }
}

/// How long a client that had connected keeps retrying a refusal or a TLS
/// failure (a server mid-deploy may refuse, or serve another certificate,
/// for a while) before it counts as failed.
pub const RETRY_REFUSED: Duration = Duration::from_secs(30);

/// One connection attempt through `endpoint`, once a handshake slot is free:
/// the session, and how long its handshake took.
pub(super) async fn attempt(
    shared: &Shared,
    endpoint: &web_transport_quinn::Client,
    url: &url::Url,
) -> Result<(Session, Duration), ConnectFailure> {
    let connect_timeout = shared.settings.connect_timeout;
    // The connect time is the handshake's, not the wait for a slot.
    let (attempt, took) = {
        let _slot = shared.signals.connect_slots.acquire().await;
        let started = Instant::now();
        let r = timeout(connect_timeout, endpoint.connect(url.clone())).await;
        (r, started.elapsed())
    };
    match attempt {
        Ok(Ok(s)) => Ok((s, took)),
        Ok(Err(e)) => Err(classify(&e, url)),
        Err(_) => Err(ConnectFailure {
            reason: FailReason::Timeout,
            message: format!(
                "{}: no session within {:?} (is a server listening there?)",
                synth_common::redact::url(url),
                connect_timeout
            ),
        }),
    }
}

/// A client's run of failed connection attempts.
#[derive(Debug, Default)]
pub(super) struct Failures {
    /// Attempts failed in a row.
    count: u32,
    /// When the run of failed attempts began (a client that had connected
    /// retries a refusal or a TLS failure for [`RETRY_REFUSED`]).
    since: Option<Instant>,
}

impl Failures {
    /// A session is up: the next failure begins a new run.
    pub(super) fn reset(&mut self) {
        *self = Failures::default();
    }

    /// Counts a failed attempt of `client`; returns true when the client
    /// gives up (or the run stops during the backoff).
    pub(super) async fn fail(
        &mut self,
        client: &Client,
        f: ConnectFailure,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let (shared, stats, plan) = (&client.shared, &client.stats, &client.plan);
        shared.metrics.connect_failed(f.reason);
        self.count += 1;
        let since = *self.since.get_or_insert_with(Instant::now);
        let ever = stats.ever_connected.load(Relaxed);
        let refused = f.reason == FailReason::Rejected || f.reason == FailReason::Tls;
        let give_up = if ever {
            refused && since.elapsed() >= RETRY_REFUSED
        } else {
            refused || self.count >= shared.settings.connect_attempts
        };
        if give_up {
            // One line per client would flood a large run: the run reports the
            // first failure and the counts by reason.
            tracing::debug!(user = %plan.user_id, "giving up: {}", f.message);
            if let Ok(mut first) = shared.metrics.first_failure.lock() {
                first.get_or_insert(f.message.clone());
            }
            stats.set_state(State::Failed);
            return true;
        }
        tracing::debug!(user = %plan.user_id, attempt = self.count, "{}; retrying", f.message);
        if ever {
            stats.set_state(State::Reconnecting);
        }
        backoff(self.count, stop).await
    }
}

/// Exponential backoff with jitter: 250 ms × 2^(n-1), at most 2 s, ±50 %, so
/// a client is back within a few seconds of a server's restart.
/// Returns true if the run stopped while waiting.
pub(super) async fn backoff(n: u32, stop: &mut watch::Receiver<bool>) -> bool {
    let base = Duration::from_millis(250).saturating_mul(1 << n.saturating_sub(1).min(6));
    let base = base.min(MAX_BACKOFF);
    let jitter = rand::thread_rng().gen_range(0.5..1.5);
    tokio::select! {
        _ = tokio::time::sleep(base.mul_f64(jitter)) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
