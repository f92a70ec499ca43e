//! `threads`: the split scheduling on OS threads inside the coordinator. One address space, so
//! nothing is encoded, sent or copied: the process-versus-thread comparison.

use super::{ns_since, Info, Run, Strategy};
use crate::costs::{Load, Prediction};
use crate::error::RunError;
use crate::kernel;
use crate::report::{ms, WorkerReport};
use crate::trace::Phase;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

/// The split scheduling on OS threads.
pub struct Threads;

/// Its `--help` line.
const ABOUT: &str = "split on OS threads: ThreadPool over split(data, S), nothing copied";

impl Strategy for Threads {
    /// Generating on every core, then the workers (as far as there are cores) computing their
    /// shares into a fresh output.
    fn predict(&self, l: &Load<'_>) -> Option<Prediction> {
        let generate = l.generate_ns(false);
        let compute = (l.compute_ns() + l.n * l.touch_ns(false)) / l.parallel();
        Some(Prediction {
            wall_ms: Load::ms(generate + compute),
            phases_ms: vec![("generate", Load::ms(generate)), ("compute", Load::ms(compute))],
        })
    }

    fn info(&self) -> Info {
        Info::local("threads", ABOUT).one_host().in_place()
    }

    /// A SIGINT or SIGTERM stops every thread between blocks; a thread's panic is an error,
    /// never a partial result.
    fn run(&self, run: Run<'_>) -> Result<(), RunError> {
        run_threads(run)
    }
}

fn run_threads(run: Run<'_>) -> Result<(), RunError> {
    let Run { cfg, mode, input, output, m, .. } = run;
    // The queue of tasks: each the values of its span (its input and the disjoint output it
    // fills, or its one span in place).
    let tasks = mode.tasks(cfg);
    let mut queue = VecDeque::with_capacity(tasks.len());
    let mut rest = super::values(input, output);
    for task in &tasks {
        let (mine, tail) = rest.split_at(task.len());
        queue.push_back(mine);
        rest = tail;
    }
    let queue = Mutex::new(queue);
    let (function, work) = (cfg.function, cfg.work);

    let stop = || crate::interrupt::requested().is_some();
    let (tracing, pid) = (m.tracing, std::process::id());
    type Done = (u64, u64, Vec<(u64, u64)>);
    let joined: Result<Vec<std::thread::Result<Done>>, RunError> = std::thread::scope(|scope| {
        let t = Instant::now();
        let spawned: Vec<_> = (0..cfg.workers)
            .map(|k| {
                std::thread::Builder::new().name(format!("compute-{k}")).spawn_scoped(scope, || {
                    let (mut tasks, mut compute_ns, mut spans) = (0u64, 0u64, Vec::new());
                    loop {
                        let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                        let Some(values) = next else { break };
                        let t = crate::trace::Stopwatch::start();
                        if !kernel::apply_values_until(function, work, values, &stop) {
                            break;
                        }
                        let took = t.elapsed_ns();
                        compute_ns += took;
                        tasks += 1;
                        if tracing {
                            spans.push((t.at, t.at + took));
                        }
                    }
                    (tasks, compute_ns, spans)
                })
            })
            .collect();
        m.spawn_ns = ns_since(t);
        // A thread the limits refused (ulimit -u, -v): the others are told there is no more
        // work, joined, and the run ends with one line.
        let mut handles = Vec::with_capacity(spawned.len());
        let mut refused = None;
        for h in spawned {
            match h {
                Ok(h) => handles.push(h),
                Err(source) => refused = Some(source),
            }
        }
        if let Some(source) = refused {
            if let Ok(mut q) = queue.lock() {
                q.clear();
            }
            for h in handles {
                let _ = h.join();
            }
            return Err(RunError::Spawn(crate::error::SpawnError::Thread {
                what: "compute",
                source,
            }));
        }
        // The coordinator's thread now only waits for its workers, as in the process strategies.
        let t = crate::trace::Stopwatch::start();
        let joined = handles.into_iter().map(|h| h.join()).collect();
        m.wait_ns = t.elapsed_ns();
        m.record((pid, None), Phase::Wait, None, t.at, t.at + m.wait_ns);
        Ok(joined)
    });
    let joined = joined?;
    let mut per_thread = Vec::with_capacity(joined.len());
    for (thread, result) in joined.into_iter().enumerate() {
        match result {
            Ok(counts) => per_thread.push(counts),
            Err(panic) => {
                return Err(RunError::ThreadPanicked {
                    thread,
                    message: panic_message(panic.as_ref()),
                });
            }
        }
    }
    if crate::interrupt::requested().is_some() {
        return Err(crate::interrupt::interrupted());
    }

    for (id, (tasks, compute_ns, spans)) in per_thread.into_iter().enumerate() {
        for (task, (start, end)) in spans.into_iter().enumerate() {
            let thread = (pid, Some(id as u32));
            m.record(thread, Phase::Compute, Some(task as u32), start, end);
        }
        m.compute_ns += compute_ns;
        m.compute_max_ns = m.compute_max_ns.max(compute_ns);
        m.workers.push(WorkerReport {
            id: id as u32,
            pid,
            tasks,
            compute_ms: ms(compute_ns),
            exit: None,
            rank: None,
            busy_ms: ms(compute_ns),
            idle_ms: 0.0,
            host: None,
            cpu_user_ms: None,
            cpu_system_ms: None,
            peak_rss_mb: None,
        });
    }
    Ok(())
}

pub use crate::error::panic_message;
