//! The fuzz targets' global allocator: the system allocator, except that any single
//! allocation above [`ALLOCATION_BYTES_MAX`] aborts the run with a message.
//!
//! Why: the targets run without a sanitizer (see `fuzz/README.md`), and libFuzzer's
//! `-malloc_limit_mb` hooks only exist in a sanitizer runtime. `-rss_limit_mb` alone
//! misses a large allocation sized by an unchecked length when the pages are never
//! touched (a zeroed `Vec` is mapped lazily), so this bound stands in for it. libFuzzer
//! reports the abort as a crash and keeps the input.
//!
//! # Invariants
//! - The documented runs feed inputs of at most 64 KiB, and nothing a target does
//!   legitimately allocates more than a small multiple of its input, far below the bound.
//! - Only allocations made by Rust code pass through here; libFuzzer's own go to libc.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// The largest single allocation a target may make.
pub const ALLOCATION_BYTES_MAX: usize = 16 << 20;

/// The system allocator with a bound on each allocation.
pub struct Bounded;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

fn check(size: usize) {
    if size > ALLOCATION_BYTES_MAX {
        // Formatting integers into an unbuffered stderr allocates nothing.
        let _ = writeln!(
            std::io::stderr(),
            "allocation of {size} bytes exceeds the fuzz bound of {ALLOCATION_BYTES_MAX}"
        );
        std::process::abort();
    }
}

// SAFETY: every method checks the size and then forwards to `System` with the caller's
// arguments unchanged, so `System`'s guarantees are this allocator's.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract for `layout`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract: `ptr` was
        // allocated here (so by `System`) with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract: `ptr` was
        // allocated here (so by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}
