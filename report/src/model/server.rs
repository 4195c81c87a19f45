//! The server beside the run (`server:` in the config): its cost in each
//! timeline sample, over the whole run, and (in [`super::search`]) per
//! capacity-search step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The server in one timeline interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSample {
    /// CPU cores the server's process used over the interval (1.0 = one
    /// core busy all the time); `null` without a pid, or once it is gone.
    pub cores: Option<f64>,
    /// Its resident memory at the interval's end, MB.
    pub rss_mb: Option<f64>,
    /// Each Prometheus query's latest value at the interval's end (`null`
    /// when the request failed).
    pub queries: BTreeMap<String, Option<f64>>,
}

impl ServerSample {
    /// Takes in the interval right after this one: cores and query values
    /// are averaged (each a reading of the same span's length), memory is
    /// the later's.
    pub fn absorb(&mut self, later: &ServerSample) {
        let mean = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(crate::num::round3((x + y) / 2.0)),
            (x, y) => x.or(y),
        };
        self.cores = mean(self.cores, later.cores);
        self.rss_mb = later.rss_mb.or(self.rss_mb);
        for (name, v) in &later.queries {
            let mine = self.queries.entry(name.clone()).or_default();
            *mine = mean(*mine, *v);
        }
    }
}

/// One Prometheus query over the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerQuery {
    /// Mean of its values in the timeline's samples.
    pub mean: Option<f64>,
    /// The largest of them.
    pub max: Option<f64>,
    /// The last one.
    pub last: Option<f64>,
}

/// The server's cost over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerCost {
    /// The server's process id on the generator's host, when one was watched.
    pub pid: Option<u32>,
    /// The Prometheus server asked, when one was.
    pub prometheus: Option<String>,
    /// CPU seconds the process used during the run (until it was gone, if it went).
    pub cpu_seconds: Option<f64>,
    /// Mean cores used over the run (`null` when the process went before the end).
    pub cores_mean: Option<f64>,
    /// The most cores used in one timeline sample.
    pub cores_max: Option<f64>,
    /// The largest resident memory seen in a sample, MB.
    pub rss_peak_mb: Option<f64>,
    /// When the process was found gone, seconds since the run started.
    pub gone_at_s: Option<f64>,
    /// Each Prometheus query over the run.
    pub queries: BTreeMap<String, ServerQuery>,
    /// Prometheus requests that failed (timed out, refused, or answered
    /// with an error); their values are `null`.
    pub query_failures: u64,
}
