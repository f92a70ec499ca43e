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
use crate::protocol::{Setup, WorkerMode};
use crate::scheduler::DEPTH;
use crate::spawner::{spawn_pool, Pool, SpawnSpec};
use ipc_channel::ipc::{self, IpcBytesReceiver};
use serde::Serialize;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The largest echoed message (`probe --bytes`): 1 GiB.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// What the probes measured.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    /// Workers started by the spawn probe.
    pub workers: usize,
    /// Spawning them until every one said hello, ms.
    pub spawn_hello_ms: f64,
    /// Bytes per message of the echo probe.
    pub echo_message_bytes: usize,
    /// Messages echoed.
    pub echo_messages: usize,
    /// Bytes both ways per second spent inside sends (both sides), GB/s: the same measure as
    /// a report's `channel_gbps`.
    pub echo_gbps: f64,
    /// Bytes both ways per second of wall time, GB/s.
    pub echo_wall_gbps: f64,
    /// 8-byte messages echoed.
    pub echo8_messages: usize,
    /// Wall time per one-way 8-byte message, µs.
    pub echo8_us_per_message: f64,
}

/// Runs every probe: `workers` for the spawn probe, `message_bytes` for the echo probe.
pub fn run(
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
    let (pool, _) = echo_pool(worker_bin, workers, timeout)?;
    let spawn_hello_ms = pool.spawn_ns as f64 / 1e6;
    drop(pool);

    let echo_messages = 64;
    let big = echo(worker_bin, message_bytes, echo_messages, timeout)?;
    let echo8_messages = 100_000;
    let small = echo(worker_bin, 8, echo8_messages, timeout)?;
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
    })
}

fn echo_pool(
    worker_bin: &Path,
    count: usize,
    timeout: Duration,
) -> Result<(Pool, Vec<IpcBytesReceiver>), RunError> {
    let mut receivers = Vec::new();
    let spec = SpawnSpec {
        worker_bin,
        count,
        handshake_timeout: timeout,
        inherit_fds: &[],
    };
    let pool = spawn_pool(&spec, |_| {
        let (results, rx) = ipc::bytes_channel().ok()?;
        receivers.push(rx);
        Some(Setup {
            mode: WorkerMode::Echo,
            function: Function::Exp,
            work: 1,
            codec: CodecKind::Raw,
            results,
            shm: None,
            prefetch: false,
        })
    })?;
    Ok((pool, receivers))
}

/// What one echo exchange took.
struct Echoed {
    /// From the first send to the last reply.
    wall: Duration,
    /// Inside sends, both sides, ns.
    send_ns: u64,
}

/// Round-trips `messages` messages of `bytes` bytes through one echo worker, [`DEPTH`] in
/// flight.
fn echo(
    worker_bin: &Path,
    bytes: usize,
    messages: usize,
    timeout: Duration,
) -> Result<Echoed, RunError> {
    let (mut pool, mut receivers) = echo_pool(worker_bin, 1, timeout)?;
    let receiver = receivers.pop().ok_or_else(|| RunError::Channel {
        what: "echo probe".into(),
        message: "no result channel".into(),
    })?;
    let sender = pool.workers[0]
        .tasks
        .clone()
        .ok_or_else(|| RunError::Channel {
            what: "echo probe".into(),
            message: "no task channel".into(),
        })?;
    let channel_err = |what: &str| {
        let what = what.to_string();
        move |e: String| RunError::Channel {
            what: what.clone(),
            message: e,
        }
    };
    // Replies are read on their own thread: a big send blocks until the peer reads it.
    let (credit_tx, credits) = mpsc::channel::<Result<usize, String>>();
    let reader = std::thread::spawn(move || {
        for _ in 0..messages {
            let reply = receiver.recv().map(|r| r.len()).map_err(|e| e.to_string());
            let failed = reply.is_err();
            if credit_tx.send(reply).is_err() || failed {
                return None;
            }
        }
        // The worker's send time comes last, once its channel closes.
        let stats = receiver.recv().ok()?;
        Some(u64::from_le_bytes(stats.get(..8)?.try_into().ok()?))
    });
    let message = vec![0x5A; bytes];
    // The length of the next echoed message, in order.
    let next_reply = || {
        credits
            .recv()
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(channel_err("echo reply"))
    };
    let start = Instant::now();
    let (mut received, mut send_ns) = (0, 0u64);
    for i in 0..messages {
        if i % 1024 == 0 {
            if let Some(signal) = crate::interrupt::requested() {
                return Err(RunError::Interrupted { signal });
            }
        }
        if i >= DEPTH {
            received += next_reply()?;
        }
        let t = Instant::now();
        sender
            .send(&message)
            .map_err(|e| e.to_string())
            .map_err(channel_err("echo send"))?;
        send_ns += t.elapsed().as_nanos() as u64;
    }
    for _ in messages.saturating_sub(DEPTH)..messages {
        received += next_reply()?;
    }
    let wall = start.elapsed();
    if received != bytes * messages {
        return Err(RunError::Channel {
            what: "echo probe".into(),
            message: format!("{received} bytes came back, {} sent", bytes * messages),
        });
    }
    drop(sender);
    pool.workers[0].close_tasks();
    let worker_send_ns = reader
        .join()
        .ok()
        .flatten()
        .ok_or_else(|| RunError::Channel {
            what: "echo probe".into(),
            message: "the worker did not report its send time".into(),
        })?;
    pool.workers[0].reap(Duration::from_secs(1));
    Ok(Echoed {
        wall,
        send_ns: send_ns + worker_send_ns,
    })
}

/// Writes the probe as CSV: a header and one row.
pub fn write_csv(report: &ProbeReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.serialize(report)?;
    writer.flush()
}

/// Writes the probe as one JSON object on one line.
pub fn write_json(report: &ProbeReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, report)?;
    writeln!(out)
}

/// Writes the probe as lines for people.
pub fn write_text(p: &ProbeReport, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "spawn-and-hello of {} workers: {:.2} ms",
        p.workers, p.spawn_hello_ms
    )?;
    writeln!(
        out,
        "echo of {} x {} bytes (2 in flight): {:.2} GB/s both ways in send time ({:.2} GB/s of wall time)",
        p.echo_messages, p.echo_message_bytes, p.echo_gbps, p.echo_wall_gbps
    )?;
    writeln!(
        out,
        "echo of {} x 8 bytes (2 in flight): {:.2} µs per one-way message",
        p.echo8_messages, p.echo8_us_per_message
    )
}
