//! Running out of memory under a limit (`ulimit -v`, a cgroup) ends the run with its one line,
//! not an abort: the global allocator is the system's, and when it fails the process gives
//! back a block it kept in reserve, says what failed, removes its run folder and exits 1.
//! Workers die with their parent (`PR_SET_PDEATHSIG`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// The reserve given back when an allocation fails, so the clean-up itself can allocate.
const RESERVE: usize = 4 << 20;

/// The system allocator, with an exit in one line when it fails.
pub struct Guarded;

static RESERVED: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static FAILING: AtomicBool = AtomicBool::new(false);

/// Sets the reserve aside; call once at the start of `main`.
pub fn reserve() {
    // SAFETY: a valid, non-zero layout.
    let block = unsafe { System.alloc(reserve_layout()) };
    RESERVED.store(block, Ordering::SeqCst);
}

fn reserve_layout() -> Layout {
    Layout::from_size_align(RESERVE, 4096).unwrap_or(Layout::new::<u8>())
}

// SAFETY: every call goes to the system allocator unchanged; only a failure adds anything.
unsafe impl GlobalAlloc for Guarded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Says what failed and exits 1, once; a failure during the clean-up exits at once.
fn out_of_memory(size: usize) -> ! {
    if FAILING.swap(true, Ordering::SeqCst) {
        // SAFETY: ends the process without running anything more.
        unsafe { nix::libc::_exit(1) }
    }
    let block = RESERVED.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !block.is_null() {
        // SAFETY: allocated in `reserve` with this layout, and freed once.
        unsafe { System.dealloc(block, reserve_layout()) };
    }
    crate::app::say(&format!(
        "error: out of memory: an allocation of {size} bytes failed under this process's limits (ulimit -v, a cgroup's memory limit); use a smaller --n, fewer --workers or --splits that make smaller frames"
    ));
    if let Some(dir) = ipcmap::rundir::current() {
        let _ = std::fs::remove_dir_all(dir);
    }
    // SAFETY: ends the process; nothing else of it may run on a failed allocator.
    unsafe { nix::libc::_exit(1) }
}
