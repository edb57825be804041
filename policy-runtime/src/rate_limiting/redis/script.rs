//! The rate-limit decision as one server-side Lua script (`gcra.lua`).
//!
//! This module owns the script's calling convention: turning a request's
//! checks (state key, quotas, cost) into script arguments and the script's
//! reply into a [`Decision`], and the reset of a client's state. A call is
//! one `EVALSHA` command, built directly (no intermediate argument lists);
//! [`invoke`] sends it and, when the server answers `NOSCRIPT` (after a
//! restart, say), loads the script with the redis crate's
//! [`::redis::Script`] and sends it again. So a decision is one round trip.
//! Connections, timeouts and failures are [`super`]'s business.

use crate::Quota;
use crate::rate_limiting::store::Decision;
use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, ErrorKind, RedisError, RedisResult, ServerErrorKind, Value};
use std::fmt::Write as _;
use std::time::Duration;

/// The longest period (strict) or emission interval times burst (GCRA) the
/// script is given, in microseconds (about 8.9 years), so that every time
/// stays an exact integer in Lua's doubles.
const MAX_SPAN_MICROS: u64 = 1 << 48;

/// The Lua source.
const SOURCE: &str = include_str!("gcra.lua");

/// The script, with its SHA-1 computed once per store.
pub(super) fn script() -> ::redis::Script {
    ::redis::Script::new(SOURCE)
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

/// `EVALSHA <sha> <number of keys>`: the start of every call of the script,
/// with room for `args` more arguments of `bytes` bytes in all.
fn evalsha(script: &::redis::Script, keys: usize, args: usize, bytes: usize) -> Cmd {
    let hash = script.get_hash();
    let mut command = Cmd::with_capacity(3 + args, "EVALSHA".len() + hash.len() + 4 + bytes);
    command.arg("EVALSHA").arg(hash).arg(keys);
    command
}

/// Sends a call of `script`, and when the server does not know the script
/// (`NOSCRIPT`), loads it and sends the call again.
pub(super) async fn invoke(
    script: &::redis::Script,
    command: &Cmd,
    connection: &mut impl ConnectionLike,
) -> RedisResult<Value> {
    match command.query_async(connection).await {
        Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            // Rare (once per server restart): boxed, so that the loading
            // future does not enlarge every call's future, which is moved
            // through each level of the store's check.
            Box::pin(async {
                script.load_async(connection).await?;
                command.query_async(connection).await
            })
            .await
        }
        other => other,
    }
}

/// A call of the script that deletes the state at `key` (and its strict
/// quotas' logs).
pub(super) fn reset_call(script: &::redis::Script, key: &str) -> Cmd {
    let mut command = evalsha(script, 1, 2, key.len() + 5);
    command.arg(key).arg("reset");
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

/// A check of one GCRA quota, by far the most common, which the script
/// takes in its short form and answers with a single integer.
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

    /// The decision from the short form's reply: `d > 0` admitted, the
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

/// A call of the script for `checks`, in the order `gcra.lua` reads them.
///
/// A check of one GCRA quota takes the script's short form, which its fast
/// path reads with the least work: the key, the quota's field (which holds
/// its interval and burst) and the cost, left out when it is 1 (every
/// argument costs the server time).
pub(super) fn call(script: &::redis::Script, op: Op, checks: &[Check<'_>]) -> Cmd {
    if let Some(short) = Short::of(op, checks) {
        let key = checks[0].key;
        let mut command = evalsha(script, 1, 3, key.len() + 64);
        command.arg(key).arg(
            Shape::Gcra {
                interval: short.interval,
                burst: short.burst,
            }
            .field()
            .as_str(),
        );
        if short.cost > 1 {
            command.arg(short.cost);
        }
        return command;
    }
    let quotas: usize = checks.iter().map(|check| check.quotas.len()).sum();
    let bytes: usize = checks.iter().map(|check| check.key.len() + 16).sum();
    let mut command = evalsha(
        script,
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

/// Reads the script's reply to a call made by [`call`] with the same `op`
/// and `checks`: an integer for the short form, else `nil` (a peek at a
/// client with no state) or `{allowed, check, quota, remaining, reset_us,
/// retry_us}`.
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
    if let Some(short) = Short::of(op, checks) {
        return match reply {
            Value::Int(reply) => Ok(Some(short.decision(reply, checks[0].quotas[0]))),
            _ => Err(unexpected("not an integer")),
        };
    }
    let items = match reply {
        Value::Nil => return Ok(None),
        Value::Array(items) => items,
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
        // The short form answers one integer, and nothing else.
        for bad in [Value::Nil, reply(&[1, 1, 1, 0, 0, 0]), Value::Okay] {
            assert!(decision(bad, Op::Check, &checks).is_err());
        }
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
        let script = script();
        let hash = script.get_hash().to_string();
        assert_eq!(
            args(&call(&script, Op::Check, &[check(&one, 1)])),
            ["EVALSHA", &hash, "1", "k", "g:3600000000:3"]
        );
        assert_eq!(
            args(&call(&script, Op::Check, &[check(&one, 4)])),
            ["EVALSHA", &hash, "1", "k", "g:3600000000:3", "4"]
        );
        assert_eq!(
            args(&call(&script, Op::Peek, &[check(&one, 1)])),
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
            args(&reset_call(&script, "k")),
            ["EVALSHA", &hash, "1", "k", "reset"]
        );
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
