//! Connecting: the session URL, one attempt, what a failed one means, and
//! the backoff between attempts.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;
use tokio::time::timeout;
use web_transport_quinn::{ClientError, Session};

use crate::client::context::{Client, Shared};
use crate::config::{ClientProfile, Credentials};
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
        let browser = plan.profile == ClientProfile::Browser;
        let give_up = if !ever {
            refused || self.count >= shared.settings.connect_attempts
        } else if browser {
            self.count >= BROWSER_RECONNECT_ATTEMPTS
        } else {
            refused && since.elapsed() >= RETRY_REFUSED
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
        let wait = if browser {
            browser_backoff(self.count, rand::thread_rng().gen_range(0.0..0.5))
        } else {
            bot_backoff(self.count, rand::thread_rng().gen_range(0.5..1.5))
        };
        pause(wait, stop).await
    }
}

/// A `browser` that had connected gives up after this many attempts in a row
/// fail (upstream's connection manager: 10 reconnection attempts with no
/// connection opened, and the client is `Failed`).
pub const BROWSER_RECONNECT_ATTEMPTS: u32 = 10;

/// A `browser`'s wait before attempt `n + 1` (after `n` failed in a row, or
/// after a lost session with `n` = 1), as upstream's connection manager
/// waits (`next_backoff_delay`): 500 ms, then each wait twice the last plus
/// `jitter` of it (a share in [0, 0.5); one draw for the whole run of
/// waits), at most 2 s while `n` ≤ 5, 10 s while ≤ 15, 30 s after.
pub fn browser_backoff(n: u32, jitter: f64) -> Duration {
    let cap = |k: u32| match k {
        0..=5 => Duration::from_secs(2),
        6..=15 => Duration::from_secs(10),
        _ => Duration::from_secs(30),
    };
    (2..=n).fold(Duration::from_millis(500), |last, k| {
        (last * 2).mul_f64(1.0 + jitter).min(cap(k))
    })
}

/// A `bot`'s wait before attempt `n + 1`: 250 ms × 2^(n-1) at most 2 s,
/// times `jitter` (in [0.5, 1.5)), so a client is back within a few seconds
/// of a server's restart.
pub fn bot_backoff(n: u32, jitter: f64) -> Duration {
    let base = Duration::from_millis(250).saturating_mul(1 << n.saturating_sub(1).min(6));
    base.min(MAX_BACKOFF).mul_f64(jitter)
}

/// The wait of `client` before it connects again after its session was
/// lost: its profile's first backoff step. Returns true if the run stopped
/// while waiting.
pub(super) async fn after_loss(client: &Client, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = if client.plan.profile == ClientProfile::Browser {
        browser_backoff(1, 0.0)
    } else {
        bot_backoff(1, rand::thread_rng().gen_range(0.5..1.5))
    };
    pause(wait, stop).await
}

/// Waits `wait`; true if the run stopped meanwhile.
async fn pause(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn a_browser_backs_off_as_upstreams_connection_manager() {
        // Without jitter: 500 ms, doubling, capped at 2 s to the 5th attempt,
        // 10 s to the 15th, 30 s after.
        let waits: Vec<u128> = (1..=18).map(|n| ms(browser_backoff(n, 0.0))).collect();
        assert_eq!(
            waits,
            [
                500, 1000, 2000, 2000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000, 10_000,
                10_000, 10_000, 10_000, 20_000, 30_000, 30_000
            ]
        );
        // Jitter adds up to half, within the cap; the first wait has none.
        assert_eq!(ms(browser_backoff(2, 0.49)), 1490);
        assert_eq!(ms(browser_backoff(3, 0.49)), 2000);
        assert_eq!(ms(browser_backoff(1, 0.49)), 500);
    }

    #[test]
    fn a_bot_backs_off_fast() {
        let waits: Vec<u128> = (1..=5).map(|n| ms(bot_backoff(n, 1.0))).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000]);
        assert_eq!(ms(bot_backoff(1, 0.5)), 125);
    }
}
