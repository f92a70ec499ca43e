//! `ipcmap-worker`: the worker process under a name that cannot collide on a user's PATH,
//! built by the coordinator's package so that one `cargo install --path coordinator` (or the
//! wheel) puts it beside `coordinator`, where the coordinator looks for it first. The same
//! program as the workspace's `worker`.

fn main() -> std::process::ExitCode {
    ipcmap::worker::main()
}
