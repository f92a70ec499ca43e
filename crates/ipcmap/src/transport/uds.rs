//! The uds transport: the same worker processes as [`super::local`], over plain Unix-domain
//! stream sockets. The authenticated connection each worker made for its
//! [handshake] is its link from then on, both ways: a frame is its length
//! (little-endian u64) and its bytes ([`super::stream`]). Results are read into buffers lent
//! from the reader's free list ([`super::Frame`]), so a steady run allocates nothing per frame
//! where ipc-channel allocates a fresh one for each message, and a payload of the values' own
//! bytes straight into its place in the output ([`super::place`]).

use super::handshake::{self, Hello};
use super::spawned::{Link, Spawned};
use super::stream::{Reader, Writer};
use super::{PoolSpec, TransportInfo, WorkerEnds};
use crate::error::{SpawnError, WorkerError};

/// Its `--help` line.
const ABOUT: &str = "worker processes on this machine over plain Unix-domain stream sockets";

/// Worker processes over Unix-domain stream sockets.
#[derive(Clone, Copy, Debug, Default)]
pub struct UdsTransport;

impl Spawned for UdsTransport {
    const INFO: TransportInfo = TransportInfo::spawned("uds", ABOUT).with_in_place();

    /// The checked hello's connection, as the worker's link both ways.
    fn link(&self, hello: Hello, _: &PoolSpec<'_>) -> Result<Link, SpawnError> {
        let reader = hello.stream.try_clone().map_err(|source| SpawnError::Channel {
            worker: hello.worker,
            what: "its socket",
            source,
        })?;
        Ok(Link {
            sender: Box::new(Writer::new(hello.stream)),
            receiver: Box::new(Reader::new(reader)),
        })
    }

    fn join(&self, hello: &str, worker: u32, protocol: u32) -> Result<WorkerEnds, WorkerError> {
        let stream = handshake::say_hello(hello, worker, protocol, "")?;
        let writer = stream.try_clone().map_err(|e| WorkerError::Channel {
            worker,
            what: "its socket",
            message: e.to_string(),
        })?;
        Ok((Box::new(Reader::new(stream)), Box::new(Writer::new(writer))))
    }
}
