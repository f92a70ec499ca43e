//! `cma`: single copy, as MPI does it inside one node (Open MPI vader's CMA path). The
//! coordinator keeps input and output in its own private (huge-page) buffers; only (offset,
//! length) ranges travel. Each worker pulls its range of the input straight out of the
//! coordinator's memory with `process_vm_readv` into a buffer of its own, computes, and
//! pushes the result straight into the coordinator's output with `process_vm_writev`. It sits
//! between shm (zero copies, shared pages) and split (two copies through a socket, plus the
//! codec).
//!
//! In the phases, a worker's copy in shows as `decode` and its copy out as `encode`; the bytes
//! copied, as the workers counted them, are the report's `bytes_copied`. The coordinator
//! grants the access to its own descendants only (`prctl(PR_SET_PTRACER, own pid)`) for the
//! run where Yama asks for it;
//! where the kernel or a container refuses cross-memory attach, the strategy is unavailable
//! and says why.

use super::{ns_since, on_processes, Compute, Info, Run, Strategy, TaskIn, TaskOut};
use crate::costs::{Load, Prediction};
use crate::error::{PayloadError, RunError};
use crate::kernel::{self, Function};
use crate::partition::Task;
use crate::protocol::{decode_extra, encode_extra, Setup};
use crate::scheduler::{Attach, Received, ScatterGather};
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut};
use std::time::Instant;

/// Single copy with `process_vm_readv` / `process_vm_writev`.
pub struct Cma;

/// Where the workers find the coordinator's buffers.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Peer {
    pid: i32,
    input_addr: u64,
    output_addr: u64,
    n: u64,
}

/// Its `--help` line.
const ABOUT: &str =
    "single copy: workers read and write the coordinator's memory (process_vm_readv/writev)";

impl Strategy for Cma {
    /// Starting the workers and generating, then ranges out (a message each) while each
    /// worker copies its range in, computes and copies it back (process_vm_readv/writev).
    fn predict(&self, l: &Load<'_>) -> Option<Prediction> {
        let (spawn, generate) = (l.spawn_ns(), l.generate_ns(false));
        let copies = l.n * (2.0 * l.cal.copy_ns.at(l.pick) + l.cal.touch_private_ns.at(l.pick));
        let run = l.pipeline_ns(l.tasks * l.message_ns(), l.compute_ns() + copies);
        Some(Prediction {
            wall_ms: Load::ms(spawn + generate + run),
            phases_ms: vec![
                ("spawn", Load::ms(spawn)),
                ("generate", Load::ms(generate)),
                ("copy and compute", Load::ms(run)),
            ],
        })
    }

    fn info(&self) -> Info {
        Info::processes_here("cma", ABOUT, "cross-memory copies (process_vm_readv/writev)")
            .in_place()
    }

    fn available(&self) -> Result<(), String> {
        let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope");
        if scope.is_ok_and(|s| s.trim() == "3") {
            return Err(
                "Yama forbids every cross-process memory access (kernel.yama.ptrace_scope = 3)"
                    .into(),
            );
        }
        // A kernel without CMA, or a seccomp filter, refuses even a read of our own memory.
        let probe = [0x5Au8; 8];
        let mut into = [0u8; 8];
        let remote = [RemoteIoVec { base: probe.as_ptr() as usize, len: probe.len() }];
        match process_vm_readv(Pid::this(), &mut [IoSliceMut::new(&mut into)], &remote) {
            Ok(8) if into == probe => Ok(()),
            Ok(got) => Err(format!("process_vm_readv copied {got} of 8 bytes")),
            Err(e) => Err(format!(
                "process_vm_readv is refused here ({e}): a container without ptrace rights?"
            )),
        }
    }

    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        // The workers write here while the run holds the buffer; nothing in this process
        // reads or moves it until every result is in (run_on_pool has returned). In place,
        // they write back where they read.
        let in_place = run.output.is_none();
        let output = match run.output {
            Some(output) => output.as_mut_slice().as_mut_ptr(),
            None => run.input.as_mut_slice().as_mut_ptr(),
        };
        let peer = Peer {
            pid: Pid::this().as_raw(),
            input_addr: run.input.as_slice().as_ptr() as u64,
            output_addr: output as u64,
            n: run.cfg.n as u64,
        };
        let attach = Attach { setup: encode_extra(&peer), inherit_fds: Vec::new() };
        let _grant = PtracerGrant::descendants();
        // In place, a task sent again gets its range back first (its lost worker may have
        // written part of its result over it).
        let rerun = super::RerunInPlace::of(run.cfg.seed, run.input, in_place);
        let sg = CopiedRanges { copied: Default::default(), attach, rerun };
        // The workers write the output themselves: nothing passes through a slice here.
        on_processes(run.cfg, run.mode, &sg, &mut [], run.m, run.start)?;
        run.m.extras.bytes_copied = sg.copied.into_inner();
        Ok(())
    }

    fn worker(&self, setup: &Setup) -> Result<Box<dyn Compute>, PayloadError> {
        let peer: Peer = decode_extra(&setup.extra)?;
        Ok(Box::new(CmaCompute {
            function: setup.function,
            work: setup.work,
            peer,
            input: Vec::new(),
            output: Vec::new(),
        }))
    }
}

/// Lets this process's descendants (its workers, which it spawned itself) read and write its
/// memory while held, where Yama asks for consent (`PR_SET_PTRACER`). Yama lets a declared
/// tracer *and its descendants* attach, so naming ourselves grants exactly our own children:
/// never `PR_SET_PTRACER_ANY`, which would let any process of this user attach for the run.
/// Without Yama the call is refused and nothing changes.
struct PtracerGrant;

impl PtracerGrant {
    fn descendants() -> PtracerGrant {
        let me = std::process::id() as nix::libc::c_ulong;
        // SAFETY: prctl with integer arguments only.
        unsafe { nix::libc::prctl(nix::libc::PR_SET_PTRACER, me, 0, 0, 0) };
        PtracerGrant
    }
}

impl Drop for PtracerGrant {
    fn drop(&mut self) {
        // SAFETY: as above; 0 withdraws the grant.
        unsafe { nix::libc::prctl(nix::libc::PR_SET_PTRACER, 0, 0, 0, 0) };
    }
}

/// The coordinator half: tasks are ranges; a result says how many bytes its worker copied.
struct CopiedRanges<'a> {
    copied: std::sync::atomic::AtomicU64,
    /// The same peer for every worker.
    attach: Attach,
    /// In place: what a task sent again needs first.
    rerun: Option<super::RerunInPlace<'a>>,
}

impl ScatterGather for CopiedRanges<'_> {
    fn attach(&self, _worker: u32) -> Attach {
        self.attach.clone()
    }

    fn encode_task(&self, _: u32, task: &Task, _out: &mut Vec<u8>) -> Result<u64, PayloadError> {
        if let Some(rerun) = &self.rerun {
            rerun.before_send(task);
        }
        Ok(0)
    }

    fn decode_result(&self, got: Received<'_>, _out: &mut [f64]) -> Result<u64, PayloadError> {
        let (task, payload) = (got.task, got.payload);
        let count = |at: usize| {
            payload.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
        };
        let expected = task.len() as u64 * 8;
        match (payload.len(), count(0), count(8)) {
            (16, Some(read), Some(written)) if read == expected && written == expected => {
                self.copied.fetch_add(read + written, std::sync::atomic::Ordering::Relaxed);
                Ok(0)
            }
            // Name the count that is wrong, with the number that differs.
            (16, Some(read), Some(_)) if read != expected => Err(PayloadError::Mismatch {
                what: "bytes a cma result says were copied in",
                got: read,
                expected,
            }),
            (16, Some(_), Some(written)) => Err(PayloadError::Mismatch {
                what: "bytes a cma result says were copied out",
                got: written,
                expected,
            }),
            (len, _, _) => Err(PayloadError::Mismatch {
                what: "payload bytes of a cma result",
                got: len as u64,
                expected: 16,
            }),
        }
    }
}

/// The worker half: copy in, compute, copy out.
struct CmaCompute {
    function: Function,
    work: u32,
    peer: Peer,
    input: Vec<f64>,
    output: Vec<f64>,
}

impl CmaCompute {
    fn refused(&self, call: &str, e: nix::Error) -> PayloadError {
        PayloadError::Setup(format!(
            "cma: {call} on the coordinator (pid {}) failed: {e}; cross-memory attach needs ptrace rights over it",
            self.peer.pid
        ))
    }
}

impl Compute for CmaCompute {
    fn compute(&mut self, task: TaskIn<'_>, out: TaskOut<'_>) -> Result<(), PayloadError> {
        let (TaskIn { header, payload }, TaskOut { bytes: out, timing }) = (task, out);
        let out_of_range =
            PayloadError::OutOfRange { start: header.start, len: header.len, n: self.peer.n };
        if !payload.is_empty() {
            return Err(PayloadError::Mismatch {
                what: "payload bytes of a cma task",
                got: payload.len() as u64,
                expected: 0,
            });
        }
        let end = header.start.checked_add(header.len).ok_or(out_of_range)?;
        if end > self.peer.n {
            return Err(PayloadError::OutOfRange {
                start: header.start,
                len: header.len,
                n: self.peer.n,
            });
        }
        let len = header.len as usize;
        let bytes = len * 8;
        let offset = header.start as usize * 8;
        let pid = Pid::from_raw(self.peer.pid);

        let t = Instant::now();
        self.input.resize(len, 0.0);
        let remote = [RemoteIoVec { base: self.peer.input_addr as usize + offset, len: bytes }];
        let local = bytemuck::cast_slice_mut::<f64, u8>(&mut self.input);
        let read = process_vm_readv(pid, &mut [IoSliceMut::new(local)], &remote)
            .map_err(|e| self.refused("process_vm_readv", e))?;
        timing.decode_ns = ns_since(t);

        let t = Instant::now();
        self.output.resize(len, 0.0);
        kernel::apply_work(self.function, self.work, &self.input, &mut self.output);
        timing.compute_ns = ns_since(t);

        let t = Instant::now();
        let remote = [RemoteIoVec { base: self.peer.output_addr as usize + offset, len: bytes }];
        let local = bytemuck::cast_slice::<f64, u8>(&self.output);
        let written = process_vm_writev(pid, &[IoSlice::new(local)], &remote)
            .map_err(|e| self.refused("process_vm_writev", e))?;
        timing.encode_ns = ns_since(t);
        out.extend_from_slice(&(read as u64).to_le_bytes());
        out.extend_from_slice(&(written as u64).to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ScatterGather;

    fn result(read: u64, written: u64) -> Vec<u8> {
        [read.to_le_bytes(), written.to_le_bytes()].concat()
    }

    /// A wrong count is named once, with the number that differs.
    #[test]
    fn a_wrong_copy_count_names_the_count_that_differs() {
        let sg =
            CopiedRanges { copied: Default::default(), attach: Attach::default(), rerun: None };
        let task = Task { index: 0, parts: std::iter::once(0..1000).collect() };
        let mut out = [0.0; 0];
        assert!(sg.decode_result(Received::new(0, &task, &result(8000, 8000)), &mut out).is_ok());
        let refused: [(&[u8], &str); 3] = [
            (&result(8000, 7992), "copied out: 7992, expected 8000"),
            (&result(16, 8000), "copied in: 16, expected 8000"),
            (&[0u8; 9], "payload bytes of a cma result: 9, expected 16"),
        ];
        for (payload, says) in refused {
            let got = Received::new(0, &task, payload);
            let err = sg.decode_result(got, &mut out).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }
}
