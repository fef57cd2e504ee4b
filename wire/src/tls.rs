//! Go's `InsecureSkipVerify` for rustls.
//!
//! Contract: [`InsecureVerifier`] accepts any server certificate for any name, and still checks
//! the handshake signatures with the provider's algorithms, so the connection at least talks to
//! the holder of the presented key. It serves a kubeconfig's `insecure-skip-tls-verify: true`
//! and the API server's own connections to endpoints (kube-apiserver's
//! `CreateProxyTransport` sets `InsecureSkipVerify: true`: "Proxying to pods and services is
//! IP-based... don't expect to be able to verify the hostname").

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::SignatureScheme;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

/// A verifier that trusts every certificate; see the module contract.
#[derive(Debug)]
pub struct InsecureVerifier {
    provider: Arc<CryptoProvider>,
}

impl InsecureVerifier {
    /// Checks handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Arc<Self> {
        Arc::new(Self { provider })
    }
}

impl ServerCertVerifier for InsecureVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_certificate_for_any_name_is_accepted() {
        let verifier = InsecureVerifier::new(Arc::new(rustls::crypto::ring::default_provider()));
        let name = ServerName::try_from("anything.invalid").unwrap();
        let junk = CertificateDer::from(vec![0u8; 8]);
        assert!(
            verifier
                .verify_server_cert(&junk, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
