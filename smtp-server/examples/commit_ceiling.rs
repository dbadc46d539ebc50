//! The ceiling of the spool's commit protocol on this machine's disk, with no SMTP at all.
//!
//! `N` committer threads each commit messages one after the other, as `N` SMTP sessions that
//! wait for their `250` before sending the next message do: write the message into a file of
//! `tmp/` (files created ahead by one stock thread, as the spool's tmp stock does),
//! `fdatasync` it, `rename` it into `queue/` (`RENAME_NOREPLACE`), then a shared `fsync` of
//! `queue/` (a combining leader, as the spool's group commit). It uses plain system calls, not
//! the spool's code: the figure is what any server that keeps this protocol can reach here,
//! and `bench/inbound.sh` prints it beside impulse's durable figures.
//!
//! ```text
//! cargo run --release -p smtp-server --example commit_ceiling -- DIR [COMMITTERS] [MESSAGES] [SIZE]
//! ```
//!
//! `DIR` must not exist yet (it is created, filled and left for the caller to remove).
//! Defaults: 20 committers, 20,000 messages, 4,400 bytes (a 4 KiB `smtp-source` message with
//! its headers and the spool's envelope). Prints one line: `commits/s N`.
// A benchmark measures the real clock and runs its load on threads.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use rustix::fs::{renameat_with, RenameFlags, CWD};

/// Files the stock thread keeps ready (the spool keeps 32).
const STOCK: usize = 32;

/// Empty files created ahead in `tmp/`, shared by the stock thread and the committers.
struct Stock {
    ready: Mutex<(VecDeque<(PathBuf, File)>, bool)>,
    taken: Condvar,
    filled: Condvar,
}

/// The shared directory sync: renamed messages wait for a leader's `fsync(queue/)`.
#[derive(Default)]
struct DirSync {
    state: Mutex<(u64, bool)>, // (completed syncs, a leader is syncing)
    done: Condvar,
}

impl DirSync {
    /// Returns once a directory sync that started after the caller's rename has completed.
    fn sync(&self, queue: &File) -> std::io::Result<()> {
        let mut state = self.state.lock();
        // A sync already running may have started before our rename: wait for the next one.
        let target = state.0 + if state.1 { 2 } else { 1 };
        while state.0 < target {
            if state.1 {
                self.done.wait(&mut state);
                continue;
            }
            state.1 = true;
            drop(state);
            let result = queue.sync_all();
            state = self.state.lock();
            state.1 = false;
            state.0 += 1;
            self.done.notify_all();
            result?;
        }
        Ok(())
    }
}

fn stock_thread(stock: &Stock, tmp: &Path) {
    let mut n = 0u64;
    loop {
        {
            let mut ready = stock.ready.lock();
            while !ready.1 && ready.0.len() >= STOCK {
                stock.taken.wait(&mut ready);
            }
            if ready.1 {
                return;
            }
        }
        let path = tmp.join(format!("stock-{n:012}"));
        n += 1;
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => {
                stock.ready.lock().0.push_back((path, file));
                stock.filled.notify_one();
            }
            Err(e) => {
                eprintln!("commit_ceiling: cannot create {}: {e}", path.display());
                std::process::exit(1);
            }
        }
    }
}

fn committer(
    stock: &Stock,
    dir: &DirSync,
    queue: &File,
    queue_dir: &Path,
    body: &[u8],
    count: usize,
    who: usize,
) -> std::io::Result<()> {
    for i in 0..count {
        let (path, mut file) = {
            let mut ready = stock.ready.lock();
            loop {
                if let Some(item) = ready.0.pop_front() {
                    break item;
                }
                stock.filled.wait(&mut ready);
            }
        };
        stock.taken.notify_one();
        file.write_all(body)?;
        file.sync_data()?;
        drop(file);
        let dest = queue_dir.join(format!("{who:03}-{i:09}"));
        renameat_with(CWD, &path, CWD, &dest, RenameFlags::NOREPLACE)?;
        dir.sync(queue)?;
    }
    Ok(())
}

fn arg(args: &[String], n: usize, default: usize) -> Result<usize, String> {
    match args.get(n) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("not a positive number: {s}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: commit_ceiling DIR [COMMITTERS] [MESSAGES] [SIZE]";
    let Some(base) = args.get(1).map(PathBuf::from) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let (committers, messages, size) = match (
        arg(&args, 2, 20),
        arg(&args, 3, 20_000),
        arg(&args, 4, 4_400),
    ) {
        (Ok(c), Ok(m), Ok(s)) => (c.min(1024), m, s.min(64 << 20)),
        (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => {
            eprintln!("commit_ceiling: {e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    if base.exists() {
        eprintln!(
            "commit_ceiling: {} exists; give a new directory",
            base.display()
        );
        return ExitCode::from(2);
    }
    let (tmp, queue_dir) = (base.join("tmp"), base.join("queue"));
    if let Err(e) = fs::create_dir_all(&tmp).and_then(|()| fs::create_dir_all(&queue_dir)) {
        eprintln!("commit_ceiling: cannot create {}: {e}", base.display());
        return ExitCode::from(1);
    }
    let queue = match File::open(&queue_dir) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("commit_ceiling: cannot open {}: {e}", queue_dir.display());
            return ExitCode::from(1);
        }
    };
    let stock = Arc::new(Stock {
        ready: Mutex::new((VecDeque::with_capacity(STOCK), false)),
        taken: Condvar::new(),
        filled: Condvar::new(),
    });
    let filler = {
        let (stock, tmp) = (stock.clone(), tmp.clone());
        thread::spawn(move || stock_thread(&stock, &tmp))
    };
    let dir = Arc::new(DirSync::default());
    let body: Arc<[u8]> = vec![b'x'; size].into();
    let start = Instant::now();
    let workers: Vec<_> = (0..committers)
        .map(|who| {
            // The first `messages % committers` threads take one message more.
            let count = messages / committers + usize::from(who < messages % committers);
            let (stock, dir, queue, queue_dir, body) = (
                stock.clone(),
                dir.clone(),
                queue.clone(),
                queue_dir.clone(),
                body.clone(),
            );
            thread::spawn(move || committer(&stock, &dir, &queue, &queue_dir, &body, count, who))
        })
        .collect();
    let mut failed = false;
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("commit_ceiling: {e}");
                failed = true;
            }
            Err(_) => failed = true,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stock.ready.lock().1 = true;
    stock.taken.notify_all();
    let _ = filler.join();
    if failed {
        return ExitCode::from(1);
    }
    println!(
        "commits/s {:.0} ({messages} messages of {size} bytes, {committers} committers, {secs:.3} s)",
        messages as f64 / secs
    );
    ExitCode::SUCCESS
}
