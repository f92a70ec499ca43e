//! The ipcmap coordinator: parse the command line, run, map the outcome to an exit status.
//! Exit status: 0 ok, 1 runtime failure (including a result that differs from sequential),
//! 2 bad usage or an unusable environment, 128 + the signal when a signal stopped it (130
//! SIGINT, 143 SIGTERM, 129 SIGHUP, ...). Every
//! error is one line on stderr, a panic included; nothing is left behind in TMPDIR.

mod app;
mod cli;
mod files;
mod mpi;
mod oom;
mod output;
mod predict;
mod reaper;

#[global_allocator]
static ALLOCATOR: oom::Guarded = oom::Guarded;

use std::process::ExitCode;
use std::sync::Mutex;

/// The first panic's message, kept for the one-line error (the hook prints nothing).
static PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    oom::reserve();
    ipcmap::config::fit_the_address_space_limit();
    std::panic::set_hook(Box::new(|info| {
        let message = ipcmap::error::panic_message(info.payload());
        let place =
            info.location().map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        if let Ok(mut first) = PANIC.lock() {
            first.get_or_insert(format!("{message}{place}"));
        }
    }));
    match std::panic::catch_unwind(app::run) {
        Ok(code) => code,
        Err(_) => {
            let message = PANIC.lock().ok().and_then(|m| m.clone());
            app::say(&format!(
                "error: internal error (a bug in ipcmap, please report it): {}",
                message.as_deref().unwrap_or("unknown")
            ));
            ExitCode::FAILURE
        }
    }
}
