//! Where a benchmark's store lives: a fresh directory under the system temporary
//! directory. Shared by every benchmark (`mod common` re-exports it; the benchmarks
//! that need nothing else include this file alone with `#[path]`).

/// A fresh, empty directory for one benchmark, removed when the guard drops.
///
/// It is created under the system temporary directory, which must be a real disk (not
/// tmpfs) for the sync numbers to mean anything; the path is printed so the file system
/// can be checked with `df -T`.
pub fn bench_dir(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("auditlog-bench-{name}-"))
        .tempdir_in(std::env::temp_dir())
        .expect("create a benchmark directory");
    println!("{name}: store directory {}", dir.path().display());
    dir
}
