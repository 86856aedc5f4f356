//! The rendered DAG imports under the real Airflow (3.x, and 2.10 as on
//! MWAA) and carries the settings of SPEC 6.

use crate::common;

use std::process::Command;

use serde_json::Value;
use templates::config::PipelineConfig;

const AIRFLOWS: [(&str, &str); 2] = [("3.x", "PIPELINE_AIRFLOW3_PYTHON"), ("2.10", "PIPELINE_AIRFLOW2_PYTHON")];

fn config() -> PipelineConfig {
    let mut c = PipelineConfig::for_uid("0e2a0bfcc015");
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

#[test]
fn rendered_dag_loads_in_airflow_with_the_spec_settings() {
    let config = config();
    let files = templates::render::dag_files(&templates::Templates::new(), &config).unwrap();
    let dag_path = templates::render::dag_path(&config.uid);
    let dag = files.iter().find(|f| f.path == dag_path).expect("the DAG is rendered");
    let file_name = dag_path.rsplit('/').next().unwrap();
    assert_eq!(file_name, "0e2a0bfcc015_dag.py");

    for (version, var) in AIRFLOWS {
        let python = common::python_from_env(var);
        let bag = load_dags(&python, &[(file_name, &dag.contents)]);
        assert_eq!(bag["import_errors"], serde_json::json!({}), "Airflow {version}: {bag}");
        let d = &bag["dags"]["0e2a0bfcc015_dag"];
        assert_eq!(d["schedule"], "@daily", "Airflow {version}");
        assert_eq!(d["catchup"], false);
        assert_eq!(d["is_paused_upon_creation"], true, "a new DAG appears paused");
        assert!(d["start_date"].as_str().unwrap().starts_with("2026-01-01"), "{d}");
        let tasks = d["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 1);
        let t = &tasks[0];
        assert_eq!(t["operator"], "DatabricksSubmitRunOperator");
        assert_eq!(t["owner"], "data-eng");
        assert_eq!(t["retries"], 2);
        assert_eq!(t["retry_delay_seconds"], 120.0);
        assert_eq!(t["databricks_conn_id"], "databricks_default");
        // Older providers fold the arguments into `json` at construction.
        let field = |name: &str| if t[name].is_null() { t["json"][name].clone() } else { t[name].clone() };
        assert_eq!(field("existing_cluster_id"), "1108-162752-8okw8dgg", "Airflow {version}: {t}");
        assert_eq!(field("notebook_task")["notebook_path"], "/Workspace/Users/me/batch_notebook");
        assert_eq!(field("notebook_task")["base_parameters"]["source"], "s3a://user-0e2a0bfcc015-bucket");
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
fn the_dag_needs_the_databricks_cluster_and_says_so() {
    let config = PipelineConfig::for_uid("0e2a0bfcc015");
    let err = templates::render::render_all(&templates::Templates::new(), &config).unwrap_err().to_string();
    assert!(err.contains("databricks.cluster_id") && err.contains("databricks.notebook_path"), "{err}");
    assert!(err.contains("kafka.client_role_arn") && err.contains("kafka.bootstrap_servers"), "{err}");
}
