//! FUSE adapters: one thin module per backend. Each translates kernel requests into calls
//! on [`crate::core::Fs`] and the core's answers into replies — no filesystem logic here.

mod common;
mod dev_notify;
pub mod fuse3;
pub mod fuser;
pub mod mountpoint;
mod parking;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::core::{Fs, MountInfo};

/// Which FUSE crate serves the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `fuser`: a pool of threads, synchronous callbacks.
    Fuser,
    /// `fuse3`: async, on a tokio runtime.
    Fuse3,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Fuser => "fuser",
            Backend::Fuse3 => "fuse3",
        }
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fuser" => Ok(Backend::Fuser),
            "fuse3" => Ok(Backend::Fuse3),
            other => Err(format!(
                "unknown backend {other:?}: expected \"fuser\" or \"fuse3\""
            )),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What both adapters need to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    /// Let users other than the one who mounted use the mount (agents run as other uids).
    pub allow_other: bool,
    /// Shown as the source in /proc/mounts.
    pub fsname: String,
}

/// Asks a serving mount to unmount and return. Cloneable; `stop` may be called from a
/// signal-handling thread.
#[derive(Clone, Default)]
pub struct StopSignal(Arc<(Mutex<bool>, Condvar)>);

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stop(&self) {
        let (flag, cv) = &*self.0;
        *flag.lock().unwrap() = true;
        cv.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.0 .0.lock().unwrap()
    }

    /// Wait up to `timeout` for a stop; true when stopped.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let (flag, cv) = &*self.0;
        let guard = flag.lock().unwrap();
        let (guard, _) = cv
            .wait_timeout_while(guard, timeout, |stopped| !*stopped)
            .unwrap();
        *guard
    }
}

/// Mount `fs` with `backend` and serve it until the mount goes away (someone ran
/// `umount`) or `stop` fires, then unmount cleanly. `ready` runs once the mount is live.
/// Mountpoint validation happens before, in [`mountpoint::prepare`].
pub fn serve(
    backend: Backend,
    fs: Arc<Fs>,
    opts: &MountOptions,
    stop: StopSignal,
    ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    let mount = fs.add_mount(MountInfo::new(backend.as_str(), opts.mountpoint.clone()));
    let id = mount.id;
    let result = match backend {
        Backend::Fuser => fuser::serve(fs.clone(), mount, opts, stop, ready),
        Backend::Fuse3 => fuse3::serve(fs.clone(), mount, opts, stop, ready),
    };
    fs.remove_mount(id);
    result
}
