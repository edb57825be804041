//! GCRA (the generic cell rate algorithm) over several quotas at once, all or
//! nothing: a request is counted against every quota or against none.
//!
//! This module owns the arithmetic only: theoretical arrival times (TATs) in
//! nanoseconds on a store's clock. A quota `N/period` has an emission interval
//! `T = period / N` and a capacity of `N * T`: a client may send `N` requests
//! at once, then one more every `T`. State lives in the caller.

use super::store::Decision;
use crate::Quota;
use std::time::Duration;

/// A quota in the units GCRA works in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub(crate) quota: Quota,
    interval: u64,
    capacity: u64,
}

impl Limit {
    pub(crate) fn new(quota: Quota) -> Self {
        let interval = u64::try_from(quota.replenish_interval().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            quota,
            interval,
            capacity: interval.saturating_mul(u64::from(quota.count())),
        }
    }
}

/// Decides one request at `now` against `limits`, with `tats[i]` the state of
/// `limits[i]` (0 when the client is new). The state changes only when every
/// limit admits the request.
///
/// On a refusal the decisive limit is the one that makes the client wait
/// longest, so `retry_after` is never earlier than a retry that succeeds. On
/// admission it is the limit with the fewest requests left.
pub(crate) fn decide(limits: &[Limit], tats: &mut [u64], now: u64) -> Decision {
    debug_assert_eq!(limits.len(), tats.len());
    let mut refused: Option<(Limit, u64, u64)> = None; // limit, wait, busy-until
    let mut tightest: Option<(Limit, u32, u64)> = None; // limit, remaining, reset
    for (limit, tat) in limits.iter().zip(tats.iter()) {
        let start = (*tat).max(now);
        let next = start.saturating_add(limit.interval);
        let horizon = now.saturating_add(limit.capacity);
        if next > horizon {
            let wait = next - horizon;
            if refused.is_none_or(|(_, longest, _)| wait > longest) {
                refused = Some((*limit, wait, start - now));
            }
        } else {
            let remaining = u32::try_from((horizon - next) / limit.interval).unwrap_or(u32::MAX);
            if tightest.is_none_or(|(_, fewest, _)| remaining < fewest) {
                tightest = Some((*limit, remaining, next - now));
            }
        }
    }
    if let Some((limit, wait, busy)) = refused {
        return Decision {
            allowed: false,
            quota: limit.quota,
            remaining: 0,
            reset_after: Duration::from_nanos(busy),
            retry_after: Duration::from_nanos(wait),
        };
    }
    for (limit, tat) in limits.iter().zip(tats.iter_mut()) {
        *tat = (*tat).max(now).saturating_add(limit.interval);
    }
    match tightest {
        Some((limit, remaining, reset)) => Decision {
            allowed: true,
            quota: limit.quota,
            remaining,
            reset_after: Duration::from_nanos(reset),
            retry_after: Duration::ZERO,
        },
        // No limit at all: nothing to count against.
        None => Decision {
            allowed: true,
            quota: Quota::new(u32::MAX, Duration::from_secs(1)),
            remaining: u32::MAX,
            reset_after: Duration::ZERO,
            retry_after: Duration::ZERO,
        },
    }
}

/// Whether a state can be forgotten: every TAT is in the past, so a new client
/// would be treated the same.
pub(crate) fn is_idle(tats: &[u64], now: u64) -> bool {
    tats.iter().all(|tat| *tat <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn limits_of(quotas: &[(u32, u64)]) -> Vec<Limit> {
        quotas
            .iter()
            .map(|(count, secs)| Limit::new(Quota::new(*count, Duration::from_secs(*secs))))
            .collect()
    }

    #[test]
    fn a_burst_of_n_then_one_per_interval() {
        let limits = limits_of(&[(3, 3)]);
        let mut tats = [0];
        for remaining in [2, 1, 0] {
            let decision = decide(&limits, &mut tats, 0);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
        }
        let refused = decide(&limits, &mut tats, 0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset_after, Duration::from_secs(3));
        assert!(!decide(&limits, &mut tats, SECOND - 1).allowed);
        assert!(decide(&limits, &mut tats, SECOND).allowed);
        assert!(!decide(&limits, &mut tats, SECOND).allowed);
    }

    #[test]
    fn a_refusal_by_one_limit_consumes_nothing_from_the_others() {
        let limits = limits_of(&[(10, 60), (1, 1)]);
        let mut tats = [0, 0];
        assert!(decide(&limits, &mut tats, 0).allowed);
        let before = tats;
        for _ in 0..5 {
            assert!(!decide(&limits, &mut tats, 0).allowed);
        }
        assert_eq!(tats, before);
        let decision = decide(&limits, &mut tats, SECOND);
        assert!(decision.allowed);
        // 10/minute has had exactly two requests.
        assert_eq!(decision.quota.count(), 1);
        let minute = decide(&limits_of(&[(10, 60)]), &mut [tats[0]], SECOND);
        assert_eq!(minute.remaining, 7);
    }

    #[test]
    fn the_longest_wait_decides_a_refusal() {
        let limits = limits_of(&[(1, 1), (1, 60)]);
        let mut tats = [0, 0];
        assert!(decide(&limits, &mut tats, 0).allowed);
        let refused = decide(&limits, &mut tats, 0);
        assert_eq!(refused.quota.count(), 1);
        assert_eq!(refused.retry_after, Duration::from_secs(60));
    }

    #[test]
    fn state_is_idle_once_every_tat_has_passed() {
        let limits = limits_of(&[(2, 2)]);
        let mut tats = [0];
        decide(&limits, &mut tats, 0);
        assert!(!is_idle(&tats, 0));
        assert!(is_idle(&tats, SECOND));
    }
}
