//! Turning bytes into something instantiable: compile, check against the contract, link.
//!
//! Every refusal says precisely what is wrong: not WebAssembly, a core module instead of a
//! component, a component of another world, another version of the contract, a missing
//! or mistyped export, an import the host does not provide.

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::component::{types::ComponentItem, Component, HasSelf, Linker};
use wasmtime::Engine;

use super::bindings::{ViewComponent, ViewComponentPre};
use super::compile_cache::{CompileCache, Compiled};
use super::instance_state::InstanceState;
use super::limits::ViewLimits;

/// The contract's package, with the version this host implements.
pub const CONTRACT_VERSION: &str = "0.4.0";
const VIEW_EXPORT: &str = "lighthouse:fs/view@0.4.0";

/// Names a view may not take: the mount's native sections.
pub const RESERVED_VIEW_NAMES: &[&str] = &["current", "debug"];

/// The linker every view is instantiated with: the `store` import (backed by the core's
/// `StoreAccess`) and WASI p2, synchronous, over the empty `WasiCtx` of
/// [`InstanceState`].
pub(crate) fn new_linker(engine: &Engine) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI")?;
    ViewComponent::add_to_linker::<InstanceState, HasSelf<InstanceState>>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)
        .context("linking the store import")?;
    Ok(linker)
}

/// Compiles `bytes` (or takes them from `cache`) and checks the component against the
/// contract, ready to instantiate.
pub(crate) fn compile(
    engine: &Engine,
    linker: &Linker<InstanceState>,
    limits: &ViewLimits,
    cache: Option<&CompileCache>,
    bytes: &[u8],
) -> Result<(ViewComponentPre<InstanceState>, Compiled)> {
    if bytes.len() > limits.max_component_bytes {
        bail!(
            "component is {} bytes, more than the limit of {} bytes",
            bytes.len(),
            limits.max_component_bytes
        );
    }
    check_header(bytes)?;
    let compile = || {
        Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .context("not a valid WebAssembly component")
    };
    let (component, compiled) = match cache {
        Some(cache) => cache.component(engine, bytes, compile)?,
        None => (compile()?, Compiled::Fresh),
    };
    check_world(engine, &component)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .context("the component's imports cannot be satisfied by this host")?;
    let pre = ViewComponentPre::new(pre)
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!("the component's `{VIEW_EXPORT}` export does not match the contract")
        })?;
    Ok((pre, compiled))
}

/// Tells a component from a core module from anything else, by the preamble.
fn check_header(bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        bail!("not a WebAssembly component: the file does not start with the `\\0asm` magic");
    }
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    if layer == 0 {
        bail!(
            "not a WebAssembly component: this is a core module; build the view with \
             `cargo build --target wasm32-wasip2` (which emits a component) or wrap it with \
             `wasm-tools component new`"
        );
    }
    Ok(())
}

/// Checks the component targets `world view-component` of this version of the contract.
fn check_world(engine: &Engine, component: &Component) -> Result<()> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    if !exports.iter().any(|e| e == VIEW_EXPORT) {
        if let Some(other) = exports
            .iter()
            .find(|e| e.starts_with("lighthouse:fs/view@"))
        {
            bail!(
                "contract version mismatch: the component exports `{other}`, this host \
                 implements `{VIEW_EXPORT}`"
            );
        }
        bail!(
            "not a lighthouse-fs view: the component does not export `{VIEW_EXPORT}` \
             (world `view-component`); it exports [{}]",
            exports.join(", ")
        );
    }
    for (name, item) in ty.imports(engine) {
        let provided = match name.split_once('/') {
            Some(("lighthouse:fs", rest)) => {
                let (_, version) = rest.split_once('@').unwrap_or((rest, ""));
                if version != CONTRACT_VERSION {
                    bail!(
                        "contract version mismatch: the component imports `{name}`, this \
                         host provides version {CONTRACT_VERSION}"
                    );
                }
                true
            }
            Some((ns, _)) => ns.starts_with("wasi:"),
            None => false,
        };
        if !provided || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            bail!(
                "the component imports `{name}`, which the host does not provide (a view may \
                 import `lighthouse:fs/store@{CONTRACT_VERSION}` and WASI interfaces only)"
            );
        }
    }
    Ok(())
}

/// `Ok` when `name` can be a view's top-level directory: one path component, not `.` or
/// `..`, no `/` or NUL, at most 255 bytes, not reserved by the host.
pub fn check_view_name(name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "it is empty"
    } else if name == "." || name == ".." {
        "`.` and `..` are not names"
    } else if name.contains('/') {
        "it contains `/`"
    } else if name.contains('\0') {
        "it contains NUL"
    } else if name.len() > 255 {
        "it is longer than 255 bytes"
    } else if RESERVED_VIEW_NAMES.contains(&name) {
        "the host serves that directory itself"
    } else {
        return Ok(());
    };
    Err(anyhow!(
        "view name {name:?} is not a valid top-level directory name: {why}"
    ))
}
