//! Speaking turns: per meeting, one talker at a time (now and then two),
//! drawn against the sessions connected at each turn's start.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;

use super::input::Input;
use super::limits;
use super::rng::{Rng, Stream};
use super::script::Script;
use super::spec::{show, ConversationSpec};

/// Speaking turns, per meeting, against the sessions connected at each turn's start.
pub(super) fn conversation(
    input: &Input,
    spec: &ConversationSpec,
    clients: &mut [Script],
) -> anyhow::Result<()> {
    let end = input.end;
    let mut meetings: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (m, member) in input.members.iter().enumerate() {
        if member.audio && !member.viewer {
            meetings.entry(member.meeting).or_default().push(m);
        }
    }
    let mut speaking: Vec<Vec<(Duration, Duration)>> = vec![Vec::new(); clients.len()];
    let mut turns = 0usize;
    for (&meeting, eligible) in &meetings {
        let mut lengths = Rng::stream(input.seed, Stream::TurnLength, &[meeting]);
        let mut picks = Rng::stream(input.seed, Stream::TurnPick, &[meeting]);
        let k = ((spec.talkers * eligible.len() as f64).round() as usize).clamp(1, eligible.len());
        let mut talkers = eligible.clone();
        let talkers = picks.choose(&mut talkers, k).to_vec();
        let mut t = Duration::ZERO;
        let mut previous = None;
        while t < end {
            turns += 1;
            if turns > limits::TURNS {
                bail!(
                    "conversation.turn ({}) makes more than {} turns in {}: lengthen conversation.turn",
                    spec.turn,
                    limits::TURNS,
                    show(end)
                );
            }
            let next = t + spec.turn.sample(&mut lengths).max(limits::SHORTEST_DRAW);
            // The same three draws every turn, so one turn's presence does
            // not shift the choices of the next.
            let (u1, u2, u3) = (picks.unit(), picks.unit(), picks.unit());
            let here: Vec<usize> = talkers
                .iter()
                .copied()
                .filter(|&m| clients[m].present_at(t))
                .collect();
            let mut speak = |m: usize| {
                let c = &clients[m];
                let until = c
                    .session_at(t)
                    .and_then(|k| c.sessions[k].end)
                    .unwrap_or(end);
                speaking[m].push((t, next.min(until).min(end)));
            };
            if !here.is_empty() {
                // Someone other than the last talker, when there is one.
                let others: Vec<usize> = here
                    .iter()
                    .copied()
                    .filter(|&m| Some(m) != previous)
                    .collect();
                let from = if others.is_empty() { &here } else { &others };
                let first = from[(u1 * from.len() as f64) as usize];
                speak(first);
                previous = Some(first);
                if here.len() >= 2 && u2 < spec.overlap {
                    let rest: Vec<usize> = here.iter().copied().filter(|&m| m != first).collect();
                    speak(rest[(u3 * rest.len() as f64) as usize]);
                }
            }
            t = next;
        }
    }
    for (c, mut iv) in clients.iter_mut().zip(speaking) {
        iv.sort_unstable();
        let mut merged: Vec<(Duration, Duration)> = Vec::with_capacity(iv.len());
        for (a, b) in iv {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        c.speaking = Some(merged);
    }
    Ok(())
}
