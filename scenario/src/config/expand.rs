//! The clients to start: the explicit `clients:` and each group's id
//! templates (`{index}`, `{global}`, `{pod}`, `{pod_index}`, `{meeting}`)
//! expanded into [`Participant`]s, every id checked against the server's rule
//! and distinct.

use std::collections::HashSet;

use anyhow::{bail, Context};
use synth_common::redact::shown;

use super::file::{ClientProfile, ClientSpec, GroupSpec, Role, ViewSpec};
use super::limits;
use super::overrides::Overrides;

/// One client to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// Position in the plan (0-based), also the order of starts.
    pub index: usize,
    /// Participant id (checked against the server's rule).
    pub user_id: String,
    /// Meeting id (checked likewise).
    pub meeting_id: String,
    /// Send audio.
    pub audio: bool,
    /// Send video.
    pub video: bool,
    /// Video track name, `None` for the pack's first video track.
    pub rendition: Option<String>,
    /// Its network: an index into
    /// [`Settings::networks`](super::Settings::networks); `None` for the
    /// plain socket.
    pub network: Option<usize>,
    /// It adapts its video rendition to its uplink (`adapt: true`).
    pub adapt: bool,
    /// It sends every video rendition at once as simulcast layers.
    pub simulcast: bool,
    /// What it shows and asks for (`view:`).
    pub view: Option<ViewSpec>,
    /// Its group's index (`None` for an explicit `clients` entry).
    pub group: Option<usize>,
    /// A receive-only viewer.
    pub viewer: bool,
    /// What it sends besides media, and how it keeps its session.
    pub profile: ClientProfile,
}

/// Variables a template may use.
struct Vars<'a> {
    index: usize,
    global: usize,
    pod: &'a str,
    pod_index: usize,
    meeting: usize,
}

/// Expands `{name}` and `{name:0N}` (zero-padded to N digits) in `template`.
fn render(template: &str, v: &Vars) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    let t = shown(template);
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            bail!("template {t:?} has an unclosed '{{'");
        };
        let inner = &rest[open + 1..open + close];
        let (name, width) = match inner.split_once(':') {
            Some((n, w)) => {
                let w = w.strip_prefix('0').unwrap_or(w);
                let width: usize = w.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "template {t:?}: bad width in {{{}}}, use like {{index:03}}",
                        shown(inner)
                    )
                })?;
                if width > limits::TEMPLATE_WIDTH {
                    bail!(
                        "template {t:?}: width {width} in {{{}}} is more than {}",
                        shown(inner),
                        limits::TEMPLATE_WIDTH
                    );
                }
                (n, width)
            }
            None => (inner, 0),
        };
        let num = match name {
            "index" => v.index,
            "global" => v.global,
            "pod_index" => v.pod_index,
            "meeting" => v.meeting,
            "pod" => {
                out.push_str(v.pod);
                rest = &rest[open + close + 1..];
                continue;
            }
            other => bail!(
                "template {t:?}: unknown variable {{{}}} (use index, global, pod, pod_index, meeting)",
                shown(other)
            ),
        };
        out.push_str(&format!("{num:0width$}"));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Turns a pod name into something the id rule accepts (Kubernetes allows dots).
fn pod_token(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Checks an id against the server's rule; the error shows at most the id's start.
fn check_id(id: &str) -> anyhow::Result<()> {
    use synth_common::ids::{check, IdError, MAX_LEN};
    match check(id) {
        Ok(()) => Ok(()),
        Err(IdError::TooLong(_)) => bail!(
            "id {:?} is {} bytes, more than {MAX_LEN}",
            shown(id),
            id.len()
        ),
        Err(IdError::BadChar { ch, .. }) => bail!(
            "id {:?} has {ch:?}: only letters, digits, '_' and '-' are allowed",
            shown(id)
        ),
        Err(e) => Err(e.into()),
    }
}

/// The participants: the explicit clients, then each group's, numbered in
/// that order. `network` resolves a group's network into an index of the
/// run's networks.
pub(super) fn expand(
    clients: &[ClientSpec],
    groups: &[GroupSpec],
    profile: ClientProfile,
    o: &Overrides,
    network: &mut dyn FnMut(usize, &GroupSpec) -> anyhow::Result<Option<usize>>,
) -> anyhow::Result<Vec<Participant>> {
    let mut roster = Roster::with_capacity(total(clients, groups, o)?);
    for c in clients {
        roster.add(Participant {
            index: roster.len(),
            user_id: c.user_id.clone(),
            meeting_id: c.meeting_id.clone(),
            audio: c.enable_audio,
            video: c.enable_video,
            rendition: c.rendition.clone(),
            network: None,
            adapt: false,
            simulcast: false,
            view: None,
            group: None,
            viewer: false,
            profile: c.client_profile.unwrap_or(profile),
        })?;
    }
    let pod = Pod {
        token: pod_token(o.pod_name.as_deref().unwrap_or("local")),
        index: o.pod_index.unwrap_or(0),
    };
    for (g_no, g) in groups.iter().enumerate() {
        let count = o.clients_per_pod.unwrap_or(g.count);
        let net = network(g_no, g)?;
        let profile = g.client_profile.unwrap_or(profile);
        add_group(&mut roster, g_no, g, count, net, &pod, profile)?;
    }
    if roster.list.is_empty() {
        bail!("no clients: add `clients:` or `groups:` to the config");
    }
    Ok(roster.list)
}

/// How many participants the config makes. Counted before anything is
/// made, so a huge count is an error, not an allocation failure.
fn total(clients: &[ClientSpec], groups: &[GroupSpec], o: &Overrides) -> anyhow::Result<usize> {
    if o.clients_per_pod.is_some() && groups.len() != 1 {
        bail!(
            "CLIENTS_PER_POD is set but the config has {} groups: it needs exactly one",
            groups.len()
        );
    }
    let mut total = clients.len();
    for (g_no, g) in groups.iter().enumerate() {
        let count = match o.clients_per_pod {
            Some(n) if n > limits::CLIENTS => {
                bail!("CLIENTS_PER_POD {n} is more than {}", limits::CLIENTS)
            }
            Some(n) => n,
            None if g.count > limits::CLIENTS => bail!(
                "groups[{g_no}].count {} is more than {}",
                g.count,
                limits::CLIENTS
            ),
            None => g.count,
        };
        total = total.saturating_add(count);
    }
    if total > limits::CLIENTS {
        bail!(
            "the config makes {total} clients, more than {} in one process (run more pods)",
            limits::CLIENTS
        );
    }
    Ok(total)
}

/// The participants made so far: each one's ids checked, no user id twice.
struct Roster {
    list: Vec<Participant>,
    seen: HashSet<String>,
}

impl Roster {
    fn with_capacity(n: usize) -> Self {
        Roster {
            list: Vec::with_capacity(n),
            seen: HashSet::with_capacity(n),
        }
    }

    /// The index the next participant gets.
    fn len(&self) -> usize {
        self.list.len()
    }

    fn add(&mut self, p: Participant) -> anyhow::Result<()> {
        check_id(&p.user_id).with_context(|| format!("client {} user_id", p.index))?;
        check_id(&p.meeting_id)
            .with_context(|| format!("client {} ({}) meeting_id", p.index, p.user_id))?;
        if !self.seen.insert(synth_common::ids::normalize(&p.user_id)) {
            bail!(
                "user_id {:?} is used by more than one client (ids must be distinct; use {{index}} in a group template)",
                p.user_id
            );
        }
        self.list.push(p);
        Ok(())
    }
}

/// This process's pod: its name as an id may hold it, and its index.
struct Pod {
    token: String,
    index: usize,
}

/// Adds group `g_no`'s `count` participants, their ids made from its
/// templates; `network` is the group's network, if it has one.
fn add_group(
    roster: &mut Roster,
    g_no: usize,
    g: &GroupSpec,
    count: usize,
    network: Option<usize>,
    pod: &Pod,
    profile: ClientProfile,
) -> anyhow::Result<()> {
    let size = meeting_size(g_no, g)?;
    let first = first_global(pod.index, count)?;
    for i in 0..count {
        let global = first + i;
        let vars = Vars {
            index: i,
            global,
            pod: &pod.token,
            pod_index: pod.index,
            meeting: global / size,
        };
        roster.add(Participant {
            index: roster.len(),
            user_id: render(&g.user_id, &vars)
                .with_context(|| format!("groups[{g_no}].user_id"))?,
            meeting_id: render(&g.meeting_id, &vars)
                .with_context(|| format!("groups[{g_no}].meeting_id"))?,
            audio: g.enable_audio && g.role == Role::Participant,
            video: g.enable_video && g.role == Role::Participant,
            rendition: g.rendition.clone(),
            network,
            adapt: g.adapt && g.role == Role::Participant,
            simulcast: g.simulcast && g.role == Role::Participant,
            view: g.view,
            group: Some(g_no),
            viewer: g.role == Role::Viewer,
            profile,
        })?;
    }
    Ok(())
}

/// Participants per meeting of group `g_no`: its `meeting_size`, which a
/// meeting id with `{meeting}` needs and one without must not have.
fn meeting_size(g_no: usize, g: &GroupSpec) -> anyhow::Result<usize> {
    let uses_meeting = g.meeting_id.contains("{meeting");
    Ok(match (g.meeting_size, uses_meeting) {
        (Some(0), _) => bail!("groups[{g_no}].meeting_size must be at least 1"),
        (Some(_), false) => bail!(
            "groups[{g_no}]: meeting_size is set but meeting_id {:?} has no {{meeting}}",
            shown(&g.meeting_id)
        ),
        (Some(n), true) => n,
        (None, true) => bail!(
            "groups[{g_no}]: meeting_id {:?} uses {{meeting}}, so meeting_size is needed",
            shown(&g.meeting_id)
        ),
        (None, false) => usize::MAX,
    })
}

/// `{global}` of this pod's first client of a group of `count`: pod_index ×
/// count (its others follow). Were it to wrap, a far pod's ids would be
/// those of pod 0.
fn first_global(pod_index: usize, count: usize) -> anyhow::Result<usize> {
    pod_index
        .checked_mul(count)
        .filter(|f| f.checked_add(count).is_some())
        .with_context(|| {
            format!(
                "pod_index {pod_index} × {count} clients overflows the {{global}} index (at most {})",
                usize::MAX / count.max(1) - 1
            )
        })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, resolve};
    use crate::config::Overrides;

    #[test]
    fn groups_expand_per_pod() {
        let yaml = r#"
groups:
  - count: 4
    user_id: "bot-{pod}-{index:03}"
    meeting_id: "room-{meeting}"
    meeting_size: 3
    rendition: video-320x180
"#;
        let mut o = Overrides {
            pod_name: Some("synth-0.x".into()),
            ..Default::default()
        };
        let s = resolve(yaml, &o).unwrap();
        let ids: Vec<_> = s.clients.iter().map(|c| c.user_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "bot-synth-0-x-000",
                "bot-synth-0-x-001",
                "bot-synth-0-x-002",
                "bot-synth-0-x-003"
            ]
        );
        let rooms: Vec<_> = s.clients.iter().map(|c| c.meeting_id.as_str()).collect();
        assert_eq!(rooms, ["room-0", "room-0", "room-0", "room-1"]);
        // Pod 2 with CLIENTS_PER_POD=3: global indexes 6..9, meetings 2.
        o.pod_index = Some(2);
        o.clients_per_pod = Some(3);
        let s = resolve(yaml, &o).unwrap();
        assert_eq!(s.clients.len(), 3);
        assert!(s.clients.iter().all(|c| c.meeting_id == "room-2"));
        assert_eq!(s.clients[0].rendition.as_deref(), Some("video-320x180"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_errors(&[
            ("clients: [{user_id: a.b, meeting_id: m}]", "'.'"),
            ("clients: [{user_id: a, meeting_id: \"x@y\"}]", "meeting_id"),
            (
                "clients: [{user_id: a, meeting_id: m}, {user_id: a, meeting_id: n}]",
                "more than one client",
            ),
            (
                "groups: [{count: 2, user_id: \"b{nope}\", meeting_id: m}]",
                "unknown variable {nope}",
            ),
            (
                "groups: [{count: 2, user_id: \"b{index}\", meeting_id: \"r{meeting}\"}]",
                "meeting_size is needed",
            ),
            ("{}", "no clients"),
        ]);
    }
}
