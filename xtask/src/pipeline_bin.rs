//! Building and running the `pipeline` binary. xtask drives it as a
//! subprocess and prints each command, so a demo doubles as a how-to.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use crate::install;
use crate::paths;

/// Which build of `pipeline` to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The debug build the tests use (dependencies at opt-level 1).
    Dev,
    /// Fully optimised: what benchmarks should measure.
    Release,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Release => "release",
        }
    }
}

/// Build `pipeline` and return its path. The dev build covers the whole
/// workspace so dependencies get the same features as under `cargo test
/// --workspace` and are not compiled twice.
pub fn build(profile: Profile) -> Result<PathBuf> {
    let mut cmd = paths::cargo_command();
    let dir = match profile {
        Profile::Dev => {
            eprintln!("building the pipeline binary (a first build takes about 10 minutes on 2 cores)...");
            cmd.args(["build", "--workspace", "--bins"]);
            "debug"
        }
        Profile::Release => {
            eprintln!("building the pipeline binary, release (a first build takes 15-20 minutes on 2 cores)...");
            cmd.args(["build", "--release", "-p", "pipeline", "--bin", "pipeline"]);
            "release"
        }
    };
    install::run(&mut cmd).context("building pipeline")?;
    Ok(paths::target_dir().join(dir).join("pipeline"))
}

/// Build one binary of one package and return its path: for commands that
/// need only it (the demo, the deployment commands), so that a first run
/// compiles what that binary links and nothing else.
pub fn build_one(package: &str, bin: &str, profile: Profile) -> Result<PathBuf> {
    let mut cmd = paths::cargo_command();
    cmd.args(["build", "-p", package, "--bin", bin]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    eprintln!("building {bin} ({} profile; a first build compiles its dependencies, several minutes on 2 cores)...", profile.name());
    install::run(&mut cmd).with_context(|| format!("building {bin}"))?;
    let dir = if profile == Profile::Release { "release" } else { "debug" };
    Ok(paths::target_dir().join(dir).join(bin))
}

fn show(args: &[String]) {
    eprintln!("\n$ pipeline {}", args.join(" "));
}

/// Run to completion with inherited output.
pub fn run(bin: &std::path::Path, args: &[String], env: &[(&str, String)]) -> Result<()> {
    show(args);
    install::run(Command::new(bin).args(args).envs(env.iter().map(|(k, v)| (*k, v.as_str()))))
}

/// A background `pipeline` process, stopped (SIGTERM) when dropped.
pub struct Background {
    child: Child,
}

impl Background {
    pub fn spawn(bin: &std::path::Path, args: &[String], env: &[(&str, String)], log: &std::path::Path) -> Result<Self> {
        show(args);
        std::fs::create_dir_all(log.parent().expect("logs live in a directory"))?;
        let file = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Self { child })
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
