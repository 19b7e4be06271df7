//! Pre-faulting the heap of a short reading command (`orch next`): the pages it will fill,
//! mapped in one system call instead of one page fault each.
//!
//! `orch next` on a 10,000-task plan fills about 6 MB of heap (about 9 bytes per byte of plan)
//! and exits. Each fresh 4 KiB page costs a page fault, and on a virtual machine the
//! exception alone costs microseconds: about 1,900 faults were a tenth of the command's time.
//! `MADV_POPULATE_WRITE` (Linux 5.14) maps a range in one call, and the 2 MiB-aligned part of
//! it is first marked `MADV_HUGEPAGE`: where transparent huge pages are enabled (`always` or
//! `madvise`), it gets 2 MiB pages (less kernel work per byte; the memory used is the same,
//! since only what the command fills is populated); elsewhere the advice is ignored. The heap is made to keep what
//! it is given: the allocations of a plan's size come from the main heap rather than their own
//! mappings (`M_MMAP_THRESHOLD`), and freed memory is not returned (`M_TRIM_THRESHOLD`), which
//! a command that exits within milliseconds does not need.
//!
//! Only what the command will use is populated (a little less than what it was measured to
//! use), so the peak memory does not grow. Off unless a command asks ([`enable`]); a no-op
//! where the calls do not exist or fail (older kernels, other systems).

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Heap bytes populated per byte of plan text: `orch next` uses about 9 at 10,000 tasks and 11
/// at 1,000 (measured with massif); fewer are populated, so that none is populated unused.
const PER_PLAN_BYTE: usize = 8;

/// Plans shorter than this are not worth a system call.
const MIN_PLAN: usize = 16 * 1024;

/// Turns pre-faulting on for this process (a command that reads its plans once and exits).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes glibc's thresholds; it is called before any thread of
    // this command exists and every value is within the documented range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// A plan of `len` bytes is about to be parsed: populates the heap it will fill, when
/// [`enable`]d.
pub fn before_plan(len: usize) {
    if !ENABLED.load(Ordering::Relaxed) || len < MIN_PLAN {
        return;
    }
    populate_heap(len.saturating_mul(PER_PLAN_BYTE));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn populate_heap(bytes: usize) {
    const PAGE: usize = 4096;
    const HUGE: usize = 2 << 20;
    // SAFETY: a plain malloc/free pair: the block is not read or written through Rust
    // references; `madvise` populates whole pages inside the block (rounded inwards), which
    // is owned by the heap before and after, and MADV_POPULATE_WRITE changes no content (it
    // maps zero pages where nothing is mapped, as a write fault would).
    unsafe {
        let p = libc::malloc(bytes);
        if p.is_null() {
            return;
        }
        let start = (p as usize).div_ceil(PAGE) * PAGE;
        let end = (p as usize + bytes) / PAGE * PAGE;
        if end > start {
            // Whole 2 MiB pages inside the block (a long plan's), where the system has them:
            // a tenth of the kernel's work of mapping 4 KiB pages one by one.
            let hs = start.div_ceil(HUGE) * HUGE;
            let he = end / HUGE * HUGE;
            if he > hs {
                libc::madvise(hs as *mut libc::c_void, he - hs, libc::MADV_HUGEPAGE);
            }
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
        // Back to the top of the heap, where the next allocations are cut from.
        libc::free(p);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn populate_heap(_bytes: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Off by default; on, it leaves the heap usable (what it does to faults is measured by
    /// the `commands` bench).
    #[test]
    fn populating_leaves_the_heap_usable() {
        before_plan(1 << 20);
        populate_heap(3 << 20);
        let v: Vec<u64> = (0..100_000).collect();
        assert_eq!(v.iter().sum::<u64>(), 4_999_950_000);
    }
}
