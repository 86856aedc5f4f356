//! The stream notebook's per-micro-batch logic, run on a local Spark with
//! Delta over static batches (what Kinesis hands `foreachBatch` on
//! Databricks): rows are cleaned and appended, records that are not rows
//! are kept as dead letters, and a batch replayed after a failure writes
//! nothing twice.

use crate::common;

use std::collections::BTreeSet;
use std::process::Command;

use contract::Kind;
use pipeline_emulate::generate::{ORIGINAL_TABLE_ROWS, SyntheticSource};
use serde_json::{Value, json};
use templates::config::PipelineConfig;

#[test]
fn a_replayed_micro_batch_writes_nothing_twice_and_dead_letters_are_kept() {
    let python = common::python_from_env("PIPELINE_PYSPARK_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    // A uid with `-`: table names must be quoted.
    let notebook =
        templates::render::render_one(&templates::Templates::new(), &PipelineConfig::for_uid("abc-1"), "databricks/stream_notebook.py")
            .unwrap();
    let notebook_path = dir.path().join("stream_notebook.py");
    std::fs::write(&notebook_path, notebook).unwrap();

    let source = SyntheticSource::new(11, ORIGINAL_TABLE_ROWS);
    let pins: Vec<Value> = (0..30).map(|i| source.round(i).value(Kind::Pin)).collect();
    let distinct = |n: usize| pins[..n].iter().map(Value::to_string).collect::<BTreeSet<_>>().len() as u64;
    let mut first: Vec<String> = pins[..20].iter().map(Value::to_string).collect();
    // One Kinesis record holding two rows, one that is not JSON, one without
    // the key column.
    first.push(json!([pins[20], pins[21]]).to_string());
    first.push("{\"not json".into());
    let mut keyless = pins[0].clone();
    keyless.as_object_mut().unwrap().remove(Kind::Pin.key_column());
    first.push(keyless.to_string());
    let second: Vec<String> = pins[22..].iter().map(Value::to_string).collect();
    let batches = json!([
        {"kind": "pin", "batch_id": 0, "data": first},
        // The same batch again, as after a failure between its write and
        // the checkpoint's commit.
        {"kind": "pin", "batch_id": 0, "data": first},
        {"kind": "pin", "batch_id": 1, "data": second},
    ]);
    let batches_path = dir.path().join("batches.json");
    std::fs::write(&batches_path, batches.to_string()).unwrap();

    let _spark = common::one_spark();
    let run = Command::new(&python)
        .arg(common::tests_dir().join("python/stream_batches.py"))
        .arg(&notebook_path)
        .arg(dir.path().join("warehouse"))
        .arg(&batches_path)
        .env("PYSPARK_PYTHON", &python)
        .env("PYSPARK_SUBMIT_ARGS", common::pyspark_submit_args(dir.path()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "stream_batches failed:\n{}", stderr.lines().rev().take(40).collect::<Vec<_>>().join("\n"));
    let after: Vec<Value> =
        String::from_utf8(run.stdout).unwrap().lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[0]["rows"], distinct(22), "{after:?}");
    assert_eq!(after[0]["dead_letters"], 2, "{after:?}");
    assert_eq!(after[0]["dead_reasons"].as_object().unwrap().len(), 2, "each dead letter says why: {after:?}");
    assert_eq!(after[1], after[0], "the replayed batch wrote nothing");
    assert_eq!(after[2]["rows"], distinct(22) + distinct_from(&pins, 22), "{after:?}");
    assert_eq!(after[2]["dead_letters"], 2, "{after:?}");
}

/// Rows of `pins[from..]` not among the earlier ones: cleaning drops exact
/// duplicates within a batch only, so count the later batch on its own.
fn distinct_from(pins: &[Value], from: usize) -> u64 {
    pins[from..].iter().map(Value::to_string).collect::<BTreeSet<_>>().len() as u64
}
