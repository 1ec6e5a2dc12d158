//! PostgreSQL for the tests and benchmarks that need a database server.
//!
//! [`test_server`] is the entry point: a fresh database per test from
//! [`Server::fresh_database`], as a `postgres://` URL.
//!
//! - `LIGHTHOUSE_TEST_POSTGRES=postgres://USER@HOST:PORT` (optionally `/postgres`):
//!   use that server; each fresh database is created on it with `psql`. CI sets this
//!   (`.ci/run` starts one throwaway server for the whole run), so that many test
//!   processes share one server instead of each running initdb.
//! - otherwise, on a developer's machine: a [`PgCluster`] of our own, a throwaway
//!   cluster (initdb, trust authentication, `fsync=off`) in a temp dir under `/tmp`, on
//!   a free TCP port of 127.0.0.1, stopped and removed on drop, also when the test
//!   panics. It needs the server binaries (the newest `/usr/lib/postgresql/*/bin`,
//!   Debian package `postgresql`) and, when we are root, the `postgres` OS user: the
//!   server refuses to run as root.
//! - `CI` set without `LIGHTHOUSE_TEST_POSTGRES`: panic, so that a CI missing its
//!   server fails loudly rather than quietly testing something else.
//!
//! `/tmp` rather than `$TMPDIR`: the server user must be able to traverse the parent
//! dir, and the Unix socket path in it must stay short (107 bytes at most).
//!
//! Everything is done with the PostgreSQL command line programs (initdb, pg_ctl,
//! createdb, psql), so this crate needs no database client library.
//!
//! [`PgCluster::start_tls`] starts one that takes TCP connections only over TLS, with a
//! server certificate signed by a CA made for it (rcgen); [`PgCluster::tls`] tells where
//! that CA's certificate is. [`PgCluster::password_role`] adds a role that must give its
//! password (SCRAM) over TCP.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable naming an external server for the tests.
pub const TEST_SERVER_ENV: &str = "LIGHTHOUSE_TEST_POSTGRES";

/// How many ports [`PgCluster::start`] tries before giving up.
const START_ATTEMPTS: usize = 5;

/// A throwaway PostgreSQL cluster: its own data dir in a temp dir, its own TCP port,
/// user `postgres` with trust authentication. Stopped (immediately) and removed on
/// drop. Do not keep one in a `static`: statics are never dropped, and the server would
/// outlive the test process.
pub struct PgCluster {
    bin: PathBuf,
    /// `Some((uid, gid))` of the `postgres` user when we are root; `None`: run the
    /// server as ourselves.
    run_as: Option<(u32, u32)>,
    /// The temp dir: `data/` (the cluster), `log` (the server's log), the Unix socket.
    dir: PathBuf,
    port: u16,
    listen: Vec<Ipv4Addr>,
    tls: Option<TlsFiles>,
    _tmp: tempfile::TempDir,
}

/// The certificates of a cluster started with [`PgCluster::start_tls`] (PEM files,
/// readable by all).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate: `sslrootcert=` for verify-ca and
    /// verify-full.
    pub ca: PathBuf,
    /// A CA that signed nothing the server has: a wrong `sslrootcert`.
    pub other_ca: PathBuf,
    /// The names (DNS or IP) the server's certificate is made for.
    pub names: Vec<String>,
}

impl PgCluster {
    /// A fresh cluster listening on 127.0.0.1. Panics if the server binaries or (when
    /// root) the `postgres` user are missing, or if it does not start.
    pub fn start() -> PgCluster {
        Self::start_on(vec![Ipv4Addr::LOCALHOST], None)
    }

    /// A fresh cluster listening on 127.0.0.1 that takes TCP connections only over TLS
    /// (`ssl = on`, `hostssl` lines alone in pg_hba.conf: a plain connection is refused),
    /// with a server certificate for `names` (DNS names or IP addresses) signed by a CA
    /// of its own ([`PgCluster::tls`]). Its own programs (createdb) connect with
    /// `PGSSLMODE=require`; give [`psql`] a URL with `?sslmode=require`.
    pub fn start_tls(names: &[&str]) -> PgCluster {
        let names = names.iter().map(|n| n.to_string()).collect();
        Self::start_on(vec![Ipv4Addr::LOCALHOST], Some(names))
    }

    /// Where the CA certificates of a [`PgCluster::start_tls`] cluster are.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// A role `name` that logs in with `password` (SCRAM-SHA-256) over TCP: its line
    /// goes first in pg_hba.conf, and the server reloads it.
    pub fn password_role(&self, name: &str, password: &str) {
        check_db_name(name);
        assert!(
            !password.contains('\'') && !password.contains('\\'),
            "keep test passwords free of quotes and backslashes"
        );
        let out = self
            .command("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg("-c")
            .arg(format!(
                "SET password_encryption = 'scram-sha-256'; \
                 CREATE ROLE {name} LOGIN PASSWORD '{password}'"
            ))
            .output()
            .expect("run psql");
        check_output("CREATE ROLE", &out);
        let hba = self.data_dir().join("pg_hba.conf");
        let kind = if self.tls.is_some() {
            "hostssl"
        } else {
            "host"
        };
        let old = fs::read_to_string(&hba).expect("read pg_hba.conf");
        fs::write(
            &hba,
            format!(
                "{kind} all {name} 127.0.0.1/32 scram-sha-256\n\
                 {kind} all {name} ::1/128 scram-sha-256\n{old}"
            ),
        )
        .expect("write pg_hba.conf");
        let out = self.pg_ctl("reload").output().expect("run pg_ctl reload");
        self.check_pg_ctl("reload", &out);
        // The postmaster reloads on SIGHUP, in its own time: wait until the role without
        // its password is refused.
        for _ in 0..250 {
            let out = self
                .command("psql")
                .args(["-X", "-w", "-h", &self.host(), "-p", &self.port.to_string()])
                .args(["-U", name, "-d", "postgres", "-c", "SELECT 1"])
                .output()
                .expect("run psql");
            if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("password") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "the server did not come to ask {name} for a password\n{}",
            self.log()
        );
    }

    /// A fresh cluster listening on `addr` as well as on 127.0.0.1 (for tests that
    /// reach it from another network namespace).
    pub fn start_listening_on(addr: Ipv4Addr) -> PgCluster {
        let mut listen = vec![Ipv4Addr::LOCALHOST];
        if addr != Ipv4Addr::LOCALHOST {
            listen.push(addr);
        }
        Self::start_on(listen, None)
    }

    /// A fresh cluster listening on every address, trusting the network namespaces of
    /// [`crate::netns`] ([`crate::netns::NETWORK`]) as well as 127.0.0.1: hosts in
    /// their namespaces reach it at their [`crate::NetNs::outside`] address.
    pub fn start_for_namespaces() -> PgCluster {
        Self::start_on(vec![Ipv4Addr::UNSPECIFIED], None)
    }

    /// `url` (a database of this cluster) as a host reaches it at `addr`.
    pub fn url_via(&self, url: &str, addr: Ipv4Addr) -> String {
        url.replacen(
            &format!("@{}:{}", self.host(), self.port),
            &format!("@{addr}:{}", self.port),
            1,
        )
    }

    /// `tls`: the names of the server's certificate, for a cluster that takes only TLS.
    fn start_on(listen: Vec<Ipv4Addr>, tls: Option<Vec<String>>) -> PgCluster {
        let bin = server_bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries not found: no /usr/lib/postgresql/*/bin/initdb \
                 (Debian: apt-get install postgresql), or set {TEST_SERVER_ENV} to a server"
            )
        });
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!(
                        "no `postgres` OS user: as root, the PostgreSQL server must run as \
                         another user (Debian's postgresql package creates it), or set \
                         {TEST_SERVER_ENV} to a server"
                    )
                });
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };

        let tmp = tempfile::Builder::new()
            .prefix("lhfs-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir for PostgreSQL");
        let dir = tmp.path().to_path_buf();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        if let Some((uid, gid)) = run_as {
            nix::unistd::chown(
                &dir,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .expect("chown temp dir to postgres");
        }

        let mut cluster = PgCluster {
            bin,
            run_as,
            dir,
            port: 0,
            listen,
            tls: None,
            _tmp: tmp,
        };
        let data = cluster.data_dir();
        let out = cluster
            .as_server_user("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        check_output("initdb", &out);
        if cluster.listen.contains(&Ipv4Addr::UNSPECIFIED) {
            let (net, bits) = crate::netns::NETWORK;
            let hba = cluster.data_dir().join("pg_hba.conf");
            let mut text = fs::read_to_string(&hba).expect("read pg_hba.conf");
            text.push_str(&format!("host all all {net}/{bits} trust\n"));
            fs::write(&hba, text).expect("write pg_hba.conf");
        }
        if let Some(names) = tls {
            cluster.tls = Some(cluster.set_up_tls(names));
        }

        let mut failures = String::new();
        for attempt in 1..=START_ATTEMPTS {
            cluster.port = free_port(&cluster.listen);
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(e) => {
                    failures += &format!(
                        "attempt {attempt}, port {}: {e}\n--- server log ---\n{}\n",
                        cluster.port,
                        cluster.log()
                    );
                    // A server that came up too late for pg_ctl's wait is not ours to keep.
                    cluster.stop_immediately();
                    let _ = fs::remove_file(cluster.log_path());
                }
            }
        }
        panic!("PostgreSQL did not start after {START_ATTEMPTS} attempts:\n{failures}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> String {
        Ipv4Addr::LOCALHOST.to_string()
    }

    /// `postgres://postgres@127.0.0.1:PORT`: the server, without a database.
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@{}:{}", self.host(), self.port)
    }

    /// Creates database `name` (letters, digits, `_`) and returns its URL,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn create_database(&self, name: &str) -> String {
        check_db_name(name);
        let out = self
            .command("createdb")
            .args(["-h", &self.host(), "-p", &self.port.to_string()])
            .args(["-U", "postgres", name])
            .output()
            .expect("run createdb");
        if !out.status.success() {
            panic!(
                "createdb {name} failed: {}\n--- server log ---\n{}",
                describe(&out),
                self.log()
            );
        }
        format!("{}/{name}", self.base_url())
    }

    /// A new database with a name of its own; returns its URL.
    pub fn fresh_database(&self) -> String {
        self.create_database(&unique_db_name())
    }

    /// `pg_ctl stop -m fast`: disconnects the clients, waits until the server is down.
    pub fn stop(&self) {
        let out = self
            .pg_ctl("stop")
            .args(["-m", "fast", "-w"])
            .output()
            .expect("run pg_ctl stop");
        self.check_pg_ctl("stop", &out);
    }

    /// Starts the stopped server again: same data dir, same port.
    pub fn start_again(&self) {
        if let Err(e) = self.try_start() {
            panic!(
                "PostgreSQL did not start again on port {}: {e}\n--- server log ---\n{}",
                self.port,
                self.log()
            );
        }
    }

    /// `pg_ctl restart -m fast`: stop (disconnecting the clients) and start again.
    pub fn restart(&self) {
        let out = self
            .pg_ctl("restart")
            .args(["-m", "fast", "-w", "-o", &self.server_options(), "-l"])
            .arg(self.log_path())
            .output()
            .expect("run pg_ctl restart");
        self.check_pg_ctl("restart", &out);
    }

    /// Whether the server is running (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        self.pg_ctl("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        match fs::read(self.log_path()) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(no server log: {e})"),
        }
    }

    /// A CA, a server certificate for `names` signed by it, and another CA; `ssl = on`
    /// and `hostssl` alone for TCP in pg_hba.conf.
    fn set_up_tls(&self, names: Vec<String>) -> TlsFiles {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
        let (ca_params, ca_key, ca_pem) = test_ca("lighthouse-fs test CA");
        let (_, _, other_pem) = test_ca("another CA");

        let server_key = KeyPair::generate().expect("server key");
        let mut server = CertificateParams::new(names.clone()).expect("server names");
        server
            .distinguished_name
            .push(DnType::CommonName, names.first().map_or("server", |n| n));
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::new(ca_params, ca_key);
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let files = TlsFiles {
            ca: self.dir.join("ca.pem"),
            other_ca: self.dir.join("other-ca.pem"),
            names,
        };
        fs::write(&files.ca, ca_pem).expect("write ca.pem");
        fs::write(&files.other_ca, other_pem).expect("write other-ca.pem");
        // The server's defaults: server.crt and server.key in the data dir, the key the
        // server user's alone.
        let data = self.data_dir();
        let (crt, key) = (data.join("server.crt"), data.join("server.key"));
        fs::write(&crt, server_cert.pem()).expect("write server.crt");
        fs::write(&key, server_key.serialize_pem()).expect("write server.key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod server.key");
        for path in [&crt, &key] {
            if let Some((uid, gid)) = self.run_as {
                nix::unistd::chown(
                    path,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .expect("chown to postgres");
            }
        }
        let conf = data.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).expect("read postgresql.conf");
        text += "\nssl = on\n";
        fs::write(&conf, text).expect("write postgresql.conf");
        fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n",
        )
        .expect("write pg_hba.conf");
        files
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn server_options(&self) -> String {
        let listen: Vec<String> = self.listen.iter().map(|a| a.to_string()).collect();
        // pg_ctl hands these to a shell: quote what could need it.
        format!(
            "-p {} -k '{}' -c listen_addresses='{}' -c fsync=off",
            self.port,
            self.dir.display(),
            listen.join(",")
        )
    }

    fn try_start(&self) -> Result<(), String> {
        let out = self
            .pg_ctl("start")
            .args(["-w", "-o", &self.server_options(), "-l"])
            .arg(self.log_path())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("pg_ctl start failed: {}", describe(&out)))
        }
    }

    fn check_pg_ctl(&self, what: &str, out: &Output) {
        if !out.status.success() {
            panic!(
                "pg_ctl {what} failed: {}\n--- server log ---\n{}",
                describe(out),
                self.log()
            );
        }
    }

    /// `pg_ctl stop -m immediate`, then, should the postmaster still be there, SIGKILL.
    /// Never panics (it runs in drop).
    fn stop_immediately(&self) {
        // The pid first: the postmaster removes its pid file before it has exited, and
        // pg_ctl returns on the file.
        let pid = self.postmaster_pid();
        let _ = self
            .pg_ctl("stop")
            .args(["-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let Some(pid) = pid else { return };
        let gone = |tries: usize| {
            for _ in 0..tries {
                if !postgres_running(pid) {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            false
        };
        if !gone(250) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            gone(250);
        }
    }

    /// The pid in `postmaster.pid`, if there is one.
    fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok().filter(|&p| p > 0)
    }

    fn pg_ctl(&self, action: &str) -> Command {
        let mut cmd = self.as_server_user("pg_ctl");
        cmd.arg(action).arg("-D").arg(self.data_dir());
        cmd
    }

    /// A program of the server's bin dir, run as the server's user, in the temp dir.
    fn as_server_user(&self, program: &str) -> Command {
        let mut cmd = self.command(program);
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups (setgroups) before setuid.
            cmd.uid(uid).gid(gid);
        }
        cmd.env("HOME", &self.dir);
        cmd
    }

    /// A program of the server's bin dir, run as ourselves.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        scrub_pg_env(&mut cmd);
        if self.tls.is_some() {
            cmd.env("PGSSLMODE", "require");
        }
        cmd.current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // The temp dir goes with `_tmp` after this.
        self.stop_immediately();
    }
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .field("listen", &self.listen)
            .finish()
    }
}

/// The database server of a test: an external one (CI's) or a cluster of our own.
#[derive(Debug)]
pub enum Server {
    /// The server of `LIGHTHOUSE_TEST_POSTGRES`: its URL without a database.
    External(String),
    Own(PgCluster),
}

impl Server {
    /// The server's URL, without a database.
    pub fn base_url(&self) -> String {
        match self {
            Server::External(url) => split_url(url).0,
            Server::Own(cluster) => cluster.base_url(),
        }
    }

    /// A new database with a name of its own; returns its URL.
    pub fn fresh_database(&self) -> String {
        match self {
            Server::Own(cluster) => cluster.fresh_database(),
            Server::External(url) => {
                let (base, query) = split_url(url);
                let name = unique_db_name();
                psql(
                    &format!("{base}/postgres{query}"),
                    &format!("CREATE DATABASE {name}"),
                );
                format!("{base}/{name}{query}")
            }
        }
    }
}

/// The server for a test: `LIGHTHOUSE_TEST_POSTGRES`'s if it is set, else a cluster of
/// our own; panics under CI (`CI` set) without `LIGHTHOUSE_TEST_POSTGRES`. See the
/// module doc.
pub fn test_server() -> Server {
    match std::env::var(TEST_SERVER_ENV) {
        Ok(url) if !url.trim().is_empty() => Server::External(url.trim().to_string()),
        _ if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("CI must provide PostgreSQL: set {TEST_SERVER_ENV} (.ci/run starts a server)")
        }
        _ => Server::Own(PgCluster::start()),
    }
}

/// Runs `sql` with `psql` on the database of `url` (stopping at the first error) and
/// returns its unaligned, tuples-only output; panics if psql fails.
pub fn psql(url: &str, sql: &str) -> String {
    let mut cmd = Command::new(psql_path());
    scrub_pg_env(&mut cmd);
    let out = cmd
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    if !out.status.success() {
        panic!("psql {url} -c {sql:?} failed: {}", describe(&out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed CA named `cn`: its parameters, its key and its certificate (PEM).
fn test_ca(cn: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (params, key, pem)
}

/// Whether `pid` is a running (not zombie: the postmaster is not our child, and whoever
/// inherits it may be slow to reap) process named `postgres`.
fn postgres_running(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, the last ')' ends it.
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let state = stat[close + 1..].trim_start().chars().next();
    &stat[open + 1..close] == "postgres" && !matches!(state, Some('Z' | 'X') | None)
}

/// The newest `/usr/lib/postgresql/VERSION/bin` that has `initdb`.
fn server_bin_dir() -> Option<PathBuf> {
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in fs::read_dir("/usr/lib/postgresql").ok()?.flatten() {
        let name = entry.file_name();
        let Some(version) = name.to_str().and_then(|v| {
            v.split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u64>>>()
        }) else {
            continue;
        };
        let bin = entry.path().join("bin");
        if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(b, _)| version > *b) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin)
}

/// The newest server's own psql (no Debian wrapper in between), else `psql` on PATH.
fn psql_path() -> PathBuf {
    server_bin_dir()
        .map(|bin| bin.join("psql"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// A free TCP port on all of `addrs` (bound and released: a race with other users of
/// ports, which [`PgCluster::start`]'s retries cover).
fn free_port(addrs: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind 127.0.0.1:0")
            .port();
        if addrs.iter().all(|&a| TcpListener::bind((a, port)).is_ok()) {
            return port;
        }
    }
    panic!("no TCP port free on all of {addrs:?}");
}

/// `lhfs_<ms since the epoch>_<pid>_<counter>`: unique within a process by the counter,
/// between processes by the pid, between runs on a long-lived server by the time.
fn unique_db_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("lhfs_{ms}_{}_{n}", std::process::id())
}

fn check_db_name(name: &str) {
    assert!(
        !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit()),
        "database name {name:?}: use lowercase letters, digits and _ (at most 63 bytes)"
    );
}

/// `(scheme://authority, ?query or "")` of a server URL with or without a database.
fn split_url(url: &str) -> (String, String) {
    let (rest, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority_start = rest.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match rest[authority_start..].find('/') {
        Some(i) => &rest[..authority_start + i],
        None => rest,
    };
    (base.to_string(), query.to_string())
}

/// The PG* variables of our environment (PGHOST, PGDATA, PGOPTIONS...) would override
/// or add to what we ask for: the children get none.
fn scrub_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(&key);
        }
    }
}

fn check_output(what: &str, out: &Output) {
    if !out.status.success() {
        panic!("{what} failed: {}", describe(out));
    }
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    fn refuses(addr: Ipv4Addr, port: u16) -> bool {
        TcpStream::connect_timeout(&SocketAddr::from((addr, port)), Duration::from_secs(2)).is_err()
    }

    fn alive(pid: i32) -> bool {
        postgres_running(pid)
    }

    #[test]
    fn cluster_life() {
        let pg = PgCluster::start();
        assert_eq!(pg.host(), "127.0.0.1");
        assert!(pg.is_running());
        let a = pg.fresh_database();
        let b = pg.fresh_database();
        assert_ne!(a, b);
        let prefix = format!("postgres://postgres@127.0.0.1:{}/lhfs_", pg.port());
        assert!(a.starts_with(&prefix), "{a}");
        assert_eq!(psql(&a, "SELECT 1").trim(), "1");
        assert_eq!(psql(&b, "SELECT 1").trim(), "1");
        psql(&a, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)");
        let named = pg.create_database("named_db");
        assert_eq!(
            named,
            format!("postgres://postgres@127.0.0.1:{}/named_db", pg.port())
        );
        assert_eq!(psql(&named, "SELECT current_database()").trim(), "named_db");

        pg.stop();
        assert!(!pg.is_running());
        assert!(refuses(Ipv4Addr::LOCALHOST, pg.port()));

        pg.start_again();
        assert!(pg.is_running());
        assert_eq!(psql(&a, "SELECT x FROM t").trim(), "42");

        let before = pg.postmaster_pid().unwrap();
        pg.restart();
        assert!(pg.is_running());
        assert_ne!(pg.postmaster_pid().unwrap(), before);
        assert!(!alive(before));
        assert_eq!(psql(&a, "SELECT x FROM t").trim(), "42");
        assert!(
            pg.log().contains("database system is ready"),
            "{}",
            pg.log()
        );

        let (dir, port, pid) = (pg.dir.clone(), pg.port(), pg.postmaster_pid().unwrap());
        assert!(alive(pid));
        drop(pg);
        assert!(!dir.exists(), "{dir:?} left behind");
        assert!(!alive(pid), "postmaster {pid} left running");
        assert!(refuses(Ipv4Addr::LOCALHOST, port));
    }

    #[test]
    fn drop_on_panic() {
        let seen = std::sync::Mutex::new(None);
        let result = std::panic::catch_unwind(|| {
            let pg = PgCluster::start();
            *seen.lock().unwrap() = Some((pg.dir.clone(), pg.port(), pg.postmaster_pid()));
            panic!("test failure");
        });
        assert!(result.is_err());
        let (dir, port, pid) = seen.into_inner().unwrap().unwrap();
        assert!(!dir.exists(), "{dir:?} left behind");
        assert!(!alive(pid.unwrap()));
        assert!(refuses(Ipv4Addr::LOCALHOST, port));
    }

    #[test]
    fn listening_on_another_address() {
        // All of 127/8 is on lo.
        let other = Ipv4Addr::new(127, 0, 0, 2);
        let pg = PgCluster::start_listening_on(other);
        let url = pg.fresh_database();
        let elsewhere = url.replace("127.0.0.1", "127.0.0.2");
        assert_eq!(psql(&elsewhere, "SELECT 1").trim(), "1");
        assert_eq!(psql(&url, "SELECT 1").trim(), "1");
    }

    #[test]
    fn external_server() {
        let pg = PgCluster::start();
        for given in [
            pg.base_url(),
            format!("{}/postgres", pg.base_url()),
            format!("{}/?sslmode=disable", pg.base_url()),
        ] {
            let server = Server::External(given.clone());
            assert_eq!(server.base_url(), pg.base_url());
            let a = server.fresh_database();
            let b = server.fresh_database();
            assert_ne!(a, b);
            assert_eq!(psql(&a, "SELECT 1").trim(), "1", "{given}");
            assert_eq!(psql(&b, "SELECT 1").trim(), "1", "{given}");
        }
    }

    #[test]
    fn own_server() {
        let server = Server::Own(PgCluster::start());
        let url = server.fresh_database();
        assert!(url.starts_with(&server.base_url()));
        assert_eq!(psql(&url, "SELECT 1").trim(), "1");
    }

    /// What `test_server` makes of this process's environment (run it under each case).
    #[test]
    fn test_server_follows_env() {
        let external = std::env::var(TEST_SERVER_ENV).is_ok_and(|v| !v.trim().is_empty());
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        if !external && ci {
            let err = std::panic::catch_unwind(test_server).unwrap_err();
            let msg = err.downcast_ref::<String>().unwrap();
            assert!(msg.contains("CI must provide PostgreSQL"), "{msg}");
            return;
        }
        let server = test_server();
        assert_eq!(
            matches!(server, Server::External(_)),
            external,
            "{server:?}"
        );
        let url = server.fresh_database();
        assert_eq!(psql(&url, "SELECT 1").trim(), "1");
    }

    #[test]
    fn a_cluster_that_takes_only_tls() {
        let pg = PgCluster::start_tls(&["localhost"]);
        let tls = pg.tls().expect("TLS files").clone();
        assert_eq!(tls.names, ["localhost"]);
        let ca = fs::read_to_string(&tls.ca).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        assert_ne!(ca, fs::read_to_string(&tls.other_ca).unwrap());
        let url = pg.fresh_database();
        assert_eq!(
            psql(
                &format!("{url}?sslmode=require"),
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
            .trim(),
            "t"
        );
        // libpq checks the certificate against the CA, and the host name.
        let full = |host: &str, ca: &std::path::Path| {
            format!(
                "{}?sslmode=verify-full&sslrootcert={}",
                url.replace("127.0.0.1", host),
                ca.display()
            )
        };
        assert_eq!(psql(&full("localhost", &tls.ca), "SELECT 1").trim(), "1");
        let refused = |url: String| std::panic::catch_unwind(|| psql(&url, "SELECT 1")).is_err();
        assert!(refused(full("localhost", &tls.other_ca)));
        assert!(refused(full("127.0.0.1", &tls.ca)));
        assert!(refused(format!("{url}?sslmode=disable")));
        // A role that must give its password.
        pg.password_role("bridge", "pass-word");
        let base = pg.base_url();
        let with = |password: &str| {
            base.replacen("postgres@", &format!("bridge:{password}@"), 1)
                + "/postgres?sslmode=require"
        };
        assert_eq!(
            psql(&with("pass-word"), "SELECT current_user").trim(),
            "bridge"
        );
        assert!(refused(with("wrong")));
        // The others still need none.
        assert_eq!(
            psql(&format!("{url}?sslmode=require"), "SELECT 1").trim(),
            "1"
        );
    }

    #[test]
    fn send_sync() {
        fn is<T: Send + Sync>() {}
        is::<PgCluster>();
        is::<Server>();
    }

    #[test]
    fn urls() {
        let s = |u| split_url(u);
        let base = "postgres://postgres@127.0.0.1:5432".to_string();
        assert_eq!(
            s("postgres://postgres@127.0.0.1:5432"),
            (base.clone(), "".into())
        );
        assert_eq!(
            s("postgres://postgres@127.0.0.1:5432/postgres"),
            (base.clone(), "".into())
        );
        assert_eq!(
            s("postgres://postgres@127.0.0.1:5432/"),
            (base.clone(), "".into())
        );
        assert_eq!(
            s("postgres://postgres@127.0.0.1:5432/x?sslmode=disable"),
            (base, "?sslmode=disable".into())
        );
        let n = unique_db_name();
        check_db_name(&n);
        assert_ne!(n, unique_db_name());
    }
}
