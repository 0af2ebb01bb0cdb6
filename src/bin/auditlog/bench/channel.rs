//! A hand-rolled logger: a crossbeam bounded channel of 16 384 events (about the
//! recorder's default queue), `try_send` of a clone on the calling thread, and one
//! consumer thread writing each event as a JSON line through a `BufWriter`, flushed
//! whenever the channel is empty. A full channel drops the event and counts it.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use auditlog::model::CallEvent;
use crossbeam_channel::{Sender, bounded};

use super::{Finished, System, workload};
use crate::CliResult;

pub const NAME: &str = "crossbeam";

const CAPACITY: usize = 16_384;

pub struct Channel {
    tx: Sender<CallEvent>,
    consumer: JoinHandle<std::io::Result<()>>,
    n_dropped: AtomicU64,
}

impl Channel {
    pub fn open(path: &Path) -> CliResult<Channel> {
        let file = std::fs::File::create(path.with_extension("jsonl"))?;
        let (tx, rx) = bounded::<CallEvent>(CAPACITY);
        let consumer = std::thread::Builder::new()
            .name("crossbeam-writer".into())
            .spawn(move || {
                let mut out = BufWriter::new(file);
                while let Ok(event) = rx.recv() {
                    serde_json::to_writer(&mut out, &event)?;
                    out.write_all(b"\n")?;
                    if rx.is_empty() {
                        out.flush()?;
                    }
                }
                out.flush()
            })?;
        Ok(Channel {
            tx,
            consumer,
            n_dropped: AtomicU64::new(0),
        })
    }
}

impl System for Channel {
    type Event = CallEvent;

    fn event(&self, seq: u64) -> CallEvent {
        workload::call_event(seq)
    }

    fn record(&self, event: &CallEvent) {
        if self.tx.try_send(event.clone()).is_err() {
            self.n_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closing the channel lets the consumer write what is queued and stop.
    fn finish(self) -> Finished {
        drop(self.tx);
        self.consumer
            .join()
            .expect("the writer thread panicked")
            .expect("the writer thread could not write its file");
        Finished {
            n_dropped: self.n_dropped.into_inner(),
        }
    }
}
