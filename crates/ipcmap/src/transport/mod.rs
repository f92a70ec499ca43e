//! Transports: how task and result frames move between the coordinator and its workers, and
//! how workers are started, watched and stopped. The scheduler and the worker loop see only
//! the traits here; each backend is one file and one line of [`REGISTRY`], as ipc-channel's own
//! `platform/` does it. `--transport`, the worker's connect, the checks before a run (the
//! worker executable, open files, which strategies it can carry) and the reports follow from
//! the registry: no module outside this folder names a transport.
//!
//! - [`local`]: real worker processes over ipc-channel (the only module of the library that
//!   names `ipc_channel`);
//! - [`uds`]: the same processes over plain Unix-domain stream sockets, length-prefixed frames
//!   ([`stream`]) read into recycled buffers, raw results straight into place ([`place`]);
//! - [`tcp`]: the same over TCP on loopback, linked after the handshake with a token;
//! - [`pipe`]: the same over a pair of anonymous pipes per worker, inherited at its start;
//! - [`shmq`]: the same over a shared-memory queue each way (memfd rings; only a frame's
//!   place crosses a socketpair);
//! - `mpi` (cargo feature `mpi`): the ranks of an MPI job started by `mpirun` or `srun`, on
//!   one host or many; rank 0 coordinates;
//! - [`memory`]: an in-process fake, the real worker loop on threads over std channels, so
//!   the scheduler's logic (refill, retry, abort, deadlines) is tested without processes. It
//!   is not in the registry: nothing a user runs is in-process.
//!
//! What spawning transports share is here too: the authenticated [`handshake`] and the
//! [`spawned`] pool (a sender and a reader thread per worker, a watchdog on the pids).
//!
//! A frame is plain bytes: the [`crate::protocol`] headers and a strategy's payload, so the
//! codec is what is measured, whatever carries it.

pub mod handshake;
pub mod local;
pub mod memory;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod pipe;
pub mod place;
pub mod shmq;
pub mod spawned;
pub mod spawner;
pub mod stream;
pub mod tcp;
pub mod uds;

/// Every transport, in the order `--transport` lists them (the first is the default): its
/// name, then its value. One line per transport. It makes [`REGISTRY`], and in the tests one
/// `#[test]` per transport and behaviour.
#[macro_export]
macro_rules! for_each_transport {
    ($($then:ident)::+!($($args:tt)*)) => {
        $($then)::+! { [$($args)*]
            local => &local::LocalTransport,
            uds => &uds::UdsTransport,
            tcp => &tcp::TcpTransport,
            pipe => &pipe::PipeTransport,
            shmq => &shmq::ShmqTransport,
            mpi => MPI_TRANSPORT,
        }
    };
}

/// Every transport, in the order `--transport` lists them ([`for_each_transport!`]).
pub static REGISTRY: &[&dyn Transport] = crate::for_each_transport!(registry_slice!());

/// The MPI transport, where this build has it.
#[cfg(feature = "mpi")]
const MPI_TRANSPORT: &dyn Transport = &mpi::MpiTransport;
/// Where this build lacks MPI: an entry that says how to build it.
#[cfg(not(feature = "mpi"))]
const MPI_TRANSPORT: &dyn Transport = &Unbuilt(MPI, MPI_MISSING);

/// How a transport's workers come to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Starts {
    /// This process starts the worker executable (`--worker-bin`), one process per worker.
    Spawned,
    /// A launcher started every rank of a job, this binary included (`mpirun`, `srun`): the
    /// workers are there before the run and outlive it.
    Launched,
}

/// What a transport is and can carry, declared in one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportInfo {
    /// The name on the command line and in reports.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// What its workers are, in a few words ("worker processes", "MPI ranks").
    pub workers: &'static str,
    /// How its workers are started.
    pub starts: Starts,
    /// Its workers are on this host: strategies that share memory with them can run over it.
    pub one_host: bool,
    /// The most bytes one collective call moves, where it has collectives (MPI's Scatterv).
    pub collectives: Option<usize>,
    /// Its links must be used from one thread only (MPI): workers do not read ahead.
    pub one_thread: bool,
    /// It frames its messages itself, so `--frame-bytes` trains apply.
    pub trains: bool,
    /// It reads its frames off a byte stream itself, so a result whose payload is the values'
    /// own bytes can be read straight into its place in the output ([`place`]).
    pub in_place: bool,
    /// Where its workers are not started here (a launcher's ranks, on other hosts), the
    /// spawning transport whose measured costs stand for each worker's end of a link when the
    /// cost model extrapolates across hosts (`predict --link-gbps`).
    pub costed_as: Option<&'static str>,
}

use crate::error::WorkerError;
use crate::error::{LinkError, SpawnError};
use crate::named::registry_slice;
use crate::protocol::Setup;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// What to start and how.
pub struct PoolSpec<'a> {
    /// The worker executable (local processes).
    pub worker_bin: &'a Path,
    /// How many workers.
    pub count: usize,
    /// How long each may take to say hello.
    pub handshake_timeout: Duration,
    /// The descriptors worker `id` inherits (shm's regions, its own pipe's ends); everything
    /// else stays closed.
    pub inherit_fds: &'a dyn Fn(u32) -> Vec<i32>,
    /// Frames bigger than this go as a train of frames of at most this many bytes, where the
    /// transport frames its messages itself (local); 0: whole.
    pub frame_bytes: usize,
    /// Where results may be read straight into the output, for a transport that can
    /// ([`TransportInfo::in_place`]).
    pub places: Option<std::sync::Arc<dyn place::Places>>,
    /// The longest result frame any task of the run can produce, bytes: a worker that
    /// announces a longer one is written off before anything is allocated for it.
    pub max_frame: u64,
}

/// The longest frame a receiver takes, shared with whoever sets it: a kept pool's readers
/// take each run's bound, even in a read begun before the run (`--pool persistent`).
#[derive(Clone, Debug)]
pub struct FrameLimit(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl FrameLimit {
    /// A bound of `bytes`.
    pub fn new(bytes: u64) -> FrameLimit {
        FrameLimit(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(bytes)))
    }

    /// The bound now, bytes.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets the bound for every holder.
    pub fn set(&self, bytes: u64) {
        self.0.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Bytes a frame may carry beyond its values: its header, a codec's framing, a train's
/// announcement.
pub const FRAME_SLACK: u64 = 64 * 1024;

/// A started worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Worker id, 0-based, its index in the pool.
    pub id: u32,
    /// Process id (the coordinator's own for in-process workers).
    pub pid: u32,
    /// When its start began and when it was ready (said hello), ns on `CLOCK_MONOTONIC`;
    /// 0 where the transport did not start it (MPI ranks, in-process workers).
    pub started_at_ns: u64,
    /// See `started_at_ns`.
    pub ready_at_ns: u64,
    /// Its clock minus this process's, ns, where it runs on another host (MPI, measured at
    /// the job's start); its stamps are moved onto this clock by it. 0 on this host.
    pub clock_offset_ns: i64,
}

/// What the coordinator hears from a pool.
#[derive(Debug)]
pub enum Event {
    /// A frame from worker `.0`.
    Frame(usize, Frame),
    /// Worker `.0` closed (or broke) its result channel.
    Closed(usize),
    /// Worker `.0` sent what its link refuses to read (`.1` says what: a frame longer than
    /// any task can produce); nothing more is read from it.
    Refused(usize, String),
    /// Worker `worker` ended; `how` says how ("exited with code 0", "was killed by signal 9
    /// (SIGKILL)") with its last words on stderr where there were any.
    Exited {
        /// Worker id.
        worker: usize,
        /// How it ended.
        how: String,
    },
}

/// A pool's workers, in id order, and what starting them took.
#[derive(Clone, Debug, Default)]
pub struct Started {
    /// The workers.
    pub workers: Vec<WorkerInfo>,
    /// From the first start until the last worker was ready, ns.
    pub spawn_ns: u64,
}

/// The coordinator's side of a started pool of workers. Dropping it stops every worker.
pub trait Pool {
    /// Its workers and their start.
    fn started(&self) -> &Started;
    /// The workers, in id order.
    fn workers(&self) -> &[WorkerInfo] {
        &self.started().workers
    }
    /// From the first start until the last worker was ready, ns.
    fn spawn_ns(&self) -> u64 {
        self.started().spawn_ns
    }
    /// Hands one frame to `worker`'s link; frames to one worker go out in the order handed.
    /// Where the transport sends from threads of its own (local), this returns at once and
    /// never blocks, however full a stopped worker's socket is: the caller's deadlines and
    /// signals keep running. The frame comes back by [`Pool::sent`] once its send ended.
    /// An error means the worker is gone or broken.
    fn send(&mut self, worker: usize, frame: Vec<u8>) -> Result<(), LinkError>;
    /// A frame whose send has ended, with how it went and when it ran; its buffer can carry
    /// the next frame (its pages are faulted in already).
    fn sent(&mut self) -> Option<Sent>;
    /// The next event, or `None` when `timeout` passed without one (or no event can come).
    fn next_event(&mut self, timeout: Duration) -> Option<Event>;
    /// Closes `worker`'s task channel: it finishes, sends its stats and ends.
    fn close(&mut self, worker: usize);
    /// Stops `worker` at once, whatever it is doing.
    fn kill(&mut self, worker: usize);
    /// Waits up to `grace` for `worker` to end, then stops it; says how it ended.
    fn reap(&mut self, worker: usize, grace: Duration) -> String;
    /// The gist of what `worker` wrote on stderr, if captured and not empty.
    fn last_words(&self, worker: usize) -> Option<String>;
    /// Where `worker` runs, where the transport knows: its MPI rank and host.
    fn placement(&self, _worker: usize) -> Option<(u32, String)> {
        None
    }
    /// It can serve another run once this one ends ([`Pool::end_run`], [`Pool::next_run`]):
    /// `--pool persistent`. False by default: a pool that is one run's conversation (MPI's
    /// ranks live on anyway) or a transport that cannot hand its readers a new output.
    fn keeps(&self) -> bool {
        false
    }
    /// Ends `worker`'s run but not its life: it sends its stats for the run and waits for the
    /// next run's setup. By default it closes (a pool that does not keep).
    fn end_run(&mut self, worker: usize) {
        self.close(worker);
    }
    /// Begins another run on a kept pool: `setups[w]` (a setup frame) to each worker, results
    /// read into `places` and refused above `max_frame`
    /// bytes from now on. `Err` says why the pool cannot serve it (a worker ended
    /// or spoke between runs): it is then ended and a new one started.
    fn next_run(
        &mut self,
        _setups: Vec<Vec<u8>>,
        _places: Option<std::sync::Arc<dyn place::Places>>,
        _max_frame: u64,
    ) -> Result<(), String> {
        Err("this pool serves one run".into())
    }
    /// Sends frame i (bytes `lens[..i].sum()..` of `frames`) to worker i, every worker in one
    /// collective call, without blocking (the frames are the transport's until it completes), where the transport has collectives (MPI's Scatterv); each worker's
    /// next result then comes back by the matching gather.
    fn scatter(&mut self, _frames: Vec<u8>, _lens: &[usize]) -> Result<(), LinkError> {
        Err(LinkError::Channel("this transport has no collectives".into()))
    }
}

/// Worker `worker`'s queue among `senders`, while it is open; a closed or unknown one is
/// [`LinkError::Closed`].
pub(crate) fn open_queue<T>(senders: &[Option<T>], worker: usize) -> Result<&T, LinkError> {
    senders.get(worker).and_then(Option::as_ref).ok_or(LinkError::Closed)
}

/// A frame whose send has ended.
#[derive(Debug)]
pub struct Sent {
    /// The worker it went to.
    pub worker: usize,
    /// The frame, for reuse.
    pub frame: Vec<u8>,
    /// How the send went.
    pub result: Result<(), LinkError>,
    /// When it started and ended, ns on `CLOCK_MONOTONIC`.
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// It was sent from a thread of the transport's own, not the caller's.
    pub threaded: bool,
}

/// Sends made on the caller's thread, queued for [`Pool::sent`]: for transports whose links
/// are used from one thread (MPI) or that cannot block (in-process).
#[derive(Debug, Default)]
pub struct SentQueue(std::collections::VecDeque<Sent>);

impl SentQueue {
    /// Runs `send` over `frame` now, timing it, and queues the outcome; returns a copy of
    /// the error, if any, for the caller.
    pub fn send_now(
        &mut self,
        worker: usize,
        frame: Vec<u8>,
        send: impl FnOnce(&[u8]) -> Result<(), LinkError>,
    ) -> Result<(), LinkError> {
        let start_ns = crate::trace::now_ns();
        let result = send(&frame);
        let end_ns = crate::trace::now_ns();
        let copy = match &result {
            Ok(()) => Ok(()),
            Err(e) => Err(LinkError::Channel(e.to_string())),
        };
        self.0.push_back(Sent { worker, frame, result, start_ns, end_ns, threaded: false });
        copy
    }

    /// The oldest finished send.
    pub fn pop(&mut self) -> Option<Sent> {
        self.0.pop_front()
    }
}

/// What makes worker `id`'s [`Setup`] frame.
pub type MakeSetup<'a> = dyn Fn(u32) -> Setup + 'a;

/// A started pool, or why it could not start.
pub type PoolResult = Result<Box<dyn Pool>, SpawnError>;

/// A way of starting pools, and the worker's way of joining one.
pub trait Transport: Sync {
    /// What it is and can carry.
    fn info(&self) -> TransportInfo;
    /// Whether this build has it; `Err` says how to get a build that does.
    fn built(&self) -> Result<(), String> {
        Ok(())
    }
    /// Starts `spec.count` workers, completes each handshake and sends each the [`Setup`]
    /// frame `setup(id)` makes. On any failure every started worker is stopped.
    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult;
    /// The worker's half: joins the pool whose coordinator said `hello` on the worker's
    /// command line (`--connect`), as worker `worker` speaking `protocol`.
    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let _ = (hello, protocol);
        Err(WorkerError::Usage(format!(
            "worker {worker}: the {} transport has no worker executable to connect",
            self.info().name
        )))
    }
    /// Open files the coordinator needs for a pool of `workers` (0 where it opens none).
    fn files_needed(&self, _workers: usize) -> u64 {
        0
    }
    /// The job its workers run in, for the report, where there is one (an MPI job).
    fn job(&self) -> Option<crate::report::MpiJob> {
        None
    }
    /// When its workers are started once per job rather than per pool (a launcher), what
    /// starting them took, ns: the probe reports it as its start time.
    fn init_ns(&self) -> Option<u64> {
        None
    }
    /// Its links must be used from one thread only (MPI): workers do not read ahead.
    fn one_thread(&self) -> bool {
        self.info().one_thread
    }
}

impl TransportInfo {
    /// A transport whose workers this process spawns on this host, with no collectives, its
    /// links usable from any thread, sending its frames whole.
    pub const fn spawned(name: &'static str, about: &'static str) -> TransportInfo {
        TransportInfo {
            name,
            about,
            workers: "worker processes",
            starts: Starts::Spawned,
            one_host: true,
            collectives: None,
            one_thread: false,
            trains: false,
            in_place: false,
            costed_as: None,
        }
    }

    /// It reads a result's values straight into their place in the output ([`place`]).
    pub const fn with_in_place(self) -> TransportInfo {
        TransportInfo { in_place: true, ..self }
    }

    /// How a result's payload reaches the output over it, for a strategy whose frames carry
    /// its payload, where the payload is the values' own bytes (`own_bytes`) or not.
    pub fn payload_path(&self, own_bytes: bool) -> &'static str {
        match (self.in_place, own_bytes) {
            (true, true) => "received in place",
            (true, false) => "read into a recycled buffer, then decoded",
            (false, _) => "copied from a library buffer, then decoded",
        }
    }

    /// It frames its messages itself, so `--frame-bytes` trains apply.
    pub const fn with_trains(self) -> TransportInfo {
        TransportInfo { trains: true, ..self }
    }
}

/// A transport, as settings and reports name it: a handle on a [`REGISTRY`] entry.
#[derive(Clone, Copy)]
pub struct TransportKind(&'static dyn Transport);

impl TransportKind {
    /// Every transport, in registry order.
    pub fn all() -> impl Iterator<Item = TransportKind> {
        REGISTRY.iter().map(|&t| TransportKind(t))
    }

    /// The transport called `name`.
    pub fn named(name: &str) -> Option<TransportKind> {
        TransportKind::all().find(|t| t.name() == name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.0.info().name
    }

    /// What it is and can carry.
    pub fn info(self) -> TransportInfo {
        self.0.info()
    }

    /// The spawning transport whose costs stand for its workers' ends of a link between hosts
    /// ([`TransportInfo::costed_as`]), where it names one this build has.
    pub fn costed_as(self) -> Option<TransportKind> {
        self.info().costed_as.and_then(TransportKind::named)
    }

    /// The transport, where this build has it; `Err` says how to get one that does.
    pub fn transport(self) -> Result<&'static dyn Transport, SpawnError> {
        let name = self.name();
        self.0.built().map_err(|why| SpawnError::Unbuilt { name, why })?;
        Ok(self.0)
    }

    /// It spawns worker processes from the worker executable.
    pub fn spawns(self) -> bool {
        self.info().starts == Starts::Spawned
    }

    /// Its workers are started by a launcher, this binary being every rank.
    pub fn launched(self) -> bool {
        self.info().starts == Starts::Launched
    }
}

impl Default for TransportKind {
    fn default() -> Self {
        TransportKind(REGISTRY[0])
    }
}

by_name!(TransportKind);

/// A transport this build leaves out (its cargo feature is off): listed, so that asking for it
/// says how to get a build that has it.
#[cfg_attr(feature = "mpi", allow(dead_code))]
struct Unbuilt(TransportInfo, &'static str);

impl Transport for Unbuilt {
    fn info(&self) -> TransportInfo {
        self.0
    }

    fn built(&self) -> Result<(), String> {
        Err(self.1.into())
    }

    fn start(&self, _: &PoolSpec<'_>, _: &MakeSetup<'_>) -> PoolResult {
        Err(SpawnError::Unbuilt { name: self.0.name, why: self.1.into() })
    }
}

/// The MPI transport, as every build lists it.
pub const MPI: TransportInfo = TransportInfo {
    name: "mpi",
    about: "the ranks of an MPI job (under mpirun -np N: rank 0 coordinates; a build with --features mpi)",
    workers: "MPI ranks",
    starts: Starts::Launched,
    one_host: false,
    // Collectives' counts and offsets are C ints.
    collectives: Some(i32::MAX as usize),
    one_thread: true,
    trains: false,
    in_place: false,
    // Open MPI between hosts runs over TCP.
    costed_as: Some("tcp"),
};

/// Why `--transport mpi` cannot run in a build without the `mpi` feature.
pub const MPI_MISSING: &str = "this coordinator was built without MPI: build it with \
`cargo build --release -p coordinator --features mpi` (needs Open MPI and libclang)";

/// A received frame: its bytes in a buffer lent by its transport, which goes back to the
/// transport's free list when dropped (iceoryx2's loaned samples are the model), so a steady
/// run allocates nothing per frame where the transport reads into buffers.
pub struct Frame {
    bytes: Vec<u8>,
    home: Option<mpsc::Sender<Vec<u8>>>,
    placed: u64,
}

impl Frame {
    /// A frame of its own bytes, going nowhere when dropped.
    pub fn owned(bytes: Vec<u8>) -> Frame {
        Frame { bytes, home: None, placed: 0 }
    }

    /// A frame lent from a free list that `home` feeds.
    pub fn lent(bytes: Vec<u8>, home: mpsc::Sender<Vec<u8>>) -> Frame {
        Frame { bytes, home: Some(home), placed: 0 }
    }

    /// The same frame, whose payload's `bytes` were read straight into the output.
    pub fn with_placed(mut self, bytes: u64) -> Frame {
        self.placed = bytes;
        self
    }

    /// Payload bytes read straight into the output ([`place`]): they crossed, but are not
    /// in this buffer, which holds the rest (its headers); 0 where the frame is whole here.
    pub fn placed(&self) -> u64 {
        self.placed
    }

    /// Every byte of the frame that crossed: its buffer and what was placed.
    pub fn crossed(&self) -> u64 {
        self.bytes.len() as u64 + self.placed
    }
}

impl std::ops::Deref for Frame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let _ = home.send(std::mem::take(&mut self.bytes));
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({} bytes)", self.bytes.len())
    }
}

/// The worker's receiving side: task frames in order, `None` once the coordinator closed it.
pub trait Inbox: Send {
    /// The next frame.
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError>;
    /// The next frame into `frame`, a buffer the caller lends (its capacity reused where the
    /// transport can read into a buffer); `Ok(false)` once the coordinator closed the inbox.
    fn recv_into(&mut self, frame: &mut Vec<u8>) -> Result<bool, LinkError> {
        match self.recv()? {
            Some(got) => {
                *frame = got;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// A worker's two ends, as a transport connects them.
pub type WorkerEnds = (Box<dyn Inbox>, Box<dyn Outbox>);

/// The worker's sending side: result frames.
pub trait Outbox {
    /// Sends one frame.
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError>;
    /// From now on, sends frames bigger than `bytes` as trains (the setup's `frame_bytes`),
    /// where the transport frames its messages itself; 0: whole.
    fn set_frame_bytes(&mut self, _bytes: usize) {}
}
