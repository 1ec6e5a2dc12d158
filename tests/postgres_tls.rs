//! Reaching the PostgreSQL store as libpq would, through real mounts on both backends:
//! TLS as `sslmode` says (the sessions encrypted, the server's certificate checked
//! against `sslrootcert` and the host name, or the mount refused with a clear line), and
//! a password from the password file that never shows.
//!
//! Each test runs a cluster of its own that takes TCP connections only over TLS
//! (`PgCluster::start_tls`), its certificate made for `localhost` by a test CA; CI's
//! shared server is not used, its settings are not ours to change. Every lighthouse-fs
//! run gets an empty HOME, so nothing of this machine's `~/.postgresql` or `~/.pgpass`
//! takes part.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use lighthouse_fs_support::postgres::{psql, PgCluster, TlsFiles};

/// A TLS-only cluster with one database, and a scratch directory for caches, a HOME
/// and password files.
struct Tls {
    pg: PgCluster,
    /// `postgres://postgres@127.0.0.1:PORT/DB`, without parameters.
    url: String,
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Tls {
    fn new() -> Tls {
        let pg = PgCluster::start_tls(&["localhost"]);
        let url = pg.fresh_database();
        let dir = tempfile::Builder::new()
            .prefix("lhfs-tls-")
            .tempdir()
            .unwrap();
        let path = dir.path().canonicalize().unwrap();
        fs::create_dir(path.join("home")).unwrap();
        Tls {
            pg,
            url,
            _dir: dir,
            dir: path,
        }
    }

    fn files(&self) -> &TlsFiles {
        self.pg.tls().unwrap()
    }

    /// The store's URL for host `host` with the parameters `query`.
    fn store(&self, host: &str, query: &str) -> String {
        format!("{}?{query}", self.url.replacen("127.0.0.1", host, 1))
    }

    fn cache(&self, n: usize) -> String {
        self.dir.join(format!("cache-{n}")).display().to_string()
    }

    /// An empty HOME: no ~/.postgresql, no ~/.pgpass.
    fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    fn mount(&self, backend: Backend, store: &str, cache: usize, env: &[(&str, &OsStr)]) -> Mount {
        let home = self.home();
        let mut env = env.to_vec();
        env.push(("HOME", home.as_os_str()));
        Mount::start_with_env(
            backend,
            Path::new(store),
            &["--cache", &self.cache(cache)],
            &env,
        )
    }

    /// A mount of `store` that must fail; its output.
    fn refused(&self, backend: Backend, store: &str, env: &[(&str, &OsStr)]) -> CliOutput {
        let mnt = tempfile::tempdir().unwrap();
        let home = self.home();
        let mut env = env.to_vec();
        env.push(("HOME", home.as_os_str()));
        let args: Vec<OsString> = vec![
            "mount".into(),
            mnt.path().into(),
            "--store".into(),
            store.into(),
            "--backend".into(),
            backend.as_str().into(),
            "--cache".into(),
            self.cache(99).into(),
        ];
        let out = mount_args_expect_failure_env(mnt.path(), args, &env);
        assert_ne!(out.code(), Some(0), "{out:?}");
        out
    }

    /// `lighthouse-fs ARGS` with the empty HOME.
    fn cli(&self, args: &[&str]) -> CliOutput {
        let home = self.home();
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        cli_env(&args, &[("HOME", home.as_os_str())])
    }

    /// One SQL answer, over TLS.
    fn sql(&self, query: &str) -> String {
        psql(&format!("{}?sslmode=require", self.url), query)
            .trim()
            .to_owned()
    }

    /// How many lighthouse-fs sessions the server has, and whether all are encrypted.
    fn sessions(&self) -> String {
        self.sql(
            "SELECT count(*) || ' ' || coalesce(bool_and(ssl), false) FROM pg_stat_ssl \
             JOIN pg_stat_activity USING (pid) WHERE application_name = 'lighthouse-fs'",
        )
    }
}

both_backends! {
    #[timeout_secs(90)]
    fn sslmode_require_encrypts_every_session(backend: Backend) {
        let t = Tls::new();
        let store = t.store("127.0.0.1", "sslmode=require");
        let m = t.mount(backend, &store, 1, &[]);
        fs::write(m.path("f"), b"over TLS").unwrap();
        assert_eq!(fs::read(m.path("f")).unwrap(), b"over TLS");
        let sessions = t.sessions();
        let (count, all_ssl) = sessions.split_once(' ').unwrap();
        assert!(count.parse::<u32>().unwrap() >= 2, "[{backend}] sessions: {sessions}");
        assert_eq!(all_ssl, "true", "[{backend}] every lighthouse-fs session encrypted: {sessions}");
        let stderr = m.stop();
        assert!(!stderr.contains("WARN"), "[{backend}] {stderr}");
        // In the database, read back by a second mount with an empty cache.
        let m = t.mount(backend.other(), &store, 2, &[]);
        assert_eq!(fs::read(m.path("f")).unwrap(), b"over TLS");
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(90)]
    fn verify_full_checks_the_root_and_the_host(backend: Backend) {
        let t = Tls::new();
        let ca = t.files().ca.display().to_string();
        let other_ca = t.files().other_ca.display().to_string();
        // The certificate is for localhost: verify-full there, with the CA that signed it.
        let store = t.store("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"));
        let m = t.mount(backend, &store, 1, &[]);
        fs::write(m.path("checked"), b"verified").unwrap();
        assert_eq!(t.sessions().split_once(' ').unwrap().1, "true");
        m.stop();

        // log and export read through the same connection.
        let log = t.cli(&["log", "--json", "--store", &store]);
        assert!(log.ok().contains("checked"), "[{backend}] {}", log.stdout);
        let dest = t.dir.join("exported");
        t.cli(&["export", dest.to_str().unwrap(), "--store", &store]).ok();
        assert_eq!(fs::read(dest.join("checked")).unwrap(), b"verified");

        // hostaddr pins the address, so that only the name checked differs.
        let pinned = |host: &str, query: &str| t.store(host, &format!("hostaddr=127.0.0.1&{query}"));
        // Another CA: refused, whatever the host.
        let out = t.refused(backend, &pinned("localhost", &format!("sslmode=verify-full&sslrootcert={other_ca}")), &[]);
        out.assert_error(&["sslmode=verify-full", "not signed by a trusted root", &format!("sslrootcert={other_ca}")]);
        let out = t.refused(backend, &pinned("localhost", &format!("sslmode=verify-ca&sslrootcert={other_ca}")), &[]);
        out.assert_error(&["sslmode=verify-ca", "not signed by a trusted root"]);
        // The right CA, the wrong name: verify-full refuses, verify-ca does not ask.
        let by_address = t.store("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"));
        let out = t.refused(backend, &by_address, &[]);
        out.assert_error(&["sslmode=verify-full", "does not match host 127.0.0.1 (it is for localhost)"]);
        let store_ca = t.store("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
        assert!(t.cli(&["log", "--json", "--store", &store_ca]).ok().contains("checked"));
        // The roots from PGSSLROOTCERT, the mode from PGSSLMODE: the same checks.
        let bare = t.store("127.0.0.1", "application_name=x");
        let env = [("PGSSLMODE", OsStr::new("verify-full")), ("PGSSLROOTCERT", OsStr::new(&ca))];
        t.refused(backend, &bare, &env).assert_error(&["sslmode=verify-full", "does not match host 127.0.0.1"]);
        let env = [("PGSSLMODE", OsStr::new("verify-ca")), ("PGSSLROOTCERT", OsStr::new(&ca))];
        let m = t.mount(backend.other(), &bare, 2, &env);
        assert_eq!(fs::read(m.path("checked")).unwrap(), b"verified");
        m.stop();
    }
}

both_backends! {
    #[timeout_secs(90)]
    fn what_the_server_or_the_url_refuses_is_said_clearly(backend: Backend) {
        let t = Tls::new();
        // No TLS against a server that takes only TLS.
        let out = t.refused(backend, &t.store("127.0.0.1", "sslmode=disable"), &[]);
        out.assert_error(&["no pg_hba.conf entry", "no encryption", "sslmode=disable"]);
        // TLS required of a server that has none.
        let plain = PgCluster::start();
        let url = format!("{}?sslmode=require", plain.fresh_database());
        let out = t.refused(backend, &url, &[]);
        out.assert_error(&["the server does not support TLS (sslmode=require)"]);
        drop(plain);
        // Bad values, refused before any connection, naming the parameter.
        let out = t.refused(backend, &t.store("127.0.0.1", "sslmode=bogus"), &[]);
        out.assert_error(&["sslmode=bogus", "not an sslmode"]);
        let missing = t.dir.join("missing.pem").display().to_string();
        let out = t.refused(backend, &t.store("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={missing}")), &[]);
        out.assert_error(&[&format!("sslrootcert={missing}"), "cannot read"]);
        let out = t.refused(backend, &t.store("127.0.0.1", "sslmode=verify-full"), &[]);
        out.assert_error(&["sslmode=verify-full", "no root certificates"]);
    }
}

both_backends! {
    #[timeout_secs(90)]
    fn a_password_from_the_password_file_never_shows(backend: Backend) {
        let t = Tls::new();
        let secret = "pgpass-Qx7w2Lm9";
        t.pg.password_role("bridge", secret);
        let db = t.url.rsplit('/').next().unwrap().to_owned();
        t.sql(&format!("ALTER DATABASE {db} OWNER TO bridge"));
        let port = t.pg.port();
        let store = t.store("127.0.0.1", "sslmode=require").replacen("postgres@", "bridge@", 1);
        let passfile = t.dir.join("pgpass");
        let write = |line: &str, mode: u32| {
            fs::write(&passfile, format!("# the test's\n{line}\n")).unwrap();
            fs::set_permissions(&passfile, fs::Permissions::from_mode(mode)).unwrap();
        };
        let env = [("PGPASSFILE", passfile.as_os_str())];

        // The matching line's password: the mount logs in.
        write(&format!("localhost:*:*:*:not-this-one\n127.0.0.1:{port}:{db}:bridge:{secret}"), 0o600);
        let m = t.mount(backend, &store, 1, &env);
        fs::write(m.path("f"), b"as bridge").unwrap();
        let owner = t.sql("SELECT DISTINCT tableowner FROM pg_tables WHERE tablename = 'events'");
        assert_eq!(owner, "bridge", "[{backend}] the store was made by bridge");
        let stderr = m.stop();
        assert!(!stderr.contains(secret), "[{backend}] the password showed: {stderr}");

        // No password: the server's demand, said clearly.
        let none = t.dir.join("none").into_os_string();
        let out = t.refused(backend, &store, &[("PGPASSFILE", &none)]);
        out.assert_error(&["asks for a password", "bridge"]);
        // A wrong one: the server's refusal.
        write(&format!("*:*:*:bridge:wrong-{secret}"), 0o600);
        let out = t.refused(backend, &store, &env);
        out.assert_error(&["password authentication failed", "bridge"]);
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
        // A file others may read is ignored, with a warning that shows no password.
        write(&format!("*:*:*:bridge:{secret}"), 0o644);
        let out = t.refused(backend, &store, &env);
        assert!(out.stderr.contains("group or world access"), "{}", out.stderr);
        assert!(out.stderr.contains("asks for a password"), "{}", out.stderr);
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
        // PGPASSWORD is taken before the file.
        write(&format!("*:*:*:bridge:wrong-{secret}"), 0o600);
        let env = [("PGPASSFILE", passfile.as_os_str()), ("PGPASSWORD", OsStr::new(secret))];
        let m = t.mount(backend.other(), &store, 2, &env);
        assert_eq!(fs::read(m.path("f")).unwrap(), b"as bridge");
        m.stop();
    }
}
