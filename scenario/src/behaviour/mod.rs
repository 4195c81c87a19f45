//! Meetings that behave like people: the config's load shape (`phases`),
//! `churn`, reconnect `storms`, per-group `actions` and a `conversation`
//! model, turned into one [`Script`] per participant.
//!
//! Pure and sans-IO: [`schedule`] takes the participants ([`Member`]s) and the
//! specs and returns every participant's sessions (when it joins and leaves,
//! and why), its timed [`Action`]s and its speaking intervals. The runtime
//! carries the scripts out. One seed gives one schedule: every random choice
//! comes from a small fixed generator (SplitMix64, the same bits on every
//! machine and release), split into independent streams per concern (each
//! phase, each member's churn, each storm, each group's action, each
//! meeting's turns), so adding a storm does not reshuffle the conversation.
//!
//! The steps, in order:
//! 1. *Presence*: the phases are simulated in time order. Targets of `ramp`,
//!    `constant` and `spike` count the participants those phases brought in
//!    (the *held* participants); `arrival_rate` arrivals come on top of them
//!    and each leaves after its own drawn session length. A target is split
//!    across groups in proportion to their sizes (largest remainders).
//! 2. *Churn* cuts each held presence into sessions with gaps (a tab reload).
//! 3. *Storms* end a share of the connected sessions at once; each comes back
//!    within `spread`.
//! 4. *Actions* and 5. *turns* are drawn against the connected sessions.
//!
//! Everything is cut at the run's end: sessions that would start at or after
//! it are dropped, ends at or after it become `None`, reverts past it go.
//!
//! # Semantics as implemented
//! - `ramp`/`constant`/`spike` targets count *held* participants; arrivals of
//!   `arrival_rate` are on top and do not count toward them (so a `constant`
//!   after an `arrival_rate` does not send arrivals away). Joins take the
//!   lowest free member of the group; leaves pick held members at random.
//! - `ramp_up_delay` spaces joins a phase makes *at once* (`constant`'s jump,
//!   a ramp's move to `from`, a `ramp`/`spike` with `over: 0s`); they must fit
//!   in the phase, else an error says so. A ramp with `over > 0` keeps its own
//!   linear spacing. A ramp's steps that fall within its move to `from` wait
//!   for it. `from` may be left out: the ramp starts from the count there is.
//! - A `spike` must go up (a `to` below the count before it is an error); at
//!   its end the participants it added leave at once.
//! - Churn applies to held presences (and to everyone without phases), not to
//!   arrivals. A rejoin that would fall at or after the presence's end does
//!   not happen. A drawn session or turn is at least 1 ms; draws are whole
//!   microseconds and at most 24 h.
//! - A storm's "connected" are members in a session that started before its
//!   `at` (a storm at 0s drops nobody); `round(share × connected)` drop. The
//!   way back ends where the dropped session would have, with its end cause;
//!   if `at + delay` is past that, there is no way back. `spread: 0s` (a
//!   duration, not the number 0) rejoins at once.
//! - Actions pick among the group's members connected at that instant
//!   (`ceil(share × n)`, at least one when anyone is); they are kept when the
//!   member later leaves.
//! - Talkers are drawn among a meeting's members with audio that are not
//!   viewers; every member gets `speaking: Some(..)` with a conversation
//!   (empty for those who never talk). A turn's talker is cut at the end of
//!   its session. Turn lengths come from a stream of their own, so turns
//!   start at the same instants whoever is present.
//! - Streams: each phase by its index, churn by member index, each storm by
//!   its index, each action by (group, index in the group's list), turns by
//!   meeting number.
//!
//! # Files
//! `spec` holds what the config writes (and its checks), [`limits`] the
//! bounds; `presence` simulates the phases, `sessions` cuts the presences by
//! churn and storms, `actions` and `turns` draw against the sessions, all
//! with the streams of `rng`. [`Input`] goes in, a [`Schedule`] of
//! [`Script`]s comes out; [`schedule`] runs the steps in order.

use std::time::Duration;

use anyhow::bail;

mod actions;
mod input;
pub mod limits;
mod presence;
mod rng;
mod script;
mod sessions;
mod spec;
mod turns;

#[cfg(test)]
mod tests;

pub use input::{Input, Member};
pub use script::{Action, Cause, EndCause, PhaseWindow, Planned, Schedule, Script, SessionPlan};
pub use spec::{
    phases_length, validate, ActionKind, ActionSpec, ChurnSpec, ConversationSpec, Dist, PhaseSpec,
    StormSpec,
};

/// Every participant's script: sessions from the phases (or `starts`), cut
/// by churn and storms, with actions and speaking turns.
///
/// Errors name the field or the phase: a spec out of bounds, a group whose
/// pool runs out, a schedule past its bounds.
pub fn schedule(input: &Input) -> anyhow::Result<Schedule> {
    validate(
        input.phases,
        input.churn,
        input.storms,
        input.conversation,
        input.group_actions,
    )?;
    if input.group_actions.len() > input.group_sizes.len() {
        bail!(
            "actions for {} groups, but there are {}",
            input.group_actions.len(),
            input.group_sizes.len()
        );
    }
    let mut counted = vec![0usize; input.group_sizes.len()];
    for (m, member) in input.members.iter().enumerate() {
        match counted.get_mut(member.group) {
            Some(n) => *n += 1,
            None => bail!(
                "member {m} is in group {}, but there are {} groups",
                member.group,
                input.group_sizes.len()
            ),
        }
    }
    if let Some(g) = (0..counted.len()).find(|&g| counted[g] != input.group_sizes[g]) {
        bail!(
            "group {g} has {} members but its size is given as {}",
            counted[g],
            input.group_sizes[g]
        );
    }
    if input.phases.is_empty() && input.starts.len() != input.members.len() {
        bail!(
            "{} starts for {} members",
            input.starts.len(),
            input.members.len()
        );
    }
    let presences = presence::presences(input)?;
    let mut clients = sessions::sessions(input, &presences)?;
    sessions::storms(input, &mut clients)?;
    actions::actions(input, &mut clients)?;
    if let Some(spec) = input.conversation {
        turns::conversation(input, spec, &mut clients)?;
    }
    let mut phases = Vec::with_capacity(input.phases.len());
    let mut t = Duration::ZERO;
    for (i, p) in input.phases.iter().enumerate() {
        let e = t.saturating_add(p.length());
        phases.push(PhaseWindow {
            name: p.name(i),
            kind: p.kind(),
            start: t,
            end: e,
        });
        t = e;
    }
    let mut planned = Planned::default();
    for c in &clients {
        planned.actions += c.actions.len();
        for s in &c.sessions {
            planned.sessions += 1;
            match s.cause {
                Cause::Join => planned.joins += 1,
                Cause::Rejoin => planned.rejoins += 1,
                Cause::Storm => planned.storm_rejoins += 1,
            }
            match s.end_cause {
                Some(EndCause::Leave) => planned.leaves += 1,
                Some(EndCause::Churn) => planned.churn_drops += 1,
                Some(EndCause::Storm) => planned.storm_drops += 1,
                None => {}
            }
        }
    }
    Ok(Schedule {
        clients,
        phases,
        planned,
    })
}
