//! Interruption: SIGINT, SIGTERM, SIGHUP (a closed terminal or ssh session), SIGQUIT, SIGUSR1,
//! SIGUSR2 and SIGALRM ask a run to stop, and it exits 128 + the signal with its one line.
//! SIGXFSZ (a file past `ulimit -f`) is ignored, so the write fails with EFBIG and is reported
//! as the write error it is. The gather loop and the engine look at
//! the request between events, so workers are killed and reaped (their handles' `Drop`) and no
//! partial result is reported as complete.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static REQUESTED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicUsize> {
    REQUESTED.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// The signals that request a stop.
pub const STOP_SIGNALS: [i32; 7] = {
    use signal_hook::consts::*;
    [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM]
};

/// Makes the [`STOP_SIGNALS`] request a stop instead of killing the process outright, and
/// SIGXFSZ fail the write that passed the file size limit.
pub fn install() -> std::io::Result<()> {
    for signal in STOP_SIGNALS {
        signal_hook::flag::register_usize(signal, Arc::clone(flag()), signal as usize)?;
    }
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN runs no code in the handler's context.
    unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) }.map_err(std::io::Error::from)?;
    Ok(())
}

/// The signal that asked for a stop, if any.
pub fn requested() -> Option<i32> {
    match flag().load(Ordering::Relaxed) {
        0 => None,
        signal => Some(signal as i32),
    }
}

/// The error for a stop that was asked for (SIGTERM if the flag was cleared meanwhile).
pub fn interrupted() -> crate::error::RunError {
    crate::error::RunError::Interrupted {
        signal: requested().unwrap_or(signal_hook::consts::SIGTERM),
    }
}
