//! Where an injected fault (`IPCMAP_FAULT`, tests only) acts on the worker loop: three seams,
//! chosen once at start-up, each doing nothing without a fault. The loop itself reads
//! "receive, compute, send"; every misbehaviour lives here.

use super::TaskSource;
use crate::fault::Fault;
use crate::protocol::ResultHeader;

/// What the loop does after a task arrives.
pub(super) enum Injected {
    /// Go on: compute and send.
    Nothing,
    /// End quietly.
    End,
    /// Exit with this code (the worker binary's exit status).
    Exit(u8),
}

/// The worker's fault, if any, at the loop's seams, and the tasks it did in earlier runs
/// (a kept worker's): a fault's count is of the worker's life.
pub(super) struct Seams(Option<Fault>, u64);

impl Seams {
    /// The seams of `fault` (none: every seam does nothing) for a worker that did `before`
    /// tasks in earlier runs.
    pub(super) fn new(fault: Option<Fault>, before: u64) -> Seams {
        Seams(fault, before)
    }

    /// Before the next task is read, `done` tasks done: `stop-after` stops the whole process
    /// (every thread) as `kill -STOP` would; only SIGKILL or SIGCONT ends it.
    pub(super) fn before_task(&self, done: u64) {
        let done = done + self.1;
        if matches!(self.0, Some(Fault::StopAfter(k)) if done >= k) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
        }
    }

    /// A task has arrived: exit, panic, or hang. A hang stops answering for real: it computes
    /// and returns nothing more, and ends only once the coordinator closes the inbox (or kills
    /// the worker).
    pub(super) fn on_task(&self, done: u64, tasks: &TaskSource) -> Injected {
        let done = done + self.1;
        match self.0 {
            Some(Fault::ExitAfter(k)) if done >= k => Injected::Exit(70),
            Some(Fault::PanicAfter(k)) if done >= k => {
                panic!("injected fault: panic after {k} tasks")
            }
            Some(Fault::HangAfter(k)) if done >= k => {
                while let Ok(true) = tasks.next(&mut Vec::new()) {}
                Injected::End
            }
            _ => Injected::Nothing,
        }
    }

    /// A result is computed into `out` (header and payload): lose the worker before it is
    /// sent (`Err` with the exit code), or spoil its bytes as the fault says.
    pub(super) fn on_result(&self, done: u64, out: &mut Vec<u8>) -> Result<(), u8> {
        let done = done + self.1;
        let Some(fault) = self.0 else {
            return Ok(());
        };
        match fault {
            Fault::LostAfter(k) if done >= k => return Err(70),
            Fault::GarbageAfter(k) if done >= k => out.truncate(3),
            Fault::CorruptAfter(k) if done >= k => drop(out.pop()),
            Fault::DeepAfter(k) if done >= k && out.len() >= ResultHeader::SIZE + 16 => {
                let at = ResultHeader::SIZE;
                let elements = out[at..at + 8].try_into().map_or(0, u64::from_le_bytes);
                let deep = crate::fault::deep_pickle();
                out.truncate(at);
                out.extend(crate::protocol::block_header(elements as usize, deep.len()));
                out.extend(deep);
            }
            Fault::OversizeAfter(k) if done >= k => out.resize(crate::fault::OVERSIZE_BYTES, 0),
            Fault::FlipAfter(k) if done >= k && out.len() > ResultHeader::SIZE => {
                // The last value's lowest mantissa bit (little-endian: its first byte).
                let at = out.len() - 8;
                out[at] ^= 1;
            }
            _ => {}
        }
        Ok(())
    }
}
