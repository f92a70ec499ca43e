//! `coordinator predict` and `--predict`: every strategy predicted from this machine's
//! calibration, measured once and cached, with an interval; a run puts the prediction beside
//! its measurement. (How close the model comes is a figure `scripts/model_check.py` prints,
//! not something a test can assert on a busy machine.)

mod common;

use common::{run_with, scratch};
use serde_json::Value;
use std::time::Duration;

#[test]
fn predict_calibrates_once_then_predicts_every_strategy_and_a_run_checks_it() {
    let dir = scratch("predict");
    let cache = dir.to_str().unwrap();
    let env = [("XDG_CACHE_HOME", cache)];
    let args = ["predict", "--mode", "all", "-w", "2", "--n", "100000", "--format", "json"];
    let first = run_with(&args, &env, Duration::from_secs(180));
    assert!(first.status.success(), "{}", first.stderr);
    let rows: Vec<Value> = first.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.len() >= 7, "{}", first.stdout);
    for r in &rows {
        let (low, mid, high) = (
            r["predicted_wall_ms_low"].as_f64().unwrap(),
            r["predicted_wall_ms"].as_f64().unwrap(),
            r["predicted_wall_ms_high"].as_f64().unwrap(),
        );
        assert!(0.0 < low && low <= mid && mid <= high, "{r}");
        assert_eq!(r["calibration_cached"], false, "measured the first time: {r}");
    }
    let kept = std::fs::read_dir(dir.join("ipcmap")).unwrap().count();
    assert_eq!(kept, 1, "one calibration file");
    let again = run_with(&args, &env, Duration::from_secs(60));
    let row: Value = serde_json::from_str(again.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(row["calibration_cached"], true, "{row}");
    // Words for a person.
    let text = run_with(&args[..args.len() - 2], &env, Duration::from_secs(60));
    assert!(text.stdout.contains("Predicted, not measured"), "{}", text.stdout);
    assert!(text.stdout.contains("sequential: predicted "), "{}", text.stdout);
    // A run with --predict: the prediction beside the measurement.
    let run = run_with(
        &[
            "-m",
            "sequential,split",
            "-w",
            "2",
            "--n",
            "100000",
            "-r",
            "3",
            "--predict",
            "--format",
            "json",
        ],
        &env,
        Duration::from_secs(120),
    );
    assert!(run.status.success(), "{}", run.stderr);
    for line in run.stdout.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let predicted = r["predicted_wall_ms"].as_f64().expect("a prediction");
        let error = r["prediction_error"].as_f64().unwrap();
        let measured = r["wall_ms"].as_f64().unwrap();
        assert!((measured / predicted - 1.0 - error).abs() < 1e-9, "{r}");
    }
    // Threads alone (no worker resolved for the run) is predicted too.
    let args = ["-m", "threads", "-w", "2", "--n", "100000", "-r", "2", "--predict"];
    let threads =
        run_with(&[&args[..], &["--format", "json"]].concat(), &env, Duration::from_secs(120));
    assert!(threads.status.success(), "{}", threads.stderr);
    let r: Value = serde_json::from_str(threads.stdout.trim()).unwrap();
    assert!(r["predicted_wall_ms"].as_f64().is_some(), "{r}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What the measured runs find from the warm-up is in the prediction: kept workers start in
/// no run (no spawn stage), a kept input is not generated, kept buffers are not touched.
#[test]
fn warm_runs_are_predicted_as_warm() {
    let dir = scratch("predict-warm");
    let env = [("XDG_CACHE_HOME", dir.to_str().unwrap())];
    let predict = |extra: &[&str]| -> Vec<Value> {
        let args = ["predict", "-m", "shm,threads", "-w", "2", "--n", "1000000"];
        let all = [&args[..], extra, &["--format", "json"]].concat();
        let r = run_with(&all, &env, Duration::from_secs(180));
        assert!(r.status.success(), "{all:?}: {}", r.stderr);
        r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let phase = |r: &Value, name: &str| r["predicted_phases_ms"][name].as_f64();
    let cold = predict(&[]);
    let warm = predict(&["--keep-input", "--pool", "persistent"]);
    let (cold_shm, warm_shm) = (&cold[0], &warm[0]);
    assert!(phase(cold_shm, "spawn").unwrap() > 0.0, "{cold_shm}");
    assert_eq!(phase(warm_shm, "spawn"), Some(0.0), "{warm_shm}");
    assert_eq!(phase(warm_shm, "generate"), Some(0.0), "{warm_shm}");
    for (c, w) in cold.iter().zip(&warm) {
        let (c, w) =
            (c["predicted_wall_ms"].as_f64().unwrap(), w["predicted_wall_ms"].as_f64().unwrap());
        assert!(w < c, "warm {w} ms is predicted below cold {c} ms");
    }
    // One cold run (--cold: no warm-up) finds nothing kept.
    let once = predict(&["--keep-input", "--pool", "persistent", "--cold"]);
    assert!(phase(&once[0], "spawn").unwrap() > 0.0, "{}", once[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `predict --plot`: the when-it-pays chart, an SVG with a line per strategy, labelled as
/// predicted.
#[test]
fn predict_draws_when_it_pays() {
    let dir = scratch("predict-plot");
    let svg = dir.join("pays.svg");
    let env = [("XDG_CACHE_HOME", dir.to_str().unwrap())];
    let args = [
        "predict",
        "-m",
        "sequential,split,threads",
        "-w",
        "2",
        "--n",
        "100000",
        "--plot",
        svg.to_str().unwrap(),
    ];
    let r = run_with(&args, &env, Duration::from_secs(180));
    assert!(r.status.success(), "{}", r.stderr);
    let text = std::fs::read_to_string(&svg).expect("the chart");
    roxmltree::Document::parse(&text).expect("well-formed SVG");
    for word in ["when it pays, predicted", "split", "threads", "speedup over sequential"] {
        assert!(text.contains(word), "{word}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--fn-ns` predicts a function ipcmap does not run (its cost as the user timed it), and
/// `--cores` extrapolates past this machine: both said so, in words and in JSON; neither is
/// taken by a run, which measures its own.
#[test]
fn your_functions_cost_and_more_cores_are_predicted_and_marked_as_such() {
    let dir = scratch("predict-given");
    let env = [("XDG_CACHE_HOME", dir.to_str().unwrap())];
    let flags = ["predict", "-m", "sequential,threads", "-w", "16", "--n", "1e6"];
    let given = [&flags[..], &["--fn-ns", "77", "--cores", "16", "--format", "json"]].concat();
    let out = run_with(&given, &env, Duration::from_secs(180));
    assert!(out.status.success(), "{}", out.stderr);
    let rows: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows[0]["fn_ns_given"], 77.0);
    assert_eq!(rows[0]["extrapolated_cores"], 16);
    // Sequential is the user's function over every value, whatever else it costs.
    let sequential = rows[0]["predicted_wall_ms"].as_f64().unwrap();
    assert!(sequential >= 1e6 * 77.0 / 1e6, "{sequential} ms for 10^6 values at 77 ns");
    let threads = rows[1]["predicted_wall_ms"].as_f64().unwrap();
    assert!(
        threads < sequential / 4.0,
        "16 cores of a heavy function: {threads} against {sequential}"
    );
    let words = run_with(
        &[&flags[..], &["--fn-ns", "77", "--cores", "16"]].concat(),
        &env,
        Duration::from_secs(60),
    );
    assert!(words.stdout.contains("your function (77 ns a value)"), "{}", words.stdout);
    assert!(
        words.stdout.contains("Extrapolated, not measured: as if 16 cores"),
        "{}",
        words.stdout
    );
    for bad in [
        &["predict", "--fn-ns", "0"][..],
        &["predict", "--cores", "0"],
        &["--fn-ns", "5", "-n", "10"],
    ] {
        let refused = run_with(bad, &env, Duration::from_secs(60));
        assert_eq!(refused.status.code(), Some(2), "{bad:?}: {}", refused.stderr);
        assert_eq!(refused.stderr.lines().count(), 1, "{bad:?}: {}", refused.stderr);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `predict --transport mpi --link-gbps G --link-us D`: the MPI strategies on hosts joined by
/// that link, extrapolated from this machine's TCP costs and marked so; a slower link is
/// predicted slower; the link flags alone, or mpi without them, are refused with one line.
#[test]
fn hosts_joined_by_a_given_link_are_predicted_and_marked_extrapolated() {
    let dir = scratch("predict-link");
    let env = [("XDG_CACHE_HOME", dir.to_str().unwrap())];
    let flags = ["predict", "--transport", "mpi", "-m", "split,scatterv", "-w", "2", "--n", "1e6"];
    let at = |gbps: &str, us: &str| -> Vec<Value> {
        let args = [&flags[..], &["--link-gbps", gbps, "--link-us", us, "--format", "json"]];
        let out = run_with(&args.concat(), &env, Duration::from_secs(180));
        assert!(out.status.success(), "{}", out.stderr);
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (fast, slow) = (at("10", "100"), at("0.01", "1000"));
    for (f, s) in fast.iter().zip(&slow) {
        assert_eq!(s["extrapolated_link_gbps"], 0.01, "{s}");
        assert_eq!(s["extrapolated_link_us"], 1000.0, "{s}");
        let (f, s) =
            (f["predicted_wall_ms"].as_f64().unwrap(), s["predicted_wall_ms"].as_f64().unwrap());
        // 8 MB each way take 6.4 s at 0.01 Gb/s, whatever the rest of the run costs.
        assert!(s >= 6400.0 && s > f, "0.01 Gb/s + 1 ms ({s} ms) against 10 Gb/s ({f} ms)");
    }
    let words = run_with(
        &[&flags[..], &["--link-gbps", "1", "--link-us", "1000"]].concat(),
        &env,
        Duration::from_secs(60),
    );
    assert!(
        words.stdout.contains("Extrapolated, not measured: ranks on hosts joined by a 1 Gb/s link"),
        "{}",
        words.stdout
    );
    for bad in [
        &["predict", "--transport", "mpi", "-m", "split"][..],
        &["predict", "-m", "split", "--link-gbps", "1", "--link-us", "5"],
        &["predict", "--transport", "mpi", "--link-gbps", "1"],
        &["predict", "--transport", "mpi", "--link-gbps", "0", "--link-us", "5"],
        &["--link-gbps", "1", "--link-us", "5", "-n", "10"],
    ] {
        let refused = run_with(bad, &env, Duration::from_secs(60));
        assert_eq!(refused.status.code(), Some(2), "{bad:?}: {}", refused.stderr);
        assert_eq!(refused.stderr.trim().lines().count(), 1, "{bad:?}: {}", refused.stderr);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// With `--predict`, the HTML report's first screen holds the when-it-pays chart: the
/// model's line per strategy and the run's measured points over it.
#[test]
fn the_html_report_draws_when_it_pays_with_the_measured_points() {
    let dir = scratch("predict-html");
    let env = [("XDG_CACHE_HOME", dir.to_str().unwrap())];
    let page = dir.join("report.html");
    let args = ["-m", "sequential,split,threads", "-w", "2", "--n", "20000", "--repeat", "3"];
    let with = [&args[..], &["--predict", "--export-html", page.to_str().unwrap()]].concat();
    let out = run_with(&with, &env, Duration::from_secs(180));
    assert!(out.status.success(), "{}", out.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    let pays = html.find("<h2>When it pays</h2>").expect("the chart's section");
    let tables = html.find("<table").expect("the tables");
    assert!(pays < tables, "the chart comes before the tables");
    let chart = &html[pays..];
    assert!(chart.contains("<svg") && chart.contains("squares: measured"), "{chart:.400}");
    let legend = &chart[..chart.find("</svg>").expect("the chart ends")];
    for name in ["split", "threads"] {
        assert!(legend.contains(&format!("\n{name}\n")), "{name} in the legend");
    }
    let plain = dir.join("plain.html");
    let without = [&args[..], &["--export-html", plain.to_str().unwrap()]].concat();
    assert!(run_with(&without, &env, Duration::from_secs(180)).status.success());
    assert!(
        !std::fs::read_to_string(&plain).unwrap().contains("When it pays"),
        "only with --predict"
    );
    let _ = std::fs::remove_dir_all(dir);
}
