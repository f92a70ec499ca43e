#!/usr/bin/env python3
"""Checks `--fn EXPR` against numpy: the same expression evaluated by numpy on the same input.

usage: python3 scripts/expr_check.py DIR

DIR holds input.npy (the values a run computes on) and cases.json, a list of
{"fn": EXPR, "file": NAME.npy}: what `coordinator --fn EXPR --save-output NAME.npy` wrote
for that input. For each case this evaluates EXPR with numpy (exp -> numpy.exp, ln and log ->
numpy.log, min -> numpy.minimum, max -> numpy.maximum, where(c, a, b) -> numpy.where(c != 0, a,
b), pi and e as numpy's) and measures the distance in ulps (units in the last place: how
many doubles lie between the two results) at every value. Prints one JSON line: per case the
largest and median distance, how many values differ at all and by more than 1 ulp, and where
the largest is. NaN against NaN and equal infinities count as equal. Exits 1 if a file is
missing or a shape differs.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial  # noqa: E402,F401  (re-runs this script inside scripts/.venv, with numpy)

import numpy as np  # noqa: E402


def numpy_namespace(x):
    return {
        "__builtins__": {},
        "x": x,
        "np": np,
        "numpy": np,
        "exp": np.exp,
        "ln": np.log,
        "log": np.log,
        "sin": np.sin,
        "cos": np.cos,
        "tan": np.tan,
        "sqrt": np.sqrt,
        "abs": np.abs,
        "tanh": np.tanh,
        "min": np.minimum,
        "max": np.maximum,
        "where": lambda c, a, b: np.where(np.asarray(c) != 0, a, b),
        "pi": np.pi,
        "e": np.e,
    }


def ordered(values):
    """Maps doubles to integers in the same order, one step per representable double."""
    bits = values.view(np.int64)
    return np.where(bits < 0, np.int64(-(2**63)) - bits, bits)


def ulps(a, b):
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    # In unsigned 64-bit arithmetic, where the difference wraps and the shorter way round is
    # the distance (exact, unlike a difference of floats at 2^62).
    d = ordered(a).view(np.uint64) - ordered(b).view(np.uint64)
    distance = np.minimum(d, np.uint64(0) - d).astype(np.float64)
    return np.where(same, 0.0, distance)


def main():
    folder = Path(sys.argv[1])
    x = np.load(folder / "input.npy")
    cases = json.loads((folder / "cases.json").read_text())
    out = {"numpy": np.__version__, "values": int(x.size), "cases": []}
    for case in cases:
        ours = np.load(folder / case["file"])
        if ours.shape != x.shape:
            sys.exit(f"error: {case['file']} has shape {ours.shape}, the input {x.shape}")
        with np.errstate(all="ignore"):
            theirs = np.asarray(eval(case["fn"], numpy_namespace(x)), dtype=np.float64)
            theirs = np.broadcast_to(theirs, x.shape)
            distance = ulps(ours, theirs)
        worst = int(np.argmax(distance))
        out["cases"].append({
            "fn": case["fn"],
            "max_ulps": float(distance.max()),
            "median_ulps": float(np.median(distance)),
            "differing": int(np.count_nonzero(distance)),
            "over_1_ulp": int(np.count_nonzero(distance > 1)),
            "worst_at": float(x[worst]),
            "ours": float(ours[worst]),
            "numpy_value": float(theirs[worst]),
        })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
