//! The memory transport: an in-process fake of a pool. Each worker is the real worker loop
//! (`worker::serve`) on a thread of its own, its inbox and outbox std channels, so the
//! scheduler's logic (dynamic refill, retry, abort, deadlines) is tested in milliseconds,
//! without processes. A worker may be given a [`Fault`] to misbehave as a process would.
//!
//! Nothing here claims to be a process: reports made over it carry the coordinator's pid.

use super::{
    Event, Inbox, MakeSetup, Outbox, Pool, PoolResult, PoolSpec, Sent, SentQueue, Started,
    Transport, TransportInfo, WorkerInfo,
};
use crate::error::WorkerError;
use crate::error::{LinkError, SpawnError};
use crate::fault::Fault;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a killed in-process worker is reported.
const KILLED: &str = "was killed";

/// The worker loop the fake runs on each thread: `worker::serve`, handed in by the
/// caller (the worker layer sits above the transports).
pub type Serve = fn(u32, Option<Fault>, Box<dyn Inbox>, Box<dyn Outbox>) -> Result<(), WorkerError>;

/// In-process workers on threads; `faults[i]` (if any) is worker i's misbehaviour.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    /// The worker loop.
    pub serve: Serve,
    /// Per worker id, a fault to inject.
    pub faults: Vec<Option<Fault>>,
}

/// A started pool of thread workers.
pub struct MemoryPool {
    started: Started,
    senders: Vec<Option<mpsc::Sender<Vec<u8>>>>,
    events: mpsc::Receiver<Event>,
    threads: Vec<Option<JoinHandle<()>>>,
    killed: Vec<bool>,
    /// To report a kill as an end, as a process's watchdog would.
    exits: mpsc::Sender<Event>,
    sent: SentQueue,
}

struct ChannelInbox(mpsc::Receiver<Vec<u8>>);

impl Inbox for ChannelInbox {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        Ok(self.0.recv().ok())
    }
}

struct ChannelOutbox {
    worker: usize,
    events: mpsc::Sender<Event>,
}

impl Outbox for ChannelOutbox {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.events
            .send(Event::Frame(self.worker, super::Frame::owned(frame.to_vec())))
            .map_err(|_| LinkError::Closed)
    }
}

impl Transport for MemoryTransport {
    fn info(&self) -> TransportInfo {
        let about = "the worker loop on threads of this process (the scheduler's tests only)";
        TransportInfo::spawned("memory", about)
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        let started = Instant::now();
        let (events_tx, events) = mpsc::channel();
        let mut pool = MemoryPool {
            started: Started::default(),
            senders: Vec::new(),
            events,
            threads: Vec::new(),
            killed: vec![false; spec.count],
            exits: events_tx.clone(),
            sent: SentQueue::default(),
        };
        for w in 0..spec.count {
            let (task_tx, task_rx) = mpsc::channel();
            let _ = task_tx.send(setup(w as u32).to_frame());
            let inbox = Box::new(ChannelInbox(task_rx));
            let outbox = Box::new(ChannelOutbox { worker: w, events: events_tx.clone() });
            let exits = events_tx.clone();
            let fault = self.faults.get(w).copied().flatten();
            let serve = self.serve;
            let thread = std::thread::Builder::new()
                .name(format!("memory-worker-{w}"))
                .spawn(move || {
                    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        serve(w as u32, fault, inbox, outbox)
                    }));
                    let how = match served {
                        Ok(Ok(())) => "exited with code 0".to_string(),
                        Ok(Err(e)) => format!("exited with code 1 ({e})"),
                        Err(panic) => format!(
                            "exited with code 101 (panicked: {})",
                            crate::error::panic_message(panic.as_ref())
                        ),
                    };
                    let _ = exits.send(Event::Exited { worker: w, how });
                })
                .map_err(|source| SpawnError::Channel {
                    worker: w as u32,
                    what: "memory worker thread",
                    source,
                })?;
            pool.started.workers.push(WorkerInfo {
                clock_offset_ns: 0,
                id: w as u32,
                pid: std::process::id(),
                started_at_ns: 0,
                ready_at_ns: 0,
            });
            pool.senders.push(Some(task_tx));
            pool.threads.push(Some(thread));
        }
        pool.started.spawn_ns = started.elapsed().as_nanos() as u64;
        Ok(Box::new(pool))
    }
}

impl Pool for MemoryPool {
    fn started(&self) -> &Started {
        &self.started
    }

    fn send(&mut self, worker: usize, frame: Vec<u8>) -> Result<(), LinkError> {
        let sender = super::open_queue(&self.senders, worker)?;
        self.sent.send_now(worker, frame, |frame| {
            sender.send(frame.to_vec()).map_err(|_| LinkError::Closed)
        })
    }

    fn sent(&mut self) -> Option<Sent> {
        self.sent.pop()
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        loop {
            let event = self.events.recv_timeout(timeout).ok()?;
            // A killed worker says nothing more: its end was reported by kill().
            match &event {
                Event::Frame(w, _) | Event::Closed(w) | Event::Refused(w, _) if self.killed[*w] => {
                    continue
                }
                Event::Exited { worker, how } if self.killed[*worker] && how != KILLED => continue,
                _ => return Some(event),
            }
        }
    }

    fn close(&mut self, worker: usize) {
        if let Some(sender) = self.senders.get_mut(worker) {
            *sender = None;
        }
    }

    /// A thread cannot be killed: its inbox is closed (a hung fake worker then ends) and
    /// nothing it says is heard again.
    fn kill(&mut self, worker: usize) {
        self.close(worker);
        // A worker already ending (its inbox gone, say) has sent its own end, with its real
        // reason: as a process's exit status survives a late SIGKILL, that one is reported.
        let until = Instant::now() + Duration::from_millis(200);
        let ending = |t: &Option<JoinHandle<()>>| t.as_ref().is_none_or(|t| t.is_finished());
        while !self.threads.get(worker).is_none_or(ending) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.threads.get(worker).is_none_or(ending) {
            return;
        }
        if let Some(killed) = self.killed.get_mut(worker).filter(|k| !**k) {
            *killed = true;
            let _ = self.exits.send(Event::Exited { worker, how: KILLED.into() });
        }
    }

    fn reap(&mut self, worker: usize, grace: Duration) -> String {
        let Some(slot) = self.threads.get_mut(worker) else {
            return "unknown worker".into();
        };
        let deadline = Instant::now() + grace;
        while slot.as_ref().is_some_and(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        match slot.take() {
            Some(t) if t.is_finished() => {
                let _ = t.join();
                if self.killed[worker] {
                    "was killed".into()
                } else {
                    "exited with code 0".into()
                }
            }
            Some(_) => "left running (an in-process worker cannot be killed)".into(),
            None => "already reaped".into(),
        }
    }

    fn last_words(&self, _worker: usize) -> Option<String> {
        None
    }
}

impl Drop for MemoryPool {
    fn drop(&mut self) {
        for sender in &mut self.senders {
            *sender = None;
        }
    }
}
