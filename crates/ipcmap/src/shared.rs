//! Shared memory regions: memfd-backed, mapped f64 buffers that worker processes inherit by
//! descriptor. Nothing appears in /dev/shm, and nothing outlives the last process holding one.
//! A leaf: the buffer pool keeps them between runs, and shm mode hands them to its workers.

use nix::sys::mman::{madvise, mmap, munmap, MapFlags, MmapAdvise, ProtFlags};
use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// A shared region could not be made or mapped.
#[derive(Debug, thiserror::Error)]
#[error("shared memory: {what}: {reason}")]
pub struct SharedError {
    /// What was being done ("memfd_create", "mapping 80000000 bytes", ...).
    pub what: String,
    /// Why it failed.
    pub reason: String,
}

fn shared_err(what: impl Into<String>) -> impl FnOnce(String) -> SharedError {
    let what = what.into();
    move |reason| SharedError { what, reason }
}

/// A shared, mapped memfd holding f64 values.
pub struct SharedRegion {
    fd: OwnedFd,
    map: Option<NonNull<c_void>>,
    bytes: usize,
    /// Its page size: 4 KiB, or 2 MiB where it lives in reserved huge pages (hugetlbfs).
    page: usize,
}

/// The huge page size shared regions take from hugetlbfs' reserve (the kernel's default).
const HUGE_PAGE: usize = 2 << 20;

/// Huge pages reserved for hugetlbfs and free now, bytes (`/proc/meminfo`).
fn free_reserved_huge_bytes() -> usize {
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    let field = |name: &str| -> usize {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:").saturating_mul(field("Hugepagesize:").saturating_mul(1024))
}

/// `bytes` rounded up to a multiple of `page`.
fn round_up(bytes: usize, page: usize) -> usize {
    bytes.div_ceil(page).saturating_mul(page)
}

impl SharedRegion {
    /// A new zeroed region of `n` f64, mapped, and pre-faulted when `populate` is set. It
    /// lives in reserved huge pages (hugetlbfs, 2 MiB: a TLB entry and a fault per 2 MiB)
    /// where the machine has enough of them free, else in ordinary shared memory (4 KiB
    /// pages, or 2 MiB where `shmem_enabled` takes `MADV_HUGEPAGE`). A region under 1 MiB
    /// stays in ordinary shared memory.
    pub fn create(name: &str, n: usize, populate: bool) -> Result<SharedRegion, SharedError> {
        let bytes = n
            .checked_mul(8)
            .ok_or_else(|| shared_err(format!("a region of {n} f64"))("too large".into()))?;
        // Below half a huge page, a whole one would be mostly waste.
        if bytes >= HUGE_PAGE / 2 && free_reserved_huge_bytes() >= round_up(bytes, HUGE_PAGE) {
            // Reserved pages can still run out between the look and the mapping (another
            // process took them): then ordinary shared memory.
            if let Ok(region) = SharedRegion::make(name, bytes, true, populate) {
                return Ok(region);
            }
        }
        SharedRegion::make(name, bytes, false, populate)
    }

    /// A memfd of `bytes` bytes (in reserved huge pages with `huge`, whole pages), mapped.
    fn make(
        name: &str,
        bytes: usize,
        huge: bool,
        populate: bool,
    ) -> Result<SharedRegion, SharedError> {
        use nix::sys::memfd::MFdFlags;
        let (flags, size) = match huge {
            true => (MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_HUGETLB, round_up(bytes, HUGE_PAGE)),
            false => (MFdFlags::MFD_CLOEXEC, bytes),
        };
        let fd = nix::sys::memfd::memfd_create(name, flags)
            .map_err(|e| shared_err("memfd_create")(e.to_string()))?;
        let len = i64::try_from(size)
            .map_err(|_| shared_err(format!("a region of {size} bytes"))("too large".into()))?;
        nix::unistd::ftruncate(&fd, len)
            .map_err(|e| shared_err(format!("sizing the region to {size} bytes"))(e.to_string()))?;
        SharedRegion::map(fd, bytes, populate)
    }

    /// Maps an inherited region of at least `bytes` bytes (the worker's side).
    ///
    /// # Safety
    /// `fd` must be an open descriptor that nothing else in this process owns.
    pub unsafe fn adopt(fd: i32, bytes: usize) -> Result<SharedRegion, SharedError> {
        let fd = OwnedFd::from_raw_fd(fd);
        let size = nix::sys::stat::fstat(&fd)
            .map_err(|e| shared_err(format!("descriptor {}", fd.as_raw_fd()))(e.to_string()))?
            .st_size;
        if usize::try_from(size).map_or(true, |size| size < bytes) {
            return Err(shared_err(format!("descriptor {}", fd.as_raw_fd()))(format!(
                "holds {size} bytes, {bytes} expected"
            )));
        }
        SharedRegion::map(fd, bytes, false)
    }

    /// Faults in the pages holding elements `range` in one call, for reading or for writing
    /// (`MADV_POPULATE_*`, Linux 5.14+). Best effort: where the kernel lacks it, the kernel
    /// loop faults the pages one touch at a time instead, with the same result.
    pub fn prefault(&self, range: std::ops::Range<usize>, write: bool) {
        let (Some(base), false) = (self.map, range.is_empty()) else {
            return;
        };
        let page = self.page;
        let start = (range.start * 8) / page * page;
        let end = round_up(range.end * 8, page).min(round_up(self.bytes, page));
        let advice =
            if write { MmapAdvise::MADV_POPULATE_WRITE } else { MmapAdvise::MADV_POPULATE_READ };
        // SAFETY: start is page-aligned and [start, end) lies inside our mapping; populating
        // changes no contents.
        let _ = unsafe {
            madvise(
                NonNull::new_unchecked(base.as_ptr().cast::<u8>().add(start).cast()),
                end - start,
                advice,
            )
        };
    }

    /// Maps `bytes` of `fd`, advised for huge pages (`MADV_HUGEPAGE`: taken where the
    /// kernel's `transparent_hugepage/shmem_enabled` allows it, harmlessly refused elsewhere)
    /// before any page is touched, and pre-faulted in one call when `populate` is set.
    fn map(fd: OwnedFd, bytes: usize, populate: bool) -> Result<SharedRegion, SharedError> {
        // hugetlbfs says its page size as the block size; a mapping of it is whole pages.
        let page = nix::sys::stat::fstat(&fd)
            .ok()
            .and_then(|s| usize::try_from(s.st_blksize).ok())
            .filter(|&p| p > 4096 && p.is_power_of_two())
            .unwrap_or(4096);
        let map = match NonZeroUsize::new(round_up(bytes, page)) {
            None => None,
            Some(len) => {
                let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
                // SAFETY: a fresh shared mapping of a file we hold; unmapped in Drop.
                let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, &fd, 0) }
                    .map_err(|e| shared_err(format!("mapping {bytes} bytes"))(e.to_string()))?;
                // SAFETY: the whole fresh mapping; the advice changes page sizes, not contents.
                let _ = unsafe { madvise(ptr, bytes, MmapAdvise::MADV_HUGEPAGE) };
                Some(ptr)
            }
        };
        let region = SharedRegion { fd, map, bytes, page };
        if populate {
            region.prefault(0..bytes / 8, true);
        }
        Ok(region)
    }

    /// Whether this process's mapping of the region is backed by huge pages (`ShmemPmdMapped`
    /// of its mapping in /proc/self/smaps); `None` where that cannot be read.
    pub fn huge_pages(&self) -> Option<bool> {
        if self.in_reserved_huge_pages() {
            return Some(true);
        }
        let base = self.map?.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        // Our mapping's header line ("start-end perms ..."), then its fields, the first
        // ShmemPmdMapped among them being ours.
        let ours = format!("{base:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&ours)).skip(1);
        let kb = lines.find_map(|l| l.strip_prefix("ShmemPmdMapped:"))?;
        let kb: u64 = kb.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb > 0)
    }

    /// It lives in huge pages reserved for hugetlbfs (`vm.nr_hugepages`), not in ordinary
    /// shared memory.
    pub fn in_reserved_huge_pages(&self) -> bool {
        self.page > 4096
    }

    /// The descriptor, to be inherited by workers.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The values.
    pub fn as_f64s(&self) -> &[f64] {
        match self.map {
            // SAFETY: the mapping is page-aligned, `bytes` long and lives as long as `self`.
            Some(ptr) => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr() as *const f64, self.bytes / 8)
            },
            None => &[],
        }
    }

    /// The values, for writing. Other processes may write other elements at the same time;
    /// the scheduler gives each range to one worker at a time.
    pub fn as_f64s_mut(&mut self) -> &mut [f64] {
        match self.map {
            // SAFETY: as in `as_f64s`, and `&mut self` makes this the process's only view.
            Some(ptr) => unsafe {
                std::slice::from_raw_parts_mut(ptr.as_ptr() as *mut f64, self.bytes / 8)
            },
            None => &mut [],
        }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        if let Some(ptr) = self.map.take() {
            // SAFETY: mapped in `map` with this length and not unmapped since.
            let _ = unsafe { munmap(ptr, round_up(self.bytes, self.page)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_says_whether_it_got_huge_pages() {
        let region = SharedRegion::create("t-huge", 1 << 20, true).unwrap();
        assert!(region.huge_pages().is_some(), "its mapping is found in smaps");
    }

    #[test]
    fn a_region_is_shared_through_its_descriptor() {
        let mut a = SharedRegion::create("t-share", 4, false).unwrap();
        a.as_f64s_mut().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        let dup = nix::unistd::dup(&a.fd).unwrap();
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let mut b =
            unsafe { SharedRegion::adopt(std::os::fd::IntoRawFd::into_raw_fd(dup), 32) }.unwrap();
        assert_eq!(b.as_f64s(), &[1.0, 2.0, 3.0, 4.0]);
        b.as_f64s_mut()[0] = 9.0;
        assert_eq!(a.as_f64s()[0], 9.0);
        assert!(unsafe {
            SharedRegion::adopt(
                std::os::fd::IntoRawFd::into_raw_fd(nix::unistd::dup(&a.fd).unwrap()),
                64,
            )
        }
        .is_err());
        assert!(SharedRegion::create("t-empty", 0, true).unwrap().as_f64s().is_empty());
    }

    // Where huge pages are reserved and free (`vm.nr_hugepages`; CI reserves none, so this
    // checks the fallback there), a region that is not a whole number of them lives in them,
    // is read through an adopted descriptor whole, and gives them back when dropped.
    #[test]
    fn a_region_takes_reserved_huge_pages_where_they_are_free() {
        let n = 300_001; // 2.3 MiB: two huge pages, the second partly used
        let free = free_reserved_huge_bytes();
        let mut a = SharedRegion::create("t-hugetlb", n, true).unwrap();
        assert_eq!(a.in_reserved_huge_pages(), free >= round_up(n * 8, HUGE_PAGE), "{free}");
        assert!(a.huge_pages().is_some_and(|h| h) || !a.in_reserved_huge_pages());
        a.as_f64s_mut()[n - 1] = 7.0;
        let dup = nix::unistd::dup(&a.fd).unwrap();
        // SAFETY: `dup` is a fresh descriptor owned by nobody else.
        let b = unsafe { SharedRegion::adopt(std::os::fd::IntoRawFd::into_raw_fd(dup), n * 8) }
            .unwrap();
        assert_eq!(b.as_f64s().len(), n);
        assert_eq!(b.as_f64s()[n - 1], 7.0);
        b.prefault(n - 10..n, false);
        drop((a, b));
        assert_eq!(free_reserved_huge_bytes(), free, "its pages are given back");
    }
}
