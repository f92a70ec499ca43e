//! Decoder threads: results decoded into their place in the output off the gather thread, so
//! one coordinator thread is not the bottleneck of every strategy that ships its data.
//!
//! The output is cut up front into one slice per task (tasks cover disjoint, ascending spans).
//! A task's slice travels with its job to a decoder thread and comes back with the outcome, so
//! a task is decoded by one thread at a time and a retried task finds its slice again for its
//! second result: no shared mutable output, no `unsafe`. A result frame has then been read
//! off its channel by its worker's reader thread, checked and accounted by the gather thread
//! (which frees the worker's slot and sends it its next task at once), and decoded here.

use super::scatter::{Received, ScatterGather};
use crate::error::PayloadError;
use crate::partition::Task;
use crate::transport::Frame;
use std::ops::Range;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::Scope;
use std::time::Duration;

/// Above this many payload bytes a result is decoded on a decoder thread; below it the hop
/// between threads costs more than the decode, which stays on the gather thread.
pub const OFFLOAD_ABOVE: usize = 64 * 1024;

/// Decoder threads when none are asked for: one per worker, on the cores left once the gather
/// thread and one worker have theirs (none on a 2-core machine, where measured on one they
/// only took time from the workers and the channel: split at 2 workers 89.7 ms with none,
/// 92.0 with one and 95.1 with two, medians of 25 runs).
pub fn auto_threads(workers: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    workers.min(cores.saturating_sub(2))
}

/// One result to decode: `frame[payload]` of `task`, from `worker`, into `out`.
pub struct Job<'o> {
    /// The worker that sent it.
    pub worker: usize,
    /// The task index.
    pub task: usize,
    /// The whole result frame, as its reader thread received it (its buffer goes back to the
    /// transport once decoded).
    pub frame: Frame,
    /// Where the payload lies in `frame`.
    pub payload: Range<usize>,
    /// The task's span of the output.
    pub out: &'o mut [f64],
}

/// A job done: its slice back, what the decode said, and when it ran (ns, `CLOCK_MONOTONIC`).
pub struct Decoded<'o> {
    /// The worker that sent the result.
    pub worker: usize,
    /// The task index.
    pub task: usize,
    /// The task's span of the output, back for a retry if the decode failed.
    pub out: &'o mut [f64],
    /// The codec bytes read, or why the payload was refused.
    pub result: Result<u64, PayloadError>,
    /// The decoder thread (0-based); `None`: the gather thread.
    pub thread: Option<u32>,
    /// When the decode started and ended.
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
}

/// Decodes `job` with `sg` on the calling thread (`thread` names it in the outcome: `None`,
/// the gather thread).
pub fn decode<'o>(
    sg: &dyn ScatterGather,
    tasks: &[Task],
    job: Job<'o>,
    thread: Option<u32>,
) -> Decoded<'o> {
    let start_ns = crate::trace::now_ns();
    let Job { worker, task, frame, payload, out } = job;
    let result = match (tasks.get(task), frame.get(payload)) {
        // A slice is the task's span, or empty where results do not pass through it.
        (Some(t), Some(_)) if !out.is_empty() && out.len() != t.len() => {
            Err(PayloadError::Mismatch {
                what: "output values for a task's result",
                got: out.len() as u64,
                expected: t.len() as u64,
            })
        }
        (Some(t), Some(bytes)) => sg.decode_result(Received::new(worker as u32, t, bytes), out),
        _ => Err(PayloadError::Mismatch {
            what: "task index or payload range of a decode job",
            got: task as u64,
            expected: tasks.len() as u64,
        }),
    };
    Decoded { worker, task, out, result, thread, start_ns, end_ns: crate::trace::now_ns() }
}

/// A pool of decoder threads within a scope, fed by the gather thread.
pub struct Decoders<'o> {
    /// Dropped with the pool: the queue closes and every decoder thread ends after its job.
    jobs: mpsc::Sender<Job<'o>>,
    done: mpsc::Receiver<Decoded<'o>>,
    pending: usize,
    threads: usize,
}

impl<'o> Decoders<'o> {
    /// Starts `threads` decoder threads in `scope`, decoding with `sg` the results of `tasks`.
    /// With no threads (or none could start), `None`: decode on the gather thread.
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, 'o>,
        threads: usize,
        sg: &'o dyn ScatterGather,
        tasks: &'o [Task],
    ) -> Option<Decoders<'o>> {
        let (jobs, inbox) = mpsc::channel::<Job<'o>>();
        let (outbox, done) = mpsc::channel::<Decoded<'o>>();
        let inbox = Arc::new(Mutex::new(inbox));
        let mut started = 0;
        for thread in 0..threads {
            let (inbox, outbox) = (Arc::clone(&inbox), outbox.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("decode-{thread}"))
                .spawn_scoped(scope, move || loop {
                    // The lock is held only while waiting; a poisoned one means a sibling
                    // panicked, and the scope reports that panic when it joins.
                    let next = match inbox.lock() {
                        Ok(inbox) => inbox.recv(),
                        Err(_) => break,
                    };
                    let Ok(job) = next else { break };
                    if outbox.send(decode(sg, tasks, job, Some(thread as u32))).is_err() {
                        break;
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(Decoders { jobs, done, pending: 0, threads: started })
    }

    /// Threads started.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Hands `job` to a decoder thread; gives it back if none is left to take it.
    pub fn submit(&mut self, job: Job<'o>) -> Result<(), Job<'o>> {
        self.jobs.send(job).map_err(|mpsc::SendError(job)| job)?;
        self.pending += 1;
        Ok(())
    }

    /// Jobs handed out and not yet collected.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// A finished job, waiting up to `timeout` for one (`Duration::ZERO`: only if one is ready).
    pub fn next(&mut self, timeout: Duration) -> Option<Decoded<'o>> {
        if self.pending == 0 {
            return None;
        }
        let got = match timeout.is_zero() {
            true => self.done.try_recv().ok(),
            false => self.done.recv_timeout(timeout).ok(),
        };
        self.pending -= usize::from(got.is_some());
        got
    }
}

/// `output` cut into one slice per task, `tasks` in ascending, disjoint spans; an empty
/// `output` (a strategy whose results do not pass through the coordinator) gives each task an
/// empty slice.
pub fn task_slices<'o>(
    output: &'o mut [f64],
    tasks: &[Task],
) -> Result<Vec<&'o mut [f64]>, String> {
    if output.is_empty() {
        return Ok(tasks.iter().map(|_| <&mut [f64]>::default()).collect());
    }
    let (mut rest, mut at) = (output, 0);
    let mut slices = Vec::with_capacity(tasks.len());
    for task in tasks {
        let span = task.span();
        if span.start < at || span.end - at > rest.len() {
            return Err(format!(
                "task {} covers {span:?}, not after {at} and within the output",
                task.index
            ));
        }
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(span.start - at);
        let (slice, tail) = tail.split_at_mut(span.len());
        slices.push(slice);
        (rest, at) = (tail, span.end);
    }
    Ok(slices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecKind;
    use crate::partition::{array_split, group};
    use crate::strategy::split::SplitScatter;

    #[test]
    fn slices_follow_the_tasks_and_refuse_overlaps() {
        let mut output: Vec<f64> = (0..10).map(f64::from).collect();
        let tasks = group(array_split(10, 3), 1);
        let slices = task_slices(&mut output, &tasks).unwrap();
        let lens: Vec<usize> = slices.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [4, 3, 3]);
        assert_eq!(slices[1][0], 4.0);
        let overlapping = vec![tasks[1].clone(), tasks[0].clone()];
        assert!(task_slices(&mut output, &overlapping).is_err());
        let empty = task_slices(&mut [], &tasks).unwrap();
        assert!(empty.iter().all(|s| s.is_empty()));
    }

    #[test]
    fn decoder_threads_place_every_result_and_return_refusals() {
        let n = 10_000;
        let input: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let tasks = group(array_split(n, 8), 1);
        let sg = SplitScatter { codec: CodecKind::RAW.codec(), input: &input };
        let mut output = vec![0.0; n];
        let slices = task_slices(&mut output, &tasks).unwrap();
        std::thread::scope(|scope| {
            let mut decoders = Decoders::start(scope, 3, &sg, &tasks).unwrap();
            for (task, out) in slices.into_iter().enumerate() {
                // An echo: the task's own frame is a valid result with the input's values;
                // task 5's is cut short and must come back refused, with its slice.
                let mut frame = Vec::new();
                sg.encode_task(0, &tasks[task], &mut frame).unwrap();
                let len = if task == 5 { frame.len() - 1 } else { frame.len() };
                let job = Job {
                    worker: task % 2,
                    task,
                    frame: Frame::owned(frame),
                    payload: 0..len,
                    out,
                };
                assert!(decoders.submit(job).is_ok());
            }
            let mut seen = 0;
            while let Some(d) = decoders.next(Duration::from_secs(10)) {
                assert_eq!(d.result.is_err(), d.task == 5, "task {}", d.task);
                assert_eq!(d.out.len(), tasks[d.task].len());
                seen += 1;
            }
            assert_eq!((seen, decoders.pending()), (8, 0));
        });
        for task in tasks.iter().filter(|t| t.index != 5) {
            assert!(task.span().all(|i| output[i] == input[i]));
        }
    }
}
