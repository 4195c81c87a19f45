//! The server beside the run (`server:` in the config): its process on this
//! host read from `/proc`, and a Prometheus server asked, every timeline
//! interval; [`crate::monitor::Live`] puts each [`ServerReading`] into its
//! snapshots, so the timeline, the search's steps and the report's
//! `server_cost` have the server's cost beside the clients' figures.
//!
//! - the process: `/proc/PID/stat` and `/proc/PID/statm` read when a
//!   snapshot is taken (parsed by [`synth_report::server::ProcReading`]).
//!   Once they cannot be read (the process ended, or is a zombie) it is
//!   gone for the rest of the run: one warning, its figures `null` from
//!   then on, and its pid never read again (the kernel may reuse it);
//! - Prometheus: a task asks each query every interval over plain HTTP/1.0
//!   (`GET /api/v1/query?query=…`), each request bounded by
//!   [`QUERY_TIMEOUT`], all queries at once; a snapshot takes the latest
//!   answers. A failed request is counted, warned about once, and its value
//!   is `null` until one succeeds again. A slow Prometheus never holds the
//!   run up: the snapshot does not wait for it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::task::JoinHandle;

pub use synth_report::server::ServerReading;
use synth_report::server::{prometheus_value, ProcReading, Watched};

use crate::config::ServerWatch;

/// The longest one Prometheus request may take (connect, send, answer).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes of a Prometheus answer read (an instant query's answer is
/// small; a query that matched thousands of series is cut here and fails).
const MAX_ANSWER: u64 = 1 << 20;

/// The server's process and Prometheus queries, read while the run goes.
pub struct ServerProbe {
    pid: Option<u32>,
    /// Set once the process could not be read: seconds since the run started.
    gone_at_s: Option<f64>,
    prometheus: Option<Prometheus>,
    first: Option<ServerReading>,
    /// The last reading with the process's CPU in it.
    last_alive: Option<ServerReading>,
    first_t_s: f64,
    last_t_s: f64,
}

impl std::fmt::Debug for ServerProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProbe")
            .field("pid", &self.pid)
            .field("gone_at_s", &self.gone_at_s)
            .finish_non_exhaustive()
    }
}

/// The Prometheus side: the latest answers, filled by a task.
struct Prometheus {
    url: url::Url,
    latest: Arc<Latest>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Latest {
    values: Mutex<BTreeMap<String, Option<f64>>>,
    failures: AtomicU64,
}

impl Drop for ServerProbe {
    fn drop(&mut self) {
        if let Some(p) = &self.prometheus {
            p.task.abort();
        }
    }
}

impl ServerProbe {
    /// Starts watching the server of `w`: checks that its process exists,
    /// asks each Prometheus query once (so the first reading has answers;
    /// a failure here is counted and warned about, not an error), then asks
    /// again every `interval`. Must run inside a tokio runtime.
    pub async fn start(w: &ServerWatch, interval: Duration) -> anyhow::Result<ServerProbe> {
        if let Some(pid) = w.pid {
            if read_proc(pid).is_none() {
                bail!("server.pid {pid}: no such process on this host (or its /proc/{pid}/stat cannot be read)");
            }
        }
        let prometheus = match &w.prometheus {
            Some(base) => {
                let targets = targets(base, &w.queries)?;
                let latest = Arc::new(Latest::default());
                ask_all(&targets, &latest).await;
                let task = tokio::spawn(poll(targets, latest.clone(), interval));
                Some(Prometheus {
                    url: base.clone(),
                    latest,
                    task,
                })
            }
            None => None,
        };
        Ok(ServerProbe {
            pid: w.pid,
            gone_at_s: None,
            prometheus,
            first: None,
            last_alive: None,
            first_t_s: 0.0,
            last_t_s: 0.0,
        })
    }

    /// Reads the server now, `t_s` seconds after the run's start.
    pub fn read(&mut self, t_s: f64) -> ServerReading {
        let mut r = ServerReading::default();
        if let (Some(pid), None) = (self.pid, self.gone_at_s) {
            match read_proc(pid) {
                Some(p) => {
                    r.cpu_seconds = Some(p.cpu_seconds);
                    r.rss_bytes = Some(p.rss_bytes);
                }
                None => {
                    tracing::warn!(
                        "the server's process {pid} is gone {t_s:.1} s into the run: its CPU and memory are null from here on"
                    );
                    self.gone_at_s = Some(t_s);
                }
            }
        }
        if let Some(p) = &self.prometheus {
            r.queries = p
                .latest
                .values
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default();
        }
        if self.first.is_none() {
            self.first = Some(r.clone());
            self.first_t_s = t_s;
        }
        if r.cpu_seconds.is_some() {
            self.last_alive = Some(r.clone());
        }
        self.last_t_s = t_s;
        r
    }

    /// What the report's `server_cost` is made of, besides the samples.
    pub fn watched(&self) -> Watched {
        Watched {
            pid: self.pid,
            prometheus: self.prometheus.as_ref().map(|p| p.url.to_string()),
            first: self.first.clone(),
            last: self.last_alive.clone(),
            secs: self.last_t_s - self.first_t_s,
            gone_at_s: self.gone_at_s,
            query_failures: self
                .prometheus
                .as_ref()
                .map_or(0, |p| p.latest.failures.load(Relaxed)),
        }
    }
}

/// The process's CPU and memory now; `None` when it is gone (no such pid,
/// a zombie, or its files cannot be read).
fn read_proc(pid: u32) -> Option<ProcReading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    // SAFETY: sysconf has no memory effects.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    ProcReading::parse(
        &stat,
        &statm,
        u32::try_from(ticks).ok()?,
        u64::try_from(page).ok()?,
    )
}

/// One query: its name, the host:port to connect to, the request's text.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    addr: String,
    /// The `Host` header's value.
    authority: String,
    /// The request's path and query.
    target: String,
}

/// The request of each query against the Prometheus server at `base`.
fn targets(base: &url::Url, queries: &BTreeMap<String, String>) -> anyhow::Result<Vec<Target>> {
    let host = base.host_str().context("server.prometheus has no host")?;
    let port = base.port_or_known_default().unwrap_or(80);
    // `http://h:9090/prom` and `http://h:9090/prom/` both mean the folder.
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let mut api = base.join("api/v1/query").context("server.prometheus")?;
    let authority = match base.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Ok(queries
        .iter()
        .map(|(name, q)| {
            api.query_pairs_mut().clear().append_pair("query", q);
            let target = format!("{}?{}", api.path(), api.query().unwrap_or(""));
            Target {
                name: name.clone(),
                addr: format!("{host}:{port}"),
                authority: authority.clone(),
                target,
            }
        })
        .collect())
}

/// Asks every query every `interval`, forever (the probe aborts it).
async fn poll(targets: Vec<Target>, latest: Arc<Latest>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first, at once: `start` asked already
    loop {
        tick.tick().await;
        ask_all(&targets, &latest).await;
    }
}

/// Asks every query at once and keeps the answers; a failure is counted,
/// its value `null`, and warned about the first time.
async fn ask_all(targets: &[Target], latest: &Latest) {
    let mut set = tokio::task::JoinSet::new();
    for t in targets {
        let t = t.clone();
        set.spawn(async move {
            let v = match tokio::time::timeout(QUERY_TIMEOUT, ask(&t)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {QUERY_TIMEOUT:?}")),
            };
            (t.name, v)
        });
    }
    while let Some(done) = set.join_next().await {
        let Ok((name, v)) = done else { continue };
        let value = match v {
            Ok(x) => Some(x),
            Err(e) => {
                if latest.failures.fetch_add(1, Relaxed) == 0 {
                    tracing::warn!("server.queries.{name}: {e} (its value is null until an answer comes; further failures are only counted)");
                }
                None
            }
        };
        if let Ok(mut values) = latest.values.lock() {
            values.insert(name, value);
        }
    }
}

/// One query's value.
async fn ask(t: &Target) -> Result<f64, String> {
    let (status, body) = crate::http::get(
        &t.addr,
        &t.authority,
        &t.target,
        "application/json",
        MAX_ANSWER,
    )
    .await?;
    // Prometheus answers a bad query with 400 or 422 and a JSON error: its
    // message says more than the status.
    match prometheus_value(&body) {
        Ok(v) if status == 200 => Ok(v),
        Ok(_) => Err(format!("HTTP {status}")),
        Err(e) if status == 200 => Err(e),
        Err(e) => Err(format!("HTTP {status}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_the_base_path_and_encode_the_query() {
        let q: BTreeMap<String, String> =
            [("cpu".to_string(), "rate(x{job=\"a b\"}[15s])".to_string())].into();
        for base in ["http://127.0.0.1:9090/prom", "http://127.0.0.1:9090/prom/"] {
            let t = targets(&base.parse().unwrap(), &q).unwrap();
            assert_eq!(t[0].addr, "127.0.0.1:9090");
            assert_eq!(
                t[0].target,
                "/prom/api/v1/query?query=rate%28x%7Bjob%3D%22a+b%22%7D%5B15s%5D%29"
            );
            assert_eq!(t[0].authority, "127.0.0.1:9090");
        }
        let t = targets(&"http://[::1]/".parse().unwrap(), &q).unwrap();
        assert_eq!(t[0].addr, "[::1]:80");
    }
}
