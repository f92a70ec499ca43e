//! The scheduler: dynamic scatter/gather over a pool of worker processes, as `Pool.map` does it.
//!
//! Each worker holds at most [`DEPTH`] tasks; it gets its next task when it hands back a result,
//! and results are placed by task index. The scheduler sees the workers only through a
//! [`Pool`] of the run's [`Transport`]: frames to worker i, and events (a frame from worker i,
//! its channel closed, its end) with a timeout, so the gather loop never blocks for ever. When a
//! worker dies, misbehaves or holds a task past its deadline, its unfinished tasks are handed
//! to the others ([`OnWorkerExit::Retry`]) or the run stops ([`OnWorkerExit::Abort`]).

use crate::codec::{CodecError, CodecKind};
use crate::decoders::{self, Decoded, Decoders, Job, OFFLOAD_ABOVE};
use crate::error::{PayloadError, RunError};
use crate::kernel::Function;
use crate::partition::Task;
use crate::protocol::{Inbound, ResultHeader, Setup, TaskHeader, WorkerStats};
use crate::report::{ms, Measurement, WorkerFailure, WorkerReport};
use crate::settings::Settings;
use crate::trace::{Phase, SENDER_TRACKS};
use crate::transport::{Event, Frame, Pool, PoolSpec, Transport};
use std::collections::VecDeque;
use std::path::Path;
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

pub use crate::settings::{OnWorkerExit, TaskTimeout};

/// The coordinator half of a process strategy: how tasks become payloads and results land.
/// Results are decoded on [decoder threads](crate::decoders), several tasks at once.
pub trait ScatterGather: Sync {
    /// Appends the payload of `task` (after its header) to `out`; returns the codec bytes written.
    fn encode_task(&self, task: &Task, out: &mut Vec<u8>) -> Result<u64, CodecError>;
    /// Places the result payload of `task` into `out`, the task's span of the output (empty
    /// for a strategy whose results do not pass through the coordinator's output); returns the
    /// codec bytes read.
    fn decode_result(
        &self,
        task: &Task,
        payload: &[u8],
        out: &mut [f64],
    ) -> Result<u64, PayloadError>;
}

/// How a process run is set up.
pub struct ProcessRun<'a> {
    /// How workers are started and reached.
    pub transport: &'a dyn Transport,
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
    /// The strategy whose worker half to run, by name.
    pub strategy: &'static str,
    /// Its tasks carry their data (big ones are read ahead on a thread by the worker).
    pub carries_payload: bool,
    /// One task per worker, all sent by one collective call ([`Pool::scatter`]).
    pub collective: bool,
    /// The function.
    pub function: Function,
    /// Times the function is applied per element.
    pub work: u32,
    /// The codec.
    pub codec: CodecKind,
    /// Decoder threads; `None` = automatic.
    pub decode_threads: Option<usize>,
    /// Train frames bigger than this many bytes; 0 = whole.
    pub frame_bytes: usize,
}

impl<'a> ProcessRun<'a> {
    /// The process settings of strategy `strategy` (whose tasks carry their data when
    /// `carries_payload`, all sent at once by a collective when `collective`) on the
    /// settings' transport.
    pub fn new(
        settings: &'a Settings,
        strategy: &'static str,
        carries_payload: bool,
        collective: bool,
    ) -> Result<ProcessRun<'a>, RunError> {
        let worker_bin = match settings.transport.spawns() {
            // A launcher's ranks run the coordinator's own binary.
            false => Path::new("launched rank"),
            true => settings
                .worker_bin
                .as_deref()
                .ok_or(crate::error::SpawnError::NotFound {
                    path: std::path::PathBuf::from("worker"),
                })?,
        };
        Ok(ProcessRun {
            transport: settings.transport.transport()?,
            worker_bin,
            workers: settings.workers,
            handshake_timeout: settings.handshake_timeout,
            on_worker_exit: settings.on_worker_exit,
            task_timeout: settings.task_timeout,
            strategy,
            carries_payload,
            collective,
            function: settings.function,
            work: settings.work,
            codec: settings.codec,
            decode_threads: settings.decode_threads,
            frame_bytes: settings.frame_bytes,
        })
    }
}

/// What a strategy hands its workers beyond the common setup.
#[derive(Clone, Debug, Default)]
pub struct Attach {
    /// The setup's `extra` bytes, in the strategy's encoding.
    pub setup: Vec<u8>,
    /// Descriptors the workers inherit (shm's regions).
    pub inherit_fds: Vec<i32>,
}

/// Starts the pool, scatters `tasks`, gathers every result through `sg` into `output` (big
/// results on [decoder threads](crate::decoders)), and shuts the pool down. Sets `wall_ns`
/// (from `wall_start`) when the last result is placed, before shutdown.
pub fn run_on_pool(
    run: &ProcessRun<'_>,
    tasks: &[Task],
    sg: &dyn ScatterGather,
    output: &mut [f64],
    attach: &Attach,
    m: &mut Measurement,
    wall_start: Instant,
) -> Result<(), RunError> {
    let max_task = tasks.iter().map(Task::len).max().unwrap_or(0);
    let prefetch = run.carries_payload
        && max_task.saturating_mul(8) > PREFETCH_ABOVE
        && !run.transport.one_thread();
    let spec = PoolSpec {
        worker_bin: run.worker_bin,
        count: run.workers,
        handshake_timeout: run.handshake_timeout,
        inherit_fds: &attach.inherit_fds,
        frame_bytes: run.frame_bytes,
    };
    let setup = |_| Setup {
        mode: run.strategy.to_string(),
        function: run.function,
        work: run.work,
        codec: run.codec,
        extra: attach.setup.clone(),
        prefetch,
        trace: m.tracing,
        frame_bytes: run.frame_bytes as u64,
    };
    let spawn_at = crate::trace::now_ns();
    let mut pool = run.transport.start(&spec, &setup)?;
    m.spawn_ns = pool.spawn_ns();
    m.record(
        (std::process::id(), None),
        Phase::Spawn,
        None,
        spawn_at,
        spawn_at + m.spawn_ns,
    );
    // Each worker's own start: from its spawn until its hello.
    for w in pool.workers().iter().filter(|w| w.ready_at_ns > 0) {
        let them = (w.pid, Some(w.id));
        m.record(them, Phase::Spawn, None, w.started_at_ns, w.ready_at_ns);
    }

    let first_deadline = Duration::from_nanos(
        (max_task as u64)
            .saturating_mul(run.work.into())
            .saturating_mul(FIRST_TASK_NS_PER_ELEMENT),
    )
    .max(TASK_TIMEOUT_FLOOR);
    let deadline = Deadline {
        policy: run.task_timeout,
        before_first: first_deadline,
        slowest: None,
    };
    let slices = decoders::task_slices(output, tasks).map_err(|message| RunError::Channel {
        what: "placing results".into(),
        message,
    })?;
    // Results big enough to be worth a hop are decoded off the gather thread.
    let threads = match run.carries_payload && max_task.saturating_mul(8) > OFFLOAD_ABOVE {
        true => run
            .decode_threads
            .unwrap_or_else(|| decoders::auto_threads(run.workers)),
        false => 0,
    };
    let shutdown = std::thread::scope(|scope| {
        let decoders = Decoders::start(scope, threads, sg, tasks);
        m.decode_threads = decoders.as_ref().map_or(0, Decoders::threads);
        m.frame_bytes = match run.transport.info().trains {
            true => run.frame_bytes,
            false => 0, // it sends its own way
        };
        let pool = pool.as_mut();
        let mut gather = Gather::new(pool, tasks, sg, slices, decoders, run.on_worker_exit);
        gather.deadline = deadline;
        gather.collective = run.collective;
        let result = match run.collective {
            true => gather.scatter_all(m).and_then(|()| gather.run(m)),
            false => gather.run(m),
        };
        m.wall_ns = wall_start.elapsed().as_nanos() as u64;
        let shutdown = Instant::now();
        gather.shutdown(m);
        (shutdown, result)
    });
    let (shutdown, result) = shutdown;
    let grace = if crate::interrupt::requested().is_some() {
        Duration::ZERO
    } else {
        Duration::from_secs(1)
    };
    for w in 0..pool.workers().len() {
        let exit = pool.reap(w, grace);
        if let Some(report) = m.workers.get_mut(w) {
            report.exit = Some(exit);
        }
    }
    m.shutdown_ns = shutdown.elapsed().as_nanos() as u64;
    result
}

struct Slot {
    id: u32,
    pid: u32,
    alive: bool,
    closed_at: Option<Instant>,
    in_flight: Vec<usize>,
    /// Since when the worker has held tasks without returning a result.
    waiting_since: Option<Instant>,
    tasks_done: u64,
    compute_ns: u64,
    /// Decoding, computing and encoding, as its result headers said.
    busy_ns: u64,
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
    pool: &'a mut dyn Pool,
    tasks: &'a [Task],
    sg: &'a dyn ScatterGather,
    /// Each task's span of the output, while it is not out with a decoder thread.
    slices: Vec<Option<&'a mut [f64]>>,
    /// Decoder threads, where results are big enough to be worth the hop.
    decoders: Option<Decoders<'a>>,
    slots: Vec<Slot>,
    queue: VecDeque<usize>,
    done: Vec<bool>,
    remaining: usize,
    policy: OnWorkerExit,
    /// The collective scatter's frames.
    frame: Vec<u8>,
    /// Frame buffers back from their sends, for the next frames.
    spares: Vec<Vec<u8>>,
    /// Frames handed to the pool whose send has not been reported yet.
    sending: usize,
    /// Each ended send's (start, end), ns: the coordinator's send time is the time some send
    /// was in progress (their union), whether one thread sent or one per worker.
    send_spans: Vec<(u64, u64)>,
    /// The tasks went out by one collective: a worker written off cannot be replaced (a
    /// collective needs every worker), so its failure ends the run.
    collective: bool,
    /// When tracing: each result's worker-side (decode, compute, encode) ns, found by (worker,
    /// task), for the worker spans drawn once its stamps arrive with its stats.
    timings: Vec<(u64, u64, u64)>,
    timing_of: std::collections::HashMap<(usize, u32), usize>,
}

impl<'a> Gather<'a> {
    fn new(
        pool: &'a mut dyn Pool,
        tasks: &'a [Task],
        sg: &'a dyn ScatterGather,
        slices: Vec<&'a mut [f64]>,
        decoders: Option<Decoders<'a>>,
        policy: OnWorkerExit,
    ) -> Self {
        let slots = pool
            .workers()
            .iter()
            .map(|w| Slot {
                id: w.id,
                pid: w.pid,
                alive: true,
                closed_at: None,
                in_flight: Vec::with_capacity(DEPTH),
                waiting_since: None,
                tasks_done: 0,
                compute_ns: 0,
                busy_ns: 0,
                stats: None,
            })
            .collect();
        Gather {
            deadline: Deadline {
                policy: TaskTimeout::Auto,
                before_first: TASK_TIMEOUT_FLOOR,
                slowest: None,
            },
            pool,
            tasks,
            sg,
            slices: slices.into_iter().map(Some).collect(),
            decoders,
            slots,
            queue: (0..tasks.len()).collect(),
            done: vec![false; tasks.len()],
            remaining: tasks.len(),
            policy,
            frame: Vec::new(),
            spares: Vec::new(),
            sending: 0,
            send_spans: Vec::new(),
            collective: false,
            timings: Vec::new(),
            timing_of: std::collections::HashMap::new(),
        }
    }

    fn run(&mut self, m: &mut Measurement) -> Result<(), RunError> {
        self.refill_all(m)?;
        while self.remaining > 0 {
            if let Some(signal) = crate::interrupt::requested() {
                return Err(RunError::Interrupted { signal });
            }
            self.collect_sent(m);
            while let Some(decoded) = self.decoders.as_mut().and_then(|d| d.next(Duration::ZERO)) {
                self.placed(decoded, m)?;
            }
            if self.remaining == 0 {
                break;
            }
            // Every result is in and only decodes are left: wait for the decoders.
            let decoding = self.decoders.as_ref().map_or(0, Decoders::pending);
            let only_decodes = decoding > 0 && self.slots.iter().all(|s| s.in_flight.is_empty());
            let (t, at) = (Instant::now(), crate::trace::now_ns());
            let event = match only_decodes {
                true => {
                    let decoded = self.decoders.as_mut().and_then(|d| d.next(TICK));
                    decoded.map(Ok)
                }
                false => self.pool.next_event(TICK).map(Err),
            };
            let waited = t.elapsed().as_nanos() as u64;
            m.wait_ns += waited;
            m.record(
                (std::process::id(), None),
                Phase::Wait,
                None,
                at,
                at + waited,
            );
            match event {
                Some(Ok(decoded)) => self.placed(decoded, m)?,
                Some(Err(Event::Frame(w, frame))) => {
                    if !self.slots[w].alive {
                        continue; // a late frame from a worker already written off
                    }
                    // A result decoded here is placed here; a payload it refuses is the
                    // worker's fault, and `placed` writes the worker off with its reason.
                    match self.accept(w, frame, m) {
                        Ok(Some(decoded)) => self.placed(decoded, m)?,
                        Ok(None) => {}
                        Err(reason) => {
                            self.fail(w, format!("sent a malformed frame: {reason}"), m)?
                        }
                    }
                }
                Some(Err(Event::Exited { worker, how })) if self.slots[worker].alive => {
                    self.fail(worker, how, m)?;
                }
                Some(Err(Event::Exited { .. })) => {}
                Some(Err(Event::Closed(w))) => {
                    self.slots[w].closed_at.get_or_insert_with(Instant::now);
                }
                None => {}
            }
            self.enforce_deadline(m)?;
            // A worker that hung up on a channel but is still running is broken.
            for w in 0..self.slots.len() {
                let slot = &self.slots[w];
                if slot.alive && slot.closed_at.is_some_and(|t| t.elapsed() > CLOSED_GRACE) {
                    self.fail(w, "closed its channels but did not exit".into(), m)?;
                }
            }
            self.refill_all(m)?;
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
    /// A small result comes back decoded, for the caller to place.
    fn accept(
        &mut self,
        w: usize,
        frame: Frame,
        m: &mut Measurement,
    ) -> Result<Option<Decoded<'a>>, String> {
        let (header, payload) = match Inbound::read(&frame).map_err(|e| e.to_string())? {
            Inbound::Stats(stats, stamps) => {
                self.take_stats(w, stats, &stamps, m);
                return Ok(None);
            }
            Inbound::Result(header, payload) => {
                let at = payload.as_ptr() as usize - frame.as_ptr() as usize;
                (header, at..at + payload.len())
            }
        };
        self.accept_result(w, &header, frame, payload, m)
    }

    /// Checks and accounts a result from worker `w`, frees its slot, and decodes the result
    /// (`frame[payload]`) on a decoder thread, or here when it is small.
    fn accept_result(
        &mut self,
        w: usize,
        header: &ResultHeader,
        frame: Frame,
        payload: std::ops::Range<usize>,
        m: &mut Measurement,
    ) -> Result<Option<Decoded<'a>>, String> {
        if header.worker as usize != w {
            return Err(format!("it signed its result as worker {}", header.worker));
        }
        let task = header.task as usize;
        let position = self.slots[w]
            .in_flight
            .iter()
            .position(|&t| t == task)
            .ok_or_else(|| format!("result for task {task}, which it was not given"))?;
        let out = self.slices[task]
            .take()
            .ok_or_else(|| format!("a second result for task {task}"))?;
        m.decode_ns += header.decode_ns;
        if m.tracing {
            self.timings
                .push((header.decode_ns, header.compute_ns, header.encode_ns));
            self.timing_of
                .insert((w, header.task), self.timings.len() - 1);
        }
        m.encode_ns += header.encode_ns;
        m.compute_ns += header.compute_ns;
        m.traffic.bytes_received += frame.len() as u64;
        m.traffic.messages_received += 1;
        let slot = &mut self.slots[w];
        slot.in_flight.swap_remove(position);
        if let Some(since) = slot.waiting_since {
            let took = since.elapsed();
            self.deadline.slowest = Some(self.deadline.slowest.map_or(took, |s| s.max(took)));
        }
        slot.waiting_since = (!slot.in_flight.is_empty()).then(Instant::now);
        slot.tasks_done += 1;
        slot.compute_ns += header.compute_ns;
        slot.busy_ns += header.decode_ns + header.compute_ns + header.encode_ns;
        let job = Job {
            worker: w,
            task,
            frame,
            payload,
            out,
        };
        let job = match self.decoders.as_mut() {
            Some(decoders) if job.payload.len() > OFFLOAD_ABOVE => match decoders.submit(job) {
                Ok(()) => return Ok(None),
                Err(job) => job,
            },
            _ => job,
        };
        Ok(Some(decoders::decode(self.sg, self.tasks, job, None)))
    }

    /// Takes a decoded result: the task is done, or (its payload refused) its worker is
    /// written off and the task goes back to the queue with its slice.
    fn placed(&mut self, d: Decoded<'a>, m: &mut Measurement) -> Result<(), RunError> {
        let ns = d.end_ns - d.start_ns;
        m.decode_ns += ns;
        match d.result {
            Ok(bytes) => {
                m.traffic.payload_bytes_received += bytes;
                let (task, span) = (Some(d.task as u32), (d.start_ns, d.end_ns));
                match d.thread {
                    Some(t) => m.record_helper(t, Phase::Decode, task, span.0, span.1),
                    None => m.record(
                        (std::process::id(), None),
                        Phase::Decode,
                        task,
                        span.0,
                        span.1,
                    ),
                }
                self.done[d.task] = true;
                self.remaining -= 1;
                Ok(())
            }
            Err(e) => {
                self.slices[d.task] = Some(d.out);
                let slot = &mut self.slots[d.worker];
                slot.tasks_done -= 1;
                if !slot.alive {
                    self.queue.push_front(d.task);
                    return Ok(());
                }
                // Back in its hands, so that writing it off requeues the task with the rest.
                slot.in_flight.push(d.task);
                let reason = format!("sent a malformed frame: task {}: {e}", d.task);
                self.fail(d.worker, reason, m)
            }
        }
    }

    fn refill_all(&mut self, m: &mut Measurement) -> Result<(), RunError> {
        for w in 0..self.slots.len() {
            self.refill(w, m)?;
        }
        Ok(())
    }

    fn refill(&mut self, w: usize, m: &mut Measurement) -> Result<(), RunError> {
        while self.slots[w].alive
            && self.slots[w].closed_at.is_none()
            && self.slots[w].in_flight.len() < DEPTH
        {
            let Some(index) = self.queue.pop_front() else {
                break;
            };
            if self.done[index] {
                continue;
            }
            // Frame buffers come back from the transport once sent, so a run uses a few
            // whose pages are already faulted in.
            self.collect_sent(m);
            let mut frame = self.spares.pop().unwrap_or_default();
            frame.clear();
            let encode_at = crate::trace::now_ns();
            let encoded_ns = Self::encode_frame(&self.tasks[index], index, self.sg, &mut frame, m)?;
            let me = (std::process::id(), None);
            m.record(
                me,
                Phase::Encode,
                Some(index as u32),
                encode_at,
                encode_at + encoded_ns,
            );
            let slot = &mut self.slots[w];
            slot.in_flight.push(index);
            slot.waiting_since.get_or_insert_with(Instant::now);
            // Never blocks where the transport sends from threads of its own: a worker that
            // does not read costs its task deadline, and a signal is seen within a tick.
            if self.pool.send(w, frame).is_err() {
                self.gone(w);
                break;
            }
            self.sending += 1;
        }
        Ok(())
    }

    /// A send to worker `w` failed: it is gone or going. Send it nothing more and give it a
    /// moment to be seen ending, so that it is written off with its real reason (an exit
    /// code, a signal); one still running after that is killed as broken.
    fn gone(&mut self, w: usize) {
        self.slots[w].closed_at.get_or_insert_with(Instant::now);
    }

    /// Accounts every send that has ended (its time, its span when tracing) and keeps its
    /// buffer for the next frame.
    fn collect_sent(&mut self, m: &mut Measurement) {
        while let Some(sent) = self.pool.sent() {
            self.sending = self.sending.saturating_sub(1);
            self.send_spans.push((sent.start_ns, sent.end_ns));
            if m.tracing {
                let task = TaskHeader::read(&sent.frame)
                    .ok()
                    .map(|(header, _)| header.task);
                let (start, end) = (sent.start_ns, sent.end_ns);
                match sent.threaded {
                    true => {
                        let track = SENDER_TRACKS + sent.worker as u32;
                        m.record_helper(track, Phase::Send, task, start, end)
                    }
                    false => m.record((std::process::id(), None), Phase::Send, task, start, end),
                }
            }
            if sent.result.is_err() && sent.worker < self.slots.len() {
                self.gone(sent.worker);
            }
            if self.spares.len() <= self.slots.len() * DEPTH {
                self.spares.push(sent.frame);
            }
        }
    }

    /// Keeps worker `w`'s stats and, when tracing, turns its task stamps into its spans:
    /// waiting for the task, decoding, computing and encoding it, sending the result.
    fn take_stats(
        &mut self,
        w: usize,
        stats: WorkerStats,
        stamps: &[crate::protocol::TaskStamp],
        m: &mut Measurement,
    ) {
        self.slots[w].stats = Some(stats);
        let them = (self.slots[w].pid, Some(self.slots[w].id));
        for s in stamps {
            let task = Some(s.task);
            let at = s.received_at_ns;
            m.record(them, Phase::Receive, task, at.saturating_sub(s.idle_ns), at);
            if let Some(&(decode, compute, encode)) = self
                .timing_of
                .get(&(w, s.task))
                .and_then(|&i| self.timings.get(i))
            {
                let mut t = at;
                for (phase, ns) in [
                    (Phase::Decode, decode),
                    (Phase::Compute, compute),
                    (Phase::Encode, encode),
                ] {
                    m.record(them, phase, task, t, t + ns);
                    t += ns;
                }
            }
            m.record(
                them,
                Phase::Send,
                task,
                s.sent_at_ns,
                s.sent_at_ns + s.send_ns,
            );
        }
    }

    /// Sends task i to worker i, every task in one collective call; the gather loop then
    /// collects the results as usual (and has nothing to refill).
    fn scatter_all(&mut self, m: &mut Measurement) -> Result<(), RunError> {
        if self.tasks.len() != self.slots.len() {
            return Err(RunError::Channel {
                what: "a collective scatter".into(),
                message: format!(
                    "{} tasks for {} workers: a collective sends one task to each",
                    self.tasks.len(),
                    self.slots.len()
                ),
            });
        }
        let mut lens = Vec::with_capacity(self.tasks.len());
        let frames = &mut self.frame;
        frames.clear();
        for (index, task) in self.tasks.iter().enumerate() {
            let at = frames.len();
            Self::encode_frame(task, index, self.sg, frames, m)?;
            lens.push(frames.len() - at);
            let slot = &mut self.slots[index];
            slot.in_flight.push(index);
            slot.waiting_since = Some(Instant::now());
        }
        self.queue.clear();
        let t = Instant::now();
        let sent = self.pool.scatter(std::mem::take(&mut self.frame), &lens);
        m.transfer_ns += t.elapsed().as_nanos() as u64;
        sent.map_err(|e| RunError::Channel {
            what: "a collective scatter".into(),
            message: e.to_string(),
        })
    }

    /// Appends task `index`'s frame (its header, then its payload from `sg`) to `out`, counting
    /// the encode time and the traffic in `m`; returns the encode time, ns.
    fn encode_frame(
        task: &Task,
        index: usize,
        sg: &dyn ScatterGather,
        out: &mut Vec<u8>,
        m: &mut Measurement,
    ) -> Result<u64, RunError> {
        let at = out.len();
        TaskHeader {
            task: index as u32,
            start: task.span().start as u64,
            len: task.len() as u64,
            parts: task.parts.len() as u32,
        }
        .write(out);
        let t = Instant::now();
        let payload = sg
            .encode_task(task, out)
            .map_err(|source| RunError::Codec {
                task: index,
                phase: "encode",
                source,
            })?;
        let encoded_ns = t.elapsed().as_nanos() as u64;
        m.encode_ns += encoded_ns;
        m.traffic.bytes_sent += (out.len() - at) as u64;
        m.traffic.payload_bytes_sent += payload;
        m.traffic.messages_sent += 1;
        Ok(encoded_ns)
    }

    /// Writes worker `w` off: kills it, requeues its tasks, or stops the run under `Abort`.
    fn fail(&mut self, w: usize, reason: String, m: &mut Measurement) -> Result<(), RunError> {
        self.pool.kill(w);
        let slot = &mut self.slots[w];
        slot.alive = false;
        slot.waiting_since = None;
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
        if self.policy == OnWorkerExit::Abort
            || self.collective
            || !self.slots.iter().any(|s| s.alive)
        {
            return Err(died);
        }
        Ok(())
    }

    /// Closes every task channel, collects the workers' stats, and fills in the report.
    fn shutdown(&mut self, m: &mut Measurement) {
        for w in 0..self.slots.len() {
            self.pool.close(w);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.slots.iter().any(|s| s.alive && s.stats.is_none())
            && Instant::now() < deadline
            && crate::interrupt::requested().is_none()
        {
            match self.pool.next_event(TICK) {
                Some(Event::Frame(w, frame)) => {
                    if let Ok(Inbound::Stats(stats, stamps)) = Inbound::read(&frame) {
                        self.take_stats(w, stats, &stamps, m);
                    }
                }
                Some(Event::Exited { worker, .. }) => self.slots[worker].alive = false,
                Some(Event::Closed(_)) | None => {}
            }
        }
        // Each worker's stats come after its last task, so every send to it has ended; its
        // report may still be on its way.
        let reported = Instant::now() + Duration::from_millis(200);
        self.collect_sent(m);
        while self.sending > 0
            && self.slots.iter().all(|s| !s.alive || s.stats.is_some())
            && Instant::now() < reported
            && crate::interrupt::requested().is_none()
        {
            std::thread::sleep(Duration::from_micros(50));
            self.collect_sent(m);
        }
        m.transfer_ns += union_ns(&mut self.send_spans);
        for slot in &self.slots {
            if let Some(stats) = slot.stats {
                m.transfer_ns += stats.send_ns;
            }
            m.compute_max_ns = m.compute_max_ns.max(slot.compute_ns);
            let (rank, host) = self.pool.placement(m.workers.len()).unzip();
            m.workers.push(WorkerReport {
                id: slot.id,
                pid: slot.pid,
                tasks: slot.tasks_done,
                compute_ms: ms(slot.compute_ns),
                exit: None,
                rank,
                busy_ms: ms(slot.busy_ns),
                idle_ms: ms(slot.stats.map_or(0, |s| s.idle_ns)),
                host,
            });
        }
    }
}

/// The length of the union of `spans` (start, end), ns: overlapping sends count once.
fn union_ns(spans: &mut [(u64, u64)]) -> u64 {
    spans.sort_unstable();
    let (mut total, mut reach) = (0u64, 0u64);
    for &(start, end) in spans.iter() {
        let start = start.max(reach);
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    //! The scheduler's behaviour, written once and run for every transport: the in-process
    //! fake always, real worker processes when the worker executable is built beside the test.
    use super::*;

    #[test]
    fn overlapping_sends_count_once() {
        let mut spans = [(10, 20), (15, 30), (40, 50), (42, 45), (0, 5)];
        assert_eq!(union_ns(&mut spans), 5 + 20 + 10);
        assert_eq!(union_ns(&mut []), 0);
    }
    use crate::codec::CodecKind;
    use crate::partition;
    use crate::strategy::split::SplitScatter;
    use crate::transport::memory::MemoryTransport;
    use crate::worker::Fault;

    const N: usize = 10_007;

    /// What one scheduled run gave.
    struct Outcome {
        result: Result<(), RunError>,
        output: Vec<f64>,
        expected: Vec<f64>,
        m: Measurement,
    }

    fn schedule(
        transport: &dyn Transport,
        worker_bin: &Path,
        workers: usize,
        policy: OnWorkerExit,
        task_timeout: TaskTimeout,
    ) -> Outcome {
        schedule_n(N, transport, worker_bin, workers, policy, task_timeout)
    }

    /// As `schedule`, over `n` elements in 32 tasks.
    fn schedule_n(
        n: usize,
        transport: &dyn Transport,
        worker_bin: &Path,
        workers: usize,
        policy: OnWorkerExit,
        task_timeout: TaskTimeout,
    ) -> Outcome {
        let input: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
        let mut expected = vec![0.0; n];
        crate::kernel::apply(Function::Exp, &input, &mut expected);
        let mut output = vec![0.0; n];
        let tasks = partition::group(partition::array_split(n, 32), 1);
        let run = ProcessRun {
            transport,
            worker_bin,
            workers,
            handshake_timeout: Duration::from_secs(10),
            on_worker_exit: policy,
            task_timeout,
            strategy: "split",
            carries_payload: true,
            collective: false,
            function: Function::Exp,
            work: 1,
            codec: CodecKind::RAW,
            // Used only where results are big: a 2-core machine would have none by default.
            decode_threads: Some(2),
            frame_bytes: 0,
        };
        let sg = SplitScatter {
            codec: CodecKind::RAW.codec(),
            input: &input,
        };
        let mut m = Measurement::default();
        let result = run_on_pool(
            &run,
            &tasks,
            &sg,
            &mut output,
            &Attach::default(),
            &mut m,
            Instant::now(),
        );
        Outcome {
            result,
            output,
            expected,
            m,
        }
    }

    /// Every transport the behaviour tests run on here: (name, transport with `faults`, path):
    /// the in-process fake, and every spawning transport of the registry when the worker
    /// executable is built.
    fn transports(
        faults: Vec<Option<Fault>>,
    ) -> Vec<(&'static str, &'static dyn Transport, PathBuf)> {
        let memory: &'static dyn Transport = Box::leak(Box::new(MemoryTransport {
            serve: crate::worker::serve,
            faults: faults.clone(),
        }));
        let mut out = vec![("memory", memory, PathBuf::from("in-process"))];
        // target/<profile>/deps/ipcmap-HASH -> target/<profile>/worker; processes take their
        // faults from the environment, so only fault-free cases run on them.
        let worker = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join("worker")));
        match worker.filter(|w| w.exists()) {
            Some(w) if faults.iter().all(Option::is_none) => {
                for kind in crate::transport::TransportKind::all().filter(|t| t.spawns()) {
                    if let Ok(transport) = kind.transport() {
                        out.push((kind.name(), transport, w.clone()));
                    }
                }
            }
            Some(_) => {}
            None => eprintln!("worker executable not built: spawning transports' cases skipped"),
        }
        out
    }

    use std::path::PathBuf;

    #[test]
    fn every_task_is_computed_once_and_placed_by_index() {
        for (name, transport, bin) in transports(vec![]) {
            let o = schedule(transport, &bin, 3, OnWorkerExit::Retry, TaskTimeout::Auto);
            o.result.unwrap();
            assert!(
                o.output
                    .iter()
                    .zip(&o.expected)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}"
            );
            assert_eq!(o.m.traffic.messages_sent, 32, "{name}");
            assert_eq!(o.m.traffic.messages_received, 32, "{name}");
            assert_eq!(o.m.traffic.payload_bytes_sent, 8 * N as u64, "{name}");
            assert_eq!(
                o.m.workers.iter().map(|w| w.tasks).sum::<u64>(),
                32,
                "{name}"
            );
            assert!(o.m.failures.is_empty(), "{name}");
            assert!(
                o.m.workers
                    .iter()
                    .all(|w| w.exit.as_deref() == Some("exited with code 0")),
                "{name}: {:?}",
                o.m.workers
            );
        }
    }

    /// Tasks of 160 KB: results decoded on the decoder threads, a refused one rerun.
    #[test]
    fn big_results_are_placed_by_decoder_threads_and_refusals_rerun() {
        let n = 32 * 20_000;
        for faults in [vec![], vec![None, Some(Fault::CorruptAfter(1))]] {
            for (name, transport, bin) in transports(faults.clone()) {
                let (retry, timeout) = (OnWorkerExit::Retry, TaskTimeout::Auto);
                let o = schedule_n(n, transport, &bin, 2, retry, timeout);
                o.result.unwrap();
                assert!(o.output == o.expected, "{name}: {faults:?}");
                assert_eq!(o.m.traffic.payload_bytes_received, 8 * n as u64, "{name}");
                assert_eq!(o.m.decode_threads, 2, "{name}");
                match faults.is_empty() {
                    true => assert!(o.m.failures.is_empty(), "{name}"),
                    false => {
                        assert_eq!(o.m.failures.len(), 1, "{name}");
                        assert_eq!(o.m.failures[0].worker, 1);
                        let reason = &o.m.failures[0].reason;
                        assert!(reason.contains("malformed frame: task"), "{reason}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_worker_that_exits_has_its_tasks_rerun_on_the_others() {
        for (name, transport, bin) in transports(vec![None, Some(Fault::ExitAfter(1))]) {
            let o = schedule(transport, &bin, 2, OnWorkerExit::Retry, TaskTimeout::Auto);
            o.result.unwrap();
            assert_eq!(o.output, o.expected, "{name}");
            assert_eq!(o.m.failures.len(), 1, "{name}");
            assert_eq!(o.m.failures[0].worker, 1);
            assert!(
                o.m.failures[0].reason.contains("injected fault"),
                "{:?}",
                o.m.failures
            );
            // Every worker is sent DEPTH tasks at the start, so the fault always fires.
            assert_eq!(o.m.workers[1].tasks, 1, "{name}");
        }
    }

    #[test]
    fn abort_stops_at_the_first_failure() {
        for (_, transport, bin) in transports(vec![Some(Fault::ExitAfter(1)), None]) {
            let o = schedule(transport, &bin, 2, OnWorkerExit::Abort, TaskTimeout::Auto);
            assert!(
                matches!(o.result, Err(RunError::WorkerDied { worker: 0, .. })),
                "{:?}",
                o.result.err()
            );
        }
    }

    #[test]
    fn a_hung_worker_is_written_off_at_the_deadline() {
        let faults = vec![Some(Fault::HangAfter(1)), None, None];
        for (name, transport, bin) in transports(faults) {
            let timeout = TaskTimeout::After(Duration::from_millis(200));
            let o = schedule(transport, &bin, 3, OnWorkerExit::Retry, timeout);
            o.result.unwrap();
            assert_eq!(o.output, o.expected, "{name}");
            assert!(
                o.m.failures[0].reason.contains("no result for task"),
                "{:?}",
                o.m.failures
            );
            assert_eq!(o.m.failures[0].worker, 0);
        }
    }

    #[test]
    fn with_no_worker_left_the_run_fails() {
        let faults = vec![Some(Fault::ExitAfter(0)), Some(Fault::PanicAfter(0))];
        for (_, transport, bin) in transports(faults) {
            let o = schedule(transport, &bin, 2, OnWorkerExit::Retry, TaskTimeout::Auto);
            assert!(
                matches!(o.result, Err(RunError::WorkerDied { .. })),
                "{:?}",
                o.result.err()
            );
            assert_eq!(o.m.failures.len(), 2);
        }
    }

    #[test]
    fn the_automatic_deadline_follows_the_slowest_task_with_a_floor() {
        let mut d = Deadline {
            policy: TaskTimeout::Auto,
            before_first: Duration::from_secs(7),
            slowest: None,
        };
        assert_eq!(d.current(), Some(Duration::from_secs(7)));
        d.slowest = Some(Duration::from_millis(10));
        assert_eq!(d.current(), Some(TASK_TIMEOUT_FLOOR));
        d.slowest = Some(Duration::from_secs(1));
        assert_eq!(
            d.current(),
            Some(Duration::from_secs(TASK_TIMEOUT_FACTOR.into()))
        );
        d.policy = TaskTimeout::Off;
        assert_eq!(d.current(), None);
    }
}
