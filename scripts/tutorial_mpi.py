#!/usr/bin/env python3
"""The tutorial's split program with mpi4py, the Python peer of `coordinator --transport mpi`.

Rank 0 generates `rand(n)`, keeps nothing for itself (as ipcmap's rank 0, it coordinates), cuts
the data with `numpy.array_split` into one part per other rank, and each part is computed with
`numpy.exp` on its rank and gathered back, in one of two forms:

- `scatterv`: buffer `comm.Scatterv` / `comm.Gatherv` of float64 (mpi4py's fast path, no
  pickling: ipcmap's `scatterv` with `--codec raw` is the same traffic);
- `pickled`: `comm.scatter` / `comm.gather` of the array_split parts as Python objects (pickled,
  as `multiprocessing` does).

The timer starts before `rand(n)` and stops when rank 0 holds the assembled result, as the
tutorial times its programs; the result is checked against `exp(data)` bit for bit, outside the
timer. One JSON object per run on rank 0's stdout (the first of each experiment is the warm-up).

    python3 scripts/tutorial_mpi.py --setup          # once: mpi4py into scripts/.venv
    mpirun -np 3 scripts/.venv/bin/python scripts/tutorial_mpi.py --repeat 4
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"


def setup():
    """numpy (via tutorial.py's venv) and mpi4py, which pip builds against the system MPI."""
    subprocess.run([sys.executable, str(HERE / "tutorial.py"), "--n", "10", "--only", "sequential"],
                   check=True, stdout=subprocess.DEVNULL)
    python = VENV / "bin" / "python"
    if subprocess.run([str(python), "-c", "import mpi4py"], capture_output=True).returncode != 0:
        print(f"installing mpi4py into {VENV} (once; builds against the system MPI)...", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "mpi4py"], check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each form, the first a warm-up")
    parser.add_argument("--only", default="", help="scatterv or pickled")
    parser.add_argument("--setup", action="store_true", help="install mpi4py into scripts/.venv and exit")
    args = parser.parse_args()
    if args.setup:
        setup()
        return

    import numpy as np
    from mpi4py import MPI
    from numpy import array_split, exp
    from numpy.random import rand

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    if size < 2:
        sys.exit("error: run under mpirun -np N with N >= 2 (rank 0 coordinates)")
    workers = size - 1
    counts = [0] + [len(p) for p in array_split(np.empty(args.n), workers)]
    displs = [sum(counts[:i]) for i in range(size)]

    def scatterv():
        data = rand(args.n) if rank == 0 else None
        part = np.empty(counts[rank])
        comm.Scatterv([data, counts, displs, MPI.DOUBLE] if rank == 0 else None, part, root=0)
        result = exp(part)
        out = np.empty(args.n) if rank == 0 else None
        comm.Gatherv(result, [out, counts, displs, MPI.DOUBLE] if rank == 0 else None, root=0)
        return data, out

    def pickled():
        data = rand(args.n) if rank == 0 else None
        parts = [np.empty(0)] + array_split(data, workers) if rank == 0 else None
        part = comm.scatter(parts, root=0)
        results = comm.gather(exp(part), root=0)
        return data, (np.concatenate(results[1:]) if rank == 0 else None)

    only = {e for e in args.only.split(",") if e}
    for name, program in [("scatterv", scatterv), ("pickled", pickled)]:
        if only and name not in only:
            continue
        for _ in range(args.repeat):
            comm.Barrier()
            start = time.perf_counter()
            data, result = program()
            wall = time.perf_counter() - start
            if rank == 0:
                record = {
                    "impl": "mpi4py",
                    "experiment": f"mpi_{name}",
                    "mode": name,
                    "workers": workers,
                    "n": args.n,
                    "function": "exp",
                    "wall_ms": wall * 1e3,
                    "verified": bool(np.array_equal(result.view(np.uint64), exp(data).view(np.uint64))),
                    "mpi_library": MPI.Get_library_version().split(",")[0].strip(),
                }
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
