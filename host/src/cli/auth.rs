//! `lighthouse-fs auth MOUNT --agent NAME`: bind the caller's session to an agent through
//! `MOUNT/.auth` (the challenge–response of docs/policy.md, section 4). The binding holds
//! for this command's session, so for the shell that runs it and everything it starts.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use crate::core::AUTH_NAME;
use crate::policy::{auth::PROTOCOL, response_mac};

#[derive(Args)]
pub struct AuthArgs {
    /// The mountpoint of a lighthouse-fs mounted with --policy.
    mountpoint: PathBuf,
    /// The agent to become.
    #[arg(long)]
    agent: String,
    /// A file holding the agent's secret as hex (as in the policy). Without it, the hex
    /// is read from LIGHTHOUSE_AGENT_SECRET.
    #[arg(long)]
    secret_file: Option<PathBuf>,
}

pub fn run(args: AuthArgs) -> anyhow::Result<()> {
    let secret_hex = match &args.secret_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secret file {}", path.display()))?,
        None => std::env::var("LIGHTHOUSE_AGENT_SECRET")
            .context("no --secret-file and no LIGHTHOUSE_AGENT_SECRET")?,
    };
    // Never echo the secret, even in an error.
    let secret = hex::decode(secret_hex.trim()).map_err(|_| {
        anyhow::anyhow!("the secret is not hex (expected the agent's secret as in the policy)")
    })?;
    let control = args.mountpoint.join(AUTH_NAME);
    let mut challenge = String::new();
    std::fs::File::open(&control)
        .and_then(|mut f| f.read_to_string(&mut challenge))
        .with_context(|| {
            format!(
                "cannot read {} (is the mount started with --policy?)",
                control.display()
            )
        })?;
    let Some(nonce) = challenge
        .trim_end()
        .strip_prefix(PROTOCOL)
        .and_then(|rest| rest.strip_prefix(' '))
    else {
        bail!("{} did not give a {PROTOCOL} challenge", control.display());
    };
    let line = format!(
        "{} {}\n",
        args.agent,
        response_mac(&secret, nonce, &args.agent)
    );
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&control)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    match written {
        Ok(()) => {
            println!("this session is agent {}", args.agent);
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => bail!(
            "refused as agent {}: no such agent, no secret for it, or not its secret",
            args.agent
        ),
        Err(e) => Err(e).with_context(|| format!("writing {}", control.display())),
    }
}
