//! The engine's clock: real time, or a fake clock that tests move by hand.
//!
//! This module owns reading "now" in nanoseconds for the engine's own state
//! (penalty blocks, the API-key lockout). Which store runs on it is the
//! engine builder's choice.

use crate::FakeRelativeClock;
use governor::clock::{Clock, DefaultClock, Reference};

#[derive(Clone)]
pub(crate) enum EngineClock {
    Real {
        clock: DefaultClock,
        origin: <DefaultClock as Clock>::Instant,
    },
    Fake(FakeRelativeClock),
}

impl EngineClock {
    pub(crate) fn real() -> Self {
        let clock = DefaultClock::default();
        let origin = clock.now();
        EngineClock::Real { clock, origin }
    }

    /// Nanoseconds since the clock was made (real) or since its zero (fake).
    pub(crate) fn now(&self) -> u64 {
        match self {
            EngineClock::Real { clock, origin } => clock.now().duration_since(*origin).as_u64(),
            EngineClock::Fake(clock) => clock.now().as_u64(),
        }
    }
}
