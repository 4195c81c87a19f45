//! What `validate` prints: the plan expanded and checked against the pack,
//! without connecting ([`summary`]), as text ([`Summary`]'s `Display`) or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::cadence::{self, Fleet};
use crate::config::Settings;
use crate::plan::{resolve, server_label};

/// The plan as `validate` prints it.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Server, or the embedded relay.
    pub server: String,
    /// Pack path.
    pub pack: String,
    /// Run length, seconds.
    pub duration_s: f64,
    /// Time until the last client starts, seconds.
    pub ramp_up_s: f64,
    /// Every client.
    pub clients: Vec<SummaryClient>,
    /// Clients per meeting.
    pub meetings: BTreeMap<String, usize>,
    /// Expected send bitrate of all clients together, kbps.
    pub expected_kbps: ExpectedKbps,
    /// The clients' profiles, and what each is expected to send and receive
    /// besides media, per second ([`cadence`]).
    pub control: Fleet,
    /// The capacity search, in words, when the config has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Each group's network, in words (`group: profile (up: …; down: …)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// The behaviour schedule, in words: its seed and digest, the planned
    /// sessions, each phase.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub behaviour: Vec<String>,
    /// Warnings about the plan.
    pub warnings: Vec<String>,
}

/// One client in [`Summary`].
#[derive(Debug, Serialize)]
pub struct SummaryClient {
    /// User id.
    pub user_id: String,
    /// Meeting id.
    pub meeting_id: String,
    /// Sends audio.
    pub audio: bool,
    /// Sends video.
    pub video: bool,
    /// Video track name, if video is on.
    pub rendition: Option<String>,
    /// Its `client_profile`: `browser` or `bot`.
    pub profile: &'static str,
}

/// Expected bitrates.
#[derive(Debug, Serialize)]
pub struct ExpectedKbps {
    /// Audio, all clients.
    pub audio: f64,
    /// Video, all clients.
    pub video: f64,
}

/// Expands and checks the plan against the pack, without connecting.
pub fn summary(s: &Settings) -> anyhow::Result<Summary> {
    let plan = resolve(s)?;
    let mut meetings = BTreeMap::new();
    let mut clients = Vec::with_capacity(plan.clients.len());
    let (mut audio, mut video) = (0.0, 0.0);
    for c in &plan.clients {
        *meetings.entry(c.meeting_id.clone()).or_insert(0) += 1;
        audio += c.target_bps[0] / 1000.0;
        video += c.target_bps[1] / 1000.0;
        clients.push(SummaryClient {
            user_id: c.user_id.clone(),
            meeting_id: c.meeting_id.clone(),
            audio: c.audio_track.is_some(),
            video: c.video_track.is_some(),
            rendition: c.video_track.map(|t| plan.pack.tracks()[t].name.clone()),
            profile: c.profile.name(),
        });
    }
    // Clients a behaviour schedule never needs never start.
    let ramp = plan
        .clients
        .iter()
        .filter(|c| !c.unneeded())
        .map(|c| c.start_after)
        .max()
        .unwrap_or(Duration::ZERO);
    let mut warnings = Vec::new();
    if ramp >= s.duration {
        warnings.push(format!(
            "the ramp-up ({:.1} s for {} clients) is not shorter than the duration ({:.1} s): the last clients will not start",
            ramp.as_secs_f64(),
            s.clients.len(),
            s.duration.as_secs_f64()
        ));
    }
    if let Some((m, n)) = meetings.iter().find(|(_, n)| **n == 1) {
        if meetings.len() > 1 || s.clients.len() == 1 {
            warnings.push(format!(
                "meeting {m} has {n} participant: nobody receives its media"
            ));
        }
    }
    Ok(Summary {
        server: server_label(s),
        pack: s.pack.display().to_string(),
        duration_s: s.duration.as_secs_f64(),
        ramp_up_s: ramp.as_secs_f64(),
        clients,
        meetings,
        expected_kbps: ExpectedKbps {
            audio: (audio * 10.0).round() / 10.0,
            video: (video * 10.0).round() / 10.0,
        },
        control: cadence::fleet(&plan.clients, s.heartbeat_interval.as_secs_f64()),
        search: s.search.as_ref().map(|se| {
            let slo: Vec<String> = se
                .slo
                .iter()
                .map(|t| format!("{} {}", t.name, t.expr))
                .collect();
            format!(
                "from {} by {} to {} clients, {} a step ({} steps), meetings of {}; SLOs: {}",
                se.start,
                se.step,
                se.max,
                humantime::format_duration(se.hold),
                se.steps(),
                se.meeting_size,
                if slo.is_empty() {
                    "none (only connecting and the generator)".to_string()
                } else {
                    slo.join(", ")
                }
            )
        }),
        networks: s.networks.iter().map(|n| n.describe()).collect(),
        behaviour: plan.schedule.as_ref().map_or_else(Vec::new, |sc| {
            let p = &sc.planned;
            let mut v = vec![format!(
                "seed {}, schedule {:016x}: {} sessions ({} joins, {} rejoins after churn, {} after a storm), {} leaves, {} storm drops, {} actions",
                s.seed,
                sc.digest,
                p.sessions,
                p.joins,
                p.rejoins,
                p.storm_rejoins,
                p.leaves + p.churn_drops,
                p.storm_drops,
                p.actions
            )];
            for w in &sc.phases {
                v.push(format!(
                    "phase {} ({}) {:.1}-{:.1} s",
                    w.name,
                    w.kind,
                    w.start.as_secs_f64(),
                    w.end.as_secs_f64()
                ));
            }
            v
        }),
        warnings,
    })
}

impl fmt::Display for Summary {
    /// The plan as `validate` prints it: the server, the pack, the clients
    /// and meetings, the expected bitrate, the search, networks, behaviour
    /// and warnings, then `ok`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "server    {}", self.server)?;
        writeln!(f, "pack      {}", self.pack)?;
        writeln!(
            f,
            "duration  {:.1} s (ramp-up {:.1} s)",
            self.duration_s, self.ramp_up_s
        )?;
        let audio = self.clients.iter().filter(|c| c.audio).count();
        let video = self.clients.iter().filter(|c| c.video).count();
        writeln!(
            f,
            "clients   {} ({} with audio, {} with video) in {} meetings",
            self.clients.len(),
            audio,
            video,
            self.meetings.len()
        )?;
        let mut sizes = std::collections::BTreeMap::new();
        for n in self.meetings.values() {
            *sizes.entry(*n).or_insert(0) += 1;
        }
        for (size, count) in sizes {
            writeln!(f, "          {count} meeting(s) of {size}")?;
        }
        writeln!(
            f,
            "expected  {:.1} kbps audio + {:.1} kbps video sent ({:.2} Mbit/s)",
            self.expected_kbps.audio,
            self.expected_kbps.video,
            (self.expected_kbps.audio + self.expected_kbps.video) / 1000.0
        )?;
        let (c, p) = (&self.control, &self.control.per_participant);
        writeln!(f, "profile   browser {}, bot {}", c.browsers, c.bots)?;
        writeln!(
            f,
            "control   per participant per second: sends {}, receives {}",
            p.sent.words("probes"),
            p.received.words("echoes")
        )?;
        for c in self.clients.iter().take(5) {
            writeln!(
                f,
                "          {} -> {} (audio {}, video {}, {})",
                c.user_id,
                c.meeting_id,
                c.audio,
                c.rendition.as_deref().unwrap_or("off"),
                c.profile
            )?;
        }
        if self.clients.len() > 5 {
            writeln!(f, "          ... and {} more", self.clients.len() - 5)?;
        }
        if let Some(se) = &self.search {
            writeln!(f, "search    {se}")?;
        }
        for n in &self.networks {
            writeln!(f, "network   {n}")?;
        }
        for b in &self.behaviour {
            writeln!(f, "behaviour {b}")?;
        }
        for w in &self.warnings {
            writeln!(f, "warning   {w}")?;
        }
        writeln!(f, "ok")
    }
}
