//! The measurement plan: warm-ups and repeats by default, exact counts when asked, one cold run
//! when asked, strategies interleaved round-robin (seen in `runs_order`, never in a timing),
//! spread and speedup intervals in the JSON, and rows that name what varies.

mod common;

use common::{run, run_json};
use serde_json::Value;

/// `--mode MODE --workers 2 --n 2000`, then `extra`: the small run most of these tests make.
fn small<'a>(mode: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--mode", mode, "--workers", "2", "--n", "2000"];
    args.extend_from_slice(extra);
    args
}

fn order(r: &Value) -> Vec<u64> {
    r["runs_order"]
        .as_array()
        .expect("runs_order is a list")
        .iter()
        .map(|v| v.as_u64().expect("a run index"))
        .collect()
}

#[test]
fn by_default_every_strategy_gets_a_warm_up_and_several_measured_runs() {
    let reports = run_json(&["--mode", "all", "--workers", "2", "--n", "2000"]);
    for r in &reports {
        assert_eq!(r["plan"], "auto", "{r}");
        assert_eq!(r["warmup"], 1, "{r}");
        let runs = r["runs_ms"].as_array().expect("runs_ms is a list").len();
        assert!((7..=15).contains(&runs), "{} made {runs} runs", r["mode"]);
        assert_eq!(r["repeat"].as_u64(), Some(runs as u64));
        assert!(r["wall_ms_mad"].is_number());
        assert!(r["wall_ms_stddev"].is_number());
        assert!(r["outliers"].is_number());
        assert!(r["warnings"].is_array());
    }
}

#[test]
fn exact_counts_are_exact_and_every_run_is_listed_with_the_interval() {
    let reports = run_json(&small("all", &["--repeat", "3", "--warmup", "0"]));
    assert!(reports.len() >= 5, "every strategy available here");
    for r in &reports {
        assert_eq!(r["plan"], "exact");
        assert_eq!(r["runs_ms"].as_array().map(Vec::len), Some(3), "{r}");
        assert_eq!(r["repeat"], 3);
        assert_eq!(r["warmup"], 0);
        assert_eq!(r["baseline_runs"], 3);
        let runs: Vec<f64> =
            r["runs_ms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let (min, max) = (r["wall_ms_min"].as_f64().unwrap(), r["wall_ms_max"].as_f64().unwrap());
        assert!(runs.iter().all(|&x| min <= x && x <= max));
        if r["mode"] == "sequential" {
            assert_eq!(r["verdict"], "baseline");
        } else {
            let (low, s, high) = (
                r["speedup_low"].as_f64().expect("an interval with 3 runs"),
                r["speedup"].as_f64().unwrap(),
                r["speedup_high"].as_f64().unwrap(),
            );
            assert!(low <= s && s <= high, "{low} {s} {high}");
            let verdict = r["verdict"].as_str().unwrap();
            let expected = if low > 1.0 {
                "faster"
            } else if high < 1.0 {
                "slower"
            } else {
                "no clear difference"
            };
            assert_eq!(verdict, expected);
        }
    }
}

#[test]
fn strategies_run_round_robin_and_one_after_another_when_asked() {
    let args = small("all", &["--repeat", "3", "--warmup", "1"]);
    let reports = run_json(&args);
    let s = reports.len() as u64;
    // Round 0 is the warm-up round (runs 0..s); then A B C ..., A B C ..., ...
    for (k, r) in reports.iter().enumerate() {
        let k = k as u64;
        assert_eq!(order(r), vec![s + k, 2 * s + k, 3 * s + k], "{}", r["mode"]);
        assert_eq!(r["interleaved"], true);
    }
    let mut flat = args.to_vec();
    flat.push("--no-interleave");
    let reports = run_json(&flat);
    for (k, r) in reports.iter().enumerate() {
        let first = 4 * k as u64 + 1; // one warm-up, then three measured runs, per strategy
        assert_eq!(order(r), vec![first, first + 1, first + 2], "{}", r["mode"]);
        assert_eq!(r["interleaved"], false);
    }
}

#[test]
fn a_strategy_alone_is_timed_against_hidden_interleaved_sequential_runs() {
    let reports = run_json(&small("split", &["--repeat", "4", "--warmup", "0"]));
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r["baseline_runs"], 4);
    // The hidden baseline runs first in each round: split is every second run.
    assert_eq!(order(r), vec![1, 3, 5, 7]);
    assert!(r["speedup_low"].is_number());
}

#[test]
fn cold_is_one_run_without_warm_up_and_claims_nothing() {
    let reports = run_json(&["--mode", "split", "--workers", "2", "--n", "2000", "--cold"]);
    let r = &reports[0];
    assert_eq!((r["repeat"].as_u64(), r["warmup"].as_u64()), (Some(1), Some(0)));
    assert!(r["speedup"].is_number());
    assert!(r["speedup_low"].is_null() && r["verdict"].is_null(), "{r}");
    let table = run(&["--mode", "split", "--workers", "2", "--n", "2000", "--cold"]);
    assert!(table.stdout.contains("cold: one sample"), "{}", table.stdout);
    let both = run(&["--n", "2000", "--cold", "--repeat", "3"]);
    assert_eq!(both.status.code(), Some(2), "{}", both.stderr);
    assert_eq!(both.stderr.trim().lines().count(), 1, "{}", both.stderr);
}

#[test]
fn more_workers_than_cores_is_a_warning_not_a_failure() {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = (cpus + 1).to_string();
    let r = run(&["--mode", "threads", "--workers", &workers, "--n", "2000", "--repeat", "3"]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(
        r.stderr.lines().any(|l| l.starts_with("warning:") && l.contains("oversubscribed")),
        "{}",
        r.stderr
    );
}

#[test]
fn sweep_rows_name_every_parameter_that_varies() {
    let r = run(&[
        "sweep",
        "--mode",
        "split",
        "--workers",
        "1,2",
        "--splits",
        "1",
        "--n",
        "2000",
        "--repeat",
        "3",
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    // Rows named by what the sweep varies; every setting with --details.
    assert!(r.stdout.contains("workers=1") && r.stdout.contains("workers=2"), "{}", r.stdout);
    let details = run(&[
        "sweep",
        "--mode",
        "split",
        "-w",
        "1,2",
        "--splits",
        "1",
        "--n",
        "2000",
        "-r",
        "3",
        "--details",
    ]);
    assert!(
        details.stdout.contains("split, bincode, 1 splits, chunk 1, 1 workers"),
        "{}",
        details.stdout
    );
    assert!(
        details.stdout.contains("split, bincode, 1 splits, chunk 1, 2 workers"),
        "{}",
        details.stdout
    );
}

/// `sweep --transport` compares transports, each row naming its own; a plain run takes one.
#[test]
fn a_sweep_compares_transports_and_a_run_takes_one() {
    let args = [
        "sweep",
        "--mode",
        "split",
        "--codec",
        "raw",
        "--transport",
        "local,uds,tcp,pipe",
        "--n",
        "20000",
        "--repeat",
        "1",
    ];
    let reports = run_json(&args);
    let transports: Vec<&str> = reports.iter().map(|r| r["transport"].as_str().unwrap()).collect();
    assert_eq!(transports, ["local", "uds", "tcp", "pipe"]);
    let paths: Vec<&str> = reports.iter().map(|r| r["payload_path"].as_str().unwrap()).collect();
    assert_eq!(paths[0], "copied from a library buffer, then decoded");
    assert!(paths[1..].iter().all(|p| *p == "received in place"), "{paths:?}");
    assert!(reports.iter().all(|r| r["verified"] == true));
    let table = run(&args);
    assert!(table.stdout.contains("transport=tcp"), "{}", table.stdout);
    let r = run(&["--transport", "local,uds", "--n", "1000"]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("one --transport"), "{}", r.stderr);
}

#[test]
fn a_sweep_over_n_interleaves_within_each_input_and_keeps_one_reference_at_a_time() {
    let reports = run_json(&[
        "sweep",
        "--mode",
        "split,threads",
        "--n",
        "1000,2000",
        "--workers",
        "2",
        "--repeat",
        "2",
        "--warmup",
        "0",
    ]);
    // Points vary mode outermost: split n=1000, split n=2000, threads n=1000, threads n=2000.
    // n=1000 runs first (hidden baseline, split, threads; twice), then n=2000.
    let by = |mode: &str, n: u64| {
        reports
            .iter()
            .find(|r| r["mode"] == mode && r["n"] == n)
            .map(order)
            .expect("a report per point")
    };
    assert_eq!(by("split", 1000), vec![1, 4]);
    assert_eq!(by("threads", 1000), vec![2, 5]);
    assert_eq!(by("split", 2000), vec![7, 10]);
    assert_eq!(by("threads", 2000), vec![8, 11]);
}

#[test]
fn markdown_gives_one_row_per_strategy_and_the_probe_speaks_every_format() {
    let r = run(&small("all", &["--repeat", "3", "--format", "markdown"]));
    assert!(r.status.success(), "{}", r.stderr);
    let rows: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("| `")).collect();
    let json = run_json(&small("all", &["--repeat", "1"]));
    assert_eq!(rows.len(), json.len(), "{}", r.stdout);
    assert!(r.stdout.contains("| Strategy | Median [ms]"), "{}", r.stdout);
    let csv = run(&["probe", "--workers", "1", "--format", "csv"]);
    assert!(csv.status.success(), "{}", csv.stderr);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row: {}", csv.stdout);
    assert!(lines[0].starts_with("workers,spawn_hello_ms"), "{}", lines[0]);
}

#[test]
fn explain_tells_the_table_in_sentences_and_only_where_stdout_is_for_people() {
    let r = run(&["--mode", "all", "--workers", "2", "--n", "20000", "--repeat", "3", "--explain"]);
    assert!(r.status.success(), "{}", r.stderr);
    let text = &r.stdout[r.stdout.find("What the figures say").expect("the explanation")..];
    assert!(text.contains("sequential: "), "{text}");
    assert!(text.contains("split (2 workers): "), "{text}");
    assert!(text.contains("Its largest cost: "), "{text}");
    let refused = run(&["--n", "2000", "--explain", "--format", "json"]);
    assert_eq!(refused.status.code(), Some(2), "{}", refused.stderr);
    assert_eq!(refused.stderr.trim().lines().count(), 1);
}

/// A run prints its table and writes every export at once: JSON as one document (an array
/// `json.load` reads), CSV with a header and a row per report, Markdown's table; a sweep
/// takes the same flags.
#[test]
fn a_run_writes_its_exports_beside_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (json, csv, md) = (path("r.json"), path("r.csv"), path("r.md"));
    let r = run(&[
        "--mode",
        "sequential,threads",
        "--n",
        "20000",
        "--repeat",
        "2",
        "--export-json",
        &json,
        "--export-csv",
        &csv,
        "--export-markdown",
        &md,
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains("wall ms"), "the table still on stdout: {}", r.stdout);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let modes: Vec<&str> =
        doc.as_array().unwrap().iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["sequential", "threads"]);
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("mode,"), "{csv}");
    assert!(std::fs::read_to_string(&md).unwrap().contains("| Strategy"));
    let swept = path("s.json");
    let r = run(&[
        "sweep",
        "--mode",
        "split",
        "--workers",
        "1,2",
        "--n",
        "20000",
        "--repeat",
        "1",
        "--export-json",
        &swept,
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&swept).unwrap()).unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 2);
}

/// A saved result says what it is and where it ran: schema and tool version, when, the
/// command line, the host, CPU, kernel, huge-page and ptrace settings, the load at the start.
#[test]
fn a_report_describes_itself_and_its_machine() {
    let reports = run_json(&["--mode", "sequential", "--n", "1000", "--repeat", "1"]);
    let r = &reports[0];
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["ipcmap_version"], env!("CARGO_PKG_VERSION"));
    assert!(r["started_at_unix_s"].as_u64() > Some(1_700_000_000));
    assert!(r["command_line"].as_str().unwrap().contains("--mode sequential"), "{r}");
    for key in ["host", "kernel", "thp_shmem_enabled", "thp_enabled"] {
        assert!(r[key].is_string(), "{key}: {r}");
    }
    assert!(r["cpu_cores"].as_u64() >= Some(1));
    assert!(r.get("load_average_1m").is_some() && r.get("yama_ptrace_scope").is_some());
}

#[test]
fn cpu_time_stands_beside_wall_time_for_the_coordinator_and_each_worker() {
    let args = ["--mode", "sequential,split", "--n", "2000000", "--repeat", "1", "-w", "2"];
    let reports = run_json(&args);
    let (seq, split) = (&reports[0], &reports[1]);
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k}: {r}"));
    // The sequential run is the coordinator alone: its CPU time, and no workers'.
    assert!(f(seq, "coordinator_cpu_user_ms") > 0.0, "{seq}");
    assert!(seq["workers_cpu_user_ms"].is_null(), "{seq}");
    // Split: the coordinator's and every worker's own, the workers' sums of those.
    let detail = split["worker_detail"].as_array().unwrap();
    let each: f64 = detail.iter().map(|w| f(w, "cpu_user_ms")).sum();
    assert!(each > 0.0 && detail.iter().all(|w| w["cpu_system_ms"].is_f64()), "{split}");
    assert!((f(split, "workers_cpu_user_ms") - each).abs() < 1e-6, "{split}");
    let share = f(split, "cpu_share_of_cores");
    assert!(share > 0.0 && share <= 1.05, "CPU time cannot exceed wall x cores: {share}");
    // The clearer names of older keys carry the same values.
    for (alias, key) in [
        ("channel_gb_per_s", "channel_gbps"),
        ("coordinator_busy_fraction", "coordinator_busy"),
        ("workers_busy_fraction", "workers_busy"),
    ] {
        assert_eq!(split[alias], split[key], "{alias}");
    }
}
