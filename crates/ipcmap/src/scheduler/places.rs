//! The output, as the places results are read into: the scheduler's half of
//! [`crate::transport::place`]. Each task's span of the output is free, being written (by one
//! reader thread, or by the gather thread decoding a frame), or placed; only the worker the
//! task was last sent to may claim it from its frame, and only while it is free, so a late,
//! duplicate or stray result is never read into place. Once the run is over
//! [`OutputPlaces::close`] waits for any write still going and refuses every later claim, so
//! nothing touches the output after the run hands it back.

use crate::partition::Task;
use crate::protocol::{kind, ResultHeader};
use crate::transport::place::{Claim, Piece, Places};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

const FREE: u8 = 0;
const WRITING: u8 = 1;
const PLACED: u8 = 2;

/// A task's span, as the gather thread finds it when it must decode a result itself.
pub enum Spot<'a> {
    /// Free, and now held by the gather thread: decode into it, then settle.
    Held(Held<'a>),
    /// Another result was placed there already.
    Placed,
    /// A reader thread is writing it; try again shortly.
    Busy,
}

/// A task's span held by the gather thread.
pub struct Held<'a> {
    places: &'a OutputPlaces,
    task: usize,
    settled: bool,
}

impl Held<'_> {
    /// The span's values.
    pub fn values(&mut self) -> &mut [f64] {
        let span = &self.places.spans[self.task];
        // SAFETY: the span lies inside the output, held exclusively by this value until it is
        // settled (the task's state is WRITING); the output outlives `places` (`new`).
        unsafe { std::slice::from_raw_parts_mut(self.places.output.add(span.start), span.len()) }
    }

    /// Ends the hold: the values are the task's result (`placed`), or not.
    pub fn settle(mut self, placed: bool) {
        self.settled = true;
        self.places.settle(self.task, placed);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.places.settle(self.task, false);
        }
    }
}

/// The output of one run, cut into its tasks' spans, each with its layout and who may fill it.
pub struct OutputPlaces {
    output: *mut f64,
    len: usize,
    spans: Vec<std::ops::Range<usize>>,
    pieces: Vec<Vec<Piece>>,
    /// Bytes of a task's frame after its header.
    payload: Vec<u64>,
    /// The worker each task was last sent to, plus one; 0: none.
    owner: Vec<AtomicUsize>,
    state: Vec<AtomicU8>,
    closed: AtomicBool,
}

// SAFETY: the output pointer is only dereferenced under a task's WRITING state, which one
// thread at a time holds (compare-and-swap), and never once `close` has returned.
unsafe impl Send for OutputPlaces {}
// SAFETY: as for Send; every other field is atomic or read-only.
unsafe impl Sync for OutputPlaces {}

impl OutputPlaces {
    /// The places of `tasks` in `output`, each result laid out as `pieces` gives it; `None`
    /// where a task's result is not the values' own bytes, or does not fit its span.
    ///
    /// # Safety
    /// `output` must stay allocated, and untouched by anything but this value, until
    /// [`OutputPlaces::close`] has returned.
    pub unsafe fn new(
        output: &mut [f64],
        tasks: &[Task],
        pieces: impl Fn(&Task) -> Option<Vec<Piece>>,
    ) -> Option<OutputPlaces> {
        let mut layouts = Vec::with_capacity(tasks.len());
        for task in tasks {
            let layout = pieces(task)?;
            let inside = layout.iter().all(|p| match p {
                Piece::Values(r) => r.start >= task.span().start && r.end <= task.span().end,
                Piece::Expect(_) => true,
            });
            if !inside || task.span().end > output.len() {
                return None;
            }
            layouts.push(layout);
        }
        Some(OutputPlaces {
            output: output.as_mut_ptr(),
            len: output.len(),
            spans: tasks.iter().map(Task::span).collect(),
            payload: layouts.iter().map(|l| l.iter().map(|p| p.bytes() as u64).sum()).collect(),
            pieces: layouts,
            owner: tasks.iter().map(|_| AtomicUsize::new(0)).collect(),
            state: tasks.iter().map(|_| AtomicU8::new(FREE)).collect(),
            closed: AtomicBool::new(false),
        })
    }

    /// Task `task` is going to worker `worker`: only its result may be read into place.
    pub fn expect(&self, task: usize, worker: usize) {
        if let Some(owner) = self.owner.get(task) {
            owner.store(worker + 1, Ordering::SeqCst);
        }
    }

    /// Task `task` was placed by a reader thread.
    pub fn is_placed(&self, task: usize) -> bool {
        self.state.get(task).is_some_and(|s| s.load(Ordering::SeqCst) == PLACED)
    }

    /// Task `task`'s span, for the gather thread to decode a result into.
    pub fn hold(&self, task: usize) -> Spot<'_> {
        match self.take(task) {
            Ok(()) => Spot::Held(Held { places: self, task, settled: false }),
            Err(PLACED) => Spot::Placed,
            Err(_) => Spot::Busy,
        }
    }

    /// No more claims; returns once no write is going on (a reader thread's write ends
    /// with its frame, or with its worker's end: every worker is reaped before this).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.state.iter().any(|s| s.load(Ordering::SeqCst) == WRITING) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// FREE to WRITING for task `task`, unless closed; `Err` with the state found.
    fn take(&self, task: usize) -> Result<(), u8> {
        let state = self.state.get(task).ok_or(PLACED)?;
        state.compare_exchange(FREE, WRITING, Ordering::SeqCst, Ordering::SeqCst)?;
        if self.closed.load(Ordering::SeqCst) {
            state.store(FREE, Ordering::SeqCst);
            return Err(FREE);
        }
        Ok(())
    }
}

impl Places for OutputPlaces {
    fn head_len(&self) -> usize {
        ResultHeader::SIZE
    }

    fn claim(&self, worker: usize, head: &[u8], len: u64) -> Option<Claim<'_>> {
        if head.len() < ResultHeader::SIZE || head[0] != kind::RESULT {
            return None;
        }
        let field =
            |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let (signed, task) = (field(1) as usize, field(5) as usize);
        let fits = self.payload.get(task).copied() == len.checked_sub(ResultHeader::SIZE as u64);
        let owned = self.owner.get(task)?.load(Ordering::SeqCst) == worker + 1;
        if signed != worker || !fits || !owned {
            return None;
        }
        self.take(task).ok()?;
        // SAFETY: the task's span is WRITING, held by this claim alone until it settles, and
        // lies inside the output (`new` checked every piece); the output outlives every claim
        // (`close`).
        Some(unsafe { Claim::new(self, task, &self.pieces[task], self.output, self.len) })
    }

    fn settle(&self, task: usize, placed: bool) {
        if let Some(state) = self.state.get(task) {
            state.store(if placed { PLACED } else { FREE }, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(worker: u32, task: u32) -> Vec<u8> {
        let mut head = Vec::new();
        ResultHeader { worker, task, ..Default::default() }.write(&mut head);
        head
    }

    #[test]
    fn only_the_owner_claims_a_free_span_once() {
        let mut output = vec![0.0; 8];
        let tasks = crate::partition::group(crate::partition::array_split(8, 2), 1);
        let layout = |t: &Task| Some(vec![Piece::Values(t.span())]);
        // SAFETY: `output` outlives `places`, closed below.
        let places = unsafe { OutputPlaces::new(&mut output, &tasks, layout) }.unwrap();
        let len = (ResultHeader::SIZE + 32) as u64;
        assert!(places.claim(0, &header(0, 1), len).is_none(), "not sent yet");
        places.expect(1, 0);
        assert!(places.claim(1, &header(1, 1), len).is_none(), "not its task");
        assert!(places.claim(0, &header(1, 1), len).is_none(), "signed as another");
        assert!(places.claim(0, &header(0, 1), len + 8).is_none(), "too long");
        let mut claim = places.claim(0, &header(0, 1), len).unwrap();
        assert!(places.claim(0, &header(0, 1), len).is_none(), "being written");
        assert!(matches!(places.hold(1), Spot::Busy));
        claim.values(4..8).copy_from_slice(bytemuck::cast_slice(&[1.0f64; 4]));
        claim.commit();
        assert!(places.is_placed(1));
        assert!(places.claim(0, &header(0, 1), len).is_none(), "placed once");
        assert!(matches!(places.hold(1), Spot::Placed));
        drop(places.claim(0, &header(0, 0), len));
        let Spot::Held(mut held) = places.hold(0) else {
            panic!("task 0 is free");
        };
        held.values().fill(2.0);
        held.settle(true);
        places.close();
        places.expect(0, 0);
        assert!(places.claim(0, &header(0, 0), len).is_none(), "closed");
        assert_eq!(output, [2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0]);
    }
}
