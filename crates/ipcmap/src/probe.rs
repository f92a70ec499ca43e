//! Raw ipc-channel probes: the floors the strategies are measured against, taken with the same
//! worker executable in its `Echo` mode (every frame sent straight back, untouched).
//!
//! - spawn-and-hello: starting N workers until each has said hello;
//! - echo: S-byte messages round-tripped through one worker, two in flight (as the scheduler
//!   keeps them), GB/s counting both directions;
//! - 8-byte echo: the same with 8-byte messages, µs per one-way message.

use crate::codec::CodecKind;
use crate::error::RunError;
use crate::kernel::Function;
use crate::protocol::{Setup, ECHO};
use crate::scheduler::DEPTH;
use crate::transport::{Event, Pool, PoolSpec, Transport};
use std::path::Path;
use std::time::{Duration, Instant};

/// The largest echoed message (`probe --bytes`): 1 GiB.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

pub use crate::report::ProbeReport;

/// Runs every probe over `transport`: `workers` for the spawn probe, `message_bytes` for the
/// echo probe.
pub fn run(
    transport: &dyn Transport,
    worker_bin: &Path,
    workers: usize,
    message_bytes: usize,
    timeout: Duration,
) -> Result<ProbeReport, RunError> {
    // The message, its echo and the channel's copies in flight.
    let need = (message_bytes as u64).saturating_mul(2 + 2 * DEPTH as u64);
    if let Some(available) = crate::config::available_memory_bytes().filter(|&a| need > a) {
        return Err(RunError::Channel {
            what: format!("echo of {message_bytes}-byte messages"),
            message: format!(
                "needs about {} MiB, but only {} MiB is available",
                need >> 20,
                available >> 20
            ),
        });
    }
    let mut pool = echo_pool(transport, worker_bin, workers, timeout)?;
    let spawn_hello_ms = pool.spawn_ns() as f64 / 1e6;
    for w in 0..workers {
        pool.close(w);
    }
    for w in 0..workers {
        pool.reap(w, Duration::from_secs(1));
    }
    drop(pool);

    let echo_messages = 64;
    let big = echo(transport, worker_bin, message_bytes, echo_messages, timeout)?;
    let echo8_messages = 100_000;
    let small = echo(transport, worker_bin, 8, echo8_messages, timeout)?;
    Ok(ProbeReport {
        workers,
        spawn_hello_ms,
        echo_message_bytes: message_bytes,
        echo_messages,
        echo_gbps: (2 * message_bytes * echo_messages) as f64 / big.send_ns.max(1) as f64,
        echo_wall_gbps: (2 * message_bytes * echo_messages) as f64
            / big.wall.as_nanos().max(1) as f64,
        echo8_messages,
        echo8_us_per_message: small.wall.as_nanos() as f64 / 1e3 / (2 * echo8_messages) as f64,
        transport: crate::settings::TransportKind::Local,
    })
}

fn echo_pool(
    transport: &dyn Transport,
    worker_bin: &Path,
    count: usize,
    timeout: Duration,
) -> Result<Box<dyn Pool>, RunError> {
    let spec = PoolSpec {
        worker_bin,
        count,
        handshake_timeout: timeout,
        inherit_fds: &[],
        frame_bytes: 0,
    };
    let setup = |_| Setup {
        mode: ECHO.to_string(),
        function: Function::Exp,
        work: 1,
        codec: CodecKind::RAW,
        extra: Vec::new(),
        prefetch: false,
        trace: false,
        frame_bytes: 0,
    };
    Ok(transport.start(&spec, &setup)?)
}

/// What one echo exchange took.
struct Echoed {
    /// From the first send to the last reply.
    wall: Duration,
    /// Inside sends, both sides, ns.
    send_ns: u64,
}

/// How long to wait for one echoed frame before calling the worker lost.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);

/// The next frame from the echo worker; its end or silence is an error.
fn next_frame(pool: &mut dyn Pool) -> Result<Vec<u8>, RunError> {
    let lost = |message: String| RunError::Channel {
        what: "echo probe".into(),
        message,
    };
    let deadline = Instant::now() + ECHO_TIMEOUT;
    // An exit can overtake the worker's last frame (the watchdog and the reader thread race):
    // after one, frames still in flight are drained before the worker is called lost.
    let mut ended: Option<String> = None;
    loop {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(RunError::Interrupted { signal });
        }
        match pool.next_event(Duration::from_millis(50)) {
            Some(Event::Frame(_, frame)) => return Ok(frame),
            Some(Event::Exited { how, .. }) => ended = Some(how),
            Some(Event::Closed(_)) => {
                ended.get_or_insert_with(|| "hung up".into());
            }
            None => match ended {
                Some(how) => return Err(lost(format!("the echo worker {how}"))),
                None if Instant::now() > deadline => {
                    return Err(lost("no echo within 10 s".into()))
                }
                None => {}
            },
        }
    }
}

/// A message of `bytes` bytes, written in pieces so that a stop asked for while a big one is
/// made is honoured at once.
fn message(bytes: usize) -> Result<Vec<u8>, RunError> {
    const PIECE: usize = 16 << 20;
    let mut message = Vec::with_capacity(bytes);
    while message.len() < bytes {
        if crate::interrupt::requested().is_some() {
            return Err(crate::interrupt::interrupted());
        }
        let piece = PIECE.min(bytes - message.len());
        message.resize(message.len() + piece, 0x5A);
    }
    Ok(message)
}

/// Round-trips `messages` messages of `bytes` bytes through one echo worker, [`DEPTH`] in
/// flight. The pool's reader thread drains replies, so a big send never waits on our reads.
fn echo(
    transport: &dyn Transport,
    worker_bin: &Path,
    bytes: usize,
    messages: usize,
    timeout: Duration,
) -> Result<Echoed, RunError> {
    let mut pool = echo_pool(transport, worker_bin, 1, timeout)?;
    let send_err = |e: crate::error::LinkError| RunError::Channel {
        what: "echo send".into(),
        message: e.to_string(),
    };
    // Frames are handed to the transport and come back once sent: DEPTH + 1 buffers, made
    // (and faulted in) before the clock starts, carry every message.
    let mut spares: Vec<Vec<u8>> = (0..=DEPTH)
        .map(|_| message(bytes))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let (mut received, mut send_ns, mut sends) = (0, 0u64, 0usize);
    let mut take_sent = |pool: &mut dyn Pool, spares: &mut Vec<Vec<u8>>| {
        while let Some(done) = pool.sent() {
            done.result.map_err(send_err)?;
            send_ns += done.end_ns.saturating_sub(done.start_ns);
            sends += 1;
            spares.push(done.frame);
        }
        Ok::<_, RunError>(sends)
    };
    for i in 0..messages {
        if i >= DEPTH {
            received += next_frame(pool.as_mut())?.len();
        }
        take_sent(pool.as_mut(), &mut spares)?;
        let frame = match spares.pop() {
            Some(frame) => frame,
            None => message(bytes)?,
        };
        pool.send(0, frame).map_err(send_err)?;
    }
    for _ in messages.saturating_sub(DEPTH)..messages {
        received += next_frame(pool.as_mut())?.len();
    }
    // Every reply is in, so every send has ended; its report may still be on its way.
    let reported = Instant::now() + Duration::from_secs(1);
    while take_sent(pool.as_mut(), &mut spares)? < messages && Instant::now() < reported {
        std::thread::sleep(Duration::from_micros(50));
    }
    let wall = start.elapsed();
    if received != bytes * messages {
        return Err(RunError::Channel {
            what: "echo probe".into(),
            message: format!("{received} bytes came back, {} sent", bytes * messages),
        });
    }
    // The worker's send time comes last, once its channel closes.
    pool.close(0);
    let stats = next_frame(pool.as_mut())?;
    let worker_send_ns = stats
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| RunError::Channel {
            what: "echo probe".into(),
            message: "the worker did not report its send time".into(),
        })?;
    pool.reap(0, Duration::from_secs(1));
    Ok(Echoed {
        wall,
        send_ns: send_ns + worker_send_ns,
    })
}
