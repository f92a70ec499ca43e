#!/usr/bin/env python3
"""Checks ipcmap's `pickle` and `npy` codecs against Python's own pickle and numpy, both ways.

usage: python3 scripts/codec_check.py DIR

DIR holds what the Rust side wrote: values.f64 (the values' own little-endian bytes),
rust.pickle (ipcmap's pickle block), rust-item.pickle (one pickled float, the first value)
and rust.npy (ipcmap's npy block). This checks that pickle.loads and numpy.load read exactly
those values, bit for bit, then writes python3.pickle and python2.pickle
(pickle.dumps(list, protocol=3 and 2), what Pool.map sends) and python.npy (numpy.save) for
the Rust side to read. Prints one JSON line; exits 1 on any difference.
"""

import io
import json
import pickle
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tutorial  # noqa: E402,F401  (re-runs this script inside scripts/.venv, with numpy)

import numpy  # noqa: E402


def bits(values):
    return [struct.pack("<d", float(v)) for v in values]


def main():
    folder = Path(sys.argv[1])
    raw = (folder / "values.f64").read_bytes()
    values = list(struct.unpack(f"<{len(raw) // 8}d", raw))
    want = bits(values)
    problems = []
    from_pickle = pickle.loads((folder / "rust.pickle").read_bytes())
    if not isinstance(from_pickle, list) or bits(from_pickle) != want:
        problems.append("pickle.loads of ipcmap's pickle block differs")
    item = pickle.loads((folder / "rust-item.pickle").read_bytes())
    if not isinstance(item, float) or bits([item]) != want[:1]:
        problems.append("pickle.loads of ipcmap's pickled float differs")
    array = numpy.load(io.BytesIO((folder / "rust.npy").read_bytes()), allow_pickle=False)
    if array.dtype != numpy.float64 or array.shape != (len(values),) or array.tobytes() != raw:
        problems.append("numpy.load of ipcmap's npy block differs")
    for protocol in (3, 2):
        (folder / f"python{protocol}.pickle").write_bytes(pickle.dumps(values, protocol=protocol))
    with open(folder / "python.npy", "wb") as f:
        numpy.save(f, numpy.frombuffer(raw, dtype="<f8"))
    print(json.dumps({"values": len(values), "numpy": numpy.__version__, "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
