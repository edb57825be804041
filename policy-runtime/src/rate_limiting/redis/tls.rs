//! TLS to Redis (`rediss://`): the certificates a store trusts and presents.
//!
//! This module owns the TLS settings of a [`RedisStoreBuilder`](super::RedisStoreBuilder)
//! (a CA file, a client certificate and key, from the builder or from
//! `REDIS_TLS_*`), reading and checking those files when the store is built
//! (so a bad file is a start-up error naming it, not an outage later), the
//! rustls crypto provider, and recognising a TLS failure among the errors of
//! a connection, to say what to fix.
//!
//! The handshake itself is the redis crate's (its rustls support): this
//! module only hands it the PEM it has checked.

use super::RedisConfigError;
use ::redis::{ClientTlsConfig, RedisError, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// The variable naming the CA certificates (PEM) that the server's certificate must chain to.
pub(super) const CA_VARIABLE: &str = "REDIS_TLS_CA_FILE";
/// The variable naming the client certificate chain (PEM), for servers that require one.
pub(super) const CERT_VARIABLE: &str = "REDIS_TLS_CERT_FILE";
/// The variable naming the client certificate's private key (PEM).
pub(super) const KEY_VARIABLE: &str = "REDIS_TLS_KEY_FILE";

/// One file of the TLS settings, with the setting that named it (for errors).
#[derive(Clone, Debug)]
struct Setting {
    /// `REDIS_TLS_CA_FILE` or `tls_ca_file`, as the user wrote it.
    name: &'static str,
    path: PathBuf,
}

impl Setting {
    fn error(&self, reason: impl Into<String>) -> RedisConfigError {
        RedisConfigError::TlsFile {
            setting: self.name.to_owned(),
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn read(&self) -> Result<Vec<u8>, RedisConfigError> {
        std::fs::read(&self.path).map_err(|error| self.error(format!("cannot read it: {error}")))
    }

    /// The certificates of a PEM file: at least one, all well formed.
    fn certificates(&self) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), RedisConfigError> {
        let pem = self.read()?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.error(format!("not a PEM certificate file: {error}")))?;
        if certificates.is_empty() {
            return Err(self.error("holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"));
        }
        Ok((pem, certificates))
    }
}

/// The TLS files of a store; all optional.
#[derive(Clone, Debug, Default)]
pub(super) struct TlsFiles {
    ca: Option<Setting>,
    cert: Option<Setting>,
    key: Option<Setting>,
}

/// The checked contents of [`TlsFiles`], ready for the redis crate.
pub(super) struct Loaded {
    pub(super) certificates: TlsCertificates,
}

impl TlsFiles {
    pub(super) fn set_ca(&mut self, path: PathBuf) {
        self.ca = Some(Setting {
            name: "tls_ca_file",
            path,
        });
    }

    pub(super) fn set_client(&mut self, cert: PathBuf, key: PathBuf) {
        self.cert = Some(Setting {
            name: "tls_client_cert (certificate)",
            path: cert,
        });
        self.key = Some(Setting {
            name: "tls_client_cert (key)",
            path: key,
        });
    }

    /// Takes the files that `REDIS_TLS_*` name (as `lookup` reads them),
    /// keeping the others as they are. An empty variable counts as unset.
    pub(super) fn read_variables(
        &mut self,
        lookup: impl Fn(&str) -> Result<Option<String>, RedisConfigError>,
    ) -> Result<(), RedisConfigError> {
        for (name, slot) in [
            (CA_VARIABLE, &mut self.ca),
            (CERT_VARIABLE, &mut self.cert),
            (KEY_VARIABLE, &mut self.key),
        ] {
            if let Some(path) = lookup(name)?.filter(|path| !path.trim().is_empty()) {
                *slot = Some(Setting {
                    name,
                    path: PathBuf::from(path.trim()),
                });
            }
        }
        Ok(())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// The names of the settings given, for an error about them.
    pub(super) fn names(&self) -> String {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .flatten()
            .map(|setting| setting.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads and checks every file, and that rustls accepts them together
    /// (the key is the certificate's), so that nothing about them can fail
    /// later, at a connection.
    pub(super) fn load(&self) -> Result<Loaded, RedisConfigError> {
        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();
        let root_cert = match &self.ca {
            Some(ca) => {
                let (pem, certificates) = ca.certificates()?;
                for certificate in certificates {
                    roots.add(certificate).map_err(|error| {
                        ca.error(format!("not a usable CA certificate: {error}"))
                    })?;
                }
                Some(pem)
            }
            // The redis crate trusts the WebPKI roots then; an empty store
            // does as well for checking the client certificate below.
            None => None,
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| RedisConfigError::Tls {
                reason: format!("rustls refused its default protocol versions: {error}"),
            })?
            .with_root_certificates(roots);
        let client_tls = match (&self.cert, &self.key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let (cert_pem, chain) = cert.certificates()?;
                let key_pem = key.read()?;
                let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| {
                    key.error(format!(
                        "not a PEM private key (PKCS#8, PKCS#1 or SEC1): {error}"
                    ))
                })?;
                builder
                    .with_client_auth_cert(chain, private_key)
                    .map_err(|error| {
                        key.error(format!(
                            "does not go with the client certificate `{}`: {error}",
                            cert.path.display()
                        ))
                    })?;
                Some(ClientTlsConfig {
                    client_cert: cert_pem,
                    client_key: key_pem,
                })
            }
            (Some(only), None) | (None, Some(only)) => {
                return Err(RedisConfigError::Tls {
                    reason: format!(
                        "{} is set without its pair: a client certificate needs both \
                         {CERT_VARIABLE} and {KEY_VARIABLE} (or `tls_client_cert(cert, key)`)",
                        only.name
                    ),
                });
            }
        };
        Ok(Loaded {
            certificates: TlsCertificates {
                client_tls,
                root_cert,
            },
        })
    }
}

/// The crypto provider of the TLS connections: `ring`, the one reqwest and
/// jsonwebtoken already use here.
///
/// The redis crate builds its rustls configuration with the process-wide
/// provider, and rustls panics when there is none and it cannot pick one
/// from its features (when some other crate also enabled `aws-lc-rs`). So
/// `ring` is installed as the process default when the process has none; an
/// application that installed its own keeps it.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return Arc::clone(installed);
    }
    // Losing a race with another installer is fine: theirs is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    rustls::crypto::CryptoProvider::get_default()
        .map(Arc::clone)
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Makes sure a TLS connection will find a crypto provider (see [`provider`]).
pub(super) fn ensure_provider() {
    provider();
}

/// What to fix when `error` is a TLS failure with the server: `None` for
/// other errors.
pub(super) fn problem(error: &RedisError) -> Option<String> {
    let rustls_error = rustls_error(error)?;
    let advice = match rustls_error {
        rustls::Error::InvalidCertificate(_) => format!(
            "the Redis server's TLS certificate is not trusted ({rustls_error}); give the CA that \
             signed it with {CA_VARIABLE} or `tls_ca_file`, and connect with the name it was issued for"
        ),
        rustls::Error::AlertReceived(alert) => format!(
            "the Redis server ended the TLS handshake ({alert:?}); if it requires client \
             certificates (`tls-auth-clients yes`), give one with {CERT_VARIABLE} and {KEY_VARIABLE} \
             or `tls_client_cert`, signed by a CA the server trusts"
        ),
        other => format!("TLS with the Redis server failed: {other}"),
    };
    Some(advice)
}

/// The rustls error behind `error`, if any: the redis crate keeps the I/O
/// error of a failed handshake (behind an `Arc`), which keeps rustls' own.
fn rustls_error(error: &RedisError) -> Option<&rustls::Error> {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(mut current) = cause {
        if let Some(shared) = current.downcast_ref::<Shared>() {
            current = &**shared;
        }
        if let Some(found) = current.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        cause = current.source();
    }
    None
}
