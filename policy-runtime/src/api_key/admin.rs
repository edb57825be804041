//! The operators' changes to API keys while the server runs: reload the key
//! set, revoke keys, and see or lift a client's lockout.
//!
//! This module owns those operations on [`ApiKeys`] and their log events; the
//! engine's public methods hand them over. The key set is swapped whole
//! (readers keep the set they loaded until their request ends), so a request
//! never sees half a change, and the hot path takes no lock.

use super::ApiKeys;
use super::config::check_keys;
use super::lockout::LockoutStatus;
use super::scope::KeyRequirement;
use super::store::ApiKeyStore;
use crate::Environment;
use crate::client_ip::ClientIpResolver;
use std::net::IpAddr;
use std::sync::Arc;

impl ApiKeys {
    /// Replaces the keys with `keys`, checked as the build checks them
    /// against the key-protected handlers (`protected`); when refused, the
    /// old keys stay and the problems are returned.
    pub(crate) fn reload(
        &self,
        keys: ApiKeyStore,
        environment: Environment,
        protected: &[(&'static str, KeyRequirement)],
    ) -> Result<(), Vec<String>> {
        let report = check_keys(&keys, environment, protected);
        if !report.errors.is_empty() {
            tracing::error!(
                problems = report.errors.len(),
                "API keys not reloaded; the old keys stay in use"
            );
            return Err(report.errors);
        }
        report.warn(environment);
        let count = keys.len();
        self.keys.store(Arc::new(keys));
        tracing::info!(api_keys = count, "API keys reloaded");
        Ok(())
    }

    /// Revokes every key named `name`; returns how many were revoked.
    pub(crate) fn revoke(&self, name: &str) -> usize {
        let mut revoked = 0;
        self.keys.rcu(|current| {
            let mut next = ApiKeyStore::clone(current);
            revoked = next.revoke(name);
            next
        });
        tracing::warn!(key_id = name, revoked, "API key revoked");
        revoked
    }

    /// The keys in use now, as a snapshot.
    pub(crate) fn snapshot(&self) -> Arc<ApiKeyStore> {
        self.keys.load_full()
    }

    /// A client's lockout state, `ip` grouped as the lockout counts it.
    pub(crate) fn lockout_status(&self, ip: IpAddr, resolver: &ClientIpResolver) -> LockoutStatus {
        match &self.lockout {
            Some(lockout) => lockout.status(resolver.group(ip), self.clock.now()),
            None => LockoutStatus::default(),
        }
    }

    /// Lifts a client's lockout; whether there was anything to forget.
    pub(crate) fn unlock(&self, ip: IpAddr, resolver: &ClientIpResolver) -> bool {
        let unlocked = self
            .lockout
            .as_ref()
            .is_some_and(|lockout| lockout.unlock(resolver.group(ip)));
        if unlocked {
            tracing::info!(client_ip = %ip, "client unlocked");
        }
        unlocked
    }

    /// A client's lockout state as the shared store holds it (this
    /// instance's, without one), `ip` grouped as the lockout counts it.
    pub(crate) async fn lockout_status_shared(
        &self,
        ip: IpAddr,
        resolver: &ClientIpResolver,
    ) -> Result<LockoutStatus, crate::StoreError> {
        match &self.lockout {
            Some(lockout) => {
                lockout
                    .status_shared(resolver.group(ip), self.clock.now())
                    .await
            }
            None => Ok(LockoutStatus::default()),
        }
    }

    /// Lifts a client's lockout here and in the shared store; whether
    /// there was anything to forget.
    pub(crate) async fn unlock_shared(
        &self,
        ip: IpAddr,
        resolver: &ClientIpResolver,
    ) -> Result<bool, crate::StoreError> {
        let unlocked = match &self.lockout {
            Some(lockout) => lockout.unlock_shared(resolver.group(ip)).await?,
            None => false,
        };
        if unlocked {
            tracing::info!(client_ip = %ip, shared = true, "client unlocked");
        }
        Ok(unlocked)
    }

    /// How many clients the lockout tracks now (0 with the lockout off).
    pub(crate) fn lockout_tracked_clients(&self) -> usize {
        self.lockout
            .as_ref()
            .map_or(0, |lockout| lockout.tracked_clients())
    }

    /// The lockout's settings for the start-up report, or `off`.
    pub(crate) fn describe_lockout(&self) -> String {
        match &self.lockout {
            Some(log) => log.settings().describe(),
            None => "off".to_owned(),
        }
    }
}
