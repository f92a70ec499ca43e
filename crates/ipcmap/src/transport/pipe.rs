//! The pipe transport: the same worker processes as [`super::uds`], each over a pair of
//! anonymous pipes of its own (tasks one way, results the other), with the same
//! length-prefixed frames ([`super::stream`]). The pipes are made before the worker starts and
//! inherited by it alone; after the authenticated [handshake] the coordinator tells it, on its
//! hello connection, which descriptors they are. Nothing is on the file system, so nothing
//! another user could open. Each pipe is widened to [`PIPE_BYTES`] where the system allows.
//!
//! `vmsplice`/`splice` is not used: a result must land in the coordinator's output, which a
//! read from the pipe does in one copy already, and gifting the worker's pages would tie its
//! buffers up until the coordinator had read them.

use super::handshake::{self, Hello};
use super::spawned::{self, Link};
use super::stream::{Reader, Writer};
use super::{MakeSetup, PoolResult, PoolSpec, Transport, TransportInfo, WorkerEnds};
use crate::error::{SpawnError, WorkerError};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The size each pipe is widened to, where `/proc/sys/fs/pipe-max-size` allows (64 KiB
/// otherwise, the kernel's default).
pub const PIPE_BYTES: i32 = 1 << 20;

/// How long a worker waits for the line naming its pipes.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// Worker processes over a pair of pipes each.
#[derive(Clone, Copy, Debug, Default)]
pub struct PipeTransport;

impl Transport for PipeTransport {
    fn info(&self) -> TransportInfo {
        let about = "worker processes on this machine over a pair of anonymous pipes each";
        TransportInfo::spawned("pipe", about).with_in_place()
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        let pipes = (0..spec.count)
            .map(|w| Pipes::open().map(Some).map_err(pipe_error(w as u32)))
            .collect::<Result<Vec<_>, _>>()?;
        let pipes = RefCell::new(pipes);
        let inherit = |w: u32| {
            let mut fds = (spec.inherit_fds)(w);
            if let Some(Some(p)) = pipes.borrow().get(w as usize) {
                fds.extend(p.theirs());
            }
            fds
        };
        let spec = PoolSpec {
            worker_bin: spec.worker_bin,
            count: spec.count,
            handshake_timeout: spec.handshake_timeout,
            inherit_fds: &inherit,
            frame_bytes: spec.frame_bytes,
            places: spec.places.clone(),
        };
        let mut answer = |hello: Hello| {
            let mine = pipes
                .borrow_mut()
                .get_mut(hello.worker as usize)
                .and_then(Option::take);
            let pipes =
                mine.ok_or_else(|| pipe_error(hello.worker)(std::io::Error::other("no pipes")))?;
            link(hello, pipes)
        };
        spawned::start(self.info().name, &spec, setup, &mut answer)
    }

    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let channel = |what: &'static str| {
            move |e: std::io::Error| WorkerError::Channel {
                worker,
                what,
                message: e.to_string(),
            }
        };
        let stream = handshake::say_hello(hello, worker, protocol, "")?;
        stream
            .set_read_timeout(Some(ANSWER_WAIT))
            .map_err(channel("its hello connection"))?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .map_err(channel("the line naming its pipes"))?;
        let mut fds = line.split_whitespace().map(str::parse::<i32>);
        let (Some(Ok(tasks)), Some(Ok(results))) = (fds.next(), fds.next()) else {
            return Err(WorkerError::Usage(format!(
                "worker {worker}: the coordinator named no pipes ({:?})",
                line.trim()
            )));
        };
        let tasks = adopt(tasks, OFlag::O_RDONLY).map_err(channel("its task pipe"))?;
        let results = adopt(results, OFlag::O_WRONLY).map_err(channel("its result pipe"))?;
        Ok((Box::new(Reader::new(tasks)), Box::new(Writer::new(results))))
    }

    fn files_needed(&self, workers: usize) -> u64 {
        // Four pipe ends (two kept, two until the worker starts), the hello connection, and a
        // reader's and a sender's wake-up per worker.
        32 + 7 * workers as u64
    }
}

fn pipe_error(worker: u32) -> impl Fn(std::io::Error) -> SpawnError {
    move |source| SpawnError::Channel {
        worker,
        what: "its pipes",
        source,
    }
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
    fn theirs(&self) -> [i32; 2] {
        [self.theirs.0.as_raw_fd(), self.theirs.1.as_raw_fd()]
    }
}

/// Tells a checked hello's worker which descriptors its pipes are; its links are the
/// coordinator's ends, and the worker's ends are closed here (the worker holds them now).
fn link(hello: Hello, pipes: Pipes) -> Result<Link, SpawnError> {
    let [tasks, results] = pipes.theirs();
    let mut stream = hello.stream;
    writeln!(stream, "{tasks} {results}").map_err(|source| SpawnError::Channel {
        worker: hello.worker,
        what: "the line naming its pipes",
        source,
    })?;
    drop(pipes.theirs);
    Ok(Link {
        sender: Box::new(Writer::new(pipes.tasks)),
        receiver: Box::new(Reader::new(pipes.results)),
    })
}

/// Takes descriptor `fd` as this worker's pipe end, opened for `access`, after checking that
/// it is one: a pipe (not, say, the hello socket) open that way.
fn adopt(fd: i32, access: OFlag) -> std::io::Result<File> {
    use nix::sys::stat::SFlag;
    if fd < 0 {
        return Err(std::io::Error::other(format!("descriptor {fd}")));
    }
    // SAFETY: borrowed only for the checks below; fstat fails on a descriptor not open.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let stat = nix::sys::stat::fstat(borrowed)?;
    let mode = OFlag::from_bits_truncate(fcntl(borrowed, FcntlArg::F_GETFL)?);
    let fifo = stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFIFO.bits();
    if !fifo || mode & OFlag::O_ACCMODE != access {
        return Err(std::io::Error::other(format!(
            "descriptor {fd} is not a pipe end open for {access:?}"
        )));
    }
    // SAFETY: the coordinator made this descriptor inheritable for this worker alone, it is
    // open (fstat succeeded), and nothing else in this process owns it.
    let file = unsafe { File::from_raw_fd(fd) };
    fcntl(
        file.as_fd(),
        FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(file)
}
