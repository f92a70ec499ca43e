//! The end-to-end harness: every strategy on real worker processes, with warm-up and repeats,
//! written as JSON (one report per line) to `target/ipcmap-bench/end_to_end.json` and shown as
//! a table.
//!
//!     cargo build --release --workspace && cargo bench -p ipcmap-benches --bench end_to_end
//!
//! Settings from the environment: IPCMAP_BENCH_N (default 10,000,000), IPCMAP_BENCH_WORKERS
//! (default 2,4), IPCMAP_BENCH_REPEAT (default 5), IPCMAP_BENCH_WARMUP (default 1).

use ipcmap::config::RunRequest;
use ipcmap::engine::Session;
use ipcmap::report::{render_table, write_json};
use ipcmap::settings::TransportKind;
use ipcmap::strategy::Mode;
use std::path::PathBuf;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|v| v.trim().replace('_', "").parse().ok())
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: then only check setup.
    if !std::env::args().any(|a| a == "--bench") {
        println!("end_to_end: run with `cargo bench -p ipcmap-benches --bench end_to_end`");
        return;
    }
    let worker_bin = match ipcmap_benches::worker_bin() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("end_to_end: {e}");
            std::process::exit(2);
        }
    };
    let n = env_list("IPCMAP_BENCH_N", "10000000").first().copied().unwrap_or(10_000_000);
    let repeat = env_list("IPCMAP_BENCH_REPEAT", "5").first().copied().unwrap_or(5);
    let warmup = env_list("IPCMAP_BENCH_WARMUP", "1").first().copied().unwrap_or(1);
    let mut session = Session::new();
    let mut reports = Vec::new();
    for workers in env_list("IPCMAP_BENCH_WORKERS", "2,4") {
        let request = RunRequest {
            settings: ipcmap::settings::Settings {
                n,
                worker_bin: Some(worker_bin.clone()),
                ..ipcmap::settings::Settings::default()
            },
            modes: Mode::available(TransportKind::default()),
            workers: Some(workers),
            repeat: Some(repeat),
            warmup: Some(warmup),
            ..RunRequest::default()
        };
        let config = match request.validate() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("end_to_end: {e}");
                std::process::exit(2);
            }
        };
        match session.run(&config, |_, _| {}) {
            Ok(r) => {
                print!("{}", render_table(&r));
                reports.extend(r);
            }
            Err(e) => {
                eprintln!("end_to_end: {e}");
                std::process::exit(1);
            }
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ipcmap-bench");
    let path = dir.join("end_to_end.json");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::File::create(&path))
        .and_then(|mut f| write_json(&reports, &mut f));
    match written {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("end_to_end: writing {}: {e}", path.display()),
    }
}
