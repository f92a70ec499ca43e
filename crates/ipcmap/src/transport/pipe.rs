//! The pipe transport: the same worker processes as [`super::uds`], each over a pair of
//! anonymous pipes of its own (tasks one way, results the other), with the same
//! length-prefixed frames ([`super::stream`]). The pipes are made before the worker starts and
//! inherited by it alone; after the authenticated [handshake] the coordinator tells it, on its
//! hello connection, which descriptors they are. Nothing is on the file system, so nothing
//! another user could open. Each pipe is widened to [`PIPE_BYTES`] where the system allows.
//!
//! `vmsplice` is not used, though `probe` measures what it would give (`floor_pipe_vmsplice_gbps`
//! beside `floor_pipe_gbps`): it lends the sender's pages to the pipe until the reader has read
//! them, and the kernel never says when that is, so a frame buffer could not be reused (or
//! its next frame would overwrite bytes still in flight) without a round trip per frame; and
//! a result must land in the coordinator's output, which a read from the pipe does in one
//! copy already.

use super::handshake::{self, Hello};
use super::spawned::{self, Link};
use super::spawner::adopt;
use super::stream::{Reader, Writer};
use super::{MakeSetup, PoolResult, PoolSpec, Transport, TransportInfo, WorkerEnds};
use crate::error::{SpawnError, WorkerError};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::SFlag;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The size each pipe is widened to, where `/proc/sys/fs/pipe-max-size` allows (64 KiB
/// otherwise, the kernel's default).
pub const PIPE_BYTES: i32 = 1 << 20;

/// Worker processes over a pair of pipes each.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipeTransport;

impl Transport for PipeTransport {
    fn info(&self) -> TransportInfo {
        INFO
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        let pipes = (0..spec.count as u32)
            .map(|w| Pipes::open().map_err(pipe_error(w)))
            .collect::<Result<Vec<_>, _>>()?;
        spawned::start_inheriting(INFO.name, spec, setup, pipes, Pipes::theirs, &mut link)
    }

    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let stream = handshake::say_hello(hello, worker, protocol, "")?;
        let [tasks, results] = handshake::named_array::<2>(stream, worker)?;
        let end =
            |fd, access, what| {
                adopt(fd, SFlag::S_IFIFO, access)
                    .map(File::from)
                    .map_err(|e| WorkerError::Channel { worker, what, message: e.to_string() })
            };
        let tasks = end(tasks, OFlag::O_RDONLY, "its task pipe")?;
        let results = end(results, OFlag::O_WRONLY, "its result pipe")?;
        Ok((Box::new(Reader::new(tasks)), Box::new(Writer::new(results))))
    }

    fn files_needed(&self, workers: usize) -> u64 {
        // Four pipe ends (two kept, two until the worker starts), the hello connection, and a
        // reader's and a sender's wake-up per worker.
        32 + 7 * workers as u64
    }
}

/// What the pipe transport is.
const INFO: TransportInfo = TransportInfo::spawned(
    "pipe",
    "worker processes on this machine over a pair of anonymous pipes each",
)
.with_in_place();

fn pipe_error(worker: u32) -> impl Fn(std::io::Error) -> SpawnError {
    move |source| SpawnError::Channel { worker, what: "its pipes", source }
}

/// One worker's two pipes: the coordinator's ends and the worker's (inherited at its start).
struct Pipes {
    tasks: File,
    results: File,
    theirs: (OwnedFd, OwnedFd),
}

impl Pipes {
    fn open() -> std::io::Result<Pipes> {
        let (task_r, task_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let (result_r, result_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        for end in [&task_w, &result_r] {
            // Wider where allowed; the default 64 KiB still works.
            let _ = fcntl(end.as_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
        }
        Ok(Pipes {
            tasks: File::from(task_w),
            results: File::from(result_r),
            theirs: (task_r, result_w),
        })
    }

    /// The worker's ends, as descriptor numbers.
    fn theirs(&self) -> Vec<i32> {
        vec![self.theirs.0.as_raw_fd(), self.theirs.1.as_raw_fd()]
    }
}

/// Tells a checked hello's worker which descriptors its pipes are; its links are the
/// coordinator's ends, and the worker's ends are closed here (the worker holds them now).
fn link(mut hello: Hello, pipes: Pipes) -> Result<Link, SpawnError> {
    handshake::name_descriptors(&mut hello.stream, hello.worker, &pipes.theirs())?;
    drop(pipes.theirs);
    Ok(Link {
        sender: Box::new(Writer::new(pipes.tasks)),
        receiver: Box::new(Reader::new(pipes.results)),
    })
}
