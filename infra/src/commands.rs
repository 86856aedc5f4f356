//! The commands: render and deploy-dag (the deployment's files), provision,
//! status and teardown (its resources).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use infra::provision::{Action, Component, Options, Provisioner, WaitOptions};
use templates::Templates;
use templates::config::PipelineConfig;
use templates::render::{self as rendering, RenderedFile};

use crate::config_args::{self, ConfigArgs};

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory to write the files to.
    #[arg(long, default_value = "rendered")]
    pub out: PathBuf,
    /// Write nothing unless every file renders. By default the files whose
    /// variables are known are written (the notebooks need only the uid)
    /// and the others are named with what they miss.
    #[arg(long)]
    pub require_all: bool,
}

/// Values of the secrets this process can see; none may appear in output.
fn visible_secrets() -> Vec<String> {
    ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DATABRICKS_TOKEN"].iter().filter_map(|v| std::env::var(v).ok()).collect()
}

fn render_checked(config: &PipelineConfig) -> Result<Vec<RenderedFile>> {
    let files = rendering::render_all(&Templates::new(), config)?;
    rendering::refuse_secrets(&files, &visible_secrets())?;
    Ok(files)
}

pub fn render(args: RenderArgs) -> Result<()> {
    let config = args.config.load()?;
    let (files, missing) = if args.require_all {
        (render_checked(&config)?, Vec::new())
    } else {
        let rendering = rendering::render_available(&Templates::new(), &config)?;
        rendering::refuse_secrets(&rendering.files, &visible_secrets())?;
        (rendering.files, rendering.missing)
    };
    for f in &files {
        let path = args.out.join(&f.path);
        std::fs::create_dir_all(path.parent().expect("rendered paths have a directory"))?;
        std::fs::write(&path, &f.contents).with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        if f.path.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        println!("{:>8} bytes  {}", f.contents.len(), path.display());
    }
    if !missing.is_empty() {
        let mut skipped: Vec<&str> = missing.iter().map(|(file, _)| file.as_str()).collect();
        skipped.dedup();
        eprintln!(
            "not rendered: {} (set in pipeline.toml, with --set name=value, or by `cargo xtask provision`):\n{}",
            skipped.join(", "),
            missing.iter().map(|(file, var)| format!("  {var} (needed by {file})")).collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DeployDagArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// AWS endpoint override (moto, LocalStack); default: AWS_ENDPOINT_URL, then AWS.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Create the dags bucket if it is missing (for local emulators; on AWS provisioning creates it).
    #[arg(long)]
    pub create_bucket: bool,
    /// MWAA environment to update when requirements.txt changed (it installs
    /// them only at create and update; this waits for the update), and to
    /// ask whether Airflow loaded the DAG or failed to import it.
    #[arg(long)]
    pub mwaa_environment: Option<String>,
    /// Seconds to wait for MWAA to parse the new file.
    #[arg(long, default_value_t = 300)]
    pub wait_for_dag: u64,
}

pub async fn deploy_dag(args: DeployDagArgs) -> Result<()> {
    let config = args.config.load()?;
    let files = rendering::dag_files(&Templates::new(), &config)?;
    rendering::refuse_secrets(&files, &visible_secrets())?;
    let (dag, requirements) = (&files[0].contents, &files[1].contents);
    let bucket = config.dags_bucket_name();
    {
        let target = aws_setup::AwsTarget::new(args.endpoint_url.clone(), Some(config.region.clone()));
        let client = aws_setup::s3::client(&target.load().await);
        if args.create_bucket {
            aws_setup::s3::ensure_bucket(&client, &bucket).await?;
        }
        let (uploaded, requirements) = infra::dags::deploy(&client, &bucket, &config.uid, dag, requirements)
            .await
            .with_context(|| format!("deploying the DAG to s3://{bucket} (is the bucket there? `provision` creates it)"))?;
        println!("uploaded s3://{bucket}/{} (etag {})", uploaded.key, uploaded.etag);
        let version = requirements.version_id.as_deref().unwrap_or("unversioned");
        if requirements.uploaded {
            println!("uploaded s3://{bucket}/{} (version {version})", infra::dags::REQUIREMENTS_KEY);
        } else {
            println!("s3://{bucket}/{} is unchanged (version {version})", infra::dags::REQUIREMENTS_KEY);
        }
        let Some(env) = &args.mwaa_environment else {
            println!(
                "MWAA picks up {}_dag within a few minutes; it starts paused. Pass --mwaa-environment to install changed requirements and wait for the DAG.",
                config.uid
            );
            return anyhow::Ok(());
        };
        let mwaa = aws_sdk_mwaa::Client::new(&target.load().await);
        // MWAA installs requirements only when created or updated.
        let wait = infra::provision::WaitOptions { progress: std::io::stderr().is_terminal(), ..Default::default() };
        match infra::dags::install_requirements(&mwaa, env, &requirements, &wait).await? {
            infra::dags::RequirementsInstall::Current => println!("{env} already installs requirements.txt version {version}"),
            infra::dags::RequirementsInstall::Updated { from } => {
                println!("{env} updated: requirements.txt version {} -> {version}", from.as_deref().unwrap_or("none"))
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.wait_for_dag);
        loop {
            match infra::dags::dag_state(&mwaa, env, &config.uid).await? {
                infra::dags::DagState::Loaded { is_paused } => {
                    let state = if is_paused { "paused (new DAGs start paused: unpause it in the Airflow UI)" } else { "active" };
                    println!("{}_dag is loaded in {env}: {state}", config.uid);
                    return Ok(());
                }
                infra::dags::DagState::ImportError(trace) => {
                    anyhow::bail!("{}_dag failed to import in {env}:\n{trace}", config.uid)
                }
                infra::dags::DagState::NotYetParsed if std::time::Instant::now() < deadline => {
                    eprintln!("{env} has not parsed {}_dag yet; asking again in 15 s", config.uid);
                    tokio::time::sleep(std::time::Duration::from_secs(15)).await;
                }
                infra::dags::DagState::NotYetParsed => anyhow::bail!(
                    "{env} did not parse {}_dag within {} s; check the environment's scheduler logs, or wait longer with --wait-for-dag",
                    config.uid,
                    args.wait_for_dag
                ),
            }
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// AWS endpoint override (moto, LocalStack); default: AWS_ENDPOINT_URL, then AWS.
    /// Credentials and region otherwise come from the standard AWS chain.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Leave out components, comma-separated or repeated: buckets, iam, network,
    /// msk, client, kinesis, api-gateway, connect, airflow-connection, mwaa-network, mwaa.
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

async fn provisioner(target: &TargetArgs, options: Options) -> Result<Provisioner> {
    let config = target.config.load()?;
    let aws = aws_setup::AwsTarget::new(target.endpoint_url.clone(), Some(config.region.clone()));
    let clients = infra::clients::Clients::new(&aws.load().await);
    Ok(Provisioner::new(clients, config, options).on_step(|step| println!("{step}")))
}

fn wait_options(timeout: Duration) -> WaitOptions {
    WaitOptions { timeout, progress: std::io::stderr().is_terminal(), ..WaitOptions::default() }
}

pub async fn provision(args: ProvisionArgs) -> Result<()> {
    let options = Options {
        dry_run: args.dry_run,
        skip: args.target.skip.iter().copied().collect::<BTreeSet<_>>(),
        wait: wait_options(args.wait_timeout),
        key_dir: args.key_dir,
        delete_data: false,
    };
    {
        let mut p = provisioner(&args.target, options).await?;
        let uid = p.names.uid.clone();
        let result = p.apply().await;
        let changes = p.steps.iter().filter(|s| s.action.is_change()).count();
        let sent = p.clients.log.mutating().len();
        if let Err(e) = result {
            if args.dry_run {
                bail!("{e}\nthe plan of {uid} stopped there (dry run: nothing was changed)");
            }
            bail!(
                "{e}\nprovisioning of {uid} stopped; what was made is tagged. Re-run provision to continue, or `teardown --yes` to remove it"
            );
        }
        if args.dry_run {
            println!("plan: {changes} change(s); nothing was changed (dry run)");
            // The plan's price: a table that cannot price it says what to add,
            // and the plan above still stands.
            match infra::cost::PriceTable::shipped().and_then(|t| infra::cost::estimate(&p.config, &p.options.skip, &t)) {
                Ok(estimate) => print!("\n{estimate}"),
                Err(e) => eprintln!("warning: no cost estimate: {e}"),
            }
            return Ok(());
        }
        println!("applied: {changes} change(s), {sent} mutating AWS call(s)");
        let values = p.found.config_values();
        if !values.is_empty() {
            let path = config_args::write_discovered(&uid, &values)?;
            println!("discovered variables for render and deploy-dag: {}", path.display());
        }
        for (name, value) in p.found.summary() {
            println!("  {name:<24} {value}");
        }
        if let Some(url) = &p.found.invoke_url {
            let key = p.found.api_key_file.as_ref().map(|key| format!(" --api-key-file {}", key.display()));
            println!("prove it end to end: cargo xtask verify --uid {uid} --target {url}{}", key.as_deref().unwrap_or_default());
            match &key {
                Some(key) => println!("emulate against it: pipeline emulate --target {url}{key}"),
                None => println!("emulate against it: pipeline emulate --target {url}  (the API is open: api_gateway.auth = \"none\")"),
            }
        }
        if let Some(secret) = &p.found.gateway_secret_file {
            println!(
                "API Gateway adds header {} to what it forwards; an ingest server refuses anything else with: pipeline ingest --require-header {} --require-header-value-file {}",
                templates::apigateway::GATEWAY_SECRET_HEADER,
                templates::apigateway::GATEWAY_SECRET_HEADER,
                secret.display()
            );
        }
        Ok(())
    }
}

pub async fn status(target: TargetArgs) -> Result<()> {
    {
        let options = Options { skip: target.skip.iter().copied().collect(), ..Options::default() };
        let mut p = provisioner(&target, options).await?;
        let found = p.status().await.context("looking up the stack's resources by tag")?;
        if found.is_empty() {
            println!("nothing tagged {}={} in {}", contract::STACK_TAG, p.names.uid, p.clients.region);
        }
        for f in found {
            println!("{f}");
        }
        Ok(())
    }
}

pub async fn teardown(args: TeardownArgs) -> Result<()> {
    let options = Options {
        dry_run: true,
        skip: args.target.skip.iter().copied().collect(),
        wait: wait_options(args.wait_timeout),
        key_dir: args.key_dir,
        delete_data: args.delete_data,
    };
    {
        let mut p = provisioner(&args.target, options).await?;
        if !args.dry_run && !args.yes {
            let found = p.status().await?;
            bail!(
                "teardown deletes {} resource(s) tagged {}={}; re-run with --yes (or --dry-run to list them)",
                found.len(),
                contract::STACK_TAG,
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
            let _ = std::fs::remove_file(config_args::discovered_path(&p.names.uid));
        }
        Ok(())
    }
}
