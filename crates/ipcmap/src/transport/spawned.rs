//! A pool of spawned worker processes, whatever carries their frames: the
//! [handshake], then a sender thread and a reader thread per worker over
//! the links the transport made, the [`Watchdog`]'s exit reports in the same event queue, and
//! every process killed and reaped on every path. A transport that spawns its workers (local,
//! uds, tcp, pipe, shmq) supplies only its links ([`Link`]) and its worker half.
//!
//! Sends never block the caller: [`Pool::send`] queues the frame to the worker's sender thread
//! and returns; the buffer comes back by [`Pool::sent`]. Received frames are read into
//! buffers lent from a free list and come back to it when dropped ([`Frame`]), so a steady
//! run allocates nothing per frame where the link reads into a buffer.

use super::handshake::{self, Hello};
use super::place::Places;
use super::spawner::{Watchdog, WorkerProcess};
use super::{Event, Frame, MakeSetup, Pool, PoolResult, PoolSpec, Sent, Started, WorkerInfo};
use super::{Transport, TransportInfo, WorkerEnds};
use crate::error::{LinkError, SpawnError, WorkerError};
use crate::protocol::Setup;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The coordinator's sending end of one worker's link.
pub trait FrameSender: Send + 'static {
    /// Sends one whole frame (blocking this sender's thread only).
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError>;
    /// No more frames: the worker sees its inbox close.
    fn close(&mut self) {}
}

/// Where a reader may read a result straight into the output: the worker it reads for,
/// and the output's [`Places`].
pub type Place<'a> = (usize, &'a dyn Places);

/// The coordinator's receiving end of one worker's link.
pub trait FrameReceiver: Send + 'static {
    /// Receives the next frame into `into` (cleared first; its capacity reused where the link
    /// can read into a buffer), and a result's payload straight into its place in the output
    /// where `place` claims it; `Ok(None)` once the worker closed its end, else the payload
    /// bytes placed (0 for a link that cannot place, as ipc-channel's).
    fn recv(
        &mut self,
        into: &mut Vec<u8>,
        place: Option<Place<'_>>,
    ) -> Result<Option<u64>, LinkError>;
    /// It reads into the buffer it is given, so buffers are worth lending back (false for a
    /// link that hands over buffers of its own, as ipc-channel does).
    fn reads_into(&self) -> bool {
        true
    }
    /// From now on, refuses a frame announced longer than `max_frame` bytes before anything
    /// is allocated for it ([`PoolSpec::max_frame`]: more than any task of the run can
    /// produce). By default nothing: a link whose library sizes its own buffers.
    fn limit(&mut self, _max_frame: &super::FrameLimit) {}
}

/// A frame receiver is a worker's inbox too: the same reads, with no place to read into.
impl<R: FrameReceiver> super::Inbox for R {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        let mut frame = Vec::new();
        Ok(FrameReceiver::recv(self, &mut frame, None)?.map(|_| frame))
    }

    fn recv_into(&mut self, frame: &mut Vec<u8>) -> Result<bool, LinkError> {
        Ok(FrameReceiver::recv(self, frame, None)?.is_some())
    }
}

/// A transport whose workers this process spawns into the shared pool ([`start`]): it
/// declares itself, answers each checked hello with the worker's links, and supplies the
/// worker's half; the rest of [`Transport`] follows. (A transport that must make more before
/// its workers start, as pipe's pipes, implements [`Transport`] itself.)
pub trait Spawned: Sync {
    /// What it is and can carry.
    const INFO: TransportInfo;
    /// Descriptors the coordinator holds per worker: its links, its reader's and sender's
    /// wake-ups, the handshake's connection (4 for a stream that is also the hello's: the
    /// stream and its clone, the two wake-ups).
    const FILES_PER_WORKER: u64 = 4;
    /// The links of the worker whose hello this is, in a pool started with `spec`.
    fn link(&self, hello: Hello, spec: &PoolSpec<'_>) -> Result<Link, SpawnError>;
    /// The worker's half: its ends, once it said hello on `hello` as `worker` speaking
    /// `protocol` ([`Transport::connect`]).
    fn join(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError>;
}

impl<T: Spawned> Transport for T {
    fn info(&self) -> TransportInfo {
        T::INFO
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        start(T::INFO.name, spec, setup, &mut |hello| self.link(hello, spec))
    }

    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        self.join(hello, worker, protocol)
    }

    fn files_needed(&self, workers: usize) -> u64 {
        32 + T::FILES_PER_WORKER * workers as u64
    }
}

/// One worker's link, as its transport's answer to its hello made it.
pub struct Link {
    /// Tasks out.
    pub sender: Box<dyn FrameSender>,
    /// Results in.
    pub receiver: Box<dyn FrameReceiver>,
}

/// Starts `spec.count` workers of transport `name`, links each with `answer`, sends each its
/// [`Setup`] and returns the pool.
pub fn start(
    name: &str,
    spec: &PoolSpec<'_>,
    setup: &dyn Fn(u32) -> Setup,
    answer: &mut dyn FnMut(Hello) -> Result<Link, SpawnError>,
) -> Result<Box<dyn Pool>, SpawnError> {
    let started = Instant::now();
    let ready = handshake::start_all(spec, name, answer)?;
    let (events_tx, events) = mpsc::channel::<Event>();
    let (sent_tx, sent) = mpsc::channel::<Sent>();
    let (mut infos, mut senders, mut processes) = (Vec::new(), Vec::new(), Vec::new());
    let slot: PlacesSlot = Arc::new(Mutex::new(spec.places.clone()));
    let limit = super::FrameLimit::new(spec.max_frame);
    for (w, p) in ready.into_iter().enumerate() {
        let (process, Link { mut sender, mut receiver }) = (p.process, p.ends);
        let (worker, pid) = (process.id, process.pid);
        sender.send(&setup(worker).to_frame()).map_err(|e| SpawnError::Setup {
            worker,
            pid,
            message: e.to_string(),
        })?;
        let thread = |what| move |source| SpawnError::Thread { what, source };
        receiver.limit(&limit);
        let places = Arc::clone(&slot);
        spawn_reader(w, receiver, places, events_tx.clone()).map_err(thread("result reader"))?;
        let queue = spawn_sender(w, sender, sent_tx.clone()).map_err(thread("task sender"))?;
        infos.push(WorkerInfo {
            clock_offset_ns: 0,
            id: worker,
            pid,
            started_at_ns: p.started_at_ns,
            ready_at_ns: p.ready_at_ns,
        });
        senders.push(Some(queue));
        processes.push(process);
    }
    let watchdog = watch(&processes, events_tx)?;
    Ok(Box::new(SpawnedPool {
        started: Started { workers: infos, spawn_ns: started.elapsed().as_nanos() as u64 },
        senders,
        sent,
        events,
        _watchdog: watchdog,
        processes,
        places: slot,
        limit,
        handshake_timeout: spec.handshake_timeout,
    }))
}

/// The output the readers read results into, replaced for each run of a kept pool. A reader
/// waiting for a frame keeps the one it had, closed by then: that frame is read whole and
/// placed by the gather thread instead.
type PlacesSlot = Arc<Mutex<Option<Arc<dyn Places>>>>;

/// Starts a pool as [`start`] does, where each worker also inherits descriptors made for it
/// alone before it starts (pipes, shared-memory queues): `made[w]` is worker w's, `theirs`
/// names the descriptors it inherits, and `link` makes its links from its checked hello and
/// what was made for it (telling it its descriptors: [`handshake::name_descriptors`]).
pub fn start_inheriting<E>(
    name: &str,
    spec: &PoolSpec<'_>,
    setup: &MakeSetup<'_>,
    made: Vec<E>,
    theirs: fn(&E) -> Vec<i32>,
    link: &mut dyn FnMut(Hello, E) -> Result<Link, SpawnError>,
) -> PoolResult {
    let made = std::cell::RefCell::new(made.into_iter().map(Some).collect::<Vec<_>>());
    let inherit = |w: u32| {
        let mut fds = (spec.inherit_fds)(w);
        if let Some(Some(e)) = made.borrow().get(w as usize) {
            fds.extend(theirs(e));
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
        max_frame: spec.max_frame,
    };
    start(name, &spec, setup, &mut |hello: Hello| {
        let worker = hello.worker;
        let mine = made.borrow_mut().get_mut(worker as usize).and_then(Option::take);
        let mine = mine.ok_or_else(|| SpawnError::Channel {
            worker,
            what: "its descriptors",
            source: std::io::Error::other("none were made for it"),
        })?;
        link(hello, mine)
    })
}

/// Reports each process's end, with its last words, as an [`Event::Exited`].
fn watch(processes: &[WorkerProcess], events: mpsc::Sender<Event>) -> Result<Watchdog, SpawnError> {
    let watched = processes.iter().map(|p| (p.id, p.pid, p.stderr.clone())).collect::<Vec<_>>();
    let pids = watched.iter().map(|&(id, pid, _)| (id, pid)).collect();
    Watchdog::start(pids, move |exited| {
        let gist = watched
            .iter()
            .find(|(id, _, _)| *id == exited.worker)
            .and_then(|(_, _, path)| path.as_deref())
            .and_then(super::spawner::stderr_gist)
            .map(|g| super::spawner::without_name(exited.worker, g))
            .map_or_else(String::new, |g| format!(" ({g})"));
        let _ = events
            .send(Event::Exited { worker: exited.worker as usize, how: format!("{exited}{gist}") });
    })
    .map_err(|source| SpawnError::Thread { what: "watchdog", source })
}

/// A started pool of spawned workers.
struct SpawnedPool {
    started: Started,
    // Field order is drop order: links close before the processes are killed and reaped.
    /// Each worker's queue to its sender thread.
    senders: Vec<Option<mpsc::Sender<Vec<u8>>>>,
    /// Frames whose send ended, from every sender thread.
    sent: mpsc::Receiver<Sent>,
    events: mpsc::Receiver<Event>,
    _watchdog: Watchdog,
    processes: Vec<WorkerProcess>,
    /// Where its readers read results into.
    places: PlacesSlot,
    /// The longest result frame its readers take.
    limit: super::FrameLimit,
    /// How long a kept worker may take to take its next setup.
    handshake_timeout: Duration,
}

impl Pool for SpawnedPool {
    fn started(&self) -> &Started {
        &self.started
    }

    fn send(&mut self, worker: usize, frame: Vec<u8>) -> Result<(), LinkError> {
        let queue = super::open_queue(&self.senders, worker)?;
        queue.send(frame).map_err(|_| LinkError::Closed)
    }

    fn sent(&mut self) -> Option<Sent> {
        self.sent.try_recv().ok()
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    fn close(&mut self, worker: usize) {
        if let Some(sender) = self.senders.get_mut(worker) {
            *sender = None;
        }
    }

    fn kill(&mut self, worker: usize) {
        self.close(worker);
        if let Some(p) = self.processes.get(worker) {
            let _ = super::spawner::kill_pid(p.pid);
        }
    }

    fn reap(&mut self, worker: usize, grace: Duration) -> String {
        self.processes.get_mut(worker).map_or_else(|| "unknown worker".into(), |p| p.reap(grace))
    }

    fn last_words(&self, worker: usize) -> Option<String> {
        self.processes.get(worker)?.last_words()
    }

    fn keeps(&self) -> bool {
        true
    }

    fn end_run(&mut self, worker: usize) {
        if let Ok(mut places) = self.places.lock() {
            *places = None;
        }
        if self.send(worker, Vec::new()).is_err() {
            self.close(worker);
        }
    }

    fn next_run(
        &mut self,
        setups: Vec<Vec<u8>>,
        places: Option<Arc<dyn Places>>,
        max_frame: u64,
    ) -> Result<(), String> {
        // Whatever came between runs (an exit, a closed link, a stray frame) ends the pool.
        if let Ok(event) = self.events.try_recv() {
            return Err(match event {
                Event::Exited { worker, how } => format!("worker {worker} {how} between runs"),
                Event::Closed(w) | Event::Refused(w, _) => format!("worker {w}'s link closed"),
                Event::Frame(w, _) => format!("worker {w} sent a frame between runs"),
            });
        }
        // The last run's sends are over: each worker's stats came after them.
        while self.sent.try_recv().is_ok() {}
        if setups.len() != self.processes.len() {
            return Err(format!("{} setups for {} workers", setups.len(), self.processes.len()));
        }
        if let Ok(mut slot) = self.places.lock() {
            *slot = places;
        }
        self.limit.set(max_frame);
        for (w, setup) in setups.into_iter().enumerate() {
            self.send(w, setup).map_err(|e| format!("worker {w}: {e}"))?;
        }
        // Each setup's send ends before the run's first task is counted as sent.
        let deadline = Instant::now() + self.handshake_timeout;
        for _ in 0..self.processes.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.sent.recv_timeout(left) {
                Ok(Sent { result: Ok(()), .. }) => {}
                Ok(Sent { worker, result: Err(e), .. }) => {
                    return Err(format!("worker {worker} took no setup: {e}"))
                }
                Err(_) => return Err("a worker took no setup in time".into()),
            }
        }
        Ok(())
    }
}

/// Starts worker `w`'s sender thread: it sends the frames queued to it, in order, and hands
/// each back with how its send went. A send to a worker that does not read (stopped, hung)
/// blocks this thread only; killing the worker ends it. The link closes when the queue does
/// (after the frames already queued) or at the first failed send.
fn spawn_sender(
    w: usize,
    mut link: Box<dyn FrameSender>,
    sent: mpsc::Sender<Sent>,
) -> std::io::Result<mpsc::Sender<Vec<u8>>> {
    let (queue, frames) = mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new().name(format!("scatter-{w}")).spawn(move || {
        for frame in frames {
            let start_ns = crate::trace::now_ns();
            let result = link.send(&frame);
            let failed = result.is_err();
            let done = Sent {
                worker: w,
                frame,
                result,
                start_ns,
                end_ns: crate::trace::now_ns(),
                threaded: true,
            };
            if sent.send(done).is_err() || failed {
                break;
            }
        }
        link.close();
    })?;
    Ok(queue)
}

/// Drains worker `w`'s results into the event queue, each into a buffer lent from this
/// reader's free list; ends when the link closes or breaks.
fn spawn_reader(
    w: usize,
    mut link: Box<dyn FrameReceiver>,
    places: PlacesSlot,
    events: mpsc::Sender<Event>,
) -> std::io::Result<()> {
    let (home, free) = mpsc::channel::<Vec<u8>>();
    std::thread::Builder::new()
        .name(format!("gather-{w}"))
        .spawn(move || loop {
            let mut buf = free.try_recv().unwrap_or_default();
            let places = places.lock().ok().and_then(|p| p.clone());
            match link.recv(&mut buf, places.as_deref().map(|p| (w, p))) {
                Ok(Some(placed)) => {
                    let frame = match link.reads_into() {
                        true => Frame::lent(buf, home.clone()),
                        false => Frame::owned(buf),
                    };
                    if events.send(Event::Frame(w, frame.with_placed(placed))).is_err() {
                        break;
                    }
                }
                Err(e @ LinkError::TooLong { .. }) => {
                    let _ = events.send(Event::Refused(w, e.to_string()));
                    break;
                }
                Ok(None) | Err(_) => {
                    let _ = events.send(Event::Closed(w));
                    break;
                }
            }
        })
        .map(drop)
}
