//! The scheduling state machine: which worker holds which task, what is still queued, what is
//! done, and when a worker has held a task too long. No I/O and no clock of its own (every
//! call that needs the time is given it), so every rule is unit-tested without a process.
//!
//! The driver ([`super`]) feeds it what the pool said: a result from a worker, a refused
//! payload, a worker's end, a closed channel; it answers with the next task for a worker,
//! what a write-off requeued, and which workers are overdue or broken.

use super::{OnWorkerExit, TaskTimeout, DEPTH, TASK_TIMEOUT_FACTOR, TASK_TIMEOUT_FLOOR};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a worker whose result channel closed has to be seen exiting.
pub const CLOSED_GRACE: Duration = Duration::from_secs(1);

/// One worker's place in the schedule.
#[derive(Debug)]
struct Slot {
    alive: bool,
    closed_at: Option<Instant>,
    /// The tasks it holds, oldest first.
    in_flight: Vec<usize>,
    /// Since when it has held tasks without returning a result.
    waiting_since: Option<Instant>,
}

/// The task deadline in force.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    /// The rule.
    pub policy: TaskTimeout,
    /// Until a first task completes (automatic policy).
    pub before_first: Duration,
    /// The slowest task completed so far, from send (or the previous result) to result.
    pub slowest: Option<Duration>,
}

impl Deadline {
    /// The deadline now.
    pub fn current(&self) -> Option<Duration> {
        match self.policy {
            TaskTimeout::Off => None,
            TaskTimeout::After(d) => Some(d),
            TaskTimeout::Auto => Some(match self.slowest {
                Some(slowest) => (slowest * TASK_TIMEOUT_FACTOR).max(TASK_TIMEOUT_FLOOR),
                None => self.before_first,
            }),
        }
    }
}

/// What writing a worker off did.
#[derive(Debug, PartialEq, Eq)]
pub struct WrittenOff {
    /// Its unfinished tasks, back at the front of the queue.
    pub requeued: usize,
    /// The run cannot go on: the policy aborts, a collective lost a member, or no worker is
    /// left.
    pub stop: bool,
}

/// A worker that has held its oldest task past the deadline.
#[derive(Debug, PartialEq, Eq)]
pub struct Overdue {
    /// The worker.
    pub worker: usize,
    /// Its oldest task.
    pub task: usize,
    /// How long it has held it.
    pub held: Duration,
    /// The deadline.
    pub deadline: Duration,
}

/// The whole schedule of one run.
#[derive(Debug)]
pub struct Schedule {
    slots: Vec<Slot>,
    queue: VecDeque<usize>,
    done: Vec<bool>,
    remaining: usize,
    policy: OnWorkerExit,
    /// The tasks go out by one collective: a lost worker cannot be replaced.
    collective: bool,
    /// The deadline in force.
    pub deadline: Deadline,
}

impl Schedule {
    /// `tasks` tasks over `workers` workers, all queued.
    pub fn new(
        workers: usize,
        tasks: usize,
        policy: OnWorkerExit,
        collective: bool,
        deadline: Deadline,
    ) -> Schedule {
        Schedule {
            slots: (0..workers)
                .map(|_| Slot {
                    alive: true,
                    closed_at: None,
                    in_flight: Vec::with_capacity(DEPTH),
                    waiting_since: None,
                })
                .collect(),
            queue: (0..tasks).collect(),
            done: vec![false; tasks],
            remaining: tasks,
            policy,
            collective,
            deadline,
        }
    }

    /// Tasks not yet placed.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Workers.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Worker `w` is alive (not written off).
    pub fn alive(&self, w: usize) -> bool {
        self.slots.get(w).is_some_and(|s| s.alive)
    }

    /// Every worker is alive: none was written off.
    pub fn all_alive(&self) -> bool {
        self.slots.iter().all(|s| s.alive)
    }

    /// No worker holds a task.
    pub fn none_in_flight(&self) -> bool {
        self.slots.iter().all(|s| s.in_flight.is_empty())
    }

    /// The next task for worker `w`, now in its hands, if it has room and one is queued.
    pub fn next_for(&mut self, w: usize, now: Instant) -> Option<usize> {
        self.next_within(w, DEPTH, now)
    }

    /// [`next_for`](Self::next_for), for a worker holding fewer than `depth` (at most
    /// [`DEPTH`]) tasks.
    pub fn next_within(&mut self, w: usize, depth: usize, now: Instant) -> Option<usize> {
        let slot = self.slots.get(w)?;
        if !slot.alive || slot.closed_at.is_some() || slot.in_flight.len() >= depth.min(DEPTH) {
            return None;
        }
        let task = loop {
            let task = self.queue.pop_front()?;
            if !self.done[task] {
                break task;
            }
        };
        let slot = &mut self.slots[w];
        slot.in_flight.push(task);
        slot.waiting_since.get_or_insert(now);
        Some(task)
    }

    /// Every task to the worker of its own index, at once (a collective scatter).
    pub fn assign_all(&mut self, now: Instant) {
        for (task, slot) in self.slots.iter_mut().enumerate().take(self.done.len()) {
            slot.in_flight.push(task);
            slot.waiting_since = Some(now);
        }
        self.queue.clear();
    }

    /// Worker `w` returned a result for `task`: checks that it held it, frees its place and
    /// updates the slowest task. `Err` says how the worker broke the protocol.
    pub fn returned(&mut self, w: usize, task: usize, now: Instant) -> Result<(), String> {
        let slot = self.slots.get_mut(w).ok_or("no such worker")?;
        let position = slot
            .in_flight
            .iter()
            .position(|&t| t == task)
            .ok_or_else(|| format!("result for task {task}, which it was not given"))?;
        if self.done[task] {
            return Err(format!("a second result for task {task}"));
        }
        slot.in_flight.swap_remove(position);
        if let Some(since) = slot.waiting_since {
            let took = now.saturating_duration_since(since);
            self.deadline.slowest = Some(self.deadline.slowest.map_or(took, |s| s.max(took)));
        }
        slot.waiting_since = (!slot.in_flight.is_empty()).then_some(now);
        Ok(())
    }

    /// `task`'s result is in place: it is done.
    pub fn placed(&mut self, task: usize) {
        if !std::mem::replace(&mut self.done[task], true) {
            self.remaining -= 1;
        }
    }

    /// `task`'s result from worker `w` was refused after it was returned: it goes back into
    /// the worker's hands, to be requeued when the worker is written off (true), or straight
    /// back to the queue if the worker is gone already (false).
    pub fn refused(&mut self, w: usize, task: usize) -> bool {
        match self.slots.get_mut(w) {
            Some(slot) if slot.alive => {
                slot.in_flight.push(task);
                true
            }
            _ => {
                self.queue.push_front(task);
                false
            }
        }
    }

    /// Writes worker `w` off: its unfinished tasks go back to the front of the queue.
    pub fn write_off(&mut self, w: usize) -> WrittenOff {
        let slot = &mut self.slots[w];
        slot.alive = false;
        slot.waiting_since = None;
        let unfinished = std::mem::take(&mut slot.in_flight);
        let requeued = unfinished.len();
        for task in unfinished.into_iter().rev() {
            self.queue.push_front(task);
        }
        let stop = self.policy == OnWorkerExit::Abort
            || self.collective
            || !self.slots.iter().any(|s| s.alive);
        WrittenOff { requeued, stop }
    }

    /// Worker `w`'s channel closed, or a send to it failed: it gets nothing more, and is
    /// broken if it is still alive [`CLOSED_GRACE`] later.
    pub fn closed(&mut self, w: usize, now: Instant) {
        if let Some(slot) = self.slots.get_mut(w) {
            slot.closed_at.get_or_insert(now);
        }
    }

    /// Live workers that closed their channels over [`CLOSED_GRACE`] ago but did not end.
    pub fn broken(&self, now: Instant) -> Vec<usize> {
        let late = |t: Instant| now.saturating_duration_since(t) > CLOSED_GRACE;
        (0..self.slots.len())
            .filter(|&w| self.slots[w].alive && self.slots[w].closed_at.is_some_and(late))
            .collect()
    }

    /// Live workers that have held their oldest task past the deadline.
    pub fn overdue(&self, now: Instant) -> Vec<Overdue> {
        let Some(deadline) = self.deadline.current() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (worker, slot) in self.slots.iter().enumerate().filter(|(_, s)| s.alive) {
            let (Some(since), Some(&task)) = (slot.waiting_since, slot.in_flight.first()) else {
                continue;
            };
            let held = now.saturating_duration_since(since);
            if held > deadline {
                out.push(Overdue { worker, task, held, deadline });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next task to each of `workers`, in turn.
    fn hand_out(s: &mut Schedule, workers: &[usize], now: Instant) {
        for &w in workers {
            s.next_for(w, now);
        }
    }

    fn schedule(workers: usize, tasks: usize, policy: OnWorkerExit) -> Schedule {
        let deadline = Deadline {
            policy: TaskTimeout::Auto,
            before_first: Duration::from_secs(7),
            slowest: None,
        };
        Schedule::new(workers, tasks, policy, false, deadline)
    }

    #[test]
    fn each_worker_holds_at_most_depth_tasks_and_gets_the_next_as_it_returns_one() {
        let now = Instant::now();
        let mut s = schedule(2, 5, OnWorkerExit::Retry);
        assert_eq!(s.next_for(0, now), Some(0));
        assert_eq!(s.next_for(0, now), Some(1));
        assert_eq!(s.next_for(0, now), None, "DEPTH is 2");
        assert_eq!(s.next_for(1, now), Some(2));
        s.returned(0, 1, now).unwrap();
        assert_eq!(s.next_for(0, now), Some(3));
        s.placed(1);
        assert_eq!(s.remaining(), 4);
    }

    #[test]
    fn a_result_the_worker_was_not_given_or_a_second_one_is_refused() {
        let now = Instant::now();
        let mut s = schedule(2, 3, OnWorkerExit::Retry);
        hand_out(&mut s, &[0, 1], now);
        assert!(s.returned(0, 1, now).unwrap_err().contains("not given"));
        s.returned(0, 0, now).unwrap();
        s.placed(0);
        assert!(s.returned(0, 0, now).is_err());
    }

    #[test]
    fn a_written_off_worker_has_its_tasks_requeued_first_until_none_is_left() {
        let now = Instant::now();
        let mut s = schedule(2, 4, OnWorkerExit::Retry);
        hand_out(&mut s, &[0, 0], now);
        assert_eq!(s.write_off(0), WrittenOff { requeued: 2, stop: false });
        assert_eq!(s.next_for(0, now), None, "nothing for the dead");
        assert_eq!(s.next_for(1, now), Some(0), "its tasks first, in order");
        assert_eq!(s.next_for(1, now), Some(1));
        assert!(s.write_off(1).stop, "no worker left");
        let mut abort = schedule(2, 4, OnWorkerExit::Abort);
        assert!(abort.write_off(1).stop);
    }

    #[test]
    fn a_refused_result_goes_back_to_its_worker_or_to_the_queue() {
        let now = Instant::now();
        let mut s = schedule(2, 2, OnWorkerExit::Retry);
        s.next_for(0, now);
        s.returned(0, 0, now).unwrap();
        assert!(s.refused(0, 0));
        assert_eq!(s.write_off(0).requeued, 1);
        assert_eq!(s.next_for(1, now), Some(0), "the refused task first");
        s.returned(1, 0, now).unwrap();
        s.write_off(1);
        assert!(!s.refused(1, 0));
        assert_eq!(s.remaining(), 2);
    }

    #[test]
    fn overdue_and_broken_workers_are_found_by_the_clock_given() {
        let start = Instant::now();
        let mut s = schedule(3, 6, OnWorkerExit::Retry);
        s.deadline.policy = TaskTimeout::After(Duration::from_secs(1));
        s.next_for(0, start);
        s.next_for(1, start);
        let later = start + Duration::from_secs(2);
        s.returned(1, 1, later - Duration::from_millis(1500)).unwrap();
        let overdue = s.overdue(later);
        assert_eq!(overdue.len(), 1);
        assert_eq!((overdue[0].worker, overdue[0].task), (0, 0));
        s.closed(2, start);
        assert!(s.broken(start).is_empty());
        assert_eq!(s.broken(start + CLOSED_GRACE * 2), [2]);
        assert_eq!(s.next_for(2, start), None, "a closed worker gets nothing");
    }

    #[test]
    fn the_automatic_deadline_follows_the_slowest_task_with_a_floor() {
        let mut d = Deadline {
            policy: TaskTimeout::Auto,
            before_first: Duration::from_secs(7),
            slowest: None,
        };
        assert_eq!(d.current(), Some(Duration::from_secs(7)));
        d.slowest = Some(Duration::from_millis(10));
        assert_eq!(d.current(), Some(TASK_TIMEOUT_FLOOR));
        d.slowest = Some(Duration::from_secs(1));
        assert_eq!(d.current(), Some(Duration::from_secs(TASK_TIMEOUT_FACTOR.into())));
        d.policy = TaskTimeout::Off;
        assert_eq!(d.current(), None);
    }
}
