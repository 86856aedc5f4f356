//! The `pipeline` binary's library: the commands that read across
//! components: `status`, `topics` and `verify`. Each component is its own crate
//! (`crates/<component>`, see docs/ARCHITECTURE.md) and is used through it.

pub mod status;
pub mod topics;
#[cfg(feature = "batch")]
pub mod verify;

/// `--sink`: where the sink writes, for the commands that read its objects.
#[derive(clap::Args, Clone, Debug)]
pub struct SinkLocationArg {
    /// The sink's destination: s3://bucket[/prefix] or a directory
    /// (default s3://user-<uid>-bucket).
    #[arg(long)]
    pub sink: Option<String>,
}

impl SinkLocationArg {
    /// The location given, or the deployment's sink bucket.
    pub fn location(&self, names: &contract::Names) -> anyhow::Result<pipeline_storage::Location> {
        let given = self.sink.clone().unwrap_or_else(|| format!("s3://{}", names.sink_bucket()));
        Ok(pipeline_storage::Location::parse(&given)?)
    }
}
