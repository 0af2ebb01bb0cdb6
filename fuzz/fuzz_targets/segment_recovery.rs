//! Segment recovery on arbitrary bytes: never panics, visits only frames that verify,
//! and reports extents and damage that stay inside the file and never overlap.
#![no_main]

#[path = "../common/bounded_alloc.rs"]
mod bounded_alloc;

use auditlog::limits::SEGMENT_HEADER_BYTES;
use auditlog::segment::header::SegmentHeader;
use auditlog::segment::recovery::{Role, scan_segment};
use auditlog::{Lsn, SegmentId};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes rarely carry a valid header: use theirs if it is one, else put a
    // fixed header in front so the fuzzer explores the frames.
    let (header, bytes) = match SegmentHeader::decode(data) {
        Ok(header) => (header, data.to_vec()),
        Err(_) => {
            let header = SegmentHeader {
                version: 1,
                flags: 0,
                segment_id: SegmentId(7),
                base_lsn: Lsn(4096),
                created_at: auditlog::model::Timestamp::EPOCH,
                salt: 42,
                prev_digest: [0; 32],
            };
            let mut bytes = header.encode().to_vec();
            bytes.extend_from_slice(data);
            (header, bytes)
        }
    };
    for role in [Role::Sealed, Role::Last] {
        let mut n_visited = 0u64;
        let scan = scan_segment(&bytes, &header, role, MAX, |frame| {
            n_visited += 1;
            let _ = frame.record();
        });
        assert_eq!(scan.n_frames, n_visited);
        let len = bytes.len() as u64;
        let mut spans: Vec<(u64, u64)> = scan.extents.iter().map(|r| (r.start, r.end)).collect();
        if role == Role::Sealed {
            spans.extend(
                scan.damage
                    .iter()
                    .map(|d| (d.offset, d.offset + d.len_bytes)),
            );
        }
        spans.sort();
        for (start, end) in &spans {
            assert!(SEGMENT_HEADER_BYTES <= *start && start <= end && *end <= len);
        }
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "extents and damage overlap: {spans:?}"
            );
        }
        assert!(scan.end_offset <= len);
    }
});
