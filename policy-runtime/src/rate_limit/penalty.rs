//! [`Penalty`]: blocking clients that keep hitting 429.
//!
//! This module owns the strike log and the block list. A client that is
//! refused `strikes` times within `within` is blocked for `block_for`: every
//! rate-limited request it makes gets a 429 until then. Each block is logged
//! once, when it starts.

use super::gcra::{self, Limit};
use super::store::ClientKey;
use crate::Quota;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Blocks a client that keeps hitting its limits.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{Engine, Penalty};
///
/// // Ten 429s within a minute block the client for fifteen minutes.
/// let engine = Engine::builder()
///     .penalty(Penalty::new(10, Duration::from_secs(60), Duration::from_secs(900)))
///     .build()
///     .unwrap();
/// # drop(engine);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Penalty {
    strikes: u32,
    within: Duration,
    block_for: Duration,
}

impl Penalty {
    /// Block for `block_for` after `strikes` refusals within `within`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let penalty = policy_runtime::Penalty::new(5, Duration::from_secs(60), Duration::from_secs(600));
    /// assert_eq!(penalty.block_for(), Duration::from_secs(600));
    /// ```
    pub fn new(strikes: u32, within: Duration, block_for: Duration) -> Self {
        Self {
            strikes: strikes.max(1),
            within,
            block_for,
        }
    }

    /// How long a block lasts.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let penalty = policy_runtime::Penalty::new(5, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(penalty.block_for().as_secs(), 30);
    /// ```
    pub fn block_for(&self) -> Duration {
        self.block_for
    }
}

struct Record {
    strikes: Box<[u64]>,
    blocked_until: u64,
}

/// The strike logs and blocks of one engine.
pub(crate) struct PenaltyBox {
    penalty: Penalty,
    limits: Box<[Limit]>,
    slots: usize,
    clients: DashMap<ClientKey, Record>,
    added: AtomicU64,
}

impl PenaltyBox {
    pub(crate) fn new(penalty: Penalty) -> Self {
        let strikes = Quota::new(penalty.strikes, penalty.within).strict();
        let (limits, slots) = gcra::layout(&[strikes]);
        Self {
            penalty,
            limits,
            slots,
            clients: DashMap::new(),
            added: AtomicU64::new(0),
        }
    }

    /// How much longer `key` is blocked, if it is.
    pub(crate) fn blocked(&self, key: &ClientKey, now: u64) -> Option<Duration> {
        let record = self.clients.get(key)?;
        (record.blocked_until > now).then(|| Duration::from_nanos(record.blocked_until - now))
    }

    /// Records a refusal of `key`; returns the block's length if this strike
    /// started one.
    pub(crate) fn strike(&self, key: &ClientKey, now: u64) -> Option<Duration> {
        let block = {
            let mut record = self.clients.entry(key.clone()).or_insert_with(|| Record {
                strikes: vec![0; self.slots].into_boxed_slice(),
                blocked_until: 0,
            });
            if record.blocked_until > now {
                return None;
            }
            let decision = gcra::decide(&self.limits, &mut record.strikes, now, 1);
            if decision.allowed && decision.remaining > 0 {
                None
            } else {
                let block_for =
                    u64::try_from(self.penalty.block_for.as_nanos()).unwrap_or(u64::MAX);
                record.blocked_until = now.saturating_add(block_for);
                record.strikes.fill(0);
                Some(self.penalty.block_for)
            }
        };
        if self.added.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.clients.retain(|_, record| {
                record.blocked_until > now || !gcra::is_idle(&self.limits, &record.strikes, now)
            });
        }
        block
    }

    /// Lifts a block and forgets the strikes of `key`.
    pub(crate) fn pardon(&self, key: &ClientKey) {
        self.clients.remove(key);
    }
}
