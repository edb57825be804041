//! The rate-limit decision as one server-side Lua script (`gcra.lua`).
//!
//! This module owns the script's calling convention: turning a request's
//! checks (state key, quotas, cost) into script arguments and the script's
//! reply into a [`Decision`], and the reset of a client's state. The redis crate's [`::redis::Script`] sends it
//! with `EVALSHA` and loads it again when the server answers `NOSCRIPT`
//! (after a restart, say), so a decision is one round trip. Connections,
//! timeouts and failures are [`super`]'s business.

use crate::rate_limit::store::Decision;
use crate::Quota;
use ::redis::{ErrorKind, RedisError, ScriptInvocation, Value};
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
}

/// An invocation of the script that deletes the state at `key` (and its
/// strict quotas' logs).
pub(super) fn reset_invocation<'s>(script: &'s ::redis::Script, key: &str) -> ScriptInvocation<'s> {
    let mut invocation = script.prepare_invoke();
    invocation.arg("reset").key(key);
    invocation
}

/// How one quota is limited: the parameters the script takes for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A burst of `burst`, then one request per `interval`.
    Gcra { interval: u64, burst: u64 },
    /// At most `count` requests in any window of `period`.
    Strict { period: u64, count: u64 },
}

impl Shape {
    fn of(quota: &Quota) -> Self {
        if quota.is_strict() {
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
    fn field(&self) -> String {
        match self {
            Shape::Gcra { interval, burst } => format!("g:{interval}:{burst}"),
            Shape::Strict { period, count } => format!("s:{period}:{count}"),
        }
    }

    fn add_to(&self, invocation: &mut ScriptInvocation<'_>) {
        let (kind, a, b) = match *self {
            Shape::Gcra { interval, burst } => ("gcra", interval, burst),
            Shape::Strict { period, count } => ("strict", period, count),
        };
        invocation.arg(kind).arg(self.field()).arg(a).arg(b);
    }
}

fn micros_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// An invocation of the script for `checks`, in the order `gcra.lua` reads them.
pub(super) fn invocation<'s>(
    script: &'s ::redis::Script,
    op: Op,
    checks: &[Check<'_>],
) -> ScriptInvocation<'s> {
    let mut invocation = script.prepare_invoke();
    invocation.arg(match op {
        Op::Check => "check",
        Op::Peek => "peek",
    });
    for check in checks {
        invocation
            .key(check.key)
            .arg(check.cost.max(1))
            .arg(check.quotas.len());
        for quota in check.quotas {
            Shape::of(quota).add_to(&mut invocation);
        }
    }
    invocation
}

/// The identity of a request for the refusal cache: every check's key, cost
/// and quotas, one line each, so that only the very same request matches.
pub(super) fn fingerprint(checks: &[Check<'_>]) -> String {
    let mut fingerprint = String::new();
    for check in checks {
        fingerprint.push_str(check.key);
        fingerprint.push('\n');
        fingerprint.push_str(&check.cost.max(1).to_string());
        fingerprint.push('\n');
        for quota in check.quotas {
            fingerprint.push_str(&Shape::of(quota).field());
            fingerprint.push(',');
        }
        fingerprint.push('\n');
    }
    fingerprint
}

/// Reads the script's reply: `nil` (a peek at a client with no state) or
/// `{allowed, check, quota, remaining, reset_us, retry_us}`.
pub(super) fn decision(reply: Value, checks: &[Check<'_>]) -> Result<Option<Decision>, RedisError> {
    let unexpected = |what: &str| {
        RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected reply from the rate-limit script",
            what.to_string(),
        ))
    };
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
        assert_eq!(shape.field(), "g:180000000:20");
        let burst = Shape::of(&Quota::new(1, Duration::from_secs(1)).with_burst(3));
        assert_eq!(burst.field(), "g:1000000:3");
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
        assert_eq!(shape.field(), "s:3600000000:5");
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
        let decision = decision(reply(&[0, 2, 2, 0, 3_600_000_000, 1_800_000_000]), &checks)
            .unwrap()
            .unwrap();
        assert!(!decision.allowed);
        assert_eq!(decision.quota, second[1]);
        assert_eq!(decision.retry_after, Duration::from_secs(1800));
        assert_eq!(decision.reset_after, HOUR);
        assert_eq!(super::decision(Value::Nil, &checks).unwrap(), None);
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
            assert!(decision(bad, &checks).is_err());
        }
    }
}
