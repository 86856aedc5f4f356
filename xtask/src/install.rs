//! Installing what the project needs on a fresh machine: system packages
//! (via apt-get when running as root), the Kafka jars (via Maven from
//! Maven Central) and Python virtual environments (via pip from PyPI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::paths;

/// Apache Kafka release run by the local stack (KRaft mode).
pub const KAFKA_VERSION: &str = "3.9.1";
/// moto server release range for the local AWS APIs.
pub const MOTO_REQUIREMENT: &str = "moto[server]>=5.2,<5.3";
/// LocalStack, the second local AWS (`local up --localstack`), without
/// Docker. Its current dependencies need these pins to import: cbor2 6 and
/// pyOpenSSL 26 break it, its TLS set-up needs cryptography 45.0.1 or newer
/// and service-identity.
pub const LOCALSTACK_REQUIREMENTS: &[&str] =
    &["localstack-core[runtime]==2026.3.0", "cbor2<6", "pyopenssl<26", "cryptography>=45.0.1", "service-identity"];

fn has_command(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn succeeds(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn java_major() -> Option<u32> {
    let out = Command::new("java").arg("-version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let quoted = text.split('"').nth(1)?;
    quoted.split('.').next()?.parse().ok()
}

/// One system requirement and the Debian package that provides it.
struct Requirement {
    what: &'static str,
    package: &'static str,
    present: fn() -> bool,
}

const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        what: "Java 17 or newer (runs the Kafka broker)",
        package: "openjdk-17-jre-headless",
        present: || java_major().is_some_and(|v| v >= 17),
    },
    Requirement { what: "Maven (fetches the Kafka jars)", package: "maven", present: || has_command("mvn") },
    Requirement {
        what: "python3 with venv (runs moto)",
        package: "python3-venv",
        present: || succeeds("python3", &["-m", "venv", "--help"]),
    },
    Requirement { what: "cmake (builds librdkafka)", package: "cmake", present: || has_command("cmake") },
    Requirement { what: "a C++ compiler (builds librdkafka)", package: "g++", present: || has_command("c++") },
    Requirement { what: "make", package: "make", present: || has_command("make") },
    Requirement { what: "pkg-config", package: "pkg-config", present: || has_command("pkg-config") },
    Requirement { what: "MariaDB server (holds the emulator's source tables)", package: "mariadb-server", present: || mariadbd().is_ok() },
    Requirement {
        what: "OpenSSL headers (librdkafka's TLS, which MSK's listeners need)",
        package: "libssl-dev",
        present: || succeeds("pkg-config", &["--exists", "openssl"]),
    },
    Requirement {
        what: "libcurl headers (librdkafka includes curl.h)",
        package: "libcurl4-openssl-dev",
        present: || succeeds("pkg-config", &["--exists", "libcurl"]),
    },
];

/// The MariaDB server binary: in /usr/sbin, which a non-root PATH may lack.
pub fn mariadbd() -> Result<PathBuf> {
    if has_command("mariadbd") {
        return Ok(PathBuf::from("mariadbd"));
    }
    let sbin = PathBuf::from("/usr/sbin/mariadbd");
    if sbin.exists() {
        return Ok(sbin);
    }
    bail!("mariadbd not found; install Debian's mariadb-server (sudo apt-get install -y mariadb-server)")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Only LocalStack needs these: its Kinesis runs on Node.js (an npm package
/// it installs on first use), and it wants Python 3.13.
const LOCALSTACK_SYSTEM_REQUIREMENTS: &[Requirement] = &[
    Requirement { what: "Node.js (runs LocalStack's Kinesis)", package: "nodejs", present: || has_command("node") },
    Requirement { what: "npm (installs LocalStack's Kinesis)", package: "npm", present: || has_command("npm") },
];

/// [`ensure_system_packages`] plus what LocalStack needs.
pub fn ensure_localstack_packages() -> Result<()> {
    ensure_packages(REQUIREMENTS)?;
    ensure_packages(LOCALSTACK_SYSTEM_REQUIREMENTS)
}

/// Only the tests need this: the batch report is checked in a real browser.
const TEST_REQUIREMENTS: &[Requirement] = &[
    Requirement { what: "Chromium (loads the batch report, headless)", package: "chromium", present: || has_command("chromium") },
    Requirement { what: "shellcheck (checks the rendered user-data)", package: "shellcheck", present: || has_command("shellcheck") },
    Requirement { what: "systemd-analyze (verifies the rendered units)", package: "systemd", present: || has_command("systemd-analyze") },
];

/// The MSK IAM test broker's token verifier is compiled on first start;
/// its TLS listener's certificate is made with openssl and its CA put in
/// the system trust store.
const MSK_IAM_REQUIREMENTS: &[Requirement] = &[
    Requirement {
        what: "a JDK's javac (compiles the MSK IAM test broker's token verifier)",
        package: "openjdk-17-jdk-headless",
        present: || has_command("javac"),
    },
    Requirement { what: "openssl (makes the MSK IAM test broker's certificate)", package: "openssl", present: || has_command("openssl") },
    Requirement {
        what: "the system trust store (holds the MSK IAM test broker's CA)",
        package: "ca-certificates",
        present: || has_command("update-ca-certificates") || Path::new("/usr/sbin/update-ca-certificates").exists(),
    },
];

/// [`ensure_system_packages`] plus what the MSK IAM test broker needs.
pub fn ensure_msk_iam_packages() -> Result<()> {
    ensure_packages(REQUIREMENTS)?;
    ensure_packages(MSK_IAM_REQUIREMENTS)
}

/// What `cargo xtask test` needs: the system packages, LocalStack's, the
/// MSK IAM broker's and the browser.
pub fn ensure_test_packages() -> Result<()> {
    ensure_localstack_packages()?;
    ensure_packages(MSK_IAM_REQUIREMENTS)?;
    ensure_packages(TEST_REQUIREMENTS)
}

/// A Python 3.13 interpreter: `python3.13` or `python3` on PATH when it is
/// 3.13 (Debian 13), else one of pyenv's.
pub fn python313() -> Result<PathBuf> {
    let is_313 = |cmd: &Path| {
        Command::new(cmd)
            .args(["-c", "import sys; assert sys.version_info[:2] == (3, 13); import venv"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    for cmd in ["python3.13", "python3"] {
        if is_313(Path::new(cmd)) {
            return Ok(PathBuf::from(cmd));
        }
    }
    let pyenv_root =
        std::env::var_os("PYENV_ROOT").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    if let Some(root) = pyenv_root
        && let Ok(entries) = std::fs::read_dir(root.join("versions"))
    {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("3.13"))
            .map(|e| e.path().join("bin/python3.13"))
            .filter(|p| is_313(p))
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return Ok(p);
        }
    }
    bail!(
        "LocalStack needs Python 3.13 and none was found (tried python3.13, python3 and pyenv's versions): \
         install it (Debian 13: sudo apt-get install -y python3 python3-venv; elsewhere: pyenv install 3.13) and run again"
    )
}

/// Only the benchmarks need these: kept out of the test path.
const BENCH_REQUIREMENTS: &[Requirement] =
    &[Requirement { what: "wrk (drives the ingest server from outside our process)", package: "wrk", present: || has_command("wrk") }];

/// Make sure the system packages are there; install the missing ones with
/// apt-get when we may, otherwise say exactly what to run.
pub fn ensure_system_packages() -> Result<()> {
    ensure_packages(REQUIREMENTS)
}

/// [`ensure_system_packages`] plus what the benchmarks need.
pub fn ensure_bench_packages() -> Result<()> {
    ensure_packages(REQUIREMENTS)?;
    ensure_packages(BENCH_REQUIREMENTS)
}

fn ensure_packages(requirements: &[Requirement]) -> Result<()> {
    let missing: Vec<&Requirement> = requirements.iter().filter(|r| !(r.present)()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|r| r.package).collect();
    for r in &missing {
        eprintln!("missing: {} (Debian package {})", r.what, r.package);
    }
    if !(has_command("apt-get") && is_root()) {
        bail!("install the missing packages first, e.g.: sudo apt-get install -y {}", packages.join(" "));
    }
    eprintln!("installing with apt-get: {}", packages.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq")).context("apt-get update")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("apt-get install")?;
    let still: Vec<&str> = requirements.iter().filter(|r| !(r.present)()).map(|r| r.what).collect();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(", "));
    }
    Ok(())
}

/// Run a command with inherited output; fail with its exit status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Run a command with its output captured into a log file; on failure,
/// show the end of the log.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    std::fs::create_dir_all(log.parent().expect("log files live in a directory"))?;
    let file = std::fs::File::create(log)?;
    let status =
        cmd.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}; end of {}:\n{}", log.display(), tail(log, 30));
    }
    Ok(())
}

/// Last lines of a file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Directory holding the Kafka broker's jars, fetched from Maven Central
/// on first use.
pub fn kafka_libs() -> Result<PathBuf> {
    let dir = paths::cache_dir().join(format!("kafka-{KAFKA_VERSION}"));
    let libs = dir.join("libs");
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(libs);
    }
    eprintln!("fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once)...");
    std::fs::create_dir_all(&dir)?;
    let pom = format!(
        r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.pipeline</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
"#
    );
    std::fs::write(dir.join("pom.xml"), pom)?;
    let _ = std::fs::remove_dir_all(&libs);
    run_logged(
        Command::new("mvn")
            .current_dir(&dir)
            .args(["-B", "-q", "dependency:copy-dependencies", "-DincludeScope=runtime"])
            .arg(format!("-DoutputDirectory={}", libs.display())),
        &paths::log_dir().join("kafka-fetch.log"),
    )
    .context("fetching the Kafka jars with Maven")?;
    std::fs::write(&done, KAFKA_VERSION)?;
    Ok(libs)
}

/// PySpark, the oracle of the batch SQL and the batch benchmark's peer: the
/// newest Spark a released delta-spark supports (4.4.0 wants <= 4.2.0), with
/// the Spark Connect client (the API of Databricks' serverless and standard
/// compute). PySpark 4.2 warns on pandas 3.
pub const PYSPARK: &str = "pyspark[connect]==4.2.0";
/// The pyspark venv, as the tests and the benchmarks both make it (one list,
/// or each would rebuild it for the other): delta-spark for the notebook's
/// Delta output, matplotlib draws its charts, as on Databricks.
pub const PYSPARK_VENV: &[&str] = &[PYSPARK, "delta-spark==4.4.0", "pandas==2.3.3", "matplotlib==3.11.2"];
/// Spark 3.5, the Spark of Databricks Runtime 15.4 and 16.4 LTS, with the
/// Delta release built for it.
pub const PYSPARK35_VENV: &[&str] = &["pyspark==3.5.9", "delta-spark==3.3.2", "matplotlib==3.11.2"];
/// Airflow 3 with the Databricks provider: the tests load and run the DAGs
/// in it, and `cargo xtask local airflow` runs the local one.
pub const AIRFLOW3_VENV: &[&str] = &["apache-airflow==3.3.2", "apache-airflow-providers-databricks==7.23.0"];
/// The Delta Lake jars for each venv's Spark, which a Spark Connect server
/// is started with (the client's pip delta-spark adds them only to a
/// session it starts itself).
pub const DELTA_SPARK_PACKAGE: &str = "io.delta:delta-spark_4.2_2.13:4.4.0";
/// Those of the Spark 3.5 venv, which the README's spark-submit line names.
pub const DELTA_SPARK35_PACKAGE: &str = "io.delta:delta-spark_2.12:3.3.2";

/// A Python virtual environment with the given requirements, created on
/// first use. Returns the venv's bin directory.
pub fn python_venv(name: &str, requirements: &[&str]) -> Result<PathBuf> {
    python_venv_with(Path::new("python3"), name, requirements)
}

/// [`python_venv`] made with the given interpreter.
pub fn python_venv_with(python: &Path, name: &str, requirements: &[&str]) -> Result<PathBuf> {
    let dir = paths::venv_dir(name);
    let bin = dir.join("bin");
    let marker = dir.join(".requirements");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == wanted) {
        return Ok(bin);
    }
    eprintln!("creating Python venv {} with {} (once)...", dir.display(), requirements.join(", "));
    let log = paths::log_dir().join(format!("venv-{name}.log"));
    run_logged(Command::new(python).args(["-m", "venv", "--clear"]).arg(&dir), &log)?;
    run_logged(Command::new(bin.join("pip")).args(["install", "--disable-pip-version-check", "-q"]).args(requirements), &log)
        .with_context(|| format!("installing {} from PyPI", requirements.join(", ")))?;
    std::fs::write(&marker, wanted)?;
    Ok(bin)
}
