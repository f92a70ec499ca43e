#!/usr/bin/env python3
"""The performance targets, measured in one go on this machine, each ratio next to its target.

    python3 scripts/targets.py [--n 10000000] [--workers 2] [--rounds 4] [--no-slow] [--billions]
                               [--out target/targets]

Runs the Python reference (scripts/tutorial.py, which sets up its own numpy), the coordinator's
strategies, and the raw ipc-channel probes (`coordinator probe`) interleaved, round after round
(scripts/measure.py: each invocation warms up first, every figure is a median with its spread,
every ratio has a 95% bootstrap interval), then prints a Markdown table: ratio, target,
measured, met or missed (and by how much). Writes the table and every raw sample to --out.
`--warm` adds issue 37's rows (scripts/warm_check.py), `--model` issue 34's (scripts/model_check.py). `--links` (root) adds issue 39's rows from scripts/links.py. `--no-slow` skips Python's per-item pool.map (about 40 s at n = 10M, one run). `--billions`
adds issue 23's rows: one `coordinator sweep --n 1e7,1e9` of the strategies that must stay
linear (ns per value at 10^9 against 10^7, per run), and owner over MPI with 3 ranks at 10^9
(each rank's peak RSS against the 8 GB that rank 0 would need for the whole vector), several
minutes and 17 GB of memory.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from measure import figure, interleave, json_lines, ratio

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = ROOT / "target" / "release" / "coordinator"


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4, help="rounds of interleaved measurement")
    p.add_argument("--no-slow", action="store_true")
    p.add_argument("--billions", action="store_true", help="issue 23's rows at n = 10^9 (minutes)")
    p.add_argument("--warm", action="store_true",
                   help="issue 37's rows: scripts/warm_check.py (numpy warm, shm faults, exp in cache)")
    p.add_argument("--model", action="store_true",
                   help="issue 34's rows: scripts/model_check.py --quick (the held-out grid, break-even, "
                        "two calibrations; about 10 minutes)")
    p.add_argument("--links", action="store_true",
                   help="issue 39's rows: scripts/links.py at n = 10^6 (root, a few minutes)")
    p.add_argument("--out", default=str(ROOT / "target" / "targets"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # owner over MPI (--billions) needs the `mpi` feature (Open MPI and libclang installed).
    features = ["--features", "coordinator/mpi"] if args.billions or args.links else []
    subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet", *features], check=True, cwd=ROOT)
    n, w = str(args.n), str(args.workers)
    records = {}

    def ipcmap(name, field, *flags, n=n):
        """Two measured runs after one warm-up per invocation; samples of `field`."""
        def measure():
            r = json_lines([str(COORDINATOR), *flags, "--n", n, "--repeat", "2", "--warmup", "1",
                            "--format", "json"], ROOT)[0]
            records.setdefault(name, []).append(r)
            return r["runs_ms"] if field == "wall_ms" else [r[field]]
        return name, measure

    def python(name, *flags, warm=True):
        """The tutorial's program twice in one process, the first a warm-up (unless warm=False)."""
        def measure():
            r = json_lines([sys.executable, str(ROOT / "scripts" / "tutorial.py"), "--n", n, *flags,
                            "--repeat", "2" if warm else "1"], ROOT)
            records.setdefault(name, []).extend(r)
            return [x["wall_ms"] for x in r[1:] if warm] or [x["wall_ms"] for x in r]
        return name, measure

    def probe(transport="local"):
        """`coordinator probe` over `transport`, with the machine's floors in the same run."""
        def measure():
            r = json_lines([str(COORDINATOR), "probe", "--workers", w, "--bytes", str(args.n // 64 * 8),
                            "--transport", transport, "--format", "json"], ROOT)[0]
            records.setdefault(f"probe_{transport}", []).append(r)
            return [r]
        return measure

    def model_errors():
        """Issue 34: every strategy with --predict (the calibration cached after the first):
        |measured / predicted - 1| of each."""
        r = json_lines([str(COORDINATOR), "--mode", "all", "--workers", w, "--n", n, "--repeat", "3",
                        "--predict", "--format", "json"], ROOT)
        records.setdefault("model", []).extend(r)
        return [abs(x["prediction_error"]) for x in r if x.get("prediction_error") is not None]

    def trace_memory():
        """Issue 33: the coordinator's peak memory (its children's, by getrusage in a fresh
        Python) writing a trace of 200,000 single-value items, against the trace's size."""
        trace = out / "trace.json"
        code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        kib = subprocess.run([sys.executable, "-c", code, str(COORDINATOR), "--mode", "item", "--chunksize", "1",
                              "--n", "200000", "--workers", w, "--repeat", "2", "--warmup", "0",
                              "--trace", str(trace)], check=True, capture_output=True, text=True).stdout
        return [int(kib.strip()) / 1024 / (trace.stat().st_size / 1e6)]

    expr3 = "exp(-x*x/2)*sin(3*x)+sqrt(x)"

    def function_probe():
        """Issue 36: `probe --fn` of the built-in exp, exp as an expression and a three-function
        expression, streamed over n values on one core."""
        r = json_lines([str(COORDINATOR), "probe", "--fn", f"exp;exp(x);{expr3}", "--values", n,
                        "--format", "json"], ROOT)[0]
        records.setdefault("functions", []).append(r)
        return [r]

    def numexpr_time():
        """Issue 36: numexpr (PyPI, in scripts/.venv) on one thread, the same expression and n."""
        r = json_lines([sys.executable, str(ROOT / "scripts" / "numexpr_time.py"), expr3, "--n", n,
                        "--repeat", "2"], ROOT)[0]
        records.setdefault("numexpr", []).append(r)
        return r["numexpr_ns_per_value"]

    def codec_probe():
        r = json_lines([str(COORDINATOR), "probe", "--codecs", "--format", "json"], ROOT)[0]
        records.setdefault("codecs", []).append(r)
        return [r]

    measurements = dict([
        python("numpy", "--only", "sequential"),
        python("python_split", "--only", "split_64", "--workers", w),
        ipcmap("sequential", "wall_ms", "--mode", "sequential"),
        ipcmap("shm", "wall_ms", "--mode", "shm", "--workers", w),
        ipcmap("threads", "wall_ms", "--mode", "threads", "--workers", w),
        ipcmap("cma", "wall_ms", "--mode", "cma", "--workers", w),
        ipcmap("split_raw_gbps", "channel_gbps", "--mode", "split", "--codec", "raw", "--workers", w),
        ipcmap("split_raw", "wall_ms", "--mode", "split", "--codec", "raw", "--workers", w),
        ipcmap("split_raw_uds_gbps", "channel_gbps", "--mode", "split", "--codec", "raw", "--workers", w,
               "--transport", "uds"),
        ipcmap("split_raw_uds", "wall_ms", "--mode", "split", "--codec", "raw", "--workers", w,
               "--transport", "uds"),
        ipcmap("split", "wall_ms", "--mode", "split", "--workers", w),
        ipcmap("split_gbps", "channel_gbps", "--mode", "split", "--workers", w),
        ipcmap("item", "wall_ms", "--mode", "item", "--workers", w),
        ipcmap("item_pickle", "wall_ms", "--mode", "item", "--codec", "pickle", "--workers", w),
        ipcmap("item1_us", "us_per_message", "--mode", "item", "--chunksize", "1", "--codec", "raw",
               "--workers", w, n="200000"),
        ipcmap("shm64_speedup", "speedup", "--mode", "shm", "--work", "64", "--workers", w),
        ipcmap("threads64_speedup", "speedup", "--mode", "threads", "--work", "64", "--workers", w),
        ipcmap("shm_warm", "wall_ms", "--mode", "shm", "--workers", w, "--reuse-buffers"),
        ipcmap("threads_warm", "wall_ms", "--mode", "threads", "--workers", w, "--reuse-buffers"),
        ipcmap("rss_split", "coordinator_peak_rss_mb", "--mode", "split", "--workers", w, "--no-verify"),
        ipcmap("rss_shm", "coordinator_peak_rss_mb", "--mode", "shm", "--workers", w, "--no-verify"),
        *[ipcmap(f"rss_1e8_{m}", "peak_rss_bytes_per_value", "--mode", m, "--workers", w, n="100000000")
          for m in ("sequential", "threads", "split", "shm", "cma")],
        *[ipcmap(f"rss_1e8_inplace_{m}", "peak_rss_bytes_per_value", "--mode", m, "--workers", w,
                 "--in-place", n="100000000")
          for m in ("sequential", "threads", "shm", "cma")],
        ("probe", probe()),
        ("probe_uds", probe("uds")),
        ("codecs", codec_probe),
        ("functions", function_probe),
        ("numexpr", numexpr_time),
        ("model_errors", model_errors),
        ("trace_memory", trace_memory),
    ])
    raw = interleave(measurements, args.rounds)
    probes = raw.pop("probe")
    raw["echo_gbps"] = [p["echo_gbps"] for p in probes]
    raw["echo8_us"] = [p["echo8_us_per_message"] for p in probes]
    uds = raw.pop("probe_uds")
    raw["uds_echo_wall_gbps"] = [p["echo_wall_gbps"] for p in uds]
    raw["uds_floor_gbps"] = [p["floor_socketpair_gbps"] for p in uds]
    raw["uds_echo8_us"] = [p["echo8_us_per_message"] for p in uds]
    # The fastest codec's decode of one split part (156,250 values) against memcpy of the same
    # bytes, both from the same `probe --codecs` run.
    part = 156_250
    raw["codec_decode_vs_memcpy"] = [
        max(row["decode_gbps"] for row in c["rows"] if row["values"] == part and row["shape"] == "block")
        / next(m["gbps"] for m in c["memcpy"] if m["values"] == part)
        for c in raw.pop("codecs")
    ]
    functions = raw.pop("functions")
    streamed = {f: [next(row["streamed_ns_per_value"][0] for row in p["rows"] if row["function"] == f)
                    for p in functions] for f in ("exp", "exp(x)", expr3)}
    py_item = None
    if not args.no_slow:  # one cold run: the tutorial's own timing, tens of seconds
        _, slow = python("python_item", "--only", "item_default", "--slow", "--workers", w, warm=False)
        py_item = slow()
    billions = []
    if args.billions:
        modes = ("sequential", "threads", "shm", "cma", "split", "owner")
        sweep = json_lines([str(COORDINATOR), "sweep", "--n", "10000000,1000000000", "--mode",
                            ",".join(modes), "--workers", w, "--format", "json"], ROOT)
        records["billions"] = sweep
        per_value = {(r["mode"], r["n"]): [ms * 1e6 / r["n"] for ms in r["runs_ms"]] for r in sweep}
        for m in modes:
            billions.append((f"ns per value at n = 10^9 / at 10^7, {m} (same sweep, every run)", 1.25,
                             per_value[(m, 1_000_000_000)], per_value[(m, 10_000_000)], "<="))
        mpi = json_lines(["mpirun", "-np", "3", "--oversubscribe", str(COORDINATOR), "--transport", "mpi",
                          "--mode", "owner", "--n", "1e9", "--repeat", "3", "--no-baseline",
                          "--format", "json"], ROOT)[0]
        records["owner_mpi"] = [mpi]
        ranks = [wd["peak_rss_mb"] for wd in mpi["worker_detail"]]
        billions.append(("owner over MPI, 3 ranks, n = 10^9: each rank's peak RSS / 8 GB (the whole "
                         "vector)", 0.6, [max(ranks)], [8000.0], "<="))
        billions.append(("owner over MPI, 3 ranks, n = 10^9: rank 0's peak RSS / 8 GB", 0.6,
                         [mpi["coordinator_peak_rss_mb"]], [8000.0], "<="))
    warm = []
    if args.warm:
        out_warm = subprocess.run([sys.executable, str(ROOT / "scripts" / "warm_check.py"), "--n", n,
                                   "--workers", w, "--rounds", str(args.rounds), "--json"], cwd=ROOT,
                                  check=True, capture_output=True, text=True).stdout
        checked = json.loads(out_warm.strip().splitlines()[-1])
        records["warm"] = checked
        warm = [tuple(row) for row in checked["rows"]]
    model = []
    if args.model:
        out_model = subprocess.run([sys.executable, str(ROOT / "scripts" / "model_check.py"), "--quick",
                                    "--json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
        checked = json.loads(out_model.strip().splitlines()[-1])
        records["model"] = checked
        for name, target, key in [
            ("issue 34: held-out grid (cold, warm, 1/2/4 workers, 3 transports, 3 codecs): median "
             "|measured / predicted - 1|", 0.15, "median_error"),
            ("issue 34: held-out grid: 90th percentile |measured / predicted - 1|", 0.35, "p90_error"),
            ("issue 34: break-even --work, predicted against the measured crossover, the worst "
             "strategy's ratio", 1.5, "break_even_worst_ratio"),
            ("issue 34: two calibrations (before and after the grid), the worst strategy's "
             "|after / before - 1|", 0.2, "calibrations_worst_disagreement"),
        ]:
            value = checked.get(key)
            model.append((name, target, [value] if value is not None else None,
                          [1.0] if value is not None else None, "<="))
    links = []
    if args.links:
        # links.py's Markdown rows: the link's name, then its 8-byte round trip and probe seconds.
        text = subprocess.run([sys.executable, str(ROOT / "scripts" / "links.py"), "--n", "1000000",
                               "--repeat", "3"], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout
        records["links"] = text
        row = {}
        for line in text.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) > 3 and cells[1].endswith("µs"):
                row[cells[0].split(":")[0]] = (float(cells[1].split()[0]), float(cells[3]))
        relay = row["relay alone, no delay"][0]
        rtt, seconds = row["1 Gb/s + 1 ms"]
        links.append(("issue 39: 8-byte round trip at 1 Gb/s + 1 ms / (2 ms + the relay's own round "
                      "trip)", 1.15, [rtt], [2000.0 + relay], "<="))
        links.append(("issue 39: `probe` over 1 Gb/s + 1 ms, s / 20 s", 1.0, [seconds], [20.0], "<="))
    errors = sorted(raw.pop("model_errors"))
    model_median = [errors[len(errors) // 2]] if errors else None
    model_p90 = [errors[min(len(errors) - 1, int(0.9 * len(errors)))]] if errors else None
    data_mb = [args.n * 8 / 1e6] * 3
    one = [1.0] * 3
    # The split channel target is 2x the 1.3-1.6 GB/s measured before the work (issue 14): the
    # upper end, as a target in GB/s, against a constant 1 GB/s denominator.
    gbps_unit = [1.0] * 3
    # shm/threads with huge-page shared memory: only where the kernel gives them (never set here).
    shmem_path = Path("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
    shmem = shmem_path.read_text().split("[")[-1].split("]")[0] if shmem_path.exists() else "unknown"
    huge = shmem in ("advise", "always", "force")

    # (ratio, target, numerator samples, denominator samples, "<=" or ">=")
    rows = [
        ("ipcmap sequential / numpy `exp(rand(n))`", 0.45, raw["sequential"], raw["numpy"], "<="),
        (f"ipcmap shm, {w} workers / numpy sequential", 0.8, raw["shm"], raw["numpy"], "<="),
        ("ipcmap shm / ipcmap threads, same workers", 1.15, raw["shm"], raw["threads"], "<="),
        (f"ipcmap shm / ipcmap threads, `shmem_enabled={shmem}` (needs advise)", 1.3,
         raw["shm"] if huge else None, raw["threads"], "<="),
        (f"ipcmap cma, {w} workers / numpy `exp(rand(n))`", 0.6, raw["cma"], raw["numpy"], "<="),
        ("ipcmap cma / ipcmap threads, same workers", 1.3, raw["cma"], raw["threads"], "<="),
        (f"warm (`--reuse-buffers`): ipcmap shm, {w} workers / numpy sequential", 0.8, raw["shm_warm"], raw["numpy"], "<="),
        ("warm (`--reuse-buffers`): ipcmap shm / ipcmap threads", 1.15, raw["shm_warm"], raw["threads_warm"], "<="),
        ("ipcmap split (64 parts, raw) channel GB/s / raw echo GB/s", 0.8, raw["split_raw_gbps"], raw["echo_gbps"], ">="),
        ("ipcmap split channel GB/s at the defaults (2x the 1.6 GB/s before issue 14)", 3.2, raw["split_gbps"], gbps_unit, ">="),
        ("ipcmap item `--chunksize 1` µs per message / raw 8-byte echo", 1.5, raw["item1_us"], raw["echo8_us"], "<="),
        ("uds echo GB/s of 1.25 MB frames / bare socketpair echo in the same probe", 0.8,
         raw["uds_echo_wall_gbps"], raw["uds_floor_gbps"], ">="),
        ("split `--codec raw` channel GB/s: over uds / over ipc-channel", 1.5,
         raw["split_raw_uds_gbps"], raw["split_raw_gbps"], ">="),
        ("split `--codec raw` wall: over uds / over ipc-channel", 0.8, raw["split_raw_uds"], raw["split_raw"], "<="),
        ("8-byte echo µs per message: uds / ipc-channel", 0.5, raw["uds_echo8_us"], raw["echo8_us"], "<="),
        ("Python `split(data, 64)` / ipcmap split, same workers", 4.0, raw["python_split"], raw["split"], ">="),
        ("Python `pool.map` default chunksize (1 cold run) / ipcmap item default chunksize", 50.0, py_item, raw["item"], ">="),
        ("Python `pool.map` default chunksize (1 cold run) / ipcmap item `--codec pickle`", 30.0, py_item, raw["item_pickle"], ">="),
        ("fastest codec's decode GB/s at 156,250 values / memcpy in the same `probe --codecs`", 0.5,
         raw["codec_decode_vs_memcpy"], one, ">="),
        (f"ipcmap shm `--work 64`, {w} workers: speedup over sequential", 1.8, raw["shm64_speedup"], one, ">="),
        (f"ipcmap threads `--work 64`, {w} workers: speedup over sequential", 1.8, raw["threads64_speedup"], one, ">="),
        ("coordinator peak RSS / data size, split", 2.5, raw["rss_split"], data_mb, "<="),
        *[(f"peak RSS / (8 x n) at n = 10^8, {m} (verified)", 2.1 if m in ("sequential", "threads") else 2.2,
           raw[f"rss_1e8_{m}"], [8.0] * len(raw[f"rss_1e8_{m}"]), "<=")
          for m in ("sequential", "threads", "split", "shm", "cma")],
        *[(f"peak RSS / (8 x n) at n = 10^8, {m} `--in-place` (verified from the seed)", 1.15,
           raw[f"rss_1e8_inplace_{m}"], [8.0] * len(raw[f"rss_1e8_inplace_{m}"]), "<=")
          for m in ("sequential", "threads", "shm", "cma")],
        ("coordinator peak RSS / data size, shm", 2.2, raw["rss_shm"], data_mb, "<="),
        ("issue 34: the model's median |measured / predicted - 1|, every strategy, every round", 0.15,
         model_median, [1.0] if model_median else None, "<="),
        ("issue 34: the model's 90th percentile |measured / predicted - 1|", 0.35,
         model_p90, [1.0] if model_p90 else None, "<="),
        ("issue 33: peak RSS writing `--trace` of 200,000 items, MB / the trace's MB (was 28x)", 1.5,
         raw["trace_memory"], [1.0] * len(raw["trace_memory"]), "<="),
        ("issue 36: `--fn 'exp(x)'` compute ns a value / the built-in `exp` (`probe --fn`, streamed)", 1.25,
         streamed["exp(x)"], streamed["exp"], "<="),
        (f"issue 36: `--fn '{expr3}'` ns a value / numexpr's, one thread", 1.5,
         streamed[expr3], raw["numexpr"], "<="),
        *billions,
        *warm,
        *model,
        *links,
    ]
    seq_isa = records["sequential"][0].get("kernel_isa")
    table = [
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} cores, "
        f"n = {args.n:,}, exp, kernel {seq_isa}: {args.rounds} interleaved rounds of every measurement, "
        "each ipcmap invocation 1 warm-up + 2 measured runs, each Python one 1 warm-up + 1 measured run; "
        "medians ± MAD, ratios of medians with 95% bootstrap intervals.",
        "",
        f"Floors: numpy `exp(rand(n))` {figure(raw['numpy'])}; raw echo {figure(raw['echo_gbps'], 'GB/s', 2)} "
        f"({probes[0]['echo_message_bytes']:,}-byte messages); 8-byte echo {figure(raw['echo8_us'], 'µs', 2)} "
        f"per message; spawn-and-hello of {probes[0]['workers']} workers "
        f"{figure([p['spawn_hello_ms'] for p in probes], 'ms', 2)}.",
        "",
        "| ratio (interleaved) | target | measured | 95% interval | |",
        "|---|---:|---:|---:|---|",
    ]
    for name, target, num, den, op in rows:
        if num is None:
            why = "skipped (--no-slow)" if "pool.map" in name else f"not run: shmem_enabled={shmem}"
            table.append(f"| {name} | {op} {target:g} | not run | | {why} |")
            continue
        value, low, high = ratio(num, den)
        met = value <= target if op == "<=" else value >= target
        verdict = "met" if met else (
            f"missed by {value / target - 1:.0%}" if op == "<=" else f"missed by {1 - value / target:.0%}")
        interval = "–" if low is None else f"{low:.2f}–{high:.2f}"
        table.append(f"| {name} | {op} {target:g} | {value:.2f} | {interval} | {verdict} |")
    text = "\n".join(table) + "\n"
    (out / "targets.md").write_text(text)
    (out / "records.json").write_text(json.dumps({"samples": raw, "records": records}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
