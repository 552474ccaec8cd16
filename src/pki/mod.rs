//! An example PKI for SHS over mutual TLS, generated with rcgen.
//!
//! `shsd certs` writes it out so that the example configuration runs as shipped, and every
//! integration test generates it afresh so that no key material lives in the repository.
//! It has one trusted CA (with a CRL), the node's server certificate and one client
//! certificate for each case the TLS layer must get right: an e-service portal, two business
//! systems of one municipality, a peer node, an administrator, and the failures (expired,
//! revoked, no organisation number, unknown issuer). All keys are ECDSA P-256.
//!
//! The material is **for examples and tests only**: the CA key is written next to the
//! certificates.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertifiedIssuer, KeyPair};
use rustls::RootCertStore;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer,
};

use crate::protocol::urn::OrgNumber;
use crate::tls::{
    ClientTlsMaterial, Fingerprint, ServerTlsMaterial, TlsError, client::ClientAuth,
    client_config_from_material, server_config_from_material,
};

mod issue;
mod write;

use issue::Window;
pub use write::{CRL_FILE, README_FILE};

/// The e-service portal's organisation number (Exempelportalen AB).
pub const PORTAL_ORG: &str = "5590000001";
/// The municipality's organisation number (Exempelkommun), shared by its business systems.
pub const MUNICIPALITY_ORG: &str = "2120000142";
/// The organisation number of the other SHS node (Exempelnoden AB).
pub const PEER_NODE_ORG: &str = "5560000002";
/// The organisation number of the node's operator, whose administrator the admin
/// certificate names (Exempeldrift AB).
pub const OPERATOR_ORG: &str = "5560000003";

/// Why the example PKI could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused to make a certificate, key or CRL (a bug, as the inputs are checked).
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What was being generated.
        what: String,
        /// What rcgen said.
        source: rcgen::Error,
    },
    /// An extra server name is neither a DNS name nor an IP address (the caller's fault).
    #[error("{0:?} is neither a DNS name nor an IP address")]
    InvalidServerName(String),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Files of the set already exist and overwriting was not asked for (the caller's
    /// choice to make, so all of them are named).
    #[error(
        "refusing to overwrite existing files (ask to overwrite to replace them): {}",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Exists {
        /// Every file of the set that already exists.
        paths: Vec<PathBuf>,
    },
    /// A folder or file could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The folder or file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// How to generate the example PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiOptions {
    /// How long the CA and the valid certificates (and the CRL) stay valid from now.
    pub validity: Duration,
    /// Extra subject alternative names for the server certificate, besides `localhost` and
    /// `127.0.0.1`: DNS names or IP addresses.
    pub extra_server_names: Vec<String>,
}

impl Default for PkiOptions {
    /// Ten years, so that an example set written once keeps working.
    fn default() -> Self {
        PkiOptions {
            validity: Duration::from_secs(3653 * 24 * 3600),
            extra_server_names: Vec::new(),
        }
    }
}

/// What a certificate of the set is for, as the README table and tests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The trusted CA: client CA of the server and root of the clients.
    Ca,
    /// A second CA that nothing trusts.
    UntrustedCa,
    /// The node's TLS server certificate.
    Server,
    /// An e-service portal that sends on behalf of citizens.
    Portal,
    /// One business system of an organisation (its CN names the system).
    BusinessSystem,
    /// Another SHS node that forwards traffic.
    PeerNode,
    /// An administrator of this node.
    Admin,
    /// A client whose certificate has expired.
    Expired,
    /// A client whose certificate is revoked by the CA's CRL.
    Revoked,
    /// A client whose certificate names no organisation number.
    NoOrganisation,
    /// A client whose certificate is signed by the untrusted CA.
    UnknownIssuer,
    /// Any other client, issued with [`ExamplePki::issue_client`].
    Client,
}

impl Role {
    /// A short human name for the README table.
    pub fn label(self) -> &'static str {
        match self {
            Role::Ca => "trusted CA",
            Role::UntrustedCa => "untrusted CA",
            Role::Server => "server",
            Role::Portal => "client: e-service portal",
            Role::BusinessSystem => "client: business system",
            Role::PeerNode => "client: peer node",
            Role::Admin => "client: administrator",
            Role::Expired => "client: expired (must fail)",
            Role::Revoked => "client: revoked (must fail)",
            Role::NoOrganisation => "client: no organisation (403)",
            Role::UnknownIssuer => "client: unknown issuer (must fail)",
            Role::Client => "client",
        }
    }
}

/// Which subject attribute carries the organisation number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrgField {
    /// `serialNumber` (2.5.4.5) holding the ten digits, as most SHS certificates do.
    #[default]
    SerialNumber,
    /// `organizationIdentifier` (2.5.4.97) holding `NTRSE-` and the ten digits.
    OrganizationIdentifier,
}

/// What to put in a client certificate issued by [`ExamplePki::issue_client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// The file name without `.pem`.
    pub file_stem: String,
    /// What the certificate is for.
    pub role: Role,
    /// The organisation's name, the subject's `O`.
    pub organisation: String,
    /// The subject's `CN`, naming the system or person.
    pub common_name: String,
    /// The organisation number, if the certificate should carry one.
    pub org: Option<OrgNumber>,
    /// Which attribute carries the organisation number.
    pub org_field: OrgField,
    /// A sentence for the README.
    pub description: String,
}

impl ClientSpec {
    /// A client certificate with the organisation number in `serialNumber`.
    pub fn new(
        file_stem: &str,
        organisation: &str,
        common_name: &str,
        org: Option<OrgNumber>,
    ) -> Self {
        ClientSpec {
            file_stem: file_stem.to_owned(),
            role: Role::Client,
            organisation: organisation.to_owned(),
            common_name: common_name.to_owned(),
            org,
            org_field: OrgField::SerialNumber,
            description: String::new(),
        }
    }
}

/// One certificate of the set with its key and what it is for.
#[derive(Clone)]
pub struct PkiItem {
    /// The file name without `.pem`; the key is `<file_stem>-key.pem`.
    pub file_stem: String,
    /// What the certificate is for.
    pub role: Role,
    /// The organisation's name, as in the subject's `O`.
    pub organisation: String,
    /// The organisation number the certificate carries, if any.
    pub org: Option<OrgNumber>,
    /// A sentence for the README.
    pub description: String,
    /// The certificate serial number, as listed in CRLs.
    pub serial: Vec<u8>,
    /// The certificate.
    pub cert_der: CertificateDer<'static>,
    /// The certificate as PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key as PEM.
    pub key_pem: String,
    key_der: Vec<u8>,
}

impl PkiItem {
    /// The PKCS#8 private key, as rustls takes it.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The certificate's file name.
    pub fn cert_file(&self) -> String {
        format!("{}.pem", self.file_stem)
    }

    /// The private key's file name.
    pub fn key_file(&self) -> String {
        format!("{}-key.pem", self.file_stem)
    }

    /// The certificate's SHA-256 fingerprint, as an identity map is configured with.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.cert_der)
    }
}

impl std::fmt::Debug for PkiItem {
    /// Everything but the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PkiItem")
            .field("file_stem", &self.file_stem)
            .field("role", &self.role)
            .field("organisation", &self.organisation)
            .field("org", &self.org)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A certificate revocation list, as PEM and DER.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The CRL as PEM (`X509 CRL`).
    pub pem: String,
    /// The CRL as rustls takes it.
    pub der: CertificateRevocationListDer<'static>,
}

/// The example PKI: every certificate as a named field, so that tests say which case they
/// exercise.
#[derive(Debug)]
pub struct ExamplePki {
    /// The trusted CA ("shsd example CA").
    pub ca: PkiItem,
    /// The CA's CRL, revoking [`ExamplePki::revoked`].
    pub crl: Crl,
    /// The node's server certificate for `localhost` and `127.0.0.1`.
    pub server: PkiItem,
    /// Exempelportalen AB (5590000001), an e-service portal.
    pub portal: PkiItem,
    /// Exempelkommun (2120000142), building permit system (`CN=bygglov`).
    pub bygglov: PkiItem,
    /// Exempelkommun (2120000142), income support system (`CN=socialtjanst`).
    pub socialtjanst: PkiItem,
    /// Exempelnoden AB (5560000002), another SHS node; its number is in
    /// `organizationIdentifier` (`NTRSE-5560000002`), not in `serialNumber`.
    pub peer_node: PkiItem,
    /// An administrator of this node, of Exempeldrift AB (5560000003).
    pub admin: PkiItem,
    /// The portal's organisation, but expired yesterday.
    pub expired: PkiItem,
    /// The portal's organisation, but revoked by [`ExamplePki::crl`].
    pub revoked: PkiItem,
    /// A trusted certificate without any organisation number.
    pub no_org: PkiItem,
    /// A second CA that nothing trusts.
    pub untrusted_ca: PkiItem,
    /// The portal's organisation, but signed by the untrusted CA.
    pub unknown_issuer: PkiItem,
    issuer: CertifiedIssuer<'static, KeyPair>,
    options: PkiOptions,
}

impl ExamplePki {
    /// Generates a complete, fresh set.
    pub fn generate(options: PkiOptions) -> Result<ExamplePki, PkiError> {
        if let Some(bad) = options
            .extra_server_names
            .iter()
            .find(|name| rustls_pki_types::ServerName::try_from(name.as_str()).is_err())
        {
            return Err(PkiError::InvalidServerName(bad.clone()));
        }
        let valid = Window::from_now(options.validity);
        let (ca, issuer) = issue::ca(
            "ca",
            Role::Ca,
            "shsd example CA",
            "The trusted CA: configure it as client CA of the server and as root of clients.",
            valid,
        )?;
        let (untrusted_ca, untrusted) = issue::ca(
            "untrusted-ca",
            Role::UntrustedCa,
            "shsd untrusted CA",
            "A CA that no configuration trusts; it signed client-unknown-issuer.",
            valid,
        )?;
        let server = issue::server(&issuer, &options.extra_server_names, valid)?;
        let spec =
            |stem: &str, role, organisation: &str, cn: &str, org: Option<&str>, text: &str| {
                ClientSpec {
                    role,
                    description: text.to_owned(),
                    ..ClientSpec::new(stem, organisation, cn, org.and_then(|o| o.parse().ok()))
                }
            };
        let portal_spec = |stem: &str, role, cn: &str, text: &str| {
            spec(stem, role, "Exempelportalen AB", cn, Some(PORTAL_ORG), text)
        };
        let client = |spec: &ClientSpec| issue::client(&issuer, spec, valid);

        let portal = client(&portal_spec(
            "client-portal",
            Role::Portal,
            "Exempelportalen e-tjänster",
            "E-service portal sending citizens' applications to organisations.",
        ))?;
        let bygglov = client(&spec(
            "client-bygglov",
            Role::BusinessSystem,
            "Exempelkommun",
            "bygglov",
            Some(MUNICIPALITY_ORG),
            "The municipality's building permit system (sub-address bygglov).",
        ))?;
        let socialtjanst = client(&spec(
            "client-socialtjanst",
            Role::BusinessSystem,
            "Exempelkommun",
            "socialtjanst",
            Some(MUNICIPALITY_ORG),
            "The municipality's income support system (sub-address socialtjanst).",
        ))?;
        let peer_node = client(&ClientSpec {
            org_field: OrgField::OrganizationIdentifier,
            ..spec(
                "client-peer-node",
                Role::PeerNode,
                "Exempelnoden AB",
                "shs.exempelnoden.example",
                Some(PEER_NODE_ORG),
                "Another SHS node forwarding traffic; organizationIdentifier=NTRSE-5560000002.",
            )
        })?;
        let admin = client(&spec(
            "client-admin",
            Role::Admin,
            "Exempeldrift AB",
            "shsd admin",
            Some(OPERATOR_ORG),
            "An administrator of this node, for the admin listener.",
        ))?;
        let expired = issue::client(
            &issuer,
            &portal_spec(
                "client-expired",
                Role::Expired,
                "Exempelportalen (expired)",
                "Expired yesterday: the handshake must fail.",
            ),
            Window::expired(),
        )?;
        let revoked = client(&portal_spec(
            "client-revoked",
            Role::Revoked,
            "Exempelportalen (revoked)",
            "Listed in ca-crl.pem: the handshake must fail.",
        ))?;
        let no_org = client(&spec(
            "client-no-org",
            Role::NoOrganisation,
            "Exempelföreningen",
            "no-org client",
            None,
            "Trusted, but names no organisation number: connects, then 403.",
        ))?;
        let unknown_issuer = issue::client(
            &untrusted,
            &portal_spec(
                "client-unknown-issuer",
                Role::UnknownIssuer,
                "Exempelportalen (unknown issuer)",
                "Signed by untrusted-ca: the handshake must fail.",
            ),
            valid,
        )?;
        let crl = issue::crl(&issuer, &[&revoked.serial], valid)?;
        Ok(ExamplePki {
            ca,
            crl,
            server,
            portal,
            bygglov,
            socialtjanst,
            peer_node,
            admin,
            expired,
            revoked,
            no_org,
            untrusted_ca,
            unknown_issuer,
            issuer,
            options,
        })
    }

    /// Every certificate of the set, in the order the README lists them.
    pub fn items(&self) -> [&PkiItem; 12] {
        [
            &self.ca,
            &self.server,
            &self.portal,
            &self.bygglov,
            &self.socialtjanst,
            &self.peer_node,
            &self.admin,
            &self.expired,
            &self.revoked,
            &self.no_org,
            &self.untrusted_ca,
            &self.unknown_issuer,
        ]
    }

    /// Issues another client certificate from the trusted CA, valid as the set is.
    pub fn issue_client(&self, spec: &ClientSpec) -> Result<PkiItem, PkiError> {
        issue::client(&self.issuer, spec, Window::from_now(self.options.validity))
    }

    /// A new CRL from the trusted CA revoking [`ExamplePki::revoked`] and `more`, for
    /// tests of CRL reloading.
    pub fn crl_revoking(&self, more: &[&PkiItem]) -> Result<Crl, PkiError> {
        let mut serials: Vec<&[u8]> = vec![&self.revoked.serial];
        serials.extend(more.iter().map(|item| item.serial.as_slice()));
        issue::crl(
            &self.issuer,
            &serials,
            Window::from_now(self.options.validity),
        )
    }

    /// The trusted CA as a root store, for clients and for the server's client CAs.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates([self.ca.cert_der.clone()]);
        roots
    }

    /// The node's server material: its certificate, the trusted CA and the CRL.
    pub fn server_material(&self) -> ServerTlsMaterial {
        ServerTlsMaterial {
            cert_chain: vec![self.server.cert_der.clone()],
            key: self.server.key_der(),
            client_roots: self.roots(),
            crls: vec![self.crl.der.clone()],
        }
    }

    /// Client material trusting the CA and presenting `client`'s certificate, if any.
    pub fn client_material(&self, client: Option<&PkiItem>) -> ClientTlsMaterial {
        ClientTlsMaterial {
            roots: self.roots(),
            client_auth: client.map(|item| ClientAuth {
                cert_chain: vec![item.cert_der.clone()],
                key: item.key_der(),
            }),
        }
    }

    /// The node's server configuration, as [`crate::tls::server_config`] builds it.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        server_config_from_material(self.server_material())
    }

    /// A client configuration presenting `client`'s certificate, if any.
    pub fn client_config(
        &self,
        client: Option<&PkiItem>,
    ) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        client_config_from_material(self.client_material(client))
    }
}

#[cfg(test)]
mod tests;
