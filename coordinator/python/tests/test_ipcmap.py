"""The Python API against the real coordinator: runs, sweeps, probes, DataFrames, inline HTML,
errors, and `python -m ipcmap`. Uses $IPCMAP_COORDINATOR where set (the Rust test sets it to
the build under test), else the installed wheel's coordinator."""

import os
import subprocess
import sys
import unittest

import ipcmap
from ipcmap._run import flags

SMALL = {"workers": 2, "n": 20_000, "repeat": 2, "warmup": 0}

try:
    import pandas  # noqa: F401
    HAS_PANDAS = True
except ImportError:
    HAS_PANDAS = False


class Flags(unittest.TestCase):
    def test_keywords_become_the_coordinators_flags(self):
        self.assertEqual(flags({"n": 10_000_000, "mode": ["split", "shm"], "in_place": True,
                                "no_verify": False, "splits": None}),
                         ["--n", "10000000", "--mode", "split,shm", "--in-place"])
        self.assertEqual(flags({"fn": ["x*2", "min(x, 1)"]}), ["--fn", "x*2;min(x, 1)"])


class Run(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.result = ipcmap.run(mode=["sequential", "split"], fn="exp(-x*x/2)*sin(3*x)", **SMALL)

    def test_reports_are_the_json_dicts_and_every_result_is_verified(self):
        modes = [r["mode"] for r in self.result.reports]
        self.assertEqual(modes, ["sequential", "split"])
        for r in self.result:
            self.assertIs(r["verified"], True)
            self.assertEqual(r["n"], 20_000)
            self.assertEqual(r["function"], "exp(-x*x/2)*sin(3*x)")
            self.assertGreater(r["wall_ms"], 0)
        self.assertIn("split", repr(self.result))

    def test_the_inline_html_is_the_coordinators_own_report(self):
        self.assertIn("<html", self.result.html)
        inline = self.result._repr_html_()
        self.assertTrue(inline.startswith("<iframe srcdoc="), inline[:80])
        self.assertIn("sandbox", inline)

    @unittest.skipUnless(HAS_PANDAS, "pandas is not installed here")
    def test_to_pandas_gives_one_row_per_strategy_with_the_jsons_columns(self):
        frame = self.result.to_pandas()
        self.assertEqual(list(frame["mode"]), ["sequential", "split"])
        self.assertEqual(list(frame.columns), list(self.result.reports[0].keys()))
        for column in ("wall_ms", "speedup", "verified", "fn_ns_per_value", "fn_bound"):
            self.assertIn(column, frame.columns)


class Sweeps(unittest.TestCase):
    def test_a_sweep_over_functions_gives_a_report_per_configuration(self):
        result = ipcmap.sweep(mode=["sequential", "split"], fn=["x*2", "exp(x)"], workers=2, n=5000,
                              repeat=1, warmup=0)
        self.assertEqual(len(result), 4)
        self.assertEqual({r["function"] for r in result}, {"x*2", "exp(x)"})
        self.assertIn("<html", result.html)

    def test_the_function_probe_is_a_dict(self):
        probe = ipcmap.probe(fn="exp;x*2", values=5000)
        self.assertEqual([row["function"] for row in probe["rows"]], ["exp", "x*2"])
        self.assertIn(probe["rows"][1]["bound"], ("memory", "compute"))


class Errors(unittest.TestCase):
    def test_a_refused_flag_raises_with_the_coordinators_line_and_status(self):
        with self.assertRaises(ipcmap.IpcmapError) as caught:
            ipcmap.run(fn="exp(x", n=10)
        self.assertEqual(caught.exception.status, 2)
        self.assertIn("column 6", caught.exception.message)
        self.assertNotIn("\n", caught.exception.message)
        with self.assertRaises(ipcmap.IpcmapError) as caught:
            ipcmap.run(workers=0, n=10)
        self.assertEqual(caught.exception.status, 2)
        self.assertTrue(caught.exception.message.startswith("error"), caught.exception.message)


class Module(unittest.TestCase):
    def test_python_m_ipcmap_runs_the_coordinator(self):
        done = subprocess.run([sys.executable, "-m", "ipcmap", "--workers", "2", "--mode", "split",
                               "--n", "20000"], capture_output=True, text=True, timeout=300,
                              env=os.environ)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith("ipcmap: exp over 20,000 f64"), done.stdout)
        bad = subprocess.run([sys.executable, "-m", "ipcmap", "--workers", "0"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(len(bad.stderr.strip().splitlines()), 1, bad.stderr)


if __name__ == "__main__":
    unittest.main()
