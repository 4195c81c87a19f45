//! What the participants sent and received besides media: their profiles
//! (`client_profile`), the control packets a `browser` sends (DIAGNOSTICS,
//! HEALTH, RTT probes, key-frame requests) and what the plan expected.

use serde::{Deserialize, Serialize};

/// Packets per second of each kind besides media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rates {
    /// Keep-alive heartbeats; each flag change (speaking, a mute) adds one,
    /// not counted here since it follows the pack's voice and the scripts.
    pub heartbeat: f64,
    /// DIAGNOSTICS.
    pub diagnostics: f64,
    /// HEALTH.
    pub health: f64,
    /// RTT probes (sent) or their echoes (received).
    pub rtt: f64,
}

impl Rates {
    /// All kinds together.
    pub fn total(&self) -> f64 {
        self.heartbeat + self.diagnostics + self.health + self.rtt
    }

    /// Each kind plus `o`'s times `k`.
    pub fn add_scaled(&mut self, o: &Rates, k: f64) {
        self.heartbeat += o.heartbeat * k;
        self.diagnostics += o.diagnostics * k;
        self.health += o.health * k;
        self.rtt += o.rtt * k;
    }

    /// In words: the total, then each kind; `rtt` names the RTT packets
    /// (probes sent, echoes received).
    pub fn words(&self, rtt: &str) -> String {
        format!(
            "{:.1} (heartbeats {:.1} + one per flag change, DIAGNOSTICS {:.1}, HEALTH {:.1}, RTT {rtt} {:.1})",
            self.total(),
            self.heartbeat,
            self.diagnostics,
            self.health,
            self.rtt
        )
    }
}

/// What one participant is expected to send and receive, per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Expected {
    /// Sent.
    pub sent: Rates,
    /// Received.
    pub received: Rates,
}

/// Control packets by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlCounts {
    /// DIAGNOSTICS.
    pub diagnostics: u64,
    /// HEALTH.
    pub health: u64,
    /// RTT probes (sent) or their echoes (received).
    pub rtt: u64,
    /// Key-frame requests (received: every one of the room, whoever it asks).
    pub keyframe_request: u64,
}

impl ControlCounts {
    /// Adds another pod's counts.
    pub fn add(&mut self, o: &ControlCounts) {
        self.diagnostics += o.diagnostics;
        self.health += o.health;
        self.rtt += o.rtt;
        self.keyframe_request += o.keyframe_request;
    }
}

/// The participants' profiles and their control traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Control {
    /// Clients with `client_profile: browser`.
    pub browsers: u64,
    /// Clients with `client_profile: bot`.
    pub bots: u64,
    /// Control packets sent.
    pub sent: ControlCounts,
    /// Control packets received.
    pub received: ControlCounts,
    /// Control packets a browser did not send because its queue was full.
    pub dropped: u64,
    /// Times a browser chose its server among several (`server_urls`).
    pub elections: u64,
    /// What the plan expects of one participant per second once its meeting
    /// is up (the mean over the plan's clients, as `validate` shows it).
    pub expected_per_participant: Expected,
}

impl Control {
    /// Adds another pod's (`report merge`): counts summed, the expected
    /// rates weighted by each pod's clients.
    pub fn add(&mut self, o: &Control) {
        let (a, b) = (
            (self.browsers + self.bots) as f64,
            (o.browsers + o.bots) as f64,
        );
        let mut e = Expected::default();
        if a + b > 0.0 {
            e.sent
                .add_scaled(&self.expected_per_participant.sent, a / (a + b));
            e.sent
                .add_scaled(&o.expected_per_participant.sent, b / (a + b));
            e.received
                .add_scaled(&self.expected_per_participant.received, a / (a + b));
            e.received
                .add_scaled(&o.expected_per_participant.received, b / (a + b));
        }
        self.expected_per_participant = e;
        self.browsers += o.browsers;
        self.bots += o.bots;
        self.sent.add(&o.sent);
        self.received.add(&o.received);
        self.dropped += o.dropped;
        self.elections += o.elections;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_pods_weigh_their_expectations_by_clients() {
        let pod = |browsers, diagnostics| Control {
            browsers,
            sent: ControlCounts {
                diagnostics: 10,
                ..ControlCounts::default()
            },
            expected_per_participant: Expected {
                sent: Rates {
                    diagnostics,
                    ..Rates::default()
                },
                ..Expected::default()
            },
            ..Control::default()
        };
        let mut a = pod(1, 4.0);
        a.add(&pod(3, 8.0));
        assert_eq!(a.browsers, 4);
        assert_eq!(a.sent.diagnostics, 20);
        assert_eq!(a.expected_per_participant.sent.diagnostics, 7.0);
    }
}
