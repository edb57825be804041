//! The operators' view of API keys while the server runs: reload the key set,
//! revoke keys, and see or lift a client's lockout.
//!
//! This module owns the [`Engine`] methods for that. The key set is swapped
//! whole (readers keep the set they loaded until their request ends), so a
//! request never sees half a change, and the hot path takes no lock.

use super::config::check_keys;
use super::lockout::LockoutStatus;
use super::store::ApiKeyStore;
use crate::{BuildError, Engine};
use std::net::IpAddr;
use std::sync::Arc;

impl Engine {
    /// Replaces the engine's API keys with `keys`, from the next request on.
    ///
    /// The new set is checked as [`EngineBuilder::build`](crate::EngineBuilder::build)
    /// checks keys (in production, no usable key for key-protected handlers,
    /// or a short or demo key, is refused); when refused, the old keys stay.
    ///
    /// ```
    /// use policy_runtime::{ApiKeyStore, Engine};
    ///
    /// let engine = Engine::builder().api_key("old", "old-key-0123456789abcdef").build()?;
    /// let mut keys = ApiKeyStore::new();
    /// keys.insert("new", "new-key-0123456789abcdef").unwrap();
    /// engine.reload_keys(keys)?;
    /// assert_eq!(engine.api_keys().len(), 1);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn reload_keys(&self, keys: ApiKeyStore) -> Result<(), BuildError> {
        let report = check_keys(&keys, self.inner.environment);
        if !report.errors.is_empty() {
            tracing::error!(
                problems = report.errors.len(),
                "API keys not reloaded; the old keys stay in use"
            );
            return Err(BuildError {
                problems: report.errors,
            });
        }
        report.warn(self.inner.environment);
        let count = keys.len();
        self.inner.keys.store(Arc::new(keys));
        tracing::info!(api_keys = count, "API keys reloaded");
        Ok(())
    }

    /// Revokes every key named `name`, from the next request on, and returns
    /// how many were revoked. A revoked key gets 401 and is logged as
    /// `revoked`. Reloading keys (or restarting) brings back whatever the
    /// new set holds, so remove the key from its source too.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("partner", "partner-key-0123456789abcdef")
    ///     .build()?;
    /// assert_eq!(engine.revoke_key("partner"), 1);
    /// assert!(engine.api_keys().verify(b"partner-key-0123456789abcdef").is_none());
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn revoke_key(&self, name: &str) -> usize {
        let mut revoked = 0;
        self.inner.keys.rcu(|current| {
            let mut next = ApiKeyStore::clone(current);
            revoked = next.revoke(name);
            next
        });
        tracing::warn!(key_id = name, revoked, "API key revoked");
        revoked
    }

    /// The API keys in use now: a snapshot, which later reloads and
    /// revocations do not change. Clone it, change it and give it to
    /// [`Engine::reload_keys`] to add a key while the server runs.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("ci", "ci-key-0123456789abcdef")
    ///     .build()?;
    /// let mut keys = (*engine.api_keys()).clone();
    /// keys.insert("ci", "ci-key-rotated-0123456789").unwrap();
    /// engine.reload_keys(keys)?;
    /// assert_eq!(engine.api_keys().len(), 2);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn api_keys(&self) -> Arc<ApiKeyStore> {
        self.inner.keys.load_full()
    }

    /// A client's lockout state: its recent failed key attempts, and how much
    /// longer it is locked out. `ip` is grouped as the lockout counts it (an
    /// IPv6 address by its prefix).
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// let status = engine.lockout_status("203.0.113.7".parse().unwrap());
    /// assert_eq!(status.failures, 0);
    /// assert!(status.locked_for.is_none());
    /// ```
    pub fn lockout_status(&self, ip: IpAddr) -> LockoutStatus {
        let inner = &*self.inner;
        match &inner.lockout {
            Some(lockout) => lockout.status(inner.resolver.group(ip), inner.clock.now()),
            None => LockoutStatus::default(),
        }
    }

    /// Lifts a client's lockout and forgets its failed attempts; returns
    /// whether there was anything to forget.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// assert!(!engine.unlock("203.0.113.7".parse().unwrap()));
    /// ```
    pub fn unlock(&self, ip: IpAddr) -> bool {
        let inner = &*self.inner;
        let unlocked = inner
            .lockout
            .as_ref()
            .is_some_and(|lockout| lockout.unlock(inner.resolver.group(ip)));
        if unlocked {
            tracing::info!(client_ip = %ip, "client unlocked");
        }
        unlocked
    }
}
