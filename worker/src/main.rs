//! The ipcmap worker process: started by the coordinator, never by hand. Connects back over
//! ipc-channel, computes tasks, returns results, exits when its task channel closes.

use ipcmap::error::WorkerError;
use ipcmap::worker::{self, WorkerArgs, EXIT_PROTOCOL};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match WorkerArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("worker: {e}");
            return ExitCode::from(2);
        }
    };
    match worker::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ WorkerError::ProtocolMismatch { .. }) => {
            eprintln!("worker {}: {e}", args.worker_id);
            ExitCode::from(EXIT_PROTOCOL as u8)
        }
        Err(WorkerError::InjectedExit { code, .. }) => ExitCode::from(code),
        // These already name the worker.
        Err(
            e @ (WorkerError::Channel { .. }
            | WorkerError::Link { .. }
            | WorkerError::BadTask { .. }
            | WorkerError::Setup { .. }),
        ) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("worker {}: {e}", args.worker_id);
            ExitCode::FAILURE
        }
    }
}
