//! Command line, environment and kubeconfig selection, resolved into one typed settings value.
