//! Reaching the store's PostgreSQL as libpq would: the URL, TLS as its `sslmode` says,
//! the password from the URL, `PGPASSWORD` or the password file.
//!
//! The client (`postgres` 0.19) parses a URL but knows only `sslmode=disable|prefer|
//! require`, never checks a certificate, and reads no password file. Here the store's URL
//! is read first: the parameters libpq has and the client has not (`sslmode` itself,
//! `sslrootcert`, `sslcert`, `sslkey`, `sslpassword`, `passfile`) are taken out and
//! carried out here; the rest goes to the client's parser.
//!
//! | `sslmode`           | encrypted          | certificate checked                          |
//! | ------------------- | ------------------ | -------------------------------------------- |
//! | `disable`           | never              | -                                            |
//! | `allow`, `prefer`   | if the server can  | only when a root certificate file exists     |
//! | `require`           | always             | only when a root certificate file exists     |
//! | `verify-ca`         | always             | signed by a root of `sslrootcert`            |
//! | `verify-full`       | always             | signed by a root, and made for the host      |
//!
//! (libpq's documented rule: with a root certificate file, `require` checks like
//! `verify-ca`; libpq checks under `prefer` then too, and so do we. Where libpq would go
//! on unencrypted after a failed check under `prefer`, we refuse: a certificate that
//! fails a check it was asked to pass is not trusted with the session.) `allow` is taken
//! as `prefer`. Over a Unix socket TLS is never used, as in libpq.
//!
//! The roots: `sslrootcert=FILE` (PEM), `sslrootcert=system` (the system's trust store,
//! which makes `verify-full` the default and allows no weaker mode, as libpq), else
//! `~/.postgresql/root.crt` when it exists. A client certificate: `sslcert`/`sslkey`, else
//! `~/.postgresql/postgresql.crt`/`.key` when they exist. The environment gives what the
//! URL does not: `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGPASSWORD`,
//! `PGPASSFILE`.
//!
//! The password: the URL's, else `PGPASSWORD`, else the first matching line
//! `host:port:database:user:password` of the password file (`passfile=`, `PGPASSFILE`,
//! else `~/.pgpass`), which is ignored with a warning when its group or others may read
//! it. Nothing here ever puts a password in a message.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long a connection attempt may take: a database that does not answer fails the
/// change instead of hanging its caller.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long sent bytes may wait for the database's acknowledgement before the
/// connection counts as broken (`TCP_USER_TIMEOUT`). Acknowledgements are the peer's
/// kernel's, not its server's: even a loaded database acknowledges within
/// milliseconds, so a few seconds without one is a link gone, and an `open()` that
/// catches up first (close-to-open) waits no longer than this on a fresh cut.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(3);
/// libpq's defaults.
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Where and how to connect: the client's settings and the TLS connector that carries
/// out `sslmode`. Cheap to clone (the TLS settings are shared).
#[derive(Clone)]
pub struct Target {
    pub config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// What messages about a failed connection say.
    mode: Mode,
    roots: Option<Roots>,
    host: String,
}

impl Target {
    /// A new session, or why there is none, in one line that names neither the store
    /// (the caller does) nor the password.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let result = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        };
        result.map_err(|e| anyhow!("{}", self.explain(&e)))
    }

    fn explain(&self, e: &postgres::Error) -> String {
        let mode = self.mode;
        if let Some(db) = e.as_db_error() {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if db.message().contains("no encryption") {
                s += &format!("; the server takes only TLS connections from here (sslmode={mode})");
            }
            return s;
        }
        if let Some(tls) = rustls_error(e) {
            return match tls {
                rustls::Error::InvalidCertificate(cert) => self.explain_certificate(cert),
                other => format!("sslmode={mode}: the TLS handshake failed: {other}"),
            };
        }
        let text = chain(e);
        if text.contains("server does not support TLS") {
            return format!("the server does not support TLS (sslmode={mode})");
        }
        if text.contains("password missing") {
            let user = self.config.get_user().unwrap_or_default();
            return format!(
                "the server asks for a password for user \"{user}\" and none was given \
                 (in the URL, PGPASSWORD, or the password file: PGPASSFILE or ~/.pgpass)"
            );
        }
        text
    }

    fn explain_certificate(&self, e: &CertificateError) -> String {
        let mode = self.mode;
        let roots = match &self.roots {
            Some(roots) => roots.to_string(),
            None => "no root certificates".to_owned(),
        };
        match e {
            CertificateError::NotValidForName => format!(
                "sslmode={mode}: the server certificate does not match host {}",
                self.host
            ),
            CertificateError::NotValidForNameContext { presented, .. } => {
                let mut s = format!(
                    "sslmode={mode}: the server certificate does not match host {}",
                    self.host
                );
                if !presented.is_empty() {
                    let names: Vec<&str> = presented.iter().map(|n| unquoted(n)).collect();
                    s += &format!(" (it is for {})", names.join(", "));
                }
                s
            }
            CertificateError::UnknownIssuer => format!(
                "sslmode={mode}: the server certificate is not signed by a trusted root ({roots})"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("sslmode={mode}: the server certificate has expired")
            }
            other => format!("sslmode={mode}: the server certificate is refused: {other}"),
        }
    }
}

/// `DnsName("db")` and `IpAddress(10.0.0.1)` (how rustls names what a certificate is
/// for) as `db` and `10.0.0.1`.
fn unquoted(name: &str) -> &str {
    if let Some(ip) = name
        .strip_prefix("IpAddress(")
        .and_then(|n| n.strip_suffix(')'))
    {
        return ip;
    }
    match (name.find('"'), name.rfind('"')) {
        (Some(start), Some(end)) if start < end => &name[start + 1..end],
        _ => name,
    }
}

/// The rustls error below a failed connection, if a TLS handshake failed.
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // tokio-rustls hands the error on inside an io::Error, whose `source` skips it.
        if let Some(tls) = s
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        source = s.source();
    }
    None
}

/// An error and its sources, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s = format!("{s}: {text}");
        }
        source = cause.source();
    }
    s
}

/// Where the store at `url` (named `name` in messages: [`super::postgres::redacted`]) is,
/// as libpq would read it with this process's environment. Refuses what is wrong in
/// the URL or the files it names, naming the parameter; reaches no server.
pub fn target_of(url: &str, name: &str) -> anyhow::Result<Target> {
    target_with(url, &Env::of_process()).map_err(|e| anyhow!("store {name}: {e:#}"))
}

/// What libpq would take from the process: the variables it reads, the home directory,
/// the user.
struct Env {
    vars: HashMap<&'static str, String>,
    home: Option<PathBuf>,
    user: Option<String>,
}

/// The environment variables read here.
const VARS: [&str; 6] = [
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGPASSWORD",
    "PGPASSFILE",
];

impl Env {
    fn of_process() -> Env {
        let uid = nix::unistd::geteuid();
        Env {
            vars: VARS
                .iter()
                .filter_map(|&k| std::env::var(k).ok().map(|v| (k, v)))
                .collect(),
            home: dirs::home_dir(),
            user: nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name),
        }
    }

    /// The variable `key` when set and not empty (libpq takes an empty one as unset).
    fn var(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn in_home(&self, rel: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(rel))
    }
}

/// A setting and where it came from (the URL's parameter or a variable): messages name
/// it as it was given.
#[derive(Clone, Debug)]
struct Given {
    value: String,
    from: &'static str,
}

impl fmt::Display for Given {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.from, self.value)
    }
}

/// The parameter `key` of the URL, else the variable `var`.
fn given(
    params: &HashMap<&'static str, String>,
    key: &'static str,
    var: Option<&'static str>,
    env: &Env,
) -> Option<Given> {
    if let Some(value) = params.get(key) {
        return Some(Given {
            value: value.clone(),
            from: key,
        });
    }
    let var = var?;
    env.var(var).map(|value| Given {
        value: value.to_owned(),
        from: var,
    })
}

/// `sslmode`, as libpq has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    const ALL: [Mode; 6] = [
        Mode::Disable,
        Mode::Allow,
        Mode::Prefer,
        Mode::Require,
        Mode::VerifyCa,
        Mode::VerifyFull,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Allow => "allow",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }

    fn parse(given: &Given) -> anyhow::Result<Mode> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == given.value)
            .ok_or_else(|| {
                anyhow!(
                    "{given}: not an sslmode (disable, allow, prefer, require, verify-ca, \
                     verify-full)"
                )
            })
    }

    /// The client's own mode: whether TLS is tried and whether it must be had.
    fn client(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Allow | Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the trusted roots come from.
#[derive(Clone, Debug)]
enum Roots {
    File(PathBuf),
    System,
}

impl fmt::Display for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Roots::File(path) => write!(f, "sslrootcert={}", path.display()),
            Roots::System => f.write_str("the system's trust store"),
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Nothing (but that the handshake is signed by the certificate's key).
    Nothing,
    /// Signed by a trusted root.
    Chain,
    /// Signed by a trusted root, and made for the host connected to.
    Full,
}

/// The parameters taken out of the URL (the client's parser refuses them).
const OURS: [&str; 6] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "passfile",
];

/// `url` without the parameters of [`OURS`], and those (percent-decoded).
fn split_params(url: &str) -> anyhow::Result<(String, HashMap<&'static str, String>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), HashMap::new()));
    };
    let mut kept = Vec::new();
    let mut ours = HashMap::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let key = decode(key)?;
        match OURS.iter().find(|&&k| k == key) {
            Some(&k) => {
                ours.insert(k, decode(value).with_context(|| format!("parameter {k}"))?);
            }
            None => kept.push(part),
        }
    }
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((url, ours))
}

fn decode(s: &str) -> anyhow::Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| anyhow!("not UTF-8 once percent-decoded"))
}

fn target_with(url: &str, env: &Env) -> anyhow::Result<Target> {
    let (rest, params) = split_params(url).context("not a PostgreSQL URL")?;
    let mut config =
        postgres::Config::from_str(&rest).map_err(|e| anyhow!("not a PostgreSQL URL: {e}"))?;
    if params.get("sslpassword").is_some_and(|p| !p.is_empty()) {
        bail!("sslpassword: encrypted client keys are not supported (give an unencrypted sslkey)");
    }

    if config.get_user().is_none() {
        match &env.user {
            Some(user) => config.user(user),
            None => bail!("no user in the URL, and this process's user has no name"),
        };
    }
    if config.get_password().is_none() {
        if let Some(password) = env.var("PGPASSWORD") {
            config.password(password);
        } else if let Some(password) = password_from_file(&config, &params, env) {
            config.password(password);
        }
    }

    // A peer gone silent (a cut link: no reset ever comes) fails a statement within
    // TCP_USER_TIMEOUT when bytes wait unacknowledged, and an idle session within the
    // keepalives' 5 + 3 × 2 s: never a caller hung on a dead connection.
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_user_timeout(TCP_USER_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .application_name("lighthouse-fs");

    let rootcert = given(&params, "sslrootcert", Some("PGSSLROOTCERT"), env);
    let system = rootcert.as_ref().is_some_and(|r| r.value == "system");
    let mode = match given(&params, "sslmode", Some("PGSSLMODE"), env) {
        Some(given) => {
            let mode = Mode::parse(&given)?;
            if system && mode != Mode::VerifyFull && mode != Mode::Disable {
                bail!(
                    "{given} may not be used with sslrootcert=system (use verify-full: the \
                     system trusts roots for any host)"
                );
            }
            mode
        }
        // libpq: the system's roots are checked against the host name, or not at all.
        None if system => Mode::VerifyFull,
        None => Mode::Prefer,
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => config
            .get_hostaddrs()
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    // libpq never uses TLS over a Unix socket, whatever sslmode says.
    let unix_only = !config.get_hosts().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
    let mut target = Target {
        config,
        tls: None,
        mode,
        roots: None,
        host,
    };
    if mode == Mode::Disable || unix_only {
        target.config.ssl_mode(SslMode::Disable);
        return Ok(target);
    }
    target.config.ssl_mode(mode.client());

    // The roots: named (they must then be readable), or the default file if it exists.
    let roots = match rootcert {
        Some(r) if r.value == "system" => Some((Roots::System, system_roots()?)),
        Some(r) => {
            let path = PathBuf::from(&r.value);
            Some((Roots::File(path.clone()), read_roots(&path, &r)?))
        }
        None => match env.in_home(".postgresql/root.crt") {
            Some(path) if path.exists() => {
                let named = Given {
                    value: path.display().to_string(),
                    from: "sslrootcert",
                };
                Some((Roots::File(path.clone()), read_roots(&path, &named)?))
            }
            _ => None,
        },
    };
    let check = match (mode, &roots) {
        (Mode::VerifyFull, Some(_)) => Check::Full,
        (Mode::VerifyCa, Some(_)) => Check::Chain,
        (Mode::VerifyCa | Mode::VerifyFull, None) => bail!(
            "sslmode={mode}: no root certificates to check the server's against: give \
             sslrootcert=FILE (or sslrootcert=system), or put them in {}",
            env.in_home(".postgresql/root.crt")
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "~/.postgresql/root.crt".to_owned())
        ),
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
        (_, Some(_)) => Check::Chain,
        (_, None) => Check::Nothing,
    };
    let client_cert = client_certificate(&params, env)?;

    // ring: rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which
    // aws-lc-rs has; but aws-lc-rs builds C with cmake, and PostgreSQL's OpenSSL offers
    // the classic groups (X25519, P-256) that ring has.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Verifier::new(check, roots.as_ref().map(|(_, r)| r), provider.clone())?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let tls = match client_cert {
        Some((certs, key, key_path)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| anyhow!("sslkey={}: {e}", key_path.display()))?,
        None => builder.with_no_client_auth(),
    };
    target.tls = Some(MakeRustlsConnect::new(tls));
    target.roots = roots.map(|(r, _)| r);
    Ok(target)
}

/// The certificates of the PEM file `path` (given as `given`), as trusted roots.
fn read_roots(path: &Path, given: &Given) -> anyhow::Result<RootCertStore> {
    let certs = read_certs(path).map_err(|e| anyhow!("{given}: {e}"))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        bail!("{given}: no usable certificate in it");
    }
    Ok(roots)
}

/// The certificates of a PEM file; an error says why there are none.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it (PEM expected)".to_owned());
    }
    Ok(certs)
}

/// The system's trusted roots (`sslrootcert=system`).
fn system_roots() -> anyhow::Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        match found.errors.first() {
            Some(e) => bail!("sslrootcert=system: no trusted roots on this system ({e})"),
            None => bail!("sslrootcert=system: no trusted roots on this system"),
        }
    }
    Ok(roots)
}

type ClientCert = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    PathBuf,
);

/// The client certificate and key to show the server, if there is one: `sslcert` and
/// `sslkey` (or PGSSLCERT, PGSSLKEY), else `~/.postgresql/postgresql.crt` and `.key`
/// when the certificate exists. A named file must be readable.
fn client_certificate(
    params: &HashMap<&'static str, String>,
    env: &Env,
) -> anyhow::Result<Option<ClientCert>> {
    let cert = given(params, "sslcert", Some("PGSSLCERT"), env);
    let key = given(params, "sslkey", Some("PGSSLKEY"), env);
    let cert_path = match &cert {
        Some(c) => PathBuf::from(&c.value),
        None => match env.in_home(".postgresql/postgresql.crt") {
            Some(p) if p.exists() => p,
            _ => return Ok(None),
        },
    };
    let cert_named = cert.unwrap_or_else(|| Given {
        value: cert_path.display().to_string(),
        from: "sslcert",
    });
    let certs = read_certs(&cert_path).map_err(|e| anyhow!("{cert_named}: {e}"))?;
    let key_path = match &key {
        Some(k) => PathBuf::from(&k.value),
        None => env
            .in_home(".postgresql/postgresql.key")
            .unwrap_or_else(|| PathBuf::from("postgresql.key")),
    };
    let key_named = key.unwrap_or_else(|| Given {
        value: key_path.display().to_string(),
        from: "sslkey",
    });
    let md = fs::metadata(&key_path)
        .map_err(|e| anyhow!("{cert_named} is there, but not its private key: {key_named}: {e}"))?;
    if !md.is_file() {
        bail!("{key_named}: not a regular file");
    }
    // libpq: 0600 or less when the key is the user's, 0640 or less when root's.
    let mode = md.permissions().mode();
    let euid = nix::unistd::geteuid().as_raw();
    if (md.uid() == euid && mode & 0o077 != 0) || (md.uid() == 0 && mode & 0o037 != 0) {
        bail!(
            "{key_named}: the private key has group or world access; it must be u=rw \
             (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if \
             owned by root"
        );
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        anyhow!("{key_named}: no private key in it ({e}; encrypted keys are not supported)")
    })?;
    Ok(Some((certs, key, key_path)))
}

/// Checks the server's certificate as [`Check`] says; the handshake's signatures are
/// always checked against the certificate's key.
#[derive(Debug)]
struct Verifier {
    check: Check,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(
        check: Check,
        roots: Option<&RootCertStore>,
        provider: Arc<CryptoProvider>,
    ) -> anyhow::Result<Verifier> {
        let webpki = match (check, roots) {
            (Check::Nothing, _) | (_, None) => None,
            (_, Some(roots)) => Some(
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots.clone()),
                    provider.clone(),
                )
                .build()
                .map_err(|e| anyhow!("TLS: {e}"))?,
            ),
        };
        Ok(Verifier {
            check,
            webpki,
            provider,
        })
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.webpki else {
            return Ok(ServerCertVerified::assertion());
        };
        let verdict =
            webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match (self.check, verdict) {
            // The name is checked last, once the chain holds: verify-ca asks no more.
            (
                Check::Chain,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )),
            ) => Ok(ServerCertVerified::assertion()),
            (_, verdict) => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The password for `config` from the password file (`passfile`, PGPASSFILE, else
/// `~/.pgpass`), as libpq finds it: the first line whose host, port, database and user
/// match. A file that its group or others may access is ignored, with a warning.
fn password_from_file(
    config: &postgres::Config,
    params: &HashMap<&'static str, String>,
    env: &Env,
) -> Option<String> {
    let path = match given(params, "passfile", Some("PGPASSFILE"), env) {
        Some(g) => PathBuf::from(g.value),
        None => env.in_home(".pgpass")?,
    };
    let text = read_password_file(&path)?;
    let user = config.get_user()?;
    let host = match config.get_hosts().first() {
        // 'localhost' stands for the default socket directory, as for no host at all.
        Some(Host::Unix(path)) if path == Path::new(DEFAULT_SOCKET_DIR) => "localhost".to_owned(),
        Some(Host::Unix(path)) => path.display().to_string(),
        Some(Host::Tcp(host)) => host.clone(),
        None => match config.get_hostaddrs().first() {
            Some(addr) => addr.to_string(),
            None => "localhost".to_owned(),
        },
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(DEFAULT_PORT)
        .to_string();
    // The database defaults to the user's name.
    let dbname = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, &host, &port, dbname, user)
}

/// The password file's text, or `None` when it is missing, unreadable or too open.
fn read_password_file(path: &Path) -> Option<String> {
    let md = fs::metadata(path).ok()?;
    if !md.is_file() {
        tracing::warn!(
            "password file {} is not a plain file: ignored",
            path.display()
        );
        return None;
    }
    if md.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; permissions should be u=rw (0600) \
             or less: ignored",
            path.display()
        );
        return None;
    }
    match fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            tracing::warn!("password file {}: {e}: ignored", path.display());
            None
        }
    }
}

/// The password of the first line of `text` (a password file) that matches, as libpq:
/// `hostname:port:database:username:password`, `*` for any value of a field, `\:` and
/// `\\` for a colon and a backslash, `#` starting a comment line.
fn pgpass_lookup(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    if dbname.is_empty() || user.is_empty() {
        return None;
    }
    for line in text.lines() {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rest = [host, port, dbname, user]
            .iter()
            .try_fold(line, |rest, token| field_matches(rest, token));
        let Some(rest) = rest else { continue };
        let mut password = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                ':' => break,
                '\\' => match chars.next() {
                    Some(next) => password.push(next),
                    None => password.push('\\'),
                },
                c => password.push(c),
            }
        }
        return Some(password);
    }
    None
}

/// When the first field of `line` matches `token`: the line after that field's colon.
fn field_matches<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut want = token.chars();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let (c, escaped) = match c {
            '\\' => match chars.next() {
                Some((_, next)) => (next, true),
                None => return None,
            },
            c => (c, false),
        };
        if c == ':' && !escaped {
            // The field ends: it matched if the token did too.
            return want.next().is_none().then(|| &line[i + 1..]);
        }
        if want.next() != Some(c) {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&'static str, &str)], home: Option<&Path>) -> Env {
        Env {
            vars: vars.iter().map(|&(k, v)| (k, v.to_owned())).collect(),
            home: home.map(Path::to_path_buf),
            user: Some("osuser".to_owned()),
        }
    }

    /// A home with nothing in it: no root.crt, no .pgpass, no client certificate.
    fn empty_home() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn err(url: &str, env: &Env) -> String {
        match target_with(url, env) {
            Ok(_) => panic!("{url} was accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// A PEM certificate (a throwaway CA's) to serve as a root.
    fn a_root() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn the_parameters_libpq_has_are_taken_out() {
        let (rest, ours) = split_params(
            "postgres://u@db/p?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem&sslcert=c&sslkey=k&passfile=f",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@db/p?application_name=x");
        assert_eq!(ours["sslmode"], "verify-full");
        assert_eq!(ours["sslrootcert"], "/tmp/ca.pem");
        assert_eq!(ours["sslcert"], "c");
        assert_eq!(ours["sslkey"], "k");
        assert_eq!(ours["passfile"], "f");
        let (rest, ours) = split_params("postgres://u@db/p?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://u@db/p");
        assert_eq!(ours["sslmode"], "require");
        let (rest, ours) = split_params("postgres://u@db/p").unwrap();
        assert_eq!(rest, "postgres://u@db/p");
        assert!(ours.is_empty());
    }

    #[test]
    fn sslmode_as_libpq() {
        let home = empty_home();
        let e = env(&[], Some(home.path()));
        let mode = |url: &str, e: &Env| target_with(url, e).unwrap().mode;
        // prefer by default; each of libpq's values; allow is prefer to the client.
        assert_eq!(mode("postgres://u@db/p", &e), Mode::Prefer);
        for m in Mode::ALL {
            let t = target_with(&format!("postgres://u@db/p?sslmode={m}"), &e);
            match m {
                // No root certificates anywhere: verify-* cannot be.
                Mode::VerifyCa | Mode::VerifyFull => assert!(t.is_err(), "{m}"),
                _ => {
                    let t = t.unwrap();
                    assert_eq!(t.mode, m);
                    assert_eq!(t.config.get_ssl_mode(), m.client());
                    assert_eq!(t.tls.is_some(), m != Mode::Disable, "{m}");
                }
            }
        }
        // PGSSLMODE when the URL says nothing; the URL wins.
        let e = env(&[("PGSSLMODE", "require")], Some(home.path()));
        assert_eq!(mode("postgres://u@db/p", &e), Mode::Require);
        assert_eq!(mode("postgres://u@db/p?sslmode=disable", &e), Mode::Disable);
        // Over a Unix socket, no TLS whatever the mode.
        let t = target_with(
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/p?sslmode=require",
            &e,
        )
        .unwrap();
        assert!(t.tls.is_none());
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        let home = empty_home();
        let e = env(&[], Some(home.path()));
        let msg = err("postgres://u:s3cret@db/p?sslmode=bogus", &e);
        assert!(msg.contains("sslmode=bogus"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        let msg = err(
            "postgres://u@db/p",
            &env(&[("PGSSLMODE", "verify")], Some(home.path())),
        );
        assert!(msg.contains("PGSSLMODE=verify"), "{msg}");
        let msg = err(
            "postgres://u@db/p?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            &e,
        );
        assert!(
            msg.contains("sslrootcert=/nonexistent/ca.pem") && msg.contains("cannot read"),
            "{msg}"
        );
        // A named root file must be readable even where it would not be needed.
        let msg = err(
            "postgres://u@db/p?sslmode=require&sslrootcert=/nonexistent/ca.pem",
            &e,
        );
        assert!(msg.contains("sslrootcert=/nonexistent/ca.pem"), "{msg}");
        let msg = err(
            "postgres://u@db/p",
            &env(&[("PGSSLROOTCERT", "/nonexistent/x")], Some(home.path())),
        );
        assert!(msg.contains("PGSSLROOTCERT=/nonexistent/x"), "{msg}");
        let not_pem = home.path().join("not.pem");
        fs::write(&not_pem, "hello\n").unwrap();
        let msg = err(
            &format!(
                "postgres://u@db/p?sslmode=verify-ca&sslrootcert={}",
                not_pem.display()
            ),
            &e,
        );
        assert!(msg.contains("no certificate"), "{msg}");
        let msg = err("postgres://u@db/p?sslmode=verify-full", &e);
        assert!(
            msg.contains("sslmode=verify-full") && msg.contains("root"),
            "{msg}"
        );
        let msg = err("postgres://u@db/p?sslmode=require&sslrootcert=system", &e);
        assert!(msg.contains("sslrootcert=system"), "{msg}");
        let msg = err("postgres://u@db/p?sslpassword=x", &e);
        assert!(msg.contains("sslpassword"), "{msg}");
        let msg = err("postgres://u@db/p?sslcert=/nonexistent/c.crt", &e);
        assert!(msg.contains("sslcert=/nonexistent/c.crt"), "{msg}");
        let msg = err("postgres://u@db/p?nonsense=1", &e);
        assert!(msg.contains("not a PostgreSQL URL"), "{msg}");
    }

    #[test]
    fn roots_decide_what_is_checked() {
        let home = empty_home();
        let ca = home.path().join("ca.pem");
        fs::write(&ca, a_root()).unwrap();
        let e = env(&[], Some(home.path()));
        let check = |url: &str, e: &Env| {
            let t = target_with(url, e).unwrap();
            // The verifier is inside the TLS settings: tell by what was kept.
            (t.mode, t.roots.map(|r| r.to_string()))
        };
        let with = |mode: &str| {
            format!(
                "postgres://u@db/p?sslmode={mode}&sslrootcert={}",
                ca.display()
            )
        };
        for mode in ["verify-full", "verify-ca", "require", "prefer"] {
            let (_, roots) = check(&with(mode), &e);
            assert_eq!(
                roots,
                Some(format!("sslrootcert={}", ca.display())),
                "{mode}"
            );
        }
        // No root file: require checks nothing.
        assert_eq!(check("postgres://u@db/p?sslmode=require", &e).1, None);
        // ~/.postgresql/root.crt when it exists (libpq: require then checks like
        // verify-ca), PGSSLROOTCERT over it, the URL over both.
        fs::create_dir(home.path().join(".postgresql")).unwrap();
        fs::write(home.path().join(".postgresql/root.crt"), a_root()).unwrap();
        let default = home.path().join(".postgresql/root.crt");
        assert_eq!(
            check("postgres://u@db/p?sslmode=require", &e).1,
            Some(format!("sslrootcert={}", default.display()))
        );
        let e = env(
            &[("PGSSLROOTCERT", ca.to_str().unwrap())],
            Some(home.path()),
        );
        assert_eq!(
            check("postgres://u@db/p?sslmode=verify-ca", &e).1,
            Some(format!("sslrootcert={}", ca.display()))
        );
        assert_eq!(
            check(
                &format!(
                    "postgres://u@db/p?sslmode=verify-ca&sslrootcert={}",
                    default.display()
                ),
                &e
            )
            .1,
            Some(format!("sslrootcert={}", default.display()))
        );
    }

    #[test]
    fn user_and_password_as_libpq() {
        let home = empty_home();
        let e = env(&[], Some(home.path()));
        // The OS user when the URL names none.
        let t = target_with("postgres://db/p", &e).unwrap();
        assert_eq!(t.config.get_user(), Some("osuser"));
        assert_eq!(t.config.get_password(), None);
        // The URL's password, else PGPASSWORD, else the file.
        let pgpass = home.path().join(".pgpass");
        fs::write(&pgpass, "db:5432:p:osuser:from-file\n").unwrap();
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).unwrap();
        let password = |url: &str, e: &Env| {
            target_with(url, e)
                .unwrap()
                .config
                .get_password()
                .map(|p| String::from_utf8(p.to_vec()).unwrap())
        };
        assert_eq!(
            password("postgres://db/p", &e).as_deref(),
            Some("from-file")
        );
        assert_eq!(
            password("postgres://osuser:in-url@db/p", &e).as_deref(),
            Some("in-url")
        );
        let with_env = env(&[("PGPASSWORD", "from-env")], Some(home.path()));
        assert_eq!(
            password("postgres://db/p", &with_env).as_deref(),
            Some("from-env")
        );
        // An empty PGPASSWORD is none.
        let empty = env(&[("PGPASSWORD", "")], Some(home.path()));
        assert_eq!(
            password("postgres://db/p", &empty).as_deref(),
            Some("from-file")
        );
        // PGPASSFILE, and the URL's passfile over it.
        let other = home.path().join("other");
        fs::write(&other, "*:*:*:*:other-file\n").unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        let with_var = env(
            &[("PGPASSFILE", other.to_str().unwrap())],
            Some(home.path()),
        );
        assert_eq!(
            password("postgres://db/p", &with_var).as_deref(),
            Some("other-file")
        );
        assert_eq!(
            password(
                &format!("postgres://db/p?passfile={}", pgpass.display()),
                &with_var
            )
            .as_deref(),
            Some("from-file")
        );
        // Another port, database or user: no match.
        assert_eq!(password("postgres://db:5433/p", &e), None);
        assert_eq!(password("postgres://db/q", &e), None);
        assert_eq!(password("postgres://someone@db/p", &e), None);
        // A file its group may read is ignored (libpq's rule).
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(password("postgres://db/p", &e), None);
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o604)).unwrap();
        assert_eq!(password("postgres://db/p", &e), None);
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(
            password("postgres://db/p", &e).as_deref(),
            Some("from-file")
        );
        // Not a plain file: ignored.
        let dir = env(&[("PGPASSFILE", home.path().to_str().unwrap())], None);
        assert_eq!(password("postgres://db/p", &dir), None);
    }

    #[test]
    fn pgpass_lines_match_as_in_libpq() {
        let look = |text: &str, host: &str, port: &str, db: &str, user: &str| {
            pgpass_lookup(text, host, port, db, user)
        };
        let file = "\
# a comment: db:5432:p:u:not-this
db:5432:p:u:exact
*:5432:p:u:any-host
";
        assert_eq!(look(file, "db", "5432", "p", "u").as_deref(), Some("exact"));
        assert_eq!(
            look(file, "other", "5432", "p", "u").as_deref(),
            Some("any-host")
        );
        assert_eq!(look(file, "db", "5433", "p", "u"), None);
        // The first match wins, wildcards in every field.
        let file = "*:*:*:*:first\ndb:5432:p:u:second\n";
        assert_eq!(look(file, "db", "5432", "p", "u").as_deref(), Some("first"));
        let file = "db:*:p:*:port-and-user\r\n";
        assert_eq!(
            look(file, "db", "6000", "p", "anyone").as_deref(),
            Some("port-and-user")
        );
        // `*` is a wildcard only as the whole field.
        let file = "d*:5432:p:u:glob\n";
        assert_eq!(look(file, "db", "5432", "p", "u"), None);
        assert_eq!(look(file, "d*", "5432", "p", "u").as_deref(), Some("glob"));
        // Escapes: `\:` and `\\` in the fields and in the password; the password ends at
        // an unescaped colon.
        let file = r"db:5432:my\:db:do\\main:pa\:ss\\word:trailing
";
        assert_eq!(
            look(file, "db", "5432", "my:db", r"do\main").as_deref(),
            Some(r"pa:ss\word")
        );
        assert_eq!(look(file, "db", "5432", "my", "u"), None);
        // A prefix of the token is no match, nor the token a prefix of the field.
        let file = "db:5432:pp:u:x\n";
        assert_eq!(look(file, "db", "5432", "p", "u"), None);
        assert_eq!(look(file, "db", "5432", "ppp", "u"), None);
        // Too few fields: no match.
        assert_eq!(look("db:5432:p\n", "db", "5432", "p", "u"), None);
        // An empty password is a password.
        assert_eq!(
            look("*:*:*:*:\n", "db", "5432", "p", "u").as_deref(),
            Some("")
        );
    }

    #[test]
    fn the_default_socket_directory_is_localhost() {
        let home = empty_home();
        let pgpass = home.path().join(".pgpass");
        fs::write(&pgpass, "localhost:5432:p:osuser:local\n").unwrap();
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).unwrap();
        let e = env(&[], Some(home.path()));
        let t = target_with("postgres://%2Fvar%2Frun%2Fpostgresql/p", &e).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"local"[..]));
        let t = target_with("postgres://%2Ftmp/p", &e).unwrap();
        assert_eq!(t.config.get_password(), None);
        let t = target_with("postgres://localhost/p", &e).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"local"[..]));
    }

    #[test]
    fn certificate_names_read_plainly() {
        assert_eq!(unquoted(r#"DnsName("db.internal")"#), "db.internal");
        assert_eq!(unquoted("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(unquoted("DirectoryName"), "DirectoryName");
        assert_eq!(unquoted("db"), "db");
    }

    #[test]
    fn the_client_keeps_its_settings() {
        let home = empty_home();
        let t = target_with(
            "postgres://u@db/p?application_name=other&connect_timeout=60",
            &env(&[], Some(home.path())),
        )
        .unwrap();
        assert_eq!(t.config.get_application_name(), Some("lighthouse-fs"));
        assert_eq!(t.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(t.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert!(t.config.get_keepalives());
    }
}
