//! The uds transport: the same worker processes as [`super::local`], over plain Unix-domain
//! stream sockets. The authenticated connection each worker made for its
//! [handshake] is its link from then on, both ways: a frame is its length
//! (little-endian u64) and its bytes. Results are read straight into buffers lent from the
//! reader's free list ([`super::Frame`]), so a steady run allocates nothing per frame, where
//! ipc-channel allocates a fresh one for each message; nothing is fragmented, however big.

use super::handshake::{self, Hello};
use super::spawned::{self, FrameReceiver, FrameSender, Link};
use super::{Inbox, MakeSetup, Outbox, PoolResult, PoolSpec, Transport, TransportInfo, WorkerEnds};
use crate::error::{LinkError, SpawnError, WorkerError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

/// The largest frame a peer may announce, bytes: more is a broken peer, not a big task.
const MAX_FRAME: u64 = 1 << 40;

/// Frames up to this many bytes go out with their length in one write, and come in through
/// a buffer of this size: one system call each way for a small frame, not two.
const SMALL: usize = 64 * 1024;

/// Worker processes over Unix-domain stream sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct UdsTransport;

impl Transport for UdsTransport {
    fn info(&self) -> TransportInfo {
        let about = "worker processes on this machine over plain Unix-domain stream sockets";
        TransportInfo::spawned("uds", about)
    }

    fn start(&self, spec: &PoolSpec<'_>, setup: &MakeSetup<'_>) -> PoolResult {
        spawned::start(self.info().name, spec, setup, &mut link)
    }

    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let stream = handshake::say_hello(hello, worker, protocol, "")?;
        let writer = stream.try_clone().map_err(|e| WorkerError::Channel {
            worker,
            what: "its socket",
            message: e.to_string(),
        })?;
        Ok((Box::new(Reader::new(stream)), Box::new(Writer::new(writer))))
    }

    fn files_needed(&self, workers: usize) -> u64 {
        // The socket and its clone, a reader's and a sender's wake-up per worker.
        32 + 4 * workers as u64
    }
}

/// A checked hello's connection, as the worker's link both ways.
fn link(hello: Hello) -> Result<Link, SpawnError> {
    let reader = hello
        .stream
        .try_clone()
        .map_err(|source| SpawnError::Channel {
            worker: hello.worker,
            what: "its socket",
            source,
        })?;
    Ok(Link {
        sender: Box::new(Writer::new(hello.stream)),
        receiver: Box::new(Reader::new(reader)),
    })
}

/// The sending end of a worker's socket, with a buffer for small frames.
struct Writer {
    stream: UnixStream,
    small: Vec<u8>,
}

impl Writer {
    fn new(stream: UnixStream) -> Writer {
        Writer {
            stream,
            small: Vec::new(),
        }
    }

    /// Writes one frame: its length, then its bytes (one write for a small frame).
    fn write_frame(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let len = (frame.len() as u64).to_le_bytes();
        if frame.len() > SMALL {
            self.stream.write_all(&len)?;
            return self.stream.write_all(frame);
        }
        self.small.clear();
        self.small.extend_from_slice(&len);
        self.small.extend_from_slice(frame);
        self.stream.write_all(&self.small)
    }
}

/// The receiving end of a worker's socket, buffered.
struct Reader(BufReader<UnixStream>);

impl Reader {
    fn new(stream: UnixStream) -> Reader {
        Reader(BufReader::with_capacity(SMALL, stream))
    }
}

/// Reads one frame into `into`; `Ok(false)` at a clean end between frames.
fn read_frame(stream: &mut BufReader<UnixStream>, into: &mut Vec<u8>) -> Result<bool, LinkError> {
    let at_end = loop {
        match stream.fill_buf() {
            Ok(buf) => break buf.is_empty(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
    };
    if at_end {
        return Ok(false);
    }
    let mut len = [0u8; 8];
    stream.read_exact(&mut len).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            LinkError::Channel("the peer hung up inside a frame".into())
        }
        _ => LinkError::Io(e),
    })?;
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(LinkError::Channel(format!(
            "a frame of {len} bytes announced, more than {MAX_FRAME}"
        )));
    }
    into.clear();
    into.try_reserve_exact(len as usize)
        .map_err(|e| LinkError::Channel(format!("a {len}-byte frame: {e}")))?;
    // Into the buffer's spare capacity: no zeroing, no copy but the kernel's.
    stream.take(len).read_to_end(into).map_err(LinkError::Io)?;
    if into.len() as u64 != len {
        return Err(LinkError::Channel(format!(
            "the peer hung up after {} of a frame's {len} bytes",
            into.len()
        )));
    }
    Ok(true)
}

impl FrameSender for Writer {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.write_frame(frame).map_err(LinkError::Io)
    }

    fn close(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

impl FrameReceiver for Reader {
    fn recv(&mut self, into: &mut Vec<u8>) -> Result<bool, LinkError> {
        read_frame(&mut self.0, into)
    }
}

impl Inbox for Reader {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        let mut frame = Vec::new();
        Ok(read_frame(&mut self.0, &mut frame)?.then_some(frame))
    }

    fn recv_into(&mut self, frame: &mut Vec<u8>) -> Result<bool, LinkError> {
        read_frame(&mut self.0, frame)
    }
}

impl Outbox for Writer {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.write_frame(frame).map_err(LinkError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_whole_and_a_cut_one_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            let mut w = Writer::new(a);
            w.write_frame(&sent).unwrap();
            w.write_frame(&[]).unwrap();
            w.write_frame(&[5; 100]).unwrap();
            w.stream.write_all(&10u64.to_le_bytes()).unwrap();
            w.stream.write_all(&[1, 2, 3]).unwrap();
        });
        let mut r = Reader::new(b);
        let mut buf = Vec::new();
        assert!(read_frame(&mut r.0, &mut buf).unwrap());
        assert!(buf == big);
        let capacity = buf.capacity();
        assert!(read_frame(&mut r.0, &mut buf).unwrap());
        assert!(
            buf.is_empty() && buf.capacity() == capacity,
            "the buffer is reused"
        );
        assert!(read_frame(&mut r.0, &mut buf).unwrap());
        assert_eq!(buf, [5; 100]);
        writer.join().unwrap();
        assert!(read_frame(&mut r.0, &mut buf).is_err(), "cut short");
        let (c, d) = UnixStream::pair().unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        assert!(
            !read_frame(&mut Reader::new(d).0, &mut buf).unwrap(),
            "a clean end"
        );
    }
}
