//! The screen track's pictures: a presentation of text slides.
//!
//! Each slide is a title and bullet lines drawn with [`super::font`], dark text
//! on a light background under a coloured band, with its number in the
//! bottom-right corner, as a shared presentation looks. Slides follow each
//! other in the presentation's order, each held [`HOLD_S`] seconds (4, 6 and 5 in
//! turn); every third slide from the second is a long one that scrolls
//! slowly up after [`SCROLL_PAUSE_S`], like a reader paging down (so a 10 s
//! loop shows one). The last slide is cut
//! at the loop's end, so the presentation loops with the other tracks.
//!
//! A key frame comes on the first frame of each slide (a new slide changes the
//! whole picture) and at least every `keyframe_interval` frames. Pictures
//! depend only on the frame number, the size and the frame rate.

use image::{Rgb, RgbImage};

use super::font;
use crate::yuv::I420;

/// How long slides are held, seconds, in turn.
pub const HOLD_S: [f64; 3] = [4.0, 6.0, 5.0];
/// How long a long slide stands still before it scrolls, seconds.
pub const SCROLL_PAUSE_S: f64 = 1.0;
/// How fast a long slide scrolls, in picture heights a second.
pub const SCROLL_SPEED: f64 = 0.08;

const BACKGROUND: Rgb<u8> = Rgb([248, 246, 240]);
const TEXT: Rgb<u8> = Rgb([40, 40, 52]);
const TITLE: Rgb<u8> = Rgb([20, 40, 90]);
const BANDS: [Rgb<u8>; 4] = [
    Rgb([36, 99, 165]),
    Rgb([200, 90, 40]),
    Rgb([40, 140, 90]),
    Rgb([120, 70, 150]),
];

/// One slide: a title and its bullet lines.
struct Slide {
    title: &'static str,
    bullets: &'static [&'static str],
}

/// The presentation. Every third slide from the second (1, 4) is long enough to scroll.
const SLIDES: [Slide; 6] = [
    Slide {
        title: "Platform review",
        bullets: &[
            "Where we are after the third quarter",
            "Load tests: what broke and why",
            "Plans for the next release",
            "Questions",
        ],
    },
    Slide {
        title: "Incident timeline",
        bullets: &[
            "09:02 alerts on packet loss",
            "09:05 on-call engineer paged",
            "09:11 relay at 95% CPU",
            "09:14 traffic moved to a spare",
            "09:20 loss back to normal",
            "09:45 root cause: a bad config push",
            "10:30 config rolled back everywhere",
            "11:00 status page updated",
            "Next day: review with the team",
            "Action: stage config pushes",
            "Action: alert on relay CPU at 80%",
            "Action: practise the failover monthly",
            "Action: add a canary region",
            "Owner: platform on-call",
        ],
    },
    Slide {
        title: "Results this quarter",
        bullets: &[
            "Uptime 99.95% (target 99.9%)",
            "Median join time down to 1.2 s",
            "Video freezes: -40% since June",
            "Two incidents, both in one region",
        ],
    },
    Slide {
        title: "Load test findings",
        bullets: &[
            "1000 clients per relay hold well",
            "Above 1500, queues start to grow",
            "Audio stays clean when video drops",
            "Key frame requests come in bursts",
        ],
    },
    Slide {
        title: "Open questions",
        bullets: &[
            "Do we need a second region?",
            "Who owns the relay dashboards?",
            "Should tests run every night?",
            "How big can a meeting get?",
            "What do users see on bad links?",
            "Can we record meetings safely?",
            "Which browsers do we drop?",
            "When do we retire the old API?",
            "How do we price large rooms?",
            "What does support need from us?",
            "Where do the logs live?",
            "Thanks for listening!",
        ],
    },
    Slide {
        title: "Next release",
        bullets: &[
            "Simulcast for screen sharing",
            "Faster reconnects on mobile",
            "Better bandwidth estimates",
            "Ship date: end of next month",
        ],
    },
];

/// Which slide is on screen from which frame, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// Index into the presentation.
    pub slide: usize,
    /// First frame (in the loop).
    pub start: u32,
    /// Frames it is held for.
    pub frames: u32,
}

/// Lays slides out over a loop of `frames` frames at `fps`.
pub fn schedule(frames: u32, fps: u32) -> Vec<Shown> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < frames {
        let k = out.len();
        let hold = ((HOLD_S[k % HOLD_S.len()] * fps as f64).round() as u32).max(1);
        let shown = Shown {
            slide: k % SLIDES.len(),
            start,
            frames: hold.min(frames - start),
        };
        start += shown.frames;
        out.push(shown);
    }
    out
}

/// Key frames: the first frame of each slide, and at least every `interval` frames.
pub fn keyframes(schedule: &[Shown], frames: u32, interval: u32) -> Vec<bool> {
    let mut keys = vec![false; frames as usize];
    let mut last = 0;
    for i in 0..frames {
        let starts = schedule.iter().any(|s| s.start == i);
        if starts || i - last >= interval.max(1) {
            keys[i as usize] = true;
            last = i;
        }
    }
    keys
}

/// Renders the screen track's frames.
pub struct Slides {
    fps: u32,
    schedule: Vec<Shown>,
    keys: Vec<bool>,
    rgb: RgbImage,
    yuv: I420,
    /// The slide and scroll offset `yuv` holds, so a slide that stands still
    /// is drawn and converted once.
    shown: Option<(usize, u32)>,
}

impl Slides {
    /// Slides of `width`×`height` at `fps` over a loop of `frames` frames,
    /// with a key frame at least every `keyframe_interval` frames.
    pub fn new(width: u32, height: u32, fps: u32, frames: u32, keyframe_interval: u32) -> Slides {
        let schedule = schedule(frames, fps);
        Slides {
            fps,
            keys: keyframes(&schedule, frames, keyframe_interval),
            schedule,
            rgb: RgbImage::new(width, height),
            yuv: I420::new(width, height),
            shown: None,
        }
    }

    /// Whether frame `i` is to be a key frame.
    pub fn is_keyframe(&self, i: u32) -> bool {
        self.keys.get(i as usize).copied().unwrap_or(false)
    }

    /// The slides and when each is shown.
    pub fn schedule(&self) -> &[Shown] {
        &self.schedule
    }

    /// Renders frame `i` of the loop.
    pub fn render(&mut self, i: u32) -> &I420 {
        let shown = self
            .schedule
            .iter()
            .rev()
            .find(|s| s.start <= i)
            .copied()
            .unwrap_or(Shown {
                slide: 0,
                start: 0,
                frames: 1,
            });
        let since = (i - shown.start) as f64 / self.fps as f64;
        let scrolled = scroll(self.rgb.height(), shown.slide, since);
        if self.shown != Some((shown.slide, scrolled)) {
            draw(&mut self.rgb, shown.slide, scrolled);
            self.yuv.fill_from_rgb(&self.rgb);
            self.shown = Some((shown.slide, scrolled));
        }
        &self.yuv
    }
}

/// Where bullets go on a picture `h` rows high: (top, line height, room),
/// in pixels.
fn bullet_layout(h: u32) -> (u32, u32, u32) {
    let text_scale = (h / 150).max(1);
    let top = h / 4;
    (
        top,
        (font::GLYPH_H + 5) * text_scale,
        h.saturating_sub(top + h / 10),
    )
}

/// How far slide `k` has scrolled `since` seconds after it came up on a
/// picture `h` rows high, in pixels: 0 for a slide whose bullets fit.
fn scroll(h: u32, k: usize, since: f64) -> u32 {
    let (_, line, room) = bullet_layout(h);
    let content = SLIDES[k % SLIDES.len()].bullets.len() as u32 * line;
    if content <= room {
        return 0;
    }
    let moved = (since - SCROLL_PAUSE_S).max(0.0) * SCROLL_SPEED * h as f64;
    (moved as u32).min(content - room)
}

/// Draws slide `k` of the presentation with its bullets `scrolled` pixels up.
fn draw(img: &mut RgbImage, k: usize, scrolled: u32) {
    let (w, h) = img.dimensions();
    let slide = &SLIDES[k % SLIDES.len()];
    font::fill(img, 0, 0, w, h, BACKGROUND);
    let title_scale = (h / 90).max(1);
    let text_scale = (h / 150).max(1);
    let margin = w / 20;
    let (top, line, room) = bullet_layout(h);
    for (n, bullet) in slide.bullets.iter().enumerate() {
        let y = (top + n as u32 * line).checked_sub(scrolled);
        match y {
            Some(y) if y >= top && y + line <= top + room => {
                font::draw_text(img, margin, y, text_scale, "*", TEXT);
                let x = margin + 2 * font::ADVANCE * text_scale;
                font::draw_text(img, x, y, text_scale, bullet, TEXT);
            }
            _ => {}
        }
    }
    // The band and title over whatever scrolled under them.
    let band = BANDS[k % BANDS.len()];
    font::fill(img, 0, 0, w, h / 40 + 1, band);
    let title_y = h / 40 + 2 * title_scale;
    font::fill(img, 0, h / 40 + 1, w, top - h / 40 - 1, BACKGROUND);
    font::draw_text(img, margin, title_y, title_scale, slide.title, TITLE);
    font::fill(
        img,
        margin,
        top - 3 * text_scale,
        w - 2 * margin,
        text_scale.max(2),
        band,
    );
    let number = format!("{} / {}", k % SLIDES.len() + 1, SLIDES.len());
    let x = w.saturating_sub(margin + font::text_width(&number, text_scale));
    font::draw_text(
        img,
        x,
        h - h / 20 - font::GLYPH_H * text_scale,
        text_scale,
        &number,
        TEXT,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_fill_the_loop_with_a_key_frame_each() {
        let s = schedule(50, 5);
        assert_eq!(
            s,
            [
                Shown {
                    slide: 0,
                    start: 0,
                    frames: 20
                },
                Shown {
                    slide: 1,
                    start: 20,
                    frames: 30
                },
            ]
        );
        let s = schedule(95, 5);
        assert_eq!(s.iter().map(|s| s.frames).sum::<u32>(), 95);
        assert_eq!(s.last().unwrap().start, 75);
        let keys = keyframes(&s, 95, 10);
        let at: Vec<usize> = (0..95).filter(|&i| keys[i]).collect();
        // Slides at 0, 20, 50, 75; no more than 10 frames apart.
        assert_eq!(at, [0, 10, 20, 30, 40, 50, 60, 70, 75, 85]);
    }

    #[test]
    fn every_size_renders_even_the_smallest() {
        for (w, h) in [(16, 16), (4096, 16), (16, 4096), (1280, 720)] {
            let mut slides = Slides::new(w, h, 5, 60, 10);
            for i in [0, 25, 59] {
                assert_eq!(slides.render(i).width(), w);
            }
        }
    }

    #[test]
    fn a_long_slide_scrolls_and_a_short_one_stands_still() {
        let mut a = RgbImage::new(320, 180);
        let mut b = RgbImage::new(320, 180);
        assert_eq!(scroll(180, 1, 0.5), 0, "it stands still for a second");
        assert!(scroll(180, 1, 4.0) > 0, "slide 2 scrolls");
        assert_eq!(scroll(180, 2, 4.0), 0, "slide 3 holds still");
        draw(&mut a, 1, 0);
        draw(&mut b, 1, scroll(180, 1, 4.0));
        assert_ne!(a, b);
        draw(&mut a, 2, 0);
        let dark = a.pixels().filter(|p| p.0[0] < 100).count();
        assert!(
            dark > 320 * 180 / 100,
            "text on the slide: {dark} dark pixels"
        );
    }
}
