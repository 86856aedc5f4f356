//! `cargo xtask test`: install what the tests need, bring up the local
//! stack, run every test of the workspace against it.

use std::process::Command;

use anyhow::{Result, bail};

use crate::stack::{self, Service, UpOutcome};
use crate::{install, paths};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Leave services this command started running afterwards.
    #[arg(long)]
    pub keep_stack: bool,
    /// Extra arguments for `cargo test` (after --), e.g. a test name filter.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: TestArgs) -> Result<()> {
    install::ensure_system_packages()?;
    let outcomes = stack::up()?;
    let started: Vec<Service> = outcomes.iter().filter(|(_, o)| *o == UpOutcome::Started).map(|(s, _)| *s).collect();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(paths::repo_root())
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(&args.cargo_args)
        .envs(stack::client_env())
        // Tests want an answer, not the SDK's retries against a local server.
        .env("AWS_MAX_ATTEMPTS", "1");
    let status = cmd.status()?;

    if !args.keep_stack && !started.is_empty() {
        stack::down(&started)?;
    }
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}
