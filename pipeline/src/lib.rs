//! The data path of the Pinterest pipeline: records and their generator,
//! the emulator, the REST-proxy-compatible ingest server, the S3 sink and
//! the batch job. Each component keeps its config, logic and tests in its
//! own module; record types and names live in the `contract` crate.

pub mod batch;
pub mod emulate;
pub mod generate;
pub mod ingest;
pub mod json;
pub mod kafka;
pub mod metrics;
pub mod mysql_source;
pub mod raw_rows;
pub mod sink;
pub mod status;
pub mod storage;
pub mod stream;
