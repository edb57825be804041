//! Metrics of requests and policy decisions, recorded through the `metrics`
//! facade, and [`Metrics`], the Prometheus recorder (feature `prometheus`).
//!
//! This module owns the metric names and labels and the few functions every
//! other module calls to record: [`decision`], [`store_error`] and
//! `request` (for the `RequestLayer`). They record into whatever `metrics`
//! recorder is in effect: one the application installed, the Prometheus
//! recorder of [`Metrics::install`], or none, and then nothing is kept.
//!
//! A handle is registered with the recorder once per label set and thread,
//! and kept, so that recording costs a lookup in a per-thread map and no
//! allocation; when the recorder in effect changes, the handles are
//! registered again with the new one.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `http_requests_total` | counter | `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route` |
//! | `policy_decisions_total` | counter | `policy` (`rate_limit`, `api_key`), `outcome` (`allow`, `deny`, `exempt`), `reason`, `scope` |
//! | `policy_store_errors_total` | counter | `store` |
//!
//! `outcome` takes the words of the decision's log event. `reason` is `none`
//! when allowed; `limit_exceeded`, `blocked` (a penalty) or `missing_key`
//! for a denied rate limit; `missing`, `invalid`, `expired`, `revoked`,
//! `insufficient_scope` or `locked_out` for a denied API key;
//! `exempt_client` for an exempt one. `scope` is the rate-limit scope, or the
//! handler for API keys.

#[cfg(feature = "prometheus")]
mod prometheus;

#[cfg(feature = "prometheus")]
pub use prometheus::{Metrics, MetricsError};

use ::metrics::{Counter, Key, Label, Level, Metadata, Recorder};
use foldhash::fast::FixedState;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;

/// Where the handles this crate registers come from, for recorders that
/// filter or group by it.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Handles registered with one recorder, kept per thread.
///
/// A handle is found by its static labels (`K`, made of the addresses of
/// `&'static str`s, which never change), and the address and length of its
/// one label of run-time text (a scope or a route), so that a lookup hashes
/// a few words and never the text; the text is kept and compared, so that
/// another text at the same address (after the first was freed) is
/// registered anew rather than counted under the old label.
struct Registered<K, V> {
    /// The address of the recorder the handles belong to.
    recorder: usize,
    handles: HashMap<HandleKey<K>, (Box<str>, V), FixedState>,
}

/// The static labels, then the address and length of the text label.
type HandleKey<K> = (K, usize, usize);

impl<K, V> Registered<K, V> {
    const fn new() -> Self {
        Registered {
            recorder: 0,
            // Fixed seed: the keys are addresses of this process's own
            // strings, never chosen by a client.
            handles: HashMap::with_hasher(FixedState::with_seed(0x5EED)),
        }
    }
}

impl<K: Copy + Eq + Hash, V> Registered<K, V> {
    /// Runs `record` on the handle of `labels` and `text`, registered with
    /// `recorder` on first use. A different recorder than last time drops
    /// every handle.
    fn record(
        &mut self,
        recorder: &dyn Recorder,
        labels: K,
        text: &str,
        register: impl FnOnce(&dyn Recorder) -> V,
        record: impl FnOnce(&V),
    ) {
        let address = recorder_address(recorder);
        if self.recorder != address {
            self.handles.clear();
            self.recorder = address;
        }
        let key = (labels, text.as_ptr() as usize, text.len());
        match self.handles.get(&key) {
            Some((held, handle)) if **held == *text => return record(handle),
            _ => {}
        }
        let handle = register(recorder);
        record(&handle);
        self.handles.insert(key, (text.into(), handle));
    }
}

/// Identifies a recorder by its address: the global recorder lives as long
/// as the process, and a local one as long as the closure or guard that set
/// it.
fn recorder_address(recorder: &dyn Recorder) -> usize {
    (recorder as *const dyn Recorder).cast::<()>() as usize
}

/// The address of a static label value, its identity in [`Registered`].
fn id(label: &'static str) -> usize {
    label.as_ptr() as usize
}

/// The labels of `policy_decisions_total` but the scope, by address.
type DecisionLabels = (usize, usize, usize);

thread_local! {
    static DECISIONS: RefCell<Registered<DecisionLabels, Counter>> =
        const { RefCell::new(Registered::new()) };
}

/// Counts one policy decision in `policy_decisions_total`: `policy`
/// (`rate_limit`, `api_key`, `jwt`), its `outcome` (`allow`, `deny`, `exempt`, as
/// the decision's log event says), the `reason` (`none` when allowed) and
/// the `scope` (the rate-limit scope, or the handler for API keys). The one
/// place policies record decisions; call it next to the decision's log event.
// Out of line: four call sites on the request path stay small.
#[inline(never)]
pub(crate) fn decision(
    policy: &'static str,
    outcome: &'static str,
    reason: &'static str,
    scope: &str,
) {
    let register = |recorder: &dyn Recorder| {
        let labels = vec![
            Label::from_static_parts("policy", policy),
            Label::from_static_parts("outcome", outcome),
            Label::from_static_parts("reason", reason),
            Label::new("scope", scope.to_owned()),
        ];
        let key = Key::from_parts("policy_decisions_total", labels);
        recorder.register_counter(&key, &METADATA)
    };
    let increment = |counter: &Counter| counter.increment(1);
    ::metrics::with_recorder(|recorder| {
        DECISIONS.with(|cache| match cache.try_borrow_mut() {
            Ok(mut cache) => {
                let labels = (id(policy), id(outcome), id(reason));
                cache.record(recorder, labels, scope, register, increment)
            }
            // Only a recorder that records a decision while registering one
            // gets here: count without the cache.
            Err(_) => increment(&register(recorder)),
        })
    });
}

/// Counts one failure of a store backend to answer.
#[inline]
pub(crate) fn store_error(store: &'static str) {
    ::metrics::counter!("policy_store_errors_total", "store" => store).increment(1);
}

#[cfg(feature = "request-layer")]
pub(crate) use request::{method_label, request};

/// The request metrics of the `RequestLayer`.
#[cfg(feature = "request-layer")]
mod request {
    use super::{METADATA, Registered, id};
    use ::metrics::{Counter, Histogram, Key, Label, Recorder};
    use axum::http::{Method, StatusCode};
    use std::cell::RefCell;
    use std::time::Duration;

    /// A request's counter and histogram, by method (its address) and
    /// status, then route.
    type Handles = Registered<(usize, StatusCode), (Counter, Histogram)>;

    thread_local! {
        static REQUESTS: RefCell<Handles> = const { RefCell::new(Registered::new()) };
    }

    /// Counts one finished request and its latency: `method` is
    /// [`method_label`]'s, `route` the matched route (or `unmatched`).
    pub(crate) fn request(
        method: &'static str,
        route: &str,
        status: StatusCode,
        latency: Duration,
    ) {
        let register = |recorder: &dyn Recorder| {
            let method = Label::from_static_parts("method", method);
            let route = Label::new("route", route.to_owned());
            let status = Label::new("status", status.as_str().to_owned());
            let total = Key::from_parts(
                "http_requests_total",
                vec![method.clone(), route.clone(), status],
            );
            let duration = Key::from_parts("http_request_duration_seconds", vec![method, route]);
            (
                recorder.register_counter(&total, &METADATA),
                recorder.register_histogram(&duration, &METADATA),
            )
        };
        let record = |(total, duration): &(Counter, Histogram)| {
            total.increment(1);
            duration.record(latency.as_secs_f64());
        };
        ::metrics::with_recorder(|recorder| {
            REQUESTS.with(|cache| match cache.try_borrow_mut() {
                Ok(mut cache) => {
                    cache.record(recorder, (id(method), status), route, register, record)
                }
                Err(_) => record(&register(recorder)),
            })
        });
    }

    /// Standard methods as static labels; any other method is `other`, so a
    /// client cannot grow the label set.
    pub(crate) fn method_label(method: &Method) -> &'static str {
        match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::DELETE => "DELETE",
            Method::PATCH => "PATCH",
            Method::HEAD => "HEAD",
            Method::OPTIONS => "OPTIONS",
            Method::CONNECT => "CONNECT",
            Method::TRACE => "TRACE",
            _ => "other",
        }
    }
}
