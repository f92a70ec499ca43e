#!/usr/bin/env python3
"""The tutorial's programs, run and timed as the tutorial times them.

Each program's timer starts before `rand(n)` and stops after the `with Pool(...)` block, so data
generation, pool creation and teardown are included, exactly as in the tutorial. One JSON object
per run is printed on stdout, with the coordinator report's field names where they mean the same
thing (mode, workers, n, function, splits, chunksize, wall_ms, verified).

    python3 scripts/tutorial.py --workers 4 --n 10000000            # the fast programs
    python3 scripts/tutorial.py --workers 4 --slow                   # + pool.map per item (tens of s)
    python3 scripts/tutorial.py --workers 4 --grid                   # + the 8x8 splits x chunksize grid

On first use it makes a virtual environment in scripts/.venv (ignored by git) with numpy from
scripts/requirements.txt, then re-runs itself inside it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"


def ensure_numpy():
    """Re-executes this script inside scripts/.venv, creating it first if numpy is missing."""
    try:
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV.resolve():
        sys.exit("error: numpy is missing from scripts/.venv; delete scripts/.venv and try again")
    # Several scripts may start at once on a fresh clone (the test suite runs them in
    # parallel): one sets the environment up under a lock while the others wait, and the
    # environment counts as made only once its marker is written, after pip is done.
    ready = VENV / ".ipcmap-ready"
    if not ready.exists():
        import fcntl
        import shutil
        with open(HERE / ".venv.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not ready.exists():
                print(f"setting up {VENV} with numpy (once)...", file=sys.stderr)
                shutil.rmtree(VENV, ignore_errors=True)  # a half-made one
                subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
                subprocess.run(
                    [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     "-r", str(HERE / "requirements.txt")],
                    check=True,
                )
                ready.touch()
    # The script that is running (this one, or one that imports it), inside the environment.
    os.execv(str(python), [str(python), str(Path(sys.argv[0]).resolve()), *sys.argv[1:]])


ensure_numpy()

import numpy as np  # noqa: E402
from multiprocessing import Pool, shared_memory  # noqa: E402
from multiprocessing.pool import ThreadPool  # noqa: E402
from numpy import array_split, asarray, concatenate, exp  # noqa: E402
from numpy.random import rand  # noqa: E402

TUTORIAL_VALUES = [1, 2, 4, 8, 16, 32, 64, 128]


def pool_map_default_chunksize(n, workers):
    chunksize, extra = divmod(n, workers * 4)
    return chunksize + 1 if extra else max(chunksize, 1)


def same_bits(a, b):
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint64), b.view(np.uint64)))


def sequential(n, workers):
    start = time.perf_counter()
    data = rand(n)
    result = exp(data)
    wall = time.perf_counter() - start
    return wall, data, result, {"mode": "sequential", "workers": 1}


def item(n, workers, chunksize=None):
    start = time.perf_counter()
    data = rand(n)
    with Pool(workers) as pool:
        if chunksize is None:
            result_list = pool.map(exp, data)
        else:
            result_list = pool.map(exp, data, chunksize=chunksize)
        result = asarray(result_list)
    wall = time.perf_counter() - start
    used = chunksize or pool_map_default_chunksize(n, workers)
    return wall, data, result, {"mode": "item", "chunksize": used}


def split(n, workers, splits=64, chunksize=1):
    start = time.perf_counter()
    data = rand(n)
    with Pool(workers) as pool:
        chunks = array_split(data, splits)
        result_list = pool.map(exp, chunks, chunksize=chunksize)
        result = concatenate(result_list)
    wall = time.perf_counter() - start
    return wall, data, result, {"mode": "split", "splits": splits, "chunksize": chunksize}


def threads(n, workers, splits=64):
    """The tutorial's recommendation: a ThreadPool, since numpy releases the GIL."""
    start = time.perf_counter()
    data = rand(n)
    with ThreadPool(workers) as pool:
        result_list = pool.map(exp, array_split(data, splits), chunksize=1)
        result = concatenate(result_list)
    wall = time.perf_counter() - start
    return wall, data, result, {"mode": "threads", "splits": splits, "chunksize": 1}


_shm = {}


def _attach(in_name, out_name, n):
    _shm["in"] = shared_memory.SharedMemory(name=in_name)
    _shm["out"] = shared_memory.SharedMemory(name=out_name)
    _shm["data"] = np.ndarray((n,), dtype=np.float64, buffer=_shm["in"].buf)
    _shm["result"] = np.ndarray((n,), dtype=np.float64, buffer=_shm["out"].buf)


def _exp_range(bounds):
    a, b = bounds
    exp(_shm["data"][a:b], out=_shm["result"][a:b])


def shm(n, workers, splits=64):
    """The tutorial's other recommendation: shared memory in and out, only ranges sent."""
    start = time.perf_counter()
    size = max(n * 8, 1)
    shm_in = shared_memory.SharedMemory(create=True, size=size)
    shm_out = shared_memory.SharedMemory(create=True, size=size)
    try:
        data = np.ndarray((n,), dtype=np.float64, buffer=shm_in.buf)
        data[:] = rand(n)
        edges = np.cumsum([0] + [len(p) for p in array_split(np.empty(n), splits)])
        ranges = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        with Pool(workers, initializer=_attach, initargs=(shm_in.name, shm_out.name, n)) as pool:
            pool.map(_exp_range, ranges, chunksize=1)
        result = np.ndarray((n,), dtype=np.float64, buffer=shm_out.buf)
        wall = time.perf_counter() - start
        out = wall, data.copy(), result.copy(), {"mode": "shm", "splits": splits, "chunksize": 1}
        del data, result
        return out
    finally:
        for s in (shm_in, shm_out):
            s.close()
            s.unlink()


def run(name, program, n, workers, **kwargs):
    wall, data, result, fields = program(n, workers, **kwargs)
    record = {
        "impl": "python",
        "experiment": name,
        "mode": fields["mode"],
        "workers": fields.get("workers", workers),
        "n": n,
        "function": "exp",
        "splits": fields.get("splits"),
        "chunksize": fields.get("chunksize"),
        "wall_ms": wall * 1e3,
        # Outside the timer, as in the coordinator: the result against exp(data), bit for bit.
        "verified": same_bits(result, exp(data)),
    }
    print(json.dumps(record), flush=True)
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each program")
    parser.add_argument("--slow", action="store_true", help="also run pool.map per item (default chunksize and 1000)")
    parser.add_argument("--grid", action="store_true", help="also run the 8x8 grid of splits x chunksize")
    parser.add_argument("--only", default="", help="comma-separated experiment names to run")
    args = parser.parse_args()
    if args.workers < 1 or args.n < 0 or args.repeat < 1:
        parser.error("--workers and --repeat must be at least 1, --n at least 0")

    experiments = [
        ("sequential", sequential, {}),
        ("split_64", split, {"splits": 64, "chunksize": 1}),
        ("threads_64", threads, {"splits": 64}),
        ("shm_64", shm, {"splits": 64}),
    ]
    if args.slow:
        experiments += [("item_default", item, {}), ("item_1000", item, {"chunksize": 1000})]
    if args.grid:
        experiments += [
            (f"grid_s{s}_c{c}", split, {"splits": s, "chunksize": c})
            for s in TUTORIAL_VALUES for c in TUTORIAL_VALUES
        ]
    only = {e for e in args.only.split(",") if e}
    for name, program, kwargs in experiments:
        if only and name not in only:
            continue
        for _ in range(args.repeat):
            run(name, program, args.n, args.workers, **kwargs)


if __name__ == "__main__":
    main()
