//! The run's scopes: which participants each group, network and meeting
//! holds, so the engine can read their figures alone (`audio_lost{group=3g}`,
//! the report's `scopes`).

use synth_report::threshold::{Scope, Threshold};

use crate::config::Network;
use crate::plan::ClientPlan;

/// One group, network or meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDef {
    /// Which of them: `group`, `network` or `meeting`.
    pub kind: &'static str,
    /// Its name: the group's name, the network profile's, the meeting id.
    pub name: String,
    /// Its participants, by plan index, ascending.
    pub members: Vec<usize>,
    /// The histogram groups ([`Scopes::group_of`]) that hold exactly its
    /// members' distributions; `None` for a meeting (its percentiles are
    /// not kept).
    pub hist_groups: Option<Vec<usize>>,
}

/// Every scope of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// Each client's histogram group, by plan index: its config group's
    /// index, or for explicit `clients` one group after the config's.
    pub group_of: Vec<u32>,
    /// How many histogram groups there are.
    pub groups: usize,
    /// Every group, then every network, then each meeting a threshold names.
    pub list: Vec<ScopeDef>,
}

impl Scopes {
    /// No scopes (a run without groups, networks or scoped meetings reads none).
    pub const EMPTY: Scopes = Scopes {
        group_of: Vec::new(),
        groups: 0,
        list: Vec::new(),
    };

    /// The scopes of `plan`: its groups (named by `group_names`), the
    /// network profiles its groups use (`networks`), and the meetings
    /// `thresholds` name.
    pub fn new(
        plan: &[ClientPlan],
        group_names: &[String],
        networks: &[Network],
        thresholds: &[Threshold],
    ) -> Scopes {
        let explicit = group_names.len();
        let group_of: Vec<u32> = plan
            .iter()
            .map(|c| c.group.unwrap_or(explicit) as u32)
            .collect();
        let groups = explicit + usize::from(plan.iter().any(|c| c.group.is_none()));
        let members = |keep: &dyn Fn(&ClientPlan) -> bool| -> Vec<usize> {
            plan.iter().filter(|c| keep(c)).map(|c| c.index).collect()
        };
        let mut list = Vec::new();
        for (g, name) in group_names.iter().enumerate() {
            list.push(ScopeDef {
                kind: "group",
                name: name.clone(),
                members: members(&|c| c.group == Some(g)),
                hist_groups: Some(vec![g]),
            });
        }
        let mut profiles: Vec<&str> = networks.iter().map(|n| n.profile_name.as_str()).collect();
        profiles.sort_unstable();
        profiles.dedup();
        for p in profiles {
            let nets: Vec<usize> = (0..networks.len())
                .filter(|&i| networks[i].profile_name == p)
                .collect();
            let m = members(&|c| c.network.is_some_and(|n| nets.contains(&n)));
            let mut hist: Vec<usize> = m.iter().map(|&i| group_of[i] as usize).collect();
            hist.sort_unstable();
            hist.dedup();
            list.push(ScopeDef {
                kind: "network",
                name: p.to_string(),
                members: m,
                hist_groups: Some(hist),
            });
        }
        for t in thresholds {
            if let Scope::Meeting(id) = &t.scope {
                if !list.iter().any(|d| d.kind == "meeting" && &d.name == id) {
                    list.push(ScopeDef {
                        kind: "meeting",
                        name: id.clone(),
                        members: members(&|c| &c.meeting_id == id),
                        hist_groups: None,
                    });
                }
            }
        }
        Scopes {
            group_of,
            groups,
            list,
        }
    }

    /// The scope a threshold names (`None` for the run's and a phase's).
    pub fn find(&self, scope: &Scope) -> Option<&ScopeDef> {
        let (kind, name) = (scope.kind()?, scope.value()?);
        self.list.iter().find(|d| d.kind == kind && d.name == name)
    }
}
