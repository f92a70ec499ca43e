#!/usr/bin/env python3
"""Issue 37's figures: ipcmap warm against numpy warm, shared memory's page faults, and the
exp kernel against numpy's, measured in interleaved rounds on this machine.

    python3 scripts/warm_check.py [--n 10000000] [--workers 2] [--rounds 5]

Runs inside scripts/.venv (scripts/tutorial.py sets it up, with numpy). Measured, each round,
in turn:
  - numpy warm: `exp(part, out=part_of_result)` over one part a thread of a ThreadPool(workers)
    that exists, on data and a result that exist (made once, outside the timer);
  - ipcmap threads and shm with `--keep-input` (the input made by the warm-up run and kept,
    buffers reused: only the strategy's work is timed), 3 measured runs an invocation; shm
    twice, its workers started every run (`--pool per-run`, the default) and started once and
    kept (`--pool persistent`, whose one-time start is printed on its own);
  - shm's minor page faults and system CPU a run, buffers reused, per-run and persistent (the
    coordinator and its workers, by getrusage of the children: invocations of 3 and 13 runs,
    the difference / 10);
  - cold at --cold-n (10^8): threads and shm `--cold` (one fresh run an invocation: the
    tutorial's timer), against the floor from this machine's calibration (`coordinator predict
    -m threads`: first touch + generate + exp over the cores); which pages shm's regions got
    (`shm_pages`: reserved huge pages where `vm.nr_hugepages` leaves enough free) sets its
    target (2.0 with 4 KiB pages, 1.3 with 2 MiB);
  - the exp kernel in cache: `coordinator probe --fn exp` against numpy's exp over 1,536
    values (12 KiB, in L1) with out=, timed over 20,000 calls.
Prints a Markdown table of ratios with 95% bootstrap intervals, each beside its target, and the
kernel path each side took. `scripts/targets.py --warm` adds the same rows to its table.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial  # noqa: E402,F401  (re-runs this script inside scripts/.venv, with numpy)

import numpy as np  # noqa: E402
from multiprocessing.pool import ThreadPool  # noqa: E402

from measure import figure, interleave, json_lines, ratio  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = ROOT / "target" / "release" / "coordinator"
IN_CACHE = 1536


def numpy_warm(n, workers):
    """Samples of numpy's warm parallel exp, ms: the pool, data and result made once."""
    data = np.random.default_rng(1).random(n)
    result = np.empty(n)
    parts = list(zip(np.array_split(data, workers), np.array_split(result, workers)))
    pool = ThreadPool(workers)

    def one(part):
        np.exp(part[0], out=part[1])

    pool.map(one, parts)  # warm-up

    def measure():
        samples = []
        for _ in range(3):
            t = time.perf_counter()
            pool.map(one, parts)
            samples.append((time.perf_counter() - t) * 1e3)
        return samples
    return measure


def ipcmap_warm(mode, n, workers, pool="per-run"):
    """Samples of ipcmap's warm runs, ms; `measure.starts` keeps a kept pool's one-time start."""
    def measure():
        r = json_lines([str(COORDINATOR), "--mode", mode, "--n", str(n), "--workers", str(workers),
                        "--keep-input", "--repeat", "3", "--warmup", "1", "--no-baseline",
                        "--pool", pool, "--format", "json"], ROOT)[0]
        assert r["verified"] and r["input_kept"], r
        if r.get("processes"):
            assert r["pool"] == pool, r
        if r.get("pool_start_ms") is not None:
            measure.starts.append(r["pool_start_ms"])
        return r["runs_ms"]
    measure.starts = []
    return measure


def faults(mode, n, workers, pool="per-run"):
    """[(minor faults a run, system CPU ms a run)] over the whole process tree."""
    def run(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(COORDINATOR), "-m", mode, "--n", str(n), "--reuse-buffers",
                        "--workers", str(workers), "--repeat", str(repeat), "--warmup", "1",
                        "--pool", pool, "--no-baseline", "--format", "json"], check=True,
                       capture_output=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime

    def measure():
        (fa, sa), (fb, sb) = run(3), run(13)
        return [((fb - fa) / 10, (sb - sa) / 10 * 1e3)]
    return measure


def ipcmap_cold(mode, n, workers):
    """One cold run a sample (`--cold`: the tutorial's timer, fresh memory), ms; `measure.pages`
    keeps which pages shm's regions were in."""
    def measure():
        r = json_lines([str(COORDINATOR), "--mode", mode, "--n", str(n), "--workers", str(workers),
                        "--cold", "--no-baseline", "--format", "json"], ROOT)[0]
        assert r["verified"], r
        if r.get("shm_pages"):
            measure.pages = r["shm_pages"]
        return r["runs_ms"]
    measure.pages = None
    return measure


def cold_floor(n, workers):
    """The machine's cold floor, ms: first touch + generate + exp over the cores, from this
    machine's calibration (`coordinator predict -m threads`: the threads model is that sum)."""
    def measure():
        r = json_lines([str(COORDINATOR), "predict", "--mode", "threads", "--n", str(n),
                        "--workers", str(workers), "--format", "json"], ROOT)[0]
        return [sum(r["predicted_phases_ms"].values())]
    return measure


def numpy_exp_in_cache():
    x = np.random.default_rng(2).random(IN_CACHE)
    out = np.empty_like(x)
    calls = 20_000

    def measure():
        np.exp(x, out=out)
        t = time.perf_counter()
        for _ in range(calls):
            np.exp(x, out=out)
        return [(time.perf_counter() - t) * 1e9 / (calls * IN_CACHE)]
    return measure


def ipcmap_exp_in_cache():
    def measure():
        r = json_lines([str(COORDINATOR), "probe", "--fn", "exp", "--values", "1000000",
                        "--format", "json"], ROOT)[0]
        measure.isa = r["kernel_isa"]
        return [r["rows"][0]["in_cache_ns_per_value"][0]]
    return measure


def measurements(n, workers, cold_n):
    return {
        "threads_cold": ipcmap_cold("threads", cold_n, workers),
        "shm_cold": ipcmap_cold("shm", cold_n, workers),
        "cold_floor": cold_floor(cold_n, workers),
        "numpy_warm": numpy_warm(n, workers),
        "threads_warm": ipcmap_warm("threads", n, workers),
        "shm_warm": ipcmap_warm("shm", n, workers),
        "shm_kept_warm": ipcmap_warm("shm", n, workers, "persistent"),
        "shm_faults": faults("shm", n, workers),
        "shm_kept_faults": faults("shm", n, workers, "persistent"),
        "threads_faults": faults("threads", n, workers),
        "numpy_exp": numpy_exp_in_cache(),
        "ipcmap_exp": ipcmap_exp_in_cache(),
    }


def rows(raw, n, workers, cold_n=100_000_000, pages=None):
    """Issue 37's rows: (name, target, numerator samples, denominator samples, op)."""
    shm_faults = [f for f, _ in raw["shm_faults"]]
    kept_faults = [f for f, _ in raw["shm_kept_faults"]]
    return [
        (f"issue 37: warm at n = {n:,}: ipcmap threads `--keep-input` / numpy + ThreadPool({workers}) "
         "with out=", 1.05, raw["threads_warm"], raw["numpy_warm"], "<="),
        (f"issue 37: warm at n = {n:,}: ipcmap shm `--keep-input` (workers started every run) / "
         "ipcmap threads `--keep-input`", 1.2, raw["shm_warm"], raw["threads_warm"], "<="),
        (f"issue 37: warm at n = {n:,}: ipcmap shm `--keep-input --pool persistent` (workers "
         "started once) / ipcmap threads `--keep-input`", 1.2, raw["shm_kept_warm"],
         raw["threads_warm"], "<="),
        (f"issue 37: shm minor page faults a run at n = {n:,}, buffers reused / 2,000", 1.0,
         shm_faults, [2000.0] * len(shm_faults), "<="),
        (f"issue 37: shm minor page faults a run at n = {n:,}, `--pool persistent` / 2,000", 1.0,
         kept_faults, [2000.0] * len(kept_faults), "<="),
        ("issue 37: exp kernel ns a value in cache: ipcmap / numpy (same machine)", 1.0,
         raw["ipcmap_exp"], raw["numpy_exp"], "<="),
        (f"issue 37: cold at n = {cold_n:,}: ipcmap threads / the floor (first touch + generate "
         "+ exp over the cores, this machine's calibration)", 1.1, raw["threads_cold"],
         raw["cold_floor"], "<="),
        (f"issue 37: cold at n = {cold_n:,}: ipcmap shm / ipcmap threads, shm in {pages or '?'} "
         "pages", 1.3 if pages and pages.startswith("2 MiB") else 2.0, raw["shm_cold"],
         raw["threads_cold"], "<="),
    ]


def table(rows_):
    lines = ["| ratio (interleaved) | target | measured | 95% interval | |", "|---|---:|---:|---:|---|"]
    for name, target, num, den, op in rows_:
        value, low, high = ratio(num, den)
        met = value <= target if op == "<=" else value >= target
        verdict = "met" if met else f"missed by {value / target - 1:.0%}"
        interval = "–" if low is None else f"{low:.2f}–{high:.2f}"
        lines.append(f"| {name} | {op} {target:g} | {value:.2f} | {interval} | {verdict} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cold-n", type=int, default=100_000_000,
                   help="n of the cold rows (the tutorial's timer; 1.6 GB a strategy at 10^8)")
    p.add_argument("--json", action="store_true", help="print the rows' samples as one JSON line")
    a = p.parse_args()
    if not COORDINATOR.exists():
        sys.exit("warm_check.py: build it first: cargo build --release -p coordinator")
    m = measurements(a.n, a.workers, a.cold_n)
    raw = interleave(m, a.rounds)
    pages = m["shm_cold"].pages
    table_rows = rows(raw, a.n, a.workers, a.cold_n, pages)
    if a.json:
        print(json.dumps({"rows": table_rows, "kernel_isa": m["ipcmap_exp"].isa,
                          "numpy": np.__version__, "shm_pages": pages}))
        return
    shm_f = [f for f, _ in raw["shm_faults"]]
    threads_f = [f for f, _ in raw["threads_faults"]]
    print(f"n = {a.n:,}, {a.workers} workers, {a.rounds} interleaved rounds, {os.cpu_count()} cores; "
          f"ipcmap kernel {m['ipcmap_exp'].isa}, numpy {np.__version__}")
    print(f"numpy warm {figure(raw['numpy_warm'])}; ipcmap threads warm {figure(raw['threads_warm'])}; "
          f"shm warm {figure(raw['shm_warm'])} (workers started every run), "
          f"{figure(raw['shm_kept_warm'])} (persistent pool; started once in "
          f"{figure(m['shm_kept_warm'].starts, 'ms')})")
    kept_f = [f for f, _ in raw["shm_kept_faults"]]
    print(f"minor faults a run, shm with a persistent pool: {figure(kept_f, 'faults', 0)}; system CPU "
          f"{figure([s for _, s in raw['shm_kept_faults']], 'ms')}")
    print(f"minor faults a run: shm {figure(shm_f, 'faults', 0)}, threads {figure(threads_f, 'faults', 0)}; "
          f"system CPU a run: shm {figure([s for _, s in raw['shm_faults']], 'ms')}, "
          f"threads {figure([s for _, s in raw['threads_faults']], 'ms')}")
    print(f"exp in cache: ipcmap {figure(raw['ipcmap_exp'], 'ns', 2)}, numpy {figure(raw['numpy_exp'], 'ns', 2)}")
    print()
    print(f"cold at n = {a.cold_n:,}: threads {figure(raw['threads_cold'])}, shm {figure(raw['shm_cold'])} "
          f"(shm in {pages} pages); the floor {figure(raw['cold_floor'])}")
    print()
    print(table(table_rows))


if __name__ == "__main__":
    main()
