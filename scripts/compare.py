#!/usr/bin/env python3
"""Side by side: the tutorial's Python programs and ipcmap, same n, same workers, same machine.

    python3 scripts/compare.py --workers 2,4 --n 10000000 [--rounds 3] [--slow] [--out target/compare]

Builds the workspace (release), then runs scripts/tutorial.py (which sets up its own numpy) and
the coordinator for each experiment interleaved, round after round, both sides warmed up
(scripts/measure.py), and writes to --out:
- compare.md: experiment, the tutorial's published seconds, Python here and ipcmap here (median ±
  MAD), Python / ipcmap with a 95% bootstrap interval;
- python.jsonl and ipcmap.jsonl: every run's record;
- phases-W.svg: where ipcmap's time goes, phase by phase, per strategy (coordinator --plot).
The per-item Python programs take tens of seconds each and run only with --slow.

Where `mpirun` is on the PATH (and unless --no-mpi), it also builds the coordinator with the `mpi`
feature and compares, over Open MPI's shared memory with W+1 ranks, scripts/tutorial_mpi.py's
mpi4py split program (buffer Scatterv/Gatherv, and pickled scatter/gather) with
`coordinator --transport mpi --mode scatterv` (raw and bincode) and `--mode split`.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from measure import figure, interleave, json_lines, ratio

ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = ROOT / "target" / "release" / "coordinator"

# experiment: (what the tutorial ran, its published seconds with 4 workers, coordinator flags)
EXPERIMENTS = [
    ("sequential", "exp(rand(n))", 0.143, ["--mode", "sequential"]),
    ("item_default", "pool.map(exp, data)", 23.248, ["--mode", "item"]),
    ("item_1000", "pool.map(exp, data, chunksize=1000)", 16.471, ["--mode", "item", "--chunksize", "1000"]),
    ("split_64", "pool.map(exp, split(data, 64))", 0.385, ["--mode", "split", "--splits", "64", "--chunksize", "1"]),
    ("threads_64", "ThreadPool over split(data, 64)", None, ["--mode", "threads", "--splits", "64"]),
    ("shm_64", "shared_memory, ranges only", None, ["--mode", "shm", "--splits", "64"]),
    # Is it pickle or is it Python? The same per-item program, with ipcmap moving each chunk as
    # the very bytes Pool.map pickles (a list of floats, protocol 3).
    ("item_pickle", "pool.map(exp, data) vs ipcmap item --codec pickle", 23.248,
     ["--mode", "item", "--codec", "pickle"]),
]
# The Python program an experiment is compared with, where it is not the one of its own name.
PYTHON_OF = {"item_pickle": "item_default"}
SLOW = {"item_default", "item_1000", "item_pickle"}

# MPI experiment: (mpi4py's form or None, what it is, coordinator flags under --transport mpi)
MPI_EXPERIMENTS = [
    ("mpi_scatterv", "mpi4py Scatterv/Gatherv of float64 buffers", ["--mode", "scatterv", "--codec", "raw"]),
    ("mpi_pickled", "mpi4py scatter/gather of pickled array_split parts", ["--mode", "scatterv", "--codec", "bincode"]),
    (None, "ipcmap split (64 parts, dynamic) over MPI", ["--mode", "split", "--codec", "raw"]),
]
MPIRUN = ["mpirun", "--oversubscribe", "--mca", "btl", "self,vader", "--mca", "btl_vader_single_copy_mechanism", "none"]
MPI_ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def mpi_section(w, n, rounds):
    """mpi4py against ipcmap over MPI with w worker ranks: markdown lines and every record."""
    np_ = ["-np", str(w + 1)]
    rows = []

    def ipcmap(name, flags):
        def measure():
            out = subprocess.run([*MPIRUN, *np_, str(COORDINATOR), *flags, "--transport", "mpi", "--n", str(n),
                                  "--repeat", "2", "--warmup", "1", "--format", "json"],
                                 check=True, capture_output=True, text=True, cwd=ROOT, env=MPI_ENV)
            rec = json.loads(out.stdout.splitlines()[0])
            rec["experiment"] = name
            rows.append(rec)
            return rec["runs_ms"]
        return measure

    def mpi4py(form):
        def measure():
            out = subprocess.run([*MPIRUN, *np_, str(ROOT / "scripts" / ".venv" / "bin" / "python"),
                                  str(ROOT / "scripts" / "tutorial_mpi.py"), "--n", str(n), "--only", form,
                                  "--repeat", "3"], check=True, capture_output=True, text=True, cwd=ROOT, env=MPI_ENV)
            recs = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            rows.extend(recs)
            return [r["wall_ms"] for r in recs[1:]]  # the first is the warm-up
        return measure

    measurements = {}
    for i, (name, _, flags) in enumerate(MPI_EXPERIMENTS):
        if name:
            measurements[("mpi4py", name)] = mpi4py(name.removeprefix("mpi_"))
        measurements[("ipcmap", i)] = ipcmap(name or "mpi_split", flags)
    samples = interleave(measurements, rounds)
    lines = [
        f"### Over MPI: {w} worker ranks + rank 0, Open MPI shared memory (vader), n = {n:,}",
        "",
        "| experiment | mpi4py here | ipcmap here (flags) | mpi4py / ipcmap (95% interval) |",
        "|---|---:|---:|---:|",
    ]
    for i, (name, what, flags) in enumerate(MPI_EXPERIMENTS):
        ip = samples[("ipcmap", i)]
        py = samples.get(("mpi4py", name))
        if py:
            value, low, high = ratio(py, ip)
            interval = f" ({low:.1f}–{high:.1f})" if low is not None else ""
            cells = (figure(py), f"{value:.1f}x{interval}")
        else:
            cells = ("–", "–")
        lines.append(f"| {what} | {cells[0]} | {figure(ip)} (`{' '.join(flags)}`) | {cells[1]} |")
    return lines, rows


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="2,4", help="comma-separated worker counts")
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each makes 2 measured runs a side")
    p.add_argument("--slow", action="store_true", help="also run Python's per-item programs (tens of seconds each)")
    p.add_argument("--out", default=str(ROOT / "target" / "compare"))
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--no-mpi", action="store_true", help="leave out the MPI comparison even where mpirun exists")
    args = p.parse_args()
    use_mpi = not args.no_mpi and shutil.which("mpirun") is not None
    workers = [int(w) for w in args.workers.split(",") if w]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--workspace", "--quiet"], check=True, cwd=ROOT)
        if use_mpi:
            subprocess.run(["cargo", "build", "--release", "-p", "coordinator", "--features", "mpi", "--quiet"],
                           check=True, cwd=ROOT)
    if use_mpi:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "tutorial_mpi.py"), "--setup"], check=True)

    python_rows, ipcmap_rows = [], []
    sections = []
    for w in workers:
        def ipcmap(name, flags):
            def measure():
                rec = json_lines([str(COORDINATOR), *flags, "--workers", str(w), "--n", str(args.n),
                                  "--repeat", "2", "--warmup", "1", "--format", "json"], ROOT)[0]
                rec["experiment"] = name
                ipcmap_rows.append(rec)
                return rec["runs_ms"]
            return measure

        def python(name):
            def measure():
                recs = json_lines([sys.executable, str(ROOT / "scripts" / "tutorial.py"), "--workers", str(w),
                                   "--n", str(args.n), "--only", name, "--repeat", "3"], ROOT)
                python_rows.extend(recs)
                return [r["wall_ms"] for r in recs[1:]]  # the first is the warm-up
            return measure

        measurements = {}
        for name, _, _, flags in EXPERIMENTS:
            if name not in SLOW:
                measurements[("python", name)] = python(name)
            measurements[("ipcmap", name)] = ipcmap(name, flags)
        samples = interleave(measurements, args.rounds)
        if args.slow:  # one cold run each: the tutorial's own timing, tens of seconds
            for name in sorted(SLOW - set(PYTHON_OF)):
                recs = json_lines([sys.executable, str(ROOT / "scripts" / "tutorial.py"), "--workers", str(w),
                                   "--n", str(args.n), "--slow", "--only", name], ROOT)
                python_rows.extend(recs)
                samples[("python", name)] = [r["wall_ms"] for r in recs]
            for name, program in PYTHON_OF.items():
                samples[("python", name)] = samples.get(("python", program), [])
        lines = [
            f"### {w} workers, n = {args.n:,}",
            "",
            "| experiment | tutorial (published, 4 workers) | Python here | ipcmap here | Python / ipcmap (95% interval) |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, what, published, _ in EXPERIMENTS:
            py, ip = samples.get(("python", name)), samples[("ipcmap", name)]
            pub = f"{published * 1e3:.0f} ms" if published is not None else "–"
            if py:
                value, low, high = ratio(py, ip)
                runs = f"{len(py)} Python run{'' if len(py) == 1 else 's'}"
                interval = f" ({low:.1f}–{high:.1f})" if low is not None else f" (no interval: {runs})"
                cells = (figure(py), f"{value:.1f}x{interval}")
            else:
                cells = ("not run", "–")
            lines.append(f"| `{what}` | {pub} | {cells[0]} | {figure(ip)} | {cells[1]} |")
        if samples.get(("python", "item_pickle")):
            py = statistics.median(samples[("python", "item_pickle")]) * 1e6 / args.n
            ip = statistics.median(samples[("ipcmap", "item_pickle")]) * 1e6 / args.n
            lines += ["", f"Pickle or Python: per value, Python's `pool.map(exp, data)` spends {py / 1e3:.2f} µs of wall "
                      f"time; ipcmap's item mode moving the same pickle bytes spends {ip:.0f} ns "
                      f"(`probe --codecs` gives the pickle format's own encode and decode ns per value)."]
        subprocess.run([str(COORDINATOR), "--mode", "all", "--workers", str(w), "--n", str(args.n),
                        "--plot", str(out / f"phases-{w}.svg")],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        sections.append("\n".join(lines))
        if use_mpi:
            mpi_lines, mpi_rows = mpi_section(w, args.n, args.rounds)
            sections.append("\n".join(mpi_lines))
            python_rows.extend(r for r in mpi_rows if r.get("impl") == "mpi4py")
            ipcmap_rows.extend(r for r in mpi_rows if r.get("impl") != "mpi4py")

    header = (
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()} with numpy, ipcmap release build, codec bincode; "
        f"{args.rounds} interleaved rounds, each invocation warmed up; medians ± MAD "
        "(per-item Python programs: 1 cold run)."
    )
    (out / "compare.md").write_text(header + "\n\n" + "\n\n".join(sections) + "\n")
    (out / "python.jsonl").write_text("".join(json.dumps(r) + "\n" for r in python_rows))
    (out / "ipcmap.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ipcmap_rows))
    print((out / "compare.md").read_text())
    print(f"wrote {out}/compare.md, python.jsonl, ipcmap.jsonl, " + ", ".join(f"phases-{w}.svg" for w in workers))


if __name__ == "__main__":
    main()
