//! The cluster's certificates: its own CA, the API server's serving certificate (for
//! `127.0.0.1`, `::1`, `localhost` and the in-cluster `kubernetes.default.svc` names), client
//! certificates whose subject CN is the user and O the groups, as the API server's x509
//! authenticator reads them (apiserver `pkg/authentication/request/x509/x509.go`
//! `CommonNameUserConversion`), and self-signed certificates for HTTPS-only endpoints.
//!
//! [`Pki`] is public so that the load benchmark's stand-in API server serves the same kind of
//! certificate chain as the simulated cluster, from one piece of code.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

fn cert_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |source| Error::Certificate {
        what: what.to_owned(),
        source,
    }
}

/// The CA and the API server's serving certificate.
pub struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
    server_pem: String,
    server_key_pem: String,
}

impl Pki {
    /// A fresh CA and a serving certificate for `127.0.0.1`, `::1`, `localhost` and the
    /// in-cluster `kubernetes.default.svc` names.
    pub fn generate() -> Result<Self, Error> {
        let ca_key = KeyPair::generate().map_err(cert_err("CA"))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err("CA"))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "simcluster-ca");
        ca_params.distinguished_name = dn;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err("CA"))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(cert_err("API server"))?;
        let mut params = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
        ])
        .map_err(cert_err("API server"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "kube-apiserver");
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .map_err(cert_err("API server"))?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            issuer,
            server_chain: vec![server_cert.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
            server_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The API server's serving certificate, PEM.
    pub fn server_cert_pem(&self) -> &str {
        &self.server_pem
    }

    /// The serving certificate's private key, PKCS#8 PEM.
    pub fn server_key_pem(&self) -> &str {
        &self.server_key_pem
    }

    /// A client certificate for `user` in `groups`, signed by the CA: `(cert_pem, key_pem)`.
    pub(crate) fn client_cert(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<(String, String), Error> {
        let what = format!("client ({user})");
        let key = KeyPair::generate().map_err(|source| Error::Certificate {
            what: what.clone(),
            source,
        })?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|source| Error::Certificate {
                what: what.clone(),
                source,
            })?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        for group in groups {
            dn.push(DnType::OrganizationName, *group);
        }
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| Error::Certificate { what, source })?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The API server's TLS configuration: h2 and http/1.1 by ALPN, client certificates
    /// optional but, when given, verified against the CA.
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der.clone())
            .map_err(|source| Error::Tls {
                what: "client CA",
                source,
            })?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::Tls {
            what: "client certificate verifier",
            source: rustls::Error::General(e.to_string()),
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| Error::Tls {
                what: "API server",
                source,
            })?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .map_err(|source| Error::Tls {
                what: "API server",
                source,
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// A TLS configuration with a fresh self-signed certificate, for endpoints that speak HTTPS
/// (the API server reaches them without verifying, so nobody needs to trust it).
pub(crate) fn self_signed_server_config(name: &str) -> Result<rustls::ServerConfig, Error> {
    let what = format!("endpoint ({name})");
    let key = KeyPair::generate().map_err(|source| Error::Certificate {
        what: what.clone(),
        source,
    })?;
    let params = CertificateParams::new(vec![name.to_owned(), "127.0.0.1".to_owned()]).map_err(
        |source| Error::Certificate {
            what: what.clone(),
            source,
        },
    )?;
    let cert = params
        .self_signed(&key)
        .map_err(|source| Error::Certificate { what, source })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Tls {
            what: "endpoint",
            source,
        })?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|source| Error::Tls {
            what: "endpoint",
            source,
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The user and groups of a verified client certificate: CN and O of its subject.
pub(crate) fn cert_identity(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some((user, groups))
}
