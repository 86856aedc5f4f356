//! `cargo xtask provision | status | teardown`: the deployment on AWS (or
//! an emulator), through the infra crate.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use infra::provision::{Action, Component, Options, Provisioner, WaitOptions};

use crate::paths;
use crate::render::ConfigArgs;

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// AWS endpoint override (moto, LocalStack); default: AWS_ENDPOINT_URL, then AWS.
    /// Credentials and region otherwise come from the standard AWS chain.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Leave out components, comma-separated or repeated: buckets, iam, network,
    /// msk, client, kinesis, api-gateway, connect, mwaa.
    #[arg(long, value_delimiter = ',', value_parser = parse_component)]
    pub skip: Vec<Component>,
}

fn parse_component(s: &str) -> Result<Component, String> {
    s.parse()
}

/// `90s`, `45m`, `1h`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = n.parse().map_err(|_| format!("`{s}`: expected e.g. 90s, 45m or 1h"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}`: unit must be s, m or h")),
    }
}

#[derive(Debug, clap::Args)]
pub struct ProvisionArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the plan (create / exists / change) without changing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Longest wait for one resource (MSK and MWAA take 20-40 minutes).
    #[arg(long, default_value = "60m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// Directory for the EC2 key pair's private key (written 0600, never printed).
    #[arg(long, default_value = ".local/keys")]
    pub key_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct TeardownArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// List what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm the deletion (required unless --dry-run).
    #[arg(long)]
    pub yes: bool,
    /// Also delete the pipeline's data: empty the sink bucket before deleting it.
    #[arg(long)]
    pub delete_data: bool,
    #[arg(long, default_value = "60m", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    #[arg(long, default_value = ".local/keys")]
    pub key_dir: PathBuf,
}

fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() { path } else { paths::repo_root().join(path) }
}

async fn provisioner(target: &TargetArgs, options: Options) -> Result<Provisioner> {
    let config = target.config.load()?;
    let aws = infra::aws::AwsTarget::for_endpoint(target.endpoint_url.clone(), &config.region);
    let clients = infra::clients::Clients::new(&aws.load().await);
    Ok(Provisioner::new(clients, config, options).on_step(|step| println!("{step}")))
}

fn wait_options(timeout: Duration) -> WaitOptions {
    WaitOptions { timeout, progress: std::io::stderr().is_terminal(), ..WaitOptions::default() }
}

pub fn run_provision(args: ProvisionArgs) -> Result<()> {
    let options = Options {
        dry_run: args.dry_run,
        skip: args.target.skip.iter().copied().collect::<BTreeSet<_>>(),
        wait: wait_options(args.wait_timeout),
        key_dir: absolute(args.key_dir),
        delete_data: false,
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut p = provisioner(&args.target, options).await?;
        let uid = p.names.uid.clone();
        let result = p.apply().await;
        let changes = p.steps.iter().filter(|s| s.action.is_change()).count();
        let sent = p.clients.log.mutating().len();
        if let Err(e) = result {
            if args.dry_run {
                bail!("{e}\nthe plan of {uid} stopped there (dry run: nothing was changed)");
            }
            bail!("{e}\nprovisioning of {uid} stopped; what was made is tagged. Re-run `cargo xtask provision` to continue, or `cargo xtask teardown --yes` to remove it");
        }
        if args.dry_run {
            println!("plan: {changes} change(s); nothing was changed (dry run)");
            return Ok(());
        }
        println!("applied: {changes} change(s), {sent} mutating AWS call(s)");
        let values = p.found.config_values();
        if !values.is_empty() {
            let path = crate::render::write_discovered(&uid, &values)?;
            println!("discovered variables for render and deploy-dag: {}", path.display());
        }
        for (name, value) in p.found.summary() {
            println!("  {name:<24} {value}");
        }
        if let Some(url) = &p.found.invoke_url {
            println!("emulate against it: pipeline emulate --target {url}");
        }
        Ok(())
    })
}

pub fn run_status(target: TargetArgs) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let options = Options { skip: target.skip.iter().copied().collect(), ..Options::default() };
        let mut p = provisioner(&target, options).await?;
        let found = p.status().await.context("looking up the stack's resources by tag")?;
        if found.is_empty() {
            println!("nothing tagged {}={} in {}", infra::stack::STACK_TAG, p.names.uid, p.clients.region);
        }
        for f in found {
            println!("{f}");
        }
        Ok(())
    })
}

pub fn run_teardown(args: TeardownArgs) -> Result<()> {
    let options = Options {
        dry_run: true,
        skip: args.target.skip.iter().copied().collect(),
        wait: wait_options(args.wait_timeout),
        key_dir: absolute(args.key_dir),
        delete_data: args.delete_data,
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut p = provisioner(&args.target, options).await?;
        if !args.dry_run && !args.yes {
            let found = p.status().await?;
            bail!(
                "teardown deletes {} resource(s) tagged {}={}; re-run with --yes (or --dry-run to list them)",
                found.len(),
                infra::stack::STACK_TAG,
                p.names.uid
            );
        }
        p.options.dry_run = args.dry_run;
        p.teardown().await?;
        let deleted = p.steps.iter().filter(|s| s.action == Action::Delete).count();
        if args.dry_run {
            println!("{deleted} resource(s) would be deleted (dry run)");
        } else {
            println!("deleted {deleted} resource(s)");
            // Its discovered values describe resources that are gone.
            let _ = std::fs::remove_file(crate::render::discovered_path(&p.names.uid));
        }
        Ok(())
    })
}
