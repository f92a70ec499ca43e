"""The measurement method shared by targets.py and compare.py, the same as the coordinator's.

Every figure is measured in rounds: each round runs every measurement once, in turn (A B C,
A B C, ...), each invocation making its own warm-up, so drift and cold-memory stalls land on every
figure alike. A figure is the median of its samples, given with its median absolute deviation;
a ratio of two figures is the ratio of their medians with a 95% percentile-bootstrap interval
(2,000 resamples, fixed seed), as `coordinator` computes `speedup_low`/`speedup_high`.
"""

import json
import random
import statistics
import subprocess
import sys


def json_lines(cmd, cwd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=cwd)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def interleave(measurements, rounds, progress=True):
    """measurements: {name: fn() -> list of samples}. Returns {name: samples}, run round-robin."""
    samples = {name: [] for name in measurements}
    names = list(measurements)
    for r in range(rounds):
        for i, name in enumerate(names):
            if progress and sys.stderr.isatty():
                print(f"\rround {r + 1}/{rounds}: {name:<40}", end="", file=sys.stderr)
            samples[name].extend(measurements[name]())
    if progress and sys.stderr.isatty():
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    return samples


def mad(values):
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values)


def figure(values, unit="ms", digits=1):
    """'53.2 ± 1.1 ms (n=8)'."""
    return f"{statistics.median(values):.{digits}f} ± {mad(values):.{digits}f} {unit} (n={len(values)})"


def ratio(numerator, denominator, resamples=2000, seed=0x1BC0A11E):
    """(median ratio, low, high) of median(numerator) / median(denominator)."""
    value = statistics.median(numerator) / statistics.median(denominator)
    if len(numerator) < 3 or len(denominator) < 3:
        return value, None, None
    rng = random.Random(seed)
    draws = sorted(
        statistics.median(rng.choices(numerator, k=len(numerator)))
        / statistics.median(rng.choices(denominator, k=len(denominator)))
        for _ in range(resamples)
    )
    return value, draws[int(0.025 * (resamples - 1))], draws[int(0.975 * (resamples - 1))]
