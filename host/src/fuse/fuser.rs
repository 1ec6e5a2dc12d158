//! Adapter for the `fuser` crate (threaded).
use super::*;
pub fn serve(
    _fs: Arc<Fs>,
    _opts: &MountOptions,
    _stop: StopSignal,
    _ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    anyhow::bail!("fuser adapter not written yet")
}
