//! `cargo xtask local airflow`: a local Airflow 3 under `.local/airflow/`
//! running the local DAG (`pipeline batch` for each day) against the local
//! stack, as the original write-up ran Airflow on a laptop.
//!
//! Not `airflow standalone`: with the LocalExecutor it starts Airflow's log
//! server, which binds every interface (its host is not configurable), and
//! our servers listen on 127.0.0.1 only. So the four components start here
//! one by one: the API server on 127.0.0.1, and the scheduler and triggerer
//! with `--skip-serve-logs` (the API server reads task logs from the shared
//! folder instead).

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use templates::config::PipelineConfig;

use crate::stack::{self, Service};
use crate::{install, paths, pipeline_bin};

#[derive(Debug, clap::Args)]
pub struct AirflowArgs {
    /// Deployment user id of the DAG (the demo's data by default).
    #[arg(long, default_value = contract::DEFAULT_UID)]
    pub uid: String,
    /// Port of Airflow's UI and API, on 127.0.0.1.
    #[arg(long, default_value_t = 18080)]
    pub port: u16,
}

/// The Airflow components, each a process of its own (see the module doc).
const COMPONENTS: [(&str, &[&str]); 4] =
    [("api-server", &[]), ("scheduler", &["--skip-serve-logs"]), ("dag-processor", &[]), ("triggerer", &["--skip-serve-logs"])];

pub fn run(args: AirflowArgs) -> Result<()> {
    let names = contract::Names::new(&args.uid).map_err(anyhow::Error::msg)?;
    let bin = pipeline_bin::build_batch_path(pipeline_bin::Profile::Dev)?;
    let venv = install::python_venv("airflow3", install::AIRFLOW3_VENV)?;
    // The DAG reads the sink's bucket on moto, where `cargo xtask demo` wrote.
    stack::up_services(&[Service::Moto])?;

    let dir = paths::local_dir().join("airflow");
    // DAGs in Airflow's default folder, so AIRFLOW_HOME alone finds them.
    let home = dir.join("home");
    let (dags, results) = (home.join("dags"), dir.join("results"));
    std::fs::create_dir_all(&dags)?;
    let mut config = PipelineConfig::for_uid(names.uid());
    for (var, value) in [
        ("local_airflow.pipeline_bin", bin.display().to_string()),
        ("local_airflow.aws_endpoint_url", stack::moto_endpoint()),
        ("local_airflow.results_dir", results.display().to_string()),
    ] {
        config.set(var, &value)?;
    }
    let dag = templates::render::render_one(&templates::Templates::new(), &config, "airflow/local_dag.py")?;
    let dag_file = dags.join(format!("{}_local_dag.py", names.uid()));
    std::fs::write(&dag_file, dag)?;

    let port = args.port.to_string();
    let env: Vec<(&str, String)> = vec![
        ("AIRFLOW_HOME", home.display().to_string()),
        ("AIRFLOW__CORE__DAGS_FOLDER", dags.display().to_string()),
        ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".into()),
        ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".into()),
        // A laptop's Airflow: everyone who can reach 127.0.0.1 is an admin.
        ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True".into()),
        ("AIRFLOW__API__HOST", "127.0.0.1".into()),
        ("AIRFLOW__API__PORT", port.clone()),
        ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", format!("http://127.0.0.1:{port}/execution/")),
    ];
    let airflow = venv.join("airflow");
    let logs = paths::log_dir();
    eprintln!("airflow: preparing its database under {} (once)...", home.display());
    install::run_logged(Command::new(&airflow).arg("db").arg("migrate").envs(env.iter().cloned()), &logs.join("airflow-db.log"))?;

    let mut children: Vec<(&str, Child)> = Vec::new();
    for (component, extra) in COMPONENTS {
        let log = logs.join(format!("airflow-{component}.log"));
        let mut cmd = Command::new(&airflow);
        cmd.arg(component).args(extra).envs(env.iter().cloned());
        if component == "api-server" {
            cmd.args(["--host", "127.0.0.1", "--port", &port]);
        }
        let child = cmd
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(logs.join(format!("airflow-{component}.err.log")))?)
            .spawn()
            .with_context(|| format!("starting airflow {component}"))?;
        children.push((component, child));
    }
    println!(
        "Airflow at http://127.0.0.1:{port} (no login: local admins), DAG {}_local_dag from {}.\n\
         It starts paused: unpause it there, or run one day now with\n  \
         AIRFLOW_HOME={} AIRFLOW__CORE__LOAD_EXAMPLES=False {} dags test {}_local_dag 2026-12-05\n\
         Results go to {}/<date>/; logs to {}/airflow-*.log. Ctrl-C stops Airflow.",
        names.uid(),
        dag_file.display(),
        home.display(),
        airflow.display(),
        names.uid(),
        results.display(),
        logs.display(),
    );
    // Ctrl-C reaches the components too (same process group); otherwise stop
    // all of them as soon as one ends.
    loop {
        for (component, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                let stopped = *component;
                for (_, other) in children.iter_mut() {
                    let _ = other.kill();
                    let _ = other.wait();
                }
                if status.success() {
                    return Ok(());
                }
                bail!("airflow {stopped} ended ({status}); see {}/airflow-{stopped}.err.log", logs.display());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
