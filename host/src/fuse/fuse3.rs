//! Adapter for the `fuse3` crate (async).
use super::*;
pub fn serve(
    _fs: Arc<Fs>,
    _opts: &MountOptions,
    _stop: StopSignal,
    _ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    anyhow::bail!("fuse3 adapter not written yet")
}
