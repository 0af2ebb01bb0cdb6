//! Hints to the CPU: nothing here changes what the program computes, only when memory
//! it is about to use starts coming into the cache.
//!
//! Where it sits: used by the read path (`segment`, `index`) to overlap the memory
//! latency of reads whose addresses are known before they are needed, such as the
//! frames of the next run of a page while this one decodes; and by the ingest ring
//! (`ingest/ring.rs`, through `ingest::sync`), to bring in the lines of a producer's
//! next record while it does other work.

/// Starts loading the cache line holding `value` into the cache, without waiting for
/// it. On targets other than x86_64 it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache: it reads nothing into the program
    // and cannot fault, whatever the address; `value` is a live reference besides.
    // SSE, which it needs, is part of every x86_64 CPU.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
