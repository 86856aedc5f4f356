//! `cargo xtask test`: install what the tests need, bring up the local
//! stack, run every test of the workspace against it.

use anyhow::{Result, bail};

use crate::stack::{self, Service, UpOutcome};
use crate::{install, paths};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Leave services this command started running afterwards.
    #[arg(long)]
    pub keep_stack: bool,
    /// Compile the workspace's own crates with clippy's lints, warnings as
    /// errors, in the build the tests use (what CI does): a separate
    /// `cargo clippy` would compile every dependency a second time, in
    /// check mode. Dependencies are built as without it.
    #[arg(long)]
    pub clippy: bool,
    /// Extra arguments for `cargo test` (after --), e.g. a test name filter.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

/// Python tools the tests drive, each in a venv of its own (Airflow's pins
/// and PySpark's do not mix): environment variable naming its python, venv
/// name, requirements.
const PYTHON_TOOLS: [(&str, &str, &[&str]); 7] = [
    ("PIPELINE_PYSPARK_PYTHON", "pyspark", install::PYSPARK_VENV),
    ("PIPELINE_PYSPARK35_PYTHON", "pyspark35", install::PYSPARK35_VENV),
    ("PIPELINE_AIRFLOW3_PYTHON", "airflow3", install::AIRFLOW3_VENV),
    // MWAA runs Airflow 2.10: the rendered DAG must import there too.
    ("PIPELINE_AIRFLOW2_PYTHON", "airflow2", &["apache-airflow==2.10.5", "apache-airflow-providers-databricks<7"]),
    // The AWS service models the provisioner's requests are checked
    // against (tests/python/aws_request_check.py).
    ("PIPELINE_AWSMODEL_PYTHON", "awsmodel", &["botocore==1.44.5", "regex==2026.11.15"]),
    // An IAM linter for every policy provision attaches (tests/python/iam_lint.py).
    ("PIPELINE_IAMLINT_PYTHON", "iamlint", &["parliament==1.6.4", "boto3==1.44.18"]),
    (
        "PIPELINE_CLIENTS_PYTHON",
        "clients",
        &["requests==2.34.2", "deltalake==1.6.6", "pyarrow==26.0.1", "aiohttp==3.14.5", "aws-msk-iam-sasl-signer-python==1.0.2"],
    ),
];

/// Install the venvs side by side (downloads dominate), and return the
/// environment that points the tests at them.
fn python_tools() -> Result<Vec<(&'static str, String)>> {
    std::thread::scope(|scope| {
        let jobs: Vec<_> =
            PYTHON_TOOLS.iter().map(|(var, name, reqs)| (*var, scope.spawn(move || install::python_venv(name, reqs)))).collect();
        jobs.into_iter()
            .map(|(var, job)| {
                let bin = job.join().expect("venv installer does not panic")?;
                Ok((var, bin.join("python").display().to_string()))
            })
            .collect()
    })
}

/// Test modules (of the one integration-test binary, `tests/tests/it/`)
/// that also run against LocalStack, the second local AWS: S3, Kinesis,
/// the stream path to Delta on S3, the DAG upload. The provisioning tests
/// have a LocalStack module of their own.
const LOCALSTACK_PASS: [&str; 3] = ["s3_moto::", "deploy_dag::", "stream_kinesis::"];

/// The second pass's arguments: cargo's own options as given, then the
/// harness's flags as given, and as filters our modules, narrowed to the
/// user's filters that fall inside them. `None` when the user's filters
/// select nothing there.
fn localstack_pass_args(cargo_args: &[String]) -> Option<Vec<String>> {
    let split = cargo_args.iter().position(|a| a == "--").unwrap_or(cargo_args.len());
    let (cargo_opts, harness) = (&cargo_args[..split], cargo_args.get(split + 1..).unwrap_or_default());
    let flags: Vec<String> = harness.iter().filter(|a| a.starts_with('-')).cloned().collect();
    let user_filters: Vec<&String> = harness.iter().filter(|a| !a.starts_with('-')).collect();
    let filters: Vec<String> = if user_filters.is_empty() {
        LOCALSTACK_PASS.iter().map(|m| m.to_string()).collect()
    } else {
        user_filters.into_iter().filter(|f| LOCALSTACK_PASS.iter().any(|m| f.starts_with(m))).cloned().collect()
    };
    if filters.is_empty() {
        return None;
    }
    let mut out: Vec<String> = ["test", "--workspace", "--no-fail-fast", "--test", "it"].map(String::from).to_vec();
    out.extend(cargo_opts.iter().cloned());
    out.push("--".into());
    out.extend(flags);
    out.extend(filters);
    Some(out)
}

pub fn run(args: TestArgs) -> Result<()> {
    install::ensure_test_packages()?;
    if args.clippy {
        crate::lint::clippy_in_builds()?;
    }
    // Venvs, jars and data directories come mostly from the network: they
    // are fetched while the workspace compiles.
    let installs = std::thread::spawn(|| -> Result<_> {
        let python = python_tools()?;
        stack::prepare(&Service::ALL)?;
        Ok(python)
    });
    // What provisioning ships to the client machine, checked for its glibc
    // symbols (unoptimised: the check is about linking, not speed). Without
    // the stream worker: DataFusion and Delta link the same glibc, and
    // leaving them out halves this build. It is built beside the host build
    // (its own target and profile directory, so no lock is shared): one
    // cargo alone kept 1.8 of the 2 cores busy on average (the demo build's
    // --timings), and the portable build waited for the host build's last
    // links and then for its own venv download.
    let portable = std::thread::spawn(|| {
        crate::client_bin::build_portable(crate::client_bin::PortableBuild::LinkCheck, crate::client_bin::ClientParts::IngestAndSink)
    });
    // Some tests run the binary as a process (to kill -9 it); the dev build
    // shares its artifacts with `cargo test --workspace`.
    let bin = crate::pipeline_bin::build_for_tests();
    // Joined before either error is returned, so no build is left running.
    let portable = portable.join().expect("the portable build thread does not panic");
    let (bin, portable) = (bin?, portable?);
    let python = installs.join().expect("the installer thread does not panic")?;
    let outcomes = stack::up_services(&Service::ALL)?;
    let started: Vec<Service> = outcomes.iter().filter(|(_, o)| *o == UpOutcome::Started).map(|(s, _)| *s).collect();

    // Fault-scenario tests append a row each to the pass's report file; its
    // table is printed after the pass.
    std::fs::create_dir_all(paths::log_dir())?;
    let test_command = |report: &std::path::Path| {
        let _ = std::fs::remove_file(report);
        let mut cmd = paths::cargo_command();
        cmd.envs(stack::client_env())
            .envs(python.clone())
            .env("PIPELINE_BIN", &bin)
            .env("PIPELINE_PORTABLE_BIN", &portable)
            .env("PIPELINE_SCENARIO_REPORT", report)
            .env("PIPELINE_LOCALSTACK_ENDPOINT", stack::localstack_endpoint())
            .env("PIPELINE_MSK_IAM_BOOTSTRAP", stack::msk_iam_bootstrap())
            .env("PIPELINE_MSK_IAM_TLS_BOOTSTRAP", stack::msk_iam_tls_bootstrap())
            .env("PIPELINE_MSK_IAM_ACCESS_KEY_ID", stack::MSK_IAM_ACCESS_KEY_ID)
            .env("PIPELINE_MSK_IAM_SECRET_ACCESS_KEY", stack::MSK_IAM_SECRET_ACCESS_KEY)
            .env("PIPELINE_MSK_IAM_REGION", stack::MSK_IAM_REGION)
            .env("PIPELINE_MSK_IAM_ACCOUNT", stack::MSK_IAM_ACCOUNT)
            .env("PIPELINE_MSK_IAM_CLUSTER_UID", stack::MSK_IAM_CLUSTER_UID)
            .env("PIPELINE_MSK_IAM_POLICY_DIR", stack::msk_iam_policy_dir())
            .env("PIPELINE_CHROMIUM", "chromium")
            // The batch notebook's Spark runs fetch Delta's jars once, here.
            .env("PIPELINE_SPARK_IVY_DIR", paths::cache_dir().join("ivy"))
            .env("PIPELINE_DELTA_SPARK_PACKAGE", install::DELTA_SPARK_PACKAGE)
            .env("PIPELINE_DELTA_SPARK35_PACKAGE", install::DELTA_SPARK35_PACKAGE)
            // Tests want an answer, not the SDK's retries against a local server.
            .env("AWS_MAX_ATTEMPTS", "1");
        cmd
    };
    let scenarios = paths::log_dir().join("test-scenarios.jsonl");
    let status = test_command(&scenarios).args(["test", "--workspace", "--no-fail-fast"]).args(&args.cargo_args).status()?;
    print_scenarios(&scenarios, "fault scenarios:");

    // The same AWS-facing tests once more, with LocalStack as the AWS. A
    // filter given after `--` applies to this pass too.
    let localstack_status = match localstack_pass_args(&args.cargo_args) {
        None => None,
        Some(pass_args) => {
            let scenarios = paths::log_dir().join("test-scenarios-localstack.jsonl");
            eprintln!("\nthe AWS-facing tests again, against LocalStack at {}:", stack::localstack_endpoint());
            let status = test_command(&scenarios).args(pass_args).env("AWS_ENDPOINT_URL", stack::localstack_endpoint()).status()?;
            print_scenarios(&scenarios, "fault scenarios against LocalStack:");
            Some(status)
        }
    };

    if !args.keep_stack && !started.is_empty() {
        stack::down(&started)?;
    }
    if !status.success() {
        bail!("tests failed ({status})");
    }
    if let Some(status) = localstack_status
        && !status.success()
    {
        bail!("tests against LocalStack failed ({status})");
    }
    Ok(())
}

/// The fault scenarios' summary: records sent, acknowledged, stored, lost,
/// duplicated, one row per scenario that ran.
fn print_scenarios(path: &std::path::Path, title: &str) {
    let Ok(text) = std::fs::read_to_string(path) else { return };
    let rows: Vec<serde_json::Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if rows.is_empty() {
        return;
    }
    println!("\n{title}");
    println!(
        "{:<54} {:>6} {:>12} {:>7} {:>5} {:>10} {:>13}",
        "scenario", "sent", "acknowledged", "stored", "lost", "duplicated", "good p99 (ms)"
    );
    for r in rows {
        // Only scenarios with a well-behaved client beside the abuse have one.
        let p99 = r["good_p99_ms"].as_u64().map_or_else(|| "-".to_string(), |ms| ms.to_string());
        println!(
            "{:<54} {:>6} {:>12} {:>7} {:>5} {:>10} {:>13}",
            r["scenario"].as_str().unwrap_or("?"),
            // As numbers: a JSON value's Display ignores the width.
            r["sent"].as_u64().unwrap_or_default(),
            r["acknowledged"].as_u64().unwrap_or_default(),
            r["stored"].as_u64().unwrap_or_default(),
            r["lost"].as_u64().unwrap_or_default(),
            r["duplicated"].as_u64().unwrap_or_default(),
            p99
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_localstack_pass_keeps_flags_and_only_the_filters_inside_its_modules() {
        let all = localstack_pass_args(&[]).unwrap();
        assert_eq!(all[all.len() - 3..], args("s3_moto:: deploy_dag:: stream_kinesis::"));
        let narrowed = localstack_pass_args(&args("--release -- --nocapture stream_kinesis::delta ingest_")).unwrap();
        assert_eq!(narrowed, args("test --workspace --no-fail-fast --test it --release -- --nocapture stream_kinesis::delta"));
        assert_eq!(localstack_pass_args(&args("-- ingest_rest_proxy::")), None);
    }
}
