//! Tests for configuration loading: the shipped example, defaults, and all-errors-at-once.

use super::*;
use crate::tls::Fingerprint;

/// A folder with the files a configuration points at, and the configuration itself.
fn folder_with_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["node.pem", "node-key.pem", "ca.pem", "ca-crl.pem"] {
        std::fs::write(dir.path().join(name), "x").unwrap();
    }
    dir
}

const MINIMAL: &str = r#"
[node]
node_id = "node-1"
[listen]
address = "127.0.0.1:0"
[tls]
certificate = "node.pem"
private_key = "node-key.pem"
client_cas = ["ca.pem"]
[[organisations]]
number = "urn:x-shs:2120000142"
sub_addresses = ["bygglov"]
"#;

#[test]
fn minimal_file_gets_the_documented_defaults() {
    let dir = folder_with_files();
    let config = Config::from_toml(MINIMAL, &dir.path().join("shsd.toml")).unwrap();
    assert_eq!(config.node_id, "node-1");
    assert_eq!(config.path_prefix, "");
    assert_eq!(config.tls.certificate, dir.path().join("node.pem"));
    assert!(config.tls.crls.is_empty());
    assert_eq!(
        config.store,
        StoreConfig::Sled {
            path: dir.path().join("data"),
            cache_bytes: 8 << 20,
            log_backlog_bytes: 64 << 20,
        }
    );
    assert_eq!(config.limits.max_message_bytes, 1 << 30);
    assert_eq!(config.limits.max_label_bytes, 1 << 20);
    assert_eq!(config.limits.max_data_parts, 1000);
    assert_eq!(config.limits.list_max_hits, 10_000);
    assert_eq!(config.drain_timeout, Duration::from_secs(30));
    assert_eq!(config.log.format, LogFormat::Human);
    assert_eq!(
        config.admin.address,
        DEFAULT_ADMIN_ADDRESS.parse::<SocketAddr>().unwrap()
    );
    assert!(config.admin.address.ip().is_loopback());
    let housekeeping = &config.housekeeping;
    assert!(housekeeping.enabled);
    assert_eq!(housekeeping.retention, Duration::from_secs(14 * 86_400));
    assert_eq!(housekeeping.expiry, Duration::from_secs(30 * 86_400));
    assert!(!housekeeping.remove_fetched_without_ack);
    assert_eq!(housekeeping.interval, Duration::from_secs(600));
    assert_eq!(housekeeping.batch_size, 500);
}

#[test]
fn housekeeping_periods_must_be_positive() {
    let dir = folder_with_files();
    let text =
        format!("{MINIMAL}\n[housekeeping]\nretention_days = 0\nexpiry_days = 0\nbatch_size = 0\n");
    let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
    let keys = ["retention_days", "expiry_days", "batch_size"];
    assert_eq!(errors.problems.len(), keys.len(), "{errors}");
    for (problem, key) in errors.problems.iter().zip(keys) {
        assert_eq!(
            problem,
            &format!("housekeeping.{key} must be greater than 0")
        );
    }
    let text = format!("{MINIMAL}\n[housekeeping]\nretention = 3\n");
    assert!(Config::from_toml(&text, &dir.path().join("shsd.toml")).is_err());
}

#[test]
fn the_log_backlog_is_set_in_mib_and_must_be_positive() {
    let dir = folder_with_files();
    let text = format!("{MINIMAL}\n[store]\nlog_backlog_mib = 24\n");
    let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
    assert!(matches!(
        config.store,
        StoreConfig::Sled { log_backlog_bytes, .. } if log_backlog_bytes == 24 << 20
    ));
    let text = format!("{MINIMAL}\n[store]\nlog_backlog_mib = 0\n");
    let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
    assert_eq!(
        errors.problems,
        ["store.log_backlog_mib must be at least 1"],
        "{errors}"
    );
}

#[test]
fn the_admin_listener_takes_loopback_addresses() {
    let dir = folder_with_files();
    for address in ["127.0.0.1:0", "[::1]:9180", "127.0.0.2:9000"] {
        let text = format!("{MINIMAL}\n[admin]\naddress = \"{address}\"\n");
        let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
        assert_eq!(config.admin.address, address.parse::<SocketAddr>().unwrap());
    }
}

/// `MINIMAL` with an `[admin]` section of `lines`.
fn with_admin(lines: &str) -> String {
    format!("{MINIMAL}\n[admin]\n{lines}\n")
}

#[test]
fn a_non_loopback_admin_address_needs_admin_identities() {
    let dir = folder_with_files();
    for address in ["0.0.0.0:9180", "192.0.2.10:9180", "[::]:9180"] {
        let text = with_admin(&format!("address = \"{address}\""));
        let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
        assert_eq!(errors.problems.len(), 1, "{errors}");
        let problem = &errors.problems[0];
        assert!(problem.starts_with("admin.address"), "{problem}");
        assert!(problem.contains("[[admin.identities]]"), "{problem}");
    }
    let text = with_admin("address = \"localhost\"");
    let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
    assert!(errors.problems[0].starts_with("admin.address"), "{errors}");
    let text = with_admin("port = 1");
    assert!(Config::from_toml(&text, &dir.path().join("shsd.toml")).is_err());
}

#[test]
fn a_non_loopback_admin_address_with_identities_is_served_over_admin_tls() {
    let dir = folder_with_files();
    let fingerprint = "ab:".repeat(31) + "ab";
    let text = with_admin(&format!(
        "address = \"0.0.0.0:9443\"\n\
         [[admin.identities]]\nname = \"drift\"\nfingerprint = \"{fingerprint}\"\n\
         [[admin.identities]]\nname = \"jour\"\norganisation = \"5560000003\"\n"
    ));
    let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
    assert!(config.admin.tls);
    assert_eq!(config.admin.identities.len(), 2);
    let fp: Fingerprint = fingerprint.parse().unwrap();
    let operator: OrgNumber = "5560000003".parse().unwrap();
    // By fingerprint first, whatever organisation the certificate names.
    let found = config.admin.identity(&fp, Some(operator)).unwrap();
    assert_eq!(found.name, "drift");
    let other = Fingerprint::from_bytes([7; 32]);
    assert_eq!(
        config.admin.identity(&other, Some(operator)).unwrap().name,
        "jour"
    );
    assert!(config.admin.identity(&other, None).is_none());
    let portal: OrgNumber = "5590000001".parse().unwrap();
    assert!(config.admin.identity(&other, Some(portal)).is_none());
}

#[test]
fn admin_tls_can_be_asked_for_on_loopback_and_is_off_by_default() {
    let dir = folder_with_files();
    let config = Config::from_toml(MINIMAL, &dir.path().join("shsd.toml")).unwrap();
    assert!(!config.admin.tls);
    assert!(config.admin.identities.is_empty());
    let text = with_admin(
        "address = \"127.0.0.1:0\"\ntls = true\n\
         [[admin.identities]]\nname = \"drift\"\norganisation = \"5560000003\"",
    );
    let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
    assert!(config.admin.tls);
}

#[test]
fn admin_tls_mistakes_are_all_reported() {
    let dir = folder_with_files();
    let text = with_admin(
        "address = \"192.0.2.10:9180\"\ntls = false\n\
         [[admin.identities]]\nname = \"\"\nfingerprint = \"zz\"\n\
         [[admin.identities]]\nname = \"a\"\n\
         [[admin.identities]]\nname = \"b\"\norganisation = \"2120000142\"\n\
         [[admin.identities]]\nname = \"b\"\norganisation = \"5560000003\"",
    );
    let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
    let all = errors.to_string();
    for needle in [
        "not a loopback address, and admin.tls = false",
        "admin.identities[0].name",
        "admin.identities[0].fingerprint",
        "admin.identities[1] needs exactly one of fingerprint or organisation",
        "admin.identities[2].organisation 2120000142 is an organisation hosted on this node",
        "only checked over admin TLS",
        "\"b\" is used twice",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(errors.problems.len(), 7, "{all}");
    // Unknown keys in an identity are refused too.
    let text = with_admin(
        "tls = true\n[[admin.identities]]\nname = \"a\"\norganisation = \"5560000003\"\nrole = \"x\"",
    );
    let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
    assert!(errors.problems[0].contains("role"), "{errors}");
}

#[test]
fn local_mailboxes_are_exact_matches() {
    let dir = folder_with_files();
    let config = Config::from_toml(MINIMAL, &dir.path().join("shsd.toml")).unwrap();
    let local = |text: &str| config.is_local_mailbox(&text.parse().unwrap());
    assert!(local("2120000142"));
    assert!(local("urn:X-shs:2120000142.bygglov"));
    assert!(!local("2120000142.bygglovx"));
    assert!(!local("2120000142.bygg"));
    assert!(!local("2120000143"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = folder_with_files();
    let text = r#"
[node]
node_id = "bad id"
path_prefix = "axel"
[listen]
address = "localhost"
[tls]
certificate = "missing.pem"
private_key = "node-key.pem"
client_cas = []
[[organisations]]
number = "123"
[[clients]]
fingerprint = "zz"
[[clients]]
organisation = "5590000001"
role = "king"
[limits]
max_data_parts = 0
[log]
format = "xml"
"#;
    let errors = Config::from_toml(text, &dir.path().join("shsd.toml")).unwrap_err();
    let all = errors.to_string();
    for needle in [
        "node.node_id",
        "path_prefix",
        "listen.address",
        "missing.pem",
        "client_cas",
        "organisations.number",
        "at least one [[organisations]]",
        "clients[0].fingerprint",
        "clients[1].role",
        "limits.max_data_parts",
        "log.format",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert_eq!(errors.problems.len(), 11, "{all}");
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let dir = folder_with_files();
    let text = format!("{MINIMAL}\n[store]\nengine = \"sled\"\ncache = 3\n");
    let errors = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap_err();
    assert_eq!(errors.problems.len(), 1);
    assert!(
        errors.problems[0].contains("cache"),
        "{}",
        errors.problems[0]
    );
    assert!(
        errors.problems[0].starts_with("line "),
        "{}",
        errors.problems[0]
    );
}

#[test]
fn client_rules_parse_fingerprints_and_roles() {
    let dir = folder_with_files();
    let fingerprint = "AB".repeat(32);
    let text = format!(
        "{MINIMAL}\n[[clients]]\nfingerprint = \"{fingerprint}\"\nrole = \"peer-node\"\nacts_for = \"5560000002\"\n"
    );
    let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
    let rule = &config.clients[0];
    assert_eq!(rule.role, Role::PeerNode);
    assert_eq!(
        rule.acts_for.map(|o| o.as_str().to_owned()),
        Some("5560000002".into())
    );
    assert!(matches!(rule.matches, ClientMatch::Fingerprint(f) if f.as_bytes() == &[0xAB; 32]));
}

#[test]
fn the_shipped_example_configuration_is_valid() {
    // config/shsd.toml points at the committed example certificates in certs-example/.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/shsd.toml");
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(config.organisations.len(), 2);
    assert!(config.is_local_mailbox(&"2120000142.socialtjanst".parse().unwrap()));
    assert!(config.tls.certificate.ends_with("certs-example/server.pem"));
    // The example documents the admin default with its real value.
    assert_eq!(config.admin.address.to_string(), DEFAULT_ADMIN_ADDRESS);
}

#[test]
fn an_ldap_directory_is_configured_with_its_password_file() {
    let dir = folder_with_files();
    std::fs::write(dir.path().join("ldap-password"), "hemligt\n").unwrap();
    let text = format!(
        "{MINIMAL}\n[directory]\nengine = \"ldap\"\n[directory.ldap]\n\
         servers = [\"ldap://127.0.0.1:1\", \"ldaps://ldap.example.se\"]\n\
         bind_dn = \"cn=shsd,L=SHS\"\nbind_password_file = \"ldap-password\"\ncache_ttl_secs = 5\n"
    );
    let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
    let Some(DirectoryConfig {
        engine: DirectoryEngine::Ldap(ldap),
        ..
    }) = config.directory
    else {
        panic!("no ldap directory");
    };
    assert_eq!(ldap.servers.len(), 2);
    assert_eq!(ldap.base_dn, "L=SHS");
    assert_eq!(ldap.cache_ttl, Duration::from_secs(5));
    let bind = ldap.bind.unwrap();
    assert_eq!(
        (bind.dn.as_str(), bind.password.as_str()),
        ("cn=shsd,L=SHS", "hemligt")
    );

    let missing = format!(
        "{MINIMAL}\n[directory]\nengine = \"ldap\"\n[directory.ldap]\nservers = []\n\
         bind_dn = \"cn=x\"\nbind_password_file = \"nowhere\"\n"
    );
    let errors = Config::from_toml(&missing, &dir.path().join("shsd.toml")).unwrap_err();
    assert_eq!(errors.problems.len(), 2, "{errors}");
    let unknown = format!("{MINIMAL}\n[directory]\nengine = \"x500\"\n");
    assert!(Config::from_toml(&unknown, &dir.path().join("shsd.toml")).is_err());
}

#[test]
fn a_postgres_store_is_configured_with_defaults_and_checked() {
    let dir = folder_with_files();
    std::fs::write(dir.path().join("db-password"), "hemligt\n").unwrap();
    let text = format!(
        "{MINIMAL}\n[store]\nengine = \"postgres\"\n[store.postgres]\n\
         conninfo = \"host=db.example.se user=shsd dbname=shsd\"\n\
         password_file = \"db-password\"\n"
    );
    let config = Config::from_toml(&text, &dir.path().join("shsd.toml")).unwrap();
    let StoreConfig::Postgres(postgres) = config.store else {
        panic!("not postgres: {:?}", config.store);
    };
    assert_eq!(postgres.password_file, Some(dir.path().join("db-password")));
    assert_eq!(
        PostgresConfig {
            password_file: None,
            ..postgres
        },
        PostgresConfig::default_for("host=db.example.se user=shsd dbname=shsd".into())
    );

    let bad = format!(
        "{MINIMAL}\n[push]\ntimeout_secs = 60\n[store]\nengine = \"postgres\"\n\
         [store.postgres]\nconninfo = \"host=x port=notaport\"\npool_size = 0\n\
         job_lease_secs = 30\npassword_file = \"nowhere\"\nca_files = [\"no-ca.pem\"]\n"
    );
    let errors = Config::from_toml(&bad, &dir.path().join("shsd.toml")).unwrap_err();
    let all = errors.to_string();
    assert_eq!(errors.problems.len(), 5, "{all}");
    for part in [
        "store.postgres.pool_size must be greater than 0",
        "store.postgres.conninfo",
        "job_lease_secs (30) must be longer than push.timeout_secs (60)",
        "store.postgres.password_file",
        "store.postgres.ca_files: ",
    ] {
        assert!(all.contains(part), "{part} missing from {all}");
    }
    for (lines, problem) in [
        (
            "[store]\nengine = \"postgres\"\n",
            "needs a [store.postgres] section",
        ),
        (
            "[store]\nengine = \"mysql\"\n",
            "must be \"sled\" or \"postgres\"",
        ),
        (
            "[store]\n[store.postgres]\nconninfo = \"host=x\"\n",
            "store.engine is \"sled\"",
        ),
    ] {
        let errors = Config::from_toml(
            &format!("{MINIMAL}\n{lines}"),
            &dir.path().join("shsd.toml"),
        )
        .unwrap_err();
        assert!(errors.to_string().contains(problem), "{errors}");
    }
}
