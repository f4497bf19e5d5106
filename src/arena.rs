//! The start-up arena: sigshim's global allocator while the command line is parsed.
//!
//! Parsing builds clap's whole command (every option with its help text) and drops it again:
//! about 600 allocations and 130 kB, 78 kB live at the peak, under 1 kB left when it is done
//! (a counting allocator, `sigshim --log inherit -- /bin/true`). musl's allocator (mallocng)
//! returns a group of slots to the kernel as soon as its last slot is freed, and maps a new one
//! for the next allocation of that size: each start made 31 `mmap` and 19 `munmap` calls, and
//! those calls and their page faults were the largest single share of start-up in `perf`
//! (BENCHMARKS.md, "Start-up (figure 1) and the allocator").
//!
//! So until [`seal`] is called, allocations come from a static arena by bumping a pointer: no
//! system call, no free list. A free of the most recent block gives its space back (the common
//! pattern of a temporary string), a realloc of the most recent block grows in place (a `Vec`
//! being filled), any other free only lowers a per-page count of live blocks. A request that
//! does not fit falls back to the system allocator.
//!
//! [`seal`] ends that: from then on every allocation goes to the system allocator, and the
//! arena pages that hold no live block any more (clap's command, the parse's temporaries) are
//! handed back to the kernel in one `madvise(MADV_DONTNEED)` per run of pages. That is the same
//! thing mallocng's `munmap` did for those pages, done once instead of per group: afterwards
//! only the pages with a live block (the `Config` and the program's arguments, a few pages)
//! stay resident, so the memory sigshim keeps while the app runs is not larger than before.
//! After `seal`, blocks in the arena are still freed and reallocated correctly (a realloc moves
//! the block to the system allocator).
//!
//! Every operation takes a spin lock: sigshim itself is single-threaded, but the unit-test
//! harness of this binary is not, and the lock costs one uncontended atomic swap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

const PAGE: usize = 4096;
/// Above the 130 kB the parse allocates in total, so that in-place growth and the freed tops
/// leave room; a longer command line simply spills into the system allocator.
const PAGES: usize = 48;
const SIZE: usize = PAGES * PAGE;

#[repr(C, align(4096))]
struct Memory([u8; SIZE]);

struct State {
    /// Offset of the first free byte.
    top: usize,
    /// Live blocks that touch each page.
    live: [u32; PAGES],
    sealed: bool,
}

pub struct Arena {
    lock: AtomicBool,
    /// `State::sealed`, readable without the lock: once sealed, an allocation goes straight to
    /// the system allocator (the log path allocates after the seal).
    sealed: AtomicBool,
    state: UnsafeCell<State>,
    memory: UnsafeCell<Memory>,
}

// SAFETY: `state` and the arena's bookkeeping are only touched under `lock`; the bytes of a
// block belong to whoever allocated it, as with any allocator.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            lock: AtomicBool::new(false),
            sealed: AtomicBool::new(false),
            state: UnsafeCell::new(State {
                top: 0,
                live: [0; PAGES],
                sealed: false,
            }),
            memory: UnsafeCell::new(Memory([0; SIZE])),
        }
    }

    fn base(&self) -> usize {
        self.memory.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + SIZE
    }

    /// Runs `f` on the state under the lock.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        while self.lock.swap(true, Ordering::Acquire) {
            std::hint::spin_loop();
        }
        // SAFETY: the lock gives this thread the only reference to the state.
        let r = f(unsafe { &mut *self.state.get() });
        self.lock.store(false, Ordering::Release);
        r
    }

    /// Hands the pages without a live block back to the kernel and sends every later
    /// allocation to the system allocator.
    pub fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
        self.with(|s| {
            s.sealed = true;
            let used = s.top.div_ceil(PAGE);
            let mut page = 0;
            while page < used {
                if s.live[page] != 0 {
                    page += 1;
                    continue;
                }
                let start = page;
                while page < used && s.live[page] == 0 {
                    page += 1;
                }
                // SAFETY: whole pages of our own arena that no live block touches; anonymous
                // private memory reads back as zeros if it is ever touched again.
                unsafe {
                    libc::madvise(
                        (self.base() + start * PAGE) as *mut libc::c_void,
                        (page - start) * PAGE,
                        libc::MADV_DONTNEED,
                    );
                }
            }
        });
    }
}

impl Default for Arena {
    fn default() -> Arena {
        Arena::new()
    }
}

/// Adds `delta` to the live count of every page in `[start, end)` (offsets).
fn count(s: &mut State, start: usize, end: usize, delta: i32) {
    for page in start / PAGE..end.max(start + 1).div_ceil(PAGE) {
        s.live[page] = s.live[page].wrapping_add_signed(delta);
    }
}

/// Reserves `layout` in the arena, or `None` if sealed or full.
fn bump(s: &mut State, base: usize, layout: Layout) -> Option<usize> {
    if s.sealed {
        return None;
    }
    let start = (base + s.top).next_multiple_of(layout.align()) - base;
    let end = start.checked_add(layout.size())?;
    if end > SIZE {
        return None;
    }
    s.top = end;
    count(s, start, end, 1);
    Some(start)
}

// SAFETY: blocks never overlap (the bump pointer only passes over space no live block holds:
// it moves back only over the block being freed), are aligned as asked, and are handed to
// `System` only when `System` made them.
unsafe impl GlobalAlloc for Arena {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.sealed.load(Ordering::Acquire) {
            // SAFETY: the caller's layout, passed on.
            return unsafe { System.alloc(layout) };
        }
        let base = self.base();
        match self.with(|s| bump(s, base, layout)) {
            Some(off) => (base + off) as *mut u8,
            // SAFETY: the caller's layout, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.sealed.load(Ordering::Acquire) {
            // calloc: memory fresh from the kernel is not written (nor made resident) to zero it.
            // SAFETY: the caller's layout, passed on.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: as `alloc`; a freed top may have been written, so the block is cleared.
        let p = unsafe { self.alloc(layout) };
        if !p.is_null() {
            // SAFETY: `p` is a block of `layout.size()` bytes.
            unsafe { p.write_bytes(0, layout.size()) };
        }
        p
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not ours, so `System` made it.
            return unsafe { System.dealloc(ptr, layout) };
        }
        let start = ptr as usize - self.base();
        let end = start + layout.size();
        self.with(|s| {
            count(s, start, end, -1);
            if s.top == end && !s.sealed {
                s.top = start;
            }
        });
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) {
            // SAFETY: not ours, so `System` made it; the caller's arguments, passed on.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let start = ptr as usize - self.base();
        let old_end = start + layout.size();
        // The most recent block grows or shrinks where it is.
        let in_place = self.with(|s| {
            let new_end = start + new_size;
            if s.sealed || s.top != old_end || new_end > SIZE {
                return false;
            }
            count(s, start, old_end, -1);
            count(s, start, new_end, 1);
            s.top = new_end;
            true
        });
        if in_place {
            return ptr;
        }
        // SAFETY: a valid layout (the caller guarantees `new_size` with this alignment is).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least this long and do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn live(a: &Arena) -> Vec<u32> {
        a.with(|s| s.live.to_vec())
    }

    #[test]
    fn bumps_frees_the_top_and_grows_in_place() {
        let a = Box::leak(Box::new(Arena::new()));
        unsafe {
            let p = a.alloc(layout(10, 1));
            let q = a.alloc(layout(8, 8));
            assert!(a.owns(p) && a.owns(q));
            assert_eq!(q as usize % 8, 0);
            assert!(q as usize >= p as usize + 10);
            // Freeing the top gives its space back.
            a.dealloc(q, layout(8, 8));
            let r = a.alloc(layout(8, 8));
            assert_eq!(r, q);
            // A zeroed block over a freed, written top reads zeros.
            let d = a.alloc(layout(64, 8));
            d.write_bytes(0xff, 64);
            a.dealloc(d, layout(64, 8));
            let z = a.alloc_zeroed(layout(64, 8));
            assert_eq!(z, d);
            assert_eq!(std::slice::from_raw_parts(z, 64), [0; 64]);
            a.dealloc(z, layout(64, 8));
            // The top grows in place and keeps its bytes; a block below moves.
            r.write_bytes(7, 8);
            let r2 = a.realloc(r, layout(8, 8), 3 * PAGE);
            assert_eq!(r2, r);
            assert_eq!(*r2.add(7), 7);
            p.write_bytes(1, 10);
            let p2 = a.realloc(p, layout(10, 1), 20);
            assert_ne!(p2, p);
            assert_eq!(std::slice::from_raw_parts(p2, 10), [1; 10]);
            // r spans pages 0-3, p2 sits after it on page 3, p's old place is free.
            assert_eq!(live(a)[..5], [1, 1, 1, 2, 0]);
        }
    }

    #[test]
    fn spills_to_the_system_allocator_and_seals() {
        let a = Box::leak(Box::new(Arena::new()));
        unsafe {
            let big = a.alloc(layout(SIZE + 1, 8));
            assert!(!big.is_null() && !a.owns(big));
            big.write_bytes(3, SIZE + 1);
            let keep = a.alloc(layout(100, 8));
            let dead = a.alloc(layout(2 * PAGE, 8));
            let keep2 = a.alloc(layout(100, 8));
            keep.write_bytes(5, 100);
            dead.write_bytes(9, 2 * PAGE);
            a.dealloc(dead, layout(2 * PAGE, 8));
            a.seal();
            // Live blocks keep their bytes; the page only the dead block touched reads zeros.
            assert_eq!(std::slice::from_raw_parts(keep, 100), [5; 100]);
            let inner = (a.base() + PAGE) as *const u8;
            assert_eq!(*inner, 0);
            // After sealing, new blocks come from the system; arena blocks still move out.
            let after = a.alloc(layout(16, 8));
            assert!(!a.owns(after));
            let zeroed = a.alloc_zeroed(layout(4096, 8));
            assert!(!a.owns(zeroed));
            assert_eq!(std::slice::from_raw_parts(zeroed, 4096), [0; 4096]);
            a.dealloc(zeroed, layout(4096, 8));
            let moved = a.realloc(keep, layout(100, 8), 200);
            assert!(!a.owns(moved));
            assert_eq!(std::slice::from_raw_parts(moved, 100), [5; 100]);
            a.dealloc(moved, layout(200, 8));
            a.dealloc(after, layout(16, 8));
            a.dealloc(keep2, layout(100, 8));
            a.dealloc(big, layout(SIZE + 1, 8));
            assert!(live(a).iter().all(|&n| n == 0));
        }
    }
}
