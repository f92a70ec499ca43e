//! The Python package (`coordinator/python/ipcmap`: `ipcmap.run`, `sweep`, `probe`, `python -m
//! ipcmap`) against this build's coordinator: its unittest suite, run with the package on
//! PYTHONPATH and `IPCMAP_COORDINATOR` pointing here. CI runs the same suite again against the
//! installed wheel. Skipped, saying why, only where python3 cannot be run.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_python_api_suite_passes_against_this_build() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = match Command::new("python3")
        .args(["-m", "unittest", "discover", "-s"])
        .arg(root.join("python").join("tests"))
        .env("PYTHONPATH", root.join("python"))
        .env("IPCMAP_COORDINATOR", env!("CARGO_BIN_EXE_coordinator"))
        .env("IPCMAP_WORKER", env!("CARGO_BIN_EXE_ipcmap-worker"))
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: python3 cannot be run here: {e}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Python API suite failed:\n{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
