//! Throwaway PostgreSQL servers for tests and benchmarks (not for production): one
//! server shared by the tests of a process ([`fresh_database`], one fresh database per
//! fixture), or a server of the caller's own ([`TestServer`]) that it may stop and start
//! again (the database-restart tests).
//!
//! The server is Debian's (`apt-get install postgresql`; the binaries are looked up in
//! `$SHSD_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`). It runs from a temporary
//! directory on a free 127.0.0.1 port with trust authentication for user `shsd`, its
//! Unix socket in that directory, and `fsync=off` (the tests check shsd's behaviour, not
//! the disk; a server process killed with `-m immediate` still loses nothing the kernel
//! has). PostgreSQL refuses to run as root, so as root `initdb` and `pg_ctl` run as
//! `nobody` through `runuser` (util-linux), with the directory handed to `nobody`. A small
//! watchdog shell stops the server with `pg_ctl stop -m immediate` and deletes the
//! directory once the process that started it is gone, since a test binary has no hook
//! that runs at exit; it runs in its own process group and ignores SIGINT/SIGTERM/SIGHUP,
//! so interrupting the tests does not leave a server behind.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{PgConfig, PgStore};

static SERVER: OnceLock<Result<TestServer, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// A store on a fresh database of the shared test server. Call from a multi-threaded
/// tokio runtime (it blocks in place while it creates the database).
pub fn fresh_store() -> PgStore {
    let config = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(fresh_database())
    });
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(PgStore::open(&config))
            .expect("open the test store")
    })
}

/// The configuration of a fresh, empty database on the shared test server.
pub async fn fresh_database() -> PgConfig {
    let server = match SERVER.get_or_init(TestServer::start) {
        Ok(server) => server,
        Err(err) => panic!("cannot start the test PostgreSQL server: {err}"),
    };
    let name = format!(
        "shsd_test_{}",
        DATABASES.fetch_add(1, Ordering::Relaxed) + 1
    );
    let conninfo = server
        .create_database(&name)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let mut config = PgConfig::new(conninfo);
    config.pool_size = 8;
    config
}

/// A PostgreSQL server of its own, stopped by its watchdog when this process ends.
#[derive(Debug)]
pub struct TestServer {
    fsync: bool,
    /// Serves TLS with `server.crt` / `server.key` in its directory.
    tls: bool,
    bin: PathBuf,
    dir: PathBuf,
    runas: Option<&'static str>,
    port: u16,
}

impl TestServer {
    /// Creates a cluster in a temporary directory and starts it on a free port, with
    /// `fsync=off` (behaviour tests).
    pub fn start() -> Result<TestServer, String> {
        TestServer::create(false, None)
    }

    /// Like [`TestServer::start`], also serving TLS with the certificate chain and key
    /// in these PEM files.
    pub fn start_with_tls(certificate: &Path, key: &Path) -> Result<TestServer, String> {
        TestServer::create(false, Some((certificate, key)))
    }

    /// Like [`TestServer::start`] with PostgreSQL's durable defaults (`fsync=on`), for
    /// benchmarks whose numbers must include the database's disk syncs.
    pub fn start_durable() -> Result<TestServer, String> {
        TestServer::create(true, None)
    }

    fn create(fsync: bool, tls: Option<(&Path, &Path)>) -> Result<TestServer, String> {
        let bin = binaries()?;
        let dir = std::env::temp_dir().join(format!("shsd-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let runas = if output("id", &["-u"])? == "0" {
            let uid: u32 = parse_id(&output("id", &["-u", "nobody"])?)?;
            let gid: u32 = parse_id(&output("id", &["-g", "nobody"])?)?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|err| format!("chown {}: {err}", dir.display()))?;
            Some("nobody")
        } else {
            None
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("free port: {err}"))?
            .port();
        if let Some((certificate, key)) = tls {
            install_tls_files(&dir, certificate, key, runas.is_some())?;
        }
        let server = TestServer {
            fsync,
            tls: tls.is_some(),
            bin,
            dir,
            runas,
            port,
        };
        run(
            runas,
            &server.dir,
            &server.bin.join("initdb"),
            &[
                "-D",
                &server.data(),
                "-U",
                "shsd",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        )?;
        server.watch()?;
        server.start_again()?;
        Ok(server)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` and returns its connection string.
    pub async fn create_database(&self, name: &str) -> Result<String, String> {
        let admin = format!(
            "host=127.0.0.1 port={} user=shsd dbname=postgres",
            self.port
        );
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .map_err(|err| format!("connect to the test server: {err}"))?;
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|err| format!("create database {name}: {err}"))?;
        drop(client);
        let _ = driver.await;
        Ok(format!(
            "host=127.0.0.1 port={} user=shsd dbname={name}",
            self.port
        ))
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`: no
    /// checkpoint; the next start recovers from the WAL).
    pub fn kill(&self) -> Result<(), String> {
        run(
            self.runas,
            &self.dir,
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-w", "stop", "-m", "immediate"],
        )
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn start_again(&self) -> Result<(), String> {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c fsync={} -c max_connections=200",
            self.port,
            self.dir.display(),
            if self.fsync { "on" } else { "off" }
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
                dir = self.dir.display()
            ));
        }
        let log = self.dir.join("server.log").display().to_string();
        let started = run(
            self.runas,
            &self.dir,
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
        started.map_err(|err| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{err}\n{log}")
        })
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Starts the watchdog that stops the server and removes its directory when this
    /// process is gone.
    fn watch(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let stop = match self.runas {
            Some(user) => format!("runuser -u {user} -- '{pg_ctl}'"),
            None => format!("'{pg_ctl}'"),
        };
        let watchdog = format!(
            "trap '' HUP INT TERM; while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} -D '{data}' stop -m immediate >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data(),
            dir = self.dir.display(),
        );
        // Its own process group, so that a signal to the test's group (Ctrl-C, `timeout`)
        // does not take the watchdog down before it has stopped the server.
        Command::new("sh")
            .args(["-c", &watchdog])
            .process_group(0)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("watchdog: {err}"))?;
        Ok(())
    }
}

/// Copies the server's TLS files into `dir` as PostgreSQL wants them: the key readable
/// only by the server's user.
fn install_tls_files(
    dir: &Path,
    certificate: &Path,
    key: &Path,
    as_nobody: bool,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    for (from, name, mode) in [
        (certificate, "server.crt", 0o644),
        (key, "server.key", 0o600),
    ] {
        let to = dir.join(name);
        std::fs::copy(from, &to).map_err(|err| format!("{}: {err}", from.display()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))
            .map_err(|err| format!("{}: {err}", to.display()))?;
        if as_nobody {
            let uid: u32 = parse_id(&output("id", &["-u", "nobody"])?)?;
            let gid: u32 = parse_id(&output("id", &["-g", "nobody"])?)?;
            std::os::unix::fs::chown(&to, Some(uid), Some(gid))
                .map_err(|err| format!("chown {}: {err}", to.display()))?;
        }
    }
    Ok(())
}

/// The directory of `initdb` and `pg_ctl`.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SHSD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|err| format!("/usr/lib/postgresql (apt-get install postgresql): {err}"))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL under /usr/lib/postgresql".to_owned())
}

fn run(runas: Option<&str>, cwd: &Path, program: &Path, args: &[&str]) -> Result<(), String> {
    let mut command = match runas {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    };
    let out = command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{}: {err}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn output(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|err| format!("{program}: {err}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn parse_id(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("not a user or group id: {text:?}"))
}
