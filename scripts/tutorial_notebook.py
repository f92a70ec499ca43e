# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The tutorial, measured: Python's multiprocessing and ipcmap side by side
#
# "Parallel NumPy Vector Math with Multiprocessing" applies `numpy.exp` to a vector of
# 10,000,000 floats with `multiprocessing.Pool` and publishes, with 4 workers: sequential
# 0.143 s, `pool.map` per item 23.2 s, with `chunksize=1000` 16.5 s, 64 sub-vectors 0.385 s.
# It blames pickling and copying. This notebook runs its programs here (the Python reference,
# `scripts/tutorial.py`) and ipcmap's real processes beside them, on the same machine.
#
# Open it in Jupyter (jupytext reads this percent format), or run it as a script:
# `python scripts/tutorial_notebook.py` (CI does, headlessly). `IPCMAP_NOTEBOOK_N` sets n.

# %%
import json
import os
import subprocess
import sys
from pathlib import Path

import ipcmap

try:
    from IPython.display import display
except ImportError:  # run as a script: text instead of rich output
    def display(obj):
        print(obj if not hasattr(obj, "to_string") else obj.to_string())

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path("scripts").resolve()
N = int(os.environ.get("IPCMAP_NOTEBOOK_N", 1_000_000))
W = int(os.environ.get("IPCMAP_NOTEBOOK_WORKERS", 2))
print(f"n = {N:,}, {W} workers")

# %% [markdown]
# ## The tutorial's programs, in Python, here
# Sequential `exp(rand(n))`, and `pool.map` over 64 sub-vectors (`numpy.array_split`), each
# run twice with the first as a warm-up. The per-item programs take tens of seconds at 10^7.

# %%
python = subprocess.run(
    [sys.executable, str(HERE / "tutorial.py"), "--n", str(N), "--workers", str(W),
     "--only", "sequential,split_64", "--repeat", "2"],
    capture_output=True, text=True, check=True)
records = [json.loads(line) for line in python.stdout.splitlines() if line.strip()]
measured = {}
for r in records:
    measured[r["experiment"]] = r["wall_ms"]  # the last (warm) run of each
for name, ms in measured.items():
    print(f"Python {name}: {ms:.1f} ms")

# %% [markdown]
# ## The same experiment with ipcmap's processes
# Every strategy's result is verified bit for bit against the sequential one.

# %%
result = ipcmap.run(mode=["sequential", "item", "split", "shm", "threads"], n=N, workers=W,
                    repeat=3, warmup=1)
try:
    frame = result.to_pandas()
    display(frame[["mode", "wall_ms", "speedup", "verdict", "verified", "fn_bound"]])
except ImportError:
    for r in result:
        print(f"{r['mode']:>10}  {r['wall_ms']:9.1f} ms  speedup {r['speedup']}  verified {r['verified']}")

# %% [markdown]
# ## Side by side

# %%
ours = {r["mode"]: r["wall_ms"] for r in result}
for python_name, mode in (("sequential", "sequential"), ("split_64", "split")):
    if python_name in measured:
        print(f"{python_name}: Python {measured[python_name]:.1f} ms, ipcmap {ours[mode]:.1f} ms "
              f"({measured[python_name] / ours[mode]:.1f}x)")

# %% [markdown]
# ## The report, inline
# The coordinator's own HTML report: the lesson first, then the charts and the tables.

# %%
display(result)

# %% [markdown]
# ## Your own function: where processes start to pay
# A memory-bound function (`x*2`) never pays for processes; a compute-bound one may.

# %%
sweep = ipcmap.sweep(mode=["sequential", "split", "threads"], fn=["x*2", "exp(sin(x))**2/(1+x*x)"],
                     n=N, workers=W, repeat=3, warmup=1)
for r in sweep:
    print(f"{r['function']:>24}  {r['mode']:>10}  {r['wall_ms']:9.1f} ms  {r['fn_bound']}-bound")

# %%
out = os.environ.get("IPCMAP_NOTEBOOK_HTML")
if out:  # the inline report as a page, to look at (CI and the README's screenshot)
    Path(out).write_text("<!doctype html><meta charset=utf-8><title>ipcmap in a notebook</title>"
                         "<body style='font-family: sans-serif'><h1>ipcmap in a notebook</h1>"
                         + result._repr_html_())
print("done")
