//! The worker process's side: parse its command line, connect back to the coordinator, then
//! compute tasks until the task channel closes.
//!
//! A worker dies with its coordinator (`PR_SET_PDEATHSIG`), so a killed coordinator leaves no
//! orphan. For fault-injection tests only, `IPCMAP_FAULT` makes a worker misbehave on purpose
//! (see [`Fault`]).

use crate::error::WorkerError;
use crate::protocol::{
    Hello, ResultHeader, Setup, TaskHeader, WorkerMode, WorkerStats, PROTOCOL_VERSION,
};
use crate::strategy::item::ItemCompute;
use crate::strategy::shm::ShmCompute;
use crate::strategy::split::SplitCompute;
use crate::strategy::{ns_since, Compute, TaskTiming};
use ipc_channel::ipc::{self, IpcBytesReceiver, IpcSender};
use ipc_channel::IpcError;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Exit code of a worker refused for a protocol mismatch.
pub const EXIT_PROTOCOL: i32 = 3;

/// Environment variable naming a fault to inject (tests only).
pub const FAULT_ENV: &str = "IPCMAP_FAULT";

/// The worker's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerArgs {
    /// Name of the coordinator's one-shot server.
    pub connect: String,
    /// This worker's id.
    pub worker_id: u32,
    /// The coordinator's protocol version.
    pub protocol: u32,
    /// The coordinator's pid; the worker exits if its parent is already someone else.
    pub parent_pid: Option<u32>,
}

const USAGE: &str = "usage: worker --connect NAME --worker-id K --protocol V [--parent-pid P] \
(workers are started by the coordinator, not by hand)";

impl WorkerArgs {
    /// Parses `--connect NAME --worker-id K --protocol V [--parent-pid P]`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<WorkerArgs, WorkerError> {
        let (mut connect, mut worker_id, mut protocol, mut parent_pid) = (None, None, None, None);
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| WorkerError::Usage(format!("{flag} needs a value; {USAGE}")))?;
            let number = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| WorkerError::Usage(format!("{flag} {v}: not a number; {USAGE}")))
            };
            match flag.as_str() {
                "--connect" => connect = Some(value),
                "--worker-id" => worker_id = Some(number(&value)?),
                "--protocol" => protocol = Some(number(&value)?),
                "--parent-pid" => parent_pid = Some(number(&value)?),
                other => {
                    return Err(WorkerError::Usage(format!(
                        "unknown argument {other}; {USAGE}"
                    )))
                }
            }
        }
        match (connect, worker_id, protocol) {
            (Some(connect), Some(worker_id), Some(protocol)) => Ok(WorkerArgs {
                connect,
                worker_id,
                protocol,
                parent_pid,
            }),
            _ => Err(WorkerError::Usage(USAGE.to_string())),
        }
    }
}

/// A deliberate misbehaviour, for tests: `exit-after=K`, `panic-after=K`, `garbage-after=K`,
/// `hang-after=K` (after K tasks), or `protocol=V` (announce version V in the hello).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Exit with code 70 after K tasks.
    ExitAfter(u64),
    /// Panic after K tasks.
    PanicAfter(u64),
    /// Send a malformed result after K tasks.
    GarbageAfter(u64),
    /// Stop responding after K tasks.
    HangAfter(u64),
    /// Claim another protocol version.
    Protocol(u32),
}

impl Fault {
    /// The fault named by `$IPCMAP_FAULT` for this worker (`FAULT` or `FAULT@WORKER_ID`).
    pub fn from_env(worker: u32) -> Option<Fault> {
        let spec = std::env::var(FAULT_ENV).ok()?;
        let (fault, only) = match spec.split_once('@') {
            Some((f, w)) => (f.to_string(), w.parse::<u32>().ok()),
            None => (spec.clone(), None),
        };
        if only.is_some_and(|w| w != worker) {
            return None;
        }
        let (name, k) = fault.split_once('=')?;
        let k: u64 = k.parse().ok()?;
        match name {
            "exit-after" => Some(Fault::ExitAfter(k)),
            "panic-after" => Some(Fault::PanicAfter(k)),
            "garbage-after" => Some(Fault::GarbageAfter(k)),
            "hang-after" => Some(Fault::HangAfter(k)),
            "protocol" => u32::try_from(k).ok().map(Fault::Protocol),
            _ => None,
        }
    }
}

/// Runs a worker to completion.
pub fn run(args: &WorkerArgs) -> Result<(), WorkerError> {
    die_with_parent(args.parent_pid);
    if args.protocol != PROTOCOL_VERSION {
        return Err(WorkerError::ProtocolMismatch {
            ours: PROTOCOL_VERSION,
            theirs: args.protocol,
        });
    }
    let worker = args.worker_id;
    let fault = Fault::from_env(worker);
    let channel = |what: &'static str| {
        move |e: std::io::Error| WorkerError::Channel {
            worker,
            what,
            message: e.to_string(),
        }
    };

    let (task_tx, task_rx) = ipc::bytes_channel().map_err(channel("task channel"))?;
    let (setup_tx, setup_rx) = ipc::channel::<Setup>().map_err(channel("setup channel"))?;
    let hello = Hello {
        protocol_version: match fault {
            Some(Fault::Protocol(v)) => v,
            _ => PROTOCOL_VERSION,
        },
        worker,
        pid: std::process::id(),
        tasks: task_tx,
        setup: setup_tx,
    };
    IpcSender::<Hello>::connect(args.connect.clone())
        .map_err(channel("connecting to the coordinator"))?
        .send(hello)
        .map_err(|e| WorkerError::Channel {
            worker,
            what: "sending hello",
            message: e.to_string(),
        })?;
    let setup = setup_rx.recv().map_err(|e| WorkerError::Channel {
        worker,
        what: "receiving setup",
        message: e.to_string(),
    })?;

    if setup.mode == WorkerMode::Echo {
        return echo(worker, &task_rx, &setup.results);
    }
    let mut compute: Box<dyn Compute> = match (setup.mode, setup.shm) {
        (WorkerMode::Item, _) => {
            Box::new(ItemCompute::new(setup.function, setup.work, setup.codec))
        }
        (WorkerMode::Split, _) => {
            Box::new(SplitCompute::new(setup.function, setup.work, setup.codec))
        }
        (WorkerMode::Shm, Some(regions)) => Box::new(
            ShmCompute::attach(setup.function, setup.work, regions).map_err(|message| {
                WorkerError::Channel {
                    worker,
                    what: "mapping shared memory",
                    message,
                }
            })?,
        ),
        (WorkerMode::Echo, _) | (WorkerMode::Shm, None) => {
            return Err(WorkerError::Channel {
                worker,
                what: "setup",
                message: "shm mode without regions".into(),
            })
        }
    };

    let tasks = TaskSource::new(task_rx, setup.prefetch).map_err(channel("prefetch thread"))?;
    let mut stats = WorkerStats {
        worker,
        ..WorkerStats::default()
    };
    let mut out = Vec::new();
    loop {
        let t = Instant::now();
        let frame = match tasks.next() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(message) => {
                return Err(WorkerError::Channel {
                    worker,
                    what: "receiving a task",
                    message,
                })
            }
        };
        stats.idle_ns += ns_since(t);
        let (header, payload) = TaskHeader::read(&frame).map_err(|e| WorkerError::BadTask {
            worker,
            task: 0,
            message: e.to_string(),
        })?;
        inject(fault, stats.tasks, &mut out);

        out.clear();
        ResultHeader {
            worker,
            task: header.task,
            ..ResultHeader::default()
        }
        .write(&mut out);
        let mut timing = TaskTiming::default();
        compute
            .compute(&header, payload, &mut out, &mut timing)
            .map_err(|message| WorkerError::BadTask {
                worker,
                task: header.task,
                message,
            })?;
        ResultHeader::patch_timing(
            &mut out,
            timing.decode_ns,
            timing.compute_ns,
            timing.encode_ns,
        );
        if matches!(fault, Some(Fault::GarbageAfter(k)) if stats.tasks >= k) {
            out.truncate(3);
        }

        let t = Instant::now();
        setup
            .results
            .send(&out)
            .map_err(channel("sending a result"))?;
        stats.send_ns += ns_since(t);
        stats.tasks += 1;
    }
    setup
        .results
        .send(&stats.to_frame())
        .map_err(channel("sending stats"))?;
    Ok(())
}

/// The raw probe: every frame goes straight back, no header, no decoding, no copy but the
/// channel's own; when the channel closes, one 8-byte frame with the ns spent sending.
fn echo(
    worker: u32,
    tasks: &IpcBytesReceiver,
    results: &ipc::IpcBytesSender,
) -> Result<(), WorkerError> {
    let mut send_ns = 0u64;
    let send_err = |e: std::io::Error| WorkerError::Channel {
        worker,
        what: "echoing a frame",
        message: e.to_string(),
    };
    loop {
        match tasks.recv() {
            Ok(frame) => {
                let t = Instant::now();
                results.send(&frame).map_err(send_err)?;
                send_ns += ns_since(t);
            }
            // Last, the time spent sending, so the probe measures as the strategies do. A
            // coordinator that no longer listens (the spawn probe) is a clean shutdown too.
            Err(IpcError::Disconnected) => {
                let _ = results.send(&send_ns.to_le_bytes());
                return Ok(());
            }
            Err(e) => {
                return Err(WorkerError::Channel {
                    worker,
                    what: "receiving a frame",
                    message: e.to_string(),
                })
            }
        }
    }
}

/// Where task frames come from: the channel, or a thread that reads it ahead.
enum TaskSource {
    Direct(IpcBytesReceiver),
    Prefetched(mpsc::Receiver<Result<Vec<u8>, IpcError>>),
}

impl TaskSource {
    fn new(receiver: IpcBytesReceiver, prefetch: bool) -> std::io::Result<TaskSource> {
        if !prefetch {
            return Ok(TaskSource::Direct(receiver));
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || loop {
                let frame = receiver.recv();
                let last = frame.is_err();
                if tx.send(frame).is_err() || last {
                    break;
                }
            })?;
        Ok(TaskSource::Prefetched(rx))
    }

    /// The next frame, or `None` once the coordinator closed the channel.
    fn next(&self) -> Result<Option<Vec<u8>>, String> {
        let frame = match self {
            TaskSource::Direct(receiver) => receiver.recv(),
            TaskSource::Prefetched(rx) => rx.recv().unwrap_or(Err(IpcError::Disconnected)),
        };
        match frame {
            Ok(frame) => Ok(Some(frame)),
            Err(IpcError::Disconnected) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn inject(fault: Option<Fault>, done: u64, _out: &mut [u8]) {
    match fault {
        Some(Fault::ExitAfter(k)) if done >= k => std::process::exit(70),
        Some(Fault::PanicAfter(k)) if done >= k => panic!("injected fault: panic after {k} tasks"),
        Some(Fault::HangAfter(k)) if done >= k => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        _ => {}
    }
}

/// Asks the kernel to kill this process when its parent dies, and exits at once if the parent
/// is already gone (it died before the request was made).
fn die_with_parent(parent: Option<u32>) {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    }
    if let Some(parent) = parent {
        if nix::unistd::getppid().as_raw() as u32 != parent {
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_its_command_line() {
        let parsed = WorkerArgs::parse(args(&[
            "--connect",
            "x",
            "--worker-id",
            "3",
            "--protocol",
            "1",
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            WorkerArgs {
                connect: "x".into(),
                worker_id: 3,
                protocol: 1,
                parent_pid: None
            }
        );
    }

    #[test]
    fn refuses_bad_command_lines() {
        for bad in [
            &["--connect"][..],
            &["--connect", "x"],
            &["--connect", "x", "--worker-id", "z", "--protocol", "1"],
            &["--bogus", "1"],
        ] {
            assert!(WorkerArgs::parse(args(bad)).is_err(), "{bad:?}");
        }
    }
}
