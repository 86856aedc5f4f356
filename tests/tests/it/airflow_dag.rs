//! The rendered DAG imports under the real Airflow (3.x, and 2.10 as on
//! MWAA) and carries the settings of SPEC 6.

use crate::common;

use std::process::Command;

use serde_json::Value;
use templates::config::PipelineConfig;

const AIRFLOWS: [(&str, &str); 2] = [("3.x", "PIPELINE_AIRFLOW3_PYTHON"), ("2.10", "PIPELINE_AIRFLOW2_PYTHON")];

fn config() -> PipelineConfig {
    let mut c = PipelineConfig::for_uid("0e2a0bfcc015");
    c.set("databricks.compute", "existing_cluster").unwrap();
    c.set("databricks.cluster_id", "1108-162752-8okw8dgg").unwrap();
    c.set("databricks.notebook_path", "/Workspace/Users/me/batch_notebook").unwrap();
    c.set("airflow.owner", "data-eng").unwrap();
    c.set("airflow.retries", "2").unwrap();
    c
}

/// Run Airflow's DagBag over a folder holding the given files.
fn load_dags(python: &std::path::Path, files: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    for (name, text) in files {
        std::fs::write(dags.join(name), text).unwrap();
    }
    let out = dir.path().join("dagbag.json");
    let run = Command::new(python)
        .arg(common::tests_dir().join("python/dagbag_check.py"))
        .arg(&dags)
        .arg(&out)
        .env("AIRFLOW_HOME", dir.path().join("airflow-home"))
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .output()
        .unwrap();
    assert!(run.status.success(), "dagbag_check failed: {}", String::from_utf8_lossy(&run.stderr));
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// The rendered DAG of `config`, loaded by each Airflow: per Airflow, the
/// DAG's settings and its task's arguments, wherever the provider keeps
/// them (older providers fold them into `json` at construction), with the
/// task's own settings under "task".
fn loaded_tasks(config: &PipelineConfig) -> Vec<(&'static str, Value, Value)> {
    let files = templates::render::dag_files(&templates::Templates::new(), config).unwrap();
    let dag_path = templates::render::dag_path(&config.uid);
    let dag = files.iter().find(|f| f.path == dag_path).expect("the DAG is rendered");
    let file_name = dag_path.rsplit('/').next().unwrap();
    assert_eq!(file_name, format!("{}_dag.py", config.uid));
    AIRFLOWS
        .iter()
        .map(|(version, var)| {
            let bag = load_dags(&common::python_from_env(var), &[(file_name, &dag.contents)]);
            assert_eq!(bag["import_errors"], serde_json::json!({}), "Airflow {version}: {bag}");
            let d = bag["dags"][format!("{}_dag", config.uid)].clone();
            let tasks = d["tasks"].as_array().unwrap();
            assert_eq!(tasks.len(), 1);
            let t = tasks[0].clone();
            let mut args = serde_json::Map::new();
            for name in ["existing_cluster_id", "new_cluster", "notebook_task", "timeout_seconds", "run_name"] {
                let v = if t[name].is_null() { t["json"][name].clone() } else { t[name].clone() };
                args.insert(name.into(), v);
            }
            // The task's own settings, beside its arguments.
            args.insert("task".into(), t);
            (*version, d, Value::Object(args))
        })
        .collect()
}

#[test]
fn rendered_dag_loads_in_airflow_with_the_spec_settings() {
    for (version, d, args) in loaded_tasks(&config()) {
        assert_eq!(d["schedule"], "@daily", "Airflow {version}");
        assert_eq!(d["catchup"], false);
        assert_eq!(d["is_paused_upon_creation"], true, "a new DAG appears paused");
        assert!(d["start_date"].as_str().unwrap().starts_with("2026-01-01"), "{d}");
        assert_eq!(d["max_active_runs"], 1, "Airflow {version}: two days' runs would write the same tables");
        let t = &args["task"];
        assert_eq!(t["operator"], "DatabricksSubmitRunOperator");
        assert_eq!(t["owner"], "data-eng");
        assert_eq!(t["retries"], 2);
        assert_eq!(t["retry_delay_seconds"], 120.0);
        assert_eq!(t["databricks_conn_id"], "databricks_default");
        // Both sides give up: Databricks cancels the run, Airflow the task.
        assert_eq!(args["timeout_seconds"], 7200, "Airflow {version}: {args}");
        assert_eq!(t["execution_timeout_seconds"], 7200.0);
        assert!(d["dagrun_timeout_seconds"].as_f64().unwrap() > 7200.0, "{d}");
        assert_eq!(args["existing_cluster_id"], "1108-162752-8okw8dgg", "Airflow {version}: {args}");
        assert!(args["new_cluster"].is_null(), "{args}");
        let notebook = &args["notebook_task"];
        assert_eq!(notebook["notebook_path"], "/Workspace/Users/me/batch_notebook");
        let params = &notebook["base_parameters"];
        assert_eq!(params["source"], "s3a://user-0e2a0bfcc015-bucket");
        assert_eq!(params["output"], "pinterest_0e2a0bfcc015");
        // Airflow fills in the run's date when the task runs.
        assert_eq!(params["run_date"], "{{ ds }}", "Airflow {version}: {args}");
    }
}

#[test]
fn the_dag_runs_on_a_job_cluster_by_default_or_on_serverless() {
    let mut job = config();
    job.set("databricks.compute", "job_cluster").unwrap();
    job.set("databricks.instance_profile_arn", "arn:aws:iam::123456789012:instance-profile/pinterest-databricks").unwrap();
    for (version, _, args) in loaded_tasks(&job) {
        assert!(args["existing_cluster_id"].is_null() || args["existing_cluster_id"] == "", "Airflow {version}: {args}");
        let c = &args["new_cluster"];
        assert_eq!(c["spark_version"], "16.4.x-scala2.12", "Airflow {version}: an LTS runtime: {args}");
        assert_eq!(c["num_workers"], 1);
        assert_eq!(c["aws_attributes"]["instance_profile_arn"], "arn:aws:iam::123456789012:instance-profile/pinterest-databricks");
    }
    let mut serverless = config();
    serverless.set("databricks.compute", "serverless").unwrap();
    for (version, _, args) in loaded_tasks(&serverless) {
        // Serverless jobs compute: a run that names no cluster at all.
        assert!(
            args["new_cluster"].is_null() && (args["existing_cluster_id"].is_null() || args["existing_cluster_id"] == ""),
            "Airflow {version}: {args}"
        );
        assert_eq!(args["notebook_task"]["notebook_path"], "/Workspace/Users/me/batch_notebook");
    }
}

/// The check itself can fail: a DAG file that does not import is reported.
#[test]
fn a_dag_that_does_not_import_is_reported() {
    let python = common::python_from_env(AIRFLOWS[0].1);
    let bag = load_dags(&python, &[("broken_dag.py", "from airflow import DAG\nfrom airflow.nope import Missing\n")]);
    let errors = bag["import_errors"].as_object().unwrap();
    assert_eq!(errors.len(), 1, "{bag}");
    assert!(errors.values().next().unwrap().as_str().unwrap().contains("airflow.nope"), "{bag}");
}

#[test]
fn the_dag_needs_its_notebook_and_cluster_and_says_so() {
    let mut config = PipelineConfig::for_uid("0e2a0bfcc015");
    let err = templates::render::render_all(&templates::Templates::new(), &config).unwrap_err().to_string();
    assert!(err.contains("databricks.notebook_path") && !err.contains("databricks.cluster_id"), "{err}");
    config.set("databricks.compute", "existing_cluster").unwrap();
    let err = templates::render::render_all(&templates::Templates::new(), &config).unwrap_err().to_string();
    assert!(err.contains("databricks.cluster_id") && err.contains("databricks.notebook_path"), "{err}");
    assert!(err.contains("kafka.client_role_arn") && err.contains("kafka.bootstrap_servers"), "{err}");
}

/// Every file under `dir`, relative path and bytes.
fn files_under(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// The local DAG, run by the real Airflow (`airflow dags test`, a whole DAG
/// run in one process), writes for its run date what `pipeline batch`
/// writes when run by hand.
#[test]
fn the_local_dag_runs_pipeline_batch_for_the_run_date() {
    let dir = tempfile::tempdir().unwrap();
    let uid = "0e2a0bfcc015";
    let bin = common::pipeline_bin();
    let sink = dir.path().join("sink");
    let generate = Command::new(&bin)
        .args(["generate", "--uid", uid, "--count", "300", "--seed", "3", "--flush-size", "100", "--output"])
        .arg(&sink)
        .output()
        .unwrap();
    assert!(generate.status.success(), "{}", String::from_utf8_lossy(&generate.stderr));

    let mut config = PipelineConfig::for_uid(uid);
    config.set("local_airflow.pipeline_bin", bin.to_str().unwrap()).unwrap();
    config.set("local_airflow.input", sink.to_str().unwrap()).unwrap();
    config.set("local_airflow.results_dir", dir.path().join("results").to_str().unwrap()).unwrap();
    let dag = templates::render::render_one(&templates::Templates::new(), &config, "airflow/local_dag.py").unwrap();
    let file_name = templates::render::local_dag_path(uid).rsplit('/').next().unwrap().to_string();
    assert_eq!(file_name, format!("{uid}_local_dag.py"));

    // It imports where MWAA's Airflow would load it, too.
    let bag = load_dags(&common::python_from_env("PIPELINE_AIRFLOW2_PYTHON"), &[(&file_name, &dag)]);
    assert_eq!(bag["import_errors"], serde_json::json!({}), "Airflow 2.10: {bag}");
    assert_eq!(bag["dags"][format!("{uid}_local_dag")]["max_active_runs"], 1, "{bag}");

    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    std::fs::write(dags.join(&file_name), &dag).unwrap();
    let airflow = common::python_from_env("PIPELINE_AIRFLOW3_PYTHON").parent().unwrap().join("airflow");
    let run_airflow = |args: &[&str]| {
        let out = Command::new(&airflow)
            .args(args)
            .env("AIRFLOW_HOME", dir.path().join("airflow-home"))
            .env("AIRFLOW__CORE__DAGS_FOLDER", &dags)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "airflow {}:\n{}", args.join(" "), text.lines().rev().take(60).collect::<Vec<_>>().join("\n"));
        text
    };
    run_airflow(&["db", "migrate"]);
    let log = run_airflow(&["dags", "test", &format!("{uid}_local_dag"), "2026-12-05"]);

    let by_airflow = dir.path().join("results/2026-12-05");
    assert!(by_airflow.is_dir(), "the run wrote no folder of its date:\n{log}");
    let by_hand = dir.path().join("by-hand");
    let batch = Command::new(&bin)
        .args(["batch", "--uid", uid, "--print", "none", "--strict", "--input"])
        .arg(&sink)
        .arg("--output")
        .arg(&by_hand)
        .output()
        .unwrap();
    assert!(batch.status.success(), "{}", String::from_utf8_lossy(&batch.stderr));
    let (a, b) = (files_under(&by_airflow), files_under(&by_hand));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "the same files");
    assert!(a.len() > 10, "{:?}", a.keys());
    for (name, bytes) in &a {
        if name.ends_with(".parquet") {
            // Same rows; a table without ORDER BY may come in either order.
            let (x, y) = (common::wild::table_rows(&parquet_batches(bytes)), common::wild::table_rows(&parquet_batches(&b[name])));
            assert!(!x.is_empty(), "{name} is empty");
            common::wild::assert_same_rows(&format!("{name}, the DAG's run against pipeline batch's"), &x, &y);
        } else {
            assert!(bytes == &b[name], "{name} differs between the DAG's run and pipeline batch's");
        }
    }
}

fn parquet_batches(bytes: &[u8]) -> Vec<datafusion::arrow::record_batch::RecordBatch> {
    let reader = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
        .unwrap()
        .build()
        .unwrap();
    reader.map(Result::unwrap).collect()
}

/// The DAG's task, run by the real Airflow and Databricks provider
/// (`dag.test()`, Airflow 3 and MWAA's 2.10) against a local server that
/// records what it is sent: the Jobs API request is exactly this one, with
/// the run's date filled in.
#[test]
fn the_dag_task_submits_exactly_this_jobs_api_request() {
    let uid = "0e2a0bfcc015";
    let mut config = PipelineConfig::for_uid(uid);
    config.set("databricks.notebook_path", "/Workspace/Shared/pinterest/batch_notebook").unwrap();
    config.set("airflow.retries", "0").unwrap();
    let files = templates::render::dag_files(&templates::Templates::new(), &config).unwrap();
    let dag_path = templates::render::dag_path(uid);
    let dag = &files.iter().find(|f| f.path == dag_path).unwrap().contents;
    // The provider writes every number as a string (its
    // normalise_json_content); the Jobs API takes them so.
    let want = serde_json::json!({
        "run_name": format!("pinterest-batch-{uid}"),
        "new_cluster": {"spark_version": "16.4.x-scala2.12", "node_type_id": "m5d.large", "num_workers": "1"},
        "notebook_task": {
            "notebook_path": "/Workspace/Shared/pinterest/batch_notebook",
            "source": "WORKSPACE",
            "base_parameters": {"source": format!("s3a://user-{uid}-bucket"), "output": format!("pinterest_{uid}"), "run_date": "2026-12-05"},
        },
        "timeout_seconds": "7200",
    });
    for (version, var) in AIRFLOWS {
        let python = common::python_from_env(var);
        let dir = tempfile::tempdir().unwrap();
        let dags = dir.path().join("dags");
        std::fs::create_dir_all(&dags).unwrap();
        std::fs::write(dags.join(dag_path.rsplit('/').next().unwrap()), dag).unwrap();
        let airflow_env = |cmd: &mut Command| {
            cmd.env("AIRFLOW_HOME", dir.path().join("airflow-home"))
                .env("AIRFLOW__CORE__DAGS_FOLDER", &dags)
                .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False");
        };
        let mut migrate = Command::new(python.parent().unwrap().join("airflow"));
        migrate.args(["db", "migrate"]);
        airflow_env(&mut migrate);
        let out = migrate.output().unwrap();
        assert!(out.status.success(), "Airflow {version}: db migrate: {}", String::from_utf8_lossy(&out.stderr));
        let captured = dir.path().join("requests.json");
        let mut run = Command::new(&python);
        run.arg(common::tests_dir().join("python/dag_jobs_api_capture.py"))
            .arg(&dags)
            .arg(format!("{uid}_dag"))
            .arg("2026-12-05")
            .arg(&captured);
        airflow_env(&mut run);
        let out = run.output().unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "Airflow {version}: dag.test():\n{}", log.lines().rev().take(60).collect::<Vec<_>>().join("\n"));
        let captured: Value = serde_json::from_str(&std::fs::read_to_string(&captured).unwrap()).unwrap();
        assert!(captured["state"].as_str().unwrap().ends_with("success"), "Airflow {version}: {captured}\n{log}");
        let requests = captured["requests"].as_array().unwrap();
        let submits: Vec<&Value> =
            requests.iter().filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/jobs/runs/submit")).collect();
        assert_eq!(submits.len(), 1, "Airflow {version}: one run submitted: {requests:?}");
        assert_eq!(submits[0]["body"], want, "Airflow {version}: the Jobs API request");
        assert!(
            requests
                .iter()
                .any(|r| r["path"].as_str().unwrap().ends_with("/jobs/runs/get") && r["query"].as_str().unwrap().contains("run_id=4242")),
            "Airflow {version}: the task waited on its run: {requests:?}"
        );
    }
}
