//! Certificates for the Redis TLS tests, made with rcgen in a directory of
//! their own that is deleted with them: a CA with a server and a client
//! certificate, and a CA nobody trusts with a server certificate.
#![allow(dead_code)]

use super::redis_server::RedisServer;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The certificates of one test, in a directory of their own that is
/// deleted with it.
pub struct Pki {
    dir: PathBuf,
}

/// A certificate signed by `issuer` (self-signed when `None`), written as
/// `<name>.pem` and `<name>.key`.
fn certificate(
    dir: &Path,
    name: &str,
    mut params: CertificateParams,
    issuer: Option<&Issuer<'_, KeyPair>>,
) -> KeyPair {
    params
        .distinguished_name
        .push(DnType::CommonName, format!("policy-runtime test {name}"));
    let key = KeyPair::generate().unwrap();
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, issuer).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    key
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn leaf_params(names: &[&str], purposes: &[ExtendedKeyUsagePurpose]) -> CertificateParams {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = purposes.to_vec();
    params
}

impl Pki {
    /// `ca`: the trusted CA; `server` and `client`: signed by it;
    /// `rogue-ca` and `rogue-server`: a CA nobody trusts and a server
    /// certificate it signed.
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "policy-redis-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (ca, server, client) in [
            ("ca", "server", Some("client")),
            ("rogue-ca", "rogue-server", None),
        ] {
            let ca_key = certificate(&dir, ca, ca_params(), None);
            let issuer = Issuer::new(ca_params_named(ca), ca_key);
            certificate(
                &dir,
                server,
                // Client authentication too: cluster nodes present it to
                // each other, and the cluster bus always asks for one.
                leaf_params(
                    &["127.0.0.1", "localhost"],
                    &[
                        ExtendedKeyUsagePurpose::ServerAuth,
                        ExtendedKeyUsagePurpose::ClientAuth,
                    ],
                ),
                Some(&issuer),
            );
            if let Some(client) = client {
                certificate(
                    &dir,
                    client,
                    leaf_params(&[], &[ExtendedKeyUsagePurpose::ClientAuth]),
                    Some(&issuer),
                );
            }
        }
        Self { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn arg(&self, file: &str) -> String {
        self.path(file).to_string_lossy().into_owned()
    }

    /// A TLS-only server with `server` as its certificate, trusting `ca`
    /// for client certificates, which it requires with `require_clients`.
    pub fn server(&self, server: &str, require_clients: bool) -> RedisServer {
        RedisServer::start_tls(&self.server_args(server, require_clients))
    }

    /// The TLS arguments of [`Pki::server`].
    pub fn server_args(&self, server: &str, require_clients: bool) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.arg(&format!("{server}.pem")),
            "--tls-key-file".into(),
            self.arg(&format!("{server}.key")),
            "--tls-ca-cert-file".into(),
            self.arg("ca.pem"),
            "--tls-auth-clients".into(),
            if require_clients { "yes" } else { "no" }.into(),
        ]
    }
}

/// The distinguished name is part of what signs: the issuer's parameters
/// must be those its certificate was made with.
fn ca_params_named(name: &str) -> CertificateParams {
    let mut params = ca_params();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("policy-runtime test {name}"));
    params
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
