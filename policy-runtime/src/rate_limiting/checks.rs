//! Checks of the rate-limit configuration as a whole, run when the engine is
//! built: what no single `#[rate_limit]` attribute can see on its own.
//!
//! This module owns three rules, each a pure function from the handlers'
//! limits (each `#[rate_limit]` with its handler's path, which the engine
//! gathers from the registrations) and the named policies' limits to the
//! problems found,
//! one actionable message each:
//!
//! - a scope keeps one state, so every limit counting in it must have the
//!   same quotas (count, period, burst, strictness, in the same order);
//!   only the cost may differ ([`shared_scope_problems`]);
//! - a handler's `cost` must fit in the burst of every quota of its named
//!   policy, or no request could ever pass ([`cost_problems`]);
//! - two policy names must not share a `POLICY_LIMIT_<NAME>` variable
//!   ([`policy_name_problems`]).
//!
//! The compile-time checks of one handler are the macro's; these repeat none
//! of them except where a named policy's limits, known only now, are involved.

use super::config::policy_variable;
use super::spec::{Limits, RateLimitSpec};
use crate::Quota;
use std::collections::BTreeMap;

/// Each `#[rate_limit]` of the program with its handler's path, handlers
/// sorted by path so that the problems are reported in a stable order.
pub(crate) type HandlerLimits = [(&'static str, &'static RateLimitSpec)];

/// A limit's quotas: its own, or its named policy's as `named` resolves them
/// (`None` when the policy is undefined, which is reported elsewhere).
fn quotas_of<'q>(
    spec: &'static RateLimitSpec,
    named: &impl Fn(&str) -> Option<&'q [Quota]>,
) -> Option<&'q [Quota]> {
    match spec.limits {
        Limits::Fixed(quotas) => Some(quotas),
        Limits::Named(name) => named(name),
    }
}

/// `2 per 1 hour; 20 per 1 day`, with a burst that is not the count and
/// strictness, which the quota's own `Display` leaves out.
fn describe(quotas: &[Quota]) -> String {
    quotas
        .iter()
        .map(|quota| {
            let mut text = quota.to_string();
            if quota.burst() != quota.count() {
                text.push_str(&format!(", burst {}", quota.burst()));
            }
            if quota.is_strict() {
                text.push_str(", strict");
            }
            if quota.is_sliding() {
                text.push_str(", sliding");
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A limit's quotas for a message: `2 per 1 hour`, or `policy `login`: 2 per 1 hour`.
fn describe_limit(spec: &RateLimitSpec, quotas: &[Quota]) -> String {
    match spec.limits {
        Limits::Fixed(_) => describe(quotas),
        Limits::Named(name) => format!("policy `{name}`: {}", describe(quotas)),
    }
}

/// Scopes given different limits by different `#[rate_limit]` attributes.
///
/// A scope is one state per client, laid out for one list of quotas: a limit
/// with other quotas would read it wrongly and replace it, so that clients of
/// one handler reset those of the other and neither limit holds. Every limit
/// in a scope is compared with the first one found (handlers sorted by
/// path); the cost is not compared, since spending one budget at different
/// rates is what a shared scope is for. `named` gives a named policy's
/// resolved limits.
pub(crate) fn shared_scope_problems<'q>(
    limits: &HandlerLimits,
    named: impl Fn(&str) -> Option<&'q [Quota]>,
) -> Vec<String> {
    let mut first: BTreeMap<&'static str, (&'static str, &'static RateLimitSpec, &'q [Quota])> =
        BTreeMap::new();
    let mut problems = Vec::new();
    for &(handler, spec) in limits {
        let Some(quotas) = quotas_of(spec, &named) else {
            continue;
        };
        let Some(&(first_handler, first_spec, first_quotas)) = first.get(spec.scope) else {
            first.insert(spec.scope, (handler, spec, quotas));
            continue;
        };
        if first_quotas == quotas {
            continue;
        }
        let mut sorted = (first_quotas.to_vec(), quotas.to_vec());
        let order = |a: &Quota, b: &Quota| {
            (
                a.period(),
                a.count(),
                a.burst(),
                a.is_strict(),
                a.is_sliding(),
            )
                .cmp(&(
                    b.period(),
                    b.count(),
                    b.burst(),
                    b.is_strict(),
                    b.is_sliding(),
                ))
        };
        sorted.0.sort_by(order);
        sorted.1.sort_by(order);
        let hint = if sorted.0 == sorted.1 {
            "list them in the same order"
        } else {
            "give them the same limits or different scopes"
        };
        problems.push(format!(
            "rate-limit scope `{}` has different limits in `{first_handler}` ({}) and `{handler}` ({}); {hint}",
            spec.scope,
            describe_limit(first_spec, first_quotas),
            describe_limit(spec, quotas),
        ));
    }
    problems
}

/// Handlers whose `cost` is more than a quota of their named policy admits
/// at once: every request would be refused, forever. (A cost over limits
/// written in the attribute is a compile error.)
pub(crate) fn cost_problems<'q>(
    limits: &HandlerLimits,
    named: impl Fn(&str) -> Option<&'q [Quota]>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for &(handler, spec) in limits {
        let Limits::Named(name) = spec.limits else {
            continue;
        };
        let Some(quotas) = named(name) else {
            continue;
        };
        let Some(tightest) = quotas.iter().min_by_key(|quota| quota.burst()) else {
            continue;
        };
        if spec.cost > tightest.burst() {
            problems.push(format!(
                "`{handler}` has `cost = {}`, more than the {} requests the rate-limit policy `{name}` admits at once ({}), so every request would be refused; lower the cost or raise the policy's count to at least {}",
                spec.cost,
                tightest.burst(),
                describe(std::slice::from_ref(tightest)),
                spec.cost,
            ));
        }
    }
    problems
}

/// Policy names that share one environment variable (`login-a` and
/// `login_a` are both `POLICY_LIMIT_LOGIN_A`), among the names handlers use
/// and the names `defined` in the builder: setting the variable would
/// change both. Checked whether or not the variable is set, so that a
/// configuration that builds keeps building when an operator sets it.
pub(crate) fn policy_name_problems<'d>(
    limits: &HandlerLimits,
    defined: impl IntoIterator<Item = &'d str>,
) -> Vec<String> {
    let used = limits.iter().filter_map(|(_, spec)| match spec.limits {
        Limits::Named(name) => Some(name),
        Limits::Fixed(_) => None,
    });
    let mut by_variable: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in used.chain(defined) {
        let names = by_variable.entry(policy_variable(name)).or_default();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    by_variable
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(variable, mut names)| {
            names.sort_unstable();
            let (last, rest) = names.split_last().expect("two names or more");
            let listed = rest
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let (all, them) = if names.len() == 2 {
                ("both", "both")
            } else {
                ("all", "them all")
            };
            format!(
                "the rate-limit policies {listed} and `{last}` are {all} read from the environment variable {variable}, so one setting would change {them}; rename them so that each has its own variable"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limiting::spec::{CountWhen, KeySource, OnMissingKey};
    use std::time::Duration;

    const HOUR: Duration = Duration::from_secs(3600);

    const fn limit(scope: &'static str, limits: Limits, cost: u32) -> RateLimitSpec {
        RateLimitSpec {
            scope,
            limits,
            key: KeySource::Ip,
            on_missing: OnMissingKey::Reject,
            cost,
            count: CountWhen::Always,
            add_to_defaults: false,
        }
    }

    static TWO: [Quota; 1] = [Quota::new(2, HOUR)];
    static THREE: [Quota; 1] = [Quota::new(3, HOUR)];
    static TWO_BURST: [Quota; 1] = [Quota::new(2, HOUR).with_burst(4)];
    static TWO_STRICT: [Quota; 1] = [Quota::new(2, HOUR).strict()];
    static TWO_OF_THEM: [Quota; 2] = [
        Quota::new(2, HOUR),
        Quota::new(20, Duration::from_secs(86_400)),
    ];
    static REVERSED: [Quota; 2] = [
        Quota::new(20, Duration::from_secs(86_400)),
        Quota::new(2, HOUR),
    ];

    /// Each handler's limits with its path, as the engine gathers them.
    fn limits_of(
        handlers: &[(&'static str, &'static [RateLimitSpec])],
    ) -> Vec<(&'static str, &'static RateLimitSpec)> {
        handlers
            .iter()
            .flat_map(|&(name, specs)| specs.iter().map(move |spec| (name, spec)))
            .collect()
    }

    fn no_named(_: &str) -> Option<&'static [Quota]> {
        None
    }

    #[test]
    fn a_scope_with_two_sets_of_limits_names_both_handlers() {
        static A: [RateLimitSpec; 1] = [limit("shared", Limits::Fixed(&TWO), 1)];
        static B: [RateLimitSpec; 1] = [limit("shared", Limits::Fixed(&THREE), 1)];
        let handlers = limits_of(&[("app::a", &A), ("app::b", &B)]);
        assert_eq!(
            shared_scope_problems(&handlers, no_named),
            [
                "rate-limit scope `shared` has different limits in `app::a` (2 per 1 hour) and `app::b` (3 per 1 hour); give them the same limits or different scopes"
            ]
        );
    }

    #[test]
    fn burst_strictness_and_order_are_part_of_the_limits_and_cost_is_not() {
        static A: [RateLimitSpec; 1] = [limit("s", Limits::Fixed(&TWO), 1)];
        static BURST: [RateLimitSpec; 1] = [limit("s", Limits::Fixed(&TWO_BURST), 1)];
        static STRICT: [RateLimitSpec; 1] = [limit("s", Limits::Fixed(&TWO_STRICT), 1)];
        static COSTLY: [RateLimitSpec; 1] = [limit("s", Limits::Fixed(&TWO), 2)];
        let handlers = limits_of(&[
            ("app::a", &A),
            ("app::b", &BURST),
            ("app::c", &STRICT),
            ("app::d", &COSTLY),
        ]);
        assert_eq!(
            shared_scope_problems(&handlers, no_named),
            [
                "rate-limit scope `s` has different limits in `app::a` (2 per 1 hour) and `app::b` (2 per 1 hour, burst 4); give them the same limits or different scopes",
                "rate-limit scope `s` has different limits in `app::a` (2 per 1 hour) and `app::c` (2 per 1 hour, strict); give them the same limits or different scopes",
            ]
        );

        static LISTED: [RateLimitSpec; 1] = [limit("t", Limits::Fixed(&TWO_OF_THEM), 1)];
        static REVERSE: [RateLimitSpec; 1] = [limit("t", Limits::Fixed(&REVERSED), 1)];
        let handlers = limits_of(&[("app::a", &LISTED), ("app::b", &REVERSE)]);
        assert_eq!(
            shared_scope_problems(&handlers, no_named),
            [
                "rate-limit scope `t` has different limits in `app::a` (2 per 1 hour; 20 per 1 day) and `app::b` (20 per 1 day; 2 per 1 hour); list them in the same order"
            ]
        );
    }

    #[test]
    fn named_policies_are_compared_by_their_resolved_limits() {
        static A: [RateLimitSpec; 1] = [limit("s", Limits::Named("p"), 1)];
        static B: [RateLimitSpec; 1] = [limit("s", Limits::Named("q"), 1)];
        static C: [RateLimitSpec; 1] = [limit("s", Limits::Fixed(&TWO), 1)];
        let handlers = limits_of(&[("app::a", &A), ("app::b", &B), ("app::c", &C)]);
        let same = |_: &str| Some(&TWO[..]);
        assert!(shared_scope_problems(&handlers, same).is_empty());
        let differ = |name: &str| Some(if name == "p" { &TWO[..] } else { &THREE[..] });
        assert_eq!(
            shared_scope_problems(&handlers, differ),
            [
                "rate-limit scope `s` has different limits in `app::a` (policy `p`: 2 per 1 hour) and `app::b` (policy `q`: 3 per 1 hour); give them the same limits or different scopes"
            ]
        );
        // An undefined policy is reported on its own, not as a difference.
        assert!(shared_scope_problems(&handlers, no_named).is_empty());

        // Two named policies stacked on one handler, in one scope.
        static BOTH: [RateLimitSpec; 2] = [
            limit("s", Limits::Named("p"), 1),
            limit("s", Limits::Named("q"), 1),
        ];
        let handlers = limits_of(&[("app::both", &BOTH)]);
        assert_eq!(
            shared_scope_problems(&handlers, differ),
            [
                "rate-limit scope `s` has different limits in `app::both` (policy `p`: 2 per 1 hour) and `app::both` (policy `q`: 3 per 1 hour); give them the same limits or different scopes"
            ]
        );
    }

    #[test]
    fn a_cost_over_a_named_policy_burst_is_a_problem() {
        static A: [RateLimitSpec; 1] = [limit("app::a", Limits::Named("login"), 3)];
        let handlers = limits_of(&[("app::a", &A)]);
        assert_eq!(
            cost_problems(&handlers, |_| Some(&TWO[..])),
            [
                "`app::a` has `cost = 3`, more than the 2 requests the rate-limit policy `login` admits at once (2 per 1 hour), so every request would be refused; lower the cost or raise the policy's count to at least 3"
            ]
        );
        assert!(cost_problems(&handlers, |_| Some(&THREE[..])).is_empty());
        assert!(cost_problems(&handlers, |_| Some(&TWO_BURST[..])).is_empty());
        assert!(cost_problems(&handlers, no_named).is_empty());
    }

    #[test]
    fn names_sharing_a_variable_are_a_problem_once_both_are_in_use() {
        static A: [RateLimitSpec; 1] = [limit("app::a", Limits::Named("login-a"), 1)];
        static B: [RateLimitSpec; 1] = [limit("app::b", Limits::Named("login_a"), 1)];
        let handlers = limits_of(&[("app::a", &A), ("app::b", &B)]);
        let problem = "the rate-limit policies `login-a` and `login_a` are both read from the environment variable POLICY_LIMIT_LOGIN_A, so one setting would change both; rename them so that each has its own variable";
        assert_eq!(policy_name_problems(&handlers, []), [problem]);
        assert_eq!(policy_name_problems(&handlers[..1], ["login_a"]), [problem]);
        assert_eq!(
            policy_name_problems(&handlers, ["Login.A"]),
            [
                "the rate-limit policies `Login.A`, `login-a` and `login_a` are all read from the environment variable POLICY_LIMIT_LOGIN_A, so one setting would change them all; rename them so that each has its own variable"
            ]
        );
        // One name used and defined is one name.
        assert!(policy_name_problems(&handlers[..1], ["login-a", "other"]).is_empty());
    }
}
