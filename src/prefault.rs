//! The heap of a short reading command (`orch next`): its allocations cut from one arena,
//! the pages it will fill mapped in one system call instead of one page fault each.
//!
//! `orch next` on a 10,000-task plan makes about 50,000 allocations (ids, descriptions, bodies,
//! the graph's vectors) and frees almost none of them before it exits: glibc's `malloc` spent
//! about 180 instructions on each, a tenth of the command. Once a command [`enable`]s it, the
//! process's allocator ([`Heap`], installed by `main.rs`) cuts each allocation from one
//! reserved arena by moving a pointer; freeing gives memory back only when it is the last
//! block cut (a temporary), and growing the last block grows it in place. Everything else
//! (other commands, anything allocated before [`enable`], what does not fit) goes to the
//! system allocator, which also frees what it gave.
//!
//! Each fresh 4 KiB page costs a page fault, and on a virtual machine the exception alone
//! costs microseconds: about 1,900 faults were a tenth of the command's time.
//! `MADV_POPULATE_WRITE` (Linux 5.14) maps a range in one call, and the 2 MiB-aligned part of
//! it is first marked `MADV_HUGEPAGE`: where transparent huge pages are enabled (`always` or
//! `madvise`), it gets 2 MiB pages (less kernel work per byte; the memory used is the same,
//! since only what the command fills is populated); elsewhere the advice is ignored. Without
//! the arena (it could not be reserved), the same is done to glibc's heap, made to keep what it
//! is given: the allocations of a plan's size come from the main heap rather than their own
//! mappings (`M_MMAP_THRESHOLD`), and freed memory is not returned (`M_TRIM_THRESHOLD`), which
//! a command that exits within milliseconds does not need.
//!
//! Only what the command will use is populated (a little less than what it was measured to
//! use), so the peak memory does not grow. Off unless a command asks ([`enable`]); a no-op
//! where the calls do not exist or fail (older kernels, other systems).

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Heap bytes populated per byte of plan text: `orch next` uses about 9 at 10,000 tasks and 11
/// at 1,000 (measured with massif); fewer are populated, so that none is populated unused.
const PER_PLAN_BYTE: usize = 8;

/// Plans shorter than this are not worth a system call.
const MIN_PLAN: usize = 16 * 1024;

/// Address space reserved for the arena (nothing is mapped until touched or populated): what
/// `orch next` allocates at 50,000 tasks many times over. What does not fit goes to the system
/// allocator.
const ARENA_RESERVE: usize = 1 << 32;

/// The process's allocator: the system's, or [`ARENA`] once [`enable`]d. Installed by
/// `main.rs` (`#[global_allocator]`); tests and other binaries keep the system's.
pub struct Heap;

/// The arena of [`Heap`]: empty (every allocation goes to the system) until [`enable`].
static ARENA: Arena = Arena::empty();

/// A bump arena over `[start, end)`: `next` is where the next block is cut. Below `dirty`
/// the memory may have been written (a freed temporary's); above it, it is still as mapped:
/// zeros.
struct Arena {
    start: AtomicUsize,
    end: AtomicUsize,
    next: AtomicUsize,
    dirty: AtomicUsize,
}

impl Arena {
    const fn empty() -> Self {
        Arena {
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            dirty: AtomicUsize::new(0),
        }
    }

    /// Starts cutting from `[start, end)` (memory the arena owns from now on).
    fn open(&self, start: usize, end: usize) {
        self.next.store(start, Ordering::Relaxed);
        self.dirty.store(start, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        self.start.store(start, Ordering::Release);
    }

    #[inline(always)]
    fn is_open(&self) -> bool {
        self.start.load(Ordering::Relaxed) != 0
    }

    #[inline(always)]
    fn owns(&self, p: *mut u8) -> bool {
        let a = p as usize;
        a >= self.start.load(Ordering::Relaxed) && a < self.end.load(Ordering::Relaxed)
    }

    /// A block for `layout`, or null when the arena is closed or full.
    #[inline(always)]
    fn cut(&self, layout: Layout) -> *mut u8 {
        if self.start.load(Ordering::Acquire) == 0 {
            return std::ptr::null_mut();
        }
        let end = self.end.load(Ordering::Relaxed);
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let at = (cur + layout.align() - 1) & !(layout.align() - 1);
            let Some(after) = at.checked_add(layout.size()).filter(|&a| a <= end) else {
                return std::ptr::null_mut();
            };
            match self
                .next
                .compare_exchange_weak(cur, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return at as *mut u8,
                Err(now) => cur = now,
            }
        }
    }

    /// Moves the end of the last block cut, `[p, p + old)`, to `p + new`; false when `p` is
    /// not the last block or `p + new` does not fit.
    #[inline]
    fn resize_last(&self, p: *mut u8, old: usize, new: usize) -> bool {
        let a = p as usize;
        let end = self.end.load(Ordering::Relaxed);
        if a.checked_add(new).is_none_or(|e| e > end) {
            return false;
        }
        // What is given back may have been written: it is no longer known to be zeros.
        if new < old {
            self.dirty.fetch_max(a + old, Ordering::Relaxed);
        }
        self.next
            .compare_exchange(a + old, a + new, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// How many of the first bytes of the block `[p, p + len)` may not be zeros.
    fn dirty_prefix(&self, p: *mut u8, len: usize) -> usize {
        self.dirty
            .load(Ordering::Relaxed)
            .saturating_sub(p as usize)
            .min(len)
    }
}

// SAFETY: every block handed out is either the system allocator's (and given back to it) or
// a range of the arena cut once: `next` only moves forward past blocks in use (a CAS on it
// hands each range to one caller), and moves back only over the last block when that block is
// freed or resized by its owner. Arena memory is never given back to the system.
unsafe impl GlobalAlloc for Heap {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Other commands pay one load and a branch: each way is a call of its own, so this
        // one needs no stack frame.
        if ARENA.is_open() {
            arena_alloc(layout)
        } else {
            // SAFETY: the caller's layout, as for any allocator.
            unsafe { system_alloc(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if ARENA.owns(p) {
            arena_dealloc(p, layout);
        } else {
            // SAFETY: `p` is not the arena's, so the system allocator gave it with `layout`.
            unsafe { System.dealloc(p, layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = if ARENA.is_open() {
            ARENA.cut(layout)
        } else {
            std::ptr::null_mut()
        };
        if !p.is_null() {
            // SAFETY: `p` is a fresh block of `layout.size()` bytes; the part of it that may
            // have been a freed temporary's is zeroed (the rest is as mapped: zeros).
            unsafe { std::ptr::write_bytes(p, 0, ARENA.dirty_prefix(p, layout.size())) };
            return p;
        }
        // SAFETY: the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !ARENA.owns(p) {
            // SAFETY: the system's block, with the caller's layout and size.
            return unsafe { System.realloc(p, layout, new_size) };
        }
        if ARENA.resize_last(p, layout.size(), new_size) {
            return p;
        }
        if new_size <= layout.size() {
            return p;
        }
        // SAFETY: `new_size` with the block's alignment is a valid layout (the caller's
        // contract); the new block does not overlap the old one (fresh), which stays cut.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(p, new, layout.size());
            }
            new
        }
    }
}

/// A block of the arena, else the system's.
#[inline(never)]
fn arena_alloc(layout: Layout) -> *mut u8 {
    let p = ARENA.cut(layout);
    if !p.is_null() {
        return p;
    }
    // SAFETY: the caller's layout (`GlobalAlloc::alloc`'s contract).
    unsafe { system_alloc(layout) }
}

/// The arena's block `p` is freed: the last block comes back (a temporary); any other stays
/// cut until exit.
#[inline(never)]
fn arena_dealloc(p: *mut u8, layout: Layout) {
    ARENA.resize_last(p, layout.size(), 0);
}

/// The system allocator's `alloc`, out of line: the closed arena's test then costs other
/// commands a load and a branch before the jump, not a stack frame in every allocation.
///
/// # Safety
/// As [`GlobalAlloc::alloc`].
#[inline(never)]
unsafe fn system_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe { System.alloc(layout) }
}

/// Turns the arena and pre-faulting on for this process (a command that reads its plans once
/// and exits).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes glibc's thresholds; it is called before any thread of
    // this command exists and every value is within the documented range.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
    open_arena();
}

#[cfg(target_os = "linux")]
fn open_arena() {
    if ARENA.start.load(Ordering::Relaxed) != 0 {
        return;
    }
    // SAFETY: a fresh private anonymous mapping, not yet used by anything; from here on the
    // arena owns it (never unmapped: the process exits).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            ARENA_RESERVE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p.is_null() {
        return;
    }
    let start = p as usize;
    ARENA.open(start, start + ARENA_RESERVE);
}

#[cfg(not(target_os = "linux"))]
fn open_arena() {}

/// A plan of `len` bytes is about to be parsed: populates the heap it will fill, when
/// [`enable`]d.
pub fn before_plan(len: usize) {
    if !ENABLED.load(Ordering::Relaxed) || len < MIN_PLAN {
        return;
    }
    let bytes = len.saturating_mul(PER_PLAN_BYTE);
    if ARENA.start.load(Ordering::Acquire) != 0 {
        // The arena's next blocks: from where it stands to `bytes` further (within it).
        let from = ARENA.next.load(Ordering::Relaxed);
        let to = from
            .saturating_add(bytes)
            .min(ARENA.end.load(Ordering::Relaxed));
        populate(from, to);
        return;
    }
    populate_heap(bytes);
}

/// Maps the whole pages of `[from, to)` (memory this process owns) in one call, with 2 MiB
/// pages for its 2 MiB-aligned part where the system has them.
#[cfg(target_os = "linux")]
fn populate(from: usize, to: usize) {
    const PAGE: usize = 4096;
    const HUGE: usize = 2 << 20;
    let start = from.div_ceil(PAGE) * PAGE;
    let end = to / PAGE * PAGE;
    if end <= start {
        return;
    }
    // SAFETY: advice on whole pages of a range this process owns (the arena, or a heap block
    // it holds); MADV_POPULATE_WRITE changes no content (it maps zero pages where nothing is
    // mapped, as a write fault would).
    unsafe {
        // Whole 2 MiB pages inside the range (a long plan's): a tenth of the kernel's work
        // of mapping 4 KiB pages one by one.
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
}

#[cfg(not(target_os = "linux"))]
fn populate(_from: usize, _to: usize) {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn populate_heap(bytes: usize) {
    // SAFETY: a plain malloc/free pair: the block is not read or written through Rust
    // references, only advised (see `populate`), and is owned by the heap before and after.
    unsafe {
        let p = libc::malloc(bytes);
        if p.is_null() {
            return;
        }
        populate(p as usize, p as usize + bytes);
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

    /// An arena over a buffer of this test's own.
    fn arena(buf: &mut [u64]) -> Arena {
        let a = Arena::empty();
        let start = buf.as_mut_ptr() as usize;
        a.open(start, start + std::mem::size_of_val(buf));
        a
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("layout")
    }

    #[test]
    fn the_arena_cuts_aligned_blocks_one_after_the_other_until_full() {
        let mut buf = vec![0u64; 16];
        let a = arena(&mut buf);
        let start = a.start.load(Ordering::Relaxed);
        let p1 = a.cut(layout(3, 1)) as usize;
        let p2 = a.cut(layout(8, 8)) as usize;
        let p3 = a.cut(layout(1, 1)) as usize;
        assert_eq!((p1, p2, p3), (start, start + 8, start + 16));
        assert!(a.owns(p2 as *mut u8));
        assert!(!a.owns((start + 128) as *mut u8));
        // 17 bytes used, 111 left: 112 do not fit, 104 at 8 do.
        assert!(a.cut(layout(112, 8)).is_null());
        assert_eq!(a.cut(layout(104, 8)) as usize, start + 24);
        assert!(a.cut(layout(1, 1)).is_null());
        // A closed arena cuts nothing and owns nothing.
        let closed = Arena::empty();
        assert!(closed.cut(layout(1, 1)).is_null());
        assert!(!closed.owns(p1 as *mut u8));
    }

    #[test]
    fn only_the_last_block_is_given_back_or_resized_in_place() {
        let mut buf = vec![0u64; 16];
        let a = arena(&mut buf);
        let p1 = a.cut(layout(16, 8));
        let p2 = a.cut(layout(16, 8));
        assert!(!a.resize_last(p1, 16, 32), "not the last block");
        assert!(a.resize_last(p2, 16, 48), "the last block grows in place");
        assert_eq!(a.cut(layout(8, 8)) as usize, p2 as usize + 48);
        let p4 = (p2 as usize + 48) as *mut u8;
        assert!(a.resize_last(p4, 8, 0), "a freed temporary comes back");
        assert_eq!(a.cut(layout(8, 8)), p4);
        assert!(!a.resize_last(p4, 8, 200), "beyond the end");
    }

    /// Memory given back is no longer taken for zeros; memory never cut is.
    #[test]
    fn what_was_given_back_is_dirty() {
        let mut buf = vec![0u64; 16];
        let a = arena(&mut buf);
        let p1 = a.cut(layout(8, 8));
        assert_eq!(a.dirty_prefix(p1, 8), 0);
        let p2 = a.cut(layout(24, 8));
        assert!(a.resize_last(p2, 24, 0));
        let p3 = a.cut(layout(40, 8));
        assert_eq!(p3, p2);
        assert_eq!(a.dirty_prefix(p3, 40), 24);
        let p4 = a.cut(layout(8, 8));
        assert_eq!(a.dirty_prefix(p4, 8), 0);
        // Shrinking in place marks the end given back.
        assert!(a.resize_last(p4, 8, 4));
        assert_eq!(a.dirty_prefix(p4, 8), 8);
    }

    /// Through the allocator's interface: blocks keep their contents when they grow, in place
    /// or moved, and the system's blocks go back to the system.
    #[test]
    fn reallocation_keeps_contents() {
        // The global arena is not opened by tests (other tests run in this process): `Heap`
        // over a closed arena is the system's allocator.
        let l = layout(4, 4);
        // SAFETY: a block of `l` from the system, written within its size, grown, freed with
        // its layout.
        unsafe {
            let p = Heap.alloc(l);
            assert!(!p.is_null());
            p.copy_from_nonoverlapping([1u8, 2, 3, 4].as_ptr(), 4);
            let q = Heap.realloc(p, l, 64);
            assert_eq!(std::slice::from_raw_parts(q, 4), [1, 2, 3, 4]);
            Heap.dealloc(q, layout(64, 4));
        }
    }
}
