//! One resolved plan: the config's participants with the pack's tracks, the
//! bitrate they will send and when they start, one [`ClientPlan`] each.
//!
//! [`resolve`] opens the pack once and checks every participant against it
//! (a rendition the pack lacks, audio from a pack without audio); the run,
//! the report and `validate` all read the same plan.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use synth_common::pack::{Reader, Role, TrackKind};

use crate::behaviour::{self, Action, Cause, Member, PhaseWindow, Planned, Script, SessionPlan};
use crate::config::{ClientProfile, Settings, ViewSpec};

/// One client, fully resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientPlan {
    /// Position in the plan (0-based), also the order of starts.
    pub index: usize,
    /// Participant id.
    pub user_id: String,
    /// Meeting id.
    pub meeting_id: String,
    /// The pack's audio track, if this client sends audio.
    pub audio_track: Option<usize>,
    /// The video track (rendition) it sends, if any.
    pub video_track: Option<usize>,
    /// Pack bitrate (bps) of the audio and the video it sends (0 if not sent).
    pub target_bps: [f64; 2],
    /// When it starts, after the run's start (the ramp).
    pub start_after: Duration,
    /// Offset of its media schedule within one audio frame, so clients that
    /// start together do not all send at the same instant.
    pub phase: Duration,
    /// The capacity-search step it joins in (0 without a search): it starts
    /// only once the step before has passed.
    pub step: usize,
    /// Its network: an index into `Settings::networks`; `None` for the plain socket.
    pub network: Option<usize>,
    /// Its group: an index into `Settings::group_names`; `None` for an
    /// explicit `clients` entry.
    pub group: Option<usize>,
    /// It adapts its video rendition to its uplink (`crate::adapt`).
    pub adapt: bool,
    /// Simulcast: the video tracks it sends at once, layer 0 (its
    /// `video_track`) first, lowest to highest; empty without simulcast.
    pub layers: Vec<usize>,
    /// What it shows and asks for (`view:`).
    pub view: Option<ViewSpec>,
    /// What it sends besides media, and how it keeps its session.
    pub profile: ClientProfile,
    /// How it behaves over the run: sessions, actions, turns, role.
    pub behaviour: Behaviour,
}

/// A client's behaviour over the run ([`crate::behaviour`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Behaviour {
    /// Its sessions, actions and speaking turns (see `scheduled`).
    pub script: Script,
    /// A receive-only viewer.
    pub viewer: bool,
    /// The pack's screen track (its own variant), when it may share.
    pub screen_track: Option<usize>,
    /// The pack's silence track, for when it is not its turn to speak.
    pub silence_track: Option<usize>,
    /// Opus DTX.
    pub dtx: bool,
    /// Its sessions come from a behaviour schedule: no sessions there means
    /// it never joins (a phase never needed it).
    pub scheduled: bool,
}

/// Checks that `pack` can serve client `user`'s `what` (`adapt`,
/// `simulcast`): two or more renditions (`videos`), key frames aligned.
fn ladder_ok(
    pack: &Reader,
    path: &Path,
    user: &str,
    what: &str,
    videos: &[&str],
) -> anyhow::Result<()> {
    if videos.len() < 2 {
        bail!(
            "client {user}: {what} needs a pack with two or more video renditions; pack {} has {}",
            path.display(),
            if videos.is_empty() {
                "none".to_string()
            } else {
                videos.join(", ")
            }
        );
    }
    if let Some((a, b)) = pack.keyframe_mismatch() {
        bail!(
            "client {user}: {what} needs renditions with key frames at the same positions; in pack {}, {} and {} differ (rebuild it with synth-encode build)",
            path.display(),
            pack.tracks()[a].name,
            pack.tracks()[b].name
        );
    }
    Ok(())
}

/// The most video tiles a `view` may show (an `RnD` server keeps at most
/// 64 session ids of a VIEWPORT).
pub const MAX_TILES: usize = 64;

/// Client `k`'s simulcast layers: the pack's video renditions of its own
/// variant, fewest pixels (then bits) first.
fn simulcast_layers(pack: &Reader, k: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..pack.tracks().len())
        .filter(|&t| {
            let tr = &pack.tracks()[t];
            tr.kind == TrackKind::Video && tr.role == Role::Main && tr.variant == 0
        })
        .map(|t| pack.variant_of(t, k))
        .collect();
    v.sort_by_key(|&t| {
        let tr = &pack.tracks()[t];
        (
            u32::from(tr.width) * u32::from(tr.height),
            tr.target_bitrate_bps,
        )
    });
    v
}

/// The mean Opus bitrate (kbps) of the clients that send audio; `None`
/// when none does.
pub fn mean_audio_kbps(clients: &[ClientPlan]) -> Option<f64> {
    let rates: Vec<f64> = clients
        .iter()
        .map(|c| c.target_bps[0])
        .filter(|&b| b > 0.0)
        .collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64 / 1000.0)
}

impl ClientPlan {
    /// Whether it sends medium `i` (0 audio, 1 video) without a pause or a
    /// change of pace for the whole of one session: no churn or storm, and
    /// for audio no mute, DTX or turns; for video no camera toggle or
    /// rendition action.
    pub fn steady(&self, i: usize) -> bool {
        let b = &self.behaviour;
        let sc = &b.script;
        if sc.sessions.len() > 1 || sc.sessions.iter().any(|s| s.end.is_some()) {
            return false;
        }
        let touches = |a: &Action| match a {
            Action::Mute | Action::Unmute => i == 0,
            Action::CameraOff | Action::CameraOn => i == 1,
            Action::Rendition(_) | Action::RenditionRevert => i == 1,
            Action::ScreenShareStart | Action::ScreenShareStop => false,
        };
        if sc.actions.iter().any(|(_, a)| touches(a)) {
            return false;
        }
        i != 0 || (!b.dtx && sc.speaking.is_none())
    }

    /// A behaviour schedule never needs it: it never starts.
    pub fn unneeded(&self) -> bool {
        self.behaviour.scheduled && self.behaviour.script.sessions.is_empty()
    }

    /// Its planned sessions: the script's, or one from `start_after` to the
    /// end without a behaviour schedule.
    pub fn sessions(&self) -> Vec<SessionPlan> {
        if !self.behaviour.scheduled {
            vec![SessionPlan {
                start: self.start_after,
                end: None,
                cause: Cause::Join,
                end_cause: None,
            }]
        } else {
            self.behaviour.script.sessions.clone()
        }
    }
}

/// The pack, read once, and every client's plan.
#[derive(Debug)]
pub struct Plan {
    /// The pack, read once and shared by every client.
    pub pack: Arc<Reader>,
    /// The clients, in start order.
    pub clients: Vec<ClientPlan>,
    /// The behaviour schedule's phases, its planned counts and digest
    /// (`None` when the config has no behaviour section).
    pub schedule: Option<ScheduleInfo>,
}

/// What the report says of the behaviour schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleInfo {
    /// The phases, in order.
    pub phases: Vec<PhaseWindow>,
    /// Joins, leaves, rejoins and storm drops the schedule plans.
    pub planned: Planned,
    /// A hash of the whole schedule: equal for the same config and seed.
    pub digest: u64,
}

/// Opens the pack and resolves every participant of `s` against it.
pub fn resolve(s: &Settings) -> anyhow::Result<Plan> {
    let path: &Path = &s.pack;
    if !path.exists() {
        bail!(
            "opening pack {}: no such file (build one with `synth-encode build -o {}`, or set --pack)",
            path.display(),
            path.display()
        );
    }
    let pack = Reader::open(path).with_context(|| format!("opening pack {}", path.display()))?;
    let audio_track = pack.first_track_with(TrackKind::Audio, Role::Main);
    let bitrate: Vec<f64> = (0..pack.tracks().len())
        .map(|t| pack.bitrate_bps(t))
        .collect();
    let videos: Vec<&str> = pack
        .tracks()
        .iter()
        .filter(|t| t.kind == TrackKind::Video && t.role == Role::Main && t.variant == 0)
        .map(|t| t.name.as_str())
        .collect();
    let screen_track = pack.first_track_with(TrackKind::Video, Role::Screen);
    let silence_track = pack.first_track_with(TrackKind::Audio, Role::Silence);
    let p = &s.people;
    if p.conversation.is_some() && silence_track.is_none() {
        bail!(
            "conversation needs a pack with a silence track for the participants not talking; pack {} has none (rebuild it with synth-encode build)",
            path.display()
        );
    }
    let shares = p
        .actions
        .iter()
        .flatten()
        .any(|a| a.action == behaviour::ActionKind::ScreenShare);
    if shares && screen_track.is_none() {
        bail!(
            "a screen_share action needs a pack with a screen track; pack {} has none (rebuild it with synth-encode build, without --screen none)",
            path.display()
        );
    }
    let mut clients = Vec::with_capacity(s.clients.len());
    for (i, c) in s.clients.iter().enumerate() {
        if c.audio && audio_track.is_none() {
            bail!(
                "client {} wants audio but pack {} has no audio track",
                c.user_id,
                path.display()
            );
        }
        let video_track = if c.video {
            let t = match &c.rendition {
                Some(name) => pack
                    .track_by_name(name)
                    .filter(|&t| pack.tracks()[t].kind == TrackKind::Video)
                    .with_context(|| {
                        format!(
                            "client {}: rendition {:?} is not a video track of pack {} (it has: {})",
                            c.user_id,
                            crate::config::shown(name),
                            path.display(),
                            videos.join(", ")
                        )
                    })?,
                None => pack.first_track_with(TrackKind::Video, Role::Main).with_context(|| {
                    format!("client {} wants video but pack {} has no video track", c.user_id, path.display())
                })?,
            };
            Some(t)
        } else {
            None
        };
        if c.simulcast && c.video {
            if c.adapt || c.rendition.is_some() {
                bail!(
                    "client {}: simulcast sends every rendition at once; drop `{}` from its group",
                    c.user_id,
                    if c.adapt { "adapt" } else { "rendition" }
                );
            }
            ladder_ok(&pack, path, &c.user_id, "simulcast", &videos)?;
        }
        if c.adapt && c.video {
            ladder_ok(&pack, path, &c.user_id, "adapt", &videos)?;
        }
        if let Some(v) = &c.view {
            if v.tiles.is_some_and(|t| !(1..=MAX_TILES).contains(&t)) {
                bail!(
                    "client {}: view.tiles must be between 1 and {MAX_TILES} (an RnD server keeps at most {MAX_TILES} ids)",
                    c.user_id
                );
            }
        }
        // Each client takes its own variant of every track (voice, colours
        // and label), in turn.
        let layers: Vec<usize> = if c.simulcast && c.video {
            simulcast_layers(&pack, i)
        } else {
            Vec::new()
        };
        let video_track = match layers.first() {
            Some(&t) => Some(t),
            None => video_track.map(|t| pack.variant_of(t, i)),
        };
        let audio = audio_track
            .filter(|_| c.audio)
            .map(|t| pack.variant_of(t, i));
        clients.push(ClientPlan {
            index: i,
            user_id: c.user_id.clone(),
            meeting_id: c.meeting_id.clone(),
            audio_track: audio,
            video_track,
            target_bps: [
                audio.map_or(0.0, |t| bitrate[t]),
                // Simulcast: every layer at once.
                if layers.is_empty() {
                    video_track.map_or(0.0, |t| bitrate[t])
                } else {
                    layers.iter().map(|&t| bitrate[t]).sum()
                },
            ],
            start_after: match &s.search {
                // A search starts each step's clients at the step's start.
                Some(se) => se.start_of(i, s.ramp_up_delay),
                None => s
                    .ramp_up_delay
                    .saturating_mul(u32::try_from(i).unwrap_or(u32::MAX)),
            },
            // Spread over one audio frame (20 ms) by a prime stride, so a
            // ramp in multiples of 20 ms does not line every client up.
            phase: Duration::from_micros((i as u64 * 7_919) % 20_000),
            step: s.search.as_ref().map_or(0, |se| se.step_of(i)),
            network: c.network,
            group: c.group,
            adapt: c.adapt && video_track.is_some(),
            layers,
            view: c.view,
            profile: c.profile,
            behaviour: Behaviour {
                script: Script::default(),
                viewer: c.viewer,
                screen_track: screen_track
                    .filter(|_| !c.viewer && shares)
                    .map(|t| pack.variant_of(t, i)),
                silence_track: silence_track.filter(|_| audio.is_some()),
                dtx: p.dtx,
                scheduled: false,
            },
        });
    }
    let schedule = if p.active() {
        Some(behave(s, &mut clients)?)
    } else {
        None
    };
    Ok(Plan {
        pack: Arc::new(pack),
        clients,
        schedule,
    })
}

/// Draws the behaviour schedule of `s` ([`behaviour::schedule`]) for clients
/// starting at `starts` when there are no phases (pure: no pack needed).
pub fn draw(s: &Settings, starts: &[Duration]) -> anyhow::Result<behaviour::Schedule> {
    let groups = s.people.actions.len();
    let mut meetings: BTreeMap<&str, usize> = BTreeMap::new();
    let mut group_sizes = vec![0usize; groups + 1];
    let members: Vec<Member> = s
        .clients
        .iter()
        .map(|c| {
            let n = meetings.len();
            let meeting = *meetings.entry(c.meeting_id.as_str()).or_insert(n);
            // Explicit `clients` entries form one group after the groups.
            let group = c.group.unwrap_or(groups);
            group_sizes[group] += 1;
            Member {
                group,
                meeting,
                audio: c.audio,
                viewer: c.viewer,
            }
        })
        .collect();
    let mut group_actions = s.people.actions.clone();
    group_actions.push(Vec::new());
    let p = &s.people;
    behaviour::schedule(&behaviour::Input {
        members: &members,
        group_sizes: &group_sizes,
        group_actions: &group_actions,
        phases: &p.phases,
        churn: p.churn.as_ref(),
        storms: &p.storms,
        conversation: p.conversation.as_ref(),
        starts,
        ramp_up_delay: s.ramp_up_delay,
        end: s.duration,
        seed: s.seed,
    })
}

/// Draws the behaviour schedule and gives each client its script.
fn behave(s: &Settings, clients: &mut [ClientPlan]) -> anyhow::Result<ScheduleInfo> {
    let starts: Vec<Duration> = clients.iter().map(|c| c.start_after).collect();
    let schedule = draw(s, &starts)?;
    let digest = schedule.digest();
    for (c, script) in clients.iter_mut().zip(schedule.clients) {
        if let Some(first) = script.sessions.first() {
            c.start_after = first.start;
        }
        c.behaviour.script = script;
        c.behaviour.scheduled = true;
    }
    Ok(ScheduleInfo {
        phases: schedule.phases,
        planned: schedule.planned,
        digest,
    })
}

/// The server as reports and the plan show it (never with a secret).
pub fn server_label(s: &Settings) -> String {
    let Some(first) = &s.server_url else {
        return "embedded relay (in-process, 127.0.0.1)".to_string();
    };
    let mut label = synth_common::redact::url(first);
    for u in &s.server_alternates {
        label.push_str(" or ");
        label.push_str(&synth_common::redact::url(u));
    }
    label
}
