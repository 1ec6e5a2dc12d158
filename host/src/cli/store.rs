//! `lighthouse-fs store copy --from A --to B`: a store moved whole into another, of either
//! kind (a directory, a PostgreSQL database), with its whole history: the same events
//! under the same sequence numbers, times, callers and agents, and every object they name.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::store::{Change, Event, StoreReader};

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy a store, history and all, into an empty one (a directory or a PostgreSQL
    /// database): `store copy --from DIR --to postgres://…`, and back.
    Copy(CopyArgs),
}

#[derive(Args)]
pub struct CopyArgs {
    /// The store to copy (read while it may be mounted: what it has when the copy starts).
    #[arg(long)]
    from: PathBuf,
    /// The store to copy into: a new or empty directory, or an empty database.
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    cache: super::CacheArgs,
}

pub fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Copy(args) => copy(args),
    }
}

fn copy(args: CopyArgs) -> anyhow::Result<()> {
    let from = StoreReader::open(&args.from)?;
    let head = from.head()?;
    let name = |p: &std::path::Path| crate::store::postgres::redacted(&p.display().to_string());
    // Refused before it is opened to write (nothing made, nothing logged): a store that
    // has events already.
    if let Ok(Ok(events)) = StoreReader::open(&args.to).map(|r| r.head()) {
        if events > 0 {
            bail!(
                "{} is not empty (it has {events} events); copy into an empty store",
                name(&args.to)
            );
        }
    }
    let opened = super::open_store(&args.to, &args.cache)?;
    let to = opened.store;
    let (source, dest) = (name(&args.from), to.name());
    if to.head() > 0 {
        bail!(
            "{dest} is not empty (it has {} events); copy into an empty store",
            to.head()
        );
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(head);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} events {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut objects = 0u64;
    from.events(0, Some(head), |e: Event| {
        if let Change::Write {
            hash: Some(hash), ..
        } = &e.change
        {
            // The object first: the event may name it only once it is there.
            let mut object = from
                .open_object(hash)
                .with_context(|| format!("reading object {hash} of event {}", e.seq))?;
            let store = to.objects();
            let (mut scratch, path) = store.new_scratch()?;
            std::io::copy(&mut object, &mut scratch)
                .with_context(|| format!("copying object {hash}"))?;
            store
                .adopt(&path, &scratch, hash, false)
                .with_context(|| format!("storing object {hash}"))?;
            objects += 1;
        }
        let seq = e.seq;
        let got = to
            .append(Some(seq - 1), e.time, &e.caller, e.agent, e.change)
            .map_err(|err| anyhow::anyhow!("event {seq}: {err}"))?;
        if got != seq {
            bail!("event {seq} was appended as {got}: {dest} is not empty");
        }
        bar.inc(1);
        Ok(())
    })?;
    to.wait_durable(head)
        .map_err(|r| anyhow::anyhow!("making the copy durable: {r}"))?;
    to.close();
    bar.finish_and_clear();
    if let Some(f) = to.failure() {
        bail!("{f}");
    }
    eprintln!("copied {head} events and {objects} objects from {source} into {dest}");
    Ok(())
}
