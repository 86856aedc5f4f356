//! The portable `pipeline` binary for the client machine (Amazon Linux
//! 2023, x86_64): built with cargo-zigbuild against glibc 2.34, OpenSSL
//! compiled in (the `portable` feature), so that no symbol it needs is newer
//! than what that image has. cargo-zigbuild and Zig come from PyPI in their
//! own venv; nothing is taken from the machine but the C headers librdkafka
//! includes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{install, paths};

/// The target: x86_64 Linux, glibc symbols no newer than Amazon Linux 2023's.
pub const GLIBC: &str = "2.34";
const TARGET: &str = "x86_64-unknown-linux-gnu";
const ZIGBUILD_REQUIREMENTS: &[&str] = &["cargo-zigbuild==0.24.0", "ziglang==0.17.0"];

/// librdkafka includes curl.h whatever its settings; Zig's sysroot has no
/// system headers, so only curl's are offered to it (from
/// libcurl4-openssl-dev, already installed for the host build).
fn curl_include_dir() -> Result<PathBuf> {
    let dir = paths::local_dir().join("zigbuild/include");
    std::fs::create_dir_all(&dir)?;
    let link = dir.join("curl");
    if !link.join("curl.h").exists() {
        let found = ["/usr/include/x86_64-linux-gnu/curl", "/usr/include/curl"]
            .iter()
            .map(Path::new)
            .find(|d| d.join("curl.h").exists())
            .context("curl.h not found: install libcurl4-openssl-dev (sudo apt-get install -y libcurl4-openssl-dev)")?;
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(found, &link)?;
    }
    Ok(dir)
}

/// What the client machine runs, and so what its binary is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientParts {
    /// ingest, sink, topics and status: no DataFusion, no Delta.
    IngestAndSink,
    /// ... and `pipeline stream` (`ec2.stream_worker = true`).
    WithStream,
}

/// How the portable binary is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortableBuild {
    /// For `cargo xtask test`, which checks how it links (glibc symbols,
    /// libraries) and runs only its `--help`: nothing optimised, so it
    /// compiles fastest (the `portable-check` profile).
    LinkCheck,
    /// What provisioning uploads.
    Release,
}

impl PortableBuild {
    /// The cargo profile, and the folder its binaries land in.
    fn profile(self) -> &'static str {
        match self {
            PortableBuild::LinkCheck => "portable-check",
            PortableBuild::Release => "release",
        }
    }
}

/// Build it and return its path.
pub fn build_portable(build: PortableBuild, parts: ClientParts) -> Result<PathBuf> {
    let venv = install::python_venv("zigbuild", ZIGBUILD_REQUIREMENTS)?;
    let include = curl_include_dir()?;
    let path = format!("{}:{}", venv.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = paths::cargo_command();
    let features = match parts {
        ClientParts::IngestAndSink => "portable",
        ClientParts::WithStream => "portable,stream",
    };
    cmd.args(["zigbuild", "-p", "pipeline", "--bin", "pipeline", "--no-default-features", "--features", features, "--target"])
        .arg(format!("{TARGET}.{GLIBC}"))
        .env("PATH", path)
        .env(format!("CFLAGS_{}", TARGET.replace('-', "_")), format!("-I{}", include.display()));
    cmd.args(["--profile", build.profile()]);
    let first_build = match build {
        PortableBuild::LinkCheck => "about 7 minutes",
        PortableBuild::Release => "20-30 minutes",
    };
    eprintln!(
        "building the client machine's pipeline binary (glibc {GLIBC}, {} profile; a first build takes {first_build} on 2 cores)...",
        build.profile()
    );
    install::run(&mut cmd).context("building the portable pipeline binary")?;
    let bin = paths::target_dir().join(TARGET).join(build.profile()).join("pipeline");
    if !bin.exists() {
        bail!("cargo zigbuild finished but {} is missing", bin.display());
    }
    Ok(bin)
}

/// Whether `provision` with these arguments uploads the binary, and with
/// which parts: not for a dry run, a skipped client, data_path "original",
/// or a binary given.
pub fn provision_needs_binary(args: &[String]) -> Option<ClientParts> {
    if std::env::var_os("PIPELINE_CLIENT_BINARY").is_some() {
        return None;
    }
    let mut config_path = PathBuf::from("pipeline.toml");
    let (mut uid, mut sets) = (None, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            a.strip_prefix(&format!("{name}=")).map(str::to_string).or_else(|| (a == name).then(|| it.next().cloned()).flatten())
        };
        if a == "--dry-run" {
            return None;
        } else if let Some(v) = value("--skip") {
            if v.split(',').any(|c| c.trim() == "client") {
                return None;
            }
        } else if let Some(v) = value("--config") {
            config_path = v.into();
        } else if let Some(v) = value("--uid") {
            uid = Some(v);
        } else if let Some(v) = value("--set") {
            sets.push(v);
        }
    }
    let config = match uid {
        Some(uid) => Some(templates::config::PipelineConfig::for_uid(uid)),
        None => std::fs::read_to_string(paths::repo_root().join(&config_path))
            .ok()
            .and_then(|t| templates::config::PipelineConfig::from_toml(&t).ok()),
    };
    // No readable config: pipeline-infra says what is wrong with it.
    let mut config = config?;
    for s in sets {
        if let Some((k, v)) = s.split_once('=') {
            let _ = config.set(k, v);
        }
    }
    let ours = config.ec2.data_path == templates::config::DataPath::Pipeline && config.ec2.pipeline_binary.is_none();
    ours.then_some(if config.ec2.stream_worker { ClientParts::WithStream } else { ClientParts::IngestAndSink })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(args: &[&str]) -> Option<ClientParts> {
        provision_needs_binary(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn our_data_path_builds_the_client_binary_with_the_parts_it_runs() {
        if std::env::var_os("PIPELINE_CLIENT_BINARY").is_some() {
            return; // a binary given: nothing is built, whatever the arguments
        }
        assert_eq!(needs(&["--uid", "abc123"]), Some(ClientParts::IngestAndSink));
        assert_eq!(needs(&["--uid=abc123", "--set", "ec2.stream_worker=true"]), Some(ClientParts::WithStream));
        assert_eq!(needs(&["--uid", "abc123", "--dry-run"]), None, "a dry run uploads nothing");
        assert_eq!(needs(&["--uid", "abc123", "--skip", "msk,client"]), None);
        assert_eq!(needs(&["--uid", "abc123", "--set", "ec2.data_path=original"]), None, "the original stack runs no binary of ours");
    }
}
