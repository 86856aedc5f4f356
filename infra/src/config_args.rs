//! The deployment's variables: `pipeline.toml` (or defaults for a uid),
//! then what `provision` discovered, then `--set`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use templates::config::PipelineConfig;

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
                let text = std::fs::read_to_string(&self.config).with_context(|| {
                    format!("cannot read {}: copy pipeline.example.toml to pipeline.toml and set uid, or pass --uid", self.config.display())
                })?;
                PipelineConfig::from_toml(&text).with_context(|| format!("in {}", self.config.display()))?
            }
        };
        // What `provision` discovered, below --set.
        let discovered = discovered_path(&config.uid);
        if let Ok(text) = std::fs::read_to_string(&discovered) {
            let lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
            for line in lines {
                let (name, value) = line.split_once('=').with_context(|| format!("{}: `{line}`", discovered.display()))?;
                config.set(name.trim(), value.trim()).with_context(|| format!("in {}", discovered.display()))?;
            }
            eprintln!("using the values `provision` discovered, from {}", discovered.display());
        }
        for assignment in &self.set {
            let (name, value) = assignment.split_once('=').with_context(|| format!("--set `{assignment}`: expected NAME=VALUE"))?;
            config.set(name.trim(), value.trim())?;
        }
        Ok(config)
    }
}

/// The project's local state (keys, discovered variables): `.local/` of the
/// current directory unless PIPELINE_LOCAL_DIR names another; `cargo xtask`
/// points it at the repository's.
pub fn local_dir() -> PathBuf {
    std::env::var_os("PIPELINE_LOCAL_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".local"))
}

/// Where provisioning leaves the variables it discovered for a uid.
pub fn discovered_path(uid: &str) -> PathBuf {
    local_dir().join("deployments").join(format!("{uid}.vars"))
}

/// Record discovered variables as `NAME=VALUE` lines (render and deploy-dag read them).
pub fn write_discovered(uid: &str, values: &[(String, String)]) -> Result<PathBuf> {
    let path = discovered_path(uid);
    std::fs::create_dir_all(path.parent().expect("has a directory"))?;
    let mut text = String::from("# Written by `provision`; read by render and deploy-dag (--set overrides).\n");
    for (name, value) in values {
        text.push_str(&format!("{name}={value}\n"));
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovered_values_fill_the_config_and_set_still_wins() {
        let uid = format!("infratest{}", std::process::id());
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
