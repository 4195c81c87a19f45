//! The phases, simulated in time order: each member's presences (the
//! stretches it is there as the load shape says), before churn and storms
//! cut them into sessions.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::time::Duration;

use anyhow::bail;

use super::input::{Input, Member};
use super::limits;
use super::rng::{secs, Rng, Stream};
use super::spec::{show, Dist, PhaseSpec};

/// A stretch in which a member is present as the phases say (churn and
/// storms then cut it into sessions).
#[derive(Debug, Clone, Copy)]
pub(super) struct Presence {
    pub(super) start: Duration,
    pub(super) end: Option<Duration>,
    /// Joined through ramp/constant/spike (or without phases): churn applies.
    pub(super) held: bool,
}

/// `n` split across groups in proportion to their sizes, by largest
/// remainders (ties to the lower group), so the parts add up to `n`.
pub(super) fn split(n: usize, sizes: &[usize]) -> Vec<usize> {
    let total: u128 = sizes.iter().map(|&s| s as u128).sum();
    if total == 0 {
        return vec![0; sizes.len()];
    }
    let exact = |s: usize| n as u128 * s as u128;
    let mut parts: Vec<usize> = sizes.iter().map(|&s| (exact(s) / total) as usize).collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&g| (Reverse(exact(sizes[g]) % total), g));
    let short = n.saturating_sub(parts.iter().sum());
    for &g in order.iter().take(short) {
        parts[g] += 1;
    }
    parts
}

/// The phase being simulated, for errors.
struct Here<'a> {
    i: usize,
    kind: &'static str,
    /// How to fix a pool that runs out.
    fix: &'a str,
}

/// The phases' simulation: who is present, who is free.
struct Pool<'a> {
    members: &'a [Member],
    sizes: &'a [usize],
    /// Free members per group, lowest index first.
    free: Vec<BTreeSet<usize>>,
    /// Held members present per group.
    held: Vec<Vec<usize>>,
    /// Every held join, in order (a spike's added members are its tail).
    joined: Vec<usize>,
    /// Each member's presences; the last is open while it is present.
    presences: Vec<Vec<Presence>>,
    /// Arrivals' departures.
    departures: BinaryHeap<Reverse<(Duration, usize)>>,
    /// Presences made.
    count: usize,
    /// The held target now.
    level: usize,
    /// The time of the last change: changes never go back before it.
    now: Duration,
}

impl<'a> Pool<'a> {
    fn new(members: &'a [Member], sizes: &'a [usize]) -> Pool<'a> {
        let mut free = vec![BTreeSet::new(); sizes.len()];
        for (m, member) in members.iter().enumerate() {
            free[member.group].insert(m);
        }
        Pool {
            members,
            sizes,
            free,
            held: vec![Vec::new(); sizes.len()],
            joined: Vec::new(),
            presences: vec![Vec::new(); members.len()],
            departures: BinaryHeap::new(),
            count: 0,
            level: 0,
            now: Duration::ZERO,
        }
    }

    /// Processes the arrivals' departures up to `t` (inclusive: a member
    /// that leaves at `t` is free for a join at `t`).
    fn advance(&mut self, t: Duration) {
        while let Some(&Reverse((d, m))) = self.departures.peek() {
            if d > t {
                break;
            }
            self.departures.pop();
            self.close(m, d);
        }
    }

    /// Processes the departures before `end`; those at or after it run to
    /// the end.
    fn finish(&mut self, end: Duration) {
        while let Some(&Reverse((d, m))) = self.departures.peek() {
            if d >= end {
                break;
            }
            self.departures.pop();
            self.close(m, d);
        }
    }

    fn close(&mut self, m: usize, t: Duration) {
        let list = &mut self.presences[m];
        match list.last_mut() {
            // Joined and left at one instant (changes that waited for a
            // move to `from`): it never was there.
            Some(p) if p.start == t => {
                list.pop();
                self.count -= 1;
            }
            Some(p) => p.end = Some(t),
            None => {}
        }
        self.free[self.members[m].group].insert(m);
    }

    /// The lowest free member of group `g` becomes present at `t`.
    fn take(&mut self, g: usize, t: Duration, held: bool, here: &Here) -> anyhow::Result<usize> {
        let Some(m) = self.free[g].pop_first() else {
            bail!(
                "phases[{}] ({}) needs {} participants of group {g} at {} but it has {}: raise groups[{g}].count or {}",
                here.i,
                here.kind,
                self.sizes[g] + 1,
                show(t),
                self.sizes[g],
                here.fix
            );
        };
        self.count += 1;
        if self.count > limits::SESSIONS {
            bail!(
                "phases[{}] ({}): the schedule would have more than {} sessions at {}: lower the rate or the counts, or shorten the phases",
                here.i,
                here.kind,
                limits::SESSIONS,
                show(t)
            );
        }
        self.presences[m].push(Presence {
            start: t,
            end: None,
            held,
        });
        Ok(m)
    }

    /// Moves the held participants to `level` at `t` (or at the last
    /// change, if that is later: a ramp's first steps may fall within the
    /// spaced joins of its move to `from`): leaves first (random present
    /// members, or `prefer` first), then joins (lowest free).
    fn set_level(
        &mut self,
        t: Duration,
        level: usize,
        rng: &mut Rng,
        prefer: &mut Vec<usize>,
        here: &Here,
    ) -> anyhow::Result<()> {
        let t = t.max(self.now);
        self.now = t;
        self.advance(t);
        let target = split(level, self.sizes);
        for (g, &want) in target.iter().enumerate() {
            while self.held[g].len() > want {
                // The latest preferred member still here; recent joins are
                // at the end of `held`.
                let mut preferred = None;
                while let Some(p) = prefer.iter().rposition(|&m| self.members[m].group == g) {
                    let m = prefer.remove(p);
                    preferred = self.held[g].iter().rposition(|&x| x == m);
                    if preferred.is_some() {
                        break;
                    }
                }
                let k = match preferred {
                    Some(k) => k,
                    None => rng.below(self.held[g].len()),
                };
                let m = self.held[g].swap_remove(k);
                self.close(m, t);
            }
        }
        for (g, &want) in target.iter().enumerate() {
            while self.held[g].len() < want {
                let m = self.take(g, t, true, here)?;
                self.held[g].push(m);
                self.joined.push(m);
            }
        }
        self.level = level;
        Ok(())
    }
}

/// The phases, simulated: every member's presences.
pub(super) fn presences(input: &Input) -> anyhow::Result<Vec<Vec<Presence>>> {
    if input.phases.is_empty() {
        return Ok(from_starts(input.starts, input.end));
    }
    let mut pool = Pool::new(input.members, input.group_sizes);
    let mut start = Duration::ZERO;
    for (i, spec) in input.phases.iter().enumerate() {
        let phase = Phase::new(i, spec, start, input);
        if start >= input.end {
            break;
        }
        let mut rng = Rng::stream(input.seed, Stream::Phase, &[i]);
        phase.run(&mut pool, &mut rng)?;
        start = phase.end;
    }
    pool.finish(input.end);
    Ok(pool.presences)
}

/// Without phases: each member from its start (if before `end`) to the end.
fn from_starts(starts: &[Duration], end: Duration) -> Vec<Vec<Presence>> {
    starts
        .iter()
        .map(|&start| {
            let p = Presence {
                start,
                end: None,
                held: true,
            };
            if start < end {
                vec![p]
            } else {
                Vec::new()
            }
        })
        .collect()
}

/// One phase being simulated: its window, and what its errors name.
struct Phase<'a> {
    spec: &'a PhaseSpec,
    here: Here<'a>,
    start: Duration,
    /// `start + length`, saturating.
    end: Duration,
    length: Duration,
    /// The run's end: nothing happens at or after it.
    run_end: Duration,
    /// `ramp_up_delay`.
    delay: Duration,
}

impl<'a> Phase<'a> {
    fn new(i: usize, spec: &'a PhaseSpec, start: Duration, input: &Input) -> Phase<'a> {
        let length = spec.length();
        Phase {
            spec,
            here: Here {
                i,
                kind: spec.kind(),
                fix: if matches!(spec, PhaseSpec::ArrivalRate { .. }) {
                    "lower the rate"
                } else {
                    "lower the phase's count"
                },
            },
            start,
            end: start.saturating_add(length),
            length,
            run_end: input.end,
            delay: input.ramp_up_delay,
        }
    }

    fn run(&self, pool: &mut Pool, rng: &mut Rng) -> anyhow::Result<()> {
        match self.spec {
            PhaseSpec::Ramp { from, to, over, .. } => {
                if let Some(f) = *from {
                    if f != pool.level {
                        self.at_once(pool, rng, self.start, f)?;
                    }
                }
                self.move_to(pool, rng, *over, *to)
            }
            PhaseSpec::Constant { participants, .. } => {
                self.at_once(pool, rng, self.start, *participants)
            }
            PhaseSpec::Spike { to, over, .. } => self.spike(pool, rng, *to, *over),
            PhaseSpec::ArrivalRate { rate, session, .. } => {
                self.arrivals(pool, rng, *rate, session)
            }
            PhaseSpec::Hold { .. } => Ok(()),
        }
    }

    /// From the level now to `to` within `over`: at once when `over` is 0s,
    /// else linearly.
    fn move_to(
        &self,
        pool: &mut Pool,
        rng: &mut Rng,
        over: Duration,
        to: usize,
    ) -> anyhow::Result<()> {
        if over.is_zero() {
            self.at_once(pool, rng, self.start, to)
        } else {
            self.linear(pool, rng, over, to)
        }
    }

    /// Joins made at once are spaced by `ramp_up_delay` (and must fit in
    /// the phase); leaves are at once.
    fn at_once(
        &self,
        pool: &mut Pool,
        rng: &mut Rng,
        t0: Duration,
        to: usize,
    ) -> anyhow::Result<()> {
        let delay = self.delay;
        let n = to.saturating_sub(pool.level);
        if n <= 1 || delay.is_zero() {
            return pool.set_level(t0, to, rng, &mut Vec::new(), &self.here);
        }
        let spread = delay.saturating_mul((n - 1) as u32);
        if t0 + spread > self.end {
            bail!(
                "phases[{}] ({}): {n} joins spaced by ramp_up_delay {} take {}, longer than the phase ({}): lengthen it or lower ramp_up_delay",
                self.here.i,
                self.here.kind,
                show(delay),
                show(spread),
                show(self.length)
            );
        }
        for j in 0..n {
            let t = t0 + delay.saturating_mul(j as u32);
            if t >= self.run_end {
                break;
            }
            pool.set_level(t, pool.level + 1, rng, &mut Vec::new(), &self.here)?;
        }
        Ok(())
    }

    /// The k-th of the changes from the level now to `to` at `over × k / n`.
    fn linear(
        &self,
        pool: &mut Pool,
        rng: &mut Rng,
        over: Duration,
        to: usize,
    ) -> anyhow::Result<()> {
        let from = pool.level;
        let n = from.abs_diff(to);
        for k in 1..=n {
            let t =
                self.start + Duration::from_nanos((over.as_nanos() * k as u128 / n as u128) as u64);
            if t >= self.run_end {
                break;
            }
            let level = if to > from { from + k } else { from - k };
            pool.set_level(t, level, rng, &mut Vec::new(), &self.here)?;
        }
        Ok(())
    }

    /// Up to `to` within `over`; at the phase's end those it added leave.
    fn spike(
        &self,
        pool: &mut Pool,
        rng: &mut Rng,
        to: usize,
        over: Duration,
    ) -> anyhow::Result<()> {
        let before = pool.level;
        if to < before {
            bail!(
                "phases[{}] (spike): to {to} is below the {before} participants present when it starts at {}: a spike goes up (use a ramp to go down)",
                self.here.i,
                show(self.start)
            );
        }
        let first = pool.joined.len();
        self.move_to(pool, rng, over, to)?;
        if self.end < self.run_end {
            let mut added = pool.joined[first..].to_vec();
            pool.set_level(self.end, before, rng, &mut added, &self.here)?;
        }
        Ok(())
    }

    /// Poisson arrivals, `rate` a second, each in a group picked by size
    /// and staying a drawn `session` length.
    fn arrivals(
        &self,
        pool: &mut Pool,
        rng: &mut Rng,
        rate: f64,
        session: &Dist,
    ) -> anyhow::Result<()> {
        let sizes = pool.sizes;
        let total: usize = sizes.iter().sum();
        let mut x = 0.0;
        loop {
            x += -(1.0 - rng.unit()).ln() / rate;
            let t = self.start + secs(x);
            if t >= self.end || t >= self.run_end {
                break;
            }
            pool.advance(t);
            let mut r = rng.below(total.max(1));
            let g = sizes
                .iter()
                .position(|&s| {
                    let hit = r < s;
                    r = r.saturating_sub(s);
                    hit
                })
                .unwrap_or(0);
            let m = pool.take(g, t, false, &self.here)?;
            let stay = session.sample(rng).max(limits::SHORTEST_DRAW);
            pool.departures.push(Reverse((t + stay, m)));
        }
        Ok(())
    }
}
