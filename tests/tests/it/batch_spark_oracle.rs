//! One SQL, two engines: the batch notebook rendered for Databricks runs on a
//! real (local) PySpark over the same sink output as `pipeline batch`, and
//! every row of every cleaned table and query result must match DataFusion's.

use crate::common;

use common::wild::{self, Variant};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use contract::{Kind, Names};
use pipeline_batch::{self as batch, BatchConfig};
use pipeline_emulate::generate::{self as generate, ORIGINAL_TABLE_ROWS, SyntheticSource};
use pipeline_storage::Location;
use serde_json::Value;
use templates::config::PipelineConfig;

fn spark_rows(dir: &Path, name: &str) -> Vec<Value> {
    let path = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("Spark wrote no {}: {e}", path.display()));
    text.lines().map(|l| wild::normalise(serde_json::from_str(l).unwrap())).collect()
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
    // Input as it arrives in the wild, in a partition of its own: each
    // emulator variant's spelling, and lines that are not rows.
    let wild_rounds: Vec<_> = source.random_rounds(8).take(400).collect();
    let mut quarantined_lines = BTreeMap::new();
    for kind in Kind::ALL {
        let mut lines: Vec<String> = wild_rounds
            .iter()
            .enumerate()
            .map(|(i, r)| {
                [Variant::OneElementArray, Variant::ColonDates, Variant::IsoT, Variant::Fractional][i % 4].encode(kind, r).to_string()
            })
            .collect();
        let bad = wild::bad_records(kind, &wild_rounds[0]);
        quarantined_lines.insert(kind, bad.iter().map(|(_, n)| n).sum::<u64>() + 1);
        lines.extend(bad.into_iter().map(|(v, _)| v.to_string()));
        lines.push("{\"not json".to_string());
        lines.push(String::new());
        let dir = input.join(format!("topics/{}/partition=7", names.topic(kind)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{}+7+0000000000.json", names.topic(kind))), lines.join("\n") + "\n").unwrap();
    }

    let config = BatchConfig {
        input: Location::parse(input.to_str().unwrap()).unwrap(),
        names: names.clone(),
        aws: Default::default(),
        output: None,
        strict: false,
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

    for kind in Kind::ALL {
        let spark_quarantine = spark_rows(&spark_out, &format!("quarantine_{kind}"));
        assert_eq!(ours.summary.kind(kind).quarantined, quarantined_lines[&kind], "{kind}: ours");
        assert_eq!(spark_quarantine.len() as u64, quarantined_lines[&kind], "{kind}: Spark's quarantine: {spark_quarantine:?}");
        assert!(spark_quarantine.iter().all(|q| q["object"].as_str().unwrap().ends_with("+7+0000000000.json")), "{spark_quarantine:?}");
    }
    for table in &ours.cleaned {
        let (a, b) = (wild::table_rows(&table.batches), wild::sorted(spark_rows(&spark_out, &table.name)));
        assert!(!a.is_empty(), "{} is empty", table.name);
        wild::assert_same_rows(&format!("{} (DataFusion, expected as Spark)", table.name), &a, &b);
    }
    for table in &ours.results {
        // The queries order their output, so order is compared too.
        let (a, b) = (wild::ordered_rows(&table.batches), spark_rows(&spark_out, &table.name));
        assert!(!a.is_empty(), "{} is empty: the input does not exercise it", table.name);
        wild::assert_same_rows(&format!("{} (DataFusion, expected as Spark)", table.name), &a, &b);
    }
    // The same charts: the report's bars and the notebook's, drawn too.
    for table in &ours.results {
        let ours = batch::report::chart_bars(table);
        let path = spark_out.join(format!("chart_{}.json", table.name));
        let spark: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(ours.len(), spark.len(), "{}: bars", table.name);
        for (a, b) in ours.iter().zip(&spark) {
            assert_eq!(a.label, b["label"].as_str().unwrap(), "{}", table.name);
            assert!((a.value - b["value"].as_f64().unwrap()).abs() < 1e-9, "{}: {a:?} vs {b}", table.name);
        }
        let png = std::fs::read(spark_out.join(format!("chart_{}.png", table.name))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}: the notebook drew its chart", table.name);
    }
}
