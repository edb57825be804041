//! The [`LimiterStore`] trait: where rate-limit state lives.
//!
//! This module owns the contract between the policy and a backend: one call
//! per request that checks every quota of a scope for one client key. It knows
//! nothing of HTTP; the policy turns a [`Decision`] into headers and a 429.
//! It also owns the [`StrikeStore`] extension: where the strikes and blocks
//! of the API-key lockout and the penalty box live when a store shares them
//! between instances ([`LimiterStore::strike_store`]).

use crate::Quota;
pub(crate) use crate::gcra::Decision;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Who a limit counts against.
///
/// ```
/// use policy_runtime::ClientKey;
///
/// let key = ClientKey::Ip("192.0.2.7".parse().unwrap());
/// assert_eq!(key.to_string(), "ip:192.0.2.7");
/// assert_eq!(key.kind(), "ip");
/// assert_eq!(ClientKey::Global.to_string(), "global");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientKey {
    /// The client's IP address (IPv6 grouped by prefix).
    Ip(IpAddr),
    /// The name of the API key the request presented.
    ApiKey(Arc<str>),
    /// The value of a request header.
    Header(Arc<str>),
    /// A key from an application's key function.
    Custom(Arc<str>),
    /// The `sub` of the JWT that admitted the request (`key = subject`).
    Subject(Arc<str>),
    /// One claim of the JWT that admitted the request (`key = claim("..")`).
    Claim(Arc<str>),
    /// One bucket for every client.
    Global,
}

impl ClientKey {
    /// What the key is made of: `ip`, `api_key`, `header`, `custom`, `subject`, `claim` or `global`.
    ///
    /// ```
    /// use policy_runtime::ClientKey;
    ///
    /// assert_eq!(ClientKey::Custom("tenant-7".into()).kind(), "custom");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            ClientKey::Ip(_) => "ip",
            ClientKey::ApiKey(_) => "api_key",
            ClientKey::Header(_) => "header",
            ClientKey::Custom(_) => "custom",
            ClientKey::Subject(_) => "subject",
            ClientKey::Claim(_) => "claim",
            ClientKey::Global => "global",
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::Ip(ip) => write!(f, "ip:{ip}"),
            ClientKey::ApiKey(name) => write!(f, "api_key:{name}"),
            ClientKey::Header(value) => write!(f, "header:{value}"),
            ClientKey::Custom(value) => write!(f, "custom:{value}"),
            ClientKey::Subject(value) => write!(f, "subject:{value}"),
            ClientKey::Claim(value) => write!(f, "claim:{value}"),
            ClientKey::Global => f.write_str("global"),
        }
    }
}

/// One rate-limit check: every quota of `scope`, for one client.
///
/// A request may carry several checks (stacked `#[rate_limit]` attributes);
/// a store admits them all or none.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{ClientKey, LimitRequest, Quota};
///
/// let quotas = [Quota::new(20, Duration::from_secs(3600))];
/// let key = ClientKey::Ip("192.0.2.7".parse().unwrap());
/// let request = LimitRequest { scope: "app::score", key: &key, quotas: &quotas, cost: 1 };
/// assert_eq!(request.quotas[0].count(), 20);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LimitRequest<'a> {
    /// The limit's state name: by default the handler's module path and name.
    pub scope: &'a str,
    /// Who the request counts against.
    pub key: &'a ClientKey,
    /// Every quota that must admit the request.
    pub quotas: &'a [Quota],
    /// How many requests this one counts as (at least 1).
    pub cost: u32,
}

/// A backend could not answer a rate-limit check.
///
/// ```
/// use policy_runtime::StoreError;
///
/// let error = StoreError::new("connection refused");
/// assert_eq!(error.to_string(), "rate-limit store failed: connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store failed: {message}")]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// A store error with a message for the log (never sent to clients).
    ///
    /// ```
    /// use policy_runtime::StoreError;
    ///
    /// assert!(StoreError::new("timeout").to_string().contains("timeout"));
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The future a [`LimiterStore`] returns: a [`Decision`] unless said otherwise.
///
/// In-memory stores answer at once with [`StoreFuture::ready`], which costs no
/// allocation; networked stores box their future with [`StoreFuture::boxed`].
///
/// ```
/// use policy_runtime::{StoreError, StoreFuture};
///
/// # tokio_test_block(async {
/// let future: StoreFuture = StoreFuture::ready(Err(StoreError::new("down")));
/// let answer = future.await;
/// assert!(answer.is_err());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct StoreFuture<'a, T = Decision>(StoreFutureInner<'a, T>);

type BoxedAnswer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

enum StoreFutureInner<'a, T> {
    Ready(Option<Result<T, StoreError>>),
    Boxed(BoxedAnswer<'a, T>),
}

impl<'a, T> StoreFuture<'a, T> {
    /// An answer that is already known.
    ///
    /// ```
    /// use policy_runtime::{StoreError, StoreFuture};
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let future: StoreFuture<'_, u32> = StoreFuture::ready(Ok(7));
    ///     assert_eq!(future.await.unwrap(), 7);
    ///     let future: StoreFuture = StoreFuture::ready(Err(StoreError::new("not configured")));
    ///     assert_eq!(future.await.unwrap_err().to_string(), "rate-limit store failed: not configured");
    /// }
    /// ```
    pub fn ready(answer: Result<T, StoreError>) -> Self {
        Self(StoreFutureInner::Ready(Some(answer)))
    }

    /// An answer that needs I/O.
    ///
    /// ```
    /// use policy_runtime::{StoreError, StoreFuture};
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let future: StoreFuture<'_, u32> = StoreFuture::boxed(async { Ok(7) });
    ///     assert_eq!(future.await.unwrap(), 7);
    ///     let future: StoreFuture = StoreFuture::boxed(async { Err(StoreError::new("timeout")) });
    ///     assert!(future.await.is_err());
    /// }
    /// ```
    pub fn boxed(future: impl Future<Output = Result<T, StoreError>> + Send + 'a) -> Self {
        Self(StoreFutureInner::Boxed(Box::pin(future)))
    }
}

impl<T> StoreFuture<'_, T> {
    /// The answer without waiting: a ready answer as it is, a boxed future
    /// polled once; `None` if it would have to wait.
    pub(crate) fn now(self) -> Option<Result<T, StoreError>> {
        match self.0 {
            StoreFutureInner::Ready(answer) => answer,
            StoreFutureInner::Boxed(mut future) => {
                let waker = std::task::Waker::noop();
                match future.as_mut().poll(&mut Context::from_waker(waker)) {
                    Poll::Ready(answer) => Some(answer),
                    Poll::Pending => None,
                }
            }
        }
    }
}

impl<T: Unpin> Future for StoreFuture<'_, T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            StoreFutureInner::Ready(answer) => {
                Poll::Ready(answer.take().unwrap_or_else(|| {
                    Err(StoreError::new("store future polled after completion"))
                }))
            }
            StoreFutureInner::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

/// Where rate-limit state lives: in memory ([`crate::MemoryStore`]) or in a
/// shared backend.
///
/// A store checks every quota of a request in one call. The macros never name
/// a store; the [`crate::Engine`] holds one, so changing stores changes no
/// handler.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{ClientKey, Decision, LimitRequest, LimiterStore, StoreFuture};
///
/// /// A store that admits everything, e.g. for a load test.
/// struct Unlimited;
///
/// impl LimiterStore for Unlimited {
///     fn check<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a> {
///         let quota = requests[0].quotas[0];
///         StoreFuture::ready(Ok(Decision {
///             allowed: true,
///             quota,
///             remaining: quota.count(),
///             reset_after: Duration::ZERO,
///             retry_after: Duration::ZERO,
///         }))
///     }
///
///     fn peek<'a>(&'a self, _request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>> {
///         StoreFuture::ready(Ok(None))
///     }
///
///     fn reset<'a>(&'a self, _scope: &'a str, _key: &'a ClientKey) -> StoreFuture<'a, ()> {
///         StoreFuture::ready(Ok(()))
///     }
///
///     // Every answer above is `StoreFuture::ready`: checks never wait.
///     fn answers_at_once(&self) -> bool {
///         true
///     }
/// }
///
/// assert!(Unlimited.answers_at_once());
/// let engine = policy_runtime::Engine::builder().limiter_store(Unlimited).build().unwrap();
/// # drop(engine);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a rate-limit store",
    note = "implement `policy_runtime::LimiterStore` for it, or use `policy_runtime::MemoryStore`"
)]
pub trait LimiterStore: Send + Sync + 'static {
    /// Checks one request against every quota of every check and, only if all
    /// admit it, counts it against all of them. A refusal counts against none.
    ///
    /// The decision reports the decisive quota: on a refusal the one that
    /// makes the client wait longest, otherwise the one with the fewest
    /// requests left.
    fn check<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a>;

    /// A client's current state for one check, without counting a request:
    /// `None` when the store holds nothing for it (a new client).
    fn peek<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>>;

    /// Forgets a client's state in a scope, so its next request starts afresh.
    fn reset<'a>(&'a self, scope: &'a str, key: &'a ClientKey) -> StoreFuture<'a, ()>;

    /// Gives back requests that [`LimiterStore::check`] admitted and counted,
    /// for a limit that counts only some responses (`count = failures`): the
    /// request was counted before its handler ran, as a reservation, and its
    /// response turned out not to be one to count. Each request's `cost`
    /// goes back to every quota of its check, so that the count is exactly
    /// that of the responses that matched.
    ///
    /// The default gives nothing back and says so: a store that cannot take
    /// a request back counts every response of a conditional limit (stricter,
    /// never more lenient), and the engine logs the error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{ClientKey, LimitRequest, LimiterStore, MemoryStore, Quota};
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let store = MemoryStore::new();
    ///     let quotas = [Quota::new(1, Duration::from_secs(3600))];
    ///     let request = [LimitRequest { scope: "login", key: &ClientKey::Global, quotas: &quotas, cost: 1 }];
    ///     assert!(store.check(&request).await.unwrap().allowed);
    ///     assert!(!store.check(&request).await.unwrap().allowed);
    ///     store.refund(&request).await.unwrap();
    ///     assert!(store.check(&request).await.unwrap().allowed);
    /// }
    /// ```
    fn refund<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a, ()> {
        let _ = requests;
        StoreFuture::ready(Err(StoreError::new(
            "this rate-limit store cannot give a request back (it does not implement `LimiterStore::refund`), \
             so a conditional limit counts every response",
        )))
    }

    /// Whether every [`LimiterStore::check`] answers with
    /// [`StoreFuture::ready`], never waiting: then a handler's checks run to
    /// the end before its guard returns, and nothing is allocated for them.
    /// `false` by default; an in-process store without I/O says `true`.
    fn answers_at_once(&self) -> bool {
        false
    }

    /// Where the API-key lockout and the penalty box keep their strikes and
    /// blocks so that every instance sees them: `None` (the default) keeps
    /// them in each engine's memory, as with [`crate::MemoryStore`]. A store
    /// shared by several instances returns itself (see [`StrikeStore`]).
    /// The engine asks only a store that does not
    /// [answer at once](LimiterStore::answers_at_once): one that does lives
    /// in this process, with nothing to share.
    ///
    /// ```
    /// use policy_runtime::{LimiterStore, MemoryStore};
    ///
    /// assert!(MemoryStore::new().strike_store().is_none());
    /// ```
    fn strike_store(&self) -> Option<Arc<dyn StrikeStore>> {
        None
    }

    /// Whether the backend can answer now, for readiness probes
    /// ([`crate::Health::engine`]): an error names what is unreachable. An
    /// in-process store is always ready, the default.
    fn ready(&self) -> StoreFuture<'_, ()> {
        StoreFuture::ready(Ok(()))
    }
}

/// Which strikes a [`StrikeStore`] call is about: the API-key lockout's (per
/// client IP), or the penalty box's in one rate-limit scope.
///
/// ```
/// use policy_runtime::StrikeTable;
///
/// assert_eq!(StrikeTable::Lockout.name(), "lockout");
/// assert_eq!(StrikeTable::Penalty("app::search").name(), "penalty");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StrikeTable<'a> {
    /// Failed API-key attempts, by client IP.
    Lockout,
    /// Rate-limit refusals in one scope (a handler's path or a shared `scope = "..."`).
    Penalty(&'a str),
}

impl StrikeTable<'_> {
    /// `lockout` or `penalty`, for keys and logs.
    ///
    /// ```
    /// assert_eq!(policy_runtime::StrikeTable::Lockout.name(), "lockout");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            StrikeTable::Lockout => "lockout",
            StrikeTable::Penalty(_) => "penalty",
        }
    }
}

/// How strikes turn into a block: `strikes` of them within `within` block
/// the subject for `block_for`.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::StrikeRule;
///
/// let rule = StrikeRule { strikes: 5, within: Duration::from_secs(1800), block_for: Duration::from_secs(1800) };
/// assert_eq!(rule.strikes, 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrikeRule {
    /// How many strikes within `within` start a block (at least 1).
    pub strikes: u32,
    /// The window strikes are counted in.
    pub within: Duration,
    /// How long a block lasts.
    pub block_for: Duration,
}

/// A subject's strikes and block, as a [`StrikeStore`] answers.
///
/// ```
/// let state = policy_runtime::StrikeState::default();
/// assert_eq!((state.strikes, state.blocked_for, state.started), (0, None, false));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StrikeState {
    /// Strikes counted in the current window (0 while blocked: the count
    /// starts again when the block ends).
    pub strikes: u32,
    /// How much longer the subject is blocked, if it is.
    pub blocked_for: Option<Duration>,
    /// Whether the strike of this call started the block.
    pub started: bool,
}

/// Strikes and blocks kept where every instance of an app sees them: the
/// API-key lockout's failed attempts and the penalty box's refusals, for a
/// store that [`LimiterStore::strike_store`] returns.
///
/// Each call is one round trip for a networked store, and the engine makes
/// one only when something failed (a wrong key, a refused request) or an
/// operator asks: an admitted request never waits for one. When a call
/// fails, the lockout and the penalty box count in the engine's memory
/// instead and keep every block they already know of; a store that
/// [`fails_closed`](StrikeStore::fails_closed) has the failed attempt
/// answered `503` as well.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use policy_runtime::{ClientKey, StoreFuture, StrikeRule, StrikeState, StrikeStore, StrikeTable};
///
/// /// Counts strikes without a window, blocking for ever (for a test).
/// #[derive(Default)]
/// struct Counting(Mutex<HashMap<String, u32>>);
///
/// impl StrikeStore for Counting {
///     fn strike<'a>(&'a self, table: StrikeTable<'a>, subject: &'a ClientKey, rule: StrikeRule) -> StoreFuture<'a, StrikeState> {
///         let mut counts = self.0.lock().unwrap();
///         let count = counts.entry(format!("{table:?}{subject}")).or_default();
///         *count += 1;
///         let blocked = *count >= rule.strikes;
///         StoreFuture::ready(Ok(StrikeState {
///             strikes: if blocked { 0 } else { *count },
///             blocked_for: blocked.then_some(rule.block_for),
///             started: *count == rule.strikes,
///         }))
///     }
///
///     fn state<'a>(&'a self, table: StrikeTable<'a>, subject: &'a ClientKey, rule: StrikeRule) -> StoreFuture<'a, StrikeState> {
///         let count = self.0.lock().unwrap().get(&format!("{table:?}{subject}")).copied().unwrap_or(0);
///         let blocked = count >= rule.strikes;
///         StoreFuture::ready(Ok(StrikeState { strikes: if blocked { 0 } else { count }, blocked_for: blocked.then_some(rule.block_for), started: false }))
///     }
///
///     fn pardon<'a>(&'a self, table: StrikeTable<'a>, subject: &'a ClientKey) -> StoreFuture<'a, bool> {
///         StoreFuture::ready(Ok(self.0.lock().unwrap().remove(&format!("{table:?}{subject}")).is_some()))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Arc::new(Counting::default());
/// let rule = StrikeRule { strikes: 2, within: Duration::from_secs(60), block_for: Duration::from_secs(600) };
/// let client = ClientKey::Ip("192.0.2.1".parse().unwrap());
/// assert_eq!(store.strike(StrikeTable::Lockout, &client, rule).await.unwrap().blocked_for, None);
/// let second = store.strike(StrikeTable::Lockout, &client, rule).await.unwrap();
/// assert_eq!((second.blocked_for, second.started), (Some(Duration::from_secs(600)), true));
/// assert!(store.pardon(StrikeTable::Lockout, &client).await.unwrap());
/// assert!(!store.fails_closed());
/// # });
/// ```
pub trait StrikeStore: Send + Sync + 'static {
    /// Counts one strike against `subject` and answers its state after it:
    /// already blocked, the strike is not counted and the block's time
    /// left is answered; otherwise, when this strike makes `rule.strikes`
    /// within `rule.within`, a block of `rule.block_for` starts
    /// ([`StrikeState::started`]).
    fn strike<'a>(
        &'a self,
        table: StrikeTable<'a>,
        subject: &'a ClientKey,
        rule: StrikeRule,
    ) -> StoreFuture<'a, StrikeState>;

    /// `subject`'s state without counting a strike.
    fn state<'a>(
        &'a self,
        table: StrikeTable<'a>,
        subject: &'a ClientKey,
        rule: StrikeRule,
    ) -> StoreFuture<'a, StrikeState>;

    /// Lifts `subject`'s block and forgets its strikes; whether there was
    /// anything to forget.
    fn pardon<'a>(
        &'a self,
        table: StrikeTable<'a>,
        subject: &'a ClientKey,
    ) -> StoreFuture<'a, bool>;

    /// Whether a strike that cannot be counted has its request answered
    /// `503` (a store failing closed) rather than counted in memory alone
    /// (the default).
    fn fails_closed(&self) -> bool {
        false
    }
}
