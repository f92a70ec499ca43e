#!/usr/bin/env python3
"""Writes crates/ipcmap/schema/report.schema.json, the JSON Schema of one report (a line of
`coordinator --format json`, an element of an `--export-json` file), from two sources that
cannot drift from the code: the keys and types of real reports (every strategy, a failed
worker, `--no-verify`), and the doc comment of each field in crates/ipcmap/src/report/.

    scripts/schema.py [--coordinator target/release/coordinator]

`coordinator/tests/schema.rs` checks real output against the file, so a key added to the
report without regenerating it fails the tests.
"""

import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "ipcmap", "schema", "report.schema.json")
SOURCES = [os.path.join(ROOT, "crates", "ipcmap", "src", "report", f)
           for f in ("mod.rs", "meta.rs")]


def docs():
    """Field name -> its doc comment, from every struct in the report's sources."""
    out = {}
    for path in SOURCES:
        lines = open(path, encoding="utf-8").read().splitlines()
        doc = []
        for line in lines:
            t = line.strip()
            if t.startswith("///"):
                doc.append(t[3:].strip())
                continue
            m = re.match(r"pub (\w+):", t)
            if m and doc:
                out.setdefault(m.group(1), " ".join(doc))
            if not t.startswith("#["):
                doc = []
    return out


def kind(values):
    """The JSON Schema type of a key, from its values across reports."""
    types = set()
    for v in values:
        if v is None:
            types.add("null")
        elif isinstance(v, bool):
            types.add("boolean")
        elif isinstance(v, int):
            types.add("integer")
        elif isinstance(v, float):
            types.add("number")
        elif isinstance(v, str):
            types.add("string")
        elif isinstance(v, list):
            types.add("array")
        elif isinstance(v, dict):
            types.add("object")
    if "number" in types:
        types.discard("integer")
    return sorted(types)


def schema_of(reports, described, path=""):
    keys = []
    for r in reports:
        for k in r:
            if k not in keys:
                keys.append(k)
    props = {}
    for k in keys:
        values = [r.get(k) for r in reports if k in r]
        p = {"type": kind(values)}
        if len(p["type"]) == 1:
            p["type"] = p["type"][0]
        if k in described:
            p["description"] = described[k]
        objects = [v for v in values if isinstance(v, dict)]
        if objects:
            p.update(schema_of(objects, described, path + k + "."))
        items = [i for v in values if isinstance(v, list) for i in v]
        if items and all(isinstance(i, dict) for i in items):
            p["items"] = schema_of(items, described, path + k + "[].")
            p["items"]["type"] = "object"
        elif items:
            p["items"] = {"type": kind(items) if len(kind(items)) > 1 else kind(items)[0]}
        props[k] = p
    required = [k for k in keys if all(k in r for r in reports)]
    return {"properties": props, "required": required}


# Keys whose values the local runs above cannot show: what an MPI job (`--transport mpi`) fills.
MPI = {
    "mpi_library": {"type": ["string", "null"]},
    "mpi_ranks": {"type": ["integer", "null"]},
    "mpi_hosts": {"type": ["array", "null"], "items": {"type": "string"}},
    "mpi_init_ms": {"type": ["number", "null"]},
    "mpi_clock_offsets_us": {"type": ["array", "null"], "items": {"type": "number"}},
    "mpi_clock_uncertainty_us": {"type": ["array", "null"], "items": {"type": "number"}},
    "rank": {"type": ["integer", "null"]},
    "host": {"type": ["string", "null"]},
}


def widen(body):
    """A key whose doc says it can be null may be, and an MPI key has its MPI type."""
    for k, p in body["properties"].items():
        if k in MPI:
            p.update(MPI[k])
        types = p["type"] if isinstance(p["type"], list) else [p["type"]]
        if "null" in p.get("description", "") and "null" not in types:
            types = types + ["null"]
        if "integer" in types and "number" in types:
            types.remove("integer")
        p["type"] = types[0] if len(types) == 1 else sorted(types)
        for nested in (p, p.get("items", {})):
            if "properties" in nested:
                widen(nested)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coordinator", default=os.path.join(ROOT, "target", "release", "coordinator"))
    a = ap.parse_args()
    runs = [
        ["--mode", "all", "-w", "2", "--n", "20000", "--repeat", "2", "--warmup", "0"],
        ["--mode", "split", "-w", "2", "--n", "20000", "--repeat", "1", "--no-verify"],
    ]
    reports = []
    for args in runs:
        out = subprocess.run([a.coordinator, *args, "--format", "json"], capture_output=True,
                             text=True, check=True)
        reports += [json.loads(line) for line in out.stdout.splitlines()]
    # A worker that fails mid-run, so the failure records are described too.
    env = dict(os.environ, IPCMAP_FAULT="exit-after=1@0")
    out = subprocess.run([a.coordinator, "--mode", "split", "-w", "2", "--n", "20000", "--repeat",
                          "1", "--format", "json"], capture_output=True, text=True, env=env)
    reports += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    body = schema_of(reports, docs())
    widen(body)
    # Keys that only an MPI job or a given strategy fills are null elsewhere: every key may be
    # null unless every sample had a value.
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/ipcmap/ipcmap/crates/ipcmap/schema/report.schema.json",
        "title": "ipcmap report",
        "description": "One report of `coordinator --format json` (one per line) or an element of "
                       "an `--export-json` file, schema_version 1. Keys are only ever added; a key "
                       "that changed meaning would raise schema_version.",
        "type": "object",
        **body,
        "additionalProperties": False,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(schema, f, indent=2, ensure_ascii=False)
        f.write("\n")
    missing = [k for k, p in body["properties"].items() if "description" not in p]
    print("wrote %s: %d keys, %d required%s" % (os.path.relpath(OUT, ROOT), len(body["properties"]),
          len(body["required"]), "; undescribed: " + ", ".join(missing) if missing else ""))


if __name__ == "__main__":
    sys.exit(main())
