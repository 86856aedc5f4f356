//! Where the project keeps its local state: everything under `.local/`
//! (git-ignored) in the repository.

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

pub fn local_dir() -> PathBuf {
    repo_root().join(".local")
}

pub fn cache_dir() -> PathBuf {
    local_dir().join("cache")
}

pub fn run_dir() -> PathBuf {
    local_dir().join("run")
}

pub fn log_dir() -> PathBuf {
    local_dir().join("logs")
}

pub fn venv_dir(name: &str) -> PathBuf {
    local_dir().join("venv").join(name)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// A `cargo` command for the workspace, without the package variables that
/// `cargo run` gave xtask itself: build scripts (ring's, for one) rerun
/// when CARGO_MANIFEST_DIR changes, so inheriting it would rebuild half the
/// dependency tree between `cargo xtask ...` and plain `cargo ...` runs.
pub fn cargo_command() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(repo_root());
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let from_cargo_run = name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            );
        if from_cargo_run {
            cmd.env_remove(name);
        }
    }
    if let Some(wrapper) = CLIPPY_WRAPPER.get() {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", wrapper);
    }
    cmd
}

/// Set by `cargo xtask test --clippy`: every cargo command after it compiles
/// the workspace's crates through this clippy wrapper.
pub static CLIPPY_WRAPPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
