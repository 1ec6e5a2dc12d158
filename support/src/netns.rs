//! Several hosts on one machine: each a network namespace of its own, joined to this
//! one by a veth pair (a /30 of [`NETWORK`]), with a host name of its own. A process
//! started with [`NetNs::enter`] talks real TCP through its veth, so a cut link
//! ([`NetNs::cut`]: the outer end down, packets dropped silently, no reset ever sent)
//! looks to it as a partition looks to a host.
//!
//! Only the network (and the host name) is the namespace's: the process stays in this
//! mount namespace, so the FUSE mounts it makes are ours to use. Root only (`ip netns`,
//! `setns`); the namespace and its veth pair go on drop, also when the test panics.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The addresses handed out: 10.64.0.0/15, a /30 per namespace. A test cluster trusts
/// connections from it ([`crate::PgCluster::start_for_namespaces`]).
pub const NETWORK: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 64, 0, 0), 15);

/// A network namespace with a veth pair to this one.
pub struct NetNs {
    name: String,
    /// The pair's end in this namespace (`cut` takes it down).
    outer_if: String,
    /// The address of our end: what a process inside reaches this machine's servers at.
    pub outside: Ipv4Addr,
    /// The address of the end inside.
    pub inside: Ipv4Addr,
    hostname: String,
    /// The namespace, open for `setns`.
    file: File,
}

impl NetNs {
    /// A new namespace whose processes call themselves `hostname`. Panics when `ip`
    /// fails (not root, no iproute2).
    pub fn new(hostname: &str) -> NetNs {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Test processes run side by side: the pid keeps their names and subnets apart.
        let slot = (pid.wrapping_mul(8).wrapping_add(n)) % (1 << (32 - NETWORK.1 - 2));
        let base = u32::from(NETWORK.0) + slot * 4;
        let name = format!("lhfs-{pid}-{n}");
        let outer_if = format!("lh{pid}o{n}");
        let inner_if = format!("lh{pid}i{n}");
        assert!(outer_if.len() <= 15, "interface name {outer_if} too long");
        let (outside, inside) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
        ip(&["netns", "add", &name]);
        // From here on, drop removes what was made.
        let file = File::open(format!("/run/netns/{name}"))
            .unwrap_or_else(|e| panic!("opening network namespace {name}: {e}"));
        let ns = NetNs {
            name,
            outer_if,
            outside,
            inside,
            hostname: hostname.to_owned(),
            file,
        };
        let name = ns.name.as_str();
        ip(&[
            "link",
            "add",
            &ns.outer_if,
            "type",
            "veth",
            "peer",
            "name",
            &inner_if,
            "netns",
            name,
        ]);
        ip(&["addr", "add", &format!("{outside}/30"), "dev", &ns.outer_if]);
        ip(&["link", "set", &ns.outer_if, "up"]);
        ip(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{inside}/30"),
            "dev",
            &inner_if,
        ]);
        ip(&["-n", name, "link", "set", &inner_if, "up"]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// Run `cmd` inside: its network and its host name are the namespace's.
    pub fn enter(&self, cmd: &mut Command) {
        let fd = self.file.as_raw_fd();
        let hostname = CString::new(self.hostname.clone()).expect("host name without NUL");
        // SAFETY: between fork and exec only async-signal-safe calls are made (setns,
        // unshare, sethostname: system calls); `fd` stays open in the parent until the
        // child has execed (it is ours for as long as `self` lives).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0
                    || libc::unshare(libc::CLONE_NEWUTS) != 0
                    || libc::sethostname(hostname.as_ptr(), hostname.as_bytes().len()) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    /// Cut the link: our end goes down, and whatever either side sends is lost without
    /// a word (no reset, no unreachable), as in a partition.
    pub fn cut(&self) {
        ip(&["link", "set", &self.outer_if, "down"]);
    }

    /// Bring the link back.
    pub fn restore(&self) {
        ip(&["link", "set", &self.outer_if, "up"]);
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair's inner end, and with it the outer.
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer_if])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `ip ARGS`, panicking with its message when it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running ip {}: {e} (iproute2 installed?)", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_reaches_this_one_until_cut() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: network namespaces need root");
            return;
        }
        let ns = NetNs::new("host-t");
        let listener = std::net::TcpListener::bind((ns.outside, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let probe = |ns: &NetNs| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(format!(
                    "hostname; timeout 2 bash -c 'echo > /dev/tcp/{}/{port}' && echo reached",
                    ns.outside
                ))
                .stderr(Stdio::null());
            ns.enter(&mut cmd);
            String::from_utf8(cmd.output().unwrap().stdout).unwrap()
        };
        assert_eq!(probe(&ns), "host-t\nreached\n");
        ns.cut();
        assert_eq!(probe(&ns), "host-t\n");
        ns.restore();
        assert_eq!(probe(&ns), "host-t\nreached\n");
        let name = ns.name().to_owned();
        drop(ns);
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        assert!(!String::from_utf8_lossy(&list.stdout).contains(&name));
    }
}
