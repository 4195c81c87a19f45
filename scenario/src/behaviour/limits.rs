//! Limits that keep a schedule bounded.

use std::time::Duration;

/// Entries of `phases`.
pub const PHASES: usize = 1000;
/// Entries of `storms`.
pub const STORMS: usize = 1000;
/// Entries of one group's `actions`.
pub const ACTIONS: usize = 1000;
/// Any duration of these specs (and any drawn length).
pub const DURATION: Duration = Duration::from_secs(24 * 3600);
/// Sessions in one schedule.
pub const SESSIONS: usize = 1_000_000;
/// Sessions of one participant.
pub const SESSIONS_PER_MEMBER: usize = 100_000;
/// Timed actions in one schedule (every member's together).
pub const ACTION_EVENTS: usize = 1_000_000;
/// Speaking turns in one schedule (every meeting's together).
pub const TURNS: usize = 10_000_000;
/// `arrival_rate`'s `rate`, per second.
pub const RATE: f64 = 10_000.0;
/// A phase's participant counts (`from`, `to`, `participants`).
pub const PARTICIPANTS: usize = crate::config::limits::CLIENTS;
/// A lognormal's `sigma`.
pub const SIGMA: f64 = 10.0;
/// Characters of a phase's `name` or an action's `rendition`.
pub const NAME_CHARS: usize = 100;
/// The shortest drawn session or turn length: a draw of 0 would make
/// sessions without end.
pub const SHORTEST_DRAW: Duration = Duration::from_millis(1);
