//! The tcp transport: the same worker processes as [`super::uds`], over TCP on loopback
//! (127.0.0.1, `TCP_NODELAY`), with the same length-prefixed frames ([`super::stream`]): the
//! network stack's path on one host, to set beside MPI's TCP.
//!
//! A TCP port takes connections from anyone on the machine, so the link is made after the
//! authenticated [handshake]: the worker listens on a port of its own and says it, with a
//! 128-bit token, in its hello (which only this coordinator reads, on its 0700 socket); the
//! coordinator connects (a loopback connect never waits on the peer) and sends the token
//! first; the worker takes the first connection that presents it within the handshake time
//! and drops any other, so no other user's process gets a link to it.

use super::handshake::{self, Hello};
use super::spawned::{Link, Spawned};
use super::stream::{Reader, Writer};
use super::{PoolSpec, TransportInfo, WorkerEnds};
use crate::error::{SpawnError, WorkerError};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The most connections a worker keeps waiting for their token at once; a newer one beyond
/// drops the oldest (a stranger cannot starve the coordinator's by opening many).
const PENDING: usize = 64;

/// The token's bytes on the wire.
const TOKEN: usize = 16;

/// Its `--help` line.
const ABOUT: &str = "worker processes on this machine over TCP on loopback (TCP_NODELAY)";

/// Worker processes over TCP on loopback.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTransport;

impl Spawned for TcpTransport {
    const INFO: TransportInfo = TransportInfo::spawned("tcp", ABOUT).with_in_place();

    fn link(&self, hello: Hello, _: &PoolSpec<'_>) -> Result<Link, SpawnError> {
        link(hello)
    }

    fn join(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let channel = |what: &'static str| {
            move |e: std::io::Error| WorkerError::Channel { worker, what, message: e.to_string() }
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(channel("its port"))?;
        let port = listener.local_addr().map_err(channel("its port"))?.port();
        let token = token().map_err(channel("its token"))?;
        let words = format!("{port} {}", hex(&token));
        let hello = handshake::say_hello(hello, worker, protocol, &words)?;
        let stream =
            accept(&listener, &token, &hello).map_err(channel("its coordinator's connection"))?;
        drop(hello);
        let writer = stream.try_clone().map_err(channel("its socket"))?;
        Ok((Box::new(Reader::new(stream)), Box::new(Writer::new(writer))))
    }
}

/// Connects to the port a checked hello names and presents its token: the worker's link.
fn link(hello: Hello) -> Result<Link, SpawnError> {
    let (worker, pid) = (hello.worker, hello.pid);
    let bad = |message: String| SpawnError::BadHello { worker, pid, message };
    let mut words = hello.rest.split(' ');
    let port: u16 = words
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad("no port to connect to".into()))?;
    let token = words.next().and_then(unhex).ok_or_else(|| bad("no token to present".into()))?;
    let channel = |what: &'static str| move |source| SpawnError::Channel { worker, what, source };
    let mut stream =
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(channel("its TCP port"))?;
    stream.set_nodelay(true).map_err(channel("TCP_NODELAY"))?;
    stream.write_all(&token).map_err(channel("its token"))?;
    let reader = stream.try_clone().map_err(channel("its socket"))?;
    Ok(Link { sender: Box::new(Writer::new(stream)), receiver: Box::new(Reader::new(reader)) })
}

/// The first connection to `listener` that presents `token`, while the coordinator holds the
/// `hello` connection open and within [`handshake::worker_wait`]; any other is dropped. Every
/// pending connection is read at once, without blocking, under that one deadline: a slow or
/// silent connection (another user's, say) holds up none of the others.
fn accept(
    listener: &TcpListener,
    token: &[u8; TOKEN],
    hello: &std::os::unix::net::UnixStream,
) -> std::io::Result<TcpStream> {
    accept_within(listener, token, handshake::worker_wait(), &|| handshake::hung_up(hello))
}

/// [`accept`] within `wait`, until `gone` says the coordinator gave up.
fn accept_within(
    listener: &TcpListener,
    token: &[u8; TOKEN],
    wait: Duration,
    gone: &dyn Fn() -> bool,
) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + wait;
    listener.set_nonblocking(true)?;
    let mut pending: std::collections::VecDeque<(TcpStream, [u8; TOKEN], usize)> =
        std::collections::VecDeque::new();
    while Instant::now() < deadline {
        // Seen before this round's reads: a coordinator that connected and sent the token,
        // then closed the hello connection, has its token read in this round first.
        let given_up = gone();
        let mut busy = false;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(true)?;
                    if pending.len() == PENDING {
                        pending.pop_front();
                    }
                    pending.push_back((stream, [0; TOKEN], 0));
                    busy = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut k = 0;
        while k < pending.len() {
            let (stream, got, filled) = &mut pending[k];
            match stream.read(&mut got[*filled..]) {
                Ok(0) => drop(pending.remove(k)),
                Ok(n) => {
                    busy = true;
                    *filled += n;
                    if *filled < TOKEN {
                        k += 1;
                    } else if *got == *token {
                        if let Some((stream, _, _)) = pending.remove(k) {
                            stream.set_nonblocking(false)?;
                            stream.set_nodelay(true)?;
                            return Ok(stream);
                        }
                    } else {
                        drop(pending.remove(k));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => k += 1,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => drop(pending.remove(k)),
            }
        }
        if given_up {
            return Err(std::io::Error::other("the coordinator closed its hello connection"));
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no connection presented its token within {:.1} s", wait.as_secs_f64()),
    ))
}

/// A fresh token from the kernel's random source.
fn token() -> std::io::Result<[u8; TOKEN]> {
    let mut token = [0u8; TOKEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut token)?;
    Ok(token)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; TOKEN]> {
    let mut out = [0u8; TOKEN];
    if text.len() != 2 * TOKEN {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_without_the_token_gets_no_link() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let token = token().unwrap();
        assert_eq!(unhex(&hex(&token)), Some(token));
        let client = std::thread::spawn(move || {
            let mut stranger = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            stranger.write_all(&[0; TOKEN]).unwrap();
            // Silent ones queued first (another user's, say): each held the old serial check
            // a second, 20 of them past its 10 s; read together, they hold up nothing.
            let silent: Vec<TcpStream> =
                (0..20).map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap()).collect();
            let mut owner = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            owner.write_all(&token).unwrap();
            owner.write_all(b"after").unwrap();
            (stranger, silent, owner)
        });
        let mut link = accept_within(&listener, &token, Duration::from_secs(8), &|| false).unwrap();
        let mut after = [0u8; 5];
        link.read_exact(&mut after).unwrap();
        assert_eq!(&after, b"after", "the owner's connection, not a stranger's");
        drop(client.join().unwrap());
    }
}
