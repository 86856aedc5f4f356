//! AWS side of the pipeline: the clients, the S3 helpers the local stack
//! uses, DAG deployment, and plan / apply / teardown of the original
//! deployment (`provision`).

pub mod aws;
pub mod clients;
pub mod dags;
pub mod oplog;
pub mod provision;
pub mod s3;
pub mod stack;
