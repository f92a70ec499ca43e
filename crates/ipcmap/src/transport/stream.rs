//! Frames over a byte stream (a Unix-domain or TCP socket, a pipe), for the transports that
//! frame their messages themselves: a frame is its length (little-endian u64) and its bytes.
//! Small frames go out in one write and come in through one buffer; big ones are read into
//! buffers lent from a free list ([`super::Frame`]), or a result's payload straight into its
//! place in the output ([`super::place`]). Nothing is fragmented, however big.

use super::place::{Claim, Piece};
use super::spawned::{FrameReceiver, FrameSender, Place};
use super::Outbox;
use crate::error::LinkError;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};

/// The largest frame a peer may announce, bytes: more is a broken peer, not a big task.
pub const MAX_FRAME: u64 = 1 << 40;

/// Frames up to this many bytes go out with their length in one write, and come in through
/// a buffer of this size: one system call each way for a small frame, not two.
pub const SMALL: usize = 64 * 1024;

/// A stream's way of saying "no more frames" while a clone of it still reads (a socket's
/// shutdown); a pipe's end needs nothing but closing.
pub trait Endpoint: Send + 'static {
    /// Ends the sending direction.
    fn shut(&self) {}
}

impl Endpoint for std::os::unix::net::UnixStream {
    fn shut(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Endpoint for std::net::TcpStream {
    fn shut(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Endpoint for std::fs::File {}

/// The sending end of a stream, with a buffer for small frames.
pub struct Writer<S> {
    stream: Option<S>,
    small: Vec<u8>,
}

impl<S: Write + Endpoint> Writer<S> {
    /// Frames sent over `stream`.
    pub fn new(stream: S) -> Writer<S> {
        Writer { stream: Some(stream), small: Vec::new() }
    }

    /// Writes one frame: its length, then its bytes (one write for a small frame).
    pub fn write_frame(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let stream = self.stream.as_mut().ok_or(LinkError::Closed)?;
        let len = (frame.len() as u64).to_le_bytes();
        let written = match frame.len() > SMALL {
            true => stream.write_all(&len).and_then(|()| stream.write_all(frame)),
            false => {
                self.small.clear();
                self.small.extend_from_slice(&len);
                self.small.extend_from_slice(frame);
                stream.write_all(&self.small)
            }
        };
        written.map_err(LinkError::Io)
    }
}

impl<S: Write + Endpoint> FrameSender for Writer<S> {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.write_frame(frame)
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            stream.shut();
        }
    }
}

impl<S: Write + Endpoint> Outbox for Writer<S> {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        self.write_frame(frame)
    }
}

/// The receiving end of a stream, buffered, and the longest frame it accepts.
pub struct Reader<S>(BufReader<S>, super::FrameLimit);

impl<S: Read> Reader<S> {
    /// Frames read off `stream`, each at most [`MAX_FRAME`] bytes until [`FrameReceiver::limit`]
    /// says less.
    pub fn new(stream: S) -> Reader<S> {
        Reader(BufReader::with_capacity(SMALL, stream), super::FrameLimit::new(MAX_FRAME))
    }
}

/// Refuses a length a peer announced beyond `max_frame`, before anything is allocated for it.
pub fn check_len(len: u64, max_frame: u64) -> Result<u64, LinkError> {
    match len > max_frame {
        true => Err(LinkError::TooLong { len, max: max_frame }),
        false => Ok(len),
    }
}

/// Reads the `len` bytes of a frame from `src` into `into` (cleared first), and where `place`
/// claims it, a result's payload straight into its place in the output; returns the payload
/// bytes placed (0: all of the frame is in `into`). Shared by the stream transports and by
/// shmq, whose frames are read out of shared memory the same way.
pub fn read_body(
    src: &mut impl Read,
    len: u64,
    into: &mut Vec<u8>,
    place: Option<Place<'_>>,
) -> Result<u64, LinkError> {
    into.clear();
    into.try_reserve_exact(len.min(SMALL as u64) as usize)
        .map_err(|e| LinkError::Channel(format!("a {len}-byte frame: {e}")))?;
    let (mut consumed, mut placed) = (0, 0);
    if let Some((worker, places)) = place {
        let head = places.head_len() as u64;
        if len >= head {
            read_more(src, into, head)?;
            if let Some(claim) = places.claim(worker, into, len) {
                (consumed, placed) = read_pieces(src, into, claim)?;
            }
        }
    }
    read_more(src, into, len - into.len() as u64 - consumed)?;
    Ok(placed)
}

/// Reads a claimed result's pieces: block headers into `into`, values into place. Returns
/// the bytes read into place and, where every piece was as expected (the claim then
/// committed), the same again as placed; else 0 placed, and the frame is refused when decoded.
fn read_pieces(
    src: &mut impl Read,
    into: &mut Vec<u8>,
    mut claim: Claim<'_>,
) -> Result<(u64, u64), LinkError> {
    let mut consumed = 0;
    for piece in claim.pieces() {
        match piece {
            Piece::Expect(bytes) => {
                let at = into.len();
                read_more(src, into, bytes.len() as u64)?;
                if into[at..] != bytes[..] {
                    return Ok((consumed, 0));
                }
            }
            Piece::Values(range) => {
                let place = claim.values(range.clone());
                src.read_exact(place).map_err(cut)?;
                consumed += place.len() as u64;
            }
        }
    }
    claim.commit();
    Ok((consumed, consumed))
}

/// A frame's length, or `None` at a clean end between frames.
fn read_len(stream: &mut impl BufRead) -> Result<Option<u64>, LinkError> {
    let at_end = loop {
        match stream.fill_buf() {
            Ok(buf) => break buf.is_empty(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(LinkError::Io(e)),
        }
    };
    if at_end {
        return Ok(None);
    }
    let mut len = [0u8; 8];
    stream.read_exact(&mut len).map_err(cut)?;
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(LinkError::Channel(format!(
            "a frame of {len} bytes announced, more than {MAX_FRAME}"
        )));
    }
    Ok(Some(len))
}

/// Appends exactly `n` more bytes of the frame to `into`, into its spare capacity (no
/// zeroing, no copy but the kernel's).
fn read_more(stream: &mut impl Read, into: &mut Vec<u8>, n: u64) -> Result<(), LinkError> {
    into.try_reserve_exact(n as usize)
        .map_err(|e| LinkError::Channel(format!("{n} more bytes of a frame: {e}")))?;
    let before = into.len();
    stream.take(n).read_to_end(into).map_err(LinkError::Io)?;
    let got = (into.len() - before) as u64;
    if got != n {
        return Err(LinkError::Channel(format!(
            "the peer hung up {got} bytes into the last {n} of a frame"
        )));
    }
    Ok(())
}

/// A stream that ended inside a frame.
fn cut(e: std::io::Error) -> LinkError {
    match e.kind() {
        ErrorKind::UnexpectedEof => LinkError::Channel("the peer hung up inside a frame".into()),
        _ => LinkError::Io(e),
    }
}

impl<S: Read + Send + 'static> FrameReceiver for Reader<S> {
    /// Reads one frame into `into` (cleared first), and where `place` allows, a result's
    /// payload into its place in the output; `Ok(None)` at a clean end between frames, else
    /// the payload bytes placed (0: all of the frame is in `into`).
    fn recv(
        &mut self,
        into: &mut Vec<u8>,
        place: Option<Place<'_>>,
    ) -> Result<Option<u64>, LinkError> {
        let Some(len) = read_len(&mut self.0)? else {
            return Ok(None);
        };
        let len = check_len(len, self.1.get().min(MAX_FRAME))?;
        read_body(&mut self.0, len, into, place).map(Some)
    }

    fn limit(&mut self, max_frame: &super::FrameLimit) {
        self.1 = max_frame.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

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
            let mut raw = w.stream.take().unwrap();
            raw.write_all(&10u64.to_le_bytes()).unwrap();
            raw.write_all(&[1, 2, 3]).unwrap();
        });
        let mut r = Reader::new(b);
        let mut buf = Vec::new();
        assert_eq!(r.recv(&mut buf, None).unwrap(), Some(0));
        assert!(buf == big);
        let capacity = buf.capacity();
        assert!(r.recv(&mut buf, None).unwrap().is_some());
        assert!(buf.is_empty() && buf.capacity() == capacity, "the buffer is reused");
        assert!(r.recv(&mut buf, None).unwrap().is_some());
        assert_eq!(buf, [5; 100]);
        writer.join().unwrap();
        assert!(r.recv(&mut buf, None).is_err(), "cut short");
        let (c, d) = UnixStream::pair().unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(Reader::new(d).recv(&mut buf, None).unwrap(), None, "a clean end");
    }

    /// A result read into place: its block headers checked, its values straight into the
    /// output; a frame whose block header is wrong is read whole and not placed.
    #[test]
    fn a_result_is_read_into_place_and_a_wrong_one_is_not() {
        use crate::protocol::{block_header, ResultHeader};
        use crate::scheduler::places::OutputPlaces;
        let tasks = crate::partition::group(crate::partition::array_split(6, 2), 1);
        let pieces = |t: &crate::partition::Task| {
            let p = &t.parts[0];
            Some(vec![
                Piece::Expect(block_header(p.len(), p.len() * 8).to_vec()),
                Piece::Values(p.clone()),
            ])
        };
        let mut output = vec![0.0; 6];
        // SAFETY: `output` outlives `places`, closed before it is read.
        let places = unsafe { OutputPlaces::new(&mut output, &tasks, pieces) }.unwrap();
        let frame = |task: u32, elements: usize, value: f64| {
            let mut f = Vec::new();
            let header = ResultHeader { worker: 0, task, ..Default::default() };
            header.write(&mut f);
            f.extend_from_slice(&block_header(elements, 24));
            f.extend_from_slice(bytemuck::cast_slice(&[value; 3]));
            f
        };
        places.expect(0, 0);
        places.expect(1, 0);
        let (a, b) = UnixStream::pair().unwrap();
        let mut w = Writer::new(a);
        w.write_frame(&frame(1, 3, 7.0)).unwrap();
        w.write_frame(&frame(0, 4, 9.0)).unwrap();
        let mut r = Reader::new(b);
        let mut buf = Vec::new();
        let placed = r.recv(&mut buf, Some((0, &places))).unwrap();
        assert_eq!(placed, Some(24));
        assert_eq!(buf.len(), ResultHeader::SIZE + 16, "only the headers in the buffer");
        let placed = r.recv(&mut buf, Some((0, &places))).unwrap();
        assert_eq!(placed, Some(0), "a block header that does not match");
        assert_eq!(buf.len(), ResultHeader::SIZE + 16 + 24, "read whole");
        assert!(places.is_placed(1) && !places.is_placed(0));
        places.close();
        assert_eq!(output, [0.0, 0.0, 0.0, 7.0, 7.0, 7.0]);
    }
}
