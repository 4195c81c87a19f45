//! Each group's timed actions (mute, camera, screen share, rendition),
//! drawn against the sessions connected at each instant.

use anyhow::bail;

use super::input::Input;
use super::limits;
use super::rng::{Rng, Stream};
use super::script::{Action, Script};
use super::spec::{show, ActionKind, ActionSpec};

/// Each group's actions, against the sessions connected at each instant.
pub(super) fn actions(input: &Input, clients: &mut [Script]) -> anyhow::Result<()> {
    let end = input.end;
    let mut events = 0usize;
    for (g, specs) in input.group_actions.iter().enumerate() {
        let group: Vec<usize> = (0..input.members.len())
            .filter(|&m| input.members[m].group == g)
            .collect();
        for (j, spec) in specs.iter().enumerate() {
            if spec.at >= end {
                continue;
            }
            if let Some(every) = spec.every {
                let times = (end - spec.at).as_nanos() / every.as_nanos();
                if times >= limits::ACTION_EVENTS as u128 {
                    bail!(
                        "groups[{g}].actions[{j}]: every {} repeats it {times} times in {}, more than {}: raise every",
                        show(every),
                        show(end),
                        limits::ACTION_EVENTS
                    );
                }
            }
            let mut rng = Rng::stream(input.seed, Stream::Action, &[g, j]);
            let (act, undo) = act_and_undo(spec);
            let mut t = spec.at;
            while t < end {
                let mut here: Vec<usize> = group
                    .iter()
                    .copied()
                    .filter(|&m| clients[m].present_at(t))
                    .collect();
                // ceil(share × n), at least one when anyone is here; the
                // epsilon keeps 0.3 × 10 at 3.
                let n = ((spec.share * here.len() as f64) - 1e-9).ceil().max(1.0) as usize;
                for &m in rng.choose(&mut here, n) {
                    clients[m].actions.push((t, act.clone()));
                    events += 1;
                    if let Some(back) = spec.revert_after.map(|d| t + d).filter(|&b| b < end) {
                        clients[m].actions.push((back, undo.clone()));
                        events += 1;
                    }
                }
                if events > limits::ACTION_EVENTS {
                    bail!(
                        "groups[{g}].actions[{j}]: the schedule would have more than {} timed actions: lower share or raise every",
                        limits::ACTION_EVENTS
                    );
                }
                match spec.every {
                    Some(every) => t += every,
                    None => break,
                }
            }
        }
    }
    for c in clients {
        // Stable: actions at one instant keep the config's order.
        c.actions.sort_by_key(|&(t, _)| t);
    }
    Ok(())
}

/// The action at `at` and the one that undoes it.
fn act_and_undo(spec: &ActionSpec) -> (Action, Action) {
    match spec.action {
        ActionKind::Mute => (Action::Mute, Action::Unmute),
        ActionKind::Unmute => (Action::Unmute, Action::Mute),
        ActionKind::CameraOff => (Action::CameraOff, Action::CameraOn),
        ActionKind::CameraOn => (Action::CameraOn, Action::CameraOff),
        ActionKind::ScreenShare => (Action::ScreenShareStart, Action::ScreenShareStop),
        ActionKind::ScreenShareStop => (Action::ScreenShareStop, Action::ScreenShareStart),
        ActionKind::Rendition => (
            Action::Rendition(spec.rendition.clone().unwrap_or_default()),
            Action::RenditionRevert,
        ),
    }
}
