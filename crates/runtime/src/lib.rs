//! What every process of the pipeline shares: the `/metrics` server
//! ([`metrics`]), compact JSON text ([`json`]), rate-limited log lines
//! ([`log_every`]), the shutdown signal, the
//! `--uid` flag and secrets read from a file or the environment. Each
//! component's own flags live with the component (`<component>::cli`).

pub mod json;
pub mod log_every;
pub mod metrics;

use anyhow::{Context, Result};
use contract::{DEFAULT_UID, Names};

/// `--uid`: the deployment every name is derived from (SPEC 1).
#[derive(clap::Args, Clone, Debug)]
pub struct UidArg {
    /// Deployment user id: topics are <uid>.pin|geo|user, the bucket user-<uid>-bucket.
    #[arg(long, env = "PIPELINE_UID", default_value = DEFAULT_UID)]
    pub uid: String,
}

impl UidArg {
    pub fn names(&self) -> Result<Names> {
        Names::new(&self.uid).map_err(anyhow::Error::msg)
    }
}

/// Parse one component's flags on their own, as its subcommand would see
/// them (`argv[0]` is the command's name): for the components' tests.
pub fn parse_args<A: clap::Args>(argv: &[&str]) -> Result<A, clap::Error> {
    #[derive(clap::Parser)]
    struct One<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    <One<A> as clap::Parser>::try_parse_from(argv).map(|one| one.args)
}

/// A `--<flag> SECONDS` value as a duration; zero is allowed, negative,
/// NaN and overflowing values are refused by name.
pub fn seconds(value: f64, flag: &str) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value).with_context(|| format!("{flag} must be a positive number of seconds, not {value}"))
}

/// [`seconds`] for a limit where zero is no limit to what it bounds
/// (librdkafka reads a delivery timeout of 0 as "wait for ever"): refused.
pub fn nonzero_seconds(value: f64, flag: &str) -> Result<std::time::Duration> {
    let d = seconds(value, flag)?;
    anyhow::ensure!(!d.is_zero(), "{flag} must be more than 0 seconds (0 would mean no limit at all)");
    Ok(d)
}

/// Resolves on Ctrl-C or SIGTERM (what systemd and `kill` send): every
/// long-running command stops cleanly on either.
pub async fn shutdown_signal() {
    let sigterm = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        // A failure to listen for Ctrl-C leaves SIGTERM as the way to stop.
        r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
        _ = sigterm => {}
    }
}

/// `--metrics-listen`: serve what `register` puts in a registry while the
/// command runs (the server stops when the returned value is dropped).
pub async fn serve_metrics(
    listen: Option<std::net::SocketAddr>,
    command: &str,
    register: impl FnOnce(&mut metrics::Registry),
) -> Result<Option<metrics::MetricsServer>> {
    let Some(addr) = listen else { return Ok(None) };
    let mut registry = metrics::Registry::default();
    register(&mut registry);
    let server = metrics::serve(addr, std::sync::Arc::new(registry))
        .await
        .with_context(|| format!("--metrics-listen {addr}: cannot listen there (in use, or not this machine's address?)"))?;
    eprintln!("{command}: metrics at http://{}/metrics", server.local_addr);
    Ok(Some(server))
}

/// A secret from its file (without the line end), or else from `env`;
/// `None` when neither is given. Never from the command line.
pub fn secret_value(file: Option<&std::path::Path>, env: &str, what: &str) -> Result<Option<String>> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {what} from {}", path.display()))?;
            Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
        }
        None => Ok(std::env::var(env).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_loses_only_its_line_end() {
        let dir = std::env::temp_dir().join(format!("pipeline-runtime-secret-{}", std::process::id()));
        std::fs::write(&dir, "  s3cret value \r\n").unwrap();
        let value = secret_value(Some(&dir), "PIPELINE_RUNTIME_TEST_UNSET", "the secret").unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(value.as_deref(), Some("  s3cret value "));
    }

    #[test]
    fn a_missing_secret_file_is_named() {
        let err = secret_value(Some(std::path::Path::new("/nonexistent/key")), "X", "the API key").unwrap_err();
        assert!(format!("{err:#}").contains("reading the API key from /nonexistent/key"), "{err:#}");
    }

    #[test]
    fn seconds_are_checked_by_flag_name() {
        assert_eq!(seconds(1.5, "--x").unwrap(), std::time::Duration::from_millis(1500));
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = seconds(bad, "--body-timeout").unwrap_err().to_string();
            assert!(err.contains("--body-timeout must be a positive number of seconds"), "{err}");
        }
    }

    #[test]
    fn a_bad_uid_is_refused_with_the_rule() {
        let bad = UidArg { uid: "Not A Uid!".into() };
        let err = bad.names().unwrap_err().to_string();
        assert!(err.contains("lowercase letters"), "{err}");
        assert_eq!(UidArg { uid: DEFAULT_UID.into() }.names().unwrap().uid(), DEFAULT_UID);
    }
}
