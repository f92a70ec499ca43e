//! The Python reference (scripts/tutorial.py) runs the tutorial's programs and prints JSON with
//! the coordinator's field names. Skipped, saying why, only where python3 or its numpy virtual
//! environment cannot be set up.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `scripts/<script>` with `args` under python3 (it sets up its numpy environment);
/// `None`, saying why, where python3 or that environment is not to be had.
fn python(script: &str, args: &[&std::ffi::OsStr]) -> Option<std::process::Output> {
    let out = match Command::new("python3")
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED: python3 cannot be run here: {e}");
            return None;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (stderr.contains("pip") || stderr.contains("venv") || stderr.contains("ensurepip"))
    {
        eprintln!("SKIPPED: the numpy virtual environment could not be set up: {stderr}");
        return None;
    }
    Some(out)
}

#[test]
fn the_python_reference_prints_one_parseable_record_per_program() {
    let args: Vec<&std::ffi::OsStr> =
        ["--workers", "2", "--n", "1003", "--only", "sequential,split_64,threads_64,shm_64"]
            .iter()
            .map(std::ffi::OsStr::new)
            .collect();
    let Some(out) = python("tutorial.py", &args) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tutorial.py failed: {stderr}");
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let experiments: Vec<&str> =
        records.iter().map(|r| r["experiment"].as_str().unwrap()).collect();
    assert_eq!(experiments, ["sequential", "split_64", "threads_64", "shm_64"]);
    for r in &records {
        for field in
            ["mode", "workers", "n", "function", "splits", "chunksize", "wall_ms", "verified"]
        {
            assert!(r.get(field).is_some(), "{field} missing from {r}");
        }
        assert_eq!(r["n"], 1003);
        assert_eq!(r["verified"], true, "{r}");
        assert!(r["wall_ms"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(records[1]["mode"], "split");
    assert_eq!(records[1]["splits"], 64);
}

/// ipcmap's `pickle` and `npy` bytes against Python's own: pickle.loads and numpy.load read
/// ours bit for bit, and our codecs read what pickle.dumps (protocols 2 and 3) and numpy.save
/// write. Skipped, saying why, only where the numpy environment cannot be set up.
#[test]
fn pickle_and_npy_match_what_python_and_numpy_read_and_write() {
    use ipcmap::codec::{Codec, Npy, Pickle, Raw};
    let dir = std::env::temp_dir().join(format!("ipcmap-codec-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let values: Vec<f64> = [0.0, -0.0, 1.5, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::INFINITY]
        .into_iter()
        .chain(ipcmap::data::generate(7, 2500))
        .map(f64::exp)
        .chain([f64::NEG_INFINITY, -1.25e-300])
        .collect();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
    let encoded = |codec: &dyn Codec| {
        let mut out = Vec::new();
        codec.encode_block(&values, &mut out).unwrap();
        out
    };
    write("values.f64", encoded(&Raw));
    write("rust.pickle", encoded(&Pickle));
    write("rust.npy", encoded(&Npy));
    let mut item = Vec::new();
    Pickle.encode_item(values[0], &mut item).unwrap();
    write("rust-item.pickle", item);

    let Some(out) = python("codec_check.py", &[dir.as_os_str()]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "codec_check.py: {stdout} {stderr}");
    let same = |got: &[f64]| {
        got.len() == values.len()
            && got.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits())
    };
    for (name, codec) in [
        ("python3.pickle", &Pickle as &dyn Codec),
        ("python2.pickle", &Pickle),
        ("python.npy", &Npy),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let mut got = vec![0.0; values.len()];
        codec.decode_block_into(&bytes, &mut got).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(same(&got), "{name} decoded to other values");
    }
    let _ = std::fs::remove_dir_all(dir);
}
