//! `coordinator sweep`: one row per grid point with every field, and plots that are SVG.

mod common;

use common::run;
use serde_json::Value;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ipcmap-sweep-{}-{name}", std::process::id()))
}

/// Parses the SVG as XML and counts the heatmap cells.
fn svg_cells(path: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(path).expect("plot written");
    let doc = roxmltree::Document::parse(&text).expect("the plot is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let opacity = ipcmap::report::CELL_OPACITY.to_string();
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("opacity") == Some(opacity.as_str()))
        .count()
}

#[test]
fn a_grid_writes_one_row_per_point_with_every_field_and_a_heatmap() {
    let (csv, json, svg) = (temp("g.csv"), temp("g.json"), temp("g.svg"));
    let r = run(&[
        "sweep",
        "--n",
        "3000",
        "--workers",
        "2",
        "--splits",
        "2,4",
        "--chunksize",
        "1,2,3",
        "--csv",
        csv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains("sweep of 6 configurations: fastest"), "{}", r.stdout);

    let rows: Vec<Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 6);
    let points: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| (r["splits"].as_u64().unwrap(), r["chunksize"].as_u64().unwrap()))
        .collect();
    assert_eq!(points, [(2, 1), (2, 2), (2, 3), (4, 1), (4, 2), (4, 3)]);
    for row in &rows {
        assert_eq!(row["verified"], true);
        for field in [
            "mode",
            "wall_ms",
            "wall_ms_min",
            "phases_ms",
            "bytes_sent",
            "messages_sent",
            "worker_detail",
        ] {
            assert!(row.get(field).is_some(), "missing {field}");
        }
    }

    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "a header and six rows");
    let width = lines[0].split(',').count();
    assert!(lines[0].starts_with("mode,") && lines[0].contains("phases_ms.compute"));
    assert!(width > 30);

    assert_eq!(svg_cells(&svg), 6);
    for f in [csv, json, svg] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn a_bare_sweep_is_the_tutorials_eight_by_eight_grid() {
    let json = temp("t.json");
    let r = run(&[
        "sweep",
        "--n",
        "1000",
        "--workers",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let rows = std::fs::read_to_string(&json).unwrap().lines().count();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(rows, 64);
    assert_eq!(r.stdout.lines().count(), 65, "stdout CSV: header and 64 rows");
}

#[test]
fn a_one_parameter_sweep_draws_a_line_chart() {
    let svg = temp("l.svg");
    let r = run(&[
        "sweep",
        "--n",
        "2000",
        "--workers",
        "1,2,3",
        "--mode",
        "threads",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).unwrap();
    roxmltree::Document::parse(&text).expect("well-formed");
    assert!(text.contains("polyline") || text.contains("path"), "a line is drawn");
}

#[test]
fn bad_points_and_unplottable_grids_are_refused_before_running() {
    let r = run(&["sweep", "--n", "100", "--splits", "4,200", "--mode", "split"]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("splits=200"), "{}", r.stderr);

    let r = run(&[
        "sweep",
        "--n",
        "100",
        "--workers",
        "1,2",
        "--splits",
        "2,4",
        "--chunksize",
        "1,2",
        "--plot",
        "x.svg",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("workers, splits, chunksize"), "{}", r.stderr);

    let r = run(&["sweep", "--n", "1000", "--csv", "/nonexistent/dir/x.csv"]);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
}

#[test]
fn mode_all_draws_the_phase_chart() {
    let svg = temp("p.svg");
    let r =
        run(&["--mode", "all", "--n", "5000", "--workers", "2", "--plot", svg.to_str().unwrap()]);
    assert!(r.status.success(), "{}", r.stderr);
    let text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).unwrap();
    roxmltree::Document::parse(&text).expect("well-formed");
    let words: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for label in ["sequential", "item", "split", "shm", "threads", "send", "encode", "wait"] {
        assert!(words.contains(&format!("> {label}")), "chart lacks {label}");
    }
}

/// Frames of 400 KB sent whole and as trains of 64 KiB frames: the same results, the same
/// frame counts, and the train size on each row.
#[test]
fn frame_trains_are_an_axis_and_change_nothing_but_the_framing() {
    let json = temp("frames.json");
    let r = run(&[
        "sweep",
        "--n",
        "400000",
        "--workers",
        "2",
        "--splits",
        "8",
        "--codec",
        "raw",
        "--frame-bytes",
        "0,65536",
        "--repeat",
        "1",
        "--warmup",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let text = std::fs::read_to_string(&json).unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let _ = std::fs::remove_file(&json);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["frame_bytes"].as_u64(), rows[1]["frame_bytes"].as_u64()),
        (Some(0), Some(65536))
    );
    for row in &rows {
        assert_eq!(row["verified"], true, "{row}");
        assert_eq!(row["messages_sent"], 8);
        assert_eq!(row["payload_bytes_received"], 8 * 400_000);
    }
}

/// Piped, a sweep's table opens with each configuration's line as its runs end (hyperfine's
/// way), then the answer: one line per function saying whether processes pay, then the grid.
#[test]
fn a_piped_sweep_says_each_configuration_as_it_ends_then_answers_per_function() {
    let r = run(&[
        "sweep",
        "--fn",
        "x*2;exp(sin(x))",
        "-m",
        "sequential,split",
        "-w",
        "2",
        "--n",
        "5000",
        "--repeat",
        "2",
        "--warmup",
        "0",
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    for (i, line) in lines[..4].iter().enumerate() {
        assert!(line.starts_with(&format!("{}/4 ", i + 1)), "{}", r.stdout);
        assert!(line.contains(" ms (median of 2 runs)"), "{}", r.stdout);
    }
    assert!(lines[4].starts_with("ipcmap: 2 functions over 5,000 f64"), "{}", r.stdout);
    assert!(lines[5].starts_with("fn=x*2 (") && lines[5].contains("processes"), "{}", r.stdout);
    assert!(lines[6].starts_with("fn=exp(sin(x)) ("), "{}", r.stdout);
    let json = run(&[
        "sweep", "--fn", "x*2;exp", "-m", "split", "-w", "2", "--n", "3000", "--repeat", "1",
        "--warmup", "0", "--format", "json",
    ]);
    for line in json.stdout.lines() {
        serde_json::from_str::<Value>(line).expect("JSON output holds only reports");
    }
}
