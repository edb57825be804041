//! The limiting arithmetic, over several quotas at once, all or nothing: a
//! request is counted against every quota or against none.
//!
//! This module owns the arithmetic only; state lives in the caller as a slice
//! of `u64` per client, in nanoseconds on the store's clock.
//!
//! - A normal quota is GCRA (the generic cell rate algorithm): `N/period` has
//!   an emission interval `T = period / N` and a capacity of `burst * T`. A
//!   client may send `burst` requests at once, then one more every `T`. Its
//!   state is one theoretical arrival time (TAT). In a window of length
//!   `period`, up to `burst + N - 1` requests can pass (`2N - 1` by default).
//! - A strict quota keeps a log of the last `N` admission times and admits a
//!   request only if fewer than `N` fall in the last `period`: never more than
//!   `N` in any window of length `period`. Its state is `N` slots.

use super::store::Decision;
use crate::Quota;
use std::time::Duration;

/// A quota in the units the arithmetic works in, and where its state sits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub(crate) quota: Quota,
    kind: Kind,
    /// Index of the limit's first state slot.
    offset: usize,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Gcra { interval: u64, capacity: u64 },
    Strict { period: u64, slots: usize },
}

/// The limits of a scope, laid out over one state slice.
pub(crate) fn layout(quotas: &[Quota]) -> (Box<[Limit]>, usize) {
    let mut offset = 0;
    let limits = quotas
        .iter()
        .map(|quota| {
            let kind = if quota.is_strict() {
                Kind::Strict {
                    period: nanos(quota.period()),
                    slots: quota.count() as usize,
                }
            } else {
                let interval = nanos(quota.replenish_interval()).max(1);
                Kind::Gcra {
                    interval,
                    capacity: interval.saturating_mul(u64::from(quota.burst())),
                }
            };
            let limit = Limit {
                quota: *quota,
                kind,
                offset,
            };
            offset += limit.slots();
            limit
        })
        .collect();
    (limits, offset)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Limit {
    fn slots(&self) -> usize {
        match self.kind {
            Kind::Gcra { .. } => 1,
            Kind::Strict { slots, .. } => slots,
        }
    }

    fn state<'s>(&self, state: &'s [u64]) -> &'s [u64] {
        &state[self.offset..self.offset + self.slots()]
    }

    fn state_mut<'s>(&self, state: &'s mut [u64]) -> &'s mut [u64] {
        &mut state[self.offset..self.offset + self.slots()]
    }
}

/// What one limit says about one request.
enum Verdict {
    Admit { remaining: u32, reset: u64 },
    Refuse { wait: u64, busy: u64 },
}

impl Kind {
    fn judge(&self, state: &[u64], now: u64, cost: u64) -> Verdict {
        match *self {
            Kind::Gcra { interval, capacity } => {
                let start = state[0].max(now);
                let next = start.saturating_add(interval.saturating_mul(cost));
                let horizon = now.saturating_add(capacity);
                if next > horizon {
                    Verdict::Refuse {
                        wait: next - horizon,
                        busy: start - now,
                    }
                } else {
                    Verdict::Admit {
                        remaining: saturate((horizon - next) / interval),
                        reset: next - now,
                    }
                }
            }
            Kind::Strict { period, slots } => {
                // Slots hold admission time + 1; 0 is an empty slot.
                let live = |stamp: &&u64| **stamp != 0 && **stamp - 1 + period > now;
                let in_window = state.iter().filter(live).count() as u64;
                if in_window + cost > slots as u64 {
                    let mut stamps: Vec<u64> = state.iter().filter(live).copied().collect();
                    stamps.sort_unstable();
                    // The request fits once this many of the oldest have expired.
                    let must_expire = (in_window + cost - slots as u64) as usize;
                    let freeing = stamps
                        .get(must_expire.saturating_sub(1))
                        .copied()
                        .unwrap_or(now + 1);
                    let newest = stamps.last().copied().unwrap_or(now + 1);
                    Verdict::Refuse {
                        wait: (freeing - 1 + period).saturating_sub(now),
                        busy: (newest - 1 + period).saturating_sub(now),
                    }
                } else {
                    Verdict::Admit {
                        remaining: saturate(slots as u64 - in_window - cost),
                        reset: period,
                    }
                }
            }
        }
    }

    fn commit(&self, state: &mut [u64], now: u64, cost: u64) {
        match *self {
            Kind::Gcra { interval, .. } => {
                state[0] = state[0]
                    .max(now)
                    .saturating_add(interval.saturating_mul(cost));
            }
            Kind::Strict { period, .. } => {
                let mut left = cost;
                for stamp in state.iter_mut() {
                    if left == 0 {
                        break;
                    }
                    if *stamp == 0 || *stamp - 1 + period <= now {
                        *stamp = now + 1;
                        left -= 1;
                    }
                }
            }
        }
    }

    fn undo(&self, state: &mut [u64], now: u64, cost: u64) {
        match *self {
            Kind::Gcra { interval, .. } => {
                state[0] = state[0].saturating_sub(interval.saturating_mul(cost));
            }
            Kind::Strict { .. } => {
                let mut left = cost;
                for stamp in state.iter_mut() {
                    if left > 0 && *stamp == now + 1 {
                        *stamp = 0;
                        left -= 1;
                    }
                }
            }
        }
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Decides one request of weight `cost` at `now` against `limits`, whose state
/// is `state` (all zeros for a new client). The state changes only when every
/// limit admits the request.
///
/// On a refusal the decisive limit is the one that makes the client wait
/// longest, so `retry_after` is never earlier than a retry that succeeds. On
/// admission it is the limit with the fewest requests left.
pub(crate) fn decide(limits: &[Limit], state: &mut [u64], now: u64, cost: u32) -> Decision {
    let cost = u64::from(cost.max(1));
    if let [only] = limits {
        // One limit, the common case: no search for the decisive one.
        let slots = only.state_mut(state);
        return match only.kind.judge(slots, now, cost) {
            Verdict::Refuse { wait, busy } => refused(only.quota, wait, busy),
            Verdict::Admit { remaining, reset } => {
                only.kind.commit(slots, now, cost);
                admitted(only.quota, remaining, reset)
            }
        };
    }
    let mut refusal: Option<(Quota, u64, u64)> = None;
    let mut tightest: Option<(Quota, u32, u64)> = None;
    for limit in limits {
        match limit.kind.judge(limit.state(state), now, cost) {
            Verdict::Refuse { wait, busy } => {
                if refusal.is_none_or(|(_, longest, _)| wait > longest) {
                    refusal = Some((limit.quota, wait, busy));
                }
            }
            Verdict::Admit { remaining, reset } => {
                if tightest.is_none_or(|(_, fewest, _)| remaining < fewest) {
                    tightest = Some((limit.quota, remaining, reset));
                }
            }
        }
    }
    if let Some((quota, wait, busy)) = refusal {
        return refused(quota, wait, busy);
    }
    for limit in limits {
        limit.kind.commit(limit.state_mut(state), now, cost);
    }
    match tightest {
        Some((quota, remaining, reset)) => admitted(quota, remaining, reset),
        None => Decision::unlimited(),
    }
}

/// A refusal by `quota`: a retry succeeds in `wait` ns, and the client's
/// state is whole again in `busy` ns.
fn refused(quota: Quota, wait: u64, busy: u64) -> Decision {
    Decision {
        allowed: false,
        quota,
        remaining: 0,
        reset_after: Duration::from_nanos(busy),
        retry_after: Duration::from_nanos(wait),
    }
}

/// An admission with `remaining` requests left under the tightest quota,
/// whole again in `reset` ns.
fn admitted(quota: Quota, remaining: u32, reset: u64) -> Decision {
    Decision {
        allowed: true,
        quota,
        remaining,
        reset_after: Duration::from_nanos(reset),
        retry_after: Duration::ZERO,
    }
}

/// The state of a client without counting a request: requests left and time
/// until the decisive limit is whole again.
pub(crate) fn peek(limits: &[Limit], state: &[u64], now: u64) -> Decision {
    let mut tightest: Option<(Quota, u32, u64)> = None;
    for limit in limits {
        if let Verdict::Admit { remaining, reset } = limit.kind.judge(limit.state(state), now, 0) {
            if tightest.is_none_or(|(_, fewest, _)| remaining < fewest) {
                tightest = Some((limit.quota, remaining, reset));
            }
        }
    }
    match tightest {
        Some((quota, remaining, reset)) => Decision {
            allowed: remaining > 0,
            quota,
            remaining,
            reset_after: Duration::from_nanos(reset),
            retry_after: Duration::ZERO,
        },
        None => Decision::unlimited(),
    }
}

/// Takes back a request that [`decide`] admitted at `now`, when a later check
/// of the same request refused it.
pub(crate) fn undo(limits: &[Limit], state: &mut [u64], now: u64, cost: u32) {
    let cost = u64::from(cost.max(1));
    for limit in limits {
        limit.kind.undo(limit.state_mut(state), now, cost);
    }
}

/// Whether a state can be forgotten: a new client would be treated the same.
pub(crate) fn is_idle(limits: &[Limit], state: &[u64], now: u64) -> bool {
    limits.iter().all(|limit| match limit.kind {
        Kind::Gcra { .. } => limit.state(state)[0] <= now,
        Kind::Strict { period, .. } => limit
            .state(state)
            .iter()
            .all(|stamp| *stamp == 0 || *stamp - 1 + period <= now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const MINUTE: u64 = 60 * SECOND;

    fn setup(quotas: &[Quota]) -> (Box<[Limit]>, Vec<u64>) {
        let (limits, slots) = layout(quotas);
        (limits, vec![0; slots])
    }

    fn per(count: u32, secs: u64) -> Quota {
        Quota::new(count, Duration::from_secs(secs))
    }

    #[test]
    fn a_burst_of_n_then_one_per_interval() {
        let (limits, mut state) = setup(&[per(3, 3)]);
        for remaining in [2, 1, 0] {
            let decision = decide(&limits, &mut state, 0, 1);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
        }
        let refused = decide(&limits, &mut state, 0, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset_after, Duration::from_secs(3));
        assert!(!decide(&limits, &mut state, SECOND - 1, 1).allowed);
        assert!(decide(&limits, &mut state, SECOND, 1).allowed);
        assert!(!decide(&limits, &mut state, SECOND, 1).allowed);
    }

    #[test]
    fn gcra_can_admit_2n_minus_1_in_one_window() {
        // 5/hour: 5 at once, then one every 12 minutes: 9 within the first hour.
        let (limits, mut state) = setup(&[per(5, 3600)]);
        let mut admitted = Vec::new();
        for minute in 0..60 {
            while decide(&limits, &mut state, minute * MINUTE, 1).allowed {
                admitted.push(minute);
            }
        }
        assert_eq!(admitted, [0, 0, 0, 0, 0, 12, 24, 36, 48]);
    }

    #[test]
    fn strict_admits_at_most_n_in_any_window() {
        let (limits, mut state) = setup(&[per(5, 3600).strict()]);
        let mut admitted = Vec::new();
        for minute in 0..180 {
            while decide(&limits, &mut state, minute * MINUTE, 1).allowed {
                admitted.push(minute);
            }
        }
        assert_eq!(
            admitted,
            [0, 0, 0, 0, 0, 60, 60, 60, 60, 60, 120, 120, 120, 120, 120]
        );
        // Any 60-minute window holds at most 5.
        for start in 0..180 {
            let in_window = admitted
                .iter()
                .filter(|m| (start..start + 60).contains(*m))
                .count();
            assert!(
                in_window <= 5,
                "{in_window} in the window from minute {start}"
            );
        }
    }

    #[test]
    fn strict_retry_after_is_when_the_oldest_request_leaves_the_window() {
        let (limits, mut state) = setup(&[per(2, 60).strict()]);
        assert!(decide(&limits, &mut state, 0, 1).allowed);
        assert!(decide(&limits, &mut state, 10 * SECOND, 1).allowed);
        let refused = decide(&limits, &mut state, 20 * SECOND, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(40));
        assert!(!decide(&limits, &mut state, 60 * SECOND - 1, 1).allowed);
        assert!(decide(&limits, &mut state, 60 * SECOND, 1).allowed);
    }

    #[test]
    fn burst_and_cost_change_the_shape() {
        // 1/second with a burst of 3.
        let (limits, mut state) = setup(&[per(1, 1).with_burst(3)]);
        for _ in 0..3 {
            assert!(decide(&limits, &mut state, 0, 1).allowed);
        }
        assert!(!decide(&limits, &mut state, 0, 1).allowed);

        // A request of cost 4 uses 4 of 10.
        let (limits, mut state) = setup(&[per(10, 60)]);
        assert_eq!(decide(&limits, &mut state, 0, 4).remaining, 6);
        assert_eq!(decide(&limits, &mut state, 0, 4).remaining, 2);
        let refused = decide(&limits, &mut state, 0, 4);
        assert!(!refused.allowed);
        // Two more intervals (12 s) make room for 4.
        assert_eq!(refused.retry_after, Duration::from_secs(12));
    }

    #[test]
    fn a_refusal_by_one_limit_consumes_nothing_from_the_others() {
        let (limits, mut state) = setup(&[per(10, 60), per(1, 1), per(3, 60).strict()]);
        assert!(decide(&limits, &mut state, 0, 1).allowed);
        let before = state.clone();
        for _ in 0..5 {
            assert!(!decide(&limits, &mut state, 0, 1).allowed);
        }
        assert_eq!(state, before);
    }

    #[test]
    fn undo_takes_back_an_admission() {
        let (limits, mut state) = setup(&[per(2, 60), per(2, 60).strict()]);
        assert!(decide(&limits, &mut state, 5, 1).allowed);
        let before = state.clone();
        assert!(decide(&limits, &mut state, 7, 1).allowed);
        undo(&limits, &mut state, 7, 1);
        assert_eq!(state, before);
        assert_eq!(decide(&limits, &mut state, 7, 1).remaining, 0);
    }

    #[test]
    fn the_longest_wait_decides_a_refusal() {
        let (limits, mut state) = setup(&[per(1, 1), per(1, 60)]);
        assert!(decide(&limits, &mut state, 0, 1).allowed);
        let refused = decide(&limits, &mut state, 0, 1);
        assert_eq!(refused.retry_after, Duration::from_secs(60));
    }

    #[test]
    fn state_is_idle_once_nothing_is_pending() {
        let (limits, mut state) = setup(&[per(2, 2), per(1, 10).strict()]);
        decide(&limits, &mut state, 0, 1);
        assert!(!is_idle(&limits, &state, SECOND));
        assert!(is_idle(&limits, &state, 10 * SECOND));
    }
}
