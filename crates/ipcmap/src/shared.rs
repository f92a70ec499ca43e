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
}

impl SharedRegion {
    /// A new zeroed region of `n` f64, mapped, and pre-faulted when `populate` is set.
    pub fn create(name: &str, n: usize, populate: bool) -> Result<SharedRegion, SharedError> {
        let bytes = n
            .checked_mul(8)
            .ok_or_else(|| shared_err(format!("a region of {n} f64"))("too large".into()))?;
        let fd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| shared_err("memfd_create")(e.to_string()))?;
        let len = i64::try_from(bytes)
            .map_err(|_| shared_err(format!("a region of {bytes} bytes"))("too large".into()))?;
        nix::unistd::ftruncate(&fd, len).map_err(|e| {
            shared_err(format!("sizing the region to {bytes} bytes"))(e.to_string())
        })?;
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
        let page = 4096;
        let start = (range.start * 8) / page * page;
        let end = (range.end * 8).min(self.bytes);
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
        let map = match NonZeroUsize::new(bytes) {
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
        let region = SharedRegion { fd, map, bytes };
        if populate {
            region.prefault(0..bytes / 8, true);
        }
        Ok(region)
    }

    /// Whether this process's mapping of the region is backed by huge pages (`ShmemPmdMapped`
    /// of its mapping in /proc/self/smaps); `None` where that cannot be read.
    pub fn huge_pages(&self) -> Option<bool> {
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
            let _ = unsafe { munmap(ptr, self.bytes) };
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
}
