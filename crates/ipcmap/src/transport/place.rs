//! Receiving into place: the seam through which a transport that reads its own frames off a
//! byte stream (uds) reads a result's payload straight into its task's span of the output,
//! one copy from the kernel to where the values belong, instead of into a frame buffer that a
//! decode then copies again.
//!
//! The scheduler owns the output and says, through [`Places`], which frames may be placed and
//! where: a transport asks with a frame's first bytes (its result header) and gets a [`Claim`]
//! on that task's span, exclusive until it is committed or dropped. A transport that cannot
//! read into a caller's buffer (ipc-channel hands over buffers of its own) never asks, and its
//! results are decoded from their frames as before.

use std::ops::Range;

/// One piece of a result frame after its header, in order, as its strategy lays it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes that must be exactly these (a block's header): read into the frame.
    Expect(Vec<u8>),
    /// Values of these elements of the output, as their own little-endian bytes: read straight
    /// into the output.
    Values(Range<usize>),
}

impl Piece {
    /// Its bytes on the wire.
    pub fn bytes(&self) -> usize {
        match self {
            Piece::Expect(b) => b.len(),
            Piece::Values(r) => r.len() * 8,
        }
    }
}

/// Where results may be read into place: the scheduler's side of the seam.
pub trait Places: Send + Sync {
    /// How many bytes of a frame [`Places::claim`] needs to see (its result header).
    fn head_len(&self) -> usize;
    /// A claim on the output for the frame of `len` bytes from `worker` whose first
    /// [`Places::head_len`] bytes are `head`; `None`: read it whole into its frame (not a
    /// result, not this worker's task now, a length that does not fit, already placed).
    fn claim(&self, worker: usize, head: &[u8], len: u64) -> Option<Claim<'_>>;
    /// Ends a claim: its values are all written (`placed`), or it is given up.
    fn settle(&self, task: usize, placed: bool);
}

/// An exclusive claim on one task's span of the output, while its frame is read into it.
/// Dropped without [`Claim::commit`], the task is free again (its values are rewritten by the
/// result that does arrive).
pub struct Claim<'p> {
    places: &'p dyn Places,
    task: usize,
    pieces: &'p [Piece],
    output: *mut f64,
    output_len: usize,
    settled: bool,
}

impl<'p> Claim<'p> {
    /// A claim on task `task`, whose frame after its header is `pieces`, over the output of
    /// `output_len` values at `output`.
    ///
    /// # Safety
    /// Until the claim is settled, nothing else may read or write the output's values named by
    /// `pieces`, and the output must stay allocated; every range in `pieces` lies inside it.
    pub unsafe fn new(
        places: &'p dyn Places,
        task: usize,
        pieces: &'p [Piece],
        output: *mut f64,
        output_len: usize,
    ) -> Claim<'p> {
        Claim { places, task, pieces, output, output_len, settled: false }
    }

    /// The task claimed.
    pub fn task(&self) -> usize {
        self.task
    }

    /// The frame's pieces after its header, in order.
    pub fn pieces(&self) -> &'p [Piece] {
        self.pieces
    }

    /// The output's bytes of values `range` (one of the claim's [`Piece::Values`]), to read
    /// into; empty for a range outside the output.
    pub fn values(&mut self, range: Range<usize>) -> &mut [u8] {
        if range.start > range.end || range.end > self.output_len {
            return &mut [];
        }
        // SAFETY: the range lies inside the output, which the claim holds exclusively and
        // which stays allocated until it is settled (`Claim::new`'s contract); `&mut self`
        // keeps two of these slices from living at once.
        unsafe {
            let start = self.output.add(range.start).cast::<u8>();
            std::slice::from_raw_parts_mut(start, range.len() * 8)
        }
    }

    /// Every value is written: the task is placed.
    pub fn commit(mut self) {
        self.settled = true;
        self.places.settle(self.task, true);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.places.settle(self.task, false);
        }
    }
}
