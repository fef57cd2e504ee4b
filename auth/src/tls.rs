//! rustls client configuration towards the API server (and an OIDC issuer).
//!
//! Contract: trust exactly the configured CA bundle, or the operating system's roots when
//! none is configured (client-go uses the system pool likewise); `insecure-skip-tls-verify`
//! accepts any certificate but still checks handshake signatures, and logs a warning. The
//! client certificate is served by a [`ClientCertSlot`] that an exec plugin can replace at
//! run time, so plugin-issued certificates rotate without rebuilding connectors (the gap
//! kube-rs has, kube-rs#1675).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use config::{ClientIdentity, PemData, TlsConfig};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use secrecy::ExposeSecret;

use crate::error::BuildError;

/// The one crypto provider kgate uses (ring), passed explicitly so that nothing depends on
/// a process-wide default being installed.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A replaceable TLS client certificate.
#[derive(Debug, Default)]
pub(crate) struct ClientCertSlot {
    current: ArcSwapOption<CertifiedKey>,
}

impl ClientCertSlot {
    pub(crate) fn set(&self, key: Option<Arc<CertifiedKey>>) {
        self.current.store(key);
    }
}

impl ResolvesClientCert for ClientCertSlot {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    fn has_certs(&self) -> bool {
        self.current.load().is_some()
    }
}

/// Parses a PEM certificate chain and private key (PKCS#1 RSA, SEC1 EC or PKCS#8 of any of
/// RSA, ECDSA and Ed25519) into a signing identity whose key matches the leaf certificate.
pub(crate) fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    origin: &str,
) -> Result<Arc<CertifiedKey>, BuildError> {
    let invalid = |reason: String| BuildError::InvalidClientIdentity {
        origin: origin.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the certificate is not valid PEM ({e})")))?;
    if chain.is_empty() {
        return Err(invalid("no CERTIFICATE block found".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        invalid(
            "no usable private key found; the key must be PEM (PKCS#1 RSA, SEC1 EC or PKCS#8)"
                .to_owned(),
        )
    })?;
    let provider = provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        invalid(format!(
            "the private key is of an unsupported type or does not match the certificate ({e})"
        ))
    })?;
    Ok(Arc::new(certified))
}

pub(crate) fn identity_key(identity: &ClientIdentity) -> Result<Arc<CertifiedKey>, BuildError> {
    certified_key(
        &identity.cert.pem,
        identity.key_pem.expose_secret(),
        &identity.cert.origin.to_string(),
    )
}

/// Trust anchors: the given PEM bundle, or the system's roots.
pub(crate) fn root_store(ca: Option<&PemData>) -> Result<RootCertStore, BuildError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(ca) => {
            let invalid = |reason: String| BuildError::InvalidCa {
                origin: ca.origin.to_string(),
                reason,
            };
            let certs = CertificateDer::pem_slice_iter(&ca.pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("not valid PEM ({e})")))?;
            if certs.is_empty() {
                return Err(invalid("no CERTIFICATE block found".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| invalid(e.to_string()))?;
            }
        }
        None => {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::debug!(%error, "skipping an unreadable system root certificate source");
            }
            let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
            if added == 0 {
                let reason = loaded
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "the system trust store is empty".to_owned());
                return Err(BuildError::NoSystemRoots { reason });
            }
        }
    }
    Ok(roots)
}

/// A client configuration for the API server: verifier per `tls`, the client-certificate slot,
/// and no ALPN (hyper-rustls sets it per connector).
pub(crate) fn client_config(
    tls: &TlsConfig,
    slot: Arc<ClientCertSlot>,
) -> Result<ClientConfig, BuildError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Tls {
            reason: e.to_string(),
        })?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(wire::tls::InsecureVerifier::new(provider))
    } else {
        let roots = root_store(tls.ca.as_ref())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| BuildError::Tls {
                reason: e.to_string(),
            })?;
        builder.with_webpki_verifier(verifier)
    };
    Ok(builder.with_client_cert_resolver(slot))
}

/// A client configuration trusting `ca` (or the system roots), without client certificates;
/// for OIDC issuers and HTTPS proxies.
pub(crate) fn plain_client_config(ca: Option<&PemData>) -> Result<ClientConfig, BuildError> {
    let provider = provider();
    let roots = root_store(ca)?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Tls {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The name the server certificate is checked against.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, BuildError> {
    ServerName::try_from(name.to_owned()).map_err(|_| BuildError::InvalidServerName {
        name: name.to_owned(),
    })
}
