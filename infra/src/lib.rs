//! AWS side of the pipeline. This crate holds the AWS clients and the
//! resources the local stack needs today (the sink bucket); the full
//! plan/apply/teardown model of the original deployment builds on it.

pub mod aws;
pub mod dags;
pub mod s3;
