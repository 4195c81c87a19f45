//! What the live side records: the timeline's samples and the events, kept
//! for the report (bounded: samples merge in pairs past [`MAX_SAMPLES`],
//! events past [`MAX_EVENTS`] are only counted) and streamed as JSON lines
//! when asked.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::timeline::{Event, Sample, Snapshot, Timeline};

/// Samples the report keeps: past this, pairs of samples are merged into one
/// of twice the interval (see [`Sample::absorb`]), so a run of days keeps a
/// timeline of bounded size. The JSON lines stream keeps every interval.
pub const MAX_SAMPLES: usize = 10_000;

/// Events the report keeps; later ones only go to the JSON lines stream.
pub const MAX_EVENTS: usize = 10_000;

/// Checks before a run that the timeline can be streamed to `path`.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "timeline {} is a directory: give a file name",
            path.display()
        );
    }
    Ok(())
}

/// The samples and events of a run, and the JSON lines file they are
/// streamed to.
pub(super) struct Recorder {
    pub(super) samples: Vec<Sample>,
    /// Intervals merged into one sample of the report (doubles each time
    /// the report reaches [`MAX_SAMPLES`]).
    coarse: u32,
    /// The sample being filled when `coarse` > 1, and how many intervals it holds.
    pending: Option<(Sample, u32)>,
    pub(super) events: Vec<Event>,
    events_dropped: u64,
    jsonl: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
}

impl Recorder {
    /// Opens the timeline's JSON lines file when one is asked for.
    pub(super) fn new(jsonl: Option<&Path>) -> anyhow::Result<Recorder> {
        let jsonl = match jsonl {
            Some(p) => {
                check_path(p)?;
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("timeline {}: creating its folder", p.display())
                    })?;
                }
                let f = std::fs::File::create(p)
                    .with_context(|| format!("timeline {}: cannot write there", p.display()))?;
                Some((p.to_path_buf(), std::io::BufWriter::new(f)))
            }
            None => None,
        };
        Ok(Recorder {
            samples: Vec::new(),
            coarse: 1,
            pending: None,
            events: Vec::new(),
            events_dropped: 0,
            jsonl,
        })
    }

    /// Streams `s` and keeps it (merged with its neighbours once the
    /// timeline is coarse).
    pub(super) fn push_sample(&mut self, s: Sample) {
        if let Some((path, w)) = &mut self.jsonl {
            let ok = serde_json::to_writer(&mut *w, &s).is_ok()
                && w.write_all(b"\n").is_ok()
                && w.flush().is_ok();
            if !ok {
                tracing::warn!(
                    "timeline {}: write failed; no more lines go there",
                    path.display()
                );
                self.jsonl = None;
            }
        }
        if self.coarse == 1 {
            self.samples.push(s);
        } else {
            match &mut self.pending {
                Some((p, n)) => {
                    p.absorb(&s);
                    *n += 1;
                }
                None => self.pending = Some((s, 1)),
            }
            if self
                .pending
                .as_ref()
                .is_some_and(|(_, n)| *n >= self.coarse)
            {
                if let Some((p, _)) = self.pending.take() {
                    self.samples.push(p);
                }
            }
        }
        if self.samples.len() >= MAX_SAMPLES {
            self.samples = coarsen(std::mem::take(&mut self.samples));
            self.coarse = self.coarse.saturating_mul(2);
        }
    }

    /// Streams `e` and keeps it, up to [`MAX_EVENTS`].
    pub(super) fn event(&mut self, e: Event) {
        if let Some((_, w)) = &mut self.jsonl {
            let _ = serde_json::to_writer(&mut *w, &e);
            let _ = w.write_all(b"\n");
            let _ = w.flush();
        }
        if self.events.len() < MAX_EVENTS {
            self.events.push(e);
        } else {
            self.events_dropped += 1;
        }
    }

    /// The timeline (samples every `interval`, from `start_unix_ms`) and the
    /// events, once the last sample is in; `end` is the run's last snapshot.
    pub(super) fn finish(
        mut self,
        end: &Snapshot,
        interval: Duration,
        start_unix_ms: u64,
    ) -> (Timeline, Vec<Event>) {
        if let Some((path, w)) = &mut self.jsonl {
            if let Err(e) = w.flush() {
                tracing::warn!("timeline {}: {e}", path.display());
            }
        }
        if let Some((s, _)) = self.pending.take() {
            self.samples.push(s);
        }
        if self.events_dropped > 0 {
            self.events.push(Event::at(
                end,
                "truncated",
                "events",
                format!(
                    "{} later events are only in the timeline stream",
                    self.events_dropped
                ),
            ));
        }
        let timeline = Timeline {
            interval_s: interval.as_secs_f64() * f64::from(self.coarse),
            start_unix_ms,
            samples: self.samples,
        };
        (timeline, self.events)
    }
}

/// Merges each pair of consecutive samples into one.
fn coarsen(samples: Vec<Sample>) -> Vec<Sample> {
    let mut out = Vec::with_capacity(samples.len() / 2 + 1);
    let mut it = samples.into_iter();
    while let Some(mut a) = it.next() {
        if let Some(b) = it.next() {
            a.absorb(&b);
        }
        out.push(a);
    }
    out
}
