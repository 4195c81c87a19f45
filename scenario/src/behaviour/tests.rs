use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::presence::split;
use super::rng::{Rng, Stream};
use super::*;

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

/// The specs of a test config, as the owner's config will hold them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    #[serde(default)]
    phases: Vec<PhaseSpec>,
    churn: Option<ChurnSpec>,
    #[serde(default)]
    storms: Vec<StormSpec>,
    conversation: Option<ConversationSpec>,
    #[serde(default)]
    actions: Vec<ActionSpec>,
}

fn doc(yaml: &str) -> anyhow::Result<Doc> {
    serde_saphyr::from_str(yaml).map_err(|e| anyhow::anyhow!("{e}"))
}

/// An owned [`Input`]: groups of members, meetings of `meeting_size` in
/// index order, everyone with audio, starting at 0, a 60 s run.
struct Case {
    members: Vec<Member>,
    sizes: Vec<usize>,
    actions: Vec<Vec<ActionSpec>>,
    doc: Doc,
    starts: Vec<Duration>,
    delay: Duration,
    end: Duration,
    seed: u64,
}

impl Case {
    fn new(sizes: &[usize], meeting_size: usize, yaml: &str) -> Case {
        let mut members = Vec::new();
        for (g, &n) in sizes.iter().enumerate() {
            for _ in 0..n {
                members.push(Member {
                    group: g,
                    meeting: members.len() / meeting_size,
                    audio: true,
                    viewer: false,
                });
            }
        }
        let doc = doc(yaml).unwrap();
        let mut actions = vec![Vec::new(); sizes.len()];
        actions[0] = doc.actions.clone();
        Case {
            starts: vec![Duration::ZERO; members.len()],
            members,
            sizes: sizes.to_vec(),
            actions,
            doc,
            delay: Duration::ZERO,
            end: s(60.0),
            seed: 42,
        }
    }

    fn input(&self) -> Input<'_> {
        Input {
            members: &self.members,
            group_sizes: &self.sizes,
            group_actions: &self.actions,
            phases: &self.doc.phases,
            churn: self.doc.churn.as_ref(),
            storms: &self.doc.storms,
            conversation: self.doc.conversation.as_ref(),
            starts: &self.starts,
            ramp_up_delay: self.delay,
            end: self.end,
            seed: self.seed,
        }
    }

    fn try_run(&self) -> anyhow::Result<Schedule> {
        schedule(&self.input())
    }

    /// The schedule, checked for what every schedule must hold.
    fn run(&self) -> Schedule {
        let out = self.try_run().unwrap();
        for (m, c) in out.clients.iter().enumerate() {
            for w in c.sessions.windows(2) {
                let e = w[0].end.expect("only the last session runs to the end");
                assert!(e <= w[1].start, "member {m}: sessions overlap: {w:?}");
            }
            for p in &c.sessions {
                assert!(p.start < self.end, "member {m}: {p:?} starts after the end");
                assert!(p.end.is_none_or(|e| p.start < e && e < self.end), "{p:?}");
                assert_eq!(p.end.is_none(), p.end_cause.is_none(), "{p:?}");
            }
            assert!(c.actions.windows(2).all(|w| w[0].0 <= w[1].0));
        }
        out
    }
}

fn present(out: &Schedule, t: Duration) -> usize {
    out.clients.iter().filter(|c| c.present_at(t)).count()
}

fn present_in(out: &Schedule, case: &Case, g: usize, t: Duration) -> usize {
    out.clients
        .iter()
        .zip(&case.members)
        .filter(|(c, m)| m.group == g && c.present_at(t))
        .count()
}

const EXAMPLE: &str = r#"
phases:
  - {type: ramp, from: 0, to: 20, over: 30s, name: warm-up}
  - {type: constant, participants: 20, for: 60s}
  - {type: arrival_rate, rate: 0.5, for: 60s, session: {dist: exponential, mean: 30s}}
  - {type: spike, to: 40, over: 2s, for: 20s}
  - {type: hold, for: 30s}
churn:
  session: {dist: lognormal, median: 60s, sigma: 0.5}
  rejoin_after: {dist: uniform, min: 1s, max: 5s}
storms:
  - {at: 90s, share: 0.3, spread: 5s}
conversation:
  talkers: 0.5
  turn: {dist: exponential, mean: 6s}
  overlap: 0.1
actions:
  - {at: 20s, every: 60s, share: 0.3, do: mute, for: 15s}
  - {at: 40s, share: 0.1, do: camera_off, for: 20s}
  - {at: 60s, share: 0.05, do: screen_share, for: 30s}
  - {at: 80s, share: 0.5, do: rendition, rendition: video-320x180}
"#;

#[test]
fn the_example_parses() {
    let d = doc(EXAMPLE).unwrap();
    assert_eq!(d.phases.len(), 5);
    assert_eq!(
        d.phases[0],
        PhaseSpec::Ramp {
            from: Some(0),
            to: 20,
            over: s(30.0),
            name: Some("warm-up".into())
        }
    );
    assert_eq!(d.phases[0].name(0), "warm-up");
    assert_eq!(d.phases[1].name(1), "2-constant");
    assert_eq!(
        d.phases[2],
        PhaseSpec::ArrivalRate {
            rate: 0.5,
            length: s(60.0),
            session: Dist::Exponential { mean: s(30.0) },
            name: None
        }
    );
    assert_eq!(d.phases[3].length(), s(22.0));
    assert_eq!(phases_length(&d.phases), s(202.0));
    let churn = d.churn.as_ref().unwrap();
    assert_eq!(
        churn.session,
        Dist::LogNormal {
            median: s(60.0),
            sigma: 0.5
        }
    );
    assert_eq!(
        d.storms[0],
        StormSpec {
            at: s(90.0),
            share: 0.3,
            spread: s(5.0)
        }
    );
    assert_eq!(d.conversation.as_ref().unwrap().overlap, 0.1);
    assert_eq!(d.actions[0].revert_after, Some(s(15.0)));
    assert_eq!(d.actions[0].every, Some(s(60.0)));
    assert_eq!(d.actions[2].action, ActionKind::ScreenShare);
    assert_eq!(d.actions[3].rendition.as_deref(), Some("video-320x180"));
    validate(
        &d.phases,
        d.churn.as_ref(),
        &d.storms,
        d.conversation.as_ref(),
        &[d.actions],
    )
    .unwrap();
    // Defaults, and a bare duration as a fixed distribution.
    let d = doc("churn: {session: 30s}\nconversation: {turn: 5s}\nstorms: [{at: 1s, share: 1}]")
        .unwrap();
    let churn = d.churn.unwrap();
    assert_eq!(churn.session, Dist::Fixed(s(30.0)));
    assert_eq!(churn.rejoin_after, Dist::Fixed(s(2.0)));
    let c = d.conversation.unwrap();
    assert_eq!((c.talkers, c.overlap), (1.0, 0.0));
    assert_eq!(d.storms[0].spread, Duration::ZERO);
}

#[test]
fn parse_errors_name_the_problem() {
    let cases = [
        (
            "phases: [{type: hold, for: 1s, colour: red}]",
            "unknown field `colour`",
        ),
        ("phases: [{type: plateau, for: 1s}]", "plateau"),
        ("phases: [{type: constant, for: 1s}]", "participants"),
        ("phases: [{type: hold, for: soon}]", "soon"),
        ("churn: {session: {dist: gamma, mean: 1s}}", "gamma"),
        (
            "churn: {session: {dist: fixed, value: 1s, mean: 2s}}",
            "mean",
        ),
        ("churn: {session: soon}", "not a duration like 30s"),
        (
            "churn: {session: 30s, rejoin: 1s}",
            "unknown field `rejoin`",
        ),
        (
            "storms: [{at: 1s, share: 0.5, when: 2s}]",
            "unknown field `when`",
        ),
        ("actions: [{at: 1s, share: 1, do: dance}]", "dance"),
        ("conversation: {turn: 5s, talk: 1}", "unknown field `talk`"),
    ];
    for (yaml, want) in cases {
        let e = doc(yaml).unwrap_err().to_string();
        assert!(e.contains(want), "{yaml}: got {e:?}, want {want:?}");
    }
}

#[test]
fn validation_errors_name_the_field() {
    let cases = [
        (
            "phases: [{type: hold, for: 1s}, {type: hold, for: 1s}, {type: arrival_rate, rate: -1, for: 1s, session: 1s}]",
            "phases[2] (arrival_rate): rate must be > 0 and at most 10000 per second, got -1",
        ),
        (
            "phases: [{type: arrival_rate, rate: 20000, for: 1s, session: 1s}]",
            "rate must be > 0 and at most 10000 per second, got 20000",
        ),
        (
            "phases: [{type: arrival_rate, rate: 1, for: 1s, session: 0s}]",
            "phases[0] (arrival_rate): session.value must be more than 0",
        ),
        (
            "phases: [{type: ramp, to: 200000, over: 1s}]",
            "phases[0] (ramp): to must be at most 100000, got 200000",
        ),
        (
            "phases: [{type: ramp, to: 2, over: 25h}]",
            "phases[0] (ramp): over must be at most 1day, got 1day1h",
        ),
        (
            "phases: [{type: constant, participants: 2, for: 2days}]",
            "phases[0] (constant): for must be at most",
        ),
        (
            "phases: [{type: spike, to: 2, over: 1s, for: 1s, name: ''}]",
            "phases[0] (spike): name must be 1 to 100 characters",
        ),
        ("storms: [{at: 1s, share: 1.5}]", "storms[0].share must be in (0, 1], got 1.5"),
        ("storms: [{at: 1s, share: 0}]", "storms[0].share must be in (0, 1], got 0"),
        ("storms: [{at: 25h, share: 1}]", "storms[0].at must be at most"),
        ("storms: [{at: 1s, share: 1, spread: 25h}]", "storms[0].spread must be at most"),
        (
            "churn: {session: {dist: uniform, min: 5s, max: 1s}}",
            "churn.session.min (5s) must be at most max (1s)",
        ),
        (
            "churn: {session: {dist: exponential, mean: 0s}}",
            "churn.session.mean must be more than 0",
        ),
        (
            "churn: {session: {dist: lognormal, median: 1s, sigma: 0}}",
            "churn.session.sigma must be > 0 and at most 10, got 0",
        ),
        (
            "churn: {session: {dist: lognormal, median: 0s, sigma: 1}}",
            "churn.session.median must be more than 0",
        ),
        (
            "churn: {session: 1s, rejoin_after: 2days}",
            "churn.rejoin_after.value must be at most",
        ),
        ("conversation: {turn: 1s, talkers: 0}", "conversation.talkers must be in (0, 1], got 0"),
        ("conversation: {turn: 1s, overlap: 1.2}", "conversation.overlap must be in [0, 1], got 1.2"),
        ("conversation: {turn: 0s}", "conversation.turn.value must be more than 0"),
        (
            "actions: [{at: 1s, share: 2, do: mute}]",
            "groups[0].actions[0].share must be in (0, 1], got 2",
        ),
        (
            "actions: [{at: 1s, every: 0s, share: 1, do: mute}]",
            "groups[0].actions[0].every must be more than 0",
        ),
        (
            "actions: [{at: 1s, share: 1, do: mute, for: 2days}]",
            "groups[0].actions[0].for must be at most",
        ),
        (
            "actions: [{at: 1s, share: 1, do: rendition}]",
            "groups[0].actions[0]: do: rendition needs `rendition: NAME`",
        ),
        (
            "actions: [{at: 1s, share: 1, do: mute, rendition: x}]",
            "groups[0].actions[0]: `rendition` goes only with do: rendition",
        ),
    ];
    for (yaml, want) in cases {
        let d = doc(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let e = validate(
            &d.phases,
            d.churn.as_ref(),
            &d.storms,
            d.conversation.as_ref(),
            &[d.actions],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(want), "{yaml}: got {e:?}, want {want:?}");
        assert!(!e.contains('\n'), "one line: {e:?}");
    }
    let many = vec![
        PhaseSpec::Hold {
            length: s(1.0),
            name: None
        };
        1001
    ];
    let e = validate(&many, None, &[], None, &[]).unwrap_err();
    assert_eq!(e.to_string(), "phases has 1001 entries, at most 1000");
    let storm = StormSpec {
        at: s(1.0),
        share: 0.5,
        spread: Duration::ZERO,
    };
    let e = validate(&[], None, &vec![storm; 1001], None, &[]).unwrap_err();
    assert_eq!(e.to_string(), "storms has 1001 entries, at most 1000");
    let action = doc("actions: [{at: 1s, share: 1, do: mute}]")
        .unwrap()
        .actions;
    let e = validate(
        &[],
        None,
        &[],
        None,
        &[vec![], vec![action[0].clone(); 1001]],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "groups[1].actions has 1001 entries, at most 1000"
    );
}

#[test]
fn same_seed_same_schedule_other_seed_another() {
    let mut case = Case::new(&[30, 30], 6, EXAMPLE);
    case.end = s(200.0);
    let a = case.run();
    let b = case.run();
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert!(
        a.planned.rejoins > 0 && a.planned.storm_drops > 0,
        "{:?}",
        a.planned
    );
    case.seed = 43;
    let c = case.run();
    assert_ne!(a.clients, c.clients);
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn a_storm_does_not_reshuffle_the_other_streams() {
    let yaml = "churn: {session: {dist: exponential, mean: 20s}}\n\
                conversation: {talkers: 0.5, turn: {dist: exponential, mean: 3s}, overlap: 0.2}\n\
                actions: [{at: 5s, every: 10s, share: 0.3, do: mute, for: 3s}]";
    let quiet = Case::new(&[40], 8, yaml);
    let mut stormy = Case::new(&[40], 8, yaml);
    stormy.doc.storms = vec![StormSpec {
        at: s(30.0),
        share: 0.5,
        spread: s(2.0),
    }];
    let (a, b) = (quiet.run(), stormy.run());
    assert!(b.planned.storm_drops > 0);
    let before = |iv: &[(Duration, Duration)]| -> Vec<(Duration, Duration)> {
        iv.iter()
            .filter(|p| p.0 < s(30.0))
            .map(|&(x, y)| (x, y.min(s(30.0))))
            .collect()
    };
    for (x, y) in a.clients.iter().zip(&b.clients) {
        // Turns, actions and churn before the storm are those without it.
        assert_eq!(
            before(x.speaking.as_ref().unwrap()),
            before(y.speaking.as_ref().unwrap())
        );
        let early = |c: &Script| -> Vec<(Duration, Action)> {
            c.actions
                .iter()
                .filter(|p| p.0 < s(30.0))
                .cloned()
                .collect()
        };
        assert_eq!(early(x), early(y));
        // A member the storm left alone keeps its churn sessions.
        if !y.sessions.iter().any(|p| p.cause == Cause::Storm) {
            assert_eq!(x.sessions, y.sessions);
        }
    }
    // The turn boundaries do not move either: who speaks when anyone does
    // may change, but every turn still starts where it did.
    let starts = |out: &Schedule| -> BTreeSet<Duration> {
        out.clients
            .iter()
            .flat_map(|c| c.speaking.clone().unwrap())
            .map(|p| p.0)
            .filter(|&t| t < s(30.0))
            .collect()
    };
    assert_eq!(starts(&a), starts(&b));
}

#[test]
fn poisson_arrivals() {
    let mut case = Case::new(
        &[200],
        1000,
        "phases: [{type: arrival_rate, rate: 2, for: 600s, session: 1s}]",
    );
    case.end = s(600.0);
    let out = case.run();
    let mut starts: Vec<f64> = out
        .clients
        .iter()
        .flat_map(|c| &c.sessions)
        .map(|p| p.start.as_secs_f64())
        .collect();
    starts.sort_by(f64::total_cmp);
    let n = starts.len() as f64;
    // Poisson(1200): σ = √1200 ≈ 34.6.
    assert!((n - 1200.0).abs() < 4.0 * 1200f64.sqrt(), "{n} arrivals");
    assert_eq!(out.planned.joins, starts.len());
    let gaps: Vec<f64> = std::iter::once(starts[0])
        .chain(starts.windows(2).map(|w| w[1] - w[0]))
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    let cv = var.sqrt() / mean;
    assert!((mean - 0.5).abs() < 0.025, "mean gap {mean}");
    assert!((cv - 1.0).abs() < 0.1, "coefficient of variation {cv}");
    // Each arrival stays its drawn 1 s.
    for p in out.clients.iter().flat_map(|c| &c.sessions) {
        if let Some(e) = p.end {
            assert_eq!(e - p.start, s(1.0));
            assert_eq!(p.end_cause, Some(EndCause::Leave));
        }
    }
}

#[test]
fn arrivals_pick_groups_by_size() {
    let mut case = Case::new(
        &[100, 300],
        10,
        "phases: [{type: arrival_rate, rate: 2, for: 600s, session: 1s}]",
    );
    case.end = s(600.0);
    let out = case.run();
    let per: Vec<usize> = (0..2)
        .map(|g| {
            out.clients
                .iter()
                .zip(&case.members)
                .filter(|(_, m)| m.group == g)
                .map(|(c, _)| c.sessions.len())
                .sum()
        })
        .collect();
    let n = (per[0] + per[1]) as f64;
    // Binomial(n, 0.75): σ of the share ≈ 0.0125 at n = 1200.
    let share = per[1] as f64 / n;
    assert!(
        (share - 0.75).abs() < 4.0 * (0.75 * 0.25 / n).sqrt(),
        "{per:?}"
    );
    // Lowest free first: the first members of each group are the busiest.
    let first = out.clients[100].sessions.len();
    let last = out.clients[399].sessions.len();
    assert!(first > 0 && last == 0, "{first} {last}");
}

/// Kolmogorov–Smirnov statistic of `xs` against `cdf`.
fn ks(mut xs: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len() as f64;
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max((f - (i + 1) as f64 / n).abs())
        })
        .fold(0.0, f64::max)
}

/// erf, Abramowitz and Stegun 7.1.26 (error < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

fn draws(d: &Dist, n: usize) -> Vec<f64> {
    let mut rng = Rng::stream(7, Stream::Churn, &[0]);
    (0..n).map(|_| d.sample(&mut rng).as_secs_f64()).collect()
}

#[test]
fn distributions_have_their_shape() {
    const N: usize = 5000;
    // KS critical value at α = 0.001: 1.95 / √n.
    let critical = 1.95 / (N as f64).sqrt();
    let exp = draws(&Dist::Exponential { mean: s(30.0) }, N);
    let d = ks(exp.clone(), |x| 1.0 - (-x / 30.0).exp());
    assert!(d < critical, "exponential: D = {d}");
    let mean = exp.iter().sum::<f64>() / N as f64;
    assert!((mean - 30.0).abs() < 30.0 * 0.05, "exponential mean {mean}");
    let uni = draws(
        &Dist::Uniform {
            min: s(1.0),
            max: s(5.0),
        },
        N,
    );
    assert!(uni.iter().all(|&x| (1.0..=5.0).contains(&x)));
    let d = ks(uni, |x| ((x - 1.0) / 4.0).clamp(0.0, 1.0));
    assert!(d < critical, "uniform: D = {d}");
    let logn = draws(
        &Dist::LogNormal {
            median: s(60.0),
            sigma: 0.5,
        },
        N,
    );
    let d = ks(logn.clone(), |x| {
        0.5 * (1.0 + erf((x / 60.0).ln() / (0.5 * std::f64::consts::SQRT_2)))
    });
    assert!(d < critical, "lognormal: D = {d}");
    let mut sorted = logn;
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| sorted[(p * N as f64) as usize];
    assert!((q(0.5) / 60.0 - 1.0).abs() < 0.05, "median {}", q(0.5));
    // The 84th percentile is median × e^σ.
    let spread = (q(0.8413) / q(0.5)).ln();
    assert!((spread - 0.5).abs() < 0.05, "sigma {spread}");
    assert_eq!(draws(&Dist::Fixed(s(3.0)), 3), [3.0; 3]);
    // The test can fail: the exponential is not the uniform.
    let d = ks(draws(&Dist::Exponential { mean: s(3.0) }, N), |x| {
        ((x - 1.0) / 4.0).clamp(0.0, 1.0)
    });
    assert!(d > critical);
}

#[test]
fn ramp_constant_spike_counts() {
    let yaml = "phases:\n\
        - {type: ramp, from: 0, to: 20, over: 20s}\n\
        - {type: constant, participants: 30, for: 10s}\n\
        - {type: spike, to: 50, over: 0s, for: 10s}\n\
        - {type: ramp, to: 10, over: 10s}\n\
        - {type: hold, for: 10s}\n\
        - {type: ramp, from: 25, to: 25, over: 5s}";
    let mut case = Case::new(&[100], 10, yaml);
    case.end = s(65.0);
    let out = case.run();
    let at = |t: f64| present(&out, s(t));
    let want = [
        (0.0, 0),
        (0.99, 0),
        (1.0, 1),
        (10.0, 10),
        (19.99, 19),
        // The ramp's last join and the constant's jump share t = 20.
        (20.0, 30),
        (29.99, 30),
        (30.0, 50),
        (39.99, 50),
        (40.0, 30),
        // 20 leaves in 10 s: one each 0.5 s.
        (44.99, 21),
        (45.0, 20),
        (50.0, 10),
        (59.99, 10),
        // `from` differs from the count: it moves there at once.
        (60.0, 25),
        (64.99, 25),
    ];
    for (t, n) in want {
        assert_eq!(at(t), n, "at {t} s");
    }
    // The spike's own participants leave at its end, and meetings fill in
    // order: the first 30 members are those present after it.
    assert!((0..30).all(|m| out.clients[m].present_at(s(40.0))));
    assert_eq!(out.phases[2].name, "3-spike");
    assert_eq!((out.phases[2].start, out.phases[2].end), (s(30.0), s(40.0)));
    // The ramp down leaves random members, not the last ones.
    let stayed: Vec<usize> = (0..30)
        .filter(|&m| out.clients[m].present_at(s(55.0)))
        .collect();
    assert_eq!(stayed.len(), 10);
    assert_ne!(stayed, (0..10).collect::<Vec<_>>());
    // Joins made at once are spaced by ramp_up_delay.
    case.delay = s(0.1);
    let out = case.run();
    assert_eq!(present(&out, s(20.0)), 21);
    assert_eq!(present(&out, s(20.5)), 26);
    assert_eq!(present(&out, s(21.0)), 30);
    // A ramp's first steps within the spaced joins of its move to `from`
    // wait for them (and no session ends before it starts).
    let mut case = Case::new(
        &[20],
        10,
        "phases: [{type: ramp, from: 10, to: 0, over: 20s}]",
    );
    case.delay = s(1.0);
    case.end = s(21.0);
    let out = case.run();
    assert_eq!(present(&out, s(8.5)), 9);
    assert_eq!(
        present(&out, s(9.0)),
        6,
        "10 joined, the 4 leaves due by 9 s at 9 s"
    );
    assert_eq!(present(&out, s(10.0)), 5);
    assert_eq!(present(&out, s(20.0)), 0);
}

#[test]
fn any_seed_gives_a_well_formed_schedule() {
    let mut case = Case::new(&[50, 30], 5, EXAMPLE);
    case.end = s(202.0);
    case.delay = s(0.05);
    case.members[3].viewer = true;
    for seed in 0..20 {
        case.seed = seed;
        let out = case.run();
        let p = out.planned;
        assert_eq!(p.sessions, p.joins + p.rejoins + p.storm_rejoins);
        // Present counts at the plateaus: 20 held (a storm or churn may
        // have some away), at most 40 at the spike's top.
        assert!(present(&out, s(200.0)) <= 40);
    }
}

#[test]
fn targets_split_across_groups_by_size() {
    assert_eq!(split(10, &[10, 30, 60]), [1, 3, 6]);
    assert_eq!(split(7, &[10, 30, 60]), [1, 2, 4]);
    assert_eq!(split(0, &[10, 30, 60]), [0, 0, 0]);
    assert_eq!(split(3, &[1, 1, 1, 1]), [1, 1, 1, 0]);
    assert_eq!(split(5, &[0, 0]), [0, 0]);
    for n in 0..=100 {
        assert_eq!(split(n, &[13, 29, 58]).iter().sum::<usize>(), n);
    }
    let case = Case::new(
        &[10, 30, 60],
        5,
        "phases: [{type: constant, participants: 7, for: 10s}, {type: ramp, to: 50, over: 10s}]",
    );
    let out = case.run();
    let parts =
        |t: f64| -> Vec<usize> { (0..3).map(|g| present_in(&out, &case, g, s(t))).collect() };
    assert_eq!(parts(5.0), [1, 2, 4]);
    assert_eq!(parts(20.0), [5, 15, 30]);
    // The lowest free members of each group: group 1 starts at member 10.
    assert!(out.clients[10].present_at(s(5.0)) && out.clients[11].present_at(s(5.0)));
    assert!(!out.clients[12].present_at(s(5.0)));
}

#[test]
fn pool_and_phase_errors() {
    let case = Case::new(
        &[5],
        5,
        "phases: [{type: hold, for: 1s}, {type: arrival_rate, rate: 10, for: 60s, session: 60s}]",
    );
    let e = case.try_run().unwrap_err().to_string();
    assert!(
        e.starts_with("phases[1] (arrival_rate) needs 6 participants of group 0 at 1s")
            && e.ends_with("but it has 5: raise groups[0].count or lower the rate"),
        "{e}"
    );
    let case = Case::new(
        &[5],
        5,
        "phases: [{type: constant, participants: 6, for: 1s}]",
    );
    let e = case.try_run().unwrap_err().to_string();
    assert_eq!(
        e,
        "phases[0] (constant) needs 6 participants of group 0 at 0s but it has 5: raise groups[0].count or lower the phase's count"
    );
    let case = Case::new(
        &[5],
        5,
        "phases: [{type: constant, participants: 4, for: 1s}, {type: spike, to: 2, over: 1s, for: 1s}]",
    );
    let e = case.try_run().unwrap_err().to_string();
    assert!(
        e.contains("phases[1] (spike): to 2 is below the 4 participants"),
        "{e}"
    );
    let mut case = Case::new(
        &[50],
        5,
        "phases: [{type: constant, participants: 20, for: 1s}]",
    );
    case.delay = s(0.1);
    let e = case.try_run().unwrap_err().to_string();
    assert_eq!(
        e,
        "phases[0] (constant): 20 joins spaced by ramp_up_delay 100ms take 1s900ms, longer than the phase (1s): lengthen it or lower ramp_up_delay"
    );
}

#[test]
fn no_phases_start_at_the_given_times() {
    let mut case = Case::new(&[3], 3, "{}");
    case.starts = vec![s(0.0), s(1.0), s(70.0)];
    let out = case.run();
    let first: Vec<Option<SessionPlan>> = out
        .clients
        .iter()
        .map(|c| c.sessions.first().copied())
        .collect();
    assert_eq!(
        first[1],
        Some(SessionPlan {
            start: s(1.0),
            end: None,
            cause: Cause::Join,
            end_cause: None
        })
    );
    assert_eq!(first[2], None, "a start past the end is dropped");
    assert!(out.clients[0].speaking.is_none());
    assert!(out.clients[0].speaking_at(s(5.0)) && !out.clients[1].speaking_at(s(0.5)));
    assert_eq!(out.phases, []);
}

#[test]
fn churn_ends_and_rejoins() {
    let case = Case::new(
        &[10],
        10,
        "churn: {session: 10s, rejoin_after: {dist: uniform, min: 1s, max: 3s}}",
    );
    let out = case.run();
    for c in &out.clients {
        assert_eq!(c.sessions[0].cause, Cause::Join);
        for w in c.sessions.windows(2) {
            assert_eq!(w[0].end_cause, Some(EndCause::Churn));
            assert_eq!(w[0].end.unwrap() - w[0].start, s(10.0));
            let gap = w[1].start - w[0].end.unwrap();
            assert!(gap >= s(1.0) && gap <= s(3.0), "{gap:?}");
            assert_eq!(w[1].cause, Cause::Rejoin);
        }
        assert!(
            c.sessions.len() >= 5,
            "60 s of 10 s sessions and short gaps"
        );
    }
    assert_eq!(out.planned.joins, 10);
    // A drop whose rejoin would fall past the end has none.
    let unanswered = out.planned.churn_drops - out.planned.rejoins;
    assert!(unanswered <= 10, "{:?}", out.planned);
    // Arrivals keep their own length: churn does not cut them.
    let mut case = Case::new(
        &[50],
        50,
        "phases: [{type: arrival_rate, rate: 1, for: 30s, session: 20s}]\nchurn: {session: 1s}",
    );
    case.end = s(30.0);
    let out = case.run();
    assert_eq!(out.planned.rejoins, 0);
    // A tiny session length is refused, naming the cause.
    let mut case = Case::new(&[1], 1, "churn: {session: 1ms, rejoin_after: 0s}");
    case.end = s(3600.0);
    let e = case.try_run().unwrap_err().to_string();
    assert!(
        e.starts_with("churn.session (fixed 1ms) gives participant 0 more than 100000 sessions"),
        "{e}"
    );
}

#[test]
fn storm_drops_a_share_and_they_come_back() {
    let case = Case::new(&[100], 10, "storms: [{at: 30s, share: 0.3, spread: 5s}]");
    let out = case.run();
    assert_eq!(out.planned.storm_drops, 30);
    assert_eq!(out.planned.storm_rejoins, 30);
    assert_eq!(present(&out, s(29.99)), 100);
    assert!(present(&out, s(30.0)) >= 70 && present(&out, s(30.0)) < 100);
    assert_eq!(present(&out, s(35.0)), 100);
    for c in out.clients.iter().filter(|c| c.sessions.len() > 1) {
        assert_eq!(c.sessions[0].end, Some(s(30.0)));
        assert_eq!(c.sessions[0].end_cause, Some(EndCause::Storm));
        let back = c.sessions[1];
        assert_eq!(back.cause, Cause::Storm);
        assert!(back.start >= s(30.0) && back.start < s(35.0));
        assert_eq!(back.end, None, "it goes on as the old session would have");
    }
    // With churn: a share of those connected at `at`, not of everyone.
    let churny = "churn: {session: {dist: exponential, mean: 10s}, rejoin_after: 5s}";
    let calm = Case::new(&[100], 10, churny);
    let connected = calm
        .run()
        .clients
        .iter()
        .filter(|c| {
            c.session_at(s(30.0))
                .is_some_and(|k| c.sessions[k].start < s(30.0))
        })
        .count();
    assert!(connected < 100);
    let stormy = Case::new(
        &[100],
        10,
        &format!("{churny}\nstorms: [{{at: 30s, share: 0.5}}]"),
    );
    let out = stormy.run();
    assert_eq!(
        out.planned.storm_drops,
        (connected as f64 * 0.5).round() as usize
    );
}

#[test]
fn actions_share_every_and_revert() {
    let yaml = "actions:\n\
        - {at: 10s, every: 20s, share: 0.3, do: mute, for: 5s}\n\
        - {at: 15s, share: 0.01, do: rendition, rendition: video-320x180}\n\
        - {at: 55s, share: 0.25, do: camera_off, for: 10s}";
    let case = Case::new(&[20], 20, yaml);
    let out = case.run();
    let count = |t: f64, a: &Action| {
        out.clients
            .iter()
            .filter(|c| c.actions.contains(&(s(t), a.clone())))
            .count()
    };
    for t in [10.0, 30.0, 50.0] {
        assert_eq!(count(t, &Action::Mute), 6, "at {t}");
        assert_eq!(count(t + 5.0, &Action::Unmute), 6, "at {t} + 5");
    }
    assert_eq!(count(70.0, &Action::Mute), 0);
    // At least one, and no revert without `for`.
    assert_eq!(count(15.0, &Action::Rendition("video-320x180".into())), 1);
    assert!(out
        .clients
        .iter()
        .all(|c| !c.actions.iter().any(|a| a.1 == Action::RenditionRevert)));
    // ceil(0.25 × 20) = 5; the revert at 65 s is past the end.
    assert_eq!(count(55.0, &Action::CameraOff), 5);
    assert_eq!(out.planned.actions, 3 * 12 + 1 + 5);
    for c in &out.clients {
        for w in c.actions.windows(2) {
            if w[0].1 == Action::Mute {
                assert_eq!(w[1], (w[0].0 + s(5.0), Action::Unmute));
            }
        }
    }
    // Only members connected at that instant are picked.
    let mut case = Case::new(
        &[20],
        20,
        "phases: [{type: ramp, to: 20, over: 20s}]\nactions: [{at: 5s, every: 5s, share: 1, do: screen_share, for: 1s}]",
    );
    case.end = s(20.0);
    let out = case.run();
    for t in [5.0, 10.0, 15.0] {
        let got: Vec<usize> = (0..20)
            .filter(|&m| {
                out.clients[m]
                    .actions
                    .contains(&(s(t), Action::ScreenShareStart))
            })
            .collect();
        assert_eq!(got, (0..t as usize).collect::<Vec<_>>(), "at {t}");
    }
    let case = Case::new(
        &[2],
        2,
        "actions: [{at: 0s, every: 1us, share: 1, do: mute}]",
    );
    let e = case.try_run().unwrap_err().to_string();
    assert!(
        e.starts_with("groups[0].actions[0]: every 1us repeats it"),
        "{e}"
    );
}

/// Members speaking at `t` in each meeting.
fn talking(out: &Schedule, case: &Case, t: Duration) -> BTreeMap<usize, usize> {
    let mut n = BTreeMap::new();
    for (c, m) in out.clients.iter().zip(&case.members) {
        if c.speaking_at(t) {
            *n.entry(m.meeting).or_insert(0) += 1;
        }
    }
    n
}

#[test]
fn conversation_turns() {
    let yaml = "conversation: {talkers: 0.5, turn: {dist: exponential, mean: 2s}, overlap: 0.3}";
    let mut case = Case::new(&[24], 6, yaml);
    case.members[5].viewer = true;
    case.members[4].audio = false;
    let out = case.run();
    let mut doubles = 0;
    for k in 0..6000 {
        let per = talking(&out, &case, s(k as f64 * 0.01));
        assert!(per.values().all(|&n| n <= 2), "{per:?}");
        doubles += per.values().filter(|&&n| n == 2).count();
    }
    assert!(doubles > 0, "overlap 0.3 makes some turns of two");
    for meeting in 0..4 {
        let members = meeting * 6..meeting * 6 + 6;
        let talkers = members
            .clone()
            .filter(|&m| !out.clients[m].speaking.as_ref().unwrap().is_empty())
            .count();
        // Half of 6 audio members, or of 4 in the meeting with a viewer
        // and a member without audio.
        assert_eq!(talkers, 3 - usize::from(meeting == 0), "meeting {meeting}");
    }
    assert!(out.clients[4].speaking.as_ref().unwrap().is_empty());
    assert!(out.clients[5].speaking.as_ref().unwrap().is_empty());
    // Overlap 0: one at a time, and the turns cover the whole run.
    let case = Case::new(
        &[12],
        6,
        "conversation: {talkers: 1, turn: {dist: uniform, min: 1s, max: 3s}}",
    );
    let out = case.run();
    for meeting in 0..2 {
        let mut all: Vec<(Duration, Duration)> = (meeting * 6..meeting * 6 + 6)
            .flat_map(|m| out.clients[m].speaking.clone().unwrap())
            .collect();
        all.sort();
        assert_eq!(all[0].0, Duration::ZERO);
        assert_eq!(all.last().unwrap().1, case.end);
        for w in all.windows(2) {
            assert_eq!(w[0].1, w[1].0, "one talker at a time, back to back");
        }
        // Someone other than the last talker: no talker has two turns in
        // a row, so no merged interval is longer than one turn.
        assert!(all.iter().all(|&(a, b)| b - a <= s(3.0)));
    }
}

#[test]
fn talkers_follow_presence() {
    // One talker left alone speaks turn after turn; nobody present: silence.
    let mut case = Case::new(&[2], 2, "conversation: {turn: 1s}");
    case.starts = vec![s(10.0), s(70.0)];
    let out = case.run();
    assert_eq!(out.clients[0].speaking, Some(vec![(s(10.0), s(60.0))]));
    assert_eq!(out.clients[1].speaking, Some(vec![]));
    assert!(!out.clients[0].speaking_at(s(5.0)) && out.clients[0].speaking_at(s(30.0)));
}

#[test]
fn arrivals_past_the_end_run_to_it() {
    let mut case = Case::new(
        &[100],
        100,
        "phases: [{type: arrival_rate, rate: 1, for: 60s, session: 100s}]",
    );
    case.end = s(30.0);
    let out = case.run();
    let all: Vec<&SessionPlan> = out.clients.iter().flat_map(|c| &c.sessions).collect();
    assert!(!all.is_empty());
    assert!(all.iter().all(|p| p.end.is_none() && p.start < s(30.0)));
    assert_eq!(out.planned.leaves, 0);
    assert_eq!(out.phases[0].end, s(60.0), "windows stay as configured");
}
