//! The `pipeline` binary's library: the one place every component meets.
//! Each component is its own crate (`crates/<component>`, see
//! docs/ARCHITECTURE.md); they are re-exported here under their short names
//! for the tests and benchmarks, with `status` and `topics`, the two
//! commands that read across components.

#[cfg(feature = "batch")]
pub use pipeline_batch as batch;
#[cfg(feature = "batch")]
pub use pipeline_batch::raw_rows;
pub use pipeline_emulate as emulate;
pub use pipeline_emulate::{generate, mysql_source};
pub use pipeline_ingest as ingest;
pub use pipeline_kafka as kafka;
pub use pipeline_runtime::{json, metrics};
pub use pipeline_sink as sink;
pub use pipeline_storage as storage;
#[cfg(feature = "stream")]
pub use pipeline_stream as stream;

pub mod status;
pub mod topics;
