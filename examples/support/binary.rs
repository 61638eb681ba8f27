//! The `concertina` binary and scratch databases for the benchmarks that run the real
//! binary end to end.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `concertina` binary of the same profile as the running example, built if needed.
pub fn concertina_binary() -> Result<PathBuf, Box<dyn std::error::Error + Send + Sync>> {
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/<example> → target/<profile>/concertina
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--bin", "concertina"]);
    if release {
        build.arg("--release");
    }
    let status = build.status()?;
    if !status.success() {
        return Err("building the concertina binary failed".into());
    }
    Ok(profile_dir.join(format!("concertina{}", std::env::consts::EXE_SUFFIX)))
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> Result<String, url::ParseError> {
    let mut parsed = url::Url::parse(url)?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}
