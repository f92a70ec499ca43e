//! What a process run measured, recorded beside the scheduling logic rather than woven
//! through it: the driver tells the [`Observer`] what happened (a frame encoded, a send ended,
//! a result accepted or placed, a wait, a worker's stats) and the observer keeps the phase
//! times, the traffic, each worker's tallies and, when tracing, the spans of the timeline.

use super::decoders::Decoded;
use crate::protocol::{ResultHeader, TaskHeader, TaskStamp, WorkerStats};
use crate::report::{ms, Measurement, WorkerFailure, WorkerReport};
use crate::trace::{Phase, SENDER_TRACKS};
use crate::transport::{Pool, Sent, WorkerInfo};
use std::collections::HashMap;

/// One worker's tallies.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    tasks_done: u64,
    compute_ns: u64,
    /// Decoding, computing and encoding, as its result headers said.
    busy_ns: u64,
    stats: Option<WorkerStats>,
}

/// Records a process run into its [`Measurement`].
pub struct Observer<'m> {
    /// The measurement being filled in.
    pub m: &'m mut Measurement,
    workers: Vec<WorkerInfo>,
    tallies: Vec<Tally>,
    /// Each ended send's (start, end), ns: the coordinator's send time is the time some send
    /// was in progress (their union), whether one thread sent or one per worker.
    send_spans: Vec<(u64, u64)>,
    /// When tracing: each result's worker-side (decode, compute, encode) ns, by (worker,
    /// task), for the worker spans drawn once its stamps arrive with its stats.
    timings: HashMap<(usize, u32), [u64; 4]>,
}

impl<'m> Observer<'m> {
    /// An observer of a pool of `workers`, filling in `m`.
    pub fn new(m: &'m mut Measurement, workers: &[WorkerInfo]) -> Observer<'m> {
        Observer {
            m,
            workers: workers.to_vec(),
            tallies: vec![Tally::default(); workers.len()],
            send_spans: Vec::new(),
            timings: HashMap::new(),
        }
    }

    /// The coordinator's own track.
    fn me() -> (u32, Option<u32>) {
        (std::process::id(), None)
    }

    /// Worker `w`'s track.
    fn them(&self, w: usize) -> (u32, Option<u32>) {
        let info = self.workers[w];
        (info.pid, Some(info.id))
    }

    /// The pool started `spawn_ns` after `spawn_at`; each worker's own start is a span.
    pub fn spawned(m: &mut Measurement, pool: &dyn Pool, spawn_at: u64) {
        m.spawn_ns = pool.spawn_ns();
        m.record(Self::me(), Phase::Spawn, None, spawn_at, spawn_at + m.spawn_ns);
        for w in pool.workers().iter().filter(|w| w.ready_at_ns > 0) {
            let them = (w.pid, Some(w.id));
            m.record(them, Phase::Spawn, None, w.started_at_ns, w.ready_at_ns);
        }
    }

    /// The gather thread waited from `at` for `ns`.
    pub fn waited(&mut self, at: u64, ns: u64) {
        self.m.wait_ns += ns;
        self.m.record(Self::me(), Phase::Wait, None, at, at + ns);
    }

    /// A task frame of `bytes` bytes (`payload` of them the strategy's) was encoded from `at`
    /// for `ns`; `task` is `None` inside a collective's frames.
    pub fn encoded(&mut self, task: Option<u32>, at: u64, ns: u64, bytes: u64, payload: u64) {
        self.m.encode_ns += ns;
        self.m.traffic.bytes_sent += bytes;
        self.m.traffic.payload_bytes_sent += payload;
        self.m.traffic.messages_sent += 1;
        if task.is_some() {
            self.m.record(Self::me(), Phase::Encode, task, at, at + ns);
        }
    }

    /// A collective call moved every task frame in `ns`.
    pub fn scattered(&mut self, ns: u64) {
        self.m.transfer_ns += ns;
    }

    /// A send ended (its time, its span when tracing).
    pub fn sent(&mut self, sent: &Sent) {
        self.send_spans.push((sent.start_ns, sent.end_ns));
        if !self.m.tracing {
            return;
        }
        let task = TaskHeader::read(&sent.frame).ok().map(|(h, _)| h.task);
        let (start, end) = (sent.start_ns, sent.end_ns);
        match sent.threaded {
            true => {
                let track = SENDER_TRACKS + sent.worker as u32;
                self.m.record_helper(track, Phase::Send, task, start, end)
            }
            false => self.m.record(Self::me(), Phase::Send, task, start, end),
        }
    }

    /// A result frame of `bytes` bytes from worker `w` was accepted.
    pub fn accepted(&mut self, w: usize, header: &ResultHeader, bytes: u64) {
        let m = &mut *self.m;
        m.decode_ns += header.decode_ns;
        m.encode_ns += header.encode_ns;
        m.compute_ns += header.compute_ns;
        m.generate_ns += header.generate_ns;
        m.traffic.bytes_received += bytes;
        m.traffic.messages_received += 1;
        if m.tracing {
            let timing =
                [header.generate_ns, header.decode_ns, header.compute_ns, header.encode_ns];
            self.timings.insert((w, header.task), timing);
        }
        let tally = &mut self.tallies[w];
        tally.tasks_done += 1;
        tally.compute_ns += header.compute_ns;
        tally.busy_ns +=
            header.generate_ns + header.decode_ns + header.compute_ns + header.encode_ns;
    }

    /// A result was decoded (on a decoder thread, or here): its time, and its payload bytes
    /// when it was placed; a refused one no longer counts as done by its worker.
    pub fn decoded(&mut self, d: &Decoded<'_>) {
        self.m.decode_ns += d.end_ns - d.start_ns;
        let Ok(bytes) = d.result else {
            self.tallies[d.worker].tasks_done -= 1;
            return;
        };
        self.m.traffic.payload_bytes_received += bytes;
        let (task, (start, end)) = (Some(d.task as u32), (d.start_ns, d.end_ns));
        match d.thread {
            Some(t) => self.m.record_helper(t, Phase::Decode, task, start, end),
            None => self.m.record(Self::me(), Phase::Decode, task, start, end),
        }
    }

    /// Worker `w` was written off for `reason`, `rerun` of its tasks to be run again.
    pub fn failed(&mut self, w: usize, reason: String, rerun: usize) {
        let info = self.workers[w];
        self.m.failures.push(WorkerFailure {
            worker: info.id,
            pid: info.pid,
            reason,
            tasks_rerun: rerun as u64,
        });
    }

    /// Worker `w` has sent its stats.
    pub fn has_stats(&self, w: usize) -> bool {
        self.tallies[w].stats.is_some()
    }

    /// Keeps worker `w`'s stats and, when tracing, turns its task stamps into its spans:
    /// waiting for the task, decoding, computing and encoding it, sending the result.
    pub fn stats(&mut self, w: usize, stats: WorkerStats, stamps: &[TaskStamp]) {
        self.tallies[w].stats = Some(stats);
        let them = self.them(w);
        // The worker's stamps are on its own clock: moved onto this one.
        let offset = self.workers[w].clock_offset_ns;
        let here = |t: u64| t.saturating_add_signed(-offset);
        for s in stamps {
            let task = Some(s.task);
            let at = here(s.received_at_ns);
            let m = &mut *self.m;
            m.record(them, Phase::Receive, task, at.saturating_sub(s.idle_ns), at);
            if let Some(&timing) = self.timings.get(&(w, s.task)) {
                let mut t = at;
                let phases = [Phase::Generate, Phase::Decode, Phase::Compute, Phase::Encode];
                // A phase the task did not have (no generating, nothing to decode) is no span.
                for (phase, ns) in phases.into_iter().zip(timing).filter(|(_, ns)| *ns > 0) {
                    m.record(them, phase, task, t, t + ns);
                    t += ns;
                }
            }
            let sent_at = here(s.sent_at_ns);
            m.record(them, Phase::Send, task, sent_at, sent_at + s.send_ns);
        }
    }

    /// The run is over: the send time, and a report per worker (`pool` says where each ran).
    pub fn finish(mut self, pool: &dyn Pool) {
        self.m.transfer_ns += union_ns(&mut self.send_spans);
        for (w, tally) in self.tallies.iter().enumerate() {
            let info = self.workers[w];
            if let Some(stats) = tally.stats {
                self.m.transfer_ns += stats.send_ns;
            }
            self.m.compute_max_ns = self.m.compute_max_ns.max(tally.compute_ns);
            let (rank, host) = pool.placement(w).unzip();
            self.m.workers.push(WorkerReport {
                id: info.id,
                pid: info.pid,
                tasks: tally.tasks_done,
                compute_ms: ms(tally.compute_ns),
                exit: None,
                rank,
                busy_ms: ms(tally.busy_ns),
                idle_ms: ms(tally.stats.map_or(0, |s| s.idle_ns)),
                host,
                cpu_user_ms: tally.stats.map(|s| ms(s.user_ns)),
                cpu_system_ms: tally.stats.map(|s| ms(s.system_ns)),
                peak_rss_mb: tally
                    .stats
                    .filter(|s| s.peak_rss_bytes > 0)
                    .map(|s| s.peak_rss_bytes as f64 / 1e6),
            });
        }
    }
}

/// The length of the union of `spans` (start, end), ns: overlapping sends count once.
fn union_ns(spans: &mut [(u64, u64)]) -> u64 {
    spans.sort_unstable();
    let (mut total, mut reach) = (0u64, 0u64);
    for &(start, end) in spans.iter() {
        let start = start.max(reach);
        if end > start {
            total += end - start;
            reach = end;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_sends_count_once() {
        let mut spans = [(10, 20), (15, 30), (40, 50), (42, 45), (0, 5)];
        assert_eq!(union_ns(&mut spans), 5 + 20 + 10);
        assert_eq!(union_ns(&mut []), 0);
    }
}
