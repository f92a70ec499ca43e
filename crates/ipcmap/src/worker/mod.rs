//! The worker process's side: parse its command line, connect back to the coordinator, then
//! compute tasks until the task channel closes.
//!
//! A worker dies with its coordinator (`PR_SET_PDEATHSIG`), so a killed coordinator leaves no
//! orphan. For fault-injection tests only, `IPCMAP_FAULT` makes a worker misbehave on purpose
//! (see [`Fault`]).

use crate::error::{LinkError, PayloadError, WorkerError};
use crate::protocol::{
    ResultHeader, Setup, TaskHeader, TaskStamp, WorkerStats, ACK, ECHO, PROTOCOL_VERSION,
};
use crate::strategy::{ns_since, Mode, TaskIn, TaskOut, TaskTiming};
use crate::transport::{Inbox, Outbox, TransportKind};
use seams::{Injected, Seams};

mod seams;
use std::sync::mpsc;
use std::time::Instant;

/// Exit code of a worker refused for a protocol mismatch.
pub const EXIT_PROTOCOL: i32 = 3;

pub use crate::fault::FAULT_ENV;

/// The worker's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerArgs {
    /// Where the coordinator listens for its hello (its transport's words).
    pub connect: String,
    /// The transport, by name; `None`: the default (the registry's first).
    pub transport: Option<String>,
    /// This worker's id.
    pub worker_id: u32,
    /// The coordinator's protocol version.
    pub protocol: u32,
    /// The coordinator's pid; the worker exits if its parent is already someone else.
    pub parent_pid: Option<u32>,
    /// How long to wait for the coordinator after the hello, ms (its `--handshake-timeout`).
    pub handshake_ms: Option<u32>,
}

const USAGE: &str = "usage: worker --connect NAME [--transport T] --worker-id K --protocol V \
[--parent-pid P] [--handshake-ms MS] (workers are started by the coordinator, not by hand)";

impl WorkerArgs {
    /// Parses `--connect NAME [--transport T] --worker-id K --protocol V [--parent-pid P]`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<WorkerArgs, WorkerError> {
        let (mut connect, mut worker_id, mut protocol, mut parent_pid) = (None, None, None, None);
        let (mut transport, mut handshake_ms) = (None, None);
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
                "--transport" => transport = Some(value),
                "--worker-id" => worker_id = Some(number(&value)?),
                "--protocol" => protocol = Some(number(&value)?),
                "--parent-pid" => parent_pid = Some(number(&value)?),
                "--handshake-ms" => handshake_ms = Some(number(&value)?),
                other => {
                    return Err(WorkerError::Usage(format!("unknown argument {other}; {USAGE}")))
                }
            }
        }
        match (connect, worker_id, protocol) {
            (Some(connect), Some(worker_id), Some(protocol)) => {
                Ok(WorkerArgs { connect, transport, worker_id, protocol, parent_pid, handshake_ms })
            }
            _ => Err(WorkerError::Usage(USAGE.to_string())),
        }
    }
}

pub use crate::fault::Fault;

/// Runs a worker process to completion: connects over the transport its command line names
/// The worker executable's `main`: its arguments parsed, [`run`], and the outcome as an exit
/// status with one line on stderr. Both worker binaries (`worker`, the workspace's, and
/// `ipcmap-worker`, which `cargo install` and the wheel put beside `coordinator`) are this.
pub fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let args = match WorkerArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("worker: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ WorkerError::ProtocolMismatch { .. }) => {
            eprintln!("worker {}: {e}", args.worker_id);
            ExitCode::from(EXIT_PROTOCOL as u8)
        }
        Err(WorkerError::InjectedExit { code, .. }) => ExitCode::from(code),
        // These already name the worker.
        Err(
            e @ (WorkerError::Channel { .. }
            | WorkerError::Link { .. }
            | WorkerError::BadTask { .. }
            | WorkerError::Setup { .. }),
        ) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("worker {}: {e}", args.worker_id);
            ExitCode::FAILURE
        }
    }
}

/// (the registry's connect), then [`serve`]s.
pub fn run(args: &WorkerArgs) -> Result<(), WorkerError> {
    die_with_parent(args.parent_pid);
    if let Some(ms) = args.handshake_ms {
        crate::transport::handshake::set_worker_wait(std::time::Duration::from_millis(ms.into()));
    }
    if args.protocol != PROTOCOL_VERSION {
        return Err(WorkerError::ProtocolMismatch {
            ours: PROTOCOL_VERSION,
            theirs: args.protocol,
        });
    }
    let worker = args.worker_id;
    let fault = Fault::from_env(worker);
    let announced = match fault {
        Some(Fault::Protocol(v)) => v,
        _ => PROTOCOL_VERSION,
    };
    let kind = match &args.transport {
        Some(name) => TransportKind::named(name).ok_or_else(|| {
            WorkerError::Usage(format!("--transport {name}: no such transport; {USAGE}"))
        })?,
        None => TransportKind::default(),
    };
    let transport = kind.transport().map_err(|e| WorkerError::Usage(e.to_string()))?;
    let (inbox, outbox) = transport.connect(&args.connect, worker, announced)?;
    serve(worker, fault, inbox, outbox)
}

/// The worker loop, whatever the transport: reads the [`Setup`] frame, then serves run after
/// run until the coordinator closes the inbox. A run is task after task until an empty frame
/// (the run's end: the pool lives on, `--pool persistent`) or the inbox's close, and the
/// worker's stats last; after a run's end the next frame is the next run's setup. A setup
/// equal to the last one keeps the strategy's worker half as it is (its mappings too).
pub fn serve(
    worker: u32,
    fault: Option<Fault>,
    mut inbox: Box<dyn Inbox>,
    mut outbox: Box<dyn Outbox>,
) -> Result<(), WorkerError> {
    let link =
        |what: &'static str| move |source: LinkError| WorkerError::Link { worker, what, source };
    let setup_frame = inbox
        .recv()
        .map_err(link("receiving setup"))?
        .ok_or_else(|| link("receiving setup")(LinkError::Closed))?;
    let mut setup = Setup::from_frame(&setup_frame)
        .map_err(|e| WorkerError::Setup { worker, source: e.into() })?;
    if setup.mode == ECHO || setup.mode == ACK {
        outbox.set_frame_bytes(usize::try_from(setup.frame_bytes).unwrap_or(usize::MAX));
        return echo(worker, setup.mode == ACK, inbox.as_mut(), outbox.as_mut());
    }
    let mut tasks =
        TaskSource::new(inbox, setup.prefetch).map_err(|e| link("prefetch thread")(e.into()))?;
    let mut compute: Option<(Setup, Box<dyn crate::strategy::Compute>)> = None;
    // Tasks done in earlier runs: an injected fault counts the worker's life, not one run.
    let mut done = 0u64;
    loop {
        outbox.set_frame_bytes(usize::try_from(setup.frame_bytes).unwrap_or(usize::MAX));
        let kept = compute.take().filter(|(last, _)| *last == setup);
        let mut half = match kept {
            Some((_, half)) => half,
            None => {
                let strategy = Mode::named(&setup.mode)
                    .ok_or_else(|| WorkerError::Setup {
                        worker,
                        source: PayloadError::Setup(format!("no strategy called {:?}", setup.mode)),
                    })?
                    .strategy();
                strategy.worker(&setup).map_err(|source| WorkerError::Setup { worker, source })?
            }
        };
        let seams = Seams::new(fault, done);
        let (end, tasks_done) =
            serve_run(worker, &seams, &setup, half.as_mut(), &tasks, outbox.as_mut())?;
        done += tasks_done;
        if end == RunEnd::Closed {
            return Ok(());
        }
        compute = Some((setup, half));
        let mut frame = Vec::new();
        match tasks.next(&mut frame) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(source) => return Err(link("receiving setup")(source)),
        }
        setup = Setup::from_frame(&frame)
            .map_err(|e| WorkerError::Setup { worker, source: e.into() })?;
        if setup.prefetch {
            tasks = tasks.prefetching().map_err(|e| link("prefetch thread")(e.into()))?;
        }
    }
}

/// How a run ended for a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunEnd {
    /// The inbox closed: the worker's life is over.
    Closed,
    /// An empty frame: the next run's setup follows.
    Next,
}

/// One run: task after task until its end, then the worker's stats for the run; with the
/// tasks it did.
fn serve_run(
    worker: u32,
    seams: &Seams,
    setup: &Setup,
    compute: &mut dyn crate::strategy::Compute,
    tasks: &TaskSource,
    outbox: &mut dyn Outbox,
) -> Result<(RunEnd, u64), WorkerError> {
    let link =
        |what: &'static str| move |source: LinkError| WorkerError::Link { worker, what, source };
    seams.before_task(0);
    let mut stats = WorkerStats { worker, ..WorkerStats::default() };
    let cpu_at_start = crate::trace::cpu_ns();
    // Its peak memory from here on: a worker of a kept pool, or a rank of an MPI job, serves
    // run after run.
    crate::memory::reset_peak_rss();
    let mut out = Vec::new();
    // One task buffer, lent to the inbox for each frame.
    let mut frame = Vec::new();
    let mut stamps: Vec<TaskStamp> = Vec::new();
    let end = loop {
        seams.before_task(stats.tasks);
        // One clock for a span's start, end and length, so a worker's spans never overlap.
        let waiting_since = crate::trace::now_ns();
        match tasks.next(&mut frame) {
            Ok(true) if frame.is_empty() => break RunEnd::Next,
            Ok(true) => {}
            Ok(false) => break RunEnd::Closed,
            Err(source) => {
                return Err(WorkerError::Link { worker, what: "receiving a task", source })
            }
        }
        let received_at_ns = crate::trace::now_ns();
        let idle_ns = received_at_ns.saturating_sub(waiting_since);
        stats.idle_ns += idle_ns;
        let (header, payload) = TaskHeader::read(&frame).map_err(|e| WorkerError::BadTask {
            worker,
            task: 0,
            source: e.into(),
        })?;
        match seams.on_task(stats.tasks, tasks) {
            Injected::Nothing => {}
            Injected::End => return Ok((RunEnd::Closed, stats.tasks)),
            Injected::Exit(code) => return Err(WorkerError::InjectedExit { worker, code }),
        }

        out.clear();
        ResultHeader { worker, task: header.task, ..ResultHeader::default() }.write(&mut out);
        let mut timing = TaskTiming::default();
        compute
            .compute(
                TaskIn { header: &header, payload },
                TaskOut { bytes: &mut out, timing: &mut timing },
            )
            .map_err(|source| WorkerError::BadTask { worker, task: header.task, source })?;
        let ns = [timing.decode_ns, timing.compute_ns, timing.encode_ns, timing.generate_ns];
        ResultHeader::patch_timing(&mut out, ns);
        seams
            .on_result(stats.tasks, &mut out)
            .map_err(|code| WorkerError::InjectedExit { worker, code })?;

        let sent_at_ns = crate::trace::now_ns();
        outbox.send(&out).map_err(link("sending a result"))?;
        let send_ns = crate::trace::now_ns().saturating_sub(sent_at_ns);
        stats.send_ns += send_ns;
        stats.tasks += 1;
        if setup.trace {
            stamps.push(TaskStamp {
                task: header.task,
                received_at_ns,
                idle_ns,
                sent_at_ns,
                send_ns,
            });
        }
    };
    let cpu = crate::trace::cpu_ns();
    stats.user_ns = cpu.0.saturating_sub(cpu_at_start.0);
    stats.system_ns = cpu.1.saturating_sub(cpu_at_start.1);
    stats.peak_rss_bytes = crate::memory::peak_rss_bytes().unwrap_or(0);
    let mut frame = stats.to_frame();
    for stamp in &stamps {
        stamp.write(&mut frame);
    }
    outbox.send(&frame).map_err(link("sending stats"))?;
    Ok((end, stats.tasks))
}

/// The raw probe: every frame goes straight back (or, with `ack`, an 8-byte frame answers
/// it), no header, no decoding, no copy but the channel's own; when the inbox closes, one
/// 8-byte frame with the ns spent sending.
fn echo(
    worker: u32,
    ack: bool,
    inbox: &mut dyn Inbox,
    outbox: &mut dyn Outbox,
) -> Result<(), WorkerError> {
    let mut send_ns = 0u64;
    loop {
        match inbox.recv() {
            Ok(Some(frame)) => {
                let t = Instant::now();
                let reply = if ack { &frame[..frame.len().min(8)] } else { &frame[..] };
                outbox.send(reply).map_err(|source| WorkerError::Link {
                    worker,
                    what: "echoing a frame",
                    source,
                })?;
                send_ns += ns_since(t);
            }
            // Last, the time spent sending, so the probe measures as the strategies do. A
            // coordinator that no longer listens (the spawn probe) is a clean shutdown too.
            Ok(None) => {
                let _ = outbox.send(&send_ns.to_le_bytes());
                return Ok(());
            }
            Err(source) => {
                return Err(WorkerError::Link { worker, what: "receiving a frame", source })
            }
        }
    }
}

/// Where task frames come from: the inbox, or a thread that reads it ahead.
enum TaskSource {
    Direct(std::cell::RefCell<Box<dyn Inbox>>),
    Prefetched(mpsc::Receiver<Result<Option<Vec<u8>>, LinkError>>),
}

impl TaskSource {
    fn new(mut inbox: Box<dyn Inbox>, prefetch: bool) -> std::io::Result<TaskSource> {
        if !prefetch {
            return Ok(TaskSource::Direct(std::cell::RefCell::new(inbox)));
        }
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name("prefetch".into()).spawn(move || loop {
            let frame = inbox.recv();
            let last = !matches!(frame, Ok(Some(_)));
            if tx.send(frame).is_err() || last {
                break;
            }
        })?;
        Ok(TaskSource::Prefetched(rx))
    }

    /// The same source, reading ahead from now on (a kept worker whose later run has big
    /// tasks); one that reads ahead already stays as it is.
    fn prefetching(self) -> std::io::Result<TaskSource> {
        match self {
            TaskSource::Direct(inbox) => TaskSource::new(inbox.into_inner(), true),
            prefetched => Ok(prefetched),
        }
    }

    /// The next frame into `frame`, or `false` once the coordinator closed the inbox.
    fn next(&self, frame: &mut Vec<u8>) -> Result<bool, LinkError> {
        match self {
            TaskSource::Direct(inbox) => inbox.borrow_mut().recv_into(frame),
            TaskSource::Prefetched(rx) => match rx.recv().unwrap_or(Ok(None))? {
                Some(got) => {
                    *frame = got;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
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
        let parsed =
            WorkerArgs::parse(args(&["--connect", "x", "--worker-id", "3", "--protocol", "1"]))
                .unwrap();
        assert_eq!(
            parsed,
            WorkerArgs {
                connect: "x".into(),
                transport: None,
                worker_id: 3,
                protocol: 1,
                parent_pid: None,
                handshake_ms: None,
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
