//! From a kubeconfig to an authenticated upstream: rustls client configuration and a
//! credential source that refreshes on expiry and once on a 401.
