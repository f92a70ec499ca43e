#!/usr/bin/env python3
"""How far the model is off: runs a grid the calibration never ran (every strategy; n, work and
workers as given), each with --predict, and prints measured / predicted - 1 per run, then the
median and 90th percentile of |error| against the targets (15% and 35%).

    scripts/model_check.py [--coordinator target/release/coordinator] [--n 1e6,1e7]
                           [--work 1,4,16] [--workers 1,2] [--repeat 3]

Every figure it prints is measured or predicted by the coordinator; nothing is assumed here.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coordinator", default=os.path.join(ROOT, "target", "release", "coordinator"))
    ap.add_argument("--n", default="1e6,1e7")
    ap.add_argument("--work", default="1,4,16")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", default="3")
    args = ap.parse_args()
    cmd = [args.coordinator, "sweep", "--mode", "all", "--n", args.n, "--work", args.work,
           "--workers", args.workers, "--repeat", args.repeat, "--predict", "--format", "json"]
    print("$ " + " ".join(cmd), flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    errors = []
    print(f"{'strategy':<11} {'n':>11} {'work':>4} {'w':>2} {'measured ms':>12} {'predicted ms':>13} {'error':>7}")
    for r in rows:
        e = r.get("prediction_error")
        if e is None:
            continue
        errors.append(abs(e))
        print(f"{r['mode']:<11} {r['n']:>11,} {r['work']:>4} {r['workers']:>2} "
              f"{r['wall_ms']:>12.1f} {r['predicted_wall_ms']:>13.1f} {e:>+7.0%}")
    if not errors:
        sys.exit("no predictions came back")
    errors.sort()
    median = statistics.median(errors)
    p90 = errors[min(len(errors) - 1, int(0.9 * len(errors)))]
    print(f"\n{len(errors)} runs: median |error| {median:.0%} (target 15%), "
          f"90th percentile {p90:.0%} (target 35%)")


if __name__ == "__main__":
    main()
