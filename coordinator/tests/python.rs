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

/// Each expression and the most it may differ from numpy's evaluation of the same text on the
/// same input, in ulps at any value (README, "Your own function"). Where both use correctly
/// rounded IEEE operations the bound is 0; the transcendental functions are within an ulp or
/// two of numpy's each, and a compound expression can add a few more.
const NUMPY_CASES: [(&str, f64); 12] = [
    ("x*2", 0.0),
    ("1 + x/3 - x*x", 0.0),
    ("sqrt(x)", 0.0),
    ("min(x, 0.3) + max(x, 0.7)", 0.0),
    ("exp(x)", 1.0),
    ("ln(x)", 1.0),
    ("sin(x)", 1.0),
    ("x**3 - 2**x + x**0.5", 2.0),
    ("tanh(x) + abs(x - 0.5) + tan(x) * cos(x)", 4.0),
    ("where(x > 0.5, ln(x), cos(x))", 1.0),
    ("exp(-x*x/2)*sin(3*x)+sqrt(x)", 4.0),
    ("exp(sin(x))**2/(1+x*x)", 4.0),
];

/// `--fn EXPR` against numpy, end to end: each expression's result as a real run saves it
/// (`--save-output`, split over two worker processes, verified), then numpy evaluates the
/// same text on the same input and the two are compared value by value within the bound
/// above. Skipped, saying why, only where the numpy environment cannot be set up.
#[test]
fn expressions_match_numpy_within_their_stated_ulps() {
    let dir = std::env::temp_dir().join(format!("ipcmap-expr-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let n = 20_000;
    let mut input = Vec::new();
    ipcmap::codec::npy::write_array(&ipcmap::data::generate(1, n), &mut input).unwrap();
    std::fs::write(dir.join("input.npy"), input).unwrap();
    let mut cases = Vec::new();
    for (i, (expr, _)) in NUMPY_CASES.iter().enumerate() {
        let file = format!("case{i}.npy");
        let out = Command::new(env!("CARGO_BIN_EXE_coordinator"))
            .args(["--fn", expr, "-n", &n.to_string(), "-m", "split", "-w", "2", "--repeat", "1"])
            .args(["--warmup", "0", "--format", "json", "--save-output"])
            .arg(dir.join(&file))
            .output()
            .unwrap();
        assert!(out.status.success(), "{expr}: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
        assert_eq!(report["verified"], true, "{expr}");
        assert_eq!(report["function"], *expr);
        cases.push(serde_json::json!({"fn": expr, "file": file}));
    }
    std::fs::write(dir.join("cases.json"), serde_json::to_vec(&cases).unwrap()).unwrap();
    let Some(out) = python("expr_check.py", &[dir.as_os_str()]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "expr_check.py: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let checked: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    for (case, (expr, bound)) in checked["cases"].as_array().unwrap().iter().zip(NUMPY_CASES) {
        assert_eq!(case["fn"], expr);
        let worst = case["max_ulps"].as_f64().unwrap();
        assert!(worst <= bound, "{expr}: {worst} ulps from numpy (bound {bound}): {case}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
