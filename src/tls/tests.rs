//! Handshakes over real TCP on 127.0.0.1 with the generated example PKI: who gets in, what
//! identity they get, and who is refused during the handshake.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::{CertificateError, ClientConfig, ProtocolVersion, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::pki::{CRL_FILE, ExamplePki, PkiItem, PkiOptions};
use crate::protocol::urn::OrgNumber;

/// One example PKI for all tests of the crate: generating it is the slow part.
pub(crate) fn pki() -> &'static ExamplePki {
    static PKI: OnceLock<ExamplePki> = OnceLock::new();
    PKI.get_or_init(|| ExamplePki::generate(PkiOptions::default()).expect("example PKI"))
}

/// What the server saw of an accepted connection.
#[derive(Debug)]
struct Accepted {
    identity: Option<PeerIdentity>,
    version: Option<ProtocolVersion>,
    alpn: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Outcome {
    server: io::Result<Accepted>,
    client: io::Result<()>,
}

impl Outcome {
    fn accepted(self) -> Accepted {
        if let Err(e) = &self.client {
            panic!("client failed: {e:?} (server: {:?})", self.server);
        }
        self.server.expect("server must accept")
    }

    fn identity(self) -> PeerIdentity {
        self.accepted().identity.expect("identity")
    }

    /// The rustls error the server refused the handshake with; the client must fail too.
    fn server_refusal(&self) -> &rustls::Error {
        assert!(self.client.is_err(), "client must fail too");
        let err = self.server.as_ref().expect_err("server must refuse");
        rustls_error(err).unwrap_or_else(|| panic!("not a rustls error: {err:?}"))
    }

    /// The rustls error the client gave up with.
    fn client_refusal(&self) -> &rustls::Error {
        assert!(self.server.is_err(), "server must not complete");
        let err = self.client.as_ref().expect_err("client must refuse");
        rustls_error(err).unwrap_or_else(|| panic!("not a rustls error: {err:?}"))
    }
}

fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Runs one connection: handshake, `ping` from the client, `pong` from the server. The
/// exchange matters with TLS 1.3, where the client finishes its handshake before the server
/// has judged its certificate.
async fn connect(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    server_name: &str,
    map: IdentityMap,
) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let acceptor = TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let (_, conn) = tls.get_ref();
        let accepted = Accepted {
            identity: PeerIdentity::from_connection(conn, &map),
            version: conn.protocol_version(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        };
        let mut ping = [0u8; 4];
        tls.read_exact(&mut ping).await?;
        tls.write_all(b"pong").await?;
        tls.shutdown().await?;
        Ok::<_, io::Error>(accepted)
    });
    let name = ServerName::try_from(server_name.to_owned()).expect("server name");
    let client_side = async move {
        let tcp = TcpStream::connect(addr).await?;
        let mut tls = TlsConnector::from(client).connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut pong = [0u8; 4];
        tls.read_exact(&mut pong).await?;
        assert_eq!(&pong, b"pong");
        Ok(())
    };
    let limit = Duration::from_secs(10);
    let client = tokio::time::timeout(limit, client_side)
        .await
        .expect("client timed out");
    let server = tokio::time::timeout(limit, server_task)
        .await
        .expect("server timed out")
        .expect("server task panicked");
    Outcome { server, client }
}

/// Connects to the example server as `client` by the name `localhost`.
async fn connect_as(client: Option<&PkiItem>) -> Outcome {
    let pki = pki();
    let server = pki.server_config().expect("server config");
    let client = pki.client_config(client).expect("client config");
    connect(server, client, "localhost", IdentityMap::new()).await
}

/// A client configuration speaking only TLS 1.2, to show the same rules hold there.
fn tls12_client(item: &PkiItem) -> Arc<ClientConfig> {
    let pki = pki();
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(pki.roots())
        .with_client_auth_cert(vec![item.cert_der.clone()], item.key_der())
        .expect("client cert");
    Arc::new(config)
}

fn org(s: &str) -> OrgNumber {
    s.parse().expect("org number")
}

#[tokio::test]
async fn portal_connects_as_its_organisation() {
    let accepted = connect_as(Some(&pki().portal)).await.accepted();
    assert_eq!(accepted.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(accepted.alpn.as_deref(), Some(ALPN_HTTP11));
    let id = accepted.identity.expect("identity");
    assert_eq!(id.org(), Some(org("5590000001")));
    assert_eq!(id.org_source(), Some(OrgSource::SerialNumber));
    assert_eq!(id.fingerprint(), pki().portal.fingerprint());
}

#[tokio::test]
async fn business_systems_connect_as_the_municipality() {
    let pki = pki();
    for (item, cn) in [
        (&pki.bygglov, "bygglov"),
        (&pki.socialtjanst, "socialtjanst"),
    ] {
        let id = connect_as(Some(item)).await.identity();
        assert_eq!(id.org(), Some(org("2120000142")));
        assert_eq!(id.common_name(), Some(cn));
    }
}

#[tokio::test]
async fn peer_node_is_known_by_organization_identifier() {
    let id = connect_as(Some(&pki().peer_node)).await.identity();
    assert_eq!(id.org(), Some(org("5560000002")));
    assert_eq!(id.org_source(), Some(OrgSource::OrganizationIdentifier));
}

#[tokio::test]
async fn admin_connects() {
    let id = connect_as(Some(&pki().admin)).await.identity();
    assert_eq!(id.org(), Some(org("5560000003")));
}

#[tokio::test]
async fn fingerprint_map_overrides_the_subject() {
    let pki = pki();
    let map: IdentityMap = [(pki.portal.fingerprint(), org("9999999999"))]
        .into_iter()
        .collect();
    let server = pki.server_config().unwrap();
    let client = pki.client_config(Some(&pki.portal)).unwrap();
    let id = connect(server, client, "localhost", map).await.identity();
    assert_eq!(id.org(), Some(org("9999999999")));
    assert_eq!(id.org_source(), Some(OrgSource::Fingerprint));
}

#[tokio::test]
async fn certificate_without_org_connects_without_org() {
    let id = connect_as(Some(&pki().no_org)).await.identity();
    assert_eq!(id.org(), None);
    assert!(
        id.subject().contains("CN=no-org client"),
        "{}",
        id.subject()
    );
}

#[tokio::test]
async fn expired_client_fails_the_handshake() {
    let outcome = connect_as(Some(&pki().expired)).await;
    assert!(
        matches!(
            outcome.server_refusal(),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn revoked_client_fails_the_handshake() {
    let outcome = connect_as(Some(&pki().revoked)).await;
    assert_eq!(
        outcome.server_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::Revoked)
    );
}

#[tokio::test]
async fn a_crl_left_to_webpki_still_revokes() {
    // A CRL with an issuing distribution point is not taken over by `revocation`; webpki
    // checks it during the handshake, as before.
    let pki = pki();
    let scoped = super::revocation::tests::client_ca_crl(pki, &pki.portal.serial, true);
    let mut material = pki.server_material();
    material.crls = vec![scoped];
    let server = server_config_from_material(material).expect("server config");
    let client = pki.client_config(Some(&pki.portal)).expect("client config");
    let outcome = connect(server.clone(), client, "localhost", IdentityMap::new()).await;
    assert_eq!(
        outcome.server_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::Revoked)
    );
    let bygglov = pki
        .client_config(Some(&pki.bygglov))
        .expect("client config");
    connect(server, bygglov, "localhost", IdentityMap::new())
        .await
        .accepted();
}

#[tokio::test]
async fn unknown_issuer_fails_the_handshake() {
    let outcome = connect_as(Some(&pki().unknown_issuer)).await;
    assert_eq!(
        outcome.server_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

#[tokio::test]
async fn client_without_certificate_fails_the_handshake() {
    let outcome = connect_as(None).await;
    assert_eq!(
        outcome.server_refusal(),
        &rustls::Error::NoCertificatesPresented
    );
}

#[tokio::test]
async fn tls12_follows_the_same_rules() {
    let pki = pki();
    let server = pki.server_config().unwrap();
    let ok = connect(
        server.clone(),
        tls12_client(&pki.portal),
        "localhost",
        IdentityMap::new(),
    )
    .await
    .accepted();
    assert_eq!(ok.version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(ok.identity.and_then(|id| id.org()), Some(org("5590000001")));

    let map = IdentityMap::new;
    let revoked = connect(
        server.clone(),
        tls12_client(&pki.revoked),
        "localhost",
        map(),
    )
    .await;
    assert_eq!(
        revoked.server_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::Revoked)
    );
    let unknown = connect(
        server.clone(),
        tls12_client(&pki.unknown_issuer),
        "localhost",
        map(),
    )
    .await;
    assert_eq!(
        unknown.server_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
    let expired = connect(server, tls12_client(&pki.expired), "localhost", map()).await;
    assert!(matches!(
        expired.server_refusal(),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        )
    ));
}

#[tokio::test]
async fn client_verifies_the_server_name() {
    let pki = pki();
    let server = pki.server_config().unwrap();
    let client = pki.client_config(Some(&pki.portal)).unwrap();

    let wrong = connect(
        server.clone(),
        client.clone(),
        "shs.example.org",
        IdentityMap::new(),
    )
    .await;
    assert!(
        matches!(
            wrong.client_refusal(),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{wrong:?}"
    );
    // The IP address SAN is good too.
    let by_ip = connect(server, client, "127.0.0.1", IdentityMap::new()).await;
    assert_eq!(by_ip.identity().org(), Some(org("5590000001")));
}

#[tokio::test]
async fn client_refuses_a_server_of_another_ca() {
    let pki = pki();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.untrusted_ca.cert_der.clone()).unwrap();
    let client = client_config_from_material(ClientTlsMaterial {
        roots,
        client_auth: None,
    })
    .unwrap();
    let outcome = connect(
        pki.server_config().unwrap(),
        client,
        "localhost",
        IdentityMap::new(),
    )
    .await;
    assert_eq!(
        outcome.client_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
    );
}

fn write_pki() -> (tempfile::TempDir, ServerTlsFiles, ClientTlsFiles) {
    let dir = tempfile::tempdir().expect("temp dir");
    pki().write_to(dir.path(), false).expect("write PKI");
    let path = |name: &str| dir.path().join(name);
    let server = ServerTlsFiles {
        cert_chain: path("server.pem"),
        key: path("server-key.pem"),
        client_cas: vec![path("ca.pem")],
        crls: vec![path(CRL_FILE)],
    };
    let client = ClientTlsFiles {
        roots: vec![path("ca.pem")],
        cert_chain: Some(path("client-portal.pem")),
        key: Some(path("client-portal-key.pem")),
    };
    (dir, server, client)
}

#[tokio::test]
async fn configurations_from_files_and_crl_reload() {
    let pki = pki();
    let (_dir, server_files, client_files) = write_pki();
    let reloadable = ReloadableServerConfig::load(server_files.clone()).expect("server config");
    let client = client_config(&client_files).expect("client config");
    let run = |server| connect(server, client.clone(), "localhost", IdentityMap::new());

    let id = run(reloadable.current()).await.identity();
    assert_eq!(id.org(), Some(org("5590000001")));

    // Revoke the portal; it is refused once the configuration is reloaded.
    let crl = pki.crl_revoking(&[&pki.portal]).expect("new CRL");
    std::fs::write(&server_files.crls[0], &crl.pem).unwrap();
    assert!(
        run(reloadable.current()).await.server.is_ok(),
        "not before the reload"
    );
    reloadable.reload().expect("reload");
    let refused = run(reloadable.current()).await;
    assert_eq!(
        refused.server_refusal(),
        &rustls::Error::InvalidCertificate(CertificateError::Revoked)
    );

    // A broken CRL file fails the reload and keeps the configuration in force.
    std::fs::write(&server_files.crls[0], "truncated").unwrap();
    let err = reloadable.reload().unwrap_err();
    assert!(
        matches!(
            err,
            TlsError::Pem {
                cause: PemError::NoCrl,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(run(reloadable.current()).await.server.is_err());
}

#[test]
fn configuration_faults_are_named() {
    let pki = pki();
    let (_dir, server_files, client_files) = write_pki();

    let no_ca = ServerTlsFiles {
        client_cas: Vec::new(),
        ..server_files.clone()
    };
    assert!(matches!(server_config(&no_ca), Err(TlsError::NoClientCa)));

    let wrong_key = ServerTlsFiles {
        key: client_files.key.clone().unwrap(),
        ..server_files.clone()
    };
    let err = server_config(&wrong_key).unwrap_err();
    assert!(matches!(err, TlsError::KeyPairFiles { .. }), "{err:?}");
    assert!(err.to_string().contains("client-portal-key.pem"), "{err}");

    let missing_crl = ServerTlsFiles {
        crls: vec![server_files.crls[0].with_file_name("nope.pem")],
        ..server_files.clone()
    };
    let err = server_config(&missing_crl).unwrap_err();
    assert!(
        matches!(&err, TlsError::Read { file, .. } if file.ends_with("nope.pem")),
        "{err:?}"
    );

    let key_as_ca = ServerTlsFiles {
        client_cas: vec![server_files.key.clone()],
        ..server_files.clone()
    };
    assert!(matches!(
        server_config(&key_as_ca),
        Err(TlsError::Pem {
            cause: PemError::NoCertificate,
            ..
        })
    ));

    let half = ClientTlsFiles {
        key: None,
        ..client_files.clone()
    };
    assert!(matches!(
        client_config(&half),
        Err(TlsError::IncompleteClientIdentity)
    ));
    let no_roots = ClientTlsFiles {
        roots: Vec::new(),
        ..client_files.clone()
    };
    assert!(matches!(client_config(&no_roots), Err(TlsError::NoRoots)));
    let anonymous = ClientTlsFiles {
        cert_chain: None,
        key: None,
        ..client_files
    };
    client_config(&anonymous).expect("a client without certificate is a valid configuration");

    // The in-memory PEM variant.
    let material = ClientTlsMaterial::from_pem(
        pki.ca.cert_pem.as_bytes(),
        Some((
            pki.bygglov.cert_pem.as_bytes(),
            pki.bygglov.key_pem.as_bytes(),
        )),
    )
    .expect("PEM material");
    client_config_from_material(material).expect("client config from PEM");
}
