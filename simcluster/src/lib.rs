//! A simulated Kubernetes API server, faithful to the real proxy verb, with sample apps.
