//! The MPI transport (cargo feature `mpi`): the ranks `mpirun` (or `srun`) started, on one
//! host or many. Rank 0 is the coordinator; ranks 1..N are its workers 0..N-1, running the same
//! worker loop (`worker::serve`) as local worker processes, over MPI messages.
//!
//! Ranks live for the whole job, so a "pool" is one run's conversation with them:
//! 1. [`init`] (every rank, first thing): `MPI_Init_thread` (funneled: MPI is called from one
//!    thread only), then each worker rank sends rank 0 its pid and host name;
//! 2. per run, rank 0 sends each worker the [`Setup`](crate::protocol::Setup) frame ([`TAG_TASK`]), then task frames
//!    (non-blocking sends from staging buffers, so that a big task to a worker and that
//!    worker's big result never wait on each other), and at the end [`TAG_CLOSE`]; the worker
//!    answers result frames ([`TAG_RESULT`]), its stats, and [`TAG_DONE`];
//! 3. at the end of the job rank 0 sends [`TAG_SHUTDOWN`] and every rank finalises.
//!
//! Collectives (the `scatterv` strategy): rank 0 announces each worker's part length
//! ([`TAG_SCATTER`]) and calls `MPI_Scatterv`; each worker announces its result's length
//! ([`TAG_GATHER`]) and calls `MPI_Gatherv`, which rank 0 joins once every announcement is in,
//! so that waiting stays a poll with a deadline.
//!
//! What MPI does not survive: a rank that dies ends the whole job (the launcher kills every
//! rank), and a rank cannot be stopped on its own. A worker written off at its task deadline is
//! left to finish; if it never reports done, the job ends with `MPI_Abort` instead of a clean
//! shutdown.

use super::{
    Event, Frame, Inbox, MakeSetup, Outbox, Pool, PoolResult, PoolSpec, Sent, Started, Transport,
    TransportInfo, WorkerInfo,
};
use crate::error::{LinkError, SpawnError, WorkerError};
use mpi::ffi;
use mpi::point_to_point::{MatchedReceiveVec, Message, Status};
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;
use std::collections::VecDeque;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod pool;
mod raw;

pub use pool::MpiTransport;
use raw::{gather_send, scatter_receive};

/// Coordinator → worker: a frame (the setup first, then tasks).
pub const TAG_TASK: i32 = 1;
/// Coordinator → worker: no more tasks in this run.
pub const TAG_CLOSE: i32 = 2;
/// Coordinator → worker: the job is over; finalise and exit.
pub const TAG_SHUTDOWN: i32 = 3;
/// Coordinator → worker: the next frame comes by `MPI_Scatterv`; 8 bytes, its length.
pub const TAG_SCATTER: i32 = 4;
/// Worker → coordinator: a frame (a result or the stats).
pub const TAG_RESULT: i32 = 10;
/// Worker → coordinator: the next frame goes by `MPI_Gatherv`; 8 bytes, its length.
pub const TAG_GATHER: i32 = 11;
/// Worker → coordinator: it has finished this run (after its stats).
pub const TAG_DONE: i32 = 12;
/// Worker → coordinator: the run failed on its side; the error, one line.
pub const TAG_FAILED: i32 = 13;
/// Worker → coordinator, once at init: "PID HOST".
const TAG_HELLO: i32 = 14;
/// Rank 0 asks a worker rank's time, and its answer (the clock exchange at init).
const TAG_CLOCK: i32 = 15;

/// The largest message: MPI counts are C ints.
pub const MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// What rank 0 learnt at init.
#[derive(Clone, Debug)]
pub struct MpiWorld {
    /// Each worker: its rank, pid and host, in worker order.
    pub workers: Vec<RankInfo>,
    /// Rank 0's host.
    pub host: String,
    /// The MPI library, in its own words ("Open MPI v4.1.4").
    pub library: String,
    /// From before `MPI_Init_thread` until every worker rank had said hello, ns.
    pub init_ns: u64,
}

/// One worker rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RankInfo {
    /// Its rank in `MPI_COMM_WORLD`.
    pub rank: u32,
    /// Its process id (on its host).
    pub pid: u32,
    /// Its host (`MPI_Get_processor_name`).
    pub host: String,
    /// Its clock against rank 0's, measured at init.
    pub clock: ClockOffset,
}

/// A rank's `CLOCK_MONOTONIC` against rank 0's, by Cristian's algorithm: rank 0 asks for the
/// rank's time [`CLOCK_ROUNDS`] times and keeps the round with the shortest round trip; the
/// rank's answer was read somewhere inside it, so the offset is its time minus the round
/// trip's midpoint, within half the round trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset {
    /// The rank's clock minus rank 0's, ns.
    pub offset_ns: i64,
    /// How far the true offset may be from `offset_ns`: half the shortest round trip, ns.
    pub uncertainty_ns: u64,
}

/// Round trips per rank for its [`ClockOffset`].
const CLOCK_ROUNDS: usize = 16;

/// Rank 0's half of the clock exchange with `rank`.
fn measure_clock(rank: i32) -> ClockOffset {
    let comm = SimpleCommunicator::world();
    let peer = comm.process_at_rank(rank);
    let mut best: Option<(u64, i64)> = None;
    for _ in 0..CLOCK_ROUNDS {
        let asked = crate::trace::now_ns();
        peer.send_with_tag(&[0u8; 0][..], TAG_CLOCK);
        let (theirs, _) = peer.receive_vec_with_tag::<u8>(TAG_CLOCK);
        let answered = crate::trace::now_ns();
        let Ok(theirs) = <[u8; 8]>::try_from(theirs.as_slice()).map(u64::from_le_bytes) else {
            continue;
        };
        let rtt = answered.saturating_sub(asked);
        let midpoint = asked + rtt / 2;
        if best.is_none_or(|(b, _)| rtt < b) {
            best = Some((rtt, theirs as i64 - midpoint as i64));
        }
    }
    best.map_or_else(ClockOffset::default, |(rtt, offset_ns)| ClockOffset {
        offset_ns,
        uncertainty_ns: rtt / 2,
    })
}

/// A worker rank's half: answers rank 0's clock questions with its own time.
fn answer_clock() {
    let comm = SimpleCommunicator::world();
    let root = comm.process_at_rank(0);
    for _ in 0..CLOCK_ROUNDS {
        let _ = root.receive_vec_with_tag::<u8>(TAG_CLOCK);
        root.send_with_tag(&crate::trace::now_ns().to_le_bytes()[..], TAG_CLOCK);
    }
}

static WORLD: OnceLock<MpiWorld> = OnceLock::new();

/// Every worker rank is idle (between runs): the job can end with a clean shutdown.
static CLEAN: AtomicBool = AtomicBool::new(true);

/// The worker ranks an earlier run left busy, named for the line that ends the job.
static STUCK: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// The job's MPI world, once [`init`] ran on rank 0.
pub fn world() -> Option<&'static MpiWorld> {
    WORLD.get()
}

/// MPI could not start, or the job cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// `MPI_Init` failed or ran twice.
    #[error("MPI could not be initialised (is this running under mpirun or srun?)")]
    Init,
    /// Only one rank: nobody to work.
    #[error("--transport mpi needs at least 2 ranks (rank 0 coordinates, the others work); start it with mpirun -np N (N >= 2)")]
    TooFewRanks,
    /// A worker rank's hello made no sense.
    #[error("MPI rank {rank} sent a hello this coordinator cannot read; is every rank running the same coordinator binary?")]
    BadHello { rank: i32 },
}

/// This process's MPI session: finalised when dropped (after [`Session::finish`]).
pub struct Session {
    universe: Option<mpi::environment::Universe>,
    rank: i32,
}

/// Initialises MPI; on rank 0, collects every worker rank's hello into [`world`].
pub fn init() -> Result<Session, MpiError> {
    let started = Instant::now();
    let (universe, _) =
        mpi::initialize_with_threading(Threading::Funneled).ok_or(MpiError::Init)?;
    let comm = universe.world();
    let (rank, size) = (comm.rank(), comm.size());
    let session = Session { universe: Some(universe), rank };
    if size < 2 {
        return Err(MpiError::TooFewRanks);
    }
    let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
    if rank != 0 {
        let hello = format!("{} {host}", std::process::id());
        comm.process_at_rank(0).send_with_tag(hello.as_bytes(), TAG_HELLO);
        answer_clock();
        return Ok(session);
    }
    let mut workers = Vec::with_capacity(size as usize - 1);
    for r in 1..size {
        let (bytes, _) = comm.process_at_rank(r).receive_vec_with_tag::<u8>(TAG_HELLO);
        let text = String::from_utf8(bytes).map_err(|_| MpiError::BadHello { rank: r })?;
        let (pid, host) = text
            .split_once(' ')
            .and_then(|(pid, host)| Some((pid.parse().ok()?, host.to_string())))
            .ok_or(MpiError::BadHello { rank: r })?;
        workers.push(RankInfo { rank: r as u32, pid, host, clock: ClockOffset::default() });
    }
    for w in &mut workers {
        w.clock = measure_clock(w.rank as i32);
    }
    let library = mpi::environment::library_version()
        .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let _ = WORLD.set(MpiWorld {
        workers,
        host,
        library,
        init_ns: started.elapsed().as_nanos() as u64,
    });
    Ok(session)
}

impl Session {
    /// This process's rank; rank 0 coordinates.
    pub fn rank(&self) -> i32 {
        self.rank
    }

    /// A worker rank's life: `serve` (the worker loop, `worker::serve`, handed in by the
    /// caller) run after run until the coordinator shuts the job down. Returns the exit status.
    pub fn serve(self, serve: super::memory::Serve) -> u8 {
        let worker = (self.rank - 1) as u32;
        let fault = crate::fault::Fault::from_env(worker);
        let code = loop {
            let comm = SimpleCommunicator::world();
            let status = idle_until_rank_0_speaks();
            if status.tag() == TAG_SHUTDOWN {
                let _ = comm.process_at_rank(0).receive_vec_with_tag::<u8>(TAG_SHUTDOWN);
                break 0;
            }
            let gather_next = Arc::new(AtomicBool::new(false));
            let inbox = Box::new(MpiInbox { closed: false, gather_next: gather_next.clone() });
            let outbox = Box::new(MpiOutbox { gather_next });
            // A panic on this rank is its failure, told to rank 0 like any other, so the
            // run writes this worker off by name and reruns its tasks.
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve(worker, fault, inbox, outbox)
            }))
            .unwrap_or_else(|panic| {
                Err(WorkerError::Panicked {
                    worker,
                    message: crate::error::panic_message(panic.as_ref()),
                })
            });
            match served {
                Ok(()) => {}
                // A rank that dies, for real: the launcher then ends the job.
                Err(WorkerError::InjectedExit { code, .. }) => std::process::exit(code.into()),
                Err(e) => {
                    let line = e.to_string();
                    comm.process_at_rank(0).send_with_tag(line.as_bytes(), TAG_FAILED);
                    drain_until_close();
                }
            }
            comm.process_at_rank(0).send_with_tag(&[0u8; 0][..], TAG_DONE);
        };
        drop(self);
        code
    }

    /// Rank 0's end of the job with exit status `code`: a clean shutdown of every worker rank
    /// and `MPI_Finalize` when they are all idle, else `MPI_Abort` (which ends every rank).
    pub fn finish(mut self, code: u8) -> u8 {
        let comm = SimpleCommunicator::world();
        if !CLEAN.load(Ordering::SeqCst) {
            // The launcher forwards this rank's stderr (its one line) on its own time, and an
            // abort can overtake it: give it a moment first.
            use std::io::Write;
            let _ = std::io::stderr().flush();
            std::thread::sleep(Duration::from_millis(200));
            abort_within(code);
        }
        for r in 1..comm.size() {
            comm.process_at_rank(r).send_with_tag(&[0u8; 0][..], TAG_SHUTDOWN);
        }
        drop(self.universe.take());
        code
    }

    /// Ends the job at once with exit status `code`, every rank with it (`MPI_Abort`).
    pub fn abort(self, code: u8) -> ! {
        abort_within(code)
    }
}

/// How long `MPI_Abort` may take before this rank leaves without it.
const ABORT_GRACE: Duration = Duration::from_secs(3);

/// `MPI_Abort` with exit status `code`, bounded: it asks the launcher to end every rank, and
/// where it cannot (a host cut off, its daemon unreachable) it never returns. So a thread
/// ends this process after [`ABORT_GRACE`] whatever MPI is doing: rank 0's line is out and
/// its exit is its own; the launcher is left to end the ranks it can still reach.
fn abort_within(code: u8) -> ! {
    let code = code.max(1);
    std::thread::spawn(move || {
        std::thread::sleep(ABORT_GRACE);
        // SAFETY: _exit ends the process at once, running nothing of MPI's (which is stuck).
        unsafe { nix::libc::_exit(c_int::from(code)) }
    });
    SimpleCommunicator::world().abort(c_int::from(code))
}

/// Between runs, a worker rank waits for rank 0's next message without spinning: a probe
/// now and then, backing off to a millisecond, so that ranks waiting on the cores of rank 0's
/// host leave them to its sequential baseline (MPI's blocking probe busy-polls). The message
/// stays for the inbox (or the receive after).
fn idle_until_rank_0_speaks() -> Status {
    let comm = SimpleCommunicator::world();
    let mut pause = Duration::from_micros(20);
    loop {
        if let Some(status) = comm.process_at_rank(0).immediate_probe() {
            return status;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}

/// After a failure on a worker rank: throws away task frames until the run's close.
fn drain_until_close() {
    let comm = SimpleCommunicator::world();
    loop {
        let (msg, status) = comm.process_at_rank(0).matched_probe();
        let (bytes, status): (Vec<u8>, Status) = (msg, status).matched_receive_vec();
        match status.tag() {
            TAG_CLOSE | TAG_SHUTDOWN => return,
            // The coordinator is in a Scatterv: join it, or it waits for ever.
            TAG_SCATTER => drop(scatter_receive(length_of(&bytes).unwrap_or(0))),
            _ => {}
        }
    }
}

fn length_of(bytes: &[u8]) -> Option<usize> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?) as usize)
}

/// A worker rank's task side.
struct MpiInbox {
    closed: bool,
    gather_next: Arc<AtomicBool>,
}

impl Inbox for MpiInbox {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        if self.closed {
            return Ok(None);
        }
        let comm = SimpleCommunicator::world();
        let (msg, status) = comm.process_at_rank(0).matched_probe();
        let (bytes, status): (Vec<u8>, Status) = (msg, status).matched_receive_vec();
        match status.tag() {
            TAG_TASK => Ok(Some(bytes)),
            TAG_CLOSE => {
                self.closed = true;
                Ok(None)
            }
            TAG_SCATTER => {
                let len = length_of(&bytes)
                    .ok_or_else(|| LinkError::Channel("a malformed scatter notice".into()))?;
                let frame = scatter_receive(len)?;
                self.gather_next.store(true, Ordering::SeqCst);
                Ok(Some(frame))
            }
            TAG_SHUTDOWN => Err(LinkError::Channel(
                "the coordinator ended the job in the middle of a run".into(),
            )),
            tag => Err(LinkError::Channel(format!("an MPI message with tag {tag}"))),
        }
    }
}

/// A worker rank's result side.
struct MpiOutbox {
    gather_next: Arc<AtomicBool>,
}

impl Outbox for MpiOutbox {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        check_size(frame.len())?;
        let comm = SimpleCommunicator::world();
        let root = comm.process_at_rank(0);
        if self.gather_next.swap(false, Ordering::SeqCst) {
            root.send_with_tag(&(frame.len() as u64).to_le_bytes()[..], TAG_GATHER);
            gather_send(frame)?;
        } else {
            root.send_with_tag(frame, TAG_RESULT);
        }
        Ok(())
    }
}

fn check_size(len: usize) -> Result<(), LinkError> {
    if len > MAX_MESSAGE_BYTES {
        return Err(LinkError::Channel(format!(
            "a {len}-byte frame is over MPI's limit of {MAX_MESSAGE_BYTES} bytes per message"
        )));
    }
    Ok(())
}
