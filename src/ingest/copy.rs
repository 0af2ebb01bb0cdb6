//! Short byte copies without a call to `memcpy`: a record's strings and keys are mostly
//! under 32 bytes, and for those a call to the C library's copy (chosen at run time,
//! entered through the PLT) costs more than the bytes.
//!
//! Where it sits: under the producer's encoder (`slot.rs`, into the bytes a record
//! claimed in the ring) and the committer's transcoder (`transcode.rs`, into the payload
//! buffer's room).
//!
//! # Invariants
//! - The bytes written are exactly `src`'s, at exactly `src.len()` positions; a copy
//!   of up to 32 bytes is one or two moves of a fixed size that may overlap each other,
//!   never reading or writing outside `src` and `dest`.
//! - Nothing here is `unsafe`: the fixed-size moves are array copies, which the
//!   compiler turns into single loads and stores.

/// `dest.copy_from_slice(src)`. Panics if the lengths differ.
#[inline(always)]
pub(crate) fn copy_short(dest: &mut [u8], src: &[u8]) {
    let len = src.len();
    assert_eq!(dest.len(), len, "a copy's two sides have one length");
    match len {
        0 => {}
        1..4 => {
            // First, middle and last: every byte of 1, 2 or 3.
            dest[0] = src[0];
            dest[len / 2] = src[len / 2];
            dest[len - 1] = src[len - 1];
        }
        4..8 => overlapping::<4>(dest, src),
        8..16 => overlapping::<8>(dest, src),
        16..=32 => overlapping::<16>(dest, src),
        _ => dest.copy_from_slice(src),
    }
}

/// Copies `src` (`N` to `2 N` bytes) as its first `N` bytes and its last `N`.
#[inline(always)]
fn overlapping<const N: usize>(dest: &mut [u8], src: &[u8]) {
    let len = src.len();
    debug_assert!((N..=2 * N).contains(&len));
    fixed::<N>(&mut dest[..N], &src[..N]);
    fixed::<N>(&mut dest[len - N..], &src[len - N..]);
}

/// Copies exactly `N` bytes.
#[inline(always)]
fn fixed<const N: usize>(dest: &mut [u8], src: &[u8]) {
    let src: &[u8; N] = src.try_into().expect("N bytes");
    let dest: &mut [u8; N] = dest.try_into().expect("N bytes");
    *dest = *src;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every length, at every offset in a buffer holding other bytes.
        #[test]
        fn a_short_copy_is_a_copy(
            src in proptest::collection::vec(any::<u8>(), 0..80),
            before in 0usize..40,
            after in 0usize..40,
            fill in any::<u8>(),
        ) {
            let mut ours = vec![fill; before + src.len() + after];
            let mut std = ours.clone();
            copy_short(&mut ours[before..before + src.len()], &src);
            std[before..before + src.len()].copy_from_slice(&src);
            prop_assert_eq!(ours, std);
        }
    }

    #[test]
    fn every_length_up_to_the_long_copy() {
        for len in 0..=40 {
            let src: Vec<u8> = (1..=len as u8).collect();
            let mut dest = vec![0; len];
            copy_short(&mut dest, &src);
            assert_eq!(dest, src, "length {len}");
        }
    }
}
