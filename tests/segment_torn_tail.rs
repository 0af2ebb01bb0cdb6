//! A last record written only in part is cut on recovery, wherever the write stopped,
//! and whatever the bytes past it are (end of file, zeros of the preallocated space, or
//! garbage): every record before it comes back, nothing after it does.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;

use auditlog::AuditLog;
use common::{all_records, crash_image, events, frame_offset, segment_files, small_config};

#[derive(Copy, Clone, Debug)]
enum Past {
    EndOfFile,
    Zeros,
    Garbage,
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_of_the_last_two_records() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let records = events(12);
    let log = AuditLog::open(small_config(&live)).unwrap();
    let lsns = log.append_batch(&records).unwrap();
    log.flush().unwrap();
    let image = root.path().join("image");
    crash_image(&live, &image);
    drop(log);

    let segment = segment_files(&image).pop().unwrap();
    let len = fs::metadata(&segment).unwrap().len();
    let n = lsns.len();
    let tail_start = frame_offset(&segment, lsns[n - 2]);
    let data_end = {
        let reopened = AuditLog::open(small_config(&image)).unwrap();
        let got = all_records(&reopened);
        assert_eq!(got.len(), n, "the intact image holds every record");
        let (last_lsn, _) = got[n - 1];
        drop(reopened);
        // Opening sealed the image's segment at its data end; measure that end.
        let _ = last_lsn;
        fs::metadata(&segment).unwrap().len()
    };
    assert!(data_end < len, "the image was preallocated past its data");
    let original = fs::read(live.join(segment.file_name().unwrap())).unwrap();

    let mut n_cases = 0;
    for cut in tail_start..data_end {
        for past in [Past::EndOfFile, Past::Zeros, Past::Garbage] {
            let case = root.path().join(format!("cut-{cut}-{past:?}"));
            crash_image(&live, &case);
            let file = case.join(segment.file_name().unwrap());
            let handle = OpenOptions::new().write(true).open(&file).unwrap();
            match past {
                Past::EndOfFile => handle.set_len(cut).unwrap(),
                Past::Zeros => handle
                    .write_all_at(&vec![0u8; (len - cut) as usize], cut)
                    .unwrap(),
                Past::Garbage => {
                    let garbage: Vec<u8> = (0..len - cut)
                        .map(|i| (i as u8).wrapping_mul(151).wrapping_add(7))
                        .collect();
                    handle.write_all_at(&garbage, cut).unwrap();
                }
            }
            drop(handle);

            // A record survives exactly when it and every record before it still
            // hold their original bytes (zeroing a byte that was zero changes nothing).
            let damaged = fs::read(&file).unwrap();
            let mut expected = Vec::new();
            for (i, (lsn, record)) in lsns.iter().zip(&records).enumerate() {
                let start = frame_offset(&segment, *lsn) as usize;
                let end = lsns
                    .get(i + 1)
                    .map_or(data_end, |l| frame_offset(&segment, *l))
                    as usize;
                if damaged.get(start..end) != Some(&original[start..end]) {
                    break;
                }
                expected.push((*lsn, record.clone()));
            }
            let log = AuditLog::open(small_config(&case)).unwrap();
            let got = all_records(&log);
            assert_eq!(got, expected, "cut at {cut} with {past:?} past it");
            assert!(
                log.recovery_report().is_clean(),
                "cut at {cut} with {past:?}: {:?}",
                log.recovery_report()
            );
            drop(log);
            fs::remove_dir_all(&case).unwrap();
            n_cases += 1;
        }
    }
    assert!(n_cases > 100, "covered {n_cases} cuts");
}

#[test]
fn appends_after_a_cut_tail_are_kept_and_the_cut_bytes_never_return() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let log = AuditLog::open(small_config(&live)).unwrap();
    let lsns = log.append_batch(&events(6)).unwrap();
    log.flush().unwrap();
    let image = root.path().join("image");
    crash_image(&live, &image);
    drop(log);

    // Tear the last record in half.
    let segment = segment_files(&image).pop().unwrap();
    let last = frame_offset(&segment, lsns[5]);
    let handle = OpenOptions::new().write(true).open(&segment).unwrap();
    handle.write_all_at(&[0xAB; 7], last + 3).unwrap();
    drop(handle);

    let log = AuditLog::open(small_config(&image)).unwrap();
    assert!(log.recovery_report().torn_tail.is_some());
    assert_eq!(all_records(&log).len(), 5);
    let more = common::events(3);
    log.append_batch(&more).unwrap();
    log.close().unwrap();

    let log = AuditLog::open(small_config(&image)).unwrap();
    let got: Vec<_> = all_records(&log).into_iter().map(|(_, r)| r).collect();
    let mut expected: Vec<_> = events(6)[..5].to_vec();
    expected.extend(more);
    assert_eq!(got, expected);
}
