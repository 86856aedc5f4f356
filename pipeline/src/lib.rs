//! The data path of the Pinterest pipeline: records and their generator,
//! the emulator, the REST-proxy-compatible ingest server, the S3 sink and
//! the batch job. Each component keeps its config, logic and tests in its
//! own module; shared record types and names live in [`records`].

pub mod batch;
pub mod bench;
pub mod emulate;
pub mod generate;
pub mod ingest;
pub mod json;
pub mod kafka;
pub mod mysql_source;
pub mod records;
pub mod sink;
pub mod storage;
pub mod stream;

/// User id of the original write-up, used when none is given.
pub use templates::config::DEFAULT_UID;
