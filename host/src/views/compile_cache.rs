//! Compiled components on disk, so a restart or a reload of an unchanged file does not
//! run cranelift again (tens of milliseconds per view in a release build, a second or
//! more in a debug one).
//!
//! A file is `<key>.cwasm`, the key being BLAKE3 over the engine's compatibility hash
//! (wasmtime version, target, compiler flags, engine configuration) and the component's
//! bytes: a new wasmtime or another engine configuration misses instead of loading
//! code compiled for something else. The file holds BLAKE3 of the serialized code, then
//! the code; a file that does not match its checksum (a torn write, a bad disk) is
//! compiled afresh and rewritten. Files are written to a temporary name and renamed.
//! The directory may be deleted at any time.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A directory of compiled components for one engine.
pub struct CompileCache {
    dir: PathBuf,
    /// BLAKE3 state primed with the engine's compatibility hash.
    engine_key: blake3::Hasher,
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// Deserialized from the cache.
    FromCache,
    /// Compiled now (and written to the cache).
    Fresh,
}

/// Feeds `Hash` output into BLAKE3: a hash that is stable across runs and Rust versions,
/// unlike `DefaultHasher`.
struct Blake3Hasher<'a>(&'a mut blake3::Hasher);

impl Hasher for Blake3Hasher<'_> {
    fn finish(&self) -> u64 {
        let bytes = self.0.finalize();
        u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl CompileCache {
    /// The cache in `dir` (created if missing) for components compiled by `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the compile cache {}", dir.display()))?;
        let mut engine_key = blake3::Hasher::new();
        engine_key.update(b"lighthouse-fs compiled component v1\0");
        engine
            .precompile_compatibility_hash()
            .hash(&mut Blake3Hasher(&mut engine_key));
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    fn path_for(&self, bytes: &[u8]) -> PathBuf {
        let mut key = self.engine_key.clone();
        key.update(bytes);
        self.dir.join(format!("{}.cwasm", key.finalize().to_hex()))
    }

    /// The component of `bytes`: from the cache, or compiled by `compile` and kept.
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compile: impl FnOnce() -> Result<Component>,
    ) -> Result<(Component, Compiled)> {
        let path = self.path_for(bytes);
        match self.read(engine, &path) {
            Ok(Some(component)) => return Ok((component, Compiled::FromCache)),
            Ok(None) => {}
            Err(e) => tracing::warn!(file = %path.display(), "compiling again: {e:#}"),
        }
        let component = compile()?;
        if let Err(e) = self.write(&path, &component) {
            tracing::warn!(file = %path.display(), "not cached: {e:#}");
        }
        Ok((component, Compiled::Fresh))
    }

    fn read(&self, engine: &Engine, path: &Path) -> Result<Option<Component>> {
        let data = match std::fs::read(path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("reading the cached component"),
        };
        let (sum, code) = data.split_at_checked(32).context("the file is truncated")?;
        anyhow::ensure!(
            blake3::hash(code).as_bytes() == sum,
            "the cached code does not match its checksum"
        );
        // SAFETY: `code` is what `Component::serialize` wrote for an engine with this
        // compatibility hash (the key says so, the checksum says it is whole), in a
        // directory of the host's own: wasmtime's contract for deserializing.
        let component = unsafe { Component::deserialize(engine, code) }
            .map_err(anyhow::Error::from)
            .context("wasmtime refused the cached code")?;
        Ok(Some(component))
    }

    fn write(&self, path: &Path, component: &Component) -> Result<()> {
        let code = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("serializing")?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp).context("creating")?;
        file.write_all(blake3::hash(&code).as_bytes())?;
        file.write_all(&code)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path).context("renaming into place")?;
        Ok(())
    }
}
