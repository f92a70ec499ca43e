//! The scheduler: dynamic scatter/gather over a pool of worker processes, as `Pool.map` does it.
//!
//! Each worker holds at most [`DEPTH`] tasks; it gets its next task when it hands back a result,
//! and results are placed by task index. Each worker has a result channel of its own, drained by
//! a reader thread into one event queue, together with the [`Watchdog`]'s exit reports: every
//! frame is attributable to its sender, a big result's send lasts only as long as its copy,
//! and the gather loop never blocks without a timeout. When a worker dies or misbehaves, its
//! unfinished tasks are handed to the others ([`OnWorkerExit::Retry`]) or the run stops
//! ([`OnWorkerExit::Abort`]).

use crate::codec::{CodecError, CodecKind};
use crate::error::RunError;
use crate::kernel::Function;
use crate::partition::Task;
use crate::protocol::{
    Inbound, ResultHeader, Setup, ShmRegions, TaskHeader, WorkerMode, WorkerStats,
};
use crate::report::{ms, Measurement, WorkerFailure, WorkerReport};
use crate::spawner::{kill_pid, spawn_pool, Exited, Pool, SpawnSpec, Watchdog};
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcBytesSender};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Tasks a worker holds at once: one computing, one queued behind it.
pub const DEPTH: usize = 2;

/// Above this many payload bytes a task, workers read tasks ahead on a separate thread
/// (`Setup::prefetch`); below it, frames fit the socket buffer and a thread hop would only add
/// latency.
const PREFETCH_ABOVE: usize = 64 * 1024;

/// How long the gather loop waits for an event before it checks its deadlines.
const TICK: Duration = Duration::from_millis(50);

/// How long a worker whose result channel closed has to be seen exiting.
const CLOSED_GRACE: Duration = Duration::from_secs(1);

/// How long workers get to send their stats once their task channels close; a worker still
/// silent then is killed. None at all once SIGINT or SIGTERM asked the run to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The shortest automatic task deadline.
pub const TASK_TIMEOUT_FLOOR: Duration = Duration::from_secs(5);

/// The automatic task deadline is this many times the slowest task completed so far.
pub const TASK_TIMEOUT_FACTOR: u32 = 20;

/// Before any task has completed, the deadline allows this much per element and work round
/// (about 20 times the cost of `exp` on one element), so long tasks are not cut short.
const FIRST_TASK_NS_PER_ELEMENT: u64 = 100;

/// How long a worker may hold a task without returning a result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskTimeout {
    /// [`TASK_TIMEOUT_FACTOR`] times the slowest task so far, at least [`TASK_TIMEOUT_FLOOR`].
    #[default]
    Auto,
    /// A fixed deadline (`--task-timeout SECONDS`).
    After(Duration),
    /// No deadline (`--task-timeout 0`).
    Off,
}

/// What to do when a worker dies or misbehaves mid-run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnWorkerExit {
    /// Hand its unfinished tasks to the surviving workers.
    #[default]
    Retry,
    /// Stop the run with an error.
    Abort,
}

/// The coordinator half of a process strategy: how tasks become payloads and results land.
pub trait ScatterGather {
    /// Appends the payload of `task` (after its header) to `out`; returns the codec bytes written.
    fn encode_task(&mut self, task: &Task, out: &mut Vec<u8>) -> Result<u64, CodecError>;
    /// Places the result payload of `task`; returns the codec bytes read.
    fn decode_result(&mut self, task: &Task, payload: &[u8]) -> Result<u64, String>;
}

/// How a process run is set up.
pub struct ProcessRun<'a> {
    /// The worker executable.
    pub worker_bin: &'a Path,
    /// Worker processes.
    pub workers: usize,
    /// How long each worker may take to say hello.
    pub handshake_timeout: Duration,
    /// What to do when a worker fails.
    pub on_worker_exit: OnWorkerExit,
    /// How long a worker may hold a task.
    pub task_timeout: TaskTimeout,
    /// Which worker half to run.
    pub mode: WorkerMode,
    /// The function.
    pub function: Function,
    /// Times the function is applied per element.
    pub work: u32,
    /// The codec.
    pub codec: CodecKind,
}

/// What the gather loop hears about.
enum Event {
    /// A frame from worker `.0`'s result channel.
    Frame(usize, Vec<u8>),
    /// Worker `.0`'s result channel closed (or broke).
    Closed(usize),
    /// A worker process ended.
    Exited(Exited),
}

/// Spawns the pool, scatters `tasks`, gathers every result through `sg`, and shuts the pool
/// down. Sets `wall_ns` (from `wall_start`) when the last result is placed, before shutdown.
pub fn run_on_pool(
    run: &ProcessRun<'_>,
    tasks: &[Task],
    sg: &mut dyn ScatterGather,
    shm: Option<&ShmRegions>,
    m: &mut Measurement,
    wall_start: Instant,
) -> Result<(), RunError> {
    let max_task = tasks.iter().map(Task::len).max().unwrap_or(0);
    let prefetch = run.mode != WorkerMode::Shm && max_task.saturating_mul(8) > PREFETCH_ABOVE;
    let mut receivers: Vec<IpcBytesReceiver> = Vec::with_capacity(run.workers);
    let mut channel_error = None;
    let inherit: Vec<i32> = shm
        .map(|r| vec![r.input_fd, r.output_fd])
        .unwrap_or_default();
    let spec = SpawnSpec {
        worker_bin: run.worker_bin,
        count: run.workers,
        handshake_timeout: run.handshake_timeout,
        inherit_fds: &inherit,
    };
    let mut pool = spawn_pool(&spec, |_| {
        let results = match ipc::bytes_channel() {
            Ok((tx, rx)) => {
                receivers.push(rx);
                Some(tx)
            }
            Err(e) => {
                channel_error.get_or_insert(e);
                None
            }
        };
        results.map(|results| Setup {
            mode: run.mode,
            function: run.function,
            work: run.work,
            codec: run.codec,
            results,
            shm: shm.copied(),
            prefetch,
        })
    })?;
    if let Some(e) = channel_error {
        return Err(channel_err("result channel")(e));
    }
    m.spawn_ns = pool.spawn_ns;

    let (events_tx, events) = mpsc::channel::<Event>();
    for (w, receiver) in receivers.into_iter().enumerate() {
        let tx = events_tx.clone();
        // Ends by itself when the worker's side of the channel closes.
        std::thread::Builder::new()
            .name(format!("gather-{w}"))
            .spawn(move || loop {
                match receiver.recv() {
                    Ok(frame) => {
                        if tx.send(Event::Frame(w, frame)).is_err() {
                            break;
                        }
                    }
                    Err(_) => {
                        let _ = tx.send(Event::Closed(w));
                        break;
                    }
                }
            })
            .map_err(channel_err("gather thread"))?;
    }
    let pids = pool.workers.iter().map(|w| (w.id, w.pid)).collect();
    let exits = events_tx.clone();
    let _watchdog = Watchdog::start(pids, move |exited| {
        let _ = exits.send(Event::Exited(exited));
    })
    .map_err(channel_err("watchdog thread"))?;
    drop(events_tx);

    let first_deadline = Duration::from_nanos(
        (max_task as u64)
            .saturating_mul(run.work.into())
            .saturating_mul(FIRST_TASK_NS_PER_ELEMENT),
    )
    .max(TASK_TIMEOUT_FLOOR);
    let mut gather = Gather::new(&mut pool, tasks, run.on_worker_exit)?;
    gather.deadline = Deadline {
        policy: run.task_timeout,
        before_first: first_deadline,
        slowest: None,
    };
    let result = gather.run(sg, &events, m);
    m.wall_ns = wall_start.elapsed().as_nanos() as u64;
    let shutdown = Instant::now();
    gather.shutdown(&events, m);
    drop(gather);
    let grace = if crate::interrupt::requested().is_some() {
        Duration::ZERO
    } else {
        Duration::from_secs(1)
    };
    for w in &mut pool.workers {
        let exit = w.reap(grace);
        if let Some(report) = m.workers.iter_mut().find(|r| r.id == w.id) {
            report.exit = Some(exit);
        }
    }
    m.shutdown_ns = shutdown.elapsed().as_nanos() as u64;
    result
}

fn channel_err(what: &'static str) -> impl Fn(std::io::Error) -> RunError {
    move |e| RunError::Channel {
        what: what.to_string(),
        message: e.to_string(),
    }
}

struct Slot {
    id: u32,
    pid: u32,
    alive: bool,
    closed_at: Option<Instant>,
    in_flight: Vec<usize>,
    /// Since when the worker has held tasks without returning a result.
    waiting_since: Option<Instant>,
    stderr: Option<std::path::PathBuf>,
    tasks_done: u64,
    compute_ns: u64,
    sender: Option<IpcBytesSender>,
    stats: Option<WorkerStats>,
}

/// The task deadline in force.
struct Deadline {
    policy: TaskTimeout,
    /// Until a first task completes (automatic policy).
    before_first: Duration,
    /// The slowest task completed so far, from send (or the previous result) to result.
    slowest: Option<Duration>,
}

impl Deadline {
    fn current(&self) -> Option<Duration> {
        match self.policy {
            TaskTimeout::Off => None,
            TaskTimeout::After(d) => Some(d),
            TaskTimeout::Auto => Some(match self.slowest {
                Some(slowest) => (slowest * TASK_TIMEOUT_FACTOR).max(TASK_TIMEOUT_FLOOR),
                None => self.before_first,
            }),
        }
    }
}

struct Gather<'a> {
    deadline: Deadline,
    pool: &'a mut Pool,
    tasks: &'a [Task],
    slots: Vec<Slot>,
    queue: VecDeque<usize>,
    done: Vec<bool>,
    remaining: usize,
    policy: OnWorkerExit,
    frame: Vec<u8>,
}

impl<'a> Gather<'a> {
    fn new(pool: &'a mut Pool, tasks: &'a [Task], policy: OnWorkerExit) -> Result<Self, RunError> {
        let mut slots = Vec::with_capacity(pool.workers.len());
        for w in &pool.workers {
            let sender = w.tasks.clone().ok_or_else(|| RunError::Channel {
                what: format!("task channel of worker {} (pid {})", w.id, w.pid),
                message: "already closed".into(),
            })?;
            slots.push(Slot {
                id: w.id,
                pid: w.pid,
                alive: true,
                closed_at: None,
                in_flight: Vec::with_capacity(DEPTH),
                waiting_since: None,
                stderr: w.stderr.clone(),
                tasks_done: 0,
                compute_ns: 0,
                sender: Some(sender),
                stats: None,
            });
        }
        Ok(Gather {
            deadline: Deadline {
                policy: TaskTimeout::Off,
                before_first: TASK_TIMEOUT_FLOOR,
                slowest: None,
            },
            pool,
            tasks,
            slots,
            queue: (0..tasks.len()).collect(),
            done: vec![false; tasks.len()],
            remaining: tasks.len(),
            policy,
            frame: Vec::new(),
        })
    }

    fn run(
        &mut self,
        sg: &mut dyn ScatterGather,
        events: &mpsc::Receiver<Event>,
        m: &mut Measurement,
    ) -> Result<(), RunError> {
        self.refill_all(sg, m)?;
        while self.remaining > 0 {
            if let Some(signal) = crate::interrupt::requested() {
                return Err(RunError::Interrupted { signal });
            }
            let t = Instant::now();
            let event = events.recv_timeout(TICK);
            m.wait_ns += t.elapsed().as_nanos() as u64;
            match event {
                Ok(Event::Frame(w, frame)) => {
                    if !self.slots[w].alive {
                        continue; // a late frame from a worker already written off
                    }
                    if let Err(reason) = self.accept(w, &frame, sg, m) {
                        self.fail(w, format!("sent a malformed frame: {reason}"), m)?;
                    }
                }
                Ok(Event::Exited(exited)) => {
                    let w = exited.worker as usize;
                    if self.slots[w].alive {
                        let gist = self.slots[w]
                            .stderr
                            .as_deref()
                            .and_then(crate::spawner::stderr_gist)
                            .map_or_else(String::new, |g| format!(" ({g})"));
                        self.fail(w, format!("{exited}{gist}"), m)?;
                    }
                }
                Ok(Event::Closed(w)) => {
                    self.slots[w].closed_at.get_or_insert_with(Instant::now);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RunError::Channel {
                        what: "gathering results".into(),
                        message: "every channel closed".into(),
                    })
                }
            }
            self.enforce_deadline(m)?;
            // A worker that hung up on its result channel but is still running is broken.
            for w in 0..self.slots.len() {
                let slot = &self.slots[w];
                if slot.alive && slot.closed_at.is_some_and(|t| t.elapsed() > CLOSED_GRACE) {
                    self.fail(w, "closed its result channel".into(), m)?;
                }
            }
            self.refill_all(sg, m)?;
        }
        Ok(())
    }

    /// Writes off every worker that has held a task past the deadline: it is killed, and its
    /// tasks go back to the queue (or the run stops under `Abort`).
    fn enforce_deadline(&mut self, m: &mut Measurement) -> Result<(), RunError> {
        let Some(deadline) = self.deadline.current() else {
            return Ok(());
        };
        for w in 0..self.slots.len() {
            let slot = &self.slots[w];
            let (Some(since), Some(&task)) = (slot.waiting_since, slot.in_flight.first()) else {
                continue;
            };
            let held = since.elapsed();
            if slot.alive && held > deadline {
                let reason = format!(
                    "no result for task {task} after {:.1} s (task deadline {:.1} s; --task-timeout sets it)",
                    held.as_secs_f64(),
                    deadline.as_secs_f64()
                );
                self.fail(w, reason, m)?;
            }
        }
        Ok(())
    }

    /// Takes one frame from worker `w`; an error means the worker broke the protocol.
    fn accept(
        &mut self,
        w: usize,
        frame: &[u8],
        sg: &mut dyn ScatterGather,
        m: &mut Measurement,
    ) -> Result<(), String> {
        match Inbound::read(frame).map_err(|e| e.to_string())? {
            Inbound::Stats(stats) => {
                self.slots[w].stats = Some(stats);
                Ok(())
            }
            Inbound::Result(header, payload) => {
                self.accept_result(w, &header, payload, frame.len(), sg, m)
            }
        }
    }

    fn accept_result(
        &mut self,
        w: usize,
        header: &ResultHeader,
        payload: &[u8],
        frame_len: usize,
        sg: &mut dyn ScatterGather,
        m: &mut Measurement,
    ) -> Result<(), String> {
        if header.worker as usize != w {
            return Err(format!("it signed its result as worker {}", header.worker));
        }
        let task = header.task as usize;
        let position = self.slots[w]
            .in_flight
            .iter()
            .position(|&t| t == task)
            .ok_or_else(|| format!("result for task {task}, which it was not given"))?;
        let t = Instant::now();
        let payload_bytes = sg.decode_result(&self.tasks[task], payload)?;
        m.decode_ns += t.elapsed().as_nanos() as u64 + header.decode_ns;
        m.encode_ns += header.encode_ns;
        m.compute_ns += header.compute_ns;
        m.bytes_received += frame_len as u64;
        m.payload_bytes_received += payload_bytes;
        m.messages_received += 1;
        let slot = &mut self.slots[w];
        slot.in_flight.swap_remove(position);
        if let Some(since) = slot.waiting_since {
            let took = since.elapsed();
            self.deadline.slowest = Some(self.deadline.slowest.map_or(took, |s| s.max(took)));
        }
        slot.waiting_since = (!slot.in_flight.is_empty()).then(Instant::now);
        slot.tasks_done += 1;
        slot.compute_ns += header.compute_ns;
        self.done[task] = true;
        self.remaining -= 1;
        Ok(())
    }

    fn refill_all(
        &mut self,
        sg: &mut dyn ScatterGather,
        m: &mut Measurement,
    ) -> Result<(), RunError> {
        for w in 0..self.slots.len() {
            self.refill(w, sg, m)?;
        }
        Ok(())
    }

    fn refill(
        &mut self,
        w: usize,
        sg: &mut dyn ScatterGather,
        m: &mut Measurement,
    ) -> Result<(), RunError> {
        while self.slots[w].alive && self.slots[w].in_flight.len() < DEPTH {
            let Some(index) = self.queue.pop_front() else {
                break;
            };
            if self.done[index] {
                continue;
            }
            let task = &self.tasks[index];
            // One frame buffer for the whole run: sends are synchronous, so it is free again
            // as soon as `send` returns, and its pages are already faulted in.
            let frame = &mut self.frame;
            frame.clear();
            TaskHeader {
                task: index as u32,
                start: task.span().start as u64,
                len: task.len() as u64,
                parts: task.parts.len() as u32,
            }
            .write(frame);
            let t = Instant::now();
            let payload = sg
                .encode_task(task, frame)
                .map_err(|source| RunError::Codec {
                    task: index,
                    phase: "encode",
                    source,
                })?;
            m.encode_ns += t.elapsed().as_nanos() as u64;
            m.bytes_sent += frame.len() as u64;
            m.payload_bytes_sent += payload;
            m.messages_sent += 1;
            let slot = &mut self.slots[w];
            slot.in_flight.push(index);
            slot.waiting_since.get_or_insert_with(Instant::now);
            if let Some(sender) = &slot.sender {
                let t = Instant::now();
                if sender.send(frame).is_err() {
                    // Gone or broken: make sure it is dead, so the watchdog reports it.
                    let _ = kill_pid(slot.pid);
                }
                m.transfer_ns += t.elapsed().as_nanos() as u64;
            }
        }
        Ok(())
    }

    /// Writes worker `w` off: kills it, requeues its tasks, or stops the run under `Abort`.
    fn fail(&mut self, w: usize, reason: String, m: &mut Measurement) -> Result<(), RunError> {
        let slot = &mut self.slots[w];
        slot.alive = false;
        slot.sender = None;
        slot.waiting_since = None;
        let _ = kill_pid(slot.pid);
        let unfinished = std::mem::take(&mut slot.in_flight);
        m.failures.push(WorkerFailure {
            worker: slot.id,
            pid: slot.pid,
            reason: reason.clone(),
            tasks_rerun: unfinished.len() as u64,
        });
        let died = RunError::WorkerDied {
            worker: slot.id,
            pid: slot.pid,
            status: reason,
            in_flight: unfinished.len(),
        };
        for task in unfinished.into_iter().rev() {
            self.queue.push_front(task);
        }
        if self.policy == OnWorkerExit::Abort || !self.slots.iter().any(|s| s.alive) {
            return Err(died);
        }
        Ok(())
    }

    /// Closes every task channel, collects the workers' stats, and fills in the report.
    fn shutdown(&mut self, events: &mpsc::Receiver<Event>, m: &mut Measurement) {
        for (slot, process) in self.slots.iter_mut().zip(self.pool.workers.iter_mut()) {
            slot.sender = None;
            process.close_tasks();
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.slots.iter().any(|s| s.alive && s.stats.is_none())
            && Instant::now() < deadline
            && crate::interrupt::requested().is_none()
        {
            match events.recv_timeout(TICK) {
                Ok(Event::Frame(w, frame)) => {
                    if let Ok(Inbound::Stats(stats)) = Inbound::read(&frame) {
                        self.slots[w].stats = Some(stats);
                    }
                }
                Ok(Event::Exited(exited)) => self.slots[exited.worker as usize].alive = false,
                Ok(Event::Closed(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        for slot in &self.slots {
            if let Some(stats) = slot.stats {
                m.transfer_ns += stats.send_ns;
            }
            m.compute_max_ns = m.compute_max_ns.max(slot.compute_ns);
            m.workers.push(WorkerReport {
                id: slot.id,
                pid: slot.pid,
                tasks: slot.tasks_done,
                compute_ms: ms(slot.compute_ns),
                exit: None,
            });
        }
    }
}
