//! Transports: how task and result frames move between the coordinator and its workers, and
//! how workers are started, watched and stopped. The scheduler and the worker loop see only
//! the traits here; each backend is one file, as ipc-channel's own `platform/` does it.
//!
//! - [`local`]: real worker processes started with posix_spawn, over ipc-channel (the only
//!   module of the library that names `ipc_channel`), with a watchdog on their pids;
//! - `mpi` (cargo feature `mpi`): the ranks of an MPI job started by `mpirun` or `srun`, on
//!   one host or many; rank 0 coordinates;
//! - [`memory`]: an in-process fake, the real worker loop on threads over std channels, so
//!   the scheduler's logic (refill, retry, abort, deadlines) is tested without processes.
//!
//! A frame is plain bytes: the [`crate::protocol`] headers and a strategy's payload, so the
//! codec is what is measured, whatever carries it.

pub mod local;
pub mod memory;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod spawner;

use crate::error::{LinkError, SpawnError};
use crate::protocol::Setup;
use crate::settings::TransportKind;
use std::path::Path;
use std::time::Duration;

/// What to start and how.
pub struct PoolSpec<'a> {
    /// The worker executable (local processes).
    pub worker_bin: &'a Path,
    /// How many workers.
    pub count: usize,
    /// How long each may take to say hello.
    pub handshake_timeout: Duration,
    /// Descriptors the workers inherit (shm mode's regions); everything else stays closed.
    pub inherit_fds: &'a [i32],
    /// Frames bigger than this go as a train of frames of at most this many bytes, where the
    /// transport frames its messages itself (local); 0: whole.
    pub frame_bytes: usize,
}

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
}

/// What the coordinator hears from a pool.
#[derive(Debug)]
pub enum Event {
    /// A frame from worker `.0`.
    Frame(usize, Vec<u8>),
    /// Worker `.0` closed (or broke) its result channel.
    Closed(usize),
    /// Worker `worker` ended; `how` says how ("exited with code 0", "was killed by signal 9
    /// (SIGKILL)") with its last words on stderr where there were any.
    Exited {
        /// Worker id.
        worker: usize,
        /// How it ended.
        how: String,
    },
}

/// The coordinator's side of a started pool of workers. Dropping it stops every worker.
pub trait Pool {
    /// The workers, in id order.
    fn workers(&self) -> &[WorkerInfo];
    /// From the first start until the last worker was ready, ns.
    fn spawn_ns(&self) -> u64;
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
    /// Sends frame i (bytes `lens[..i].sum()..` of `frames`) to worker i, every worker in one
    /// collective call, without blocking (the frames are the transport's until it completes), where the transport has collectives (MPI's Scatterv); each worker's
    /// next result then comes back by the matching gather.
    fn scatter(&mut self, _frames: Vec<u8>, _lens: &[usize]) -> Result<(), LinkError> {
        Err(LinkError::Channel(
            "this transport has no collectives".into(),
        ))
    }
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
        self.0.push_back(Sent {
            worker,
            frame,
            result,
            start_ns,
            end_ns,
            threaded: false,
        });
        copy
    }

    /// The oldest finished send.
    pub fn pop(&mut self) -> Option<Sent> {
        self.0.pop_front()
    }
}

/// A way of starting pools.
pub trait Transport {
    /// Starts `spec.count` workers, completes each handshake and sends each the [`Setup`]
    /// frame `setup(id)` makes. On any failure every started worker is stopped.
    fn start(
        &self,
        spec: &PoolSpec<'_>,
        setup: &dyn Fn(u32) -> Setup,
    ) -> Result<Box<dyn Pool>, SpawnError>;
    /// Its links must be used from one thread only (MPI): workers do not read ahead.
    fn one_thread(&self) -> bool {
        false
    }
}

/// The transport of `kind`: `Err` says why it is not in this build.
pub fn of_kind(kind: TransportKind) -> Result<&'static dyn Transport, SpawnError> {
    match kind {
        TransportKind::Local => Ok(&local::LocalTransport),
        #[cfg(feature = "mpi")]
        TransportKind::Mpi => Ok(&mpi::MpiTransport),
        #[cfg(not(feature = "mpi"))]
        TransportKind::Mpi => Err(SpawnError::Mpi(MPI_MISSING.into())),
    }
}

/// The MPI job the reports ran in, under `--transport mpi`.
pub fn job(transport: crate::settings::TransportKind) -> Option<crate::report::MpiJob> {
    if transport != crate::settings::TransportKind::Mpi {
        return None;
    }
    #[cfg(feature = "mpi")]
    {
        let world = mpi::world()?;
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
        })
    }
    #[cfg(not(feature = "mpi"))]
    None
}

/// Why `--transport mpi` cannot run in a build without the `mpi` feature.
pub const MPI_MISSING: &str = "this coordinator was built without MPI: build it with \
`cargo build --release -p coordinator --features mpi` (needs Open MPI and libclang)";

/// The worker's receiving side: task frames in order, `None` once the coordinator closed it.
pub trait Inbox: Send {
    /// The next frame.
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError>;
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
