//! The report's `networks` section: per group with a `network`, what the
//! impairment did to its datagrams and what QUIC saw above it.

use serde::{Deserialize, Serialize};
use synth_common::netem::Counters;

use crate::num::round3;

/// One direction of a group's network in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkReport {
    /// Datagrams offered to the impairment.
    pub datagrams: u64,
    /// Of those, passed on (once or twice).
    pub passed: u64,
    /// Dropped by the loss model.
    pub dropped_loss: u64,
    /// Dropped at the tail of the rate cap's queue.
    pub dropped_queue: u64,
    /// Dropped while a schedule had the link down.
    pub dropped_down: u64,
    /// Sent twice.
    pub duplicated: u64,
    /// Sent without their delay (reordered).
    pub reordered: u64,
    /// Held back at all (delay, jitter, rate cap).
    pub delayed: u64,
    /// Time added per passed datagram, on average, ms.
    pub mean_added_delay_ms: f64,
}

impl LinkReport {
    /// A direction's counters as reported.
    pub fn from(c: &Counters) -> LinkReport {
        LinkReport {
            datagrams: c.datagrams,
            passed: c.passed,
            dropped_loss: c.dropped_loss,
            dropped_queue: c.dropped_queue,
            dropped_down: c.dropped_down,
            duplicated: c.duplicated,
            reordered: c.reordered,
            delayed: c.delayed,
            mean_added_delay_ms: if c.passed == 0 {
                0.0
            } else {
                round3(c.added_delay_us as f64 / c.passed as f64 / 1000.0)
            },
        }
    }

    fn add(&mut self, o: &LinkReport) {
        let passed = self.passed + o.passed;
        if passed > 0 {
            self.mean_added_delay_ms = round3(
                (self.mean_added_delay_ms * self.passed as f64
                    + o.mean_added_delay_ms * o.passed as f64)
                    / passed as f64,
            );
        }
        self.datagrams += o.datagrams;
        self.passed = passed;
        self.dropped_loss += o.dropped_loss;
        self.dropped_queue += o.dropped_queue;
        self.dropped_down += o.dropped_down;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.delayed += o.delayed;
    }
}

/// What QUIC saw in a group, from its connections' statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuicReport {
    /// RTT samples (every 500 ms and at each session's end, per client).
    pub samples: u64,
    /// Mean of the samples, ms; null without any.
    pub rtt_ms_mean: Option<f64>,
    /// Largest sample, ms; null without any.
    pub rtt_ms_max: Option<f64>,
    /// Packets QUIC declared lost.
    pub lost_packets: u64,
    /// Packets QUIC sent.
    pub sent_packets: u64,
    /// Mean congestion window at the samples, bytes; null without any.
    pub congestion_window_mean: Option<f64>,
}

impl QuicReport {
    fn add(&mut self, o: &QuicReport) {
        let n = self.samples + o.samples;
        let mean = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(round3(
                (a * self.samples as f64 + b * o.samples as f64) / n as f64,
            )),
            (a, b) => a.or(b),
        };
        self.rtt_ms_mean = mean(self.rtt_ms_mean, o.rtt_ms_mean);
        self.congestion_window_mean = mean(self.congestion_window_mean, o.congestion_window_mean);
        self.rtt_ms_max = match (self.rtt_ms_max, o.rtt_ms_max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.samples = n;
        self.lost_packets += o.lost_packets;
        self.sent_packets += o.sent_packets;
    }
}

/// One group with a network, in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkReport {
    /// The group's `user_id` template.
    pub group: String,
    /// The profile's name (`inline` for one written out).
    pub profile: String,
    /// Clients of the group that had their impaired socket.
    pub clients: usize,
    /// Client to server.
    pub uplink: LinkReport,
    /// Server to client.
    pub downlink: LinkReport,
    /// What QUIC saw.
    pub quic: QuicReport,
}

impl NetworkReport {
    /// The summary's line.
    pub fn line(&self) -> String {
        let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let l = |x: &LinkReport| {
            format!(
                "{} dgrams, {} lost, {} queue-dropped, {} down, +{:.1} ms",
                x.datagrams, x.dropped_loss, x.dropped_queue, x.dropped_down, x.mean_added_delay_ms
            )
        };
        format!(
            "{} ({}, {} clients): up {}; down {}; QUIC rtt mean {} max {} ms, {} of {} packets lost",
            self.group,
            self.profile,
            self.clients,
            l(&self.uplink),
            l(&self.downlink),
            f(self.quic.rtt_ms_mean),
            f(self.quic.rtt_ms_max),
            self.quic.lost_packets,
            self.quic.sent_packets
        )
    }
}

/// Several pods' `networks` as one: groups of the same name and profile add up.
pub fn merge<'a>(parts: impl Iterator<Item = &'a [NetworkReport]>) -> Vec<NetworkReport> {
    let mut out: Vec<NetworkReport> = Vec::new();
    for n in parts.flatten() {
        match out
            .iter_mut()
            .find(|o| o.group == n.group && o.profile == n.profile)
        {
            Some(o) => {
                o.clients += n.clients;
                o.uplink.add(&n.uplink);
                o.downlink.add(&n.downlink);
                o.quic.add(&n.quic);
            }
            None => out.push(n.clone()),
        }
    }
    out
}
