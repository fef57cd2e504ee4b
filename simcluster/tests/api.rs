//! The API server side: TLS and ALPN, authentication and authorization answers, discovery,
//! lists, gets, selectors and Table output, checked against the real API server's shapes.

mod common;

use common::{client_with, get, send, start, status_json, tls_config};

#[tokio::test]
async fn serves_h2_and_http11_by_alpn() {
    let (cluster, _) = start().await;
    for (alpn, version) in [
        (&b"h2"[..], http::Version::HTTP_2),
        (&b"http/1.1"[..], http::Version::HTTP_11),
    ] {
        let client = client_with(tls_config(&cluster, None, &[alpn]));
        let req = http::Request::get(format!("{}/healthz", cluster.url()))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.version(), version);
        assert_eq!(resp.status(), 200);
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn anonymous_may_only_read_public_info() {
    let (cluster, client) = start().await;
    let r = send(&client, &cluster, "GET", "/healthz", None, &[], b"").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok"));
    let r = send(&client, &cluster, "GET", "/version", None, &[], b"").await;
    assert_eq!(r.json()["gitVersion"], "v1.32.0");
    let r = send(&client, &cluster, "GET", "/api", None, &[], b"").await;
    assert_eq!(r.status, 403);
    let mut want = status_json(
        403,
        "Forbidden",
        "forbidden: User \"system:anonymous\" cannot get path \"/api\"",
    );
    want["details"] = serde_json::json!({});
    assert_eq!(r.json(), want);
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api/v1/namespaces/demo/services",
        None,
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.json()["message"],
        "services is forbidden: User \"system:anonymous\" cannot list resource \"services\" in API group \"\" in the namespace \"demo\""
    );
}

#[tokio::test]
async fn wrong_credentials_are_401() {
    let (cluster, client) = start().await;
    let r = send(&client, &cluster, "GET", "/api", Some("nope"), &[], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.text(),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
    // basic: right and wrong password
    let basic = |p: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("bob:{p}"))
        )
    };
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api",
        None,
        &[("authorization", &basic("bob-password"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api",
        None,
        &[("authorization", &basic("bad"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 401);
    // the token user
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api/v1/namespaces",
        Some("alice-token"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn client_certificates_signed_by_the_ca_authenticate() {
    let (cluster, _) = start().await;
    let cert = cluster.client_cert_pem("carol").unwrap();
    assert!(cluster.client_cert_pem("dave").is_err());
    let client = client_with(tls_config(&cluster, Some(cert), &[b"h2"]));
    let r = common::send(
        &client,
        &cluster,
        "GET",
        "/api/v1/namespaces/demo/services/echo:http/proxy/",
        None,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A certificate from another CA fails the TLS handshake.
    let other = rcgen::generate_simple_self_signed(vec!["carol".to_owned()]).unwrap();
    let foreign = (other.cert.pem(), other.signing_key.serialize_pem());
    let client = client_with(tls_config(&cluster, Some(foreign), &[b"h2"]));
    let req = http::Request::get(format!("{}/api", cluster.url()))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert!(client.request(req).await.is_err());
}

#[tokio::test]
async fn forbidden_proxy_user_gets_the_rbac_message() {
    let (cluster, client) = start().await;
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api/v1/namespaces/ns/services/x/proxy/",
        Some("mallory-token"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    let mut want = status_json(
        403,
        "Forbidden",
        "services \"x\" is forbidden: User \"mallory\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"ns\"",
    );
    want["details"] = serde_json::json!({"name": "x", "kind": "services"});
    assert_eq!(r.json(), want);
    // POST maps to the verb "create"; nodes are cluster-scoped.
    let r = send(
        &client,
        &cluster,
        "POST",
        "/api/v1/nodes/n1/proxy/x",
        Some("mallory-token"),
        &[],
        b"",
    )
    .await;
    assert_eq!(
        r.json()["message"],
        "nodes \"n1\" is forbidden: User \"mallory\" cannot create resource \"nodes/proxy\" in API group \"\" at the cluster scope"
    );
    // Reading is still allowed.
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api/v1/services",
        Some("mallory-token"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn discovery_documents() {
    let (cluster, client) = start().await;
    let api = get(&client, &cluster, "/api?timeout=32s").await.json();
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"][0], "v1");
    let apis = get(&client, &cluster, "/apis").await.json();
    assert_eq!(apis["groups"][0]["name"], "apps");
    assert_eq!(apis["groups"][1]["name"], "discovery.k8s.io");
    let apps = get(&client, &cluster, "/apis/apps/v1").await.json();
    assert_eq!(apps["resources"][0]["shortNames"][0], "deploy");
    let deploy = get(
        &client,
        &cluster,
        "/apis/apps/v1/namespaces/demo/deployments/whoami",
    )
    .await
    .json();
    assert_eq!(deploy["kind"], "Deployment");
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "whoami");
    assert_eq!(deploy["status"]["readyReplicas"], 2);
    let v1 = get(&client, &cluster, "/api/v1").await.json();
    let names: Vec<&str> = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "namespaces",
        "services",
        "services/proxy",
        "pods",
        "pods/proxy",
        "pods/portforward",
        "nodes",
        "nodes/proxy",
        "endpoints",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let r = get(&client, &cluster, "/apis/discovery.k8s.io/v1")
        .await
        .json();
    assert_eq!(r["resources"][0]["name"], "endpointslices");
    let r = get(&client, &cluster, "/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["message"],
        "the server could not find the requested resource"
    );
}

#[tokio::test]
async fn lists_gets_and_selectors() {
    let (cluster, client) = start().await;
    let list = get(&client, &cluster, "/api/v1/services").await.json();
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("ServiceList"), Some("v1"))
    );
    assert!(
        list["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    assert!(list["items"].as_array().unwrap().len() >= 8);

    let sel = get(&client, &cluster, "/api/v1/namespaces/kube-system/services?labelSelector=kubernetes.io%2Fcluster-service%3Dtrue").await.json();
    let mut names: Vec<&str> = sel["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["elasticsearch-logging", "kube-dns"]);
    let all = get(
        &client,
        &cluster,
        "/api/v1/services?labelSelector=kubernetes.io/cluster-service==true",
    )
    .await
    .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "grafana too");

    let svc = get(
        &client,
        &cluster,
        "/api/v1/namespaces/kube-system/services/kube-dns",
    )
    .await
    .json();
    assert_eq!(
        (
            svc["kind"].as_str(),
            svc["spec"]["ports"][0]["name"].as_str()
        ),
        (Some("Service"), Some("dns"))
    );
    assert_eq!(svc["metadata"]["labels"]["kubernetes.io/name"], "CoreDNS");

    let missing = get(&client, &cluster, "/api/v1/namespaces/demo/services/nope").await;
    assert_eq!(missing.status, 404);
    let mut want = status_json(404, "NotFound", "services \"nope\" not found");
    want["details"] = serde_json::json!({"name": "nope", "kind": "services"});
    assert_eq!(missing.json(), want);

    let eps = get(&client, &cluster, "/api/v1/namespaces/demo/endpoints/shop")
        .await
        .json();
    assert_eq!(eps["subsets"][0]["ports"][0]["name"], "http");
    assert_eq!(
        eps["subsets"][0]["addresses"][0]["targetRef"]["kind"],
        "Pod"
    );
    let offline = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/endpoints/offline",
    )
    .await
    .json();
    assert!(offline.get("subsets").is_none());

    let slices = get(&client, &cluster, "/apis/discovery.k8s.io/v1/namespaces/demo/endpointslices?labelSelector=kubernetes.io/service-name=shop").await.json();
    assert_eq!(slices["kind"], "EndpointSliceList");
    assert_eq!(
        slices["items"][0]["endpoints"][0]["conditions"]["ready"],
        true
    );

    let pods = get(&client, &cluster, "/api/v1/namespaces/demo/pods")
        .await
        .json();
    assert!(
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["metadata"]["name"].as_str().unwrap().starts_with("shop-"))
    );
    let nodes = get(&client, &cluster, "/api/v1/nodes").await.json();
    assert_eq!(nodes["items"][0]["metadata"]["name"], simcluster::NODE_NAME);
    let ns = get(&client, &cluster, "/api/v1/namespaces/kube-system")
        .await
        .json();
    assert_eq!(ns["status"]["phase"], "Active");

    let bad = get(
        &client,
        &cluster,
        "/api/v1/services?labelSelector=a%20in%20b",
    )
    .await;
    assert_eq!(bad.status, 400);

    cluster.set_endpoints_ready("demo", "shop", false).unwrap();
    let eps = get(&client, &cluster, "/api/v1/namespaces/demo/endpoints/shop")
        .await
        .json();
    assert!(eps["subsets"][0]["notReadyAddresses"].is_array());
    assert!(cluster.set_endpoints_ready("demo", "nope", false).is_err());
}

#[tokio::test]
async fn table_output_for_kubectl_get() {
    let (cluster, client) = start().await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let r = send(
        &client,
        &cluster,
        "GET",
        "/api/v1/services?limit=500",
        Some(cluster.admin_token()),
        &[("accept", accept)],
        b"",
    )
    .await;
    let t = r.json();
    assert_eq!(
        (t["kind"].as_str(), t["apiVersion"].as_str()),
        (Some("Table"), Some("meta.k8s.io/v1"))
    );
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    let dns = t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][0] == "kube-dns")
        .unwrap();
    assert_eq!(dns["cells"][4], "53/UDP,53/TCP,9153/TCP");
    assert_eq!(dns["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(dns["object"]["metadata"]["namespace"], "kube-system");
}

#[tokio::test]
async fn watch_sends_current_objects() {
    let (cluster, client) = start().await;
    // The stream stays open until timeoutSeconds; 1 second keeps the test short.
    let r = get(
        &client,
        &cluster,
        "/api/v1/namespaces?watch=true&timeoutSeconds=1",
    )
    .await;
    let lines: Vec<serde_json::Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().all(|l| l["type"] == "ADDED"));
    assert!(
        lines
            .iter()
            .any(|l| l["object"]["metadata"]["name"] == "kube-system")
    );
}

#[tokio::test]
async fn debug_output_redacts_the_admin_token() {
    let (cluster, _) = start().await;
    let text = format!("{cluster:?}");
    assert!(!text.contains(cluster.admin_token()), "{text}");
    assert!(cluster.kubeconfig_yaml().contains(cluster.admin_token()));
}

#[tokio::test]
async fn endpoint_addresses_reach_apps_directly() {
    let (cluster, _) = start().await;
    let es = cluster
        .endpoint_addr("kube-system", "elasticsearch-logging", "")
        .unwrap();
    assert!(es.ip().is_loopback());
    let mut tcp = tokio::net::TcpStream::connect(es).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /_cluster/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.contains("\"status\":\"green\""), "{out}");
    assert!(cluster.endpoint_addr("demo", "offline", "http").is_none());
    assert!(cluster.endpoint_addr("demo", "shop", "nope").is_none());
}

#[tokio::test]
async fn filter_headers_on_every_answer() {
    let (cluster, client) = start().await;
    let r = get(&client, &cluster, "/api").await;
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("no-cache, private")
    );
    assert_eq!(r.header("audit-id").map(|a| a.len()), Some(36));
    assert!(r.header("x-kubernetes-pf-flowschema-uid").is_some());
    let proxied = get(
        &client,
        &cluster,
        "/api/v1/namespaces/demo/services/echo:http/proxy/",
    )
    .await;
    assert_eq!(
        proxied.header("cache-control").as_deref(),
        Some("no-cache, private")
    );
    let denied = send(&client, &cluster, "GET", "/api", Some("wrong"), &[], b"").await;
    assert!(denied.header("audit-id").is_some());
    assert!(denied.header("x-kubernetes-pf-flowschema-uid").is_none());
}

#[tokio::test]
async fn a_websocket_watch_streams_secrets_to_a_page_of_any_origin() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let (cluster, _) = start().await;
    cluster
        .set_secret("demo", "api-key", &[("token", "s3cret-value")])
        .unwrap();
    let open = |origin: Option<&'static str>, version: &'static str| {
        let cluster = &cluster;
        async move {
            let url = format!(
                "wss://{}/api/v1/namespaces/demo/secrets?watch=true&timeoutSeconds=5",
                cluster.addr()
            );
            let mut req = url.into_client_request().unwrap();
            let h = req.headers_mut();
            h.insert(
                "authorization",
                format!("Bearer {}", cluster.admin_token()).parse().unwrap(),
            );
            h.insert("sec-websocket-version", version.parse().unwrap());
            if let Some(origin) = origin {
                h.insert("origin", origin.parse().unwrap());
            }
            tokio_tungstenite::client_async(req, common::raw_tls(cluster).await).await
        }
    };
    // Any origin that parses is accepted: the API server does not compare it with its own.
    let (mut ws, resp) = open(Some("http://evil.example"), "13").await.unwrap();
    assert_eq!(resp.status(), 101);
    let mut secrets = Vec::new();
    while let Some(Ok(message)) = ws.next().await {
        assert!(
            message.is_text(),
            "JSON events are text messages: {message:?}"
        );
        let text = message.into_text().unwrap();
        assert!(text.ends_with('\n'), "one encoded event per message");
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(event["type"], "ADDED");
        assert_eq!(event["object"]["kind"], "Secret");
        secrets.push(
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        if let Some(token) = event["object"]["data"]["token"].as_str() {
            use base64::Engine;
            let value = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap();
            assert_eq!(value, b"s3cret-value");
            break;
        }
    }
    assert!(secrets.contains(&"api-key".to_owned()), "{secrets:?}");

    // x/net/websocket's handshake: no Origin, or `null`, is 403; a version but 13 is 400.
    for (origin, version, status) in [
        (None, "13", 403),
        (Some("null"), "13", 403),
        (Some("http://evil.example"), "8", 400),
    ] {
        match open(origin, version).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), status, "{origin:?} {version}");
                if status == 400 {
                    assert_eq!(resp.headers()["sec-websocket-version"], "13");
                }
            }
            other => panic!("{origin:?} {version}: {other:?}"),
        }
    }
}
