//! The rate-limit decision as one server-side Lua script (`gcra.lua`).
//!
//! This module owns the script's calling convention: turning a request's
//! checks (state key, quotas, cost) into script arguments and the script's
//! reply into a [`Decision`], and the reset of a client's state. A call is
//! one `EVALSHA` command, built directly (no intermediate argument lists);
//! [`Call::send`] sends it and, when the server answers `NOSCRIPT` (after a
//! restart, say), loads the script with the redis crate's
//! [`::redis::Script`] and sends it again. So a decision is one round trip.
//! Connections, timeouts and failures are [`super`]'s business.
//!
//! A check of one GCRA quota, by far the most common, runs that quota's own
//! script: `gcra_one.lua` with the quota's interval and burst written into
//! it as literals, so that the server reads no argument for the quota (see
//! [`Scripts`]). It answers `GENERAL` for a state it does not read, and the
//! check then runs `gcra.lua`, which every other call runs.

use crate::Quota;
use crate::rate_limiting::store::Decision;
use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

/// The longest period (strict) or emission interval times burst (GCRA) the
/// script is given, in microseconds (about 8.9 years), so that every time
/// stays an exact integer in Lua's doubles.
const MAX_SPAN_MICROS: u64 = 1 << 48;

/// The Lua source of the shared script.
const SOURCE: &str = include_str!("gcra.lua");

/// The Lua source of a GCRA quota's own script, before its quota is
/// written into [`QUOTA_LINE`].
const ONE_SOURCE: &str = include_str!("gcra_one.lua");

/// The line of `gcra_one.lua` that the quota is written into.
const QUOTA_LINE: &str = "local INTERVAL, BURST = nil, nil";

/// What a quota's own script answers for a state it does not read.
const GENERAL: &str = "GENERAL";

/// How many GCRA quotas get a script of their own in one store. Quotas come
/// from the app's configuration, not from clients, so an app has a handful;
/// the bound keeps one that makes quotas at run time from loading scripts
/// into Redis without end. A quota past it runs the shared script: the same
/// decision, with its quota read from the arguments.
const OWN_SCRIPTS: usize = 64;

/// The source of the own script of a GCRA quota.
fn own_source(interval: u64, burst: u64) -> String {
    ONE_SOURCE.replacen(
        QUOTA_LINE,
        &format!("local INTERVAL, BURST = {interval}, {burst}"),
        1,
    )
}

/// The scripts of one store: the shared script, and the own scripts of up
/// to [`OWN_SCRIPTS`] GCRA quotas, each made (its source written and
/// hashed) the first time a check of its quota alone runs.
pub(super) struct Scripts {
    shared: ::redis::Script,
    /// Filled from the front, never emptied: a lookup reads the filled
    /// slots with no lock.
    own: [OnceLock<OwnScript>; OWN_SCRIPTS],
}

/// A GCRA quota's own script: the quota, and the SHA-1 of its source. The
/// source itself is written again only when the server lacks the script.
struct OwnScript {
    interval: u64,
    burst: u64,
    hash: String,
}

impl OwnScript {
    fn new(interval: u64, burst: u64) -> Self {
        OwnScript {
            interval,
            burst,
            hash: ::redis::Script::new(&own_source(interval, burst))
                .get_hash()
                .to_owned(),
        }
    }

    fn is_for(&self, interval: u64, burst: u64) -> bool {
        self.interval == interval && self.burst == burst
    }
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            shared: ::redis::Script::new(SOURCE),
            own: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The own script of the GCRA quota `interval`, `burst`, made if it is
    /// new and there is room; `None` once [`OWN_SCRIPTS`] quotas have one.
    fn own(&self, interval: u64, burst: u64) -> Option<&OwnScript> {
        for slot in &self.own {
            // Two threads making scripts at once fill two slots, each
            // taking the first free one it finds (a slot taken by another
            // quota is passed by).
            let own = slot.get_or_init(|| OwnScript::new(interval, burst));
            if own.is_for(interval, burst) {
                return Some(own);
            }
        }
        None
    }

    /// A call of the script that does `op` on `checks`.
    ///
    /// A check of one GCRA quota runs the quota's own script, which takes
    /// the key and the cost, left out when it is 1 (every argument costs the
    /// server time). Its reply may ask for [`Self::general_call`] instead
    /// (see [`asks_for_general`]).
    pub(super) fn call(&self, op: Op, checks: &[Check<'_>]) -> Call<'_> {
        if let Some(short) = Short::of(op, checks) {
            let key = checks[0].key;
            if let Some(own) = self.own(short.interval, short.burst) {
                let mut command = evalsha(&own.hash, 1, 2, key.len() + 20);
                command.arg(key);
                if short.cost > 1 {
                    command.arg(short.cost);
                }
                return Call {
                    command,
                    script: Which::Own {
                        interval: short.interval,
                        burst: short.burst,
                    },
                };
            }
        }
        self.general_call(op, checks)
    }

    /// A call of the shared script that does `op` on `checks`, in the order
    /// `gcra.lua` reads them.
    pub(super) fn general_call(&self, op: Op, checks: &[Check<'_>]) -> Call<'_> {
        Call::of(&self.shared, call(&self.shared, op, checks))
    }

    /// A call of the script that deletes the state at `key` (and its strict
    /// quotas' logs).
    pub(super) fn reset_call(&self, key: &str) -> Call<'_> {
        let mut command = evalsha(self.shared.get_hash(), 1, 2, key.len() + 5);
        command.arg(key).arg("reset");
        Call::of(&self.shared, command)
    }
}

/// A call of a script, ready to send: the `EVALSHA` command, and which
/// script it runs, to load it when the server lacks it.
pub(super) struct Call<'s> {
    command: Cmd,
    script: Which<'s>,
}

/// Which script a [`Call`] runs.
#[derive(Clone, Copy, Debug)]
enum Which<'s> {
    /// A script the caller holds (the shared one, or the strikes' script).
    Held(&'s ::redis::Script),
    /// The own script of a GCRA quota, whose source is written again only
    /// when the server lacks it.
    Own { interval: u64, burst: u64 },
}

impl<'s> Call<'s> {
    /// A call of `script`: `command` must be an `EVALSHA` of its hash.
    pub(super) fn of(script: &'s ::redis::Script, command: Cmd) -> Self {
        Call {
            command,
            script: Which::Held(script),
        }
    }

    /// Sends the call, and when the server does not know its script
    /// (`NOSCRIPT`, after a restart, say), loads it and sends the call again.
    pub(super) async fn send(&self, connection: &mut impl ConnectionLike) -> RedisResult<Value> {
        match self.command.query_async(connection).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                // Rare (once per server restart): boxed, so that the loading
                // future does not enlarge every call's future, which is moved
                // through each level of the store's check.
                Box::pin(async {
                    let script = match self.script {
                        Which::Held(script) => script.clone(),
                        Which::Own { interval, burst } => {
                            ::redis::Script::new(&own_source(interval, burst))
                        }
                    };
                    script.load_async(connection).await?;
                    self.command.query_async(connection).await
                })
                .await
            }
            other => other,
        }
    }
}

/// One check of a request as the script sees it: whose state, which quotas,
/// and how many requests it counts as.
#[derive(Clone, Copy, Debug)]
pub(super) struct Check<'a> {
    pub(super) key: &'a str,
    pub(super) quotas: &'a [Quota],
    pub(super) cost: u32,
}

/// What the script does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Decide, and count the request if every quota admits it.
    Check,
    /// Report the state without counting anything.
    Peek,
    /// Give back what a check counted (a conditional limit's reservation).
    Refund,
}

/// `EVALSHA <sha> <number of keys>`: the start of every call of a script,
/// with room for `args` more arguments of `bytes` bytes in all.
fn evalsha(hash: &str, keys: usize, args: usize, bytes: usize) -> Cmd {
    let mut command = Cmd::with_capacity(3 + args, "EVALSHA".len() + hash.len() + 4 + bytes);
    command.arg("EVALSHA").arg(hash).arg(keys);
    command
}

/// How one quota is limited: the parameters the script takes for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A burst of `burst`, then one request per `interval`.
    Gcra { interval: u64, burst: u64 },
    /// At most `count` requests in any window of `period`.
    Strict { period: u64, count: u64 },
    /// About `count` requests in any window of `period`, by two counters.
    Sliding { period: u64, count: u64 },
}

impl Shape {
    fn of(quota: &Quota) -> Self {
        if quota.is_sliding() {
            Shape::Sliding {
                period: micros_of(quota.period()).clamp(1, MAX_SPAN_MICROS),
                count: u64::from(quota.count().max(1)),
            }
        } else if quota.is_strict() {
            let count = u64::from(quota.count().max(1));
            Shape::Strict {
                period: micros_of(quota.period()).clamp(1, MAX_SPAN_MICROS),
                count,
            }
        } else {
            let burst = u64::from(quota.burst().max(1));
            Shape::Gcra {
                interval: micros_of(quota.replenish_interval()).clamp(1, MAX_SPAN_MICROS / burst),
                burst,
            }
        }
    }

    /// The quota's field in the state: its kind and every parameter that
    /// shapes the state.
    fn field(&self) -> Field {
        let (kind, a, b) = match *self {
            Shape::Gcra { interval, burst } => (b'g', interval, burst),
            Shape::Strict { period, count } => (b's', period, count),
            Shape::Sliding { period, count } => (b'w', period, count),
        };
        let mut field = Field {
            bytes: [0; Field::CAPACITY],
            len: 0,
        };
        field.push(&[kind, b':']);
        field.push(itoa::Buffer::new().format(a).as_bytes());
        field.push(b":");
        field.push(itoa::Buffer::new().format(b).as_bytes());
        field
    }

    fn add_to(&self, command: &mut Cmd) {
        let (kind, a, b) = match *self {
            Shape::Gcra { interval, burst } => ("gcra", interval, burst),
            Shape::Strict { period, count } => ("strict", period, count),
            Shape::Sliding { period, count } => ("sliding", period, count),
        };
        command.arg(kind).arg(self.field().as_str()).arg(a).arg(b);
    }
}

/// A quota's field (`g:180000000:20`), written on the stack with `itoa`
/// rather than `format!`: every check of the Redis store sends one, and the
/// formatting machinery and an allocation were a sizeable part of the
/// client's work per check.
#[derive(Clone, Copy)]
struct Field {
    bytes: [u8; Field::CAPACITY],
    len: usize,
}

impl Field {
    /// A kind, a colon, two `u64`s of at most 20 digits and a colon.
    const CAPACITY: usize = 2 + 20 + 1 + 20;

    fn push(&mut self, part: &[u8]) {
        self.bytes[self.len..self.len + part.len()].copy_from_slice(part);
        self.len += part.len();
    }

    fn as_str(&self) -> &str {
        // Only ASCII letters, digits and colons are pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

fn micros_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// A check of one GCRA quota, by far the most common, which its quota's own
/// script answers with a single integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Short {
    interval: u64,
    burst: u64,
    cost: u64,
}

impl Short {
    fn of(op: Op, checks: &[Check<'_>]) -> Option<Self> {
        let (Op::Check, [check]) = (op, checks) else {
            return None;
        };
        let [quota] = check.quotas else {
            return None;
        };
        match Shape::of(quota) {
            Shape::Gcra { interval, burst } => Some(Short {
                interval,
                burst,
                cost: u64::from(check.cost.max(1)),
            }),
            Shape::Strict { .. } | Shape::Sliding { .. } => None,
        }
    }

    /// The decision from the own script's reply: `d > 0` admitted, the
    /// client's TAT now `d` µs ahead; `d <= 0` refused, the TAT `-d` µs
    /// ahead. The rest follows from the quota, as in the script: `remaining`
    /// is how many intervals of the burst are still free, and a refused
    /// request can be retried once its cost fits in the burst.
    fn decision(self, reply: i64, quota: Quota) -> Decision {
        let capacity = self.interval.saturating_mul(self.burst);
        let ahead = reply.unsigned_abs();
        if reply > 0 {
            Decision {
                allowed: true,
                quota,
                remaining: u32::try_from(capacity.saturating_sub(ahead) / self.interval)
                    .unwrap_or(u32::MAX),
                reset_after: Duration::from_micros(ahead),
                retry_after: Duration::ZERO,
            }
        } else {
            let retry = ahead
                .saturating_add(self.cost.saturating_mul(self.interval))
                .saturating_sub(capacity);
            Decision {
                allowed: false,
                quota,
                remaining: 0,
                reset_after: Duration::from_micros(ahead),
                retry_after: Duration::from_micros(retry),
            }
        }
    }
}

/// A call of the shared script for `checks` (see [`Scripts::general_call`]).
fn call(script: &::redis::Script, op: Op, checks: &[Check<'_>]) -> Cmd {
    let quotas: usize = checks.iter().map(|check| check.quotas.len()).sum();
    let bytes: usize = checks.iter().map(|check| check.key.len() + 16).sum();
    let mut command = evalsha(
        script.get_hash(),
        checks.len(),
        1 + 3 * checks.len() + 4 * quotas,
        8 + bytes + 64 * quotas,
    );
    for check in checks {
        command.arg(check.key);
    }
    command.arg(match op {
        Op::Check => "check",
        Op::Peek => "peek",
        Op::Refund => "refund",
    });
    for check in checks {
        command.arg(check.cost.max(1)).arg(check.quotas.len());
        for quota in check.quotas {
            Shape::of(quota).add_to(&mut command);
        }
    }
    command
}

/// The identity of a request for the refusal cache: every check's key, cost
/// and quotas, one line each, so that only the very same request matches.
pub(super) fn fingerprint(checks: &[Check<'_>]) -> String {
    let size: usize = checks
        .iter()
        .map(|check| check.key.len() + 16 + 32 * check.quotas.len())
        .sum();
    let mut fingerprint = String::with_capacity(size);
    for check in checks {
        fingerprint.push_str(check.key);
        // Writing to a String cannot fail.
        let _ = write!(fingerprint, "\n{}\n", check.cost.max(1));
        for quota in check.quotas {
            fingerprint.push_str(Shape::of(quota).field().as_str());
            fingerprint.push(',');
        }
        fingerprint.push('\n');
    }
    fingerprint
}

/// Whether a quota's own script asks for the shared script instead: its
/// answer to a state it does not read.
pub(super) fn asks_for_general(reply: &Value) -> bool {
    matches!(reply, Value::SimpleString(status) if status == GENERAL)
}

/// Reads a script's reply to a call made by [`Scripts::call`] (or
/// [`Scripts::general_call`]) with the same `op` and `checks`: an integer
/// from a quota's own script, else `nil` (a peek at a client with no state)
/// or `{allowed, check, quota, remaining, reset_us, retry_us}`.
pub(super) fn decision(
    reply: Value,
    op: Op,
    checks: &[Check<'_>],
) -> Result<Option<Decision>, RedisError> {
    let unexpected = |what: &str| {
        RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected reply from the rate-limit script",
            what.to_string(),
        ))
    };
    let items = match (reply, Short::of(op, checks)) {
        (Value::Int(reply), Some(short)) => {
            return Ok(Some(short.decision(reply, checks[0].quotas[0])));
        }
        (Value::Nil, _) => return Ok(None),
        (Value::Array(items), _) => items,
        _ => return Err(unexpected("neither nil nor an array")),
    };
    let numbers: Vec<i64> = items
        .iter()
        .map(|item| match item {
            Value::Int(number) => Ok(*number),
            _ => Err(unexpected("not an integer")),
        })
        .collect::<Result<_, _>>()?;
    let [allowed, check, quota, remaining, reset_micros, retry_micros] = numbers[..] else {
        return Err(unexpected("not six integers"));
    };
    let position = |index: i64| usize::try_from(index).ok().and_then(|i| i.checked_sub(1));
    let quota = position(check)
        .and_then(|check| checks.get(check))
        .zip(position(quota))
        .and_then(|(check, quota)| check.quotas.get(quota))
        .ok_or_else(|| unexpected("quota index out of range"))?;
    Ok(Some(Decision {
        allowed: allowed == 1,
        quota: *quota,
        remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
        reset_after: micros(reset_micros),
        retry_after: micros(retry_micros),
    }))
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn gcra_quotas_are_interval_and_burst_in_microseconds() {
        let shape = Shape::of(&Quota::new(20, HOUR));
        assert_eq!(
            shape,
            Shape::Gcra {
                interval: 180_000_000,
                burst: 20
            }
        );
        assert_eq!(shape.field().as_str(), "g:180000000:20");
        let burst = Shape::of(&Quota::new(1, Duration::from_secs(1)).with_burst(3));
        assert_eq!(burst.field().as_str(), "g:1000000:3");
    }

    #[test]
    fn a_field_holds_the_largest_parameters() {
        let widest = Shape::Sliding {
            period: u64::MAX,
            count: u64::MAX,
        };
        assert_eq!(
            widest.field().as_str(),
            "w:18446744073709551615:18446744073709551615"
        );
        assert_eq!(widest.field().as_str().len(), Field::CAPACITY);
    }

    #[test]
    fn strict_quotas_are_period_and_count() {
        let shape = Shape::of(&Quota::new(5, HOUR).strict());
        assert_eq!(
            shape,
            Shape::Strict {
                period: 3_600_000_000,
                count: 5
            }
        );
        assert_eq!(shape.field().as_str(), "s:3600000000:5");
    }

    #[test]
    fn sliding_quotas_are_period_and_count_and_never_take_the_short_form() {
        let quota = Quota::new(10_000, HOUR).sliding();
        let shape = Shape::of(&quota);
        assert_eq!(
            shape,
            Shape::Sliding {
                period: 3_600_000_000,
                count: 10_000
            }
        );
        assert_eq!(shape.field().as_str(), "w:3600000000:10000");
        let quotas = [quota];
        let check = Check {
            key: "k",
            quotas: &quotas,
            cost: 1,
        };
        assert_eq!(Short::of(Op::Check, &[check]), None);
    }

    #[test]
    fn sub_microsecond_intervals_are_raised_to_one_microsecond() {
        let shape = Shape::of(&Quota::new(4_000_000, Duration::from_secs(1)));
        assert_eq!(
            shape,
            Shape::Gcra {
                interval: 1,
                burst: 4_000_000
            }
        );
    }

    #[test]
    fn huge_periods_are_capped_so_lua_stays_exact() {
        let Shape::Gcra { interval, burst } =
            Shape::of(&Quota::new(1, Duration::from_secs(u64::MAX / 4)))
        else {
            unreachable!()
        };
        assert!(interval * burst <= MAX_SPAN_MICROS);
    }

    fn reply(numbers: &[i64]) -> Value {
        Value::Array(numbers.iter().map(|n| Value::Int(*n)).collect())
    }

    #[test]
    fn replies_become_decisions_on_the_indexed_quota() {
        let first = [Quota::new(5, HOUR)];
        let second = [Quota::new(5, HOUR), Quota::new(2, HOUR)];
        let checks = [
            Check {
                key: "a",
                quotas: &first,
                cost: 1,
            },
            Check {
                key: "b",
                quotas: &second,
                cost: 1,
            },
        ];
        let decision = decision(
            reply(&[0, 2, 2, 0, 3_600_000_000, 1_800_000_000]),
            Op::Check,
            &checks,
        )
        .unwrap()
        .unwrap();
        assert!(!decision.allowed);
        assert_eq!(decision.quota, second[1]);
        assert_eq!(decision.retry_after, Duration::from_secs(1800));
        assert_eq!(decision.reset_after, HOUR);
        assert_eq!(
            super::decision(Value::Nil, Op::Peek, &checks).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let quotas = [Quota::new(5, HOUR)];
        let checks = [Check {
            key: "a",
            quotas: &quotas,
            cost: 1,
        }];
        for bad in [
            Value::Okay,
            reply(&[1]),
            Value::Array(
                vec![Value::Int(1); 6]
                    .into_iter()
                    .chain([Value::Nil])
                    .collect(),
            ),
            reply(&[1, 1, 2, 0, 0, 0]),
            reply(&[1, 2, 1, 0, 0, 0]),
            reply(&[1, 0, 1, 0, 0, 0]),
            reply(&[1, 1, -1, 0, 0, 0]),
        ] {
            assert!(decision(bad, Op::Peek, &checks).is_err());
        }
        // A quota's own script answers an integer, the shared one an array;
        // anything else is an error, its request for the shared script too
        // (the store sends that call instead of reading its reply).
        let own = decision(Value::Int(1_440_000_000), Op::Check, &checks)
            .unwrap()
            .unwrap();
        assert_eq!((own.allowed, own.remaining), (true, 3));
        let shared = decision(reply(&[1, 1, 1, 3, 1_440_000_000, 0]), Op::Check, &checks)
            .unwrap()
            .unwrap();
        assert_eq!(shared, own);
        for bad in [
            Value::Okay,
            Value::SimpleString(GENERAL.to_string()),
            Value::BulkString(b"1".to_vec()),
        ] {
            assert!(decision(bad, Op::Check, &checks).is_err());
        }
        assert!(asks_for_general(&Value::SimpleString(GENERAL.to_string())));
        assert!(!asks_for_general(&Value::Int(0)));
        assert!(!asks_for_general(&Value::Okay));
    }

    #[test]
    fn one_gcra_quota_takes_the_short_form() {
        let one = [Quota::new(1, HOUR).with_burst(3)];
        let two = [Quota::new(1, HOUR), Quota::new(5, HOUR)];
        let strict = [Quota::new(1, HOUR).strict()];
        let check = |quotas, cost| Check {
            key: "k",
            quotas,
            cost,
        };
        assert_eq!(
            Short::of(Op::Check, &[check(&one, 2)]),
            Some(Short {
                interval: 3_600_000_000,
                burst: 3,
                cost: 2
            })
        );
        assert_eq!(Short::of(Op::Peek, &[check(&one, 1)]), None);
        assert_eq!(Short::of(Op::Check, &[check(&two, 1)]), None);
        assert_eq!(Short::of(Op::Check, &[check(&strict, 1)]), None);
        assert_eq!(
            Short::of(Op::Check, &[check(&one, 1), check(&one, 1)]),
            None
        );

        let args = |command: &Cmd| -> Vec<String> {
            command
                .args_iter()
                .map(|arg| match arg {
                    ::redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => "<not a simple argument>".to_string(),
                })
                .collect()
        };
        let scripts = Scripts::new();
        let script = &scripts.shared;
        let hash = script.get_hash().to_string();
        // In the quota's own script: the key, and the cost unless it is 1.
        let own = ::redis::Script::new(&own_source(3_600_000_000, 3));
        let own_hash = own.get_hash().to_string();
        assert_ne!(own_hash, hash);
        assert_eq!(
            args(&scripts.call(Op::Check, &[check(&one, 1)]).command),
            ["EVALSHA", &own_hash, "1", "k"]
        );
        assert_eq!(
            args(&scripts.call(Op::Check, &[check(&one, 4)]).command),
            ["EVALSHA", &own_hash, "1", "k", "4"]
        );
        // In the shared script, the general form.
        assert_eq!(
            args(&scripts.general_call(Op::Check, &[check(&one, 4)]).command),
            [
                "EVALSHA",
                &hash,
                "1",
                "k",
                "check",
                "4",
                "1",
                "gcra",
                "g:3600000000:3",
                "3600000000",
                "3"
            ]
        );
        assert_eq!(
            args(&scripts.call(Op::Peek, &[check(&one, 1)]).command),
            [
                "EVALSHA",
                &hash,
                "1",
                "k",
                "peek",
                "1",
                "1",
                "gcra",
                "g:3600000000:3",
                "3600000000",
                "3"
            ]
        );
        assert_eq!(
            args(&scripts.call(Op::Check, &[check(&two, 1)]).command)[..5],
            ["EVALSHA", &hash, "1", "k", "check"]
        );
        assert_eq!(
            args(&scripts.reset_call("k").command),
            ["EVALSHA", &hash, "1", "k", "reset"]
        );
    }

    #[test]
    fn an_own_script_is_gcra_one_with_its_quota_written_in() {
        assert_eq!(ONE_SOURCE.matches(QUOTA_LINE).count(), 1);
        let own = own_source(180_000_000, 20);
        assert_eq!(
            own,
            ONE_SOURCE.replace(QUOTA_LINE, "local INTERVAL, BURST = 180000000, 20")
        );
        assert!(!own.contains(QUOTA_LINE));
        // The widest quota the store sends is written as exact digits.
        let widest = own_source(MAX_SPAN_MICROS, 1);
        assert!(
            widest.contains("local INTERVAL, BURST = 281474976710656, 1\n"),
            "{:?}",
            widest
                .lines()
                .find(|line| line.contains("INTERVAL, BURST ="))
        );
    }

    #[test]
    fn own_scripts_stop_at_their_bound_and_the_rest_share_one() {
        let scripts = Scripts::new();
        let quotas: Vec<[Quota; 1]> = (1..=u32::try_from(OWN_SCRIPTS).unwrap() + 1)
            .map(|count| [Quota::new(count, HOUR)])
            .collect();
        let which = |quotas: &[Quota]| {
            let check = Check {
                key: "k",
                quotas,
                cost: 1,
            };
            match scripts.call(Op::Check, &[check]).script {
                Which::Own { interval, burst } => Some((interval, burst)),
                Which::Held(_) => None,
            }
        };
        for (i, quota) in quotas.iter().enumerate() {
            let Shape::Gcra { interval, burst } = Shape::of(&quota[0]) else {
                unreachable!()
            };
            let expected = (i < OWN_SCRIPTS).then_some((interval, burst));
            assert_eq!(which(quota), expected, "quota {i}");
            // Asked again, the same answer: a quota keeps its script.
            assert_eq!(which(quota), expected, "quota {i}");
        }
        let made = scripts
            .own
            .iter()
            .filter(|slot| slot.get().is_some())
            .count();
        assert_eq!(made, OWN_SCRIPTS);
    }

    #[test]
    fn short_replies_carry_the_whole_decision() {
        // 1 per second with a burst of 4: interval 1 s, capacity 4 s.
        let quota = Quota::new(1, Duration::from_secs(1)).with_burst(4);
        let short = |cost| Short {
            interval: 1_000_000,
            burst: 4,
            cost,
        };
        // Admitted, the TAT 2.5 s ahead: one interval and a half left, so 1.
        let admitted = short(1).decision(2_500_000, quota);
        assert!(admitted.allowed);
        assert_eq!(admitted.remaining, 1);
        assert_eq!(admitted.reset_after, Duration::from_millis(2500));
        assert_eq!(admitted.retry_after, Duration::ZERO);
        // Refused, the TAT 3.5 s ahead: a cost of 2 fits in 1.5 s.
        let refused = short(2).decision(-3_500_000, quota);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_after, Duration::from_millis(3500));
        assert_eq!(refused.retry_after, Duration::from_millis(1500));
        // A cost above the burst never fits: refused with no TAT ahead.
        let never = short(5).decision(0, quota);
        assert!(!never.allowed);
        assert_eq!(never.reset_after, Duration::ZERO);
        assert_eq!(never.retry_after, Duration::from_secs(1));
    }
}
