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

/// This worker's part of the coordinator's `MPI_Iscatterv`, `len` bytes.
fn scatter_receive(len: usize) -> Result<Vec<u8>, LinkError> {
    let mut buf = vec![0u8; len];
    let count =
        c_int::try_from(len).map_err(|_| LinkError::Channel(format!("a {len}-byte part")))?;
    // SAFETY: `buf` outlives the request, which is waited for before it is returned; the
    // send arguments are ignored on a rank that is not the root.
    unsafe {
        let mut request = iscatterv(
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
            buf.as_mut_ptr(),
            count,
        )?;
        wait(&mut request);
    }
    Ok(buf)
}

/// Sends this worker's result into the coordinator's `MPI_Igatherv`.
fn gather_send(frame: &[u8]) -> Result<(), LinkError> {
    let count = c_int::try_from(frame.len())
        .map_err(|_| LinkError::Channel(format!("a {}-byte result", frame.len())))?;
    // SAFETY: `frame` outlives the request, which is waited for here; the receive arguments
    // are ignored on a rank that is not the root.
    unsafe {
        let mut request = igatherv(
            frame.as_ptr(),
            count,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )?;
        wait(&mut request);
    }
    Ok(())
}

/// Collectives are non-blocking on every rank (a non-blocking collective never matches a
/// blocking one): rank 0 polls its request with everything else, so a stopped rank costs a
/// deadline, never a hang in `MPI_Scatterv`; a worker waits on its own.
///
/// # Safety
/// The buffers and count arrays must stay valid until the request completes.
unsafe fn iscatterv(
    send: *const u8,
    counts: *const c_int,
    displs: *const c_int,
    recv: *mut u8,
    recv_count: c_int,
) -> Result<ffi::MPI_Request, LinkError> {
    let mut request: ffi::MPI_Request = std::mem::zeroed();
    let rc = ffi::MPI_Iscatterv(
        send as *const c_void,
        counts,
        displs,
        ffi::RSMPI_UINT8_T,
        recv as *mut c_void,
        recv_count,
        ffi::RSMPI_UINT8_T,
        0,
        SimpleCommunicator::world().as_raw(),
        &mut request,
    );
    started("MPI_Iscatterv", rc, request)
}

/// See [`iscatterv`].
///
/// # Safety
/// The buffers and count arrays must stay valid until the request completes.
unsafe fn igatherv(
    send: *const u8,
    send_count: c_int,
    recv: *mut u8,
    counts: *const c_int,
    displs: *const c_int,
) -> Result<ffi::MPI_Request, LinkError> {
    let mut request: ffi::MPI_Request = std::mem::zeroed();
    let rc = ffi::MPI_Igatherv(
        send as *const c_void,
        send_count,
        ffi::RSMPI_UINT8_T,
        recv as *mut c_void,
        counts,
        displs,
        ffi::RSMPI_UINT8_T,
        0,
        SimpleCommunicator::world().as_raw(),
        &mut request,
    );
    started("MPI_Igatherv", rc, request)
}

/// The request of a non-blocking `call` that returned `rc`.
fn started(
    call: &str,
    rc: c_int,
    request: ffi::MPI_Request,
) -> Result<ffi::MPI_Request, LinkError> {
    match rc {
        0 => Ok(request),
        rc => Err(LinkError::Channel(format!("{call} returned {rc}"))),
    }
}

/// Starts receiving the matched message `msg` (`len` bytes) into a buffer of its own, so a
/// message whose first piece has arrived never blocks the caller for the rest: a link that
/// dies mid-message leaves the request pending, and the deadline and signals keep running.
fn imrecv(mut msg: Message, len: usize) -> Result<(Vec<u8>, ffi::MPI_Request), LinkError> {
    let count =
        c_int::try_from(len).map_err(|_| LinkError::Channel(format!("a {len}-byte message")))?;
    let mut buf = vec![0u8; len];
    // SAFETY: `buf` is `len` bytes and outlives the request (kept beside it until it
    // completes, or leaked); MPI sets `msg` to MPI_MESSAGE_NULL, so its drop is clean.
    unsafe {
        let mut request: ffi::MPI_Request = std::mem::zeroed();
        let rc = ffi::MPI_Imrecv(
            buf.as_mut_ptr() as *mut c_void,
            count,
            ffi::RSMPI_UINT8_T,
            msg.as_raw_mut(),
            &mut request,
        );
        started("MPI_Imrecv", rc, request).map(|request| (buf, request))
    }
}

/// Whether `request` has completed.
///
/// # Safety
/// `request` came from a non-blocking call and has not completed before.
unsafe fn test(request: &mut ffi::MPI_Request) -> bool {
    let mut flag: c_int = 0;
    ffi::MPI_Test(request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
    flag != 0
}

/// Waits for `request` to complete.
///
/// # Safety
/// As [`test`].
unsafe fn wait(request: &mut ffi::MPI_Request) {
    ffi::MPI_Wait(request, ffi::RSMPI_STATUS_IGNORE);
}

/// Each part's byte offset, checked: MPI's displacements are C ints, so the parts of one
/// collective may hold at most 2 GiB in all.
fn displacements(counts: &[c_int]) -> Result<Vec<c_int>, LinkError> {
    let mut at: c_int = 0;
    counts
        .iter()
        .map(|&c| {
            let d = at;
            at = at.checked_add(c).ok_or_else(|| {
                LinkError::Channel(format!(
                    "a collective of more than {MAX_MESSAGE_BYTES} bytes in all: MPI counts its offsets in C ints"
                ))
            })?;
            Ok(d)
        })
        .collect()
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

/// The worker ranks of `MPI_COMM_WORLD`, reached from rank 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct MpiTransport;

impl Transport for MpiTransport {
    fn info(&self) -> TransportInfo {
        super::MPI
    }

    fn job(&self) -> Option<crate::report::MpiJob> {
        let world = world()?;
        let mut hosts = vec![world.host.clone()];
        for w in &world.workers {
            if !hosts.contains(&w.host) {
                hosts.push(w.host.clone());
            }
        }
        Some(crate::report::MpiJob {
            library: world.library.clone(),
            ranks: world.workers.len() + 1,
            hosts,
            init_ms: crate::report::ms(world.init_ns),
            clock_offsets_us: world
                .workers
                .iter()
                .map(|w| w.clock.offset_ns as f64 / 1e3)
                .collect(),
            clock_uncertainty_us: world
                .workers
                .iter()
                .map(|w| w.clock.uncertainty_ns as f64 / 1e3)
                .collect(),
        })
    }

    fn init_ns(&self) -> Option<u64> {
        world().map(|w| w.init_ns)
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        let started = Instant::now();
        let mpi_world = world().ok_or_else(|| SpawnError::Mpi("MPI is not initialised".into()))?;
        if !CLEAN.load(Ordering::SeqCst) {
            let stuck = STUCK.lock().map(|s| s.clone()).unwrap_or_default();
            let (was, is) = if stuck.contains(", ") { ("were", "are") } else { ("was", "is") };
            return Err(SpawnError::Mpi(format!(
                "{stuck} {was} written off in an earlier run (hung, stopped or cut off) and {is} \
                 still busy, and MPI cannot stop one rank: the job ends here"
            )));
        }
        if spec.count > mpi_world.workers.len() {
            return Err(SpawnError::Mpi(format!(
                "{} workers asked for, but the job has {} worker ranks",
                spec.count,
                mpi_world.workers.len()
            )));
        }
        let ranks = mpi_world.workers[..spec.count].to_vec();
        let comm = SimpleCommunicator::world();
        for (w, r) in ranks.iter().enumerate() {
            let frame = setup(w as u32).to_frame();
            check_size(frame.len()).map_err(|e| SpawnError::Mpi(e.to_string()))?;
            comm.process_at_rank(r.rank as i32).send_with_tag(&frame[..], TAG_TASK);
        }
        CLEAN.store(false, Ordering::SeqCst);
        Ok(Box::new(MpiPool {
            started: Started {
                workers: (0..spec.count)
                    .map(|w| WorkerInfo {
                        id: w as u32,
                        pid: ranks[w].pid,
                        started_at_ns: 0,
                        ready_at_ns: 0,
                        clock_offset_ns: ranks[w].clock.offset_ns,
                    })
                    .collect(),
                spawn_ns: started.elapsed().as_nanos() as u64,
            },
            ranks,
            done: vec![false; spec.count],
            closed: vec![false; spec.count],
            events: VecDeque::new(),
            gather: vec![None; spec.count],
            sends: Vec::new(),
            spare: Default::default(),
            collectives: Vec::new(),
            receiving: Vec::new(),
        }))
    }
}

/// A task frame on its way: the staging buffer must live until the send completes.
struct InFlight {
    worker: usize,
    buf: Vec<u8>,
    request: ffi::MPI_Request,
    start_ns: u64,
}

/// One run's conversation with the worker ranks.
struct MpiPool {
    started: Started,
    ranks: Vec<RankInfo>,
    done: Vec<bool>,
    closed: Vec<bool>,
    events: VecDeque<Event>,
    /// Announced lengths of the results coming by `MPI_Gatherv`.
    gather: Vec<Option<usize>>,
    sends: Vec<InFlight>,
    /// Staging buffers whose sends completed, for reuse.
    /// Sends that completed, for [`Pool::sent`].
    spare: std::collections::VecDeque<Sent>,
    /// Non-blocking collectives in flight, polled with everything else.
    collectives: Vec<Collective>,
    /// Matched messages still arriving (`MPI_Imrecv`), polled with everything else.
    receiving: Vec<Receiving>,
}

/// A matched message being received: its buffer must live until the request completes.
struct Receiving {
    request: ffi::MPI_Request,
    buf: Vec<u8>,
    source: i32,
    tag: i32,
}

/// A non-blocking collective in flight: its buffer and count arrays must live until it
/// completes.
struct Collective {
    request: ffi::MPI_Request,
    buf: Vec<u8>,
    counts: Vec<c_int>,
    displs: Vec<c_int>,
    /// A gather (its results become frames), else a scatter.
    gather: bool,
}

impl MpiPool {
    /// The worker behind `source`, a rank of this pool.
    fn worker_of(&self, source: i32) -> Option<usize> {
        self.ranks.iter().position(|r| r.rank as i32 == source)
    }

    /// Retires completed sends, keeping their buffers.
    fn progress_sends(&mut self) {
        let mut i = 0;
        while i < self.sends.len() {
            let mut flag: c_int = 0;
            // SAFETY: the request came from MPI_Isend and has not completed yet.
            unsafe {
                ffi::MPI_Test(&mut self.sends[i].request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
            if flag != 0 {
                let done = self.sends.swap_remove(i);
                self.spare.push_back(Sent {
                    worker: done.worker,
                    frame: done.buf,
                    result: Ok(()),
                    start_ns: done.start_ns,
                    end_ns: crate::trace::now_ns(),
                    threaded: false,
                });
            } else {
                i += 1;
            }
        }
    }

    /// Starts receiving one matched message; it becomes events once whole
    /// ([`MpiPool::progress_receives`]).
    fn take(&mut self, msg: Message, status: Status) {
        let (source, tag) = (status.source_rank(), status.tag());
        let len = status.count(u8::equivalent_datatype()).max(0) as usize;
        match imrecv(msg, len) {
            Ok((buf, request)) => self.receiving.push(Receiving { request, buf, source, tag }),
            Err(e) => {
                if let Some(worker) = self.worker_of(source) {
                    self.events.push_back(Event::Exited { worker, how: e.to_string() });
                }
            }
        }
    }

    /// Completes the receives that can complete. A rank's messages become events in the order
    /// they were matched: one that completes behind an earlier one still arriving (a done
    /// behind a big result) waits for it.
    fn progress_receives(&mut self) -> bool {
        let mut any = false;
        let mut waiting: Vec<i32> = Vec::new();
        let mut i = 0;
        while i < self.receiving.len() {
            let source = self.receiving[i].source;
            // SAFETY: the request came from MPI_Imrecv and has not completed yet.
            if waiting.contains(&source) || !unsafe { test(&mut self.receiving[i].request) } {
                waiting.push(source);
                i += 1;
                continue;
            }
            let done = self.receiving.remove(i);
            self.message(done.source, done.tag, done.buf);
            any = true;
        }
        any
    }

    /// One whole message from `source`, turned into events.
    fn message(&mut self, source: i32, tag: i32, bytes: Vec<u8>) {
        let Some(w) = self.worker_of(source) else {
            return; // a rank outside this pool has nothing to say
        };
        match tag {
            TAG_RESULT => self.events.push_back(Event::Frame(w, Frame::owned(bytes))),
            TAG_DONE => {
                self.done[w] = true;
                self.events.push_back(Event::Closed(w));
            }
            TAG_FAILED => self.events.push_back(Event::Exited {
                worker: w,
                how: format!(
                    "failed on rank {}: {}",
                    self.ranks[w].rank,
                    String::from_utf8_lossy(&bytes)
                ),
            }),
            TAG_GATHER => {
                self.gather[w] = length_of(&bytes);
                if self.gather.iter().all(Option::is_some) {
                    self.gatherv();
                }
            }
            tag => self.events.push_back(Event::Exited {
                worker: w,
                how: format!("sent an MPI message with tag {tag}"),
            }),
        }
    }

    /// Joins the `MPI_Igatherv` every worker announced; its results become frame events
    /// once it completes ([`MpiPool::progress_collectives`]).
    fn gatherv(&mut self) {
        let size = SimpleCommunicator::world().size() as usize;
        let mut counts = vec![0 as c_int; size];
        for (w, r) in self.ranks.iter().enumerate() {
            counts[r.rank as usize] = self.gather[w].take().unwrap_or(0) as c_int;
        }
        let failed = |how: String| Event::Exited { worker: 0, how };
        let displs = match displacements(&counts) {
            Ok(displs) => displs,
            Err(e) => return self.events.push_back(failed(e.to_string())),
        };
        let total = counts.iter().map(|&c| c as usize).sum();
        let mut buf = vec![0u8; total];
        // SAFETY: `buf`, `counts` and `displs` move into `self.collectives` with the request
        // and stay there (or are leaked) until it completes; rank 0 sends 0 bytes.
        let request = unsafe {
            igatherv([0u8; 0].as_ptr(), 0, buf.as_mut_ptr(), counts.as_ptr(), displs.as_ptr())
        };
        match request {
            Ok(request) => {
                self.collectives.push(Collective { request, buf, counts, displs, gather: true })
            }
            Err(e) => self.events.push_back(failed(e.to_string())),
        }
    }

    /// Completes the collectives in flight that can complete; a gather's results become
    /// frame events.
    fn progress_collectives(&mut self) {
        let mut i = 0;
        while i < self.collectives.len() {
            // SAFETY: the request came from a non-blocking collective and is not complete.
            if !unsafe { test(&mut self.collectives[i].request) } {
                i += 1;
                continue;
            }
            let done = self.collectives.swap_remove(i);
            if done.gather {
                for (w, r) in self.ranks.iter().enumerate() {
                    let (at, len) = (
                        done.displs[r.rank as usize] as usize,
                        done.counts[r.rank as usize] as usize,
                    );
                    self.events
                        .push_back(Event::Frame(w, Frame::owned(done.buf[at..at + len].to_vec())));
                }
            }
        }
    }

    /// Polls once; true if a message was taken or completed.
    fn poll(&mut self) -> bool {
        self.progress_sends();
        self.progress_collectives();
        let comm = SimpleCommunicator::world();
        let matched = match comm.any_process().immediate_matched_probe() {
            Some((msg, status)) => {
                self.take(msg, status);
                true
            }
            None => false,
        };
        self.progress_receives() || matched
    }
}

impl Pool for MpiPool {
    fn started(&self) -> &Started {
        &self.started
    }

    fn send(&mut self, worker: usize, frame: Vec<u8>) -> Result<(), LinkError> {
        check_size(frame.len())?;
        let rank = self.ranks.get(worker).ok_or(LinkError::Closed)?.rank as c_int;
        if self.closed[worker] {
            return Err(LinkError::Closed);
        }
        self.progress_sends();
        let (buf, start_ns) = (frame, crate::trace::now_ns());
        let mut request: ffi::MPI_Request = unsafe { std::mem::zeroed() };
        // SAFETY: `buf` stays alive (in `self.sends`, or leaked) until the request completes.
        let rc = unsafe {
            ffi::MPI_Isend(
                buf.as_ptr() as *const c_void,
                buf.len() as c_int,
                ffi::RSMPI_UINT8_T,
                rank,
                TAG_TASK,
                SimpleCommunicator::world().as_raw(),
                &mut request,
            )
        };
        if rc != 0 {
            return Err(LinkError::Channel(format!("MPI_Isend returned {rc}")));
        }
        self.sends.push(InFlight { worker, buf, request, start_ns });
        Ok(())
    }

    fn sent(&mut self) -> Option<Sent> {
        self.progress_sends();
        self.spare.pop_front()
    }

    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        let mut idle = 0u32;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.poll() {
                idle = 0;
                continue;
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Spin briefly (a result is usually microseconds away), then back off.
            idle += 1;
            if idle < 2_000 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    fn close(&mut self, worker: usize) {
        if let (Some(r), Some(false)) = (self.ranks.get(worker), self.closed.get(worker)) {
            self.closed[worker] = true;
            SimpleCommunicator::world()
                .process_at_rank(r.rank as i32)
                .send_with_tag(&[0u8; 0][..], TAG_CLOSE);
        }
    }

    /// MPI cannot stop one rank: it is closed and left to finish; if it never does, the job
    /// ends with `MPI_Abort`.
    fn kill(&mut self, worker: usize) {
        self.close(worker);
    }

    fn reap(&mut self, worker: usize, grace: Duration) -> String {
        let deadline = Instant::now() + grace;
        while !self.done[worker] && Instant::now() < deadline {
            if !self.poll() {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let r = &self.ranks[worker];
        match self.done[worker] {
            true => format!("finished (rank {} on {})", r.rank, r.host),
            false => format!(
                "still busy (rank {} on {}); MPI cannot stop one rank, so the job will be aborted",
                r.rank, r.host
            ),
        }
    }

    fn last_words(&self, _worker: usize) -> Option<String> {
        None // a rank's stderr goes to the launcher's terminal
    }

    fn placement(&self, worker: usize) -> Option<(u32, String)> {
        let r = self.ranks.get(worker)?;
        Some((r.rank, r.host.clone()))
    }

    fn scatter(&mut self, frames: Vec<u8>, lens: &[usize]) -> Result<(), LinkError> {
        let comm = SimpleCommunicator::world();
        if lens.len() != self.ranks.len() || self.ranks.len() + 1 != comm.size() as usize {
            return Err(LinkError::Channel(format!(
                "a collective needs every rank: {} parts for {} worker ranks",
                lens.len(),
                comm.size() - 1
            )));
        }
        let mut counts = vec![0 as c_int; comm.size() as usize];
        for (r, &len) in self.ranks.iter().zip(lens) {
            check_size(len)?;
            counts[r.rank as usize] = len as c_int;
        }
        let displs = displacements(&counts)?;
        for (r, &len) in self.ranks.iter().zip(lens) {
            comm.process_at_rank(r.rank as i32)
                .send_with_tag(&(len as u64).to_le_bytes()[..], TAG_SCATTER);
        }
        let mut own = Vec::new();
        // SAFETY: `frames`, `counts` and `displs` move into `self.collectives` with the request
        // and stay there (or are leaked) until it completes; `own` receives 0 bytes.
        let request = unsafe {
            iscatterv(frames.as_ptr(), counts.as_ptr(), displs.as_ptr(), own.as_mut_ptr(), 0)
        }?;
        self.collectives.push(Collective { request, buf: frames, counts, displs, gather: false });
        Ok(())
    }
}

impl Drop for MpiPool {
    /// Sends still in flight are waited for briefly, then given up (their buffers leaked,
    /// since MPI may still read them); the job is clean only if every worker said done.
    fn drop(&mut self) {
        // After a stop was asked for, the launcher kills every rank a second after its
        // SIGTERM: no waiting then, so this rank's line and clean-up come first.
        let wait = match crate::interrupt::requested() {
            Some(_) => Duration::ZERO,
            None => Duration::from_secs(1),
        };
        let until = Instant::now() + wait;
        while !self.sends.is_empty() && Instant::now() < until {
            self.progress_sends();
        }
        for stuck in self.sends.drain(..) {
            std::mem::forget(stuck.buf);
        }
        self.progress_collectives();
        for stuck in self.collectives.drain(..) {
            std::mem::forget((stuck.buf, stuck.counts, stuck.displs));
        }
        self.progress_receives();
        for stuck in self.receiving.drain(..) {
            std::mem::forget(stuck.buf); // MPI may still write into it
        }
        let stuck: Vec<String> = (self.ranks.iter().zip(&self.done).enumerate())
            .filter(|(_, (_, &done))| !done)
            .map(|(w, (r, _))| format!("worker {w} (rank {} on {})", r.rank, r.host))
            .collect();
        if let Ok(mut named) = STUCK.lock() {
            *named = stuck.join(", ");
        }
        CLEAN.store(stuck.is_empty(), Ordering::SeqCst);
    }
}
