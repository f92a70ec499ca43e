//! `--trace FILE.json`: the spans of every measured run in the Chrome trace-event format, which
//! Perfetto (ui.perfetto.dev) and chrome://tracing open. One process track per OS process (the
//! coordinator, each worker process of each run), a thread track per worker thread of the
//! threads strategy and per decoder thread of the coordinator, one complete event ("ph": "X") per phase per task; each event's args name
//! the strategy, the run and the task. Times are µs on `CLOCK_MONOTONIC`.

use super::Report;
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

/// Writes the trace of every report's recorded runs.
pub fn write_trace(reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    let me = std::process::id();
    let mut events: Vec<Value> = Vec::new();
    let mut named: Vec<u32> = Vec::new();
    let mut name = |events: &mut Vec<Value>, pid: u32, label: String| {
        if !named.contains(&pid) {
            named.push(pid);
            events.push(json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                               "args": {"name": label}}));
        }
    };
    name(&mut events, me, format!("coordinator (pid {me})"));
    let mut decoders: Vec<u32> = Vec::new();
    for r in reports {
        for run in &r.traces {
            for s in &run.spans {
                let (pid, tid) = match (s.worker, s.thread) {
                    (None, Some(t)) => {
                        if !decoders.contains(&t) {
                            decoders.push(t);
                        }
                        (me, DECODER_TIDS + t)
                    }
                    (Some(w), _) if s.pid == me => (me, w + 1), // a thread of the threads strategy
                    (Some(w), _) => {
                        // Where it ran, where the transport knows (an MPI rank on its host).
                        let at = r.worker_detail.iter().find(|d| d.id == w).and_then(|d| {
                            Some(format!(", rank {} on {}", d.rank?, d.host.as_deref()?))
                        });
                        let at = at.unwrap_or_default();
                        name(
                            &mut events,
                            s.pid,
                            format!("{} worker {w}{at}, run {} (pid {})", r.mode, run.run, s.pid),
                        );
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
                    args: json!({"strategy": r.mode, "run": run.run, "task": s.task,
                                 "worker": s.worker}),
                };
                events.push(serde_json::to_value(event)?);
            }
            events.push(json!({"name": format!("{} run {}", r.mode, run.run), "cat": "run",
                               "ph": "X", "ts": run.start_ns as f64 / 1e3,
                               "dur": run.end_ns.saturating_sub(run.start_ns) as f64 / 1e3,
                               "pid": me, "tid": 1000, "args": {"strategy": r.mode, "run": run.run}}));
        }
    }
    events.push(json!({"name": "thread_name", "ph": "M", "pid": me, "tid": 1000,
                       "args": {"name": "runs (wall time)"}}));
    for t in decoders {
        events.push(json!({"name": "thread_name", "ph": "M", "pid": me, "tid": DECODER_TIDS + t,
                           "args": {"name": helper_name(t)}}));
    }
    serde_json::to_writer(&mut *out, &json!({"traceEvents": events, "displayTimeUnit": "ms"}))?;
    writeln!(out)
}

/// A helper thread's track name: a decoder, or the local transport's sender to a worker.
fn helper_name(t: u32) -> String {
    match t.checked_sub(crate::trace::SENDER_TRACKS) {
        Some(w) => format!("sender to worker {w}"),
        None => format!("decoder {t}"),
    }
}
