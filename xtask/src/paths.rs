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
