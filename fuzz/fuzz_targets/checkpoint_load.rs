//! Index checkpoint loading on arbitrary bytes: never panics, never allocates by a
//! length it has not checked against the bytes at hand, and whatever loads re-encodes
//! to a checkpoint that loads again with the same coverage and answers.
#![no_main]

#[path = "../common/bounded_alloc.rs"]
mod bounded_alloc;

use auditlog::index::checkpoint::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(loaded) = decode(data) {
        let again = encode(&loaded.index, loaded.coverage).expect("a loaded index encodes");
        let back = decode(&again).expect("a re-encoded checkpoint loads");
        assert_eq!(back.coverage, loaded.coverage);
        assert_eq!(back.index.n_runs(), loaded.index.n_runs());
    }
});
