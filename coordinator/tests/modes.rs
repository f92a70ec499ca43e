//! Every strategy, on real worker processes, gives the sequential result bit for bit, and
//! reports the traffic it really caused. Each behaviour is written once and instantiated as one
//! `#[test]` per strategy, codec or transport (`behaviour::split`, `behaviour::uds`).

mod common;

use common::{per_entry, run, run_json, runs_here, spawns_here};
use ipcmap::settings::TransportKind;
use ipcmap::strategy::Mode;
use serde_json::Value;

/// Every strategy this machine runs over the default transport, in registry order: what
/// `--mode all` runs.
fn modes() -> Vec<&'static str> {
    Mode::available(TransportKind::default()).into_iter().map(Mode::name).collect()
}

fn one(args: &[&str]) -> Value {
    let mut reports = run_json(args);
    assert_eq!(reports.len(), 1, "{args:?}");
    reports.remove(0)
}

/// The report of `args` under `--mode mode`.
fn with_mode(mode: &str, args: &[&str]) -> Value {
    let mut with = vec!["--mode", mode];
    with.extend_from_slice(args);
    one(&with)
}

per_entry!(for_each_strategy, uneven_n_is_verified);
fn uneven_n_is_verified(mode: &str) {
    if !runs_here(mode) {
        return;
    }
    let r = with_mode(mode, &["--workers", "2", "--n", "100003", "--fn", "sin"]);
    assert_eq!(r["verified"], true, "{mode}");
    assert_eq!(r["n"], 100003, "{mode}");
    assert_eq!(r["mode"], mode);
}

// A user's expression, sent to the workers as text and compiled by each, gives every
// strategy the sequential result bit for bit (and `--work` repeats it as it does a built-in).
per_entry!(for_each_strategy, an_expression_is_verified);
fn an_expression_is_verified(mode: &str) {
    if !runs_here(mode) {
        return;
    }
    let expr = "where(x > 0.5, exp(-x*x/2)*sin(3*x), sqrt(x)) + min(x, 0.25)**2";
    let args = ["--workers", "2", "--n", "20011", "--fn", expr, "--work", "2"];
    let r = with_mode(mode, &args);
    assert_eq!(r["verified"], true, "{mode}");
    assert_eq!(r["function"], expr, "{mode}");
    assert!(r["fn_ns_per_value"].as_f64().is_some_and(|ns| ns > 0.0), "{mode}: {r}");
    assert!(matches!(r["fn_bound"].as_str(), Some("memory" | "compute")), "{mode}");
}

per_entry!(for_each_strategy, a_single_element_is_verified);
fn a_single_element_is_verified(mode: &str) {
    if runs_here(mode) {
        assert_eq!(with_mode(mode, &["--workers", "2", "--n", "1"])["verified"], true, "{mode}");
    }
}

#[test]
fn an_empty_input_is_refused() {
    let empty = common::run(&["--workers", "2", "--n", "0", "--mode", "all"]);
    assert_eq!(empty.status.code(), Some(2), "{}", empty.stderr);
    assert!(empty.stderr.contains("--n must be at least 1"), "{}", empty.stderr);
}

per_entry!(for_each_codec, every_function_and_strategy_agree_with_sequential);
fn every_function_and_strategy_agree_with_sequential(codec: &str) {
    for f in ["exp", "ln", "sqrt"] {
        let args = [
            "--workers",
            "3",
            "--n",
            "5003",
            "--splits",
            "7",
            "--codec",
            codec,
            "--fn",
            f,
            "--repeat",
            "1",
        ];
        for mode in modes() {
            assert_eq!(with_mode(mode, &args)["verified"], true, "{mode} {codec} {f}");
        }
    }
}

per_entry!(for_each_transport, every_process_strategy_is_verified_over);
fn every_process_strategy_is_verified_over(transport: &str) {
    if !spawns_here(transport) {
        return;
    }
    let over = TransportKind::named(transport).unwrap();
    for mode in Mode::available(over).into_iter().filter(|m| m.uses_processes()) {
        let args = [
            "--mode",
            mode.name(),
            "--transport",
            transport,
            "--workers",
            "3",
            "--n",
            "100003",
            "--fn",
            "sin",
            "--repeat",
            "2",
        ];
        let r = one(&args);
        assert_eq!(r["verified"], true, "{mode} over {transport}");
        assert_eq!(r["transport"], transport, "{mode}");
        assert_eq!(r["workers"], 3, "{mode} over {transport}");
    }
}

per_entry!(for_each_strategy, heavier_work_gives_the_same_verified_result);
fn heavier_work_gives_the_same_verified_result(mode: &str) {
    if !runs_here(mode) {
        return;
    }
    let r = with_mode(mode, &["--workers", "2", "--n", "3001", "--work", "3"]);
    assert_eq!(r["verified"], true, "{mode}");
    assert_eq!(r["work"], 3, "{mode}");
}

per_entry!(for_each_strategy, reused_buffers_still_give_verified_results_and_say_so);
fn reused_buffers_still_give_verified_results_and_say_so(mode: &str) {
    if !runs_here(mode) {
        return;
    }
    let args = ["--workers", "2", "--n", "3001", "--repeat", "3", "--reuse-buffers"];
    let r = with_mode(mode, &args);
    assert_eq!(r["verified"], true, "{mode}");
    assert_eq!(r["buffers_reused"], true, "{mode}");
    let r = with_mode(mode, &["--workers", "2", "--n", "3001", "--repeat", "2"]);
    assert_eq!(r["buffers_reused"], false, "{mode}");
}

// --keep-input: after the warm-up, every measured run computes on the input the warm-up made
// (no generate phase), is verified against the input regenerated from its seed, and says so.
per_entry!(for_each_strategy, kept_input_is_computed_on_as_it_is_and_verified);
fn kept_input_is_computed_on_as_it_is_and_verified(mode: &str) {
    if !runs_here(mode) {
        return;
    }
    let args = ["--workers", "2", "--n", "3001", "--repeat", "3", "--warmup", "1", "--keep-input"];
    let r = with_mode(mode, &args);
    assert_eq!(r["verified"], true, "{mode}");
    assert_eq!(r["buffers_reused"], true, "{mode}");
    // A strategy whose workers make their own data (owner) has no input to keep.
    let owned = ipcmap::strategy::Mode::named(mode).is_some_and(|m| m.strategy().info().owned);
    assert_eq!(r["input_kept"], !owned, "{mode}");
    if !owned {
        assert_eq!(r["phases_ms"]["generate"], 0.0, "{mode}: {}", r["phases_ms"]);
        assert!(r["verified_by"].as_str().is_some_and(|v| v.contains("seed")), "{mode}");
    }
}

#[test]
fn keep_input_with_in_place_is_refused_with_one_line() {
    let r = common::run(&["--mode", "shm", "--n", "1000", "--keep-input", "--in-place"]);
    common::assert_one_line_error(&r, 2, "--keep-input cannot go with --in-place");
}

per_entry!(for_each_strategy, no_verify_reports_null);
fn no_verify_reports_null(mode: &str) {
    if runs_here(mode) {
        let r = with_mode(mode, &["--workers", "2", "--n", "1000", "--no-verify"]);
        assert_eq!(r["verified"], Value::Null, "{mode}");
    }
}

#[test]
fn split_with_raw_sends_exactly_eight_bytes_per_value_each_way() {
    let n = 100_003u64;
    let r = one(&[
        "--mode",
        "split",
        "--workers",
        "2",
        "--n",
        "100003",
        "--codec",
        "raw",
        "--chunksize",
        "3",
    ]);
    assert_eq!(r["payload_bytes_sent"], 8 * n);
    assert_eq!(r["payload_bytes_received"], 8 * n);
    assert_eq!(r["messages_sent"], 22); // ceil(64 / 3)
    assert_eq!(r["messages_received"], 22);
    assert!(r["bytes_sent"].as_u64().unwrap() > 8 * n, "headers are counted in bytes_sent");
}

#[test]
fn item_with_chunksize_one_sends_one_message_per_value() {
    let r = one(&[
        "--mode",
        "item",
        "--workers",
        "2",
        "--n",
        "2000",
        "--chunksize",
        "1",
        "--codec",
        "raw",
    ]);
    assert_eq!(r["messages_sent"], 2000);
    assert_eq!(r["messages_received"], 2000);
    assert_eq!(r["payload_bytes_sent"], 16000);
    assert_eq!(r["verified"], true);
}

#[test]
fn item_default_chunksize_is_pool_maps_rule() {
    let r = one(&["--mode", "item", "--workers", "4", "--n", "10001"]);
    assert_eq!(r["chunksize"], 626); // ceil(10001 / 16)
    assert_eq!(r["tasks"], 16);
    assert_eq!(r["messages_sent"], 16);
}

#[test]
fn cma_sends_ranges_and_copies_each_value_once_each_way() {
    let r = one(&["--mode", "cma", "--workers", "2", "--n", "100003", "--repeat", "3"]);
    assert_eq!(r["payload_bytes_sent"], 0);
    assert_eq!(r["payload_bytes_received"], 0);
    assert_eq!(r["messages_sent"], 64);
    assert_eq!(r["bytes_copied"], 2 * 8 * 100_003);
    assert_eq!(r["verified"], true);
}

#[test]
fn shm_sends_no_payload_bytes() {
    let r = one(&["--mode", "shm", "--workers", "2", "--n", "100003"]);
    assert_eq!(r["payload_bytes_sent"], 0);
    assert_eq!(r["payload_bytes_received"], 0);
    assert_eq!(r["messages_sent"], 64);
}

#[test]
fn worker_pids_are_distinct_children_that_exited_cleanly() {
    for mode in ["item", "split", "shm"] {
        let r =
            common::run(&["--mode", mode, "--workers", "3", "--n", "30000", "--format", "json"]);
        assert!(r.status.success(), "{}", r.stderr);
        let report: Value = serde_json::from_str(r.stdout.trim()).unwrap();
        let workers = report["worker_detail"].as_array().unwrap();
        assert_eq!(workers.len(), 3);
        let mut pids: Vec<u64> = workers.iter().map(|w| w["pid"].as_u64().unwrap()).collect();
        assert!(pids.iter().all(|&p| p != u64::from(r.pid) && p != u64::from(std::process::id())));
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 3, "pids are distinct: {workers:?}");
        for w in workers {
            // The coordinator reaped each pid as its own child: they were real, live processes.
            assert_eq!(w["exit"], "exited with code 0", "{w}");
        }
        let tasks: u64 = workers.iter().map(|w| w["tasks"].as_u64().unwrap()).sum();
        assert_eq!(tasks, report["tasks"].as_u64().unwrap());
    }
}

#[test]
fn mode_all_runs_every_strategy_on_the_same_data_with_speedups() {
    let reports = run_json(&["--mode", "all", "--workers", "2", "--n", "20000"]);
    let modes: Vec<&str> = reports.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, self::modes());
    for r in &reports {
        assert_eq!(r["verified"], true);
        assert!(r["speedup"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(reports[0]["speedup"], 1.0);
}

#[test]
fn json_carries_every_documented_field() {
    let r = one(&[
        "--mode",
        "split",
        "--workers",
        "2",
        "--n",
        "1000",
        "--repeat",
        "3",
        "--warmup",
        "1",
    ]);
    for field in [
        "mode",
        "workers",
        "n",
        "function",
        "codec",
        "splits",
        "chunksize",
        "tasks",
        "seed",
        "repeat",
        "warmup",
        "wall_ms",
        "wall_ms_min",
        "wall_ms_max",
        "speedup",
        "phases_ms",
        "bytes_sent",
        "bytes_received",
        "payload_bytes_sent",
        "payload_bytes_received",
        "messages_sent",
        "messages_received",
        "channel_gbps",
        "us_per_message",
        "worker_detail",
        "worker_failures",
        "verified",
    ] {
        assert!(r.get(field).is_some(), "missing {field}");
    }
    for phase in [
        "spawn",
        "generate",
        "encode",
        "transfer",
        "compute",
        "compute_max",
        "decode",
        "assemble",
        "wait",
        "shutdown",
    ] {
        assert!(r["phases_ms"][phase].is_number(), "missing phase {phase}");
    }
    assert_eq!(r["repeat"], 3);
    assert_eq!(r["warmup"], 1);
    let (min, med, max) = (
        r["wall_ms_min"].as_f64().unwrap(),
        r["wall_ms"].as_f64().unwrap(),
        r["wall_ms_max"].as_f64().unwrap(),
    );
    assert!(min <= med && med <= max);
}

#[test]
fn csv_has_a_header_and_one_row_per_mode() {
    let r = run(&["--mode", "all", "--workers", "2", "--n", "1000", "--format", "csv"]);
    assert!(r.status.success(), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + self::modes().len());
    assert!(lines[0].starts_with("mode,workers,n,function,work,kernel_isa,codec"), "{}", lines[0]);
    assert!(lines[0].contains("phases_ms.transfer"));
}

#[test]
fn the_table_names_every_phase_with_units() {
    let r = run(&["--mode", "split", "--workers", "2", "--n", "1000", "--details"]);
    assert!(r.status.success(), "{}", r.stderr);
    for word in ["wall ms", "spawn", "transfer", "compute", "GB/s", "µs/msg", "verified"] {
        assert!(r.stdout.contains(word), "table lacks {word}:\n{}", r.stdout);
    }
}

#[test]
fn pipe_moves_its_values_outside_the_frames_and_says_so() {
    let n = 100_003u64;
    let args: Vec<&str> = "--mode pipe --workers 2 --n 100003".split(' ').collect();
    let r = one(&args);
    assert_eq!(r["verified"], true);
    assert_eq!(r["payload_bytes_sent"], 8 * n);
    assert_eq!(r["payload_bytes_received"], 8 * n);
    assert!(r["bytes_sent"].as_u64().unwrap() < 8 * n, "frames carry headers only");
    assert_eq!(r["channel_gbps"], Value::Null, "no frame rate for values that bypass frames");
    assert!(r["moved_by"].as_str().unwrap().contains("pipe"), "{}", r["moved_by"]);
    assert!(r["label"].as_str().unwrap().starts_with("pipe, 64 splits in"), "{}", r["label"]);
}

#[test]
fn in_place_every_strategy_that_can_overwrites_its_input_verified_and_the_rest_are_refused() {
    let can: Vec<&str> = modes()
        .into_iter()
        .filter(|m| Mode::named(m).is_some_and(|m| m.strategy().info().in_place))
        .collect();
    for mode in ["sequential", "threads", "shm"] {
        assert!(can.contains(&mode), "{mode} works in place: {can:?}");
    }
    assert!(!can.contains(&"split") && !can.contains(&"item"), "{can:?}");
    // An uneven n, several blocks of the generator and the checker, and --work 2.
    let args = ["--workers", "2", "--n", "200003", "--work", "2", "--in-place", "--repeat", "3"];
    for mode in &can {
        let mut with = vec!["--mode", mode];
        with.extend_from_slice(&args);
        let r = one(&with);
        assert_eq!(r["verified"], true, "{mode}");
        assert_eq!(r["in_place"], true, "{mode}");
        assert!(r["verified_by"].as_str().unwrap().contains("regenerated from its seed"), "{mode}");
        assert!(r["label"].as_str().unwrap().ends_with("in place"), "{mode}");
    }
    // `all` under --in-place is the strategies that can.
    let all =
        run_json(&["--mode", "all", "--workers", "2", "--n", "5000", "--in-place", "-r", "3"]);
    let ran: Vec<&str> = all.iter().map(|r| r["mode"].as_str().unwrap()).collect();
    assert_eq!(ran.len(), can.len(), "{ran:?}");
    for mode in modes().into_iter().filter(|m| !can.contains(m)) {
        let r = run(&["--mode", mode, "--n", "1000", "--in-place"]);
        common::assert_one_line_error(&r, 2, "cannot work in place");
    }
    // Without --in-place nothing changes.
    let r = one(&["--mode", "shm", "--workers", "2", "--n", "5000", "-r", "3"]);
    assert_eq!(r["in_place"], false);
}

/// owner: the workers make and keep the data. The coordinator holds neither input nor output
/// (its peak RSS per value is a fraction of a byte where the others hold 16), each worker
/// reports its own peak memory (its range, 8 bytes a value), the result is verified by
/// checksum, a wrong bit in a worker's result fails the run with one line, and it runs over
/// every spawning transport.
#[test]
fn owner_moves_the_work_not_the_data_and_is_verified_by_checksum() {
    let n = 16_000_000;
    let args = ["--mode", "owner", "--workers", "2", "--n", "16000000", "--repeat", "3"];
    let r = one(&args);
    assert_eq!(r["verified"], true);
    assert!(r["verified_by"].as_str().unwrap().contains("checksum"), "{r}");
    assert_eq!(r["tasks"], 2, "a range per worker");
    let per_value = r["peak_rss_bytes_per_value"].as_f64().unwrap();
    // A process's own pages (its code, its heap) are a few MB: well under 2 bytes a value.
    assert!(per_value < 2.0, "the coordinator holds no input: {per_value} bytes a value");
    let workers = r["worker_detail"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for w in workers {
        let mb = w["peak_rss_mb"].as_f64().expect("each worker says its peak memory");
        // Its half of the input, 8 bytes a value, held in its own memory.
        assert!(mb > 0.9 * (n / 2 * 8) as f64 / 1e6, "{w}");
    }
    // Only headers and checksums cross: 16 payload bytes a task back.
    assert_eq!(r["payload_bytes_received"], 32, "{r}");
    assert!(r["phases_ms"]["generate"].as_f64().unwrap() > 0.0, "the workers' generating");
    assert_eq!(r["payload_bytes_sent"], 0, "{r}");
    let flipped = common::run_with(
        &["--mode", "owner", "-w", "2", "--n", "300000", "--cold"],
        &[("IPCMAP_FAULT", "flip-after=0@1")],
        std::time::Duration::from_secs(60),
    );
    common::assert_one_line_error(&flipped, 1, "is not the sequential kernel's");
    // No hidden sequential runs: no speedup, and nothing but the owner's runs.
    let r = one(&["--mode", "owner", "-w", "2", "--n", "300000", "-r", "3", "--no-baseline"]);
    assert!(r["speedup"].is_null(), "{r}");
    assert_eq!(r["baseline_runs"], 0, "{r}");
}

per_entry!(for_each_transport, owner_is_verified_over);
fn owner_is_verified_over(transport: &str) {
    if spawns_here(transport) {
        let args = ["-w", "2", "--n", "300001", "-r", "3", "--transport", transport];
        assert_eq!(with_mode("owner", &args)["verified"], true, "{transport}");
    }
}

/// The answer first: a piped table opens with its header and the summary in words
/// ("sequential took ...", each strategy against it, hyperfine's way), before any table; the
/// phase tables wait for --details; no colour unless asked (--color always), and NO_COLOR
/// holds auto off.
#[test]
fn the_answer_comes_first_in_words_and_colour_only_when_asked() {
    let args = ["--mode", "sequential,split,threads", "-w", "2", "--n", "20000", "-r", "3"];
    let r = run(&args);
    assert!(r.status.success(), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("ipcmap: exp over 20,000 f64"), "{}", r.stdout);
    assert!(lines[1].starts_with("sequential took "), "{}", r.stdout);
    // Then the function: its cost a value and whether it is memory- or compute-bound.
    assert!(lines[2].starts_with("exp: ") && lines[2].contains("-bound"), "{}", r.stdout);
    // A verdict line a strategy, each followed by its why.
    let verdicts: Vec<&str> =
        lines[3..7].iter().copied().filter(|l| !l.starts_with("  why: ")).collect();
    assert_eq!(verdicts.len(), 2, "{}", r.stdout);
    for strategy in ["split", "threads"] {
        assert!(verdicts.iter().any(|l| l.contains(strategy)), "{strategy}: {}", r.stdout);
    }
    assert!(
        verdicts
            .iter()
            .all(|l| l.contains("times faster than") || l.contains("no clear difference")),
        "{}",
        r.stdout
    );
    assert!(
        lines[3..7].iter().any(|l| l.starts_with("  why: its largest cost is ")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Phases of the median run"), "details on request: {}", r.stdout);
    assert!(!r.stdout.contains('\u{1b}') && !r.stderr.contains('\u{1b}'), "piped: no colour");
    let always = run(&[&args[..], &["--color", "always"]].concat());
    assert!(always.stdout.contains("\u{1b}["), "--color always: {}", always.stdout);
    let details = run(&[&args[..], &["--details"]].concat());
    assert!(details.stdout.contains("Phases of the median run"), "{}", details.stdout);
    let no_color = common::run_with(
        &[&args[..], &["--color", "auto"]].concat(),
        &[("NO_COLOR", "1")],
        std::time::Duration::from_secs(60),
    );
    assert!(!no_color.stdout.contains('\u{1b}'), "{}", no_color.stdout);
}
