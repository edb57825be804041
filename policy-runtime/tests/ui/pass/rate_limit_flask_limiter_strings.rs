//! Limit strings as Flask-Limiter writes them: `per` and the units in any
//! case, `|` between limits, months and years. Compiles without a warning.
#![deny(warnings)]

use policy_runtime::rate_limit;

#[rate_limit("1/SECOND | 5 per MINUTE")]
pub async fn bursty() {}

#[rate_limit("200 per day; 50 PER Hour")]
pub async fn defaults_on_a_handler() {}

#[rate_limit("1000 per month, 2000/Year")]
pub async fn monthly() {}

#[rate_limit("1 / Second", scope = "shared")]
pub async fn shared() {}

fn main() {}
