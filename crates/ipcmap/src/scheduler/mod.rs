//! The scheduler: dynamic scatter/gather over a pool of worker processes, as `Pool.map` does it.
//!
//! Each worker holds at most [`DEPTH`] tasks; it gets its next task when it hands back a result,
//! and results are placed by task index. The scheduler sees the workers only through a
//! [`Pool`] of the run's [`Transport`]: frames to worker i, and events (a frame from worker i,
//! its channel closed, its end) with a timeout, so the gather loop never blocks for ever. When a
//! worker dies, misbehaves or holds a task past its deadline, its unfinished tasks are handed
//! to the others ([`OnWorkerExit::Retry`]) or the run stops ([`OnWorkerExit::Abort`]).
//!
//! In three parts: [`state`], the scheduling state machine (slots, queue, retries, deadlines),
//! pure and unit-tested without processes; this module, the I/O driver that feeds it what the
//! pool says and sends what it decides; and [`observer`], which records the figures and the
//! trace spans beside the logic. A strategy's coordinator half is a [`ScatterGather`]; big
//! results are decoded into place on [`decoders`] threads.

mod deadline;
pub mod decoders;
pub mod kept;
pub mod observer;
pub mod places;
mod scatter;
pub mod state;

pub use crate::settings::{OnWorkerExit, TaskTimeout};
pub use deadline::{
    first_deadline, LINK_FLOOR_BYTES_PER_S, TASK_TIMEOUT_FACTOR, TASK_TIMEOUT_FLOOR,
};
pub use scatter::{Attach, Received, ScatterGather};

use crate::error::RunError;
use crate::partition::Task;
use crate::protocol::{Inbound, Setup, TaskHeader};
use crate::report::Measurement;
use crate::settings::Settings;
use crate::transport::{Event, Frame, Pool, PoolSpec, Transport};
use decoders::{Decoded, Decoders, Job, OFFLOAD_ABOVE};
use observer::Observer;
use places::{OutputPlaces, Spot};
use state::{Deadline, Schedule};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tasks a worker holds at once: one computing, one queued behind it.
pub const DEPTH: usize = 2;

/// Above this many payload bytes a task, workers read tasks ahead on a separate thread
/// (`Setup::prefetch`); below it, frames fit the socket buffer and a thread hop would only add
/// latency.
const PREFETCH_ABOVE: usize = 64 * 1024;

/// How long the gather loop waits for an event before it checks its deadlines.
const TICK: Duration = Duration::from_millis(50);

/// How long workers get to send their stats once their task channels close; a worker still
/// silent then is killed. None at all once a stop signal asked the run to stop. The wait ends
/// as soon as every worker has sent them, so only a worker that hangs at the end pays it; 2 s
/// wrote off healthy workers of a loaded machine in the debug build (freeing 64 MB, then
/// saying goodbye).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a worker that has exited is still read for its stats, where its channel has not
/// said it closed (its last frame may be behind its exit).
const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// How a process run is set up: the settings, borrowed, and what the strategy declares.
pub struct ProcessRun<'a> {
    /// The run's settings.
    pub settings: &'a Settings,
    /// How workers are started and reached.
    pub transport: &'a dyn Transport,
    /// The worker executable (a placeholder where a launcher started the workers).
    pub worker_bin: &'a Path,
    /// The strategy whose worker half to run, by name.
    pub strategy: &'static str,
    /// Its frames carry its payload: big ones are read ahead on a thread by the worker and
    /// decoded on decoder threads here (which reorders them: a strategy whose results come
    /// in a stream of its own, in order, must not set it).
    pub frames: bool,
    /// One task per worker, all sent by one collective call ([`Pool::scatter`]).
    pub collective: bool,
    /// Its workers may be kept for later runs, and may be ones kept from earlier runs
    /// (`--pool persistent`, where the strategy allows it).
    pub keeps: bool,
}

impl<'a> ProcessRun<'a> {
    /// The process run of strategy `strategy` under `settings`, on the settings' transport
    /// (`frames` and `collective` as the strategy declares them).
    pub fn new(
        settings: &'a Settings,
        strategy: &'static str,
        frames: bool,
        collective: bool,
    ) -> Result<ProcessRun<'a>, RunError> {
        let worker_bin = match settings.transport.spawns() {
            // A launcher's ranks run the coordinator's own binary.
            false => Path::new("launched rank"),
            true => settings.worker_bin.as_deref().ok_or(crate::error::SpawnError::NotFound {
                path: std::path::PathBuf::from("worker"),
            })?,
        };
        Ok(ProcessRun {
            settings,
            transport: settings.transport.transport()?,
            worker_bin,
            strategy,
            frames,
            collective,
            keeps: settings.pool == crate::settings::WorkerPool::Persistent,
        })
    }
}

/// What a process run computes: its tasks, its strategy's coordinator half, and the output
/// the results land in (empty where the workers place them themselves).
pub struct Work<'a> {
    /// The tasks, in ascending, disjoint spans.
    pub tasks: &'a [Task],
    /// The strategy's coordinator half.
    pub sg: &'a dyn ScatterGather,
    /// The output.
    pub output: &'a mut [f64],
}

/// Starts the pool, scatters the tasks, gathers every result into the output (big results on
/// [decoder threads](decoders)), and shuts the pool down. Sets `wall_ns` (from `wall_start`)
/// when the last result is placed, before shutdown.
pub fn run_on_pool(
    run: &ProcessRun<'_>,
    work: Work<'_>,
    m: &mut Measurement,
    wall_start: Instant,
) -> Result<(), RunError> {
    let Work { tasks, sg, output } = work;
    let s = run.settings;
    let max_task = tasks.iter().map(Task::len).max().unwrap_or(0);
    let big = |above: usize| run.frames && max_task.saturating_mul(8) > above;
    let info = run.transport.info();
    // Results read straight into the output, where the transport reads its own frames and
    // the strategy's results are the values' own bytes: then the output is never cut into
    // slices, and nothing but `places` touches it until it is closed, below.
    let places = match info.in_place && run.frames && !run.collective {
        // SAFETY: `output` outlives `places`' use: it is closed before this function returns,
        // on every path after the pool starts (before, no task was sent, so nothing claims).
        true => unsafe { OutputPlaces::new(output, tasks, |t| sg.result_pieces(t)) }.map(Arc::new),
        false => None,
    };
    m.environment.payload_path = run.frames.then(|| info.payload_path(places.is_some()));
    let spots = places.as_ref().map(|p| Arc::clone(p) as Arc<dyn crate::transport::place::Places>);
    // A worker's frames are its results and, at the end, its stats with a stamp for each task
    // it did (at most every task, with reruns).
    let stats =
        (tasks.len() as u64 * 2 + 16).saturating_mul(crate::protocol::TaskStamp::SIZE as u64);
    let max_frame = sg.max_result_bytes(max_task).max(stats + crate::transport::FRAME_SLACK);
    let (mut pool, key) = start_pool(run, sg, (big(PREFETCH_ABOVE), max_frame), spots, m)?;
    let deadline = Deadline {
        policy: s.task_timeout,
        before_first: first_deadline(max_task, s),
        slowest: None,
    };
    let slices = match places {
        Some(_) => tasks.iter().map(|_| None).collect(),
        None => decoders::task_slices(output, tasks)
            .map_err(|message| RunError::Channel { what: "placing results".into(), message })?
            .into_iter()
            .map(Some)
            .collect(),
    };
    // Results big enough to be worth a hop are decoded off the gather thread.
    let threads = match big(OFFLOAD_ABOVE) && places.is_none() {
        true => s.decode_threads.unwrap_or_else(|| decoders::auto_threads(s.workers)),
        false => 0,
    };
    let (shutdown, result) = std::thread::scope(|scope| {
        let decoders = Decoders::start(scope, threads, sg, tasks);
        m.environment.decode_threads = decoders.as_ref().map_or(0, Decoders::threads);
        m.environment.frame_bytes = match info.trains {
            true => s.frame_bytes,
            false => 0, // it sends its own way
        };
        let workers = pool.workers().len();
        let schedule =
            Schedule::new(workers, tasks.len(), s.on_worker_exit, run.collective, deadline);
        let observer = Observer::new(m, pool.workers());
        let mut gather = Gather {
            pool: pool.as_mut(),
            tasks,
            sg,
            slices,
            places: places.as_deref(),
            held: Vec::new(),
            decoders,
            schedule,
            observer,
            spares: Vec::new(),
            sending: 0,
        };
        let result = match run.collective {
            true => gather.scatter_all().and_then(|()| gather.run()),
            false => gather.run(),
        };
        gather.observer.m.wall_ns = wall_start.elapsed().as_nanos() as u64;
        let shutdown = Instant::now();
        // A pool is kept only after a clean run with every worker alive.
        let keep = key.is_some() && result.is_ok() && gather.schedule.all_alive();
        let kept = gather.shutdown(keep);
        (shutdown, result.map(|()| kept))
    });
    let kept = matches!(result, Ok(true));
    if !kept {
        let grace = match crate::interrupt::requested() {
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(1),
        };
        for w in 0..pool.workers().len() {
            let exit = pool.reap(w, grace);
            if let Some(report) = m.workers.get_mut(w) {
                report.exit = Some(exit);
            }
        }
    }
    // Every worker is reaped, or has sent its stats after its last result (a kept pool), so
    // every reader's write has ended or ends now.
    if let Some(places) = &places {
        places.close();
    }
    if let (true, Some(key)) = (kept, key) {
        for report in &mut m.workers {
            report.exit = Some(KEPT_EXIT.to_string());
        }
        kept::keep(key, pool);
    }
    m.shutdown_ns = shutdown.elapsed().as_nanos() as u64;
    result.map(drop)
}

/// What a kept worker's report says of its end: it did not end.
pub const KEPT_EXIT: &str = "kept for the next run";

/// Starts the run's pool: each worker with its strategy's [`Attach`] (its setup bytes and the
/// descriptors it inherits), reading tasks ahead when `prefetch`; its start is measured.
fn start_pool(
    run: &ProcessRun<'_>,
    sg: &dyn ScatterGather,
    (prefetch, max_frame): (bool, u64),
    places: Option<Arc<dyn crate::transport::place::Places>>,
    m: &mut Measurement,
) -> Result<(Box<dyn Pool>, Option<kept::PoolKey>), RunError> {
    let s = run.settings;
    let prefetch = prefetch && !run.transport.one_thread();
    let attach: Vec<Attach> = (0..s.workers as u32).map(|w| sg.attach(w)).collect();
    let fds = |w: u32| attach.get(w as usize).map_or_else(Vec::new, |a| a.inherit_fds.clone());
    let setup = |w: u32| Setup {
        mode: run.strategy.to_string(),
        function: s.function,
        work: s.work,
        codec: s.codec,
        extra: attach.get(w as usize).map_or_else(Vec::new, |a| a.setup.clone()),
        prefetch,
        trace: m.tracing,
        frame_bytes: s.frame_bytes as u64,
    };
    let key = match run.keeps {
        true => attach
            .iter()
            .map(|a| kept::PoolKey::files(&a.inherit_fds))
            .collect::<Option<Vec<_>>>()
            .map(|files| kept::PoolKey {
                transport: run.transport.info().name,
                worker_bin: run.worker_bin.to_path_buf(),
                workers: s.workers,
                frame_bytes: s.frame_bytes,
                files,
            }),
        false => None,
    };
    if let Some(mut pool) = key.as_ref().and_then(kept::take) {
        let setups = (0..s.workers as u32).map(|w| setup(w).to_frame()).collect();
        match pool.next_run(setups, places.clone(), max_frame) {
            Ok(()) => {
                m.pool_start_ns = pool.spawn_ns();
                m.pool_reused = true;
                return Ok((pool, key));
            }
            // A pool that cannot serve (a worker ended between runs) ends; a new one starts.
            Err(_) => kept::end(pool),
        }
    }
    let spec = PoolSpec {
        worker_bin: run.worker_bin,
        count: s.workers,
        handshake_timeout: s.handshake_timeout,
        inherit_fds: &fds,
        frame_bytes: s.frame_bytes,
        places,
        max_frame,
    };
    let spawn_at = crate::trace::now_ns();
    let pool = run.transport.start(&spec, &setup)?;
    Observer::spawned(m, pool.as_ref(), spawn_at);
    let key = key.filter(|_| pool.keeps());
    if key.is_some() {
        m.pool_start_ns = pool.spawn_ns();
    }
    Ok((pool, key))
}

/// What the gather loop takes next.
enum Next<'o> {
    /// A result decoded on a decoder thread.
    Decoded(Decoded<'o>),
    /// Something the pool said.
    Event(Event),
    /// A tick passed.
    Nothing,
}

/// The I/O driver of one run: it feeds the [`Schedule`] what the pool says, sends what it
/// decides, and tells the [`Observer`] what happened.
struct Gather<'a, 'm> {
    pool: &'a mut dyn Pool,
    tasks: &'a [Task],
    sg: &'a dyn ScatterGather,
    /// Each task's span of the output, while it is not out with a decoder thread (none where
    /// results are read into place).
    slices: Vec<Option<&'a mut [f64]>>,
    /// The output's places, where results are read straight into them.
    places: Option<&'a OutputPlaces>,
    /// Results to decode into a place a reader thread is still writing (a worker written off
    /// mid-frame): tried again each turn.
    held: Vec<(usize, usize, Frame, Range<usize>)>,
    /// Decoder threads, where results are big enough to be worth the hop.
    decoders: Option<Decoders<'a>>,
    schedule: Schedule,
    observer: Observer<'m>,
    /// Frame buffers back from their sends, for the next frames.
    spares: Vec<Vec<u8>>,
    /// Frames handed to the pool whose send has not been reported yet.
    sending: usize,
}

impl<'a> Gather<'a, '_> {
    /// Gathers until every task is placed, a stop is asked for, or the run cannot go on.
    fn run(&mut self) -> Result<(), RunError> {
        self.refill_all()?;
        while self.schedule.remaining() > 0 {
            if let Some(signal) = crate::interrupt::requested() {
                return Err(RunError::Interrupted { signal });
            }
            self.collect_sent();
            while let Some(decoded) = self.decoders.as_mut().and_then(|d| d.next(Duration::ZERO)) {
                self.placed(decoded)?;
            }
            self.place_held()?;
            if self.schedule.remaining() == 0 {
                break;
            }
            match self.next() {
                Next::Decoded(decoded) => self.placed(decoded)?,
                Next::Event(event) => self.on_event(event)?,
                Next::Nothing => {}
            }
            self.write_off_the_late()?;
            self.refill_all()?;
        }
        Ok(())
    }

    /// Waits up to a tick for what comes next: a decoded result when only decodes are left,
    /// else the pool's next event. The wait is measured.
    fn next(&mut self) -> Next<'a> {
        let decoding = self.decoders.as_ref().map_or(0, Decoders::pending);
        let only_decodes = decoding > 0 && self.schedule.none_in_flight();
        let t = crate::trace::Stopwatch::start();
        let next = match only_decodes {
            true => match self.decoders.as_mut().and_then(|d| d.next(TICK)) {
                Some(decoded) => Next::Decoded(decoded),
                None => Next::Nothing,
            },
            false => self.pool.next_event(TICK).map_or(Next::Nothing, Next::Event),
        };
        self.observer.waited(t.at, t.elapsed_ns());
        next
    }

    /// Takes what the pool said.
    fn on_event(&mut self, event: Event) -> Result<(), RunError> {
        match event {
            // A result decoded here is placed here; a payload it refuses is the worker's
            // fault, and `placed` writes the worker off with its reason.
            Event::Frame(w, frame) if self.schedule.alive(w) => match self.accept(w, frame) {
                Ok(Some(decoded)) => self.placed(decoded),
                Ok(None) => Ok(()),
                Err(reason) => self.fail(w, format!("sent a malformed frame: {reason}")),
            },
            // A late frame from a worker already written off.
            Event::Frame(..) => Ok(()),
            Event::Exited { worker, how } if self.schedule.alive(worker) => self.fail(worker, how),
            Event::Exited { .. } => Ok(()),
            Event::Closed(w) => {
                self.schedule.closed(w, Instant::now());
                Ok(())
            }
            Event::Refused(w, why) if self.schedule.alive(w) => {
                self.fail(w, format!("sent a malformed frame: {why}"))
            }
            Event::Refused(..) => Ok(()),
        }
    }

    /// Writes off every worker that has held a task past the deadline, and every one that
    /// hung up on a channel but is still running (broken).
    fn write_off_the_late(&mut self) -> Result<(), RunError> {
        let now = Instant::now();
        for late in self.schedule.overdue(now) {
            let reason = format!(
                "no result for task {} after {:.1} s (task deadline {:.1} s; --task-timeout sets it)",
                late.task,
                late.held.as_secs_f64(),
                late.deadline.as_secs_f64()
            );
            self.fail(late.worker, reason)?;
        }
        for w in self.schedule.broken(now) {
            self.fail(w, "closed its channels but did not exit".into())?;
        }
        Ok(())
    }

    /// Takes one frame from worker `w`: its stats, or a result, which is checked, accounted,
    /// frees the worker's slot and is decoded on a decoder thread (or here when it is small:
    /// then it comes back for the caller to place). An error means the worker broke the
    /// protocol.
    fn accept(&mut self, w: usize, frame: Frame) -> Result<Option<Decoded<'a>>, String> {
        let (header, payload) = match Inbound::read(&frame).map_err(|e| e.to_string())? {
            Inbound::Stats(stats, stamps) => {
                self.observer.stats(w, stats, &stamps);
                return Ok(None);
            }
            Inbound::Result(header, payload) => {
                let at = payload.as_ptr() as usize - frame.as_ptr() as usize;
                (header, at..at + payload.len())
            }
        };
        if header.worker as usize != w {
            return Err(format!("it signed its result as worker {}", header.worker));
        }
        let task = header.task as usize;
        self.schedule.returned(w, task, Instant::now())?;
        self.observer.accepted(w, &header, frame.crossed());
        if self.places.is_some() {
            return Ok(self.put_in_place(w, task, frame, payload));
        }
        let out = self
            .slices
            .get_mut(task)
            .and_then(Option::take)
            .ok_or_else(|| format!("a second result for task {task}"))?;
        let job = Job { worker: w, task, frame, payload, out };
        let job = match self.decoders.as_mut() {
            Some(decoders) if job.payload.len() > OFFLOAD_ABOVE => match decoders.submit(job) {
                Ok(()) => return Ok(None),
                Err(job) => job,
            },
            _ => job,
        };
        Ok(Some(decoders::decode(self.sg, self.tasks, job, None)))
    }

    /// Takes worker `w`'s result for `task` where results are read into place: placed already
    /// by its reader thread (or by another worker's, whose result came first), or decoded here
    /// into its place; `None` while a reader thread still writes there (held for a later
    /// turn).
    fn put_in_place(
        &mut self,
        w: usize,
        task: usize,
        frame: Frame,
        payload: Range<usize>,
    ) -> Option<Decoded<'a>> {
        let places = self.places?;
        let at = crate::trace::now_ns();
        let done = |result| Decoded {
            worker: w,
            task,
            out: &mut [],
            result,
            thread: None,
            start_ns: at,
            end_ns: at,
        };
        if frame.placed() > 0 {
            return Some(done(Ok(frame.placed())));
        }
        match places.hold(task) {
            Spot::Placed => Some(done(Ok(0))),
            Spot::Busy => {
                self.held.push((w, task, frame, payload));
                None
            }
            Spot::Held(mut held) => {
                let job = Job { worker: w, task, frame, payload, out: held.values() };
                let Decoded { result, start_ns, end_ns, .. } =
                    decoders::decode(self.sg, self.tasks, job, None);
                held.settle(result.is_ok());
                Some(Decoded { start_ns, end_ns, ..done(result) })
            }
        }
    }

    /// Tries again the results held for a place a reader thread was writing.
    fn place_held(&mut self) -> Result<(), RunError> {
        for (w, task, frame, payload) in std::mem::take(&mut self.held) {
            if let Some(decoded) = self.put_in_place(w, task, frame, payload) {
                self.placed(decoded)?;
            }
        }
        Ok(())
    }

    /// Takes a decoded result: the task is done, or (its payload refused) its worker is
    /// written off and the task goes back to the queue with its slice.
    fn placed(&mut self, d: Decoded<'a>) -> Result<(), RunError> {
        self.observer.decoded(&d);
        let Decoded { worker, task, out, result, .. } = d;
        let Err(e) = result else {
            self.schedule.placed(task);
            return Ok(());
        };
        if self.places.is_none() {
            self.slices[task] = Some(out);
        }
        match self.schedule.refused(worker, task) {
            true => self.fail(worker, format!("sent a malformed frame: task {task}: {e}")),
            false => Ok(()),
        }
    }

    /// Tops every worker up, breadth first: each gets a task before any gets its second, so
    /// a run of as many tasks as workers (owner: a range each) keeps every worker busy.
    fn refill_all(&mut self) -> Result<(), RunError> {
        for depth in 1..=DEPTH {
            for w in 0..self.schedule.workers() {
                self.refill_within(w, depth)?;
            }
        }
        Ok(())
    }

    /// Sends worker `w` tasks until it holds `depth` (at most [`DEPTH`]) or none is queued.
    /// Never blocks where the transport sends from threads of its own: a worker that does not
    /// read costs its task deadline, and a signal is seen within a tick.
    fn refill_within(&mut self, w: usize, depth: usize) -> Result<(), RunError> {
        while let Some(index) = self.schedule.next_within(w, depth, Instant::now()) {
            if let Some(places) = self.places {
                places.expect(index, w);
            }
            // Frame buffers come back from the transport once sent, so a run uses a few
            // whose pages are already faulted in.
            self.collect_sent();
            let mut frame = self.spares.pop().unwrap_or_default();
            frame.clear();
            encode_frame(self.sg, &mut self.observer, (w, index), self.tasks, &mut frame, true)?;
            if self.pool.send(w, frame).is_err() {
                // Gone or going: it gets nothing more, and a moment to be seen ending, so
                // that it is written off with its real reason.
                self.schedule.closed(w, Instant::now());
                break;
            }
            self.sending += 1;
        }
        Ok(())
    }

    /// Accounts every send that has ended and keeps its buffer for the next frame.
    fn collect_sent(&mut self) {
        while let Some(sent) = self.pool.sent() {
            self.sending = self.sending.saturating_sub(1);
            self.observer.sent(&sent);
            if sent.result.is_err() {
                self.schedule.closed(sent.worker, Instant::now());
            }
            if self.spares.len() <= self.schedule.workers() * DEPTH {
                self.spares.push(sent.frame);
            }
        }
    }

    /// Writes worker `w` off: kills it, requeues its tasks, or stops the run when it cannot
    /// go on.
    fn fail(&mut self, w: usize, reason: String) -> Result<(), RunError> {
        self.pool.kill(w);
        let off = self.schedule.write_off(w);
        self.observer.failed(w, reason.clone(), off.requeued);
        if !off.stop {
            return Ok(());
        }
        let info = self.pool.workers()[w];
        Err(RunError::WorkerDied {
            worker: info.id,
            pid: info.pid,
            status: reason,
            in_flight: off.requeued,
        })
    }

    /// Sends task i to worker i, every task in one collective call; the gather loop then
    /// collects the results as usual (and has nothing to refill).
    fn scatter_all(&mut self) -> Result<(), RunError> {
        let collective =
            |message: String| RunError::Channel { what: "a collective scatter".into(), message };
        let (tasks, workers) = (self.tasks.len(), self.schedule.workers());
        if tasks != workers {
            return Err(collective(format!(
                "{tasks} tasks for {workers} workers: a collective sends one task to each"
            )));
        }
        let (mut frames, mut lens) = (Vec::new(), Vec::with_capacity(tasks));
        for index in 0..tasks {
            let at = frames.len();
            encode_frame(
                self.sg,
                &mut self.observer,
                (index, index),
                self.tasks,
                &mut frames,
                false,
            )?;
            lens.push(frames.len() - at);
        }
        self.schedule.assign_all(Instant::now());
        let t = Instant::now();
        let sent = self.pool.scatter(frames, &lens);
        self.observer.scattered(t.elapsed().as_nanos() as u64);
        sent.map_err(|e| collective(e.to_string()))
    }

    /// Closes every task channel, collects the workers' stats, and fills in the report.
    /// Ends the run: each worker's channel closed, or, with `keep`, its run ended (the pool
    /// lives on); then its stats read. True when the pool can be kept: `keep`, and every
    /// worker's stats came with no exit.
    fn shutdown(mut self, keep: bool) -> bool {
        let workers = self.schedule.workers();
        for w in 0..workers {
            match keep {
                true => self.pool.end_run(w),
                false => self.pool.close(w),
            }
        }
        let mut ended: Vec<bool> = (0..workers).map(|w| !self.schedule.alive(w)).collect();
        // A worker's exit can overtake its last frame (the watchdog and the reader thread
        // race): its stats are still read until its channel closes, or for a moment.
        let mut exited: Vec<Option<Instant>> = vec![None; workers];
        let mut closed = vec![false; workers];
        let stopped = || crate::interrupt::requested().is_some();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let waiting = |w: usize, ended: &[bool], exited: &[Option<Instant>], has: bool| {
            !ended[w] && !has && exited[w].is_none_or(|t| t.elapsed() <= EXIT_DRAIN)
        };
        while (0..workers).any(|w| waiting(w, &ended, &exited, self.observer.has_stats(w)))
            && Instant::now() < deadline
            && !stopped()
        {
            match self.pool.next_event(TICK) {
                Some(Event::Frame(w, frame)) => {
                    if let Ok(Inbound::Stats(stats, stamps)) = Inbound::read(&frame) {
                        self.observer.stats(w, stats, &stamps);
                    }
                }
                Some(Event::Exited { worker, .. }) => {
                    exited[worker].get_or_insert_with(Instant::now);
                    ended[worker] |= closed[worker];
                }
                Some(Event::Closed(w) | Event::Refused(w, _)) => {
                    closed[w] = true;
                    ended[w] |= exited[w].is_some();
                }
                None => {}
            }
        }
        for (w, end) in ended.iter_mut().enumerate() {
            *end |= exited[w].is_some();
        }
        // Each worker's stats come after its last task, so every send to it has ended; its
        // report may still be on its way.
        let reported = Instant::now() + Duration::from_millis(200);
        self.collect_sent();
        while self.sending > 0
            && (0..workers).all(|w| ended[w] || self.observer.has_stats(w))
            && Instant::now() < reported
            && !stopped()
        {
            std::thread::sleep(Duration::from_micros(50));
            self.collect_sent();
        }
        let kept = keep
            && (0..workers).all(|w| self.observer.has_stats(w) && exited[w].is_none())
            && !stopped();
        self.observer.finish(self.pool);
        kept
    }
}

/// Appends the frame of task `index` going to worker `w` (its header, then its payload from
/// `sg`) to `out`, and tells `observer` (its span too when `traced`).
fn encode_frame(
    sg: &dyn ScatterGather,
    observer: &mut Observer<'_>,
    (w, index): (usize, usize),
    tasks: &[Task],
    out: &mut Vec<u8>,
    traced: bool,
) -> Result<(), RunError> {
    let task = &tasks[index];
    let at = out.len();
    TaskHeader {
        task: index as u32,
        start: task.span().start as u64,
        len: task.len() as u64,
        parts: task.parts.len() as u32,
    }
    .write(out);
    let start = crate::trace::now_ns();
    let payload = sg.encode_task(w as u32, task, out).map_err(|source| RunError::Codec {
        task: index,
        phase: "encode",
        source,
    })?;
    let ns = crate::trace::now_ns().saturating_sub(start);
    let span = traced.then_some(index as u32);
    observer.encoded(span, start, ns, (out.len() - at) as u64, payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The scheduler's behaviour, written once and run for every transport: the in-process
    //! fake always, real worker processes when the worker executable is built beside the test.
    use super::*;

    use crate::codec::CodecKind;
    use crate::kernel::Function;
    use crate::partition;
    use crate::strategy::split::SplitScatter;
    use crate::transport::memory::MemoryTransport;
    use crate::worker::Fault;

    const N: usize = 10_007;

    /// Retry failed workers' tasks, automatic deadlines: the defaults.
    const RETRY: (OnWorkerExit, TaskTimeout) = (OnWorkerExit::Retry, TaskTimeout::Auto);

    /// What one scheduled run gave.
    struct Outcome {
        result: Result<(), RunError>,
        output: Vec<f64>,
        expected: Vec<f64>,
        m: Measurement,
    }

    /// One scheduled run of split over `n` elements in 32 tasks.
    fn schedule_n(
        n: usize,
        transport: &dyn Transport,
        worker_bin: &Path,
        workers: usize,
        (policy, task_timeout): (OnWorkerExit, TaskTimeout),
    ) -> Outcome {
        let input: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
        let mut expected = vec![0.0; n];
        crate::kernel::apply(Function::Exp, &input, &mut expected);
        let mut output = vec![0.0; n];
        let tasks = partition::group(partition::array_split(n, 32), 1);
        let settings = Settings {
            workers,
            n,
            function: Function::Exp,
            work: 1,
            splits: 32,
            chunksize: None,
            codec: CodecKind::RAW,
            seed: 1,
            worker_bin: Some(worker_bin.to_path_buf()),
            handshake_timeout: Duration::from_secs(10),
            on_worker_exit: policy,
            task_timeout,
            transport: Default::default(),
            trace: false,
            // Used only where results are big: a 2-core machine would have none by default.
            decode_threads: Some(2),
            frame_bytes: 0,
            in_place: false,
            pool: Default::default(),
        };
        let run = ProcessRun {
            settings: &settings,
            transport,
            worker_bin,
            strategy: "split",
            frames: true,
            collective: false,
            keeps: false,
        };
        let sg = SplitScatter { codec: CodecKind::RAW.codec(), input: &input };
        let mut m = Measurement::default();
        let work = Work { tasks: &tasks, sg: &sg, output: &mut output };
        let result = run_on_pool(&run, work, &mut m, Instant::now());
        Outcome { result, output, expected, m }
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
            let o = schedule_n(N, transport, &bin, 3, RETRY);
            o.result.unwrap();
            assert!(
                o.output.iter().zip(&o.expected).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name}"
            );
            assert_eq!(o.m.traffic.messages_sent, 32, "{name}");
            assert_eq!(o.m.traffic.messages_received, 32, "{name}");
            assert_eq!(o.m.traffic.payload_bytes_sent, 8 * N as u64, "{name}");
            assert_eq!(o.m.workers.iter().map(|w| w.tasks).sum::<u64>(), 32, "{name}");
            assert!(o.m.failures.is_empty(), "{name}");
            assert!(
                o.m.workers.iter().all(|w| w.exit.as_deref() == Some("exited with code 0")),
                "{name}: {:?}",
                o.m.workers
            );
        }
    }

    /// Tasks of 160 KB: results read into place where the transport can (uds), else decoded
    /// on the decoder threads; a refused one rerun.
    #[test]
    fn big_results_are_placed_by_readers_or_decoder_threads_and_refusals_rerun() {
        let n = 32 * 20_000;
        for faults in [vec![], vec![None, Some(Fault::CorruptAfter(1))]] {
            for (name, transport, bin) in transports(faults.clone()) {
                let o = schedule_n(n, transport, &bin, 2, RETRY);
                o.result.unwrap();
                assert!(o.output == o.expected, "{name}: {faults:?}");
                assert_eq!(o.m.traffic.payload_bytes_received, 8 * n as u64, "{name}");
                let in_place = o.m.environment.payload_path == Some("received in place");
                assert_eq!(in_place, transport.info().in_place, "{name}");
                let threads = if in_place { 0 } else { 2 };
                assert_eq!(o.m.environment.decode_threads, threads, "{name}");
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
            let o = schedule_n(N, transport, &bin, 2, RETRY);
            o.result.unwrap();
            assert_eq!(o.output, o.expected, "{name}");
            assert_eq!(o.m.failures.len(), 1, "{name}");
            assert_eq!(o.m.failures[0].worker, 1);
            assert!(o.m.failures[0].reason.contains("injected fault"), "{:?}", o.m.failures);
            // Every worker is sent DEPTH tasks at the start, so the fault always fires.
            assert_eq!(o.m.workers[1].tasks, 1, "{name}");
        }
    }

    #[test]
    fn abort_stops_at_the_first_failure() {
        for (_, transport, bin) in transports(vec![Some(Fault::ExitAfter(1)), None]) {
            let o = schedule_n(N, transport, &bin, 2, (OnWorkerExit::Abort, TaskTimeout::Auto));
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
            let o = schedule_n(N, transport, &bin, 3, (OnWorkerExit::Retry, timeout));
            o.result.unwrap();
            assert_eq!(o.output, o.expected, "{name}");
            assert!(o.m.failures[0].reason.contains("no result for task"), "{:?}", o.m.failures);
            assert_eq!(o.m.failures[0].worker, 0);
        }
    }

    #[test]
    fn the_first_deadline_scales_with_this_builds_measured_speed() {
        let s = Settings { workers: 2, work: 3, ..Settings::default() };
        let cost = crate::calibrate::ns_per_value(s.function);
        let task = 8_000_000;
        let expected_ns = task as f64 * (cost.generate_ns + 3.0 * cost.compute_ns);
        let d = first_deadline(task, &s);
        assert!(d.as_secs_f64() * 1e9 >= 20.0 * expected_ns, "{d:?} for {expected_ns} ns");
        assert_eq!(first_deadline(1, &s), TASK_TIMEOUT_FLOOR, "never under the floor");
        let crowded = Settings { workers: 64, ..s.clone() };
        assert!(first_deadline(task, &crowded) >= d, "workers sharing cores stretch it");
    }

    #[test]
    fn with_no_worker_left_the_run_fails() {
        let faults = vec![Some(Fault::ExitAfter(0)), Some(Fault::PanicAfter(0))];
        for (_, transport, bin) in transports(faults) {
            let o = schedule_n(N, transport, &bin, 2, RETRY);
            assert!(matches!(o.result, Err(RunError::WorkerDied { .. })), "{:?}", o.result.err());
            assert_eq!(o.m.failures.len(), 2);
        }
    }
}
