//! The machine's own floors, measured by the coordinator itself with no library in between:
//! the same echo the transports' probe runs (S-byte messages, [`IN_FLIGHT`] in flight, a
//! reader thread draining replies), over a bare Unix socketpair and over a pair of bare pipes,
//! with a thread of this process as the echoing peer; and a memcpy of the same bytes. What a
//! transport's echo reaches is then read as a fraction of what the kernel itself allows.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Messages in flight, as the scheduler keeps them (`scheduler::DEPTH`).
pub const IN_FLIGHT: usize = 2;

/// What one echo took: its wall time and each message's round trip, in send order.
#[derive(Clone, Debug, Default)]
pub struct Echoed {
    /// From the first send to the last reply.
    pub wall: Duration,
    /// Each message's round trip.
    pub round_trips: Vec<Duration>,
}

impl Echoed {
    /// Bytes both ways per second of wall time, GB/s, for `bytes`-byte messages.
    pub fn wall_gbps(&self, bytes: usize) -> f64 {
        (2 * bytes * self.round_trips.len()) as f64 / self.wall.as_nanos().max(1) as f64
    }

    /// Wall time per one-way message, µs.
    pub fn us_per_message(&self) -> f64 {
        self.wall.as_nanos() as f64 / 1e3 / (2 * self.round_trips.len()).max(1) as f64
    }

    /// The `q`-quantile (0..=1) of the round trips, µs.
    pub fn round_trip_us(&self, q: f64) -> f64 {
        let mut sorted = self.round_trips.clone();
        sorted.sort_unstable();
        let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(at).map_or(0.0, |d| d.as_nanos() as f64 / 1e3)
    }
}

/// A bare byte stream both ways: where the echoing peer reads and writes, and where this side
/// writes and its reader thread reads.
struct Ends<S> {
    out: S,
    back: S,
    peer_in: S,
    peer_out: S,
}

/// The floors of one probe, over `bytes`-byte and 8-byte messages.
#[derive(Clone, Debug)]
pub struct Floors {
    /// Socketpair echo of `bytes`-byte messages.
    pub socketpair: Echoed,
    /// Pipe echo of `bytes`-byte messages.
    pub pipe: Echoed,
    /// The same pipe echo, each message sent by `vmsplice` (its pages lent to the pipe, not
    /// copied into it), the replies by plain writes.
    pub pipe_vmsplice: Echoed,
    /// Socketpair echo of 8-byte messages.
    pub socketpair8: Echoed,
    /// memcpy of `bytes` bytes, GB/s.
    pub memcpy_gbps: f64,
}

/// Measures every floor: `messages` echoes of `bytes` bytes over each stream, `small` of 8
/// bytes over the socketpair, and memcpy of `bytes`.
pub fn measure(bytes: usize, messages: usize, small: usize) -> std::io::Result<Floors> {
    Ok(Floors {
        socketpair: echo(socketpair()?, bytes, messages)?,
        pipe: echo(pipes()?, bytes, messages)?,
        pipe_vmsplice: echo_with(pipes()?, bytes, messages, vmsplice_all)?,
        socketpair8: echo(socketpair()?, 8, small)?,
        memcpy_gbps: memcpy_gbps(bytes),
    })
}

fn socketpair() -> std::io::Result<Ends<UnixStream>> {
    let (out, peer_in) = UnixStream::pair()?;
    let (peer_out, back) = (peer_in.try_clone()?, out.try_clone()?);
    Ok(Ends { out, back, peer_in, peer_out })
}

fn pipes() -> std::io::Result<Ends<File>> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (peer_in, out) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (back, peer_out) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    for end in [&out, &peer_out] {
        // As wide as the pipe transport makes its pipes, where allowed.
        let _ = fcntl(end, FcntlArg::F_SETPIPE_SZ(1 << 20));
    }
    Ok(Ends {
        out: out.into(),
        back: back.into(),
        peer_in: peer_in.into(),
        peer_out: peer_out.into(),
    })
}

/// Echoes `messages` messages of `bytes` bytes over `ends`, [`IN_FLIGHT`] in flight.
fn echo<S>(ends: Ends<S>, bytes: usize, messages: usize) -> std::io::Result<Echoed>
where
    S: Read + Write + Send + 'static,
{
    echo_with(ends, bytes, messages, |out, message| out.write_all(message))
}

/// Sends all of `message` into the pipe `out` by `vmsplice`: its pages are lent to the pipe.
/// The message is never changed while the echo runs, and outlives every reply.
fn vmsplice_all(out: &mut File, message: &[u8]) -> std::io::Result<()> {
    use nix::fcntl::{vmsplice, SpliceFFlags};
    let mut at = 0;
    while at < message.len() {
        let piece = [std::io::IoSlice::new(&message[at..])];
        // SAFETY: the message is not modified until the echo ends, after every reply came
        // back (so the peer has read every page the pipe was lent); no SPLICE_F_GIFT.
        match unsafe { vmsplice(&*out, &piece, SpliceFFlags::empty()) } {
            Ok(n) => at += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// [`echo`], each message sent by `send`.
fn echo_with<S>(
    ends: Ends<S>,
    bytes: usize,
    messages: usize,
    send: fn(&mut S, &[u8]) -> std::io::Result<()>,
) -> std::io::Result<Echoed>
where
    S: Read + Write + Send + 'static,
{
    let Ends { mut out, mut back, mut peer_in, mut peer_out } = ends;
    let peer = std::thread::Builder::new().name("floor-echo".into()).spawn(
        move || -> std::io::Result<()> {
            let mut buf = vec![0u8; bytes];
            for _ in 0..messages {
                peer_in.read_exact(&mut buf)?;
                peer_out.write_all(&buf)?;
            }
            Ok(())
        },
    )?;
    let (replied, replies) = mpsc::channel::<Instant>();
    let reader = std::thread::Builder::new().name("floor-read".into()).spawn(
        move || -> std::io::Result<()> {
            let mut buf = vec![0u8; bytes];
            for _ in 0..messages {
                back.read_exact(&mut buf)?;
                if replied.send(Instant::now()).is_err() {
                    break;
                }
            }
            Ok(())
        },
    )?;
    let message = vec![0x5Au8; bytes];
    let lost = || std::io::Error::other("the echo stopped");
    let mut sent_at = Vec::with_capacity(messages);
    let mut round_trips = Vec::with_capacity(messages);
    let start = Instant::now();
    for i in 0..messages {
        if i >= IN_FLIGHT {
            let at = replies.recv_timeout(Duration::from_secs(10)).map_err(|_| lost())?;
            round_trips.push(at - sent_at[i - IN_FLIGHT]);
        }
        sent_at.push(Instant::now());
        send(&mut out, &message)?;
    }
    for sent in &sent_at[messages.saturating_sub(IN_FLIGHT)..] {
        let at = replies.recv_timeout(Duration::from_secs(10)).map_err(|_| lost())?;
        round_trips.push(at - *sent);
    }
    let wall = start.elapsed();
    drop(out);
    peer.join().map_err(|_| lost())??;
    reader.join().map_err(|_| lost())??;
    Ok(Echoed { wall, round_trips })
}

/// memcpy of `bytes` bytes, GB/s: the best of five copies after a warm one.
fn memcpy_gbps(bytes: usize) -> f64 {
    let from = vec![0x5Au8; bytes];
    let mut to = vec![0u8; bytes];
    to.copy_from_slice(&from);
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            to.copy_from_slice(std::hint::black_box(&from));
            std::hint::black_box(&to);
            t.elapsed()
        })
        .min()
        .unwrap_or_default();
    bytes as f64 / best.as_nanos().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_floor_echoes_every_message_and_times_each() {
        let f = measure(100_000, 6, 50).unwrap();
        let each = [(&f.socketpair, 6), (&f.pipe, 6), (&f.pipe_vmsplice, 6), (&f.socketpair8, 50)];
        for (echoed, count) in each {
            assert_eq!(echoed.round_trips.len(), count);
            assert!(echoed.wall_gbps(8) > 0.0);
            assert!(echoed.round_trip_us(0.5) <= echoed.round_trip_us(0.99));
        }
        assert!(f.memcpy_gbps > 0.0);
    }
}
