"""ipcmap from Python: run the coordinator, get its reports as dicts, DataFrames or inline HTML.

    import ipcmap
    result = ipcmap.run(mode="all", workers=2, n=10_000_000)
    result.to_pandas()          # one row per strategy, the JSON's columns (needs pandas)
    result                      # in Jupyter: the summary and the charts, inline

Every call runs the `coordinator` executable (the wheel puts it, and its worker
`ipcmap-worker`, on the environment's PATH) with `--format json`: flags are validated by the
coordinator, not here, and a refused flag or a failed run raises `IpcmapError` with the
coordinator's one line and its exit status.
"""

from ._run import IpcmapError, Result, coordinator_path, probe, run, sweep

__all__ = ["IpcmapError", "Result", "coordinator_path", "probe", "run", "sweep"]
__version__ = "0.1.0"
