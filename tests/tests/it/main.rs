//! The integration tests: one binary, a module per area, against the real
//! local stack (`cargo xtask test` starts it and sets the environment).
//! One binary links DataFusion, rdkafka and the SDKs once, not once per area.
//! The broker-restart test stops the shared broker, so it stays a binary of
//! its own (`tests/tests/broker_restart.rs`).

mod common;

mod airflow_dag;
mod aws_conformance;
mod batch_report;
mod batch_spark_oracle;
mod client_binary;
mod deploy_dag;
mod end_to_end;
mod ingest_hostile;
mod ingest_memory;
mod ingest_rest_proxy;
mod kafka_roundtrip;
mod metrics;
mod msk_iam;
mod mysql_source;
mod no_secrets;
mod provision_localstack;
mod provision_moto;
mod provision_replay;
mod rendered_scripts;
mod s3_moto;
mod stream_kinesis;
mod stream_notebook;
mod verify;
