//! From a kubeconfig to an authenticated upstream: rustls client configuration and a
//! credential source that refreshes on expiry and once on a 401.
//!
//! Contract: [`ApiClient::new`] takes a `config::ClusterConfig` and gives a cheap-to-clone
//! client whose [`ApiClient::send`] forwards streaming requests to the API server with the
//! kubeconfig's TLS settings and credentials (see `client` for the exact rules), and whose
//! errors ([`SendError`], [`CredentialError`], [`BuildError`]) say whose fault a failure was
//! without ever containing a secret.

mod cache;
mod client;
mod connector;
mod credential;
mod error;
mod exec;
mod oidc;
mod tls;
mod token_file;

pub use client::{
    ApiClient, Body, BoxError, ClientAuthorization, ClientOptions, empty_body, full_body,
};
pub use error::{BuildError, CredentialError, Fault, SendError, error_chain};

#[cfg(test)]
mod tests {
    /// The gateway spawns requests onto a multi-threaded runtime: the client and its futures
    /// must be `Send`.
    #[test]
    fn send_futures_are_send() {
        fn is_send<T: Send>(_: &T) {}
        fn check(client: &crate::ApiClient) {
            is_send(&client.send(http::Request::new(crate::empty_body())));
            is_send(&client.send_upgrade(http::Request::new(crate::empty_body())));
            is_send(&client.get_json::<serde_json::Value>("/api"));
        }
        let _ = check;
    }
}
