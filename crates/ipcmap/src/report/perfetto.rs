//! `--trace FILE.json`: the spans of every measured run in the Chrome trace-event format, which
//! Perfetto (ui.perfetto.dev) and chrome://tracing open. One process track per OS process (the
//! coordinator, each worker process of each run; named, its host too where known, and sorted
//! in the order they appear), a named thread track per worker thread of the threads strategy
//! and per helper thread of the coordinator, one complete event ("ph": "X") per phase per
//! task, whose args name the strategy, the run and the task; and flow arrows from each task's
//! send to its receive and from its result's send to its decode, which show where a message
//! waited. Times are µs on one clock, `CLOCK_MONOTONIC` (worker ranks on other hosts moved
//! onto rank 0's), and a span's start and length come from that same clock, so the slices of
//! a track never overlap.

use super::Report;
use crate::trace::Phase;
use serde::Serialize;
use serde_json::{json, Value};
use std::io::Write;

/// Track ids of the coordinator's decoder threads: this plus the thread's index.
const DECODER_TIDS: u32 = 2000;

/// One trace event.
#[derive(Serialize)]
struct Event {
    name: String,
    cat: &'static str,
    ph: &'static str,
    ts: f64,
    dur: f64,
    pid: u32,
    tid: u32,
    args: Value,
}

/// The trace's events, written out one at a time as they are made (a million spans never
/// become a million JSON values in memory at once).
struct Events<'w> {
    out: &'w mut dyn Write,
    first: bool,
}

impl Events<'_> {
    /// Writes one event (as the array's next element).
    fn push(&mut self, event: impl Serialize) -> std::io::Result<()> {
        if !std::mem::replace(&mut self.first, false) {
            self.out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *self.out, &event)?;
        Ok(())
    }
}

/// Writes the trace of every report's recorded runs, streamed: memory stays at the spans'
/// own, whatever the file's size.
pub fn write_trace(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    let me = std::process::id();
    out.write_all(b"{\"traceEvents\":[")?;
    let mut events = Events { out, first: true };
    let mut named: Vec<u32> = Vec::new();
    // Every process named, sorted in the order it first appears (the coordinator first), its
    // main thread named too.
    let mut name = |events: &mut Events<'_>, pid: u32, label: String, thread: &str| {
        if named.contains(&pid) {
            return Ok(());
        }
        named.push(pid);
        events.push(json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"name": label}}))?;
        events.push(json!({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"sort_index": named.len()}}))?;
        events.push(json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"name": thread}}))
    };
    name(&mut events, me, format!("coordinator (pid {me})"), "coordinator")?;
    let mut decoders: Vec<u32> = Vec::new();
    let mut threads: Vec<u32> = Vec::new();
    let mut flows = Flows::default();
    for r in reports {
        for run in &r.traces {
            flows.next_run();
            for s in &run.spans {
                let (pid, tid) = match (s.worker, s.thread) {
                    (None, Some(t)) => {
                        if !decoders.contains(&t) {
                            decoders.push(t);
                        }
                        (me, DECODER_TIDS + t)
                    }
                    (Some(w), _) if s.pid == me => {
                        // a thread of the threads strategy
                        if !threads.contains(&w) {
                            threads.push(w);
                        }
                        (me, w + 1)
                    }
                    (Some(w), _) => {
                        // Where it ran, where the transport knows (an MPI rank on its host).
                        let at = r.worker_detail.iter().find(|d| d.id == w).and_then(|d| {
                            Some(format!(", rank {} on {}", d.rank?, d.host.as_deref()?))
                        });
                        let at = at.unwrap_or_default();
                        name(
                            &mut events,
                            s.pid,
                            format!(
                                "{} worker {w}{at}, run {} (pid {})",
                                r.config.mode, run.run, s.pid
                            ),
                            "worker",
                        )?;
                        (s.pid, 0)
                    }
                    (None, None) => (me, 0),
                };
                let event = Event {
                    name: s.phase.name().to_string(),
                    cat: "phase",
                    ph: "X",
                    ts: s.start_ns as f64 / 1e3,
                    dur: s.end_ns.saturating_sub(s.start_ns) as f64 / 1e3,
                    pid,
                    tid,
                    args: json!({"strategy": r.config.mode, "run": run.run, "task": s.task,
                                 "worker": s.worker}),
                };
                flows.note(&event, s.phase, s.task, pid == me);
                events.push(event)?;
            }
            events.push(json!({"name": format!("{} run {}", r.config.mode, run.run), "cat": "run",
                               "ph": "X", "ts": run.start_ns as f64 / 1e3,
                               "dur": run.end_ns.saturating_sub(run.start_ns) as f64 / 1e3,
                               "pid": me, "tid": 1000, "args": {"strategy": r.config.mode, "run": run.run}}))?;
        }
    }
    events.push(json!({"name": "thread_name", "ph": "M", "pid": me, "tid": 1000,
                       "args": {"name": "runs (wall time)"}}))?;
    for w in threads {
        events.push(json!({"name": "thread_name", "ph": "M", "pid": me, "tid": w + 1,
                           "args": {"name": format!("thread {w}")}}))?;
    }
    flows.arrows(&mut events)?;
    for t in decoders {
        events
            .push(json!({"name": "thread_name", "ph": "M", "pid": me, "tid": DECODER_TIDS + t,
                           "args": {"name": helper_name(t)}}))?;
    }
    let out = events.out;
    out.write_all(b"],\"displayTimeUnit\":\"ms\"}\n")
}

/// Where each task's frames left and arrived, run by run, for the flow arrows: a task's send
/// by the coordinator to its receive by the worker, and the result's send by the worker to its
/// decode by the coordinator.
#[derive(Default)]
struct Flows {
    run: usize,
    /// (run, task, leg) -> the sending slices' and the receiving slices' ends.
    ends: std::collections::BTreeMap<(usize, u32, u8), [Vec<FlowEnd>; 2]>,
}

/// One end of a flow: its slice's (pid, tid), start and end, µs.
type FlowEnd = (u32, u32, f64, f64);

impl Flows {
    fn next_run(&mut self) {
        self.run += 1;
    }

    /// Notes a slice that is one end of a leg.
    fn note(&mut self, e: &Event, phase: Phase, task: Option<u32>, coordinator: bool) {
        let Some(task) = task else { return };
        let (leg, end) = match (phase, coordinator) {
            (Phase::Send, true) => (0, 0),
            (Phase::Receive, false) => (0, 1),
            (Phase::Send, false) => (1, 0),
            (Phase::Decode, true) => (1, 1),
            _ => return,
        };
        self.ends.entry((self.run, task, leg)).or_default()[end].push((
            e.pid,
            e.tid,
            e.ts,
            e.ts + e.dur,
        ));
    }

    /// One arrow per leg whose both ends were seen (a task sent twice, after a retry, pairs its
    /// sends and receives in order), written out as they are made.
    fn arrows(&self, out: &mut Events<'_>) -> std::io::Result<()> {
        let mut id = 0;
        for ((_, task, leg), [from, to]) in &self.ends {
            for (&(spid, stid, sts, _), &(fpid, ftid, fstart, fend)) in from.iter().zip(to) {
                // A flow binds to the slice enclosing its time: it starts at its sending
                // slice's start and finishes inside the receiving slice, never before it
                // started (a receive that began waiting before the send would otherwise put
                // the finish first, and a trace reader would see a finish with no start).
                let fts = (sts + 0.001).clamp(fstart, fend);
                id += 1;
                let name =
                    if *leg == 0 { format!("task {task}") } else { format!("result {task}") };
                out.push(json!({"name": name, "cat": "flow", "ph": "s", "id": id,
                                "pid": spid, "tid": stid, "ts": sts}))?;
                out.push(json!({"name": name, "cat": "flow", "ph": "f", "bp": "e", "id": id,
                                "pid": fpid, "tid": ftid, "ts": fts}))?;
            }
        }
        Ok(())
    }
}

/// A helper thread's track name: a decoder, or the local transport's sender to a worker.
fn helper_name(t: u32) -> String {
    match t.checked_sub(crate::trace::SENDER_TRACKS) {
        Some(w) => format!("sender to worker {w}"),
        None => format!("decoder {t}"),
    }
}
