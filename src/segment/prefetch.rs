//! A cache hint for frames about to be read.
//!
//! A query that returns several records knows where each of them is before it decodes
//! the first: the index holds their LSNs. Read one after another, each record waits for
//! memory in turn (at a million runs most frames are in no cache, and on a virtual
//! machine a TLB miss costs a two-level page walk). Hinting the next records first lets
//! those waits overlap with the decoding of the current one.
//!
//! A hint changes no result: it only loads cache lines, never faults (a page not yet
//! mapped is skipped, not read), and is not issued at all off x86-64.

/// Bytes hinted from the start of a frame: its header and a typical run's payload.
const HINT_BYTES: usize = 128;
/// A cache line.
const LINE_BYTES: usize = 64;

/// Hints that the first bytes of `frame` will be read soon.
#[inline]
pub(crate) fn hint(frame: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for at in (0..frame.len().min(HINT_BYTES)).step_by(LINE_BYTES) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let line = frame[at..].as_ptr().cast::<i8>();
        // SAFETY: a prefetch reads nothing the program sees and cannot fault; the
        // address is inside `frame`, and SSE, which provides it, is part of x86-64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = frame;
}
