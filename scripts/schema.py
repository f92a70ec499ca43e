#!/usr/bin/env python3
"""Writes crates/ipcmap/schema/{report,probe,codecs}.schema.json: the JSON Schemas of what
ipcmap writes for programs, as `coordinator schema KIND` generates them from the Rust types.

    scripts/schema.py [--coordinator target/debug/coordinator]

The unit test `report::schema::tests::the_published_files_match_the_types` fails when the
files drift from the types; `coordinator/tests/schema.rs` validates real output against them
with an independent validator.
"""

import argparse
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coordinator", default=os.path.join(ROOT, "target", "debug", "coordinator"))
    args = ap.parse_args()
    for kind in ("report", "probe", "codecs"):
        out = os.path.join(ROOT, "crates", "ipcmap", "schema", f"{kind}.schema.json")
        text = subprocess.run([args.coordinator, "schema", kind], check=True,
                              capture_output=True, text=True).stdout
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
