//! Building and running the `pipeline` binary. xtask drives it as a
//! subprocess and prints each command, so a demo doubles as a how-to.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::install;
use crate::paths;

/// Which build of `pipeline` to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// The debug build the tests use (nothing optimised).
    Dev,
    /// Fully optimised: what benchmarks should measure.
    Release,
}

impl Profile {
    /// Where cargo puts this profile's binaries, under the target directory.
    fn target_subdir(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Release => "release",
        }
    }
}

/// Build every binary of the workspace (dev profile) and return the path of
/// `pipeline`: the tests' build, which covers the whole workspace so that
/// dependencies get the same features as under `cargo test --workspace` and
/// are not compiled twice.
pub fn build_for_tests() -> Result<PathBuf> {
    eprintln!("building the workspace's binaries (a first build takes about 12 minutes on 2 cores)...");
    install::run(paths::cargo_command().args(["build", "--workspace", "--bins"])).context("building the workspace")?;
    Ok(paths::target_dir().join(Profile::Dev.target_subdir()).join("pipeline"))
}

/// Build one binary of one package and return its path: for commands that
/// need only it (the deployment commands, the benchmarks), so that a first
/// run compiles what that binary links and nothing else.
pub fn build_one(package: &str, bin: &str, profile: Profile) -> Result<PathBuf> {
    build_with(package, bin, profile, &[])
}

/// `pipeline` with the batch path only (emulate, ingest, sink, batch; no
/// stream worker, so no Delta): what the demo runs, and a third less to
/// compile on a first run.
pub fn build_batch_path(profile: Profile) -> Result<PathBuf> {
    build_with("pipeline", "pipeline", profile, &["--no-default-features", "--features", "batch"])
}

fn build_with(package: &str, bin: &str, profile: Profile, extra: &[&str]) -> Result<PathBuf> {
    let mut cmd = paths::cargo_command();
    cmd.args(["build", "-p", package, "--bin", bin]).args(extra);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    eprintln!("building {bin} ({} profile; a first build compiles its dependencies, several minutes on 2 cores)...", profile.name());
    install::run(&mut cmd).with_context(|| format!("building {bin}"))?;
    Ok(paths::target_dir().join(profile.target_subdir()).join(bin))
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"200"
}

/// `pipeline ingest` on a free port of 127.0.0.1 with these extra
/// arguments, once its /healthz answers 200; returns it and its base URL.
pub fn start_ingest(
    bin: &std::path::Path,
    extra: &[String],
    env: &[(&str, String)],
    log: &std::path::Path,
) -> Result<(Background, String)> {
    let port = free_port()?;
    let args: Vec<String> =
        ["ingest".to_string(), "--listen".into(), format!("127.0.0.1:{port}")].into_iter().chain(extra.iter().cloned()).collect();
    let mut ingest = Background::spawn(bin, &args, env, log)?;
    let start = Instant::now();
    while !http_ok(port, "/healthz") {
        if let Some(status) = ingest.exited() {
            bail!("the ingest server exited ({status}); see {}", log.display());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the ingest server did not report healthy within 60s; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((ingest, format!("http://127.0.0.1:{port}")))
}
