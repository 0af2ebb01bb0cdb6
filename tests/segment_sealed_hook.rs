//! The sealed-segment hook: every segment sealed by a roll or by close is announced
//! once, after it is sealed, with its path, its final size and the SHA-256 of its
//! bytes, so a shipper can copy it and check the copy.

mod common;

use std::fs;
use std::sync::{Arc, Mutex};

use auditlog::{AuditLog, SealedSegmentInfo};
use sha2::{Digest, Sha256};

#[test]
fn every_sealed_segment_is_announced_with_its_size_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Vec<SealedSegmentInfo>>> = Arc::default();
    let sink = seen.clone();
    let config = common::small_config(dir.path()).on_segment_sealed(Arc::new(move |info| {
        sink.lock().unwrap().push(info.clone())
    }));
    let log = AuditLog::open(config).unwrap();
    for chunk in common::events(400).chunks(20) {
        log.append_batch(chunk).unwrap();
    }
    let announced_before_close = seen.lock().unwrap().len();
    assert!(announced_before_close >= 3, "small segments roll often");
    log.close().unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.len(),
        announced_before_close + 1,
        "close seals and announces the active segment"
    );
    let on_disk = common::segment_files(dir.path());
    assert_eq!(
        seen.iter().map(|i| i.path.clone()).collect::<Vec<_>>(),
        on_disk,
        "every segment on disk was announced once, oldest first"
    );
    for pair in seen.windows(2) {
        assert_eq!(pair[0].end_lsn, pair[1].base_lsn, "segments are contiguous");
        assert!(pair[0].segment_id < pair[1].segment_id);
    }
    for info in seen.iter() {
        let bytes = fs::read(&info.path).unwrap();
        assert_eq!(info.len_bytes, bytes.len() as u64);
        assert_eq!(info.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert_eq!(info.sha256_hex().len(), 64);
    }
}

#[test]
fn an_empty_active_segment_is_not_announced_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let seen: Arc<Mutex<Vec<SealedSegmentInfo>>> = Arc::default();
    let sink = seen.clone();
    let config = common::small_config(dir.path()).on_segment_sealed(Arc::new(move |info| {
        sink.lock().unwrap().push(info.clone())
    }));
    AuditLog::open(config).unwrap().close().unwrap();
    assert!(seen.lock().unwrap().is_empty());
}
