#!/usr/bin/env python3
"""How far the model is off, on a grid the calibration never ran, and how it holds up.

    scripts/model_check.py [--coordinator target/release/coordinator] [--quick] [--json]

Four checks, each printed as a table, then the rows `scripts/targets.py` takes:
  1. prediction error: `coordinator sweep ... --predict` over every strategy at n, work and
     workers (1, 2, and more workers than cores: over-subscription), cold (the default: fresh
     buffers, workers started each run) and warm (`--keep-input --pool persistent`); then the
     process strategies over two more transports and the codec strategies over two more
     codecs. Each run's error is measured / predicted - 1; the targets are a median |error| of
     15% and a 90th percentile of 35%.
  2. break-even: interleaved runs at --work 1, 2, 4, ..., 64 of sequential, shm, cma, split and
     threads; the measured crossover is the least work from which a strategy's speedup (the
     ratio of interleaved medians) is above 1 at every larger work too; the predicted one is
     --predict's
     `predicted_pays_from_work`. Target: within 1.5x.
  3. two calibrations: `predict -m all` from a calibration taken before the grid and one taken
     after it (each in a cache folder of its own, `--recalibrate`); target: every strategy's
     prediction agrees within 20%.
  4. the largest errors, with their phases, so what causes them can be read.
Every figure it prints is measured or predicted by the coordinator; nothing is assumed here.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sweep(coordinator, args, env=None):
    cmd = [coordinator, "sweep", *args, "--predict", "--format", "json"]
    print("$ " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def grid(coordinator, quick):
    """[(group, report)] over the grid."""
    n = "1e6,1e7" if quick else "1e6,1e7,1e8"
    work = "1,16" if quick else "1,4,16,64"
    workers = "1,2,4"
    repeat = ["--repeat", "3"]
    out = []
    for group, extra in [("cold", []), ("warm", ["--keep-input", "--pool", "persistent"])]:
        rows = sweep(coordinator, ["--mode", "all", "--n", n, "--work", work, "--workers", workers,
                                   *repeat, *extra])
        out += [(group, r) for r in rows]
    small = "1e6,1e7"
    for transport in ["uds", "tcp"]:
        rows = sweep(coordinator, ["--mode", "item,split,shm,cma,owner", "--transport", transport,
                                   "--n", small, "--work", "1,16", "--workers", "2", *repeat])
        out += [(f"transport {transport}", r) for r in rows]
    for codec in ["raw", "pickle"]:
        rows = sweep(coordinator, ["--mode", "item,split", "--codec", codec, "--n", small,
                                   "--work", "1,16", "--workers", "2", *repeat])
        out += [(f"codec {codec}", r) for r in rows]
    return [(g, r) for g, r in out if r.get("prediction_error") is not None]


def percentile90(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(0.9 * len(values)))]


def error_table(rows):
    print(f"{'group':<14} {'strategy':<10} {'n':>11} {'work':>4} {'w':>2} {'measured ms':>12} "
          f"{'predicted ms':>13} {'error':>7}")
    for g, r in rows:
        print(f"{g:<14} {r['mode']:<10} {r['n']:>11,} {r['work']:>4} {r['workers']:>2} "
              f"{r['wall_ms']:>12.1f} {r['predicted_wall_ms']:>13.1f} {r['prediction_error']:>+7.0%}")
    errors = [abs(r["prediction_error"]) for _, r in rows]
    print()
    print(f"{'group':<14} {'runs':>5} {'median |error|':>15} {'90th percentile':>16}")
    for g in dict.fromkeys(g for g, _ in rows):
        e = [abs(r["prediction_error"]) for gg, r in rows if gg == g]
        print(f"{g:<14} {len(e):>5} {statistics.median(e):>15.0%} {percentile90(e):>16.0%}")
    by_mode = {}
    for _, r in rows:
        by_mode.setdefault(r["mode"], []).append(abs(r["prediction_error"]))
    for m, e in by_mode.items():
        print(f"{m:<14} {len(e):>5} {statistics.median(e):>15.0%} {percentile90(e):>16.0%}")
    print(f"{'all':<14} {len(errors):>5} {statistics.median(errors):>15.0%} {percentile90(errors):>16.0%}")
    return errors


def break_even(coordinator, quick):
    """[(strategy, measured crossover or None, predicted or None)]."""
    works = [1, 2, 4, 8, 16, 32, 64]
    rows = sweep(coordinator, ["--mode", "sequential,shm,cma,split,threads", "--n", "1e6",
                               "--work", ",".join(map(str, works)), "--workers", "2",
                               "--repeat", "3" if quick else "5"])
    out = []
    for mode in ["shm", "cma", "split", "threads"]:
        mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["work"])
        if not mine:
            continue
        pays = [r["work"] for r in mine if (r.get("speedup") or 0) > 1.0]
        measured = None
        for w in works:
            if all(x in pays for x in works if x >= w and any(r["work"] == x for r in mine)):
                measured = w
                break
        predicted = mine[0].get("predicted_pays_from_work")
        out.append((mode, measured, predicted, mine))
    print(f"{'strategy':<9} {'measured crossover':>19} {'predicted':>10} {'ratio':>6}  speedups at work "
          + ", ".join(map(str, works)))
    for mode, measured, predicted, mine in out:
        ratio = (max(measured, predicted) / min(measured, predicted)
                 if measured and predicted else None)
        speedups = ", ".join(f"{r['speedup']:.2f}" if r.get("speedup") else "-" for r in mine)
        print(f"{mode:<9} {measured or 'never':>19} {predicted or 'never':>10} "
              f"{(f'{ratio:.2f}' if ratio else '-'):>6}  {speedups}")
    return [(m, a, p) for m, a, p, _ in out]


def predict_all(coordinator, cache):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    cmd = [coordinator, "predict", "--mode", "all", "--n", "1e7", "--workers", "2",
           "--recalibrate", "--format", "json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return {r["mode"]: r["predicted_wall_ms"] for r in map(json.loads, out.splitlines()) if r.get("predicted_wall_ms")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coordinator", default=os.path.join(ROOT, "target", "release", "coordinator"))
    ap.add_argument("--quick", action="store_true", help="n to 10^7, work 1 and 16, fewer runs")
    ap.add_argument("--json", action="store_true", help="print the target rows as one JSON line last")
    args = ap.parse_args()
    if not os.path.exists(args.coordinator):
        sys.exit("model_check.py: build it first: cargo build --release -p coordinator")
    before_dir, after_dir = tempfile.mkdtemp(), tempfile.mkdtemp()
    before = predict_all(args.coordinator, before_dir)

    print("## 1. Prediction error over the held-out grid\n")
    rows = grid(args.coordinator, args.quick)
    if not rows:
        sys.exit("no predictions came back")
    errors = error_table(rows)

    print("\n## 2. Break-even --work (interleaved, n = 10^6, 2 workers)\n")
    crossings = break_even(args.coordinator, args.quick)

    print("\n## 3. Two calibrations (one before the grid, one after), predict -m all --n 1e7 -w 2\n")
    after = predict_all(args.coordinator, after_dir)
    agreement = []
    print(f"{'strategy':<11} {'before ms':>10} {'after ms':>10} {'after / before':>15}")
    for mode, b in before.items():
        a = after.get(mode)
        if a:
            agreement.append(abs(a / b - 1))
            print(f"{mode:<11} {b:>10.1f} {a:>10.1f} {a / b:>15.2f}")

    print("\n## 4. The largest errors\n")
    worst = sorted(rows, key=lambda gr: -abs(gr[1]["prediction_error"]))[:8]
    for g, r in worst:
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["phases_ms"].items() if v >= 0.05)
        print(f"{g}, {r['mode']}, n {r['n']:,}, work {r['work']}, {r['workers']} workers: measured "
              f"{r['wall_ms']:.1f} ms, predicted {r['predicted_wall_ms']:.1f} ms "
              f"({r['prediction_error']:+.0%}); measured phases: {phases}")

    median, p90 = statistics.median(errors), percentile90(errors)
    print(f"\n{len(errors)} runs: median |error| {median:.0%} (target 15%), "
          f"90th percentile {p90:.0%} (target 35%)")
    ratios = [max(a, p) / min(a, p) for _, a, p in crossings if a and p]
    if args.json:
        print(json.dumps({
            "median_error": median, "p90_error": p90, "runs": len(errors),
            "break_even_worst_ratio": max(ratios) if ratios else None,
            "break_even": crossings,
            "calibrations_worst_disagreement": max(agreement) if agreement else None,
        }))


if __name__ == "__main__":
    main()
