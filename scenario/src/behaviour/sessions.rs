//! Presences cut into sessions: by churn (a tab reload), then by the
//! reconnect storms, and at the run's end.

use anyhow::bail;

use super::input::Input;
use super::limits;
use super::presence::Presence;
use super::rng::{secs, Rng, Stream};
use super::script::{Cause, EndCause, Script, SessionPlan};
use super::spec::show;

/// Presences cut into sessions by churn (held ones only) and at the end.
pub(super) fn sessions(input: &Input, presences: &[Vec<Presence>]) -> anyhow::Result<Vec<Script>> {
    let end = input.end;
    let mut total = 0usize;
    let mut out = Vec::with_capacity(presences.len());
    for (m, list) in presences.iter().enumerate() {
        let mut rng = Rng::stream(input.seed, Stream::Churn, &[m]);
        let mut script = Script::default();
        for p in list.iter().filter(|p| p.start < end) {
            // `None`: it stays to the end of the run.
            let leave = p.end.filter(|&e| e < end);
            let stop = leave.unwrap_or(end);
            let churn = input.churn.filter(|_| p.held);
            let Some(churn) = churn else {
                script.sessions.push(SessionPlan {
                    start: p.start,
                    end: leave,
                    cause: Cause::Join,
                    end_cause: leave.map(|_| EndCause::Leave),
                });
                continue;
            };
            let mut t = p.start;
            let mut cause = Cause::Join;
            loop {
                if script.sessions.len() >= limits::SESSIONS_PER_MEMBER {
                    bail!(
                        "churn.session ({}) gives participant {m} more than {} sessions in {}: lengthen churn.session",
                        churn.session,
                        limits::SESSIONS_PER_MEMBER,
                        show(end)
                    );
                }
                let e = t + churn.session.sample(&mut rng).max(limits::SHORTEST_DRAW);
                if e >= stop {
                    script.sessions.push(SessionPlan {
                        start: t,
                        end: leave,
                        cause,
                        end_cause: leave.map(|_| EndCause::Leave),
                    });
                    break;
                }
                script.sessions.push(SessionPlan {
                    start: t,
                    end: Some(e),
                    cause,
                    end_cause: Some(EndCause::Churn),
                });
                t = e + churn.rejoin_after.sample(&mut rng);
                if t >= stop {
                    break;
                }
                cause = Cause::Rejoin;
            }
        }
        total += script.sessions.len();
        if total > limits::SESSIONS {
            let why = match input.churn {
                Some(c) => format!("churn.session ({}) is short for the run", c.session),
                None => "too many joins".to_owned(),
            };
            bail!(
                "the schedule would have more than {} sessions ({why}): lengthen churn.session, lower the counts or shorten the run",
                limits::SESSIONS
            );
        }
        out.push(script);
    }
    Ok(out)
}

/// The storms, in time order (equal times in the config's order): each ends
/// a share of the sessions connected at its `at` and starts them again.
pub(super) fn storms(input: &Input, clients: &mut [Script]) -> anyhow::Result<()> {
    let end = input.end;
    let mut order: Vec<usize> = (0..input.storms.len()).collect();
    order.sort_by_key(|&i| (input.storms[i].at, i));
    for i in order {
        let storm = &input.storms[i];
        let at = storm.at;
        if at >= end {
            continue;
        }
        let mut rng = Rng::stream(input.seed, Stream::Storm, &[i]);
        // Connected then: in a session that started before `at`.
        let mut connected: Vec<(usize, usize)> = clients
            .iter()
            .enumerate()
            .filter_map(|(m, c)| {
                let k = c.session_at(at)?;
                (c.sessions[k].start < at).then_some((m, k))
            })
            .collect();
        let n = (storm.share * connected.len() as f64).round() as usize;
        for &(m, k) in rng.choose(&mut connected, n) {
            let sessions = &mut clients[m].sessions;
            let old = sessions[k];
            sessions[k].end = Some(at);
            sessions[k].end_cause = Some(EndCause::Storm);
            let back = at + secs(storm.spread.as_secs_f64() * rng.unit());
            if back < old.end.unwrap_or(end) {
                sessions.insert(
                    k + 1,
                    SessionPlan {
                        start: back,
                        cause: Cause::Storm,
                        ..old
                    },
                );
            }
            if sessions.len() > limits::SESSIONS_PER_MEMBER {
                bail!(
                    "storms give participant {m} more than {} sessions",
                    limits::SESSIONS_PER_MEMBER
                );
            }
        }
    }
    let total: usize = clients.iter().map(|c| c.sessions.len()).sum();
    if total > limits::SESSIONS {
        bail!(
            "with the storms the schedule would have more than {} sessions: fewer storms or a smaller share",
            limits::SESSIONS
        );
    }
    Ok(())
}
