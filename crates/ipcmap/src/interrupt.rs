//! Interruption: SIGINT and SIGTERM ask a run to stop. The gather loop and the engine look at
//! the request between events, so workers are killed and reaped (their handles' `Drop`) and no
//! partial result is reported as complete.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static REQUESTED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

fn flag() -> &'static Arc<AtomicUsize> {
    REQUESTED.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// Makes SIGINT and SIGTERM request a stop instead of killing the process outright.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_usize(signal, Arc::clone(flag()), signal as usize)?;
    }
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
