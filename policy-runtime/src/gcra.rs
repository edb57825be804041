//! The limiting arithmetic, over several quotas at once, all or nothing: a
//! request is counted against every quota or against none.
//!
//! This module owns the arithmetic, the strict logs' memory budget and the
//! [`Decision`] it answers with; the rate-limit stores, the penalty box and
//! the API-key lockout share it. State lives in the caller, per client: one `u64` per GCRA quota and one [`Log`]
//! per strict quota, in nanoseconds on the store's clock.
//!
//! - A normal quota is GCRA (the generic cell rate algorithm): `N/period` has
//!   an emission interval `T = period / N` and a capacity of `burst * T`. A
//!   client may send `burst` requests at once, then one more every `T`. Its
//!   state is one theoretical arrival time (TAT). In a window of length
//!   `period`, up to `burst + N - 1` requests can pass (`2N - 1` by default).
//! - A strict quota keeps a log of its admission times still in the window,
//!   oldest first, and admits a request only if fewer than `N` fall in the
//!   last `period`: never more than `N` in any window of length `period`. The
//!   log grows with admissions (a client that made `k` requests holds `k`
//!   times, at most `N`); its entries count against the scope's [`LogBudget`].
//!   A refusal finds the entry whose expiry frees room by a binary search over
//!   the log, never a sort.
//! - A sliding quota (the `limits` library's sliding window counter) keeps
//!   two slots: the fixed window of its newest admission, and the counts of
//!   that window and the one before it. A request of cost `c` is admitted
//!   when `floor(previous × (period − elapsed) / period) + current + c <= N`:
//!   at most `N` per fixed window, at most `2N` in a window of length
//!   `period` that straddles two, exact for evenly spread traffic.
//!
//! A request admitted earlier can be given back ([`refund`]), for a limit
//! that counts only some responses.
//!
//! All arithmetic on configured values is checked: quotas outside the
//! supported range ([`Quota::validate`]) are refused by every validated path,
//! and one built by hand is enforced more strictly, never more leniently (a
//! capacity beyond the range is cut down to it; a time that would overflow
//! never comes).

use crate::Quota;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The admission times of one strict quota, oldest first.
pub(crate) type Log = VecDeque<u64>;

/// The longest GCRA capacity, in nanoseconds: [`Quota::MAX_PERIOD`]. A
/// capacity beyond it (only from a hand-built quota) is cut down to it.
const MAX_CAPACITY: u64 = Quota::MAX_PERIOD.as_secs() * 1_000_000_000;

/// A quota in the units the arithmetic works in, and where its state sits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub(crate) quota: Quota,
    kind: Kind,
    /// Index of the limit's state: its slot (GCRA) or its log (strict).
    offset: usize,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Gcra {
        interval: u64,
        capacity: u64,
    },
    Strict {
        period: u64,
        count: u64,
    },
    /// Two slots: the fixed window of the newest admission, plus one (zero
    /// for no state), and the counts of that window (low half) and of the
    /// one before it (high half).
    Sliding {
        period: u64,
        count: u64,
    },
}

/// How a scope's limits lay out their state: that many GCRA slots and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) slots: usize,
    pub(crate) logs: usize,
}

/// The limits of a scope, laid out over one slice of slots and one of logs.
pub(crate) fn layout(quotas: &[Quota]) -> (Box<[Limit]>, Layout) {
    let mut shape = Layout { slots: 0, logs: 0 };
    let limits = quotas
        .iter()
        .map(|quota| {
            let (kind, offset) = if quota.is_sliding() {
                let kind = Kind::Sliding {
                    period: nanos(quota.period()).max(1),
                    count: u64::from(quota.count()),
                };
                shape.slots += 2;
                (kind, shape.slots - 2)
            } else if quota.is_strict() {
                let kind = Kind::Strict {
                    period: nanos(quota.period()),
                    count: u64::from(quota.count()),
                };
                shape.logs += 1;
                (kind, shape.logs - 1)
            } else {
                let interval = nanos(quota.replenish_interval()).max(1);
                let capacity = interval
                    .checked_mul(u64::from(quota.burst()))
                    .map_or(MAX_CAPACITY, |capacity| capacity.min(MAX_CAPACITY));
                shape.slots += 1;
                (Kind::Gcra { interval, capacity }, shape.slots - 1)
            };
            Limit {
                quota: *quota,
                kind,
                offset,
            }
        })
        .collect();
    (limits, shape)
}

/// Nanoseconds; a duration beyond `u64` (584 years) is `u64::MAX`, a time
/// that never comes on the store's clock.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A bound on the strict-log entries of one scope, over all its clients.
///
/// Entries are counted as allocated (a log's capacity), so the bound holds
/// in bytes too: 8 bytes an entry. At the bound a request that would grow a
/// log is refused (stricter, never more lenient), and the first such refusal
/// is logged.
pub(crate) struct LogBudget {
    scope: Box<str>,
    used: AtomicUsize,
    cap: usize,
    warned: AtomicBool,
    /// Set by a refusal at the bound; the store takes it to sweep sooner.
    pressed: AtomicBool,
}

impl LogBudget {
    pub(crate) fn new(scope: &str, cap: usize) -> Self {
        LogBudget {
            scope: scope.into(),
            used: AtomicUsize::new(0),
            cap,
            warned: AtomicBool::new(false),
            pressed: AtomicBool::new(false),
        }
    }

    /// Takes `entries` from the budget, or says there is no room.
    fn take(&self, entries: usize) -> bool {
        if entries == 0 {
            return true;
        }
        let before = self.used.fetch_add(entries, Ordering::Relaxed);
        if before.saturating_add(entries) <= self.cap {
            return true;
        }
        self.used.fetch_sub(entries, Ordering::Relaxed);
        self.pressed.store(true, Ordering::Relaxed);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                policy = "rate_limit",
                scope = &*self.scope,
                cap = self.cap,
                "the strict limits of this scope hold as many timestamps as they may; requests that need one more are refused until some expire (raise it with MemoryStore::with_strict_log_cap)"
            );
        }
        false
    }

    /// Returns `entries` to the budget.
    pub(crate) fn give(&self, entries: usize) {
        if entries > 0 {
            self.used.fetch_sub(entries, Ordering::Relaxed);
        }
    }

    /// Entries held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether a request was refused at the bound since the last call.
    pub(crate) fn was_pressed(&self) -> bool {
        self.pressed.swap(false, Ordering::Relaxed)
    }
}

/// The entries the logs of one client hold, as allocated.
pub(crate) fn log_entries(logs: &[Log]) -> usize {
    logs.iter().map(VecDeque::capacity).sum()
}

/// What one limit says about one request.
enum Verdict {
    Admit { remaining: u32, reset: u64 },
    Refuse { wait: u64, busy: u64 },
}

/// How many entries at the front of `log` have left the window at `now`.
fn expired(log: &Log, period: u64, now: u64) -> usize {
    log.partition_point(|&stamp| stamp.saturating_add(period) <= now)
}

impl Limit {
    fn judge(&self, slots: &[u64], logs: &[Log], now: u64, cost: u64) -> Verdict {
        match self.kind {
            Kind::Gcra { interval, capacity } => {
                let start = slots[self.offset].max(now);
                let next = interval
                    .checked_mul(cost)
                    .and_then(|need| start.checked_add(need));
                match next {
                    Some(next) if next - now <= capacity => Verdict::Admit {
                        remaining: saturate((capacity - (next - now)) / interval),
                        reset: next - now,
                    },
                    _ => Verdict::Refuse {
                        wait: next.map_or(u64::MAX, |next| next - now - capacity),
                        busy: start - now,
                    },
                }
            }
            Kind::Strict { period, count } => {
                let log = &logs[self.offset];
                let gone = expired(log, period, now);
                let in_window = (log.len() - gone) as u64;
                if in_window + cost <= count {
                    return Verdict::Admit {
                        remaining: saturate(count - in_window - cost),
                        reset: period,
                    };
                }
                let after = |stamp: u64| stamp.saturating_add(period).saturating_sub(now);
                // The request fits once this many of the oldest have expired.
                let must_expire = in_window + cost - count;
                let wait = match must_expire.checked_sub(1).filter(|i| *i < in_window) {
                    Some(index) => after(log[gone + index as usize]),
                    // More than the count at once: never; say one period.
                    None => period,
                };
                Verdict::Refuse {
                    wait,
                    busy: log.back().map_or(period, |newest| after(*newest)),
                }
            }
            Kind::Sliding { period, count } => {
                let window = now / period;
                let elapsed = now - window * period;
                let (previous, current) = sliding_counts(&slots[self.offset..], window);
                let weighted = weighted(previous, period - elapsed, period) + current;
                if weighted + cost <= count {
                    return Verdict::Admit {
                        remaining: saturate(count - weighted - cost),
                        // Whole again once this window's count has aged out.
                        reset: 2 * period - elapsed,
                    };
                }
                let busy = match current {
                    0 => period - elapsed,
                    _ => 2 * period - elapsed,
                };
                let wait = match count.checked_sub(cost) {
                    // More than the count at once: never; say one period.
                    None => period,
                    Some(room) if current <= room => {
                        // Within this window, once the previous one's weight is low enough.
                        earliest(previous, room - current, period).saturating_sub(elapsed)
                    }
                    // In the next window, where this one's count is the previous.
                    Some(room) => (period - elapsed) + earliest(current, room, period),
                };
                Verdict::Refuse {
                    wait: wait.max(1),
                    busy,
                }
            }
        }
    }

    /// Drops the expired entries of a strict log, returning the memory of a
    /// log that shrank to a quarter of its allocation.
    fn prune(&self, logs: &mut [Log], now: u64, budget: &LogBudget) {
        if let Kind::Strict { period, .. } = self.kind {
            let log = &mut logs[self.offset];
            let gone = expired(log, period, now);
            log.drain(..gone);
            let before = log.capacity();
            if log.len() < before / 4 {
                log.shrink_to(log.len() * 2);
                budget.give(before - log.capacity());
            }
        }
    }

    /// The entries a strict log must add to its allocation to admit `cost`
    /// more (after [`Limit::prune`]): it doubles, up to its count.
    fn growth(&self, logs: &[Log], cost: u64) -> usize {
        match self.kind {
            Kind::Gcra { .. } | Kind::Sliding { .. } => 0,
            Kind::Strict { count, .. } => {
                let log = &logs[self.offset];
                let needed = log.len() + cost as usize;
                if needed <= log.capacity() {
                    return 0;
                }
                let grown = (log.capacity() * 2).clamp(needed, (count as usize).max(needed));
                grown - log.capacity()
            }
        }
    }

    fn commit(&self, slots: &mut [u64], logs: &mut [Log], now: u64, cost: u64) {
        match self.kind {
            Kind::Gcra { interval, .. } => {
                // Admitted, so this fits (see `judge`).
                let slot = &mut slots[self.offset];
                *slot = (*slot)
                    .max(now)
                    .saturating_add(interval.saturating_mul(cost));
            }
            Kind::Strict { .. } => {
                let log = &mut logs[self.offset];
                log.extend(std::iter::repeat_n(now, cost as usize));
            }
            Kind::Sliding { period, .. } => {
                let window = now / period;
                let state = &mut slots[self.offset..];
                let (previous, current) = sliding_counts(state, window);
                set_sliding(state, window, previous, current.saturating_add(cost));
            }
        }
    }

    fn undo(&self, slots: &mut [u64], logs: &mut [Log], now: u64, cost: u64) {
        match self.kind {
            Kind::Gcra { interval, .. } => {
                let slot = &mut slots[self.offset];
                *slot = slot.saturating_sub(interval.saturating_mul(cost));
            }
            Kind::Strict { .. } => {
                let log = &mut logs[self.offset];
                for _ in 0..cost {
                    if log.back() == Some(&now) {
                        log.pop_back();
                    }
                }
            }
            Kind::Sliding { period, .. } => {
                let window = now / period;
                let state = &mut slots[self.offset..];
                let (previous, current) = sliding_counts(state, window);
                set_sliding(state, window, previous, current.saturating_sub(cost));
            }
        }
    }

    /// Gives back `cost` that an earlier [`decide`] counted, at any time
    /// since: the count goes down by exactly `cost` (unless it aged out
    /// already). A GCRA time moves back by `cost` intervals; a strict log
    /// loses its newest `cost` entries (the request's own, or ones as recent
    /// as it when others came since, which leave the window later); a sliding
    /// counter loses `cost` from the window it was counted in, or from the
    /// newest window that holds it.
    fn refund(&self, slots: &mut [u64], logs: &mut [Log], cost: u64) {
        match self.kind {
            Kind::Gcra { interval, .. } => {
                let slot = &mut slots[self.offset];
                *slot = slot.saturating_sub(interval.saturating_mul(cost));
            }
            Kind::Strict { .. } => {
                let log = &mut logs[self.offset];
                let keep = log.len().saturating_sub(cost as usize);
                log.truncate(keep);
            }
            Kind::Sliding { .. } => {
                let state = &mut slots[self.offset..];
                let Some(window) = state[0].checked_sub(1) else {
                    return;
                };
                let (previous, current) = (state[1] >> 32, state[1] & u64::from(u32::MAX));
                let from_current = current.min(cost);
                let previous = previous.saturating_sub(cost - from_current);
                set_sliding(state, window, previous, current - from_current);
            }
        }
    }

    fn is_idle(&self, slots: &[u64], logs: &[Log], now: u64) -> bool {
        match self.kind {
            Kind::Gcra { .. } => slots[self.offset] <= now,
            Kind::Strict { period, .. } => logs[self.offset]
                .back()
                .is_none_or(|newest| newest.saturating_add(period) <= now),
            Kind::Sliding { period, .. } => {
                sliding_counts(&slots[self.offset..], now / period) == (0, 0)
            }
        }
    }
}

/// The counts of the previous and the current window at `window`, from a
/// sliding counter's two slots (see [`Kind::Sliding`]).
fn sliding_counts(state: &[u64], window: u64) -> (u64, u64) {
    let Some(stored) = state[0].checked_sub(1) else {
        return (0, 0);
    };
    let (previous, current) = (state[1] >> 32, state[1] & u64::from(u32::MAX));
    match window.checked_sub(stored) {
        // The same window, or a clock that went back: as stored.
        None | Some(0) => (previous, current),
        Some(1) => (current, 0),
        Some(_) => (0, 0),
    }
}

fn set_sliding(state: &mut [u64], window: u64, previous: u64, current: u64) {
    let half = |count: u64| count.min(u64::from(u32::MAX));
    state[0] = window.saturating_add(1);
    state[1] = (half(previous) << 32) | half(current);
}

/// The previous window's weight: its count times the share of it still in
/// the last period (`left` of `period`), rounded down as `limits` does.
fn weighted(previous: u64, left: u64, period: u64) -> u64 {
    (u128::from(previous) * u128::from(left) / u128::from(period)) as u64
}

/// How far into a window the previous one's `previous` requests weigh at
/// most `room`: the least `elapsed` with `weighted(previous, period -
/// elapsed, period) <= room`.
fn earliest(previous: u64, room: u64, period: u64) -> u64 {
    if previous == 0 {
        return 0;
    }
    // floor(previous × left / period) <= room  ⟺  previous × left < (room + 1) × period.
    let most_left = ((u128::from(room) + 1) * u128::from(period) - 1) / u128::from(previous);
    period.saturating_sub(u64::try_from(most_left).unwrap_or(u64::MAX))
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Decides one request of weight `cost` at `now` against `limits`, whose state
/// is `slots` and `logs` (zeros and empty logs for a new client). The state
/// changes only when every limit admits the request, apart from forgetting
/// expired log entries. A request that every limit admits but whose strict
/// logs would grow past `budget` is refused by the first strict limit, with
/// a wait of its period.
///
/// On a refusal the decisive limit is the one that makes the client wait
/// longest, so `retry_after` is never earlier than a retry that succeeds. On
/// admission it is the limit with the fewest requests left.
pub(crate) fn decide(
    limits: &[Limit],
    slots: &mut [u64],
    logs: &mut [Log],
    now: u64,
    cost: u32,
    budget: &LogBudget,
) -> Decision {
    let cost = u64::from(cost.max(1));
    // One GCRA limit, the common case: no search for the decisive limit.
    if let ([limit], true) = (limits, logs.is_empty()) {
        return match limit.judge(slots, logs, now, cost) {
            Verdict::Refuse { wait, busy } => refused(limit.quota, wait, busy),
            Verdict::Admit { remaining, reset } => {
                limit.commit(slots, logs, now, cost);
                admitted(limit.quota, remaining, reset)
            }
        };
    }
    let tightest = match judge_all(limits, slots, logs, now, cost) {
        Err(refusal) => return refusal,
        Ok(tightest) => tightest,
    };
    if !logs.is_empty() {
        for limit in limits {
            limit.prune(logs, now, budget);
        }
        let total: usize = limits.iter().map(|limit| limit.growth(logs, cost)).sum();
        if !budget.take(total) {
            // Only strict limits grow logs, so there is one.
            if let Some(strict) = limits
                .iter()
                .find(|limit| matches!(limit.kind, Kind::Strict { .. }))
            {
                let period = nanos(strict.quota.period());
                return refused(strict.quota, period, period);
            }
        }
        for limit in limits {
            let growth = limit.growth(logs, cost);
            if growth > 0 {
                let log = &mut logs[limit.offset];
                let before = log.capacity();
                log.reserve_exact(growth);
                // The allocator may round up: count what it gave.
                let extra = (log.capacity() - before).saturating_sub(growth);
                if extra > 0 {
                    budget.used.fetch_add(extra, Ordering::Relaxed);
                }
            }
        }
    }
    for limit in limits {
        limit.commit(slots, logs, now, cost);
    }
    match tightest {
        Some((quota, remaining, reset)) => admitted(quota, remaining, reset),
        None => Decision::unlimited(),
    }
}

/// Every limit's verdict on a request: the refusal with the longest wait, or
/// the admitting limit with the fewest requests left.
fn judge_all(
    limits: &[Limit],
    slots: &[u64],
    logs: &[Log],
    now: u64,
    cost: u64,
) -> Result<Option<(Quota, u32, u64)>, Decision> {
    let mut refusal: Option<(Quota, u64, u64)> = None;
    let mut tightest: Option<(Quota, u32, u64)> = None;
    for limit in limits {
        match limit.judge(slots, logs, now, cost) {
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
    match refusal {
        Some((quota, wait, busy)) => Err(refused(quota, wait, busy)),
        None => Ok(tightest),
    }
}

/// What [`decide`] would answer, without changing the state: a refusal, or
/// `None` when every limit would admit the request.
pub(crate) fn refusal(
    limits: &[Limit],
    slots: &[u64],
    logs: &[Log],
    now: u64,
    cost: u32,
) -> Option<Decision> {
    judge_all(limits, slots, logs, now, u64::from(cost.max(1))).err()
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
pub(crate) fn peek(limits: &[Limit], slots: &[u64], logs: &[Log], now: u64) -> Decision {
    let mut tightest: Option<(Quota, u32, u64)> = None;
    for limit in limits {
        if let Verdict::Admit { remaining, reset } = limit.judge(slots, logs, now, 0) {
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
/// of the same request refused it. A log keeps its allocation.
pub(crate) fn undo(limits: &[Limit], slots: &mut [u64], logs: &mut [Log], now: u64, cost: u32) {
    let cost = u64::from(cost.max(1));
    for limit in limits {
        limit.undo(slots, logs, now, cost);
    }
}

/// Gives back a request of weight `cost` that [`decide`] admitted earlier,
/// on a conditional limit whose response was not to be counted (see
/// `Limit::refund`).
pub(crate) fn refund(limits: &[Limit], slots: &mut [u64], logs: &mut [Log], cost: u32) {
    let cost = u64::from(cost.max(1));
    for limit in limits {
        limit.refund(slots, logs, cost);
    }
}

/// Whether a state can be forgotten: a new client would be treated the same.
pub(crate) fn is_idle(limits: &[Limit], slots: &[u64], logs: &[Log], now: u64) -> bool {
    limits.iter().all(|limit| limit.is_idle(slots, logs, now))
}

/// `count` events within `within` per client, over one strict log a client:
/// the strike log of the penalty box and the failure log of the API-key
/// lockout. A log holds at most `count` times; the owner bounds the clients.
pub(crate) struct EventLimit {
    limits: Box<[Limit]>,
    budget: LogBudget,
}

impl EventLimit {
    pub(crate) fn new(count: u32, within: Duration) -> Self {
        let (limits, _) = layout(&[Quota::new(count, within).strict()]);
        EventLimit {
            limits,
            // Unbounded: a log holds at most `count` times, and the owner
            // bounds its clients and counts them itself.
            budget: LogBudget::new("", usize::MAX),
        }
    }

    /// Records an event in `log` at `now`; says whether it is the `count`th
    /// within the window (the log is then emptied).
    pub(crate) fn hit(&self, log: &mut Log, now: u64) -> bool {
        let logs = std::slice::from_mut(log);
        let decision = decide(&self.limits, &mut [], logs, now, 1, &self.budget);
        let reached = !decision.allowed || decision.remaining == 0;
        if reached {
            log.clear();
            log.shrink_to_fit();
        }
        reached
    }

    /// How many more events `log` takes before the `count`th.
    pub(crate) fn left(&self, log: &Log, now: u64) -> u32 {
        peek(&self.limits, &[], std::slice::from_ref(log), now).remaining
    }

    /// Whether every event of `log` left the window.
    pub(crate) fn is_idle(&self, log: &Log, now: u64) -> bool {
        is_idle(&self.limits, &[], std::slice::from_ref(log), now)
    }
}

/// What a store decided for one request.
///
/// When several quotas apply, the decisive one is reported: the quota that
/// rejected, or else the one with the fewest requests left.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{Decision, Quota};
///
/// let decision = Decision {
///     allowed: false,
///     quota: Quota::new(5, Duration::from_secs(3600)),
///     remaining: 0,
///     reset_after: Duration::from_secs(3600),
///     retry_after: Duration::from_secs(720),
/// };
/// assert!(!decision.allowed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// The decisive quota.
    pub quota: Quota,
    /// Requests the decisive quota still admits after this one.
    pub remaining: u32,
    /// Time until the decisive quota is fully replenished.
    pub reset_after: Duration,
    /// When rejected, the time until a retry can succeed; zero otherwise.
    pub retry_after: Duration,
}

impl Decision {
    /// The decision when no quota applies.
    pub(crate) fn unlimited() -> Self {
        Decision {
            allowed: true,
            quota: Quota::new(u32::MAX, Duration::from_secs(1)),
            remaining: u32::MAX,
            reset_after: Duration::ZERO,
            retry_after: Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const MINUTE: u64 = 60 * SECOND;

    /// One client's state under some limits, with a budget of its own.
    struct Client {
        limits: Box<[Limit]>,
        slots: Vec<u64>,
        logs: Vec<Log>,
        budget: LogBudget,
    }

    impl Client {
        fn decide(&mut self, now: u64, cost: u32) -> Decision {
            decide(
                &self.limits,
                &mut self.slots,
                &mut self.logs,
                now,
                cost,
                &self.budget,
            )
        }

        fn undo(&mut self, now: u64, cost: u32) {
            undo(&self.limits, &mut self.slots, &mut self.logs, now, cost)
        }

        fn state(&self) -> (Vec<u64>, Vec<Log>) {
            (self.slots.clone(), self.logs.clone())
        }
    }

    fn setup(quotas: &[Quota]) -> Client {
        setup_with_budget(quotas, usize::MAX)
    }

    fn setup_with_budget(quotas: &[Quota], cap: usize) -> Client {
        let (limits, shape) = layout(quotas);
        Client {
            limits,
            slots: vec![0; shape.slots],
            logs: vec![Log::new(); shape.logs],
            budget: LogBudget::new("test", cap),
        }
    }

    fn per(count: u32, secs: u64) -> Quota {
        Quota::new(count, Duration::from_secs(secs))
    }

    #[test]
    fn a_burst_of_n_then_one_per_interval() {
        let mut client = setup(&[per(3, 3)]);
        for remaining in [2, 1, 0] {
            let decision = client.decide(0, 1);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
        }
        let refused = client.decide(0, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset_after, Duration::from_secs(3));
        assert!(!client.decide(SECOND - 1, 1).allowed);
        assert!(client.decide(SECOND, 1).allowed);
        assert!(!client.decide(SECOND, 1).allowed);
    }

    #[test]
    fn gcra_can_admit_2n_minus_1_in_one_window() {
        // 5/hour: 5 at once, then one every 12 minutes: 9 within the first hour.
        let mut client = setup(&[per(5, 3600)]);
        let mut admitted = Vec::new();
        for minute in 0..60 {
            while client.decide(minute * MINUTE, 1).allowed {
                admitted.push(minute);
            }
        }
        assert_eq!(admitted, [0, 0, 0, 0, 0, 12, 24, 36, 48]);
    }

    #[test]
    fn strict_admits_at_most_n_in_any_window() {
        let mut client = setup(&[per(5, 3600).strict()]);
        let mut admitted = Vec::new();
        for minute in 0..180 {
            while client.decide(minute * MINUTE, 1).allowed {
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
        let mut client = setup(&[per(2, 60).strict()]);
        assert!(client.decide(0, 1).allowed);
        assert!(client.decide(10 * SECOND, 1).allowed);
        let refused = client.decide(20 * SECOND, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(40));
        assert!(!client.decide(60 * SECOND - 1, 1).allowed);
        assert!(client.decide(60 * SECOND, 1).allowed);
    }

    #[test]
    fn burst_and_cost_change_the_shape() {
        // 1/second with a burst of 3.
        let mut client = setup(&[per(1, 1).with_burst(3)]);
        for _ in 0..3 {
            assert!(client.decide(0, 1).allowed);
        }
        assert!(!client.decide(0, 1).allowed);

        // A request of cost 4 uses 4 of 10.
        let mut client = setup(&[per(10, 60)]);
        assert_eq!(client.decide(0, 4).remaining, 6);
        assert_eq!(client.decide(0, 4).remaining, 2);
        let refused = client.decide(0, 4);
        assert!(!refused.allowed);
        // Two more intervals (12 s) make room for 4.
        assert_eq!(refused.retry_after, Duration::from_secs(12));
    }

    #[test]
    fn a_refusal_by_one_limit_consumes_nothing_from_the_others() {
        let mut client = setup(&[per(10, 60), per(1, 1), per(3, 60).strict()]);
        assert!(client.decide(0, 1).allowed);
        let before = client.state();
        for _ in 0..5 {
            assert!(!client.decide(0, 1).allowed);
        }
        assert_eq!(client.state(), before);
    }

    #[test]
    fn undo_takes_back_an_admission() {
        let mut client = setup(&[per(2, 60), per(2, 60).strict()]);
        assert!(client.decide(5, 1).allowed);
        let before = client.state();
        assert!(client.decide(7, 1).allowed);
        client.undo(7, 1);
        assert_eq!(client.state(), before);
        assert_eq!(client.decide(7, 1).remaining, 0);
    }

    #[test]
    fn the_longest_wait_decides_a_refusal() {
        let mut client = setup(&[per(1, 1), per(1, 60)]);
        assert!(client.decide(0, 1).allowed);
        let refused = client.decide(0, 1);
        assert_eq!(refused.retry_after, Duration::from_secs(60));
    }

    #[test]
    fn state_is_idle_once_nothing_is_pending() {
        let mut client = setup(&[per(2, 2), per(1, 10).strict()]);
        client.decide(0, 1);
        let idle = |now| is_idle(&client.limits, &client.slots, &client.logs, now);
        assert!(!idle(SECOND));
        assert!(idle(10 * SECOND));
    }

    #[test]
    fn a_strict_log_grows_with_admissions_and_forgets_expired_ones() {
        let mut client = setup(&[per(10_000, 86_400).strict()]);
        assert!(client.decide(0, 1).allowed);
        assert_eq!(client.logs[0].len(), 1);
        assert!(client.budget.used() <= 2, "{}", client.budget.used());
        for _ in 0..99 {
            assert!(client.decide(SECOND, 1).allowed);
        }
        assert_eq!(client.logs[0].len(), 100);
        assert!(client.budget.used() <= 200);
        assert_eq!(client.budget.used(), log_entries(&client.logs));
        // A day later, the next admission drops the expired ones.
        assert!(client.decide(86_400 * SECOND + SECOND, 1).allowed);
        assert_eq!(client.logs[0].len(), 1);
        assert_eq!(client.budget.used(), log_entries(&client.logs));
    }

    #[test]
    fn a_full_budget_refuses_instead_of_growing_a_log() {
        let mut client = setup_with_budget(&[per(100, 60).strict()], 4);
        for _ in 0..4 {
            assert!(client.decide(0, 1).allowed);
        }
        let refused = client.decide(0, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_secs(60));
        assert_eq!(client.logs[0].len(), 4);
        assert!(client.budget.was_pressed());
        // Once the entries expire, the log reuses its room.
        assert!(client.decide(60 * SECOND, 1).allowed);
    }

    #[test]
    fn out_of_range_quotas_built_by_hand_never_admit_more() {
        // A period beyond u64 nanoseconds: one request, then none.
        let mut client = setup(&[Quota::new(1, Duration::MAX)]);
        assert!(!client.decide(0, 1).allowed || !client.decide(0, 1).allowed);
        let mut client = setup(&[Quota::new(1, Duration::MAX).strict()]);
        assert!(client.decide(0, 1).allowed);
        let refused = client.decide(u64::MAX / 2, 1);
        assert!(!refused.allowed);
        // A burst whose capacity overflows: cut down to the longest period.
        let mut client = setup(&[per(1, 86_400).with_burst(220_000)]);
        let mut admitted = 0;
        while client.decide(0, 1).allowed {
            admitted += 1;
        }
        assert_eq!(admitted, 3_650);
    }

    #[test]
    fn sliding_weighs_the_previous_window_by_what_is_left_of_it() {
        // 10 per minute, windows [0, 60 s), [60 s, 120 s), ...
        let mut client = setup(&[per(10, 60).sliding()]);
        for remaining in (0..10).rev() {
            let decision = client.decide(0, 1);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
        }
        let refused = client.decide(0, 1);
        assert!(!refused.allowed);
        // Not before the next window, and there only once the 10 weigh 9.
        assert_eq!(refused.retry_after, Duration::from_nanos(60 * SECOND + 1));
        assert_eq!(refused.reset_after, Duration::from_secs(120));
        assert!(!client.decide(59 * SECOND, 1).allowed);
        // The previous window is whole at the boundary: floor(10 × 60/60) = 10.
        assert!(!client.decide(60 * SECOND, 1).allowed);
        // A nanosecond later it weighs floor(10 × (60 s - 1 ns) / 60 s) = 9.
        let one = client.decide(60 * SECOND + 1, 1);
        assert!(one.allowed);
        assert_eq!(one.remaining, 0);
        assert!(!client.decide(60 * SECOND + 1, 1).allowed);
        // Half way: the previous 10 weigh 5, with the 1 of this window 6.
        for remaining in (0..4).rev() {
            let decision = client.decide(90 * SECOND, 1);
            assert!(decision.allowed);
            assert_eq!(decision.remaining, remaining);
        }
        let refused = client.decide(90 * SECOND, 1);
        assert!(!refused.allowed);
        // The previous 10 weigh one less every 6 s: 4 a nanosecond later.
        assert_eq!(refused.retry_after, Duration::from_nanos(1));
        assert!(client.decide(90 * SECOND + 1, 1).allowed);
        let refused = client.decide(90 * SECOND + 1, 1);
        assert_eq!(refused.retry_after, Duration::from_secs(6));
        assert!(!client.decide(96 * SECOND, 1).allowed);
        assert!(client.decide(96 * SECOND + 1, 1).allowed);
        // One more every 6 s, until this window holds 10 by itself: then the
        // next request passes a nanosecond into the next window.
        assert!(client.decide(102 * SECOND + 1, 1).allowed);
        assert!(client.decide(108 * SECOND + 1, 1).allowed);
        assert!(client.decide(114 * SECOND + 1, 1).allowed);
        let refused = client.decide(115 * SECOND, 1);
        assert_eq!(refused.retry_after, Duration::from_nanos(5 * SECOND + 1));
        assert!(client.decide(120 * SECOND + 1, 1).allowed);
        // Two windows later nothing is left: a fresh client.
        assert!(!is_idle(
            &client.limits,
            &client.slots,
            &client.logs,
            179 * SECOND
        ));
        assert!(is_idle(
            &client.limits,
            &client.slots,
            &client.logs,
            240 * SECOND
        ));
        assert_eq!(client.decide(240 * SECOND, 1).remaining, 9);
    }

    #[test]
    fn sliding_admits_at_most_the_count_per_fixed_window_and_twice_it_in_any_window() {
        let mut client = setup(&[per(10, 60).sliding()]);
        let mut admitted = Vec::new();
        // A client that sends as much as it may, every second for 10 minutes.
        for second in 0..600 {
            while client.decide(second * SECOND, 1).allowed {
                admitted.push(second);
            }
        }
        for window in 0..10 {
            let inside = admitted
                .iter()
                .filter(|s| (window * 60..window * 60 + 60).contains(*s))
                .count();
            assert!(inside <= 10, "{inside} in fixed window {window}");
        }
        for start in 0..540 {
            let inside = admitted
                .iter()
                .filter(|s| (start..start + 60).contains(*s))
                .count();
            assert!(inside <= 20, "{inside} in the window from second {start}");
        }
        // Sustained, it is the count per period: 10 in the first minute,
        // then about 10 a minute.
        assert_eq!(admitted.iter().filter(|s| **s < 60).count(), 10);
        let last_five = admitted.iter().filter(|s| **s >= 300).count();
        assert!((45..=55).contains(&last_five), "{last_five} in 5 minutes");
    }

    #[test]
    fn sliding_worst_case_is_twice_the_count_across_a_boundary() {
        // 10 at the very end of one window, then as many as admitted just
        // before the end of the next: 20 within a minute, never more.
        let mut client = setup(&[per(10, 60).sliding()]);
        let late = 60 * SECOND - 1;
        while client.decide(late, 1).allowed {}
        let edge = 120 * SECOND - 1;
        let mut second = 0;
        while client.decide(edge, 1).allowed {
            second += 1;
        }
        // floor(10 × 1 ns / 60 s) = 0: the previous window weighs nothing.
        assert_eq!(second, 10);
    }

    #[test]
    fn sliding_undo_and_refund_take_back_exactly_the_cost() {
        let mut client = setup(&[per(3, 60).sliding()]);
        assert!(client.decide(0, 2).allowed);
        client.undo(0, 2);
        assert_eq!(client.decide(0, 3).remaining, 0);
        refund(&client.limits, &mut client.slots, &mut client.logs, 1);
        assert_eq!(client.decide(10 * SECOND, 1).remaining, 0);
        assert!(!client.decide(10 * SECOND, 1).allowed);
        // In the next window the count is the previous one's: a refund takes
        // from it once the newest window holds nothing.
        let mut client = setup(&[per(2, 60).sliding()]);
        assert!(client.decide(0, 1).allowed);
        assert!(client.decide(0, 1).allowed);
        refund(&client.limits, &mut client.slots, &mut client.logs, 1);
        refund(&client.limits, &mut client.slots, &mut client.logs, 1);
        assert_eq!(client.state().0[1], 0);
        assert!(client.decide(0, 2).allowed);
    }

    #[test]
    fn sliding_keeps_two_slots_and_no_log() {
        let (_, shape) = layout(&[per(10_000, 3600).sliding()]);
        assert_eq!(shape, Layout { slots: 2, logs: 0 });
        let (_, shape) = layout(&[per(10, 60), per(10_000, 3600).sliding()]);
        assert_eq!(shape, Layout { slots: 3, logs: 0 });
    }
}
