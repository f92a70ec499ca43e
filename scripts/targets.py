#!/usr/bin/env python3
"""The performance targets, measured in one go on this machine, each ratio next to its target.

    python3 scripts/targets.py [--n 10000000] [--workers 2] [--repeat 5] [--no-slow] [--out target/targets]

Runs the Python reference (scripts/tutorial.py, which sets up its own numpy), the coordinator's
strategies, and the raw ipc-channel probes (`coordinator probe`), then prints a Markdown table:
ratio, target, measured, met or missed (and by how much). Writes the table and every raw record
to --out. `--no-slow` skips Python's per-item pool.map (about 40 s at n = 10M).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = ROOT / "target" / "release" / "coordinator"


def lines(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-slow", action="store_true")
    p.add_argument("--out", default=str(ROOT / "target" / "targets"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet"], check=True, cwd=ROOT)
    n, w, rep = str(args.n), str(args.workers), str(args.repeat)
    records = {}

    def ipcmap(name, *flags, n=n):
        r = lines([str(COORDINATOR), *flags, "--n", n, "--repeat", rep, "--warmup", "1", "--format", "json"])
        records[name] = r
        return r[0] if len(r) == 1 else r

    def python(name, *flags):
        r = lines([sys.executable, str(ROOT / "scripts" / "tutorial.py"), "--n", n, *flags])
        records[name] = r
        return statistics.median(x["wall_ms"] for x in r)

    numpy_seq = python("python_sequential", "--only", "sequential", "--repeat", rep)
    py_split = python("python_split", "--only", "split_64", "--workers", w, "--repeat", "3")
    py_item = None if args.no_slow else python("python_item", "--only", "item_default", "--slow", "--workers", w)

    seq = ipcmap("sequential", "--mode", "sequential")
    shm = ipcmap("shm", "--mode", "shm", "--workers", w)
    threads = ipcmap("threads", "--mode", "threads", "--workers", w)
    split_raw = ipcmap("split_raw", "--mode", "split", "--codec", "raw", "--workers", w)
    split = ipcmap("split", "--mode", "split", "--workers", w)
    item = ipcmap("item", "--mode", "item", "--workers", w)
    item1 = ipcmap("item_chunk1", "--mode", "item", "--chunksize", "1", "--codec", "raw", "--workers", w, n="200000")
    shm64 = ipcmap("shm_work64", "--mode", "shm", "--work", "64", "--workers", w)
    threads64 = ipcmap("threads_work64", "--mode", "threads", "--work", "64", "--workers", w)
    shm_warm = ipcmap("shm_warm", "--mode", "shm", "--workers", w, "--reuse-buffers")
    threads_warm = ipcmap("threads_warm", "--mode", "threads", "--workers", w, "--reuse-buffers")
    rss_split = ipcmap("rss_split", "--mode", "split", "--workers", w, "--no-verify")
    rss_shm = ipcmap("rss_shm", "--mode", "shm", "--workers", w, "--no-verify")
    probe = lines([str(COORDINATOR), "probe", "--workers", w, "--bytes", str(args.n // 64 * 8), "--format", "json"])[0]
    records["probe"] = [probe]
    data_mb = args.n * 8 / 1e6

    # (ratio, target, measured, "<=" or ">=")
    rows = [
        ("ipcmap sequential / numpy `exp(rand(n))`", 1.0, seq["wall_ms"] / numpy_seq, "<="),
        (f"ipcmap shm, {w} workers / numpy sequential", 0.8, shm["wall_ms"] / numpy_seq, "<="),
        ("ipcmap shm / ipcmap threads, same workers", 1.15, shm["wall_ms"] / threads["wall_ms"], "<="),
        (f"warm (`--reuse-buffers`): ipcmap shm, {w} workers / numpy sequential", 0.8, shm_warm["wall_ms"] / numpy_seq, "<="),
        ("warm (`--reuse-buffers`): ipcmap shm / ipcmap threads", 1.15, shm_warm["wall_ms"] / threads_warm["wall_ms"], "<="),
        ("ipcmap split (64 parts, raw) channel GB/s / raw echo GB/s", 0.8, split_raw["channel_gbps"] / probe["echo_gbps"], ">="),
        ("ipcmap item `--chunksize 1` µs per message / raw 8-byte echo", 1.5, item1["us_per_message"] / probe["echo8_us_per_message"], "<="),
        ("Python `split(data, 64)` / ipcmap split, same workers", 4.0, py_split / split["wall_ms"], ">="),
        ("Python `pool.map` default chunksize / ipcmap item default chunksize", 50.0,
         None if py_item is None else py_item / item["wall_ms"], ">="),
        (f"ipcmap shm `--work 64`, {w} workers: speedup over sequential", 1.8, shm64["speedup"], ">="),
        (f"ipcmap threads `--work 64`, {w} workers: speedup over sequential", 1.8, threads64["speedup"], ">="),
        ("coordinator peak RSS / data size, split", 2.5, rss_split["coordinator_peak_rss_mb"] / data_mb, "<="),
        ("coordinator peak RSS / data size, shm", 2.2, rss_shm["coordinator_peak_rss_mb"] / data_mb, "<="),
    ]
    table = [
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} cores, "
        f"n = {args.n:,}, exp, medians of {args.repeat} runs after 1 warm-up (kernel: {seq.get('kernel_isa')}).",
        "",
        f"Floors: numpy `exp(rand(n))` {numpy_seq:.1f} ms; raw echo {probe['echo_gbps']:.2f} GB/s "
        f"({probe['echo_message_bytes']:,}-byte messages); 8-byte echo {probe['echo8_us_per_message']:.2f} µs per message; "
        f"spawn-and-hello of {probe['workers']} workers {probe['spawn_hello_ms']:.2f} ms.",
        "",
        "| ratio (same run) | target | measured | |",
        "|---|---:|---:|---|",
    ]
    for name, target, value, op in rows:
        if value is None:
            table.append(f"| {name} | {op} {target:g} | not run | skipped (--no-slow) |")
            continue
        met = value <= target if op == "<=" else value >= target
        verdict = "met" if met else (
            f"missed by {value / target - 1:.0%}" if op == "<=" else f"missed by {1 - value / target:.0%}")
        table.append(f"| {name} | {op} {target:g} | {value:.2f} | {verdict} |")
    text = "\n".join(table) + "\n"
    (out / "targets.md").write_text(text)
    (out / "records.json").write_text(json.dumps(records, indent=1))
    print(text)


if __name__ == "__main__":
    main()
