//! Shared pieces of the benchmarks: input data and finding the worker executable.

use std::path::PathBuf;

/// Random input of `n` values in [0, 1), the same as the coordinator's.
pub fn input(n: usize) -> Vec<f64> {
    ipcmap::data::generate(1, n)
}

/// The `worker` executable of the same profile as the running benchmark
/// (`target/<profile>/deps/<bench>` → `target/<profile>/worker`), or `$IPCMAP_WORKER`.
pub fn worker_bin() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(ipcmap::transport::spawner::WORKER_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).ok_or("no target folder")?;
    let worker = profile_dir.join("worker");
    ipcmap::transport::spawner::check_executable(&worker).map_err(|e| e.to_string())?;
    Ok(worker)
}
