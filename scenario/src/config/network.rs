//! Network profiles: a group's `network:` (a built-in profile's name, one of
//! the file's `networks:`, or a profile written out) resolved into a
//! [`Network`], every knob and schedule step checked against [`limits`].

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use synth_common::netem::{Change, Profile, Step};
use synth_common::redact::shown;

use super::file::{JitterDist, LinkSpec, NetworkSpec, ProfileSpec, StepSpec};
use super::limits;

/// A group's network, resolved.
#[derive(Debug, Clone)]
pub struct Network {
    /// The group, as the report names it: its `user_id` template.
    pub group: String,
    /// The profile's name, `inline` for one written out.
    pub profile_name: String,
    /// The profile from the start.
    pub profile: synth_common::netem::Profile,
    /// Its schedule.
    pub schedule: Vec<synth_common::netem::Step>,
}

impl Network {
    /// One line for `validate`.
    pub fn describe(&self) -> String {
        let link = |l: &synth_common::netem::Link| {
            let mut parts = Vec::new();
            let loss = l.loss.mean();
            if loss > 0.0 {
                parts.push(format!("loss {:.2} %", loss * 100.0));
            }
            if l.delay_us > 0 || l.jitter_us > 0 {
                parts.push(format!(
                    "delay {} ms ± {} ms",
                    l.delay_us as f64 / 1000.0,
                    l.jitter_us as f64 / 1000.0
                ));
            }
            if let Some(r) = l.rate_bps {
                parts.push(format!("{} kbit/s", r / 1000));
            }
            if l.duplicate > 0.0 {
                parts.push(format!("duplicate {} %", l.duplicate * 100.0));
            }
            if l.reorder > 0.0 {
                parts.push(format!("reorder {} %", l.reorder * 100.0));
            }
            if parts.is_empty() {
                "clean".to_owned()
            } else {
                parts.join(", ")
            }
        };
        let mut out = format!(
            "{}: {} (up: {}; down: {})",
            self.group,
            self.profile_name,
            link(&self.profile.uplink),
            link(&self.profile.downlink)
        );
        if !self.schedule.is_empty() {
            out.push_str(&format!(", {} scheduled changes", self.schedule.len()));
        }
        out
    }
}

/// Resolves a `network:` against the built-in and the custom profiles.
pub(super) fn network(
    spec: &NetworkSpec,
    custom: &BTreeMap<String, ProfileSpec>,
) -> anyhow::Result<Network> {
    let (profile_name, profile, steps) = match spec {
        NetworkSpec::Name(n) => {
            let (p, c) = named(n, custom)?;
            (n.clone(), p, c.map_or(&[][..], |c| &c.schedule[..]))
        }
        NetworkSpec::Inline(c) => ("inline".to_owned(), profile(c)?, &c.schedule[..]),
    };
    Ok(Network {
        group: String::new(),
        profile_name,
        profile,
        schedule: schedule(steps, custom)?,
    })
}

/// The profile called `name`, built in or custom; a custom one comes with
/// its spec (for its schedule).
fn named<'a>(
    name: &str,
    custom: &'a BTreeMap<String, ProfileSpec>,
) -> anyhow::Result<(Profile, Option<&'a ProfileSpec>)> {
    if let Some(p) = Profile::named(name) {
        return Ok((p, None));
    }
    match custom.get(name) {
        Some(c) => Ok((profile(c)?, Some(c))),
        None => {
            let known: Vec<&str> = synth_common::netem::PROFILES
                .iter()
                .map(|(n, _)| *n)
                .chain(custom.keys().map(|k| k.as_str()))
                .collect();
            bail!(
                "no network profile {:?} (known: {})",
                shown(name),
                known.join(", ")
            )
        }
    }
}

/// Both directions of a profile as written.
fn profile(c: &ProfileSpec) -> anyhow::Result<Profile> {
    Ok(Profile {
        uplink: link(&c.uplink).context("uplink")?,
        downlink: link(&c.downlink).context("downlink")?,
    })
}

/// A profile's schedule; a step's profile is one without a schedule.
fn schedule(
    steps: &[StepSpec],
    custom: &BTreeMap<String, ProfileSpec>,
) -> anyhow::Result<Vec<Step>> {
    if steps.len() > limits::NETWORK_STEPS {
        bail!(
            "schedule has {} steps, more than {}",
            steps.len(),
            limits::NETWORK_STEPS
        );
    }
    let mut schedule = Vec::with_capacity(steps.len());
    for (i, st) in steps.iter().enumerate() {
        let f = humantime::format_duration;
        if st.at > limits::DURATION {
            bail!(
                "schedule[{i}].at {} is more than {}",
                f(st.at),
                f(limits::DURATION)
            );
        }
        let change = match (&st.profile, st.down) {
            (Some(name), None) => {
                let (p, c) =
                    named(name, custom).with_context(|| format!("schedule[{i}].profile"))?;
                if c.is_some_and(|c| !c.schedule.is_empty()) {
                    bail!("schedule[{i}].profile {name} has a schedule of its own; switch to one without");
                }
                Change::Profile(Box::new(p))
            }
            (None, Some(d)) if d > Duration::ZERO && d <= limits::DURATION => {
                Change::Down(d.as_micros() as u64)
            }
            (None, Some(d)) => bail!(
                "schedule[{i}].down must be more than 0 and at most {} (got {})",
                f(limits::DURATION),
                f(d)
            ),
            _ => bail!("schedule[{i}] needs exactly one of `profile` and `down`"),
        };
        schedule.push(Step {
            at_us: st.at.as_micros() as u64,
            change,
        });
    }
    Ok(schedule)
}

/// One direction of a network as written, checked against [`limits`].
fn link(l: &LinkSpec) -> anyhow::Result<synth_common::netem::Link> {
    use synth_common::netem::{Jitter, Link, Loss};
    let prob = |name: &str, v: Option<f64>| -> anyhow::Result<f64> {
        match v {
            None => Ok(0.0),
            Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
            Some(p) => bail!("{name} {p} is not a probability in [0, 1]"),
        }
    };
    let loss = match (l.loss, l.gilbert_elliott) {
        (Some(_), Some(_)) => bail!("set only one of loss and gilbert_elliott"),
        (Some(p), None) => Loss::Bernoulli(prob("loss", Some(p))?),
        (None, Some(ge)) => Loss::GilbertElliott {
            p: prob("gilbert_elliott.p", Some(ge.p))?,
            r: prob("gilbert_elliott.r", Some(ge.r.unwrap_or(1.0 - ge.p)))?,
            h: prob("gilbert_elliott.h", Some(ge.h))?,
            k: prob("gilbert_elliott.k", Some(ge.k))?,
        },
        (None, None) => Loss::None,
    };
    let time = |name: &str, d: Option<Duration>| -> anyhow::Result<u64> {
        let d = d.unwrap_or_default();
        if d > limits::NETWORK_DELAY {
            bail!(
                "{name} {} is more than {}",
                humantime::format_duration(d),
                humantime::format_duration(limits::NETWORK_DELAY)
            );
        }
        Ok(d.as_micros() as u64)
    };
    let rate_bps = match l.rate_kbps {
        None => None,
        Some(r) if r > 0.0 && r <= limits::NETWORK_RATE_KBPS => Some((r * 1000.0).round() as u64),
        Some(r) => bail!(
            "rate_kbps {r} must be more than 0 and at most {} (10 Gbit/s)",
            limits::NETWORK_RATE_KBPS
        ),
    };
    if (l.queue_bytes.is_some() || l.queue_packets.is_some()) && rate_bps.is_none() {
        bail!("queue_bytes and queue_packets need rate_kbps (the queue is the rate cap's)");
    }
    let queue_bytes = match l.queue_bytes {
        Some(q) if q == 0 || q > limits::NETWORK_QUEUE_BYTES => bail!(
            "queue_bytes {q} must be at least 1 and at most {}",
            limits::NETWORK_QUEUE_BYTES
        ),
        Some(q) => q,
        None => rate_bps.map_or(0, synth_common::netem::default_queue_bytes),
    };
    let queue_packets = match l.queue_packets {
        Some(q) if q == 0 || q > limits::NETWORK_QUEUE_PACKETS => bail!(
            "queue_packets {q} must be at least 1 and at most {}",
            limits::NETWORK_QUEUE_PACKETS
        ),
        Some(q) => q,
        None => synth_common::netem::DEFAULT_QUEUE_PACKETS,
    };
    Ok(Link {
        loss,
        delay_us: time("delay", l.delay)?,
        jitter_us: time("jitter", l.jitter)?,
        jitter_dist: match l.jitter_dist {
            Some(JitterDist::Normal) => Jitter::Normal,
            _ => Jitter::Uniform,
        },
        rate_bps,
        queue_bytes,
        queue_packets,
        duplicate: prob("duplicate", l.duplicate)?,
        reorder: prob("reorder", l.reorder)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::testing::resolve;
    use crate::config::Overrides;

    #[test]
    fn networks_resolve_and_errors_name_the_field() {
        let yaml = r#"
seed: 9
networks:
  mine: {uplink: {gilbert_elliott: {p: 0.01, r: 0.3}, rate_kbps: 500}, schedule: [{at: 2s, down: 1s}, {at: 3s, profile: 3g}]}
groups:
  - {count: 1, user_id: "a{index}", meeting_id: m, network: 3g}
  - {count: 1, user_id: "b{index}", meeting_id: m, network: mine}
  - {count: 1, user_id: "c{index}", meeting_id: m}
"#;
        let s = resolve(yaml, &Overrides::default()).unwrap();
        assert_eq!(s.seed, 9);
        assert_eq!(s.networks.len(), 2);
        let n: Vec<_> = s.clients.iter().map(|c| c.network).collect();
        assert_eq!(n, [Some(0), Some(1), None]);
        assert_eq!(s.networks[0].profile_name, "3g");
        let mine = &s.networks[1];
        assert_eq!(mine.profile.uplink.rate_bps, Some(500_000));
        assert_eq!(mine.schedule.len(), 2);
        assert!(mine.describe().contains("b{index}: mine"));
        let cases = [
            ("network: 5g", "no network profile \"5g\""),
            (
                "network: {uplink: {loss: 1.5}}",
                "loss 1.5 is not a probability",
            ),
            ("network: {uplink: {delay: 2m}}", "delay 2m is more than 1m"),
            (
                "network: {downlink: {rate_kbps: 0}}",
                "rate_kbps 0 must be more than 0",
            ),
            ("network: {uplink: {queue_bytes: 10}}", "need rate_kbps"),
            ("network: {uplink: {colour: red}}", "unknown field `colour`"),
            (
                "network: {schedule: [{at: 1s}]}",
                "exactly one of `profile` and `down`",
            ),
        ];
        for (net, want) in cases {
            let yaml = format!("groups: [{{count: 1, user_id: a, meeting_id: m, {net}}}]");
            let e = resolve(&yaml, &Overrides::default()).unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(want), "{net}: got {msg:?}, want {want:?}");
            assert!(!msg.contains('\n'), "one line: {msg:?}");
        }
        let e = resolve(
            "networks: {3g: {}}\nclients: [{user_id: a, meeting_id: m}]",
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("built-in profile"), "{e:#}");
    }
}
