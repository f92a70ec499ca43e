//! `pipe`: each worker's sub-vectors over OS pipes of its own, one each way, as raw f64
//! bytes; the task and result frames over the transport carry only their headers. The
//! coordinator writes a task's values into its worker's task pipe before the frame goes out,
//! and a worker writes its result into its result pipe before its frame comes back, which the
//! coordinator then reads straight into the task's span of the output: no codec, no frame
//! buffer, no copy but the kernel's two.
//!
//! Pipes are stream-ordered, so results are read in the order each worker's frames arrive, on
//! the gather thread (the strategy declares that its frames carry no payload). A pipe holds
//! what its capacity holds: tasks are cut into pieces of which [`DEPTH`] fit in one, so a write
//! never waits for a reader, and the gather thread never blocks on a worker. Each worker gets
//! its own pipes' ends in its own `Attach`.

use super::{compute_into, timed, Compute, Info, Run, Strategy, TaskIn, TaskOut};
use crate::error::{PayloadError, RunError};
use crate::kernel::Function;
use crate::partition::{self, Task};
use crate::protocol::{decode_extra, encode_extra, Setup};
use crate::scheduler::{Attach, Received, ScatterGather, DEPTH};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Sub-vectors over a pipe per worker each way.
pub struct Pipe;

/// Its `--help` line.
const ABOUT: &str =
    "sub-vectors as raw bytes over OS pipes of each worker's own, headers only in frames";

/// The pipe capacity asked for when the system allows no more (`/proc/sys/fs/pipe-max-size`
/// unreadable): Linux's default.
const DEFAULT_CAPACITY: usize = 64 * 1024;

/// How long a pipe may stay full (or a result missing from it) before the worker is called
/// broken: by the capacity rule it never should.
const PIPE_PATIENCE: Duration = Duration::from_secs(1);

/// The pipe capacity this machine allows, bytes.
fn capacity() -> usize {
    std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_CAPACITY)
}

/// The most values a task may hold: [`DEPTH`] tasks fit in one pipe.
fn piece(capacity: usize) -> usize {
    (capacity / (DEPTH * 8)).max(1)
}

impl Strategy for Pipe {
    /// Its values' own bytes (no codec) through each worker's pipes both ways, priced as the
    /// run's transport moves bytes, ranges in the frames, pipelined with the compute.
    fn predict(&self, l: &crate::costs::Load<'_>) -> Option<crate::costs::Prediction> {
        crate::costs::Load { codec: "raw".into(), ..l.clone() }.shipped(false)
    }

    fn info(&self) -> Info {
        Info::processes_here("pipe", ABOUT, "a pipe per worker each way (raw f64 bytes)")
    }

    /// Each `--splits` part cut into pieces that fit its worker's pipe, then grouped
    /// `chunksize` pieces a task.
    fn tasks(&self, s: &Settings, chunksize: usize) -> Vec<Task> {
        let most = piece(capacity());
        let mut pieces = Vec::new();
        for part in partition::array_split(s.n, s.splits) {
            let mut at = part.start;
            while at < part.end {
                let end = (at + most).min(part.end);
                pieces.push(at..end);
                at = end;
            }
        }
        partition::group(pieces, chunksize)
    }

    /// Refuses tasks of which [`DEPTH`] would not fit in a pipe (several pieces a task).
    fn check(&self, s: &Settings) -> Result<(), String> {
        let capacity = capacity();
        let chunksize = s.chunksize.unwrap_or(1);
        let biggest = self.tasks(s, chunksize).iter().map(Task::len).max().unwrap_or(0);
        if biggest.saturating_mul(8 * DEPTH) > capacity {
            return Err(format!(
                "--chunksize {chunksize} makes tasks of {biggest} values, but {DEPTH} tasks must fit in a worker's pipe of {capacity} bytes (/proc/sys/fs/pipe-max-size), {} values a task at most: use a smaller --chunksize",
                piece(capacity)
            ));
        }
        Ok(())
    }

    fn files_needed(&self, workers: usize) -> u64 {
        4 * workers as u64
    }

    /// Its pipes are made for each run, and a worker gets them at its start.
    fn keeps_workers(&self) -> bool {
        false
    }

    fn label(&self, s: &Settings) -> String {
        let tasks = self.tasks(s, s.chunksize.unwrap_or(1)).len();
        format!(
            "pipe, {} splits in {tasks} tasks of at most {} values",
            s.splits,
            piece(capacity())
        )
    }

    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        let pipes = (0..run.cfg.workers)
            .map(|_| WorkerPipes::open(capacity()))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| RunError::Channel {
                what: "pipe: a worker's pipes".into(),
                message: e.to_string(),
            })?;
        let Run { cfg, mode, input, output, m, start } = run;
        let output = output.ok_or_else(|| super::not_in_place(mode))?;
        let sg = PipeScatter { input: input.as_slice(), pipes };
        super::on_processes(cfg, mode, &sg, output.as_mut_slice(), m, start)
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        let ends: PipeEnds = decode_extra(&setup.extra)?;
        if ends.tasks < 0 || ends.results < 0 || ends.tasks == ends.results {
            return Err(PayloadError::Setup(format!(
                "bad pipe descriptors {} and {}",
                ends.tasks, ends.results
            )));
        }
        // SAFETY: the coordinator made these descriptors inheritable for this worker alone,
        // and nothing else in this process owns them.
        let (tasks, results) =
            unsafe { (File::from_raw_fd(ends.tasks), File::from_raw_fd(ends.results)) };
        Ok(Box::new(PipeCompute {
            function: setup.function,
            work: setup.work,
            tasks,
            results,
            input: Vec::new(),
            output: Vec::new(),
        }))
    }
}

/// A worker's ends of its pipes, as its setup names them.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct PipeEnds {
    /// Where it reads its tasks' values.
    tasks: i32,
    /// Where it writes its results' values.
    results: i32,
}

/// One worker's two pipes: the coordinator's ends (non-blocking) and the worker's (inherited
/// at its start, kept open here for the run).
struct WorkerPipes {
    tasks: File,
    results: File,
    theirs: (OwnedFd, OwnedFd),
}

impl WorkerPipes {
    fn open(capacity: usize) -> std::io::Result<WorkerPipes> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = OFlag::O_CLOEXEC;
        let (task_r, task_w) = nix::unistd::pipe2(flags)?;
        let (result_r, result_w) = nix::unistd::pipe2(flags)?;
        for end in [&task_w, &result_r] {
            let size = i32::try_from(capacity).unwrap_or(i32::MAX);
            let got = fcntl(end.as_fd(), FcntlArg::F_SETPIPE_SZ(size))?;
            if (got as usize) < capacity {
                return Err(std::io::Error::other(format!(
                    "a pipe of {got} bytes, not the {capacity} asked for"
                )));
            }
            fcntl(end.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        }
        Ok(WorkerPipes {
            tasks: File::from(task_w),
            results: File::from(result_r),
            theirs: (task_r, result_w),
        })
    }
}

/// The coordinator half: values out through each worker's task pipe, results in through its
/// result pipe, straight into place.
struct PipeScatter<'a> {
    input: &'a [f64],
    pipes: Vec<WorkerPipes>,
}

impl PipeScatter<'_> {
    fn pipes(&self, worker: u32) -> Result<&WorkerPipes, PayloadError> {
        self.pipes.get(worker as usize).ok_or(PayloadError::Mismatch {
            what: "worker of a pipe",
            got: worker.into(),
            expected: self.pipes.len() as u64,
        })
    }
}

/// Waits up to [`PIPE_PATIENCE`] for `file` to be ready for `events`; false if it was not.
fn ready(file: &File, events: nix::poll::PollFlags) -> bool {
    use nix::poll::{poll, PollFd, PollTimeout};
    let mut fds = [PollFd::new(file.as_fd(), events)];
    let ms = PollTimeout::try_from(PIPE_PATIENCE).unwrap_or(PollTimeout::MAX);
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

/// Moves `len` bytes through `file` (non-blocking) with `step`, waiting for it at most
/// [`PIPE_PATIENCE`] at a time.
fn move_all(
    file: &File,
    len: usize,
    events: nix::poll::PollFlags,
    mut step: impl FnMut(usize) -> std::io::Result<usize>,
) -> std::io::Result<()> {
    let mut done = 0;
    while done < len {
        match step(done) {
            Ok(0) => return Err(std::io::Error::other("the other end closed")),
            Ok(k) => done += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if !ready(file, events) {
                    return Err(std::io::Error::other(format!(
                        "{} of {len} bytes after {:.1} s",
                        done,
                        PIPE_PATIENCE.as_secs_f64()
                    )));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl ScatterGather for PipeScatter<'_> {
    fn attach(&self, worker: u32) -> Attach {
        let Some(p) = self.pipes.get(worker as usize) else {
            return Attach::default();
        };
        let (tasks, results) = (p.theirs.0.as_raw_fd(), p.theirs.1.as_raw_fd());
        Attach {
            setup: encode_extra(&PipeEnds { tasks, results }),
            inherit_fds: vec![tasks, results],
        }
    }

    fn encode_task(
        &self,
        worker: u32,
        task: &Task,
        _out: &mut Vec<u8>,
    ) -> Result<u64, PayloadError> {
        let bytes: &[u8] = bytemuck::cast_slice(&self.input[task.span()]);
        let mut pipe = &self.pipes(worker)?.tasks;
        move_all(pipe, bytes.len(), nix::poll::PollFlags::POLLOUT, |at| pipe.write(&bytes[at..]))
            .map_err(|source| PayloadError::Io {
            what: "writing a task into its worker's pipe",
            source,
        })?;
        Ok(bytes.len() as u64)
    }

    fn decode_result(&self, got: Received<'_>, out: &mut [f64]) -> Result<u64, PayloadError> {
        let (worker, task, payload) = (got.worker, got.task, got.payload);
        if !payload.is_empty() || out.len() != task.len() {
            return Err(PayloadError::Mismatch {
                what: "payload bytes of a pipe result frame",
                got: payload.len() as u64,
                expected: 0,
            });
        }
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out);
        let len = bytes.len();
        let mut pipe = &self.pipes(worker)?.results;
        move_all(pipe, len, nix::poll::PollFlags::POLLIN, |at| pipe.read(&mut bytes[at..]))
            .map_err(|source| PayloadError::Io {
                what: "reading a result from its worker's pipe",
                source,
            })?;
        Ok(len as u64)
    }
}

/// The most values a worker takes in one task from its pipe (a peer's header is not trusted
/// with an allocation).
const WORKER_MAX_VALUES: u64 = 1 << 27;

/// The worker half: values in from its task pipe, results out to its result pipe.
struct PipeCompute {
    function: Function,
    work: u32,
    tasks: File,
    results: File,
    input: Vec<f64>,
    output: Vec<f64>,
}

impl Compute for PipeCompute {
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError> {
        let (TaskIn { header, payload }, TaskOut { timing, .. }) = (task, out);
        if !payload.is_empty() || header.len > WORKER_MAX_VALUES {
            return Err(PayloadError::Mismatch {
                what: "values of a pipe task",
                got: header.len,
                expected: WORKER_MAX_VALUES.min(header.len),
            });
        }
        let n = header.len as usize;
        let io = |what| move |source| PayloadError::Io { what, source };
        self.input.resize(n, 0.0);
        let into = bytemuck::cast_slice_mut(&mut self.input);
        timed(&mut timing.decode_ns, || self.tasks.read_exact(into))
            .map_err(io("reading a task from the pipe"))?;
        let (function, work) = (self.function, self.work);
        timed(&mut timing.compute_ns, || {
            compute_into(function, work, &self.input, &mut self.output)
        });
        let from = bytemuck::cast_slice(&self.output);
        timed(&mut timing.encode_ns, || self.results.write_all(from))
            .map_err(io("writing a result into the pipe"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunRequest;
    use crate::strategy::Mode;

    fn settings(n: usize, splits: usize, chunksize: Option<usize>) -> Settings {
        let request = RunRequest {
            settings: crate::settings::Settings {
                n,
                chunksize,
                ..crate::settings::Settings::default()
            },
            modes: vec![Mode::SEQUENTIAL],
            workers: Some(2),
            splits: Some(splits),
            ..RunRequest::default()
        };
        request.validate().map(|c| c.settings).unwrap()
    }

    #[test]
    fn every_task_fits_its_pipe_twice_and_the_tasks_cover_the_input() {
        let s = settings(10_000_000, 64, None);
        let tasks = Pipe.tasks(&s, 1);
        let most = piece(capacity());
        assert!(tasks.iter().all(|t| t.len() <= most));
        assert_eq!(tasks.iter().map(Task::len).sum::<usize>(), 10_000_000);
        assert!(tasks.len() >= 64);
        assert!(Pipe.check(&s).is_ok());
        let refused = Pipe.check(&settings(10_000_000, 64, Some(64))).unwrap_err();
        assert!(refused.contains("--chunksize 64"), "{refused}");
        assert!(Pipe.label(&s).contains(&format!("{} tasks", tasks.len())));
    }

    #[test]
    fn both_halves_move_a_task_through_real_pipes() {
        let input: Vec<f64> = (0..5000).map(|i| i as f64 / 7.0).collect();
        let sg = PipeScatter {
            input: &input,
            pipes: vec![WorkerPipes::open(DEFAULT_CAPACITY).unwrap()],
        };
        let attach = sg.attach(0);
        assert_eq!(attach.inherit_fds.len(), 2);
        let ends: PipeEnds = decode_extra(&attach.setup).unwrap();
        // The worker half on duplicates of its ends, as a spawned worker would hold them.
        let dup = |fd: i32| nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) });
        let (tasks, results) = (dup(ends.tasks).unwrap(), dup(ends.results).unwrap());
        let mut worker = PipeCompute {
            function: Function::Sqrt,
            work: 1,
            tasks: File::from(tasks),
            results: File::from(results),
            input: Vec::new(),
            output: Vec::new(),
        };
        let task = Task { index: 0, parts: std::iter::once(1000..4000).collect() };
        assert_eq!(sg.encode_task(0, &task, &mut Vec::new()).unwrap(), 24_000);
        let header = crate::protocol::TaskHeader { task: 0, start: 1000, len: 3000, parts: 1 };
        use crate::strategy::ComputeOnce;
        worker.once(&header, &[], &mut Vec::new()).unwrap();
        let mut out = vec![0.0; 3000];
        assert_eq!(sg.decode_result(Received::new(0, &task, &[]), &mut out).unwrap(), 24_000);
        assert!(out.iter().zip(&input[1000..4000]).all(|(o, i)| o.to_bits() == i.sqrt().to_bits()));
        // A result frame whose values never came is refused within the pipe's patience.
        let err = sg.decode_result(Received::new(0, &task, &[]), &mut out).unwrap_err();
        assert!(err.to_string().contains("reading a result"), "{err}");
    }
}
