//! One SQL, two engines: the batch notebook rendered for Databricks runs on a
//! real (local) PySpark over the same sink output as `pipeline batch`, and
//! every row of every cleaned table and query result must match DataFusion's.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use contract::Names;
use datafusion::arrow::json::{WriterBuilder, writer::LineDelimited};
use pipeline::batch::{self, BatchConfig, Table};
use pipeline::generate::{self, ORIGINAL_TABLE_ROWS, SyntheticSource};
use pipeline::storage::Location;
use serde_json::Value;
use templates::config::PipelineConfig;

/// Rows as JSON objects, nulls dropped, timestamps in one spelling.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k, normalise(x))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::String(s) => Value::String(normalise_timestamp(&s).unwrap_or(s)),
        other => other,
    }
}

/// Spark writes `2019-04-07T22:11:02.000Z`, arrow `2019-04-07T22:11:02`.
fn normalise_timestamp(s: &str) -> Option<String> {
    let looks_like = s.len() >= 19 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' && s.as_bytes()[13] == b':';
    if !looks_like {
        return None;
    }
    let t = s.trim_end_matches('Z');
    let t = t.strip_suffix(".000").unwrap_or(t);
    Some(t.to_string())
}

fn datafusion_rows(table: &Table) -> Vec<Value> {
    let mut buf = Vec::new();
    {
        let mut w: datafusion::arrow::json::Writer<_, LineDelimited> = WriterBuilder::new().with_explicit_nulls(true).build(&mut buf);
        for b in &table.batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
    }
    String::from_utf8(buf).unwrap().lines().map(|l| normalise(serde_json::from_str(l).unwrap())).collect()
}

fn spark_rows(dir: &Path, name: &str) -> Vec<Value> {
    let path = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("Spark wrote no {}: {e}", path.display()));
    text.lines().map(|l| normalise(serde_json::from_str(l).unwrap())).collect()
}

fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|r| r.to_string());
    rows
}

/// First rows that differ, for a readable failure.
fn diff(a: &[Value], b: &[Value]) -> String {
    let only = |x: &[Value], y: &[Value]| {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        x.iter().for_each(|r| *counts.entry(r.to_string()).or_default() += 1);
        y.iter().for_each(|r| *counts.entry(r.to_string()).or_default() -= 1);
        counts.into_iter().filter(|(_, n)| *n > 0).map(|(r, _)| r).take(5).collect::<Vec<_>>()
    };
    format!("only in DataFusion: {:?}\nonly in Spark: {:?}", only(a, b), only(b, a))
}

#[tokio::test(flavor = "multi_thread")]
async fn spark_and_datafusion_agree_on_every_row() {
    let python = common::python_from_env("PIPELINE_PYSPARK_PYTHON");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sink");
    let names = Names::new("0e2a0bfcc015").unwrap();
    // 4,000 rounds drawn from 11,000-row tables: duplicates, placeholders
    // and ties all occur, as in the original data.
    let source = SyntheticSource::new(20261124, ORIGINAL_TABLE_ROWS);
    generate::write_sink_layout(&input, &names, source.random_rounds(7).take(4000), 500).unwrap();

    let config = BatchConfig {
        input: Location::parse(input.to_str().unwrap()).unwrap(),
        names: names.clone(),
        aws: Default::default(),
        output: None,
    };
    let ours = batch::run(&config).await.unwrap();

    let notebook =
        templates::render::render_one(&templates::Templates::new(), &PipelineConfig::for_uid(names.uid()), "databricks/batch_notebook.py")
            .unwrap();
    let notebook_path = dir.path().join("batch_notebook.py");
    std::fs::write(&notebook_path, notebook).unwrap();
    let spark_out = dir.path().join("spark");
    let run = Command::new(&python)
        .arg(&notebook_path)
        .arg("--source")
        .arg(&input)
        .arg("--output")
        .arg(&spark_out)
        .env("PYSPARK_PYTHON", &python)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the notebook failed on PySpark:\n{}",
        String::from_utf8_lossy(&run.stderr).lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );

    for table in &ours.cleaned {
        let (a, b) = (sorted(datafusion_rows(table)), sorted(spark_rows(&spark_out, &table.name)));
        assert!(!a.is_empty(), "{} is empty", table.name);
        assert!(a == b, "{}: {} rows in DataFusion, {} in Spark\n{}", table.name, a.len(), b.len(), diff(&a, &b));
    }
    for table in &ours.results {
        // The queries order their output, so order is compared too.
        let (a, b) = (datafusion_rows(table), spark_rows(&spark_out, &table.name));
        assert!(!a.is_empty(), "{} is empty: the input does not exercise it", table.name);
        assert!(a == b, "{}: {} rows in DataFusion, {} in Spark\n{}", table.name, a.len(), b.len(), diff(&a, &b));
    }
}
