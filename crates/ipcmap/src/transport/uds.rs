//! The uds transport: the same worker processes as [`super::local`], over plain Unix-domain
//! stream sockets. The authenticated connection each worker made for its
//! [handshake] is its link from then on, both ways: a frame is its length
//! (little-endian u64) and its bytes. Results are read straight into buffers lent from the
//! reader's free list ([`super::Frame`]), so a steady run allocates nothing per frame, where
//! ipc-channel allocates a fresh one for each message; nothing is fragmented, however big.

use super::handshake::{self, Hello};
use super::spawned::{self, FrameReceiver, FrameSender, Link};
use super::{Inbox, Outbox, Pool, PoolSpec, Transport, TransportInfo, WorkerEnds};
use crate::error::{LinkError, SpawnError, WorkerError};
use crate::protocol::Setup;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;

/// The largest frame a peer may announce, bytes: more is a broken peer, not a big task.
const MAX_FRAME: u64 = 1 << 40;

/// Worker processes over Unix-domain stream sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct UdsTransport;

impl Transport for UdsTransport {
    fn info(&self) -> TransportInfo {
        let about = "worker processes on this machine over plain Unix-domain stream sockets";
        TransportInfo::spawned("uds", about)
    }

    fn start(
        &self,
        spec: &PoolSpec<'_>,
        setup: &dyn Fn(u32) -> Setup,
    ) -> Result<Box<dyn Pool>, SpawnError> {
        spawned::start(self.info().name, spec, setup, &mut link)
    }

    fn connect(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let stream = handshake::say_hello(hello, worker, protocol, "")?;
        let writer = stream.try_clone().map_err(|e| WorkerError::Channel {
            worker,
            what: "its socket",
            message: e.to_string(),
        })?;
        Ok((Box::new(Stream(stream)), Box::new(Stream(writer))))
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
        sender: Box::new(Stream(hello.stream)),
        receiver: Box::new(Stream(reader)),
    })
}

/// One end of a worker's socket.
struct Stream(UnixStream);

/// Writes one frame: its length, then its bytes.
fn write_frame(stream: &mut UnixStream, frame: &[u8]) -> std::io::Result<()> {
    stream.write_all(&(frame.len() as u64).to_le_bytes())?;
    stream.write_all(frame)
}

/// Reads one frame into `into`; `Ok(false)` at a clean end between frames.
fn read_frame(stream: &mut UnixStream, into: &mut Vec<u8>) -> Result<bool, LinkError> {
    let mut len = [0u8; 8];
    let mut got = 0;
    while got < len.len() {
        match stream.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(LinkError::Channel("the peer hung up inside a frame".into())),
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
    }
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

impl FrameSender for Stream {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        write_frame(&mut self.0, frame).map_err(LinkError::Io)
    }

    fn close(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}

impl FrameReceiver for Stream {
    fn recv(&mut self, into: &mut Vec<u8>) -> Result<bool, LinkError> {
        read_frame(&mut self.0, into)
    }
}

impl Inbox for Stream {
    fn recv(&mut self) -> Result<Option<Vec<u8>>, LinkError> {
        let mut frame = Vec::new();
        Ok(read_frame(&mut self.0, &mut frame)?.then_some(frame))
    }

    fn recv_into(&mut self, frame: &mut Vec<u8>) -> Result<bool, LinkError> {
        read_frame(&mut self.0, frame)
    }
}

impl Outbox for Stream {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        write_frame(&mut self.0, frame).map_err(LinkError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cross_whole_and_a_cut_one_is_refused() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            write_frame(&mut a, &sent).unwrap();
            write_frame(&mut a, &[]).unwrap();
            a.write_all(&10u64.to_le_bytes()).unwrap();
            a.write_all(&[1, 2, 3]).unwrap();
        });
        let mut buf = Vec::new();
        assert!(read_frame(&mut b, &mut buf).unwrap());
        assert!(buf == big);
        let capacity = buf.capacity();
        assert!(read_frame(&mut b, &mut buf).unwrap());
        assert!(
            buf.is_empty() && buf.capacity() == capacity,
            "the buffer is reused"
        );
        writer.join().unwrap();
        assert!(read_frame(&mut b, &mut buf).is_err(), "cut short");
        let (mut c, mut d) = UnixStream::pair().unwrap();
        drop(c.shutdown(Shutdown::Write));
        assert!(!read_frame(&mut d, &mut buf).unwrap(), "a clean end");
        c.write_all(&u64::MAX.to_le_bytes()).ok();
    }
}
