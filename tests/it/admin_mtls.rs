//! Admin mTLS (spec §11): an admin listener with `[admin] tls` serves HTTPS, requires a
//! client certificate from the node's client CAs, and lets in only the configured admin
//! identities; every other valid certificate (an SHS portal's) gets 403 on every path.

use crate::harness::*;

/// A node whose admin listener speaks admin mTLS; `identities` are the
/// `[[admin.identities]]` lines, written with the generated PKI at hand.
async fn node_with_admins(identities: impl FnOnce(&shsd::pki::ExamplePki) -> String) -> Node {
    Node::start_custom("", |pki| format!("tls = true\n{}", identities(pki))).await
}

/// The admin listener's HTTPS base (the server certificate names `localhost`).
fn https_base(node: &Node) -> String {
    let port = node.admin_base.rsplit(':').next().expect("port");
    format!("https://localhost:{port}")
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String), reqwest::Error> {
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

#[tokio::test]
async fn the_admin_identity_reaches_every_admin_endpoint_over_mtls() {
    let node = node_with_admins(|pki| {
        format!(
            "[[admin.identities]]\nname = \"drift-anna\"\nfingerprint = \"{}\"\n",
            pki.admin.fingerprint()
        )
    })
    .await;
    let base = https_base(&node);
    let admin = node.client(Some(&node.pki.admin));
    for path in [
        "/healthz",
        "/metrics",
        "/api/messages",
        "/api/quarantine",
        "/console",
        "/console/messages",
        "/console/directory",
    ] {
        let (status, body) = get(&admin, &format!("{base}{path}")).await.expect(path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The console names who is signed in: the configured name and the fingerprint.
    let (_, page) = get(&admin, &format!("{base}/console")).await.unwrap();
    assert!(page.contains("admin drift-anna ("), "{page}");
    let (_, directory) = get(&admin, &format!("{base}/console/directory"))
        .await
        .unwrap();
    assert!(directory.contains("drift-anna"), "{directory}");
    node.stop().await;
}

#[tokio::test]
async fn other_certificates_get_403_and_no_certificate_no_connection() {
    let node = node_with_admins(|pki| {
        format!(
            "[[admin.identities]]\nname = \"drift\"\nfingerprint = \"{}\"\n",
            pki.admin.fingerprint()
        )
    })
    .await;
    let base = https_base(&node);
    // Valid SHS certificates of the same CA, but no admin identities.
    for (who, client) in [
        ("portal", node.portal()),
        ("bygglov", node.bygglov()),
        ("peer node", node.peer_node()),
    ] {
        for path in [
            "/api/messages",
            "/api/quarantine",
            "/console",
            "/metrics",
            "/healthz",
        ] {
            let (status, body) = get(&client, &format!("{base}{path}"))
                .await
                .unwrap_or_else(|err| panic!("{who} {path}: {err}"));
            assert_eq!(status, 403, "{who} {path}: {body}");
            assert!(body.contains("not an admin identity"), "{body}");
            assert!(!body.contains("tx_id"), "no admin data: {body}");
        }
    }
    // No certificate, an unknown issuer, a revoked certificate: the handshake fails.
    for (who, client) in [
        ("no certificate", node.client(None)),
        (
            "unknown issuer",
            node.client(Some(&node.pki.unknown_issuer)),
        ),
        ("revoked", node.client(Some(&node.pki.revoked))),
    ] {
        let result = get(&client, &format!("{base}/api/messages")).await;
        assert!(result.is_err(), "{who}: {result:?}");
    }
    // Plain HTTP to the admin port gets no admin answer.
    let plain = reqwest::get(format!("{}/api/messages", node.admin_base)).await;
    assert!(
        plain.is_err() || plain.is_ok_and(|r| r.status() != 200),
        "plain HTTP must not be served"
    );
    node.stop().await;
}

#[tokio::test]
async fn an_operator_organisation_can_be_the_admin_identity() {
    let node = node_with_admins(|_| {
        "[[admin.identities]]\nname = \"Exempeldrift\"\norganisation = \"5560000003\"\n".into()
    })
    .await;
    let base = https_base(&node);
    let admin = node.client(Some(&node.pki.admin));
    let (status, body) = get(&admin, &format!("{base}/console")).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("admin Exempeldrift ("), "{body}");
    let (status, _) = get(&node.peer_node(), &format!("{base}/api/messages"))
        .await
        .unwrap();
    assert_eq!(status, 403, "another organisation is no admin");
    node.stop().await;
}
