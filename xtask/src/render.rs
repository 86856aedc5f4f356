//! `cargo xtask render` and `cargo xtask deploy-dag`: the deployment's files
//! from `pipeline.toml`, and the DAG's upload to MWAA's bucket.

use std::path::PathBuf;

use anyhow::{Context, Result};
use templates::Templates;
use templates::config::PipelineConfig;
use templates::render::{self, RenderedFile};

use crate::paths;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Config file with the deployment's variables (see pipeline.example.toml).
    #[arg(long, default_value = "pipeline.toml")]
    pub config: PathBuf,
    /// Use defaults for this user id instead of a config file.
    #[arg(long, conflicts_with = "config")]
    pub uid: Option<String>,
    /// Set a variable, overriding the file, e.g. --set kafka.bootstrap_servers=b-1.example:9098 (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    pub fn load(&self) -> Result<PipelineConfig> {
        let mut config = match &self.uid {
            Some(uid) => PipelineConfig::for_uid(uid),
            None => {
                let path = if self.config.is_absolute() { self.config.clone() } else { paths::repo_root().join(&self.config) };
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!("cannot read {}: copy pipeline.example.toml to pipeline.toml and set uid, or pass --uid", path.display())
                })?;
                PipelineConfig::from_toml(&text).with_context(|| format!("in {}", path.display()))?
            }
        };
        // What `cargo xtask provision` discovered, below --set.
        let discovered = discovered_path(&config.uid);
        if let Ok(text) = std::fs::read_to_string(&discovered) {
            let lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
            for line in lines {
                let (name, value) = line.split_once('=').with_context(|| format!("{}: `{line}`", discovered.display()))?;
                config.set(name.trim(), value.trim()).with_context(|| format!("in {}", discovered.display()))?;
            }
            eprintln!("using the values `cargo xtask provision` discovered, from {}", discovered.display());
        }
        for assignment in &self.set {
            let (name, value) = assignment.split_once('=').with_context(|| format!("--set `{assignment}`: expected NAME=VALUE"))?;
            config.set(name.trim(), value.trim())?;
        }
        Ok(config)
    }
}

/// Where provisioning leaves the variables it discovered for a uid.
pub fn discovered_path(uid: &str) -> PathBuf {
    paths::local_dir().join("deployments").join(format!("{uid}.vars"))
}

/// Record discovered variables as `NAME=VALUE` lines (render and deploy-dag read them).
pub fn write_discovered(uid: &str, values: &[(String, String)]) -> Result<PathBuf> {
    let path = discovered_path(uid);
    std::fs::create_dir_all(path.parent().expect("has a directory"))?;
    let mut text = String::from("# Written by `cargo xtask provision`; read by render and deploy-dag (--set overrides).\n");
    for (name, value) in values {
        text.push_str(&format!("{name}={value}\n"));
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Directory to write the files to.
    #[arg(long, default_value = "rendered")]
    pub out: PathBuf,
}

/// Values of the secrets this process can see; none may appear in output.
fn visible_secrets() -> Vec<String> {
    ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "DATABRICKS_TOKEN"].iter().filter_map(|v| std::env::var(v).ok()).collect()
}

fn render_checked(config: &PipelineConfig) -> Result<Vec<RenderedFile>> {
    let files = render::render_all(&Templates::new(), config)?;
    render::refuse_secrets(&files, &visible_secrets())?;
    Ok(files)
}

pub fn run_render(args: RenderArgs) -> Result<()> {
    let config = args.config.load()?;
    let files = render_checked(&config)?;
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
    /// MWAA environment to ask, after the upload, whether Airflow loaded the
    /// DAG (or failed to import it); `cargo xtask provision` names it <uid>-mwaa.
    #[arg(long)]
    pub mwaa_environment: Option<String>,
    /// Seconds to wait for MWAA to parse the new file.
    #[arg(long, default_value_t = 300)]
    pub wait_for_dag: u64,
}

pub fn run_deploy_dag(args: DeployDagArgs) -> Result<()> {
    let config = args.config.load()?;
    let files = render::dag_files(&Templates::new(), &config)?;
    render::refuse_secrets(&files, &visible_secrets())?;
    let (dag, requirements) = (&files[0].contents, &files[1].contents);
    let bucket = config.airflow.dags_bucket.clone();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let target = infra::aws::AwsTarget::for_endpoint(args.endpoint_url.clone(), &config.region);
        let client = infra::s3::client(&target.load().await);
        if args.create_bucket {
            infra::s3::ensure_bucket(&client, &bucket).await?;
        }
        let uploaded = infra::dags::deploy(&client, &bucket, &config.uid, dag, requirements)
            .await
            .with_context(|| format!("deploying the DAG to s3://{bucket} (is the bucket there? `cargo xtask provision` creates it)"))?;
        for u in uploaded {
            println!("uploaded s3://{bucket}/{} (etag {})", u.key, u.etag);
        }
        let Some(env) = &args.mwaa_environment else {
            println!("MWAA picks up {}_dag within a few minutes; it starts paused. Pass --mwaa-environment to wait for it.", config.uid);
            return anyhow::Ok(());
        };
        let mwaa = aws_sdk_mwaa::Client::new(&target.load().await);
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovered_values_fill_the_config_and_set_still_wins() {
        let uid = format!("xtasktest{}", std::process::id());
        let values = vec![
            ("kafka.bootstrap_servers".to_string(), "b-1.found:9098".to_string()),
            ("kafka.client_role_arn".to_string(), "arn:aws:iam::1:role/found".to_string()),
        ];
        let path = write_discovered(&uid, &values).unwrap();
        let args = ConfigArgs {
            config: PathBuf::from("pipeline.toml"),
            uid: Some(uid.clone()),
            set: vec!["kafka.client_role_arn=arn:aws:iam::1:role/given".into()],
        };
        let config = args.load();
        std::fs::remove_file(&path).unwrap();
        let config = config.unwrap();
        assert_eq!(config.kafka.bootstrap_servers.as_deref(), Some("b-1.found:9098"));
        assert_eq!(config.kafka.client_role_arn.as_deref(), Some("arn:aws:iam::1:role/given"));
    }
}
