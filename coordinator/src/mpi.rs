//! `--transport mpi`: the coordinator binary as every rank of an MPI job. Rank 0 coordinates
//! (the usual run, sweep or probe); the other ranks serve as its workers until it shuts the
//! job down. Without the `mpi` feature the flag is refused with one line that says how to
//! build it.

use crate::cli::{Cli, Command};

/// This process's rank as the launcher announced it in the environment (Open MPI, MPICH and
/// Slurm), before MPI is initialised; `None` outside a launcher.
pub fn launched_rank() -> Option<u32> {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// Whether Slurm's step daemon started this process itself (`srun`'s direct launch), not an
/// MPI launcher inside an allocation (`salloc mpirun`, whose daemons are this rank's parent).
pub fn started_by_slurm() -> bool {
    let parent = nix::unistd::getppid();
    std::fs::read_to_string(format!("/proc/{parent}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("slurmstepd"))
}

/// The number of ranks a launcher started, as it announced it in the environment; `None`
/// outside a launcher.
pub fn launched_size() -> Option<u32> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

#[cfg(feature = "mpi")]
pub use ipcmap::transport::mpi::Session;

/// Without the feature there is never a session.
#[cfg(not(feature = "mpi"))]
pub enum Session {}

/// Initialises MPI (every rank); a rank started by a launcher then watches it.
pub fn start() -> Result<Session, String> {
    #[cfg(feature = "mpi")]
    {
        if launched_rank().is_some() {
            watch_launcher();
        }
        ipcmap::transport::mpi::init().map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "mpi"))]
    Err(format!("--transport mpi: {}", ipcmap::transport::MPI_MISSING))
}

/// How often a rank looks for its launcher.
#[cfg(feature = "mpi")]
const LAUNCHER_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Ends this rank within [`LAUNCHER_POLL`] of its launcher's death (`mpirun`, a remote
/// daemon or `slurmstepd` killed with SIGKILL, which no handler sees): the rank is then
/// reparented, so its parent changes. It says so in one line, removes its run folder and
/// leaves at once (MPI cannot be shut down cleanly without its launcher), so nothing of the
/// job outlives it: no rank computing on, no run folder left in TMPDIR.
#[cfg(feature = "mpi")]
fn watch_launcher() {
    use std::io::Write;
    let launcher = nix::unistd::getppid();
    let watch = move || loop {
        std::thread::sleep(LAUNCHER_POLL);
        if nix::unistd::getppid() == launcher {
            continue;
        }
        let rank = launched_rank().map_or("?".to_string(), |r| r.to_string());
        // The launcher held this rank's stderr: the line may have nowhere to go.
        let _ = writeln!(
            std::io::stderr(),
            "error: rank {rank}: its MPI launcher (pid {launcher}) is gone; the job is over"
        );
        if let Some(dir) = ipcmap::rundir::current() {
            let _ = std::fs::remove_dir_all(dir);
        }
        // SAFETY: ends the process at once; MPI's own shutdown would wait on the launcher.
        unsafe { nix::libc::_exit(1) }
    };
    let _ = std::thread::Builder::new().name("launcher-watch".into()).spawn(watch);
}

/// Rank 0.
pub fn is_coordinator(session: &Session) -> bool {
    #[cfg(feature = "mpi")]
    {
        session.rank() == 0
    }
    #[cfg(not(feature = "mpi"))]
    match *session {}
}

/// A worker rank's whole life; returns its exit status.
pub fn serve(session: Session) -> u8 {
    #[cfg(feature = "mpi")]
    {
        session.serve(ipcmap::worker::serve)
    }
    #[cfg(not(feature = "mpi"))]
    match session {}
}

/// Rank 0's end of the job: a clean shutdown, or `MPI_Abort` when a worker rank is stuck.
pub fn finish(session: Session, code: u8) -> u8 {
    #[cfg(feature = "mpi")]
    {
        session.finish(code)
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = code;
        match session {}
    }
}

/// The worker ranks the job has.
fn worker_ranks() -> usize {
    #[cfg(feature = "mpi")]
    {
        ipcmap::transport::mpi::world().map_or(0, |w| w.workers.len())
    }
    #[cfg(not(feature = "mpi"))]
    0
}

/// Sets the worker count to the job's worker ranks; a `--workers` that disagrees is refused.
pub fn fit_workers(cli: &mut Cli) -> Result<(), String> {
    let ranks = worker_ranks();
    let disagree = |asked: usize| {
        format!(
            "--workers {asked} does not match this MPI job's {ranks} worker ranks (mpirun -np {}: \
             rank 0 coordinates): leave --workers out or make them agree",
            ranks + 1
        )
    };
    match &mut cli.command {
        None => match cli.run.workers {
            Some(w) if w != ranks => return Err(disagree(w)),
            _ => cli.run.workers = Some(ranks),
        },
        Some(Command::Sweep(args)) => {
            if let Some(&w) = args.workers.iter().find(|&&w| w != ranks) {
                return Err(disagree(w));
            }
            args.workers = vec![ranks];
        }
        Some(Command::Probe(args)) => match args.workers {
            Some(w) if w != ranks => return Err(disagree(w)),
            _ => args.workers = Some(ranks),
        },
        Some(
            Command::Completions { .. } | Command::Man | Command::Schema { .. } | Command::Predict,
        ) => {}
    }
    Ok(())
}
