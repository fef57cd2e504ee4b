//! `kgate`: a gateway from your machine to the HTTP services inside Kubernetes.

fn main() {}
