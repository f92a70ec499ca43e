#!/usr/bin/env python3
"""Times an expression in numexpr on one thread, and in numpy, over n values of [0, 1).

usage: python3 scripts/numexpr_time.py EXPR [--n 10000000] [--repeat 3]

The reference for `coordinator --fn EXPR` (issue 36's target: within 1.5x of numexpr's
single-thread time). Runs inside scripts/.venv (scripts/tutorial.py sets it up) and installs
numexpr there from PyPI on first use. One warm-up, then --repeat timed evaluations of each;
prints one JSON line with ns a value per evaluation.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial  # noqa: E402,F401  (re-runs this script inside scripts/.venv, with numpy)

import numpy as np  # noqa: E402

try:
    import numexpr  # noqa: E402
except ImportError:
    print("installing numexpr into scripts/.venv (once)...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "numexpr>=2.8"], check=True)
    import numexpr  # noqa: E402

NUMPY = {"exp": np.exp, "ln": np.log, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan,
         "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "min": np.minimum, "max": np.maximum,
         "pi": np.pi, "e": np.e}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("expr")
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    x = np.random.default_rng(1).random(args.n)
    numexpr.set_num_threads(1)
    # numexpr spells the natural log `log`, as numpy does.
    text = args.expr.replace("ln(", "log(")
    out = {"expr": args.expr, "n": args.n, "numexpr": numexpr.__version__, "numpy": np.__version__}
    for name, run in (("numexpr", lambda: numexpr.evaluate(text, local_dict={"x": x})),
                      ("numpy", lambda: eval(args.expr, {"__builtins__": {}, "x": x, **NUMPY}))):
        run()
        samples = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            run()
            samples.append((time.perf_counter() - t) * 1e9 / args.n)
        out[f"{name}_ns_per_value"] = samples
    print(json.dumps(out))


if __name__ == "__main__":
    main()
