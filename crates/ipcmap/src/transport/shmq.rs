//! The shmq transport: the same worker processes as [`super::uds`], each with a
//! shared-memory queue per direction, built on memfd: a frame is written into a ring of shared
//! memory (a loaned slot, iceoryx2's model), and only its place (offset, length) crosses a Unix
//! socketpair; the receiver reads the frame out of the ring, a result's values straight into
//! their place in the output ([`super::place`]), and hands the slot back through the ring's
//! header (an atomic position the sender waits on only when the ring is full). No byte of a
//! frame goes through the kernel; only its 24-byte descriptor does.
//!
//! The rings and socketpairs are made before the worker starts and inherited by it alone (no
//! name on any file system, nothing another user could open); after the authenticated
//! [handshake] it is told which descriptors they are, and checks each is what it was told. A
//! frame bigger than half a ring goes inline on the socket instead, so no frame is too big.
//! A peer's descriptor or release that points outside the ring is refused, never followed.

use super::handshake::{self, Hello};
use super::spawned::{self, FrameReceiver, FrameSender, Link, Place};
use super::spawner::adopt;
use super::stream::read_body;
use super::WorkerEnds;
use super::{MakeSetup, Outbox, PoolResult, PoolSpec, Transport, TransportInfo};
use crate::error::{LinkError, SpawnError, WorkerError};
use crate::shared::SharedRegion;
use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Bytes of each ring (one per direction per worker): room for several 1.25 MB frames, what
/// split sends at the defaults.
pub const RING_BYTES: usize = 8 << 20;

/// A descriptor's offset meaning "the frame follows inline on the socket".
const INLINE: u64 = u64::MAX;

/// What the shmq transport is.
const INFO: TransportInfo = TransportInfo::spawned(
    "shmq",
    "worker processes on this machine over shared-memory queues (memfd rings; only offsets cross a socket)",
)
.with_in_place();

/// Worker processes over a shared-memory queue each way.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShmqTransport;

impl Transport for ShmqTransport {
    fn info(&self) -> TransportInfo {
        INFO
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        let queues = (0..spec.count as u32).map(Queues::open).collect::<Result<Vec<_>, _>>()?;
        spawned::start_inheriting(INFO.name, spec, setup, queues, Queues::theirs, &mut link)
    }

    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let stream = handshake::say_hello(hello, worker, protocol, "")?;
        let [task_ring, task_socket, result_ring, result_socket] =
            handshake::named_array::<4>(stream, worker)?;
        let bad = |what: &'static str| {
            move |e: std::io::Error| WorkerError::Channel { worker, what, message: e.to_string() }
        };
        let ring = |fd| {
            let fd = adopt(fd, SFlag::S_IFREG, OFlag::O_RDWR)?;
            // SAFETY: adopted above: open, a regular file (a memfd), and owned by nobody else.
            let region = unsafe { SharedRegion::adopt(fd_into_raw(fd), RING_BYTES) };
            Ring::new(region.map_err(|e| std::io::Error::other(e.to_string()))?)
        };
        let socket = |fd| adopt(fd, SFlag::S_IFSOCK, OFlag::O_RDWR).map(UnixStream::from);
        let tasks = QueueReader::new(
            ring(task_ring).map_err(bad("its task queue"))?,
            socket(task_socket).map_err(bad("its task queue's socket"))?,
        );
        let results = QueueWriter::new(
            ring(result_ring).map_err(bad("its result queue"))?,
            socket(result_socket).map_err(bad("its result queue's socket"))?,
        );
        Ok((Box::new(tasks), Box::new(results)))
    }

    fn files_needed(&self, workers: usize) -> u64 {
        // Two rings and two socketpairs (the worker's ends until it starts), the hello
        // connection, a reader's and a sender's wake-up per worker.
        32 + 11 * workers as u64
    }
}

fn fd_into_raw(fd: OwnedFd) -> i32 {
    std::os::fd::IntoRawFd::into_raw_fd(fd)
}

/// Bytes at the start of a ring before its frames: the receiver's release position.
const HEADER: u64 = 64;

/// One ring of shared memory, mapped: a header holding how far the receiver has read (the
/// position it hands back), then the frames.
struct Ring {
    region: SharedRegion,
    /// The first frame byte.
    base: *mut u8,
    /// Frame bytes.
    size: u64,
    /// The receiver's release position, in the header.
    released: *const std::sync::atomic::AtomicU64,
}

// SAFETY: the mapping is owned by the ring and moves with it; only one thread uses a ring at
// a time (its queue's sender or reader thread).
unsafe impl Send for Ring {}

impl Ring {
    fn new(mut region: SharedRegion) -> std::io::Result<Ring> {
        let start = region.as_f64s_mut().as_mut_ptr().cast::<u8>();
        let bytes = (region.as_f64s().len() * 8) as u64;
        if bytes < RING_BYTES as u64 {
            return Err(std::io::Error::other(format!(
                "a ring of {bytes} bytes, not {RING_BYTES}"
            )));
        }
        Ok(Ring {
            region,
            // SAFETY: the mapping is RING_BYTES long, far more than its header.
            base: unsafe { start.add(HEADER as usize) },
            size: bytes - HEADER,
            // The mapping is page-aligned, so its first 8 bytes are an aligned u64.
            released: start.cast(),
        })
    }

    /// How far the receiver has read, as it last said.
    fn released(&self) -> u64 {
        // SAFETY: an aligned u64 inside the mapping, which lives as long as the ring; shared
        // with the peer only through atomics.
        unsafe { &*self.released }.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Hands the ring back up to write position `end`.
    fn release(&self, end: u64) {
        // SAFETY: as in `released`.
        unsafe { &*self.released }.store(end, std::sync::atomic::Ordering::Release);
    }

    fn create(name: &str) -> Result<Ring, std::io::Error> {
        let region = SharedRegion::create(name, RING_BYTES / 8, false)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ring::new(region)
    }
}

/// The sending end of a queue: frames into the ring, their places onto the socket.
struct QueueWriter {
    ring: Ring,
    socket: UnixStream,
    /// Bytes written since the start (the ring's write position, unwrapped).
    head: u64,
    /// Bytes the receiver has handed back.
    tail: u64,
    open: bool,
}

impl QueueWriter {
    fn new(ring: Ring, socket: UnixStream) -> QueueWriter {
        QueueWriter { ring, socket, head: 0, tail: 0, open: true }
    }

    fn write_frame(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        if !self.open {
            return Err(LinkError::Closed);
        }
        let (len, size) = (frame.len() as u64, self.ring.size);
        let need = len.next_multiple_of(8);
        if need > size / 2 {
            self.socket.write_all(&descriptor(INLINE, len, 0)).map_err(LinkError::Io)?;
            return self.socket.write_all(frame).map_err(LinkError::Io);
        }
        // A frame never wraps: one that would is put at the ring's start.
        let mut at = self.head;
        if at % size + need > size {
            at += size - at % size;
        }
        let end = at + need;
        while end - self.tail > size {
            self.wait_for_room()?;
        }
        // SAFETY: `at % size + need <= size`, inside the mapping; the receiver has handed
        // these bytes back (the tail is past them), so nothing reads them now.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.ring.base.add((at % size) as usize),
                frame.len(),
            );
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.socket.write_all(&descriptor(at % size, len, end)).map_err(LinkError::Io)?;
        self.head = end;
        Ok(())
    }

    /// Takes how far the receiver has read; while the ring is full, waits for it in short
    /// sleeps, watching the socket for the receiver's end.
    fn wait_for_room(&mut self) -> Result<(), LinkError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let released = self.ring.released();
        if released < self.tail || released > self.head {
            return Err(LinkError::Channel(format!(
                "the receiver handed back up to byte {released}, outside {}..={}",
                self.tail, self.head
            )));
        }
        if released == self.tail {
            let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::empty())];
            let _ = poll(&mut fds, PollTimeout::from(1u8));
            let ended = PollFlags::POLLHUP | PollFlags::POLLERR;
            if fds[0].revents().is_some_and(|r| r.intersects(ended)) {
                return Err(LinkError::Closed);
            }
        }
        self.tail = released;
        Ok(())
    }
}

/// A frame's place: its offset in the ring (or [`INLINE`]), length, and the write position
/// after it, which the receiver hands back once it has read the frame.
fn descriptor(offset: u64, len: u64, end: u64) -> [u8; 24] {
    let mut d = [0u8; 24];
    d[..8].copy_from_slice(&offset.to_le_bytes());
    d[8..16].copy_from_slice(&len.to_le_bytes());
    d[16..].copy_from_slice(&end.to_le_bytes());
    d
}

impl FrameSender for QueueWriter {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.write_frame(frame)
    }

    fn close(&mut self) {
        self.open = false;
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }
}

impl Outbox for QueueWriter {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.write_frame(frame)
    }
}

/// The receiving end of a queue: places off the socket, frames out of the ring.
struct QueueReader {
    ring: Ring,
    socket: UnixStream,
    /// The longest frame it accepts.
    max_frame: super::FrameLimit,
}

impl QueueReader {
    fn new(ring: Ring, socket: UnixStream) -> QueueReader {
        QueueReader { ring, socket, max_frame: super::FrameLimit::new(super::stream::MAX_FRAME) }
    }
}

impl FrameReceiver for QueueReader {
    fn limit(&mut self, max_frame: &super::FrameLimit) {
        self.max_frame = max_frame.clone();
    }

    fn recv(
        &mut self,
        into: &mut Vec<u8>,
        place: Option<Place<'_>>,
    ) -> Result<Option<u64>, LinkError> {
        let mut d = [0u8; 24];
        match self.socket.read(&mut d[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
        self.socket.read_exact(&mut d[1..]).map_err(LinkError::Io)?;
        let field = |at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap_or_default());
        let (offset, len, end) = (field(0), field(8), field(16));
        if offset == INLINE {
            let len =
                super::stream::check_len(len, self.max_frame.get().min(super::stream::MAX_FRAME))?;
            return read_body(&mut (&self.socket).take(len), len, into, place).map(Some);
        }
        if offset.checked_add(len).is_none_or(|e| e > self.ring.size) {
            return Err(LinkError::Channel(format!(
                "a frame at {offset}..+{len}, outside the {}-byte ring",
                self.ring.size
            )));
        }
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: inside the mapping (checked above); the sender does not touch these bytes
        // until they are handed back, below.
        let frame = unsafe {
            std::slice::from_raw_parts(self.ring.base.add(offset as usize), len as usize)
        };
        let placed = read_body(&mut &frame[..], len, into, place)?;
        self.ring.release(end);
        Ok(Some(placed))
    }
}

/// One worker's two queues: the coordinator's ends, and the worker's (inherited at its start).
struct Queues {
    tasks: QueueWriter,
    results: QueueReader,
    theirs: [OwnedFd; 4],
}

impl Queues {
    fn open(worker: u32) -> Result<Queues, SpawnError> {
        let err = |what| move |source| SpawnError::Channel { worker, what, source };
        let task_ring = Ring::create("ipcmap-shmq-tasks").map_err(err("its task queue"))?;
        let result_ring = Ring::create("ipcmap-shmq-results").map_err(err("its result queue"))?;
        let (task_mine, task_theirs) =
            UnixStream::pair().map_err(err("its task queue's socket"))?;
        let (result_mine, result_theirs) =
            UnixStream::pair().map_err(err("its result queue's socket"))?;
        // Close-on-exec, as every descriptor of the coordinator's: the spawner clears it on a
        // worker's own descriptors only while that worker starts, so no other worker (one
        // started later) inherits this one's rings.
        let dup = |r: &Ring| {
            use nix::fcntl::{fcntl, FcntlArg};
            let fd = fcntl(r.region_fd(), FcntlArg::F_DUPFD_CLOEXEC(0))?;
            // SAFETY: a fresh descriptor, owned by nobody else.
            Ok::<_, std::io::Error>(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
        };
        let theirs = [
            dup(&task_ring).map_err(err("its task queue"))?,
            OwnedFd::from(task_theirs),
            dup(&result_ring).map_err(err("its result queue"))?,
            OwnedFd::from(result_theirs),
        ];
        Ok(Queues {
            tasks: QueueWriter::new(task_ring, task_mine),
            results: QueueReader::new(result_ring, result_mine),
            theirs,
        })
    }

    /// The worker's ends, as descriptor numbers.
    fn theirs(&self) -> Vec<i32> {
        self.theirs.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

impl Ring {
    /// The ring's memfd, borrowed.
    fn region_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the region owns this descriptor for as long as the ring lives.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.region.raw_fd()) }
    }
}

/// Tells a checked hello's worker which descriptors its queues are; its links are the
/// coordinator's ends, and the worker's are closed here (the worker holds them now).
fn link(mut hello: Hello, queues: Queues) -> Result<Link, SpawnError> {
    handshake::name_descriptors(&mut hello.stream, hello.worker, &queues.theirs())?;
    drop(queues.theirs);
    Ok(Link { sender: Box::new(queues.tasks), receiver: Box::new(queues.results) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_through_the_ring_in_order_and_a_huge_one_inline() {
        let (a, b) = UnixStream::pair().unwrap();
        let ring = Ring::create("t-shmq").unwrap();
        let fd = nix::unistd::dup(ring.region_fd()).unwrap();
        // SAFETY: a fresh duplicate, owned by nothing else.
        let peer = Ring::new(unsafe { SharedRegion::adopt(fd_into_raw(fd), RING_BYTES) }.unwrap())
            .unwrap();
        let frames: Vec<Vec<u8>> = (0..40u32)
            .map(|i| vec![i as u8; 100_000 + 37 * i as usize])
            .chain([vec![7u8; RING_BYTES]])
            .collect();
        let sent = frames.clone();
        let writer = std::thread::spawn(move || {
            let mut w = QueueWriter::new(ring, a);
            for f in &sent {
                w.write_frame(f).unwrap();
            }
        });
        let mut r = QueueReader::new(peer, b);
        let mut buf = Vec::new();
        for f in &frames {
            assert_eq!(r.recv(&mut buf, None).unwrap(), Some(0));
            assert!(buf == *f, "a frame of {} bytes", f.len());
        }
        writer.join().unwrap();
        assert_eq!(r.recv(&mut buf, None).unwrap(), None, "a clean end");
    }

    #[test]
    fn a_descriptor_outside_the_ring_is_refused() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut r = QueueReader::new(Ring::create("t-shmq-bad").unwrap(), b);
        a.write_all(&descriptor(RING_BYTES as u64 - 4, 8, 0)).unwrap();
        assert!(r.recv(&mut Vec::new(), None).is_err());
    }
}
