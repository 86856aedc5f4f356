//! The client machine's user-data and the systemd units it writes, checked
//! by the tools that run them rather than by reading: shellcheck for the
//! script (bash, as cloud-init runs it) and `systemd-analyze verify` for
//! every unit, for each data path. `cargo xtask test` installs both
//! (Debian's `shellcheck` and `systemd`).
//!
//! What stays unknown here: Amazon Linux 2023's own systemd version, and
//! whether the commands the units run behave on it.

use std::path::{Path, PathBuf};
use std::process::Command;

use templates::Templates;
use templates::config::PipelineConfig;

/// The rendered user-data of each data path, the stream worker on and off.
fn user_data_variants() -> Vec<(&'static str, String)> {
    let variants: [(&str, &[(&str, &str)]); 3] = [
        ("pipeline", &[]),
        ("pipeline with the stream worker", &[("ec2.stream_worker", "true")]),
        ("original", &[("ec2.data_path", "original")]),
    ];
    variants
        .into_iter()
        .map(|(name, settings)| {
            let mut config = PipelineConfig::for_uid("a-1b2c");
            config.set("kafka.bootstrap_servers", "b-1.example.kafka.us-east-1.amazonaws.com:9098").unwrap();
            config.set("kafka.client_role_arn", "arn:aws:iam::123456789012:role/x").unwrap();
            config.set("ec2.pipeline_binary_sha256", &"ab".repeat(32)).unwrap();
            for (k, v) in settings {
                config.set(k, v).unwrap();
            }
            let files = templates::render::provisioning_files(&Templates::new(), &config).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, files.user_data)
        })
        .collect()
}

/// The units a script writes with `cat > /etc/systemd/system/<name> <<MARK`,
/// as they land on the machine: an unquoted here-document is expanded by
/// bash with the script's own variable assignments, as cloud-init's run of
/// the script expands it.
fn units(script: &str) -> Vec<(String, String)> {
    let assignments: String = script
        .lines()
        .filter(|l| {
            l.split_once('=')
                .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = Vec::new();
    let mut lines = script.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.trim().strip_prefix("cat > /etc/systemd/system/") else { continue };
        let Some((name, marker)) = rest.split_once(" <<") else { continue };
        let quoted = marker.starts_with('\'');
        let marker = marker.trim_matches('\'');
        let body: String = lines.by_ref().take_while(|l| l.trim() != marker).map(|l| format!("{l}\n")).collect();
        let text = if quoted {
            body
        } else {
            let expand = format!("{assignments}cat <<{marker}\n{body}{marker}\n");
            let out = Command::new("bash").args(["-c", &expand]).output().expect("bash runs");
            assert!(out.status.success(), "expanding {name}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).expect("UTF-8 unit")
        };
        out.push((name.to_string(), text));
    }
    out
}

#[test]
fn user_data_passes_shellcheck() {
    let dir = tempfile::tempdir().unwrap();
    for (name, script) in user_data_variants() {
        let file = dir.path().join("user-data.sh");
        std::fs::write(&file, &script).unwrap();
        let out = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=warning", "--format=gcc"])
            .arg(&file)
            .output()
            .expect("shellcheck runs: `cargo xtask test` installs it");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "shellcheck on the {name} user-data:\n{report}");
    }
}

/// An executable of a unit's Exec line that this machine lacks is replaced
/// by a stand-in, so that verify checks the unit and not this machine.
fn with_local_executables(unit: &str, stubs: &Path) -> String {
    unit.lines()
        .map(|line| {
            let Some((key, command)) = line.split_once('=') else { return line.to_string() };
            if !key.starts_with("Exec") {
                return line.to_string();
            }
            let flags: String = command.chars().take_while(|c| "-@:+!".contains(*c)).collect();
            let rest = &command[flags.len()..];
            let program = rest.split_whitespace().next().unwrap_or_default();
            if !program.starts_with('/') || Path::new(program).exists() {
                return line.to_string();
            }
            let stub: PathBuf = stubs.join(Path::new(program).file_name().unwrap());
            std::fs::write(&stub, "#!/bin/sh\n").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            format!("{key}={flags}{}{}", stub.display(), &rest[program.len()..])
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    for (name, script) in user_data_variants() {
        let units = units(&script);
        assert!(!units.is_empty(), "the {name} user-data writes units");
        let dir = tempfile::tempdir().unwrap();
        let stubs = dir.path().join("bin");
        std::fs::create_dir_all(&stubs).unwrap();
        let mut files = Vec::new();
        for (unit, text) in &units {
            let file = dir.path().join(unit);
            std::fs::write(&file, with_local_executables(text, &stubs)).unwrap();
            files.push(file);
        }
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .args(&files)
            .output()
            .expect("systemd-analyze runs: `cargo xtask test` installs it");
        // Unknown keys are only warned about (exit 0), so any line fails.
        let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && report.trim().is_empty(), "systemd-analyze verify on the {name} units:\n{report}");
    }
}
