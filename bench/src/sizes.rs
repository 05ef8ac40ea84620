//! Release sizes: the zipped arm64 `bootstrap` of each function as `cargo lambda build
//! --release --arm64 --output-format zip` leaves it in `target/lambda/<function>/`. The
//! cross-build (zig) takes minutes here, so zips newer than every source they come from are
//! reused.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::coldstart::FUNCTIONS;
use crate::support::{note, Result};

pub struct Options {
    pub workspace: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    /// Whether this run built the zips or reused ones newer than the sources.
    pub built: bool,
    pub build_seconds: Option<f64>,
    pub functions: Vec<Size>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Size {
    pub function: String,
    pub zip_bytes: u64,
    /// The native x86_64 release binary, for comparison.
    pub native_binary_bytes: Option<u64>,
}

pub fn run(options: Options) -> Result<Results> {
    let root = &options.workspace;
    let zip = |function: &str| {
        root.join("target/lambda")
            .join(function)
            .join("bootstrap.zip")
    };
    let sources = newest_source(root)?;
    let stale: Vec<&str> = FUNCTIONS
        .iter()
        .map(|(function, _)| *function)
        .filter(|function| modified(&zip(function)).is_none_or(|built| built < sources))
        .collect();
    let mut build_seconds = None;
    if !stale.is_empty() {
        note(
            "sizes",
            format!(
                "cargo lambda build --release --arm64 --output-format zip (stale or missing: {})",
                stale.join(", ")
            ),
        );
        let start = std::time::Instant::now();
        let mut command = std::process::Command::new("cargo");
        command.current_dir(root).args([
            "lambda",
            "build",
            "--release",
            "--arm64",
            "--output-format",
            "zip",
        ]);
        for (function, _) in FUNCTIONS {
            command.args(["--package", function]);
        }
        let status = command.status()?;
        if !status.success() {
            return Err(format!("cargo lambda build failed: {status}").into());
        }
        build_seconds = Some(start.elapsed().as_secs_f64());
    } else {
        note(
            "sizes",
            "reusing target/lambda/*/bootstrap.zip (newer than the sources)",
        );
    }
    let functions = FUNCTIONS
        .iter()
        .map(|(function, _)| {
            Ok(Size {
                function: function.to_string(),
                zip_bytes: std::fs::metadata(zip(function))?.len(),
                native_binary_bytes: std::fs::metadata(root.join("target/release").join(function))
                    .ok()
                    .map(|m| m.len()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Results {
        built: build_seconds.is_some(),
        build_seconds,
        functions,
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time among everything a function binary is built from: the
/// manifests, the lock file and the Rust sources of `shared/src` and `functions/`.
fn newest_source(root: &Path) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    for file in ["Cargo.toml", "Cargo.lock", "shared/Cargo.toml"] {
        newest = newest.max(modified(&root.join(file)).unwrap_or(newest));
    }
    let mut pending = vec![root.join("shared/src"), root.join("functions")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                newest = newest.max(modified(&path).unwrap_or(newest));
            }
        }
    }
    Ok(newest)
}
