//! The command's log output: `env_logger` formatting, written by a thread of its own.
//!
//! A thread that logs (an event loop logging a connection, a spool thread) never waits for
//! standard error: each record goes over a bounded channel to one log thread, which writes
//! whatever has queued up in a single `write(2)` (records reach standard error at most a few
//! milliseconds late). If standard error stalls (a full pipe, a
//! stopped terminal) and the channel fills, records are dropped and counted, and the count is
//! written as soon as output moves again. [`init`] returns a guard that writes out what is
//! queued when it is dropped, at the end of `main`.
// The binary is a driver: it reads the clock and owns its threads.
#![allow(clippy::disallowed_methods)]

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// Records that may wait for the log thread before new ones are dropped.
const QUEUE: usize = 16 * 1024;
/// The most bytes the log thread gathers into one write.
const BATCH: usize = 64 * 1024;
/// How long the log thread lets records gather after a write.
const GATHER: Duration = Duration::from_millis(5);
/// How long the guard waits for the queued records to be written at exit.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

enum Item {
    Record(Vec<u8>),
    /// Everything queued before it is written: answer.
    Flush(Sender<()>),
}

/// The `env_logger` target: hands each formatted record to the log thread.
struct Handoff {
    tx: Sender<Item>,
    dropped: Arc<AtomicU64>,
}

impl Write for Handoff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tx.try_send(Item::Record(buf.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The log thread is gone (it cannot be, short of a panic there): write directly.
            Err(TrySendError::Disconnected(Item::Record(rec))) => io::stderr().write_all(&rec)?,
            Err(TrySendError::Disconnected(Item::Flush(_))) => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the records queued so far when dropped.
pub struct LogGuard {
    tx: Sender<Item>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let (ack, done) = crossbeam_channel::bounded(1);
        if self.tx.send_timeout(Item::Flush(ack), FLUSH_WAIT).is_ok() {
            let _ = done.recv_timeout(FLUSH_WAIT);
        }
    }
}

/// Installs the logger: `RUST_LOG` filters (default `info`), `RUST_LOG_STYLE` chooses colours
/// (default: colours only when standard error is a terminal).
pub fn init() -> LogGuard {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    // A pipe target gets no colours unless asked; ask when standard error is a terminal and
    // the user did not choose.
    if std::env::var_os("RUST_LOG_STYLE").is_none() && io::stderr().is_terminal() {
        builder.write_style(env_logger::WriteStyle::Always);
    }
    builder.target(env_logger::Target::Pipe(Box::new(Handoff {
        tx: tx.clone(),
        dropped: dropped.clone(),
    })));
    let spawned = thread::Builder::new()
        .name("log".into())
        .spawn(move || write_loop(&rx, &dropped));
    if spawned.is_err() {
        // No thread: log straight to standard error instead.
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    } else {
        builder.init();
    }
    LogGuard { tx }
}

fn write_loop(rx: &Receiver<Item>, dropped: &AtomicU64) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Record(rec) => batch.extend_from_slice(&rec),
                Item::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let _ = writeln!(
                batch,
                "impulse: {lost} log records dropped (standard error too slow)"
            );
        }
        // Nothing to do about a failed write to standard error but go on.
        let _ = io::stderr().lock().write_all(&batch);
        batch.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        // Let records gather instead of being woken for each one: under load a write covers
        // a few milliseconds of records and the loggers never wake this thread (it is not
        // waiting on the channel meanwhile); when the queue is empty, `recv` sleeps until
        // the next record.
        thread::sleep(GATHER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut h = Handoff {
            tx,
            dropped: dropped.clone(),
        };
        for n in 0..5 {
            assert_eq!(h.write(format!("record {n}\n").as_bytes()).unwrap(), 9);
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 3);
        let got: Vec<_> = rx
            .try_iter()
            .map(|i| match i {
                Item::Record(r) => String::from_utf8(r).unwrap(),
                Item::Flush(_) => unreachable!(),
            })
            .collect();
        assert_eq!(got, ["record 0\n", "record 1\n"]);
    }
}
