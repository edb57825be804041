//! Conditional counting (`count = failures`, `count = responses(fn)`):
//! what a request reserved before its handler ran, and giving it back after.
//!
//! This module owns the reservation of a request's conditional limits and
//! its settlement. A conditional limit is checked and counted before the
//! handler like any other (so a client over the limit is refused with 429
//! before the handler runs, and concurrent requests each hold a unit and
//! cannot overshoot the limit); once the response is known, the units of
//! the limits whose condition it does not meet are given back with
//! [`LimiterStore::refund`](super::store::LimiterStore::refund). The count
//! is then exactly the number of matching responses. A request whose
//! response never comes (the handler panicked, or the client went away and
//! the future was dropped) keeps its unit: stricter, never more lenient.

use super::spec::CountWhen;
use super::store::{ClientKey, LimitRequest};
use crate::{Engine, Quota};
use axum::http::StatusCode;
use smallvec::SmallVec;

/// One conditional limit that counted a request before its handler ran.
pub(crate) struct ReservedLimit {
    pub(crate) scope: &'static str,
    pub(crate) key: ClientKey,
    pub(crate) quotas: Box<[Quota]>,
    pub(crate) cost: u32,
    pub(crate) count: CountWhen,
    /// Whether the rate-limit headers of its run show one of its quotas, so
    /// that giving its units back shows in `remaining`.
    pub(crate) shown: bool,
}

/// What a handler's response has to settle, when anything: the conditional
/// limits' reservation, and whether its headers show the default-limits
/// layer's decision with its own (`add_to_defaults`). Boxed, and absent on
/// the common path.
#[derive(Default)]
pub(crate) struct AfterHandler {
    pub(crate) reservation: Option<Reservation>,
    pub(crate) shows_defaults: bool,
}

/// Every conditional limit a request reserved, with the engine whose store
/// counted them.
pub(crate) struct Reservation {
    engine: Engine,
    limits: Vec<ReservedLimit>,
}

impl Reservation {
    pub(crate) fn new(engine: Engine, limits: Vec<ReservedLimit>) -> Self {
        Reservation { engine, limits }
    }

    /// The store's requests of the limits that a response with `status`
    /// does not count, and the units that go back to the quota the headers
    /// show.
    fn refunds(&self, status: StatusCode) -> (SmallVec<[LimitRequest<'_>; 1]>, u32) {
        let mut shown = 0;
        let requests = self
            .limits
            .iter()
            .filter(|limit| !limit.count.counts(status))
            .inspect(|limit| {
                if limit.shown {
                    shown = shown.max(limit.cost);
                }
            })
            .map(|limit| LimitRequest {
                scope: limit.scope,
                key: &limit.key,
                quotas: &limit.quotas,
                cost: limit.cost,
            })
            .collect();
        (requests, shown)
    }

    /// Gives back what a response with `status` does not count; returns how
    /// many units went back to the quota the headers show.
    pub(crate) async fn settle(self, status: StatusCode) -> u32 {
        let (requests, shown) = self.refunds(status);
        if requests.is_empty() {
            return 0;
        }
        let answer = self.engine.inner.rate_limits.store.refund(&requests).await;
        self.settled(answer, &requests, status, shown)
    }

    /// [`Reservation::settle`] for a store that answers at once.
    pub(crate) fn settle_now(&self, status: StatusCode) -> u32 {
        let (requests, shown) = self.refunds(status);
        if requests.is_empty() {
            return 0;
        }
        let answer = self.engine.inner.rate_limits.store.refund(&requests).now();
        let answer = answer.unwrap_or_else(|| {
            Err(super::store::StoreError::new(
                "the rate-limit store said it answers at once but did not",
            ))
        });
        self.settled(answer, &requests, status, shown)
    }

    fn settled(
        &self,
        answer: Result<(), super::store::StoreError>,
        requests: &[LimitRequest<'_>],
        status: StatusCode,
        shown: u32,
    ) -> u32 {
        match answer {
            Ok(()) => {
                for request in requests {
                    tracing::debug!(
                        policy = "rate_limit",
                        scope = request.scope,
                        key_kind = request.key.kind(),
                        status = status.as_u16(),
                        cost = request.cost,
                        outcome = "not_counted",
                        "the response does not count against this limit; its reservation was given back"
                    );
                }
                shown
            }
            Err(error) => {
                tracing::error!(
                    policy = "rate_limit",
                    scope = requests[0].scope,
                    status = status.as_u16(),
                    outcome = "error",
                    %error,
                    "could not give back a conditional limit's reservation; the response counts"
                );
                0
            }
        }
    }
}
