//! The lockout's and the penalty box's strikes in Redis (`strikes.lua`).
//!
//! This module owns [`RedisStore`]'s [`StrikeStore`]: where a subject's
//! strikes live (`<prefix>:<scope>:<sha256 of the client>:<table>`, next to
//! its rate-limit state: see [`super::key`]), the call of the script (one
//! `EVALSHA`, loaded again after `NOSCRIPT`), and reading its reply. Every
//! call is bounded by the store's timeout and tracked by its outage state:
//! during an outage a strike or a look at a state skips Redis (except for
//! the store's probes) and fails at once, so the policy counts in memory
//! and keeps the blocks it knows without waiting.

use super::outage::Failure;
use super::{RedisStore, script};
use crate::rate_limiting::store::{
    ClientKey, StoreError, StoreFuture, StrikeRule, StrikeState, StrikeStore, StrikeTable,
};
use ::redis::{Cmd, ErrorKind, RedisError, RedisResult, Value};
use std::sync::LazyLock;
use std::time::Duration;

/// The script, with its SHA-1 computed once.
static SCRIPT: LazyLock<::redis::Script> =
    LazyLock::new(|| ::redis::Script::new(include_str!("strikes.lua")));

/// The scope the lockout's keys are laid out in: its keys end in
/// `:lockout`, which no rate-limit key does, so a scope of that name
/// shares nothing with it.
const LOCKOUT_SCOPE: &str = "api_key";

/// What the script does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Strike,
    State,
    Pardon,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Strike => "strike",
            Op::State => "state",
            Op::Pardon => "pardon",
        }
    }
}

impl RedisStore {
    /// The Redis key of `subject`'s strikes in `table`, e.g. to inspect it
    /// or delete it by hand: the key of its rate-limit state in the
    /// penalty's scope (`api_key` for the lockout), followed by
    /// `:penalty` or `:lockout`.
    ///
    /// ```
    /// use policy_runtime::{ClientKey, RedisStore, StrikeTable};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379")?;
    /// let client = ClientKey::Ip("192.0.2.7".parse().unwrap());
    /// let lockout = store.strikes_key(StrikeTable::Lockout, &client);
    /// assert!(lockout.starts_with("policy:api_key:") && lockout.ends_with(":lockout"));
    /// let penalty = store.strikes_key(StrikeTable::Penalty("search"), &client);
    /// assert_eq!(penalty, format!("{}:penalty", store.key("search", &client)));
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn strikes_key(&self, table: StrikeTable<'_>, subject: &ClientKey) -> String {
        let scope = match table {
            StrikeTable::Lockout => LOCKOUT_SCOPE,
            StrikeTable::Penalty(scope) => scope,
        };
        self.inner.keys.suffixed_key(scope, subject, table.name())
    }

    /// Runs the script on `key`. A strike or a look at a client's state
    /// (which requests make, to confirm a lockout) skips Redis during an
    /// outage and fails at once, but for the store's probes, so an outage
    /// costs a request no wait; a pardon (an operator's) always asks Redis.
    async fn strikes_call(
        &self,
        op: Op,
        key: String,
        rule: Option<StrikeRule>,
    ) -> Result<Value, StoreError> {
        let inner = &self.inner;
        let attempt = match op {
            Op::Strike | Op::State => inner.outage.attempt(),
            Op::Pardon => Some(inner.outage.forced_attempt()),
        };
        let Some(attempt) = attempt else {
            return Err(StoreError::new(
                "Redis is unavailable (outage under way); strikes are counted in memory",
            ));
        };
        let result = inner
            .run_script(script::Call::of(&SCRIPT, call(op, &key, rule)))
            .await;
        match result {
            Ok(reply) => {
                inner.succeeded(attempt);
                Ok(reply)
            }
            Err(error) => {
                match Failure::of(&error) {
                    Failure::Unavailable => inner.unavailable(&error),
                    Failure::Rejected => {
                        // Redis answered, so it is up; only this key is affected.
                        inner.succeeded(attempt);
                        tracing::error!(
                            store = "redis",
                            key,
                            %error,
                            "Redis refused a call of the strikes script for this client; \
                             its strikes are counted in memory until the key is deleted"
                        );
                    }
                }
                Err(StoreError::new(format!(
                    "Redis could not {} (key {key}): {error}",
                    op.name()
                )))
            }
        }
    }

    async fn strikes_state(
        &self,
        op: Op,
        table: StrikeTable<'_>,
        subject: &ClientKey,
        rule: StrikeRule,
    ) -> Result<StrikeState, StoreError> {
        let reply = self
            .strikes_call(op, self.strikes_key(table, subject), Some(rule))
            .await?;
        state(reply).map_err(|error| StoreError::new(error.to_string()))
    }
}

impl StrikeStore for RedisStore {
    /// One `EVALSHA` of `strikes.lua` on the server's clock.
    fn strike<'a>(
        &'a self,
        table: StrikeTable<'a>,
        subject: &'a ClientKey,
        rule: StrikeRule,
    ) -> StoreFuture<'a, StrikeState> {
        StoreFuture::boxed(self.strikes_state(Op::Strike, table, subject, rule))
    }

    fn state<'a>(
        &'a self,
        table: StrikeTable<'a>,
        subject: &'a ClientKey,
        rule: StrikeRule,
    ) -> StoreFuture<'a, StrikeState> {
        StoreFuture::boxed(self.strikes_state(Op::State, table, subject, rule))
    }

    fn pardon<'a>(
        &'a self,
        table: StrikeTable<'a>,
        subject: &'a ClientKey,
    ) -> StoreFuture<'a, bool> {
        StoreFuture::boxed(async move {
            let reply = self
                .strikes_call(Op::Pardon, self.strikes_key(table, subject), None)
                .await?;
            match reply {
                Value::Int(deleted) => Ok(deleted > 0),
                other => Err(StoreError::new(format!(
                    "unexpected reply from the strikes script to a pardon: {other:?}"
                ))),
            }
        })
    }

    /// With [`FailureMode::Closed`](super::FailureMode::Closed).
    fn fails_closed(&self) -> bool {
        self.inner.mode == super::FailureMode::Closed
    }
}

/// `EVALSHA <sha> 1 <key> <op> [<strikes> <within µs> <block µs>]`.
fn call(op: Op, key: &str, rule: Option<StrikeRule>) -> Cmd {
    let mut command = Cmd::new();
    command
        .arg("EVALSHA")
        .arg(SCRIPT.get_hash())
        .arg(1)
        .arg(key)
        .arg(op.name());
    if let Some(rule) = rule {
        command
            .arg(rule.strikes.max(1))
            .arg(micros(rule.within))
            .arg(micros(rule.block_for));
    }
    command
}

/// At least 1 µs, so the script's range check holds for any duration.
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Reads `{blocked_for_us, started, strikes}`.
fn state(reply: Value) -> RedisResult<StrikeState> {
    let unexpected = |what: &str| {
        RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected reply from the strikes script",
            what.to_string(),
        ))
    };
    let Value::Array(items) = reply else {
        return Err(unexpected("not an array"));
    };
    let numbers = items
        .iter()
        .map(|item| match item {
            Value::Int(number) => Ok(*number),
            _ => Err(unexpected("not an integer")),
        })
        .collect::<RedisResult<Vec<i64>>>()?;
    let [blocked_for, started, strikes] = numbers[..] else {
        return Err(unexpected("not three integers"));
    };
    Ok(StrikeState {
        strikes: u32::try_from(strikes.max(0)).unwrap_or(u32::MAX),
        blocked_for: (blocked_for > 0)
            .then(|| Duration::from_micros(u64::try_from(blocked_for).unwrap_or(0))),
        started: started == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(numbers: &[i64]) -> Value {
        Value::Array(numbers.iter().map(|n| Value::Int(*n)).collect())
    }

    #[test]
    fn replies_become_states_and_bad_replies_errors() {
        assert_eq!(
            state(reply(&[1_500_000, 1, 0])).unwrap(),
            StrikeState {
                strikes: 0,
                blocked_for: Some(Duration::from_millis(1500)),
                started: true
            }
        );
        assert_eq!(
            state(reply(&[0, 0, 3])).unwrap(),
            StrikeState {
                strikes: 3,
                blocked_for: None,
                started: false
            }
        );
        for bad in [
            Value::Nil,
            Value::Int(1),
            reply(&[1, 2]),
            reply(&[1, 2, 3, 4]),
        ] {
            assert!(state(bad).is_err());
        }
    }

    #[test]
    fn calls_carry_the_rule_in_microseconds() {
        let rule = StrikeRule {
            strikes: 5,
            within: Duration::from_secs(60),
            block_for: Duration::ZERO,
        };
        let args: Vec<String> = call(Op::Strike, "k", Some(rule))
            .args_iter()
            .map(|arg| match arg {
                ::redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => String::new(),
            })
            .collect();
        let hash = SCRIPT.get_hash().to_string();
        assert_eq!(
            args,
            ["EVALSHA", &hash, "1", "k", "strike", "5", "60000000", "1"]
        );
    }
}
