//! AWS side of the pipeline: the clients, DAG deployment, and plan / apply / teardown of the original
//! deployment (`provision`).

pub mod clients;
pub mod dags;
pub mod oplog;
pub mod provision;
pub mod stack;
