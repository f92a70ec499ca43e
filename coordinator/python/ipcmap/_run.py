"""Finding the coordinator and running it: flags from keyword arguments, reports from JSON."""

import html
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

EXE = "coordinator" + (".exe" if sys.platform == "win32" else "")


class IpcmapError(RuntimeError):
    """The coordinator refused its flags or failed: its one line, and its exit status."""

    def __init__(self, message, status):
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self):
        return f"{self.message} (exit status {self.status})"


def coordinator_path():
    """The coordinator executable: $IPCMAP_COORDINATOR, else the one this environment's
    scripts folder holds (where the wheel installs it, as uv's `find_uv_bin` looks), else the
    user scheme's, else the first on PATH."""
    explicit = os.environ.get("IPCMAP_COORDINATOR")
    if explicit:
        return explicit
    folders = [sysconfig.get_path("scripts")]
    user = sysconfig.get_preferred_scheme("user") if hasattr(sysconfig, "get_preferred_scheme") else None
    if user:
        folders.append(sysconfig.get_path("scripts", scheme=user))
    for folder in folders:
        candidate = Path(folder) / EXE
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(EXE)
    if found:
        return found
    raise IpcmapError(
        "the coordinator executable was not found: install the ipcmap wheel, or `cargo install "
        "--path coordinator`, or set IPCMAP_COORDINATOR", 127)


def flags(options):
    """Keyword arguments as coordinator flags: `n=10_000_000` is `--n 10000000`, `in_place=True`
    is `--in-place`, False and None leave a flag out, a list or tuple is one comma-separated
    value (`mode=["split", "shm"]`), and `fn`'s list is ';'-separated (expressions hold
    commas)."""
    out = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
            continue
        if isinstance(value, (list, tuple)):
            value = (";" if key == "fn" else ",").join(str(v) for v in value)
        out += [flag, str(value)]
    return out


def _call(args, timeout=None):
    """Runs the coordinator with `args`; its stdout, or IpcmapError with its last stderr line."""
    done = subprocess.run([coordinator_path(), *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error")]
        message = (errors or lines or [f"the coordinator exited with status {done.returncode}"])[-1]
        raise IpcmapError(message, done.returncode)
    return done.stdout


class Result:
    """A run's or a sweep's reports (`.reports`: the JSON's dicts, one a strategy and
    configuration), with the HTML report the coordinator wrote beside them (`.html`)."""

    def __init__(self, reports, html_page=None, args=()):
        self.reports = reports
        self.html = html_page
        self.args = list(args)

    def __len__(self):
        return len(self.reports)

    def __iter__(self):
        return iter(self.reports)

    def __getitem__(self, i):
        return self.reports[i]

    def __repr__(self):
        rows = ", ".join(f"{r.get('mode')} {r.get('wall_ms', 0):.3g} ms" for r in self.reports[:8])
        more = "" if len(self.reports) <= 8 else f", ... ({len(self.reports)} in all)"
        return f"<ipcmap.Result {rows}{more}>"

    def to_pandas(self):
        """One row per report, the JSON's columns in its order (pandas must be installed)."""
        try:
            import pandas
        except ImportError as e:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from e
        return pandas.DataFrame(self.reports)

    def _repr_html_(self):
        """The coordinator's own HTML report (the lesson, the summary, the charts), inline:
        in a sandboxed frame, so that its page styles stay its own."""
        if not self.html:
            return None
        page = html.escape(self.html, quote=True)
        return (f'<iframe srcdoc="{page}" sandbox="" style="width: 100%; height: 720px; '
                'border: 1px solid #ddd;" title="ipcmap report"></iframe>')


def _reports(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def _with_html(args, timeout):
    """Runs the coordinator with `args`, its JSON reports on stdout and its HTML report in a
    temporary file read back and removed."""
    with tempfile.TemporaryDirectory(prefix="ipcmap-py-") as folder:
        page = Path(folder) / "report.html"
        stdout = _call([*args, "--format", "json", "--export-html", str(page)], timeout)
        return Result(_reports(stdout), page.read_text() if page.exists() else None, args)


def run(timeout=None, **options):
    """One run (`coordinator [flags]`): `ipcmap.run(mode="all", workers=2, n=10_000_000,
    fn="exp(-x*x/2)")`. Returns a Result; raises IpcmapError on a refused flag or a failed
    run."""
    return _with_html(flags(options), timeout)


def sweep(timeout=None, **options):
    """A sweep (`coordinator sweep [flags]`): lists where a run takes one value,
    `ipcmap.sweep(mode=["sequential", "shm"], workers=[1, 2, 4])`."""
    return _with_html(["sweep", *flags(options)], timeout)


def probe(timeout=None, **options):
    """The channel probe (`coordinator probe`), or with `codecs=True` the codec probe, or with
    `fn="exp;x*2"` the function probe: its one JSON object, as a dict."""
    stdout = _call(["probe", *flags(options), "--format", "json"], timeout)
    return json.loads(stdout)
