//! Kubeconfig loading: real-world shapes (fixtures), kubectl's selection, merge and override
//! rules, in-cluster fallback, and the failure messages.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a failure is the test's failure"
)]

use std::path::{Path, PathBuf};

use config::{
    ClusterConfig, ConfigError, ConfigSource, Credentials, DataOrigin, Env, ExecApiVersion,
    InteractiveMode, KubeArgs,
};
use secrecy::ExposeSecret;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load_fixture(name: &str) -> ClusterConfig {
    let args = KubeArgs {
        kubeconfig: Some(fixture(name)),
        ..KubeArgs::default()
    };
    ClusterConfig::load_with_env(&args, &Env::empty()).unwrap()
}

fn exec(config: &ClusterConfig) -> &config::ExecConfig {
    match &config.credentials {
        Credentials::Exec(exec) => exec,
        other => panic!("expected exec credentials, got {other:?}"),
    }
}

#[test]
fn eks_aws_get_token() {
    let c = load_fixture("eks.yaml");
    assert_eq!(
        c.server.host_str(),
        Some("0123456789abcdef0123456789abcdef.gr7.eu-west-1.eks.amazonaws.com")
    );
    assert_eq!(
        c.context.as_deref(),
        Some("arn:aws:eks:eu-west-1:111122223333:cluster/prod")
    );
    assert_eq!(c.namespace, "default");
    assert!(matches!(
        &c.tls.ca.as_ref().unwrap().origin,
        DataOrigin::Inline {
            field: "certificate-authority-data",
            ..
        }
    ));
    let e = exec(&c);
    assert_eq!(e.command, "aws");
    assert_eq!(
        e.args,
        [
            "--region",
            "eu-west-1",
            "eks",
            "get-token",
            "--cluster-name",
            "prod",
            "--output",
            "json"
        ]
    );
    assert_eq!(e.env, [("AWS_PROFILE".to_owned(), "prod-admin".to_owned())]);
    assert_eq!(e.api_version, ExecApiVersion::V1Beta1);
    assert_eq!(e.interactive_mode, InteractiveMode::IfAvailable);
    assert!(e.cluster.is_none());
}

#[test]
fn gke_gcloud_auth_plugin() {
    let c = load_fixture("gke.yaml");
    assert_eq!(c.server.as_str(), "https://34.78.123.45/");
    let e = exec(&c);
    assert_eq!(e.command, "gke-gcloud-auth-plugin");
    assert!(
        e.install_hint
            .as_deref()
            .unwrap()
            .contains("cluster-access-for-kubectl#install_plugin")
    );
    let info = e.cluster.as_ref().unwrap();
    assert_eq!(info.server, "https://34.78.123.45");
    assert!(
        info.certificate_authority_data
            .as_ref()
            .is_some_and(|ca| ca.starts_with(b"-----BEGIN CERTIFICATE-----"))
    );
}

#[test]
fn aks_kubelogin() {
    let c = load_fixture("aks.yaml");
    assert_eq!(c.server.port(), None, "443 is the https default");
    assert_eq!(c.namespace, "payments");
    let e = exec(&c);
    assert_eq!(e.command, "kubelogin");
    assert_eq!(e.args.first().map(String::as_str), Some("get-token"));
    assert!(e.args.contains(&"devicecode".to_owned()));
    assert!(e.env.is_empty());
    assert!(
        e.install_hint
            .as_deref()
            .unwrap()
            .contains("kubelogin is not installed")
    );
    assert!(e.cluster.is_none());
}

#[test]
fn kind_and_k3s_client_certificates() {
    for (name, context, port) in [
        ("kind.yaml", "kind-kind", 40123),
        ("k3s.yaml", "default", 6443),
    ] {
        let c = load_fixture(name);
        assert_eq!(c.context.as_deref(), Some(context));
        assert_eq!(c.server.host_str(), Some("127.0.0.1"));
        assert_eq!(c.server.port(), Some(port));
        assert!(matches!(c.credentials, Credentials::None));
        let id = c.tls.client_identity.as_ref().unwrap();
        assert!(id.cert.pem.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert!(
            id.key_pem
                .expose_secret()
                .starts_with(b"-----BEGIN EC PRIVATE KEY-----")
        );
        assert!(matches!(
            id.key_origin,
            DataOrigin::Inline {
                field: "client-key-data",
                ..
            }
        ));
    }
}

#[test]
fn minikube_relative_files() {
    let c = load_fixture("minikube.yaml");
    assert_eq!(c.server.as_str(), "https://192.168.49.2:8443/");
    let DataOrigin::File(ca) = &c.tls.ca.as_ref().unwrap().origin else {
        panic!("CA should come from a file")
    };
    assert!(ca.ends_with("fixtures/minikube/ca.crt"), "{}", ca.display());
    assert!(
        ca.is_absolute(),
        "relative paths resolve against the kubeconfig's folder"
    );
    let id = c.tls.client_identity.as_ref().unwrap();
    assert!(
        matches!(&id.key_origin, DataOrigin::File(p) if p.ends_with("profiles/minikube/client.key"))
    );
    assert!(
        id.key_pem
            .expose_secret()
            .starts_with(b"-----BEGIN RSA PRIVATE KEY-----")
    );
}

#[test]
fn rancher_server_path_and_token() {
    let c = load_fixture("rancher.yaml");
    assert_eq!(c.server.host_str(), Some("rancher.example.com"));
    assert_eq!(c.server.path(), "/k8s/clusters/c-m-4xbtz7kq");
    let Credentials::Token(token) = &c.credentials else {
        panic!("expected a token")
    };
    assert!(token.expose_secret().starts_with("kubeconfig-u-fake7x2k:"));
    assert!(
        !format!("{c:?}").contains("kubeconfig-u-fake7x2k"),
        "Debug must redact the token"
    );
}

const TWO: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: a\n  cluster: {server: 'https://a.example:6443'}\n- name: b\n  cluster: {server: 'https://b.example:6443', tls-server-name: b-internal}\ncontexts:\n- name: ctx-a\n  context: {cluster: a, user: ua, namespace: na}\n- name: ctx-b\n  context: {cluster: b, user: ub}\ncurrent-context: ctx-a\nusers:\n- name: ua\n  user: {token: token-a}\n- name: ub\n  user: {username: bob, password: pw}\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn with_file(dir: &Path, text: &str, args: KubeArgs) -> Result<ClusterConfig, ConfigError> {
    let path = write(dir, "config", text);
    ClusterConfig::load_with_env(
        &KubeArgs {
            kubeconfig: Some(path),
            ..args
        },
        &Env::empty(),
    )
}

#[test]
fn selection_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let c = with_file(dir.path(), TWO, KubeArgs::default()).unwrap();
    assert_eq!(
        (c.context.as_deref(), c.namespace.as_str()),
        (Some("ctx-a"), "na")
    );
    assert_eq!(c.server.as_str(), "https://a.example:6443/");

    let c = with_file(
        dir.path(),
        TWO,
        KubeArgs {
            context: Some("ctx-b".into()),
            ..KubeArgs::default()
        },
    )
    .unwrap();
    assert_eq!(c.tls.server_name.as_deref(), Some("b-internal"));
    assert!(matches!(&c.credentials, Credentials::Basic { username, .. } if username == "bob"));

    // --server clears the cluster's tls-server-name (clientcmd getClusterInfo); --user and
    // --namespace and --as override the context.
    let args = KubeArgs {
        context: Some("ctx-b".into()),
        server: Some("https://other.example".into()),
        user: Some("ua".into()),
        namespace: Some("ns2".into()),
        as_user: Some("carol".into()),
        as_group: vec!["g1".into()],
        ..KubeArgs::default()
    };
    let c = with_file(dir.path(), TWO, args).unwrap();
    assert_eq!(c.server.as_str(), "https://other.example/");
    assert_eq!(c.tls.server_name, None);
    assert!(matches!(&c.credentials, Credentials::Token(t) if t.expose_secret() == "token-a"));
    assert_eq!(c.namespace, "ns2");
    assert_eq!(c.impersonation.user.as_deref(), Some("carol"));
    assert_eq!(c.impersonation.groups, ["g1"]);

    // --token replaces the user's credentials.
    let args = KubeArgs {
        context: Some("ctx-b".into()),
        token: Some("flag-token".into()),
        ..KubeArgs::default()
    };
    let c = with_file(dir.path(), TWO, args).unwrap();
    assert!(matches!(&c.credentials, Credentials::Token(t) if t.expose_secret() == "flag-token"));
}

#[test]
fn kubeconfig_env_merges_first_wins_and_skips_missing() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(
        dir.path(),
        "first",
        "apiVersion: v1\nkind: Config\ncurrent-context: ctx-b\nusers:\n- name: ub\n  user: {token: from-first}\n",
    );
    let second = write(dir.path(), "second", TWO);
    let missing = dir.path().join("missing");
    let list = std::env::join_paths([&missing, &first, &second]).unwrap();
    let env = Env {
        kubeconfig: Some(list),
        ..Env::empty()
    };
    let c = ClusterConfig::load_with_env(&KubeArgs::default(), &env).unwrap();
    assert_eq!(
        c.context.as_deref(),
        Some("ctx-b"),
        "the first file to set current-context wins"
    );
    assert!(matches!(&c.credentials, Credentials::Token(t) if t.expose_secret() == "from-first"));
    assert_eq!(c.source, ConfigSource::Kubeconfig(vec![first, second]));
}

#[test]
fn home_kube_config_then_nothing() {
    let home = tempfile::tempdir().unwrap();
    let env = Env {
        home: Some(home.path().to_owned()),
        ..Env::empty()
    };
    let error = ClusterConfig::load_with_env(&KubeArgs::default(), &env).unwrap_err();
    assert!(matches!(error, ConfigError::NoConfiguration { .. }));
    let text = error.to_string();
    assert!(
        text.contains(".kube/config does not exist") && text.contains("--kubeconfig"),
        "{text}"
    );

    std::fs::create_dir(home.path().join(".kube")).unwrap();
    write(&home.path().join(".kube"), "config", TWO);
    let c = ClusterConfig::load_with_env(&KubeArgs::default(), &env).unwrap();
    assert_eq!(c.context.as_deref(), Some("ctx-a"));

    // --server alone works without any file.
    let args = KubeArgs {
        server: Some("127.0.0.1:8080".into()),
        ..KubeArgs::default()
    };
    let c = ClusterConfig::load_with_env(&args, &Env::empty()).unwrap();
    assert_eq!(
        c.server.as_str(),
        "http://127.0.0.1:8080/",
        "no TLS settings: http, as rest.DefaultServerURL"
    );
    assert_eq!(c.source, ConfigSource::Flags);
}

#[test]
fn in_cluster_needs_its_files() {
    let sa = tempfile::tempdir().unwrap();
    let env = Env {
        kubernetes_service_host: Some("fd00::1".into()),
        kubernetes_service_port: Some("443".into()),
        pod_namespace: Some("from-env".into()),
        service_account_dir: sa.path().to_owned(),
        ..Env::empty()
    };
    let error = ClusterConfig::load_with_env(&KubeArgs::default(), &env).unwrap_err();
    assert!(
        error.to_string().contains("service-account token"),
        "{error}"
    );
    std::fs::write(sa.path().join("token"), "t").unwrap();
    std::fs::write(sa.path().join("ca.crt"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let c = ClusterConfig::load_with_env(&KubeArgs::default(), &env).unwrap();
    assert_eq!(c.server.as_str(), "https://[fd00::1]/");
    assert_eq!(c.namespace, "from-env");
    assert!(
        matches!(&c.credentials, Credentials::TokenFile { path, .. } if path.ends_with("token"))
    );
}

#[test]
fn failure_messages() {
    let dir = tempfile::tempdir().unwrap();
    let message =
        |text: &str, args: KubeArgs| with_file(dir.path(), text, args).unwrap_err().to_string();

    let text = message(
        TWO,
        KubeArgs {
            context: Some("prod".into()),
            ..KubeArgs::default()
        },
    );
    assert!(
        text.contains("context \"prod\" does not exist") && text.contains("\"ctx-a\", \"ctx-b\""),
        "{text}"
    );

    let text = message(
        &TWO.replace("current-context: ctx-a\n", ""),
        KubeArgs::default(),
    );
    assert!(
        text.contains("current-context is not set") && text.contains("--context"),
        "{text}"
    );

    let args = KubeArgs {
        kubeconfig: Some(dir.path().join("nope.yaml")),
        ..KubeArgs::default()
    };
    let text = ClusterConfig::load_with_env(&args, &Env::empty())
        .unwrap_err()
        .to_string();
    assert!(text.contains("nope.yaml"), "{text}");

    let ca_missing = TWO.replace(
        "{server: 'https://a.example:6443'}",
        "{server: 'https://a.example:6443', certificate-authority: certs/ca.pem}",
    );
    let text = message(&ca_missing, KubeArgs::default());
    assert!(
        text.contains("certificate-authority") && text.contains("certs/ca.pem"),
        "{text}"
    );

    let both = TWO.replace("{server: 'https://a.example:6443'}", "{server: 'https://a.example:6443', certificate-authority-data: Zm9v, insecure-skip-tls-verify: true}");
    assert!(
        message(&both, KubeArgs::default())
            .contains("both a certificate authority and insecure-skip-tls-verify")
    );

    let v1 = TWO.replace(
        "{token: token-a}",
        "{exec: {apiVersion: client.authentication.k8s.io/v1, command: x}}",
    );
    assert!(message(&v1, KubeArgs::default()).contains("interactiveMode must be set"));

    let gcp = TWO.replace(
        "{token: token-a}",
        "{auth-provider: {name: gcp, config: {}}}",
    );
    assert!(message(&gcp, KubeArgs::default()).contains("gke-gcloud-auth-plugin"));

    let cert_only = TWO.replace("{token: token-a}", "{client-certificate-data: Zm9v}");
    assert!(message(&cert_only, KubeArgs::default()).contains("no client key"));

    // A broken file's message gives the position, never the content around it.
    let broken = TWO.replace("{token: token-a}", "{token: leak-me-please, [");
    let text = message(&broken, KubeArgs::default());
    assert!(text.contains("not a valid kubeconfig"), "{text}");
    assert!(!text.contains("leak-me-please"), "{text}");
}
