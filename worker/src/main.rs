//! The ipcmap worker process: started by the coordinator, never by hand. Connects back over
//! ipc-channel, computes tasks, returns results, exits when its task channel closes.

fn main() -> std::process::ExitCode {
    ipcmap::worker::main()
}
