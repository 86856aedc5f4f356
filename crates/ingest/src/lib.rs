//! `pipeline ingest`: an HTTP server speaking the Confluent REST Proxy v2
//! produce API (SPEC 3.1), producing to Kafka with an idempotent, acks=all
//! librdkafka producer. A request is answered 200 only after Kafka has
//! acknowledged every one of its records. It also serves API Gateway's
//! Kinesis routes (SPEC 3.2, module `kinesis`).
//!
//! The modules follow the API: `v2` (produce and metadata), `consumers`
//! (v2 consumer instances), `v3`, `kinesis`; `server` binds and routes,
//! `state` holds the settings and what every API shares, `transport` the
//! socket and its connection limits.

mod auth;
pub mod cli;
mod consumers;
mod errors;
mod keep_alive;
mod kinesis;
mod metrics;
mod negotiation;
mod request;
mod server;
mod state;
mod transport;
mod v2;
mod v3;

pub use auth::RequiredHeader;
pub use cli::IngestArgs;
pub use errors::{CONTENT_TYPE_V2, ProxyError};
pub use request::{EmbeddedFormat, ProduceRecord, parse_produce};
pub use server::{IngestError, RunningIngest, start};
pub use state::{DEFAULT_MAX_RECORD_BYTES, IngestConfig};
