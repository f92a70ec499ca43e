//! The Python reference (scripts/tutorial.py) runs the tutorial's programs and prints JSON with
//! the coordinator's field names. Skipped, saying why, only where python3 or its numpy virtual
//! environment cannot be set up.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_python_reference_prints_one_parseable_record_per_program() {
    let script = repo_root().join("scripts/tutorial.py");
    let out = match Command::new("python3")
        .arg(&script)
        .args([
            "--workers",
            "2",
            "--n",
            "1003",
            "--only",
            "sequential,split_64,threads_64,shm_64",
        ])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: python3 cannot be run here: {e}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (stderr.contains("pip") || stderr.contains("venv") || stderr.contains("ensurepip"))
    {
        eprintln!("SKIPPED: the numpy virtual environment could not be set up: {stderr}");
        return;
    }
    assert!(out.status.success(), "tutorial.py failed: {stderr}");
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let experiments: Vec<&str> = records
        .iter()
        .map(|r| r["experiment"].as_str().unwrap())
        .collect();
    assert_eq!(
        experiments,
        ["sequential", "split_64", "threads_64", "shm_64"]
    );
    for r in &records {
        for field in [
            "mode",
            "workers",
            "n",
            "function",
            "splits",
            "chunksize",
            "wall_ms",
            "verified",
        ] {
            assert!(r.get(field).is_some(), "{field} missing from {r}");
        }
        assert_eq!(r["n"], 1003);
        assert_eq!(r["verified"], true, "{r}");
        assert!(r["wall_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(records[1]["mode"], "split");
    assert_eq!(records[1]["splits"], 64);
}
