//! `cargo xtask lint`: the fast tier CI runs before the stack starts. Format,
//! clippy, and the architecture invariants of docs/ARCHITECTURE.md, each a
//! `cargo tree` question about what a crate links.

use anyhow::{Context, Result, bail};

use crate::{install, paths};

/// A crate that must not link another, and why.
struct Invariant {
    krate: &'static str,
    must_not_link: &'static [&'static str],
    why: &'static str,
}

/// The provisioning SDKs: only `infra` (and the tests) may link them.
const PROVISIONING_SDKS: &[&str] = &[
    "aws-sdk-ec2",
    "aws-sdk-iam",
    "aws-sdk-kafka",
    "aws-sdk-kafkaconnect",
    "aws-sdk-apigateway",
    "aws-sdk-mwaa",
    "aws-sdk-resourcegroupstagging",
    "aws-sdk-secretsmanager",
];

const INVARIANTS: &[Invariant] = &[
    Invariant {
        krate: "xtask",
        must_not_link: &["rdkafka", "datafusion", "deltalake-core", "aws-config", "tokio"],
        why: "xtask builds in seconds on a fresh machine and drives the heavy binaries as processes",
    },
    Invariant { krate: "pipeline", must_not_link: PROVISIONING_SDKS, why: "the data path links no provisioning SDK" },
    Invariant { krate: "pipeline", must_not_link: &["bench"], why: "benchmarks live outside the product crates" },
    Invariant {
        krate: "pipeline-ingest",
        must_not_link: &["datafusion", "deltalake-core", "object_store", "mysql_async", "pipeline-sink", "pipeline-batch"],
        why: "the server that takes the data in links Kafka, Kinesis and HTTP only",
    },
    Invariant {
        krate: "pipeline-sink",
        must_not_link: &["datafusion", "deltalake-core", "aws-sdk-kinesis", "pipeline-ingest", "pipeline-batch"],
        why: "the sink moves bytes from Kafka to objects and runs no engine",
    },
    Invariant {
        krate: "pipeline-batch",
        must_not_link: &["rdkafka", "aws-sdk-kinesis", "deltalake-core", "pipeline-sink", "pipeline-stream"],
        why: "the batch job reads objects only",
    },
    Invariant {
        krate: "pipeline-stream",
        must_not_link: &["rdkafka", "pipeline-ingest", "pipeline-sink"],
        why: "the stream path never touches Kafka",
    },
    Invariant {
        krate: "pipeline-emulate",
        must_not_link: &["rdkafka", "datafusion", "aws-config", "pipeline-ingest", "pipeline-sink"],
        why: "the emulator is an HTTP client, like the original's",
    },
    Invariant {
        krate: "pipeline-kafka",
        must_not_link: &["datafusion", "object_store"],
        why: "ingest and the sink link the Kafka settings",
    },
    Invariant {
        krate: "pipeline-runtime",
        must_not_link: &["rdkafka", "datafusion", "aws-config"],
        why: "every component links the shared runtime",
    },
    Invariant { krate: "infra", must_not_link: &["bench", "pipeline", "rdkafka", "datafusion"], why: "provisioning links no data path" },
    Invariant { krate: "aws-setup", must_not_link: PROVISIONING_SDKS, why: "the data path links the AWS set-up" },
    Invariant {
        krate: "templates",
        must_not_link: &["aws-config", "rdkafka", "datafusion", "tokio"],
        why: "rendering needs no runtime, no broker client and no engine",
    },
    Invariant {
        krate: "contract",
        must_not_link: &["tokio", "aws-config", "rdkafka", "datafusion", "tera"],
        why: "every crate links the contract, so it links only serde",
    },
];

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Only the architecture invariants (no fmt, no clippy): seconds, what
    /// CI runs before `cargo xtask test --clippy`.
    #[arg(long)]
    pub invariants_only: bool,
}

pub fn run(args: LintArgs) -> Result<()> {
    if !args.invariants_only {
        step("cargo fmt --all --check", &["fmt", "--all", "--check"])?;
        // Clippy builds librdkafka's C sources like any check does.
        install::ensure_system_packages()?;
        step("cargo clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    }
    let mut broken = Vec::new();
    for inv in INVARIANTS {
        for dep in inv.must_not_link {
            if let Some(path) = links(inv.krate, dep)? {
                broken.push(format!("{} links {dep} ({}):\n{path}", inv.krate, inv.why));
            }
        }
    }
    if !broken.is_empty() {
        bail!("architecture invariants broken (docs/ARCHITECTURE.md):\n{}", broken.join("\n"));
    }
    eprintln!("architecture invariants hold ({} checked)", INVARIANTS.len());
    Ok(())
}

/// The clippy lints of `cargo xtask lint`, compiled into the builds that
/// follow instead of a `cargo clippy` pass of their own. Cargo runs
/// `RUSTC_WORKSPACE_WRAPPER` for the workspace's crates only, so
/// dependencies keep their artifacts and are compiled once; a lint slip
/// fails the build of the crate that has it. The wrapper is what `cargo
/// clippy` itself sets, plus `-D warnings`.
pub fn clippy_in_builds() -> Result<()> {
    let probe = std::process::Command::new("clippy-driver").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        bail!("clippy-driver not found: install clippy (rustup component add clippy) and run again");
    }
    let wrapper = paths::local_dir().join("bin/rustc-with-clippy");
    std::fs::create_dir_all(wrapper.parent().expect("has a parent"))?;
    let script = "#!/bin/sh\n# Written by cargo xtask test --clippy.\nexec clippy-driver \"$@\" -D warnings\n";
    // Rewritten only when it differs: cargo re-asks the compiler for its
    // version whenever the wrapper's file changes.
    if std::fs::read_to_string(&wrapper).ok().as_deref() != Some(script) {
        std::fs::write(&wrapper, script)?;
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    eprintln!("clippy's lints (warnings are errors) are compiled into this build");
    let _ = paths::CLIPPY_WRAPPER.set(wrapper);
    Ok(())
}

fn step(what: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {what}");
    let status = paths::cargo_command().args(args).status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}); run it locally to see and fix what it found");
    }
    Ok(())
}

/// How `krate` reaches `dep` through normal (non-dev) dependencies, or None.
fn links(krate: &str, dep: &str) -> Result<Option<String>> {
    let out = paths::cargo_command()
        .args(["tree", "--quiet", "--package", krate, "--edges", "normal", "--invert", dep, "--prefix", "depth"])
        .output()
        .context("running cargo tree")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(Some(String::from_utf8_lossy(&out.stdout).lines().take(12).collect::<Vec<_>>().join("\n")));
    }
    // `cargo tree -i` fails this way when the package is not in the tree.
    if stderr.contains("did not match any packages") {
        return Ok(None);
    }
    bail!("cargo tree -p {krate} -i {dep} failed: {stderr}")
}
