//! The flags of `pipeline emulate`, `seed-mysql` and `generate`; their
//! defaults are the emulator's `DEFAULT_*` and the original's table size.

use std::path::PathBuf;

use anyhow::{Context, Result};
use pipeline_runtime::UidArg;

use crate::generate::{ORIGINAL_TABLE_ROWS, SyntheticSource};
use crate::mysql_source::{self, MysqlSource};
use crate::{ApiKey, DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_SEED, DEFAULT_TARGET, EmulateConfig, Mode, RowSource};

/// Where `--api-key-file` is read from when it is not given.
pub const API_KEY_ENV: &str = "PIPELINE_API_KEY";

/// Post emulated user activity (pin, geo, user records) to a REST Proxy API.
#[derive(clap::Args, Clone, Debug)]
pub struct EmulateArgs {
    #[command(flatten)]
    pub uid: UidArg,
    /// REST proxy base URL: the local ingest server or the API Gateway invoke URL.
    #[arg(long, default_value = DEFAULT_TARGET)]
    pub target: String,
    /// batch: POST to the REST proxy's topics; stream: PUT to the Kinesis
    /// routes /streams/streaming-<uid>-<kind>/record(s), as the original stream emulator.
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
    pub mode: Mode,
    /// Rounds to send; each round posts one record to each of the three topics.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Records per second over all topics (default: as fast as allowed).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Rounds per request: 1 posts one record per request, as the original emulator.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Retries of a request answered with a retriable error (503).
    #[arg(long, default_value_t = DEFAULT_RETRIES)]
    pub retries: u32,
    /// Where rows come from: `synthetic` (seeded generator, the default) or
    /// the original database, `mysql://user:password@host:port/database`
    /// with tables pinterest_data, geolocation_data and user_data (TLS:
    /// append `?require_ssl=true`). Prefer the PIPELINE_MYSQL_URL
    /// variable to keep the password out of shell history.
    #[arg(long, env = "PIPELINE_SOURCE", default_value = "synthetic", hide_env_values = true)]
    pub source: String,
    /// Seed of the synthetic source tables, and of the row offsets drawn.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Rows per synthetic source table.
    #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
    pub rows: u64,
    /// File holding the deployment's API Gateway key, sent as x-api-key
    /// (`provision` writes it to .local/keys/<uid>-api-key). The
    /// PIPELINE_API_KEY variable works too; never on the command line.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
}

impl EmulateArgs {
    /// The emulator's configuration; a MySQL source is connected here.
    pub async fn config(self) -> Result<EmulateConfig> {
        let source = if self.source == "synthetic" {
            RowSource::Synthetic(SyntheticSource::new(self.seed, self.rows))
        } else if self.source.starts_with("mysql://") {
            let mysql = MysqlSource::connect(&self.source).await?;
            eprintln!("reading rows from {} ({} rows per table)", mysql.url(), mysql.rows());
            RowSource::Mysql(mysql)
        } else {
            anyhow::bail!(
                "--source must be `synthetic` or a mysql://user:password@host:port/database URL, not `{}`",
                mysql_source::redacted(&self.source)
            );
        };
        let duration = self.duration.map(|s| pipeline_runtime::seconds(s, "--duration")).transpose()?;
        let api_key = pipeline_runtime::secret_value(self.api_key_file.as_deref(), API_KEY_ENV, "the API key")?;
        Ok(EmulateConfig {
            target: self.target,
            mode: self.mode,
            names: self.uid.names()?,
            source,
            rounds: self.count,
            duration,
            rate: self.rate,
            batch: self.batch,
            concurrency: self.concurrency,
            retries: self.retries,
            offset_seed: self.seed.wrapping_add(1),
            progress: true,
            api_key: api_key.map(ApiKey::new).transpose()?,
        })
    }

    /// Send, print the counts, and fail when any record was not acknowledged.
    pub async fn run(self) -> Result<()> {
        let summary = crate::run(self.config().await?).await?;
        println!("{summary}");
        if summary.failed > 0 {
            anyhow::bail!("{} of {} records were not acknowledged", summary.failed, summary.sent);
        }
        Ok(())
    }
}

/// Create the source tables (pinterest_data, geolocation_data, user_data,
/// the original's columns) in a MySQL/MariaDB database and fill them from
/// the synthetic generator, so `emulate --source mysql://...` has the
/// original's database to read. Row i has index/ind i.
#[derive(clap::Args, Clone, Debug)]
pub struct SeedMysqlArgs {
    /// `mysql://user:password@host:port/database`.
    #[arg(long, env = "PIPELINE_MYSQL_URL", hide_env_values = true)]
    pub url: String,
    /// Seed of the synthetic source tables.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Rows per table.
    #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
    pub rows: u64,
    /// Empty tables that already hold rows instead of refusing.
    #[arg(long)]
    pub replace: bool,
}

impl SeedMysqlArgs {
    pub async fn run(self) -> Result<()> {
        let written = mysql_source::seed(&self.url, &SyntheticSource::new(self.seed, self.rows), self.replace).await?;
        println!("wrote {written} rows to each of pinterest_data, geolocation_data, user_data at {}", mysql_source::redacted(&self.url));
        Ok(())
    }
}

/// Write generated rounds straight into the S3 sink's layout in a directory,
/// as if emulate, ingest and sink had run: input for `batch` at any size.
#[derive(clap::Args, Clone, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub uid: UidArg,
    /// Directory to write `topics/<uid>.<kind>/partition=0/...` under.
    #[arg(long)]
    pub output: PathBuf,
    /// Rounds to write (one pin, geo and user record each), drawn at random
    /// row offsets like the emulator's, so rows repeat.
    #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
    pub count: u64,
    /// Records per object.
    #[arg(long, default_value_t = 1000)]
    pub flush_size: usize,
    /// Seed of the synthetic source tables.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Rows per synthetic source table.
    #[arg(long, default_value_t = ORIGINAL_TABLE_ROWS)]
    pub rows: u64,
}

impl GenerateArgs {
    pub fn run(self) -> Result<()> {
        let names = self.uid.names()?;
        let rounds = SyntheticSource::new(self.seed, self.rows).random_rounds(self.seed.wrapping_add(1)).take(self.count as usize);
        let written = crate::generate::write_sink_layout(&self.output, &names, rounds, self.flush_size)
            .with_context(|| format!("writing to {}", self.output.display()))?;
        println!("wrote {written} rounds ({} records) to {}", written * 3, self.output.display());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<EmulateArgs, clap::Error> {
        pipeline_runtime::parse_args(argv)
    }

    #[tokio::test]
    async fn an_unknown_source_is_refused_without_showing_a_password() {
        let args = parse(&["emulate", "--source", "postgres://u:hunter2@h/db"]).unwrap();
        let text = format!("{:#}", args.config().await.unwrap_err());
        assert!(text.contains("--source must be"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn defaults_are_the_emulators() {
        let args = parse(&["emulate", "--source", "synthetic"]).unwrap();
        let config = args.config().await.unwrap();
        assert_eq!(config.target, DEFAULT_TARGET);
        assert_eq!((config.concurrency, config.retries, config.batch), (DEFAULT_CONCURRENCY, DEFAULT_RETRIES, 1));
        assert_eq!(config.offset_seed, DEFAULT_SEED + 1);
        assert_eq!(config.mode, Mode::Batch);
    }
}
