//! `impulse send --count N --concurrency C [--size BYTES]`: bulk mode. Generates N test
//! messages of about SIZE bytes each (or sends the `--data` message N times), sends them
//! through the mio engine over C connections, shows a progress bar on a terminal, and ends
//! with a summary: messages, elapsed time, msgs/s, and the outcomes by kind and bounce class.
//! The TLS flags (`--starttls`, `--tls-required`, `--tls-ca`, `--tls-insecure`) and
//! `--chunking` mean what they mean in single-message mode: the same session configuration
//! and TLS options go to the engine.
//!
//! Exit status as in single-message mode: 0 when every recipient was accepted, 1 when any
//! bounced, 75 when some were deferred and none bounced.
// The binary is a driver: it reads the clock and owns its threads.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use smtp_client::driver::engine::Engine;
use smtp_client::driver::tls::TlsOptions;
use smtp_client::{Message, OutcomeKind, SessionConfig};

/// What bulk mode sends, and how.
#[derive(Debug)]
pub struct Bulk {
    /// The server.
    pub addr: SocketAddr,
    /// The chain of client states (plugins' included); `None` for the built-in chain.
    pub machine: Option<std::sync::Arc<smtp_client::StateMachine>>,
    /// Every connection's session configuration (its policy says whether STARTTLS is used,
    /// and whether BDAT is).
    pub session: SessionConfig,
    /// How STARTTLS checks the server (the same options as single-message mode).
    pub tls: TlsOptions,
    /// The envelope sender.
    pub from: String,
    /// The envelope recipients of every message.
    pub to: Vec<String>,
    /// How many messages.
    pub count: u64,
    /// How many connections at most.
    pub concurrency: usize,
    /// The approximate size of each generated message, in bytes.
    pub size: usize,
    /// A message to send instead of generated ones.
    pub data: Option<Vec<u8>>,
    /// Messages per connection before it is closed and another opened.
    pub per_connection: u32,
}

/// Outcomes counted by kind, and non-delivered ones by bounce class.
#[derive(Debug, Default)]
struct Tally {
    messages: u64,
    recipients: u64,
    delivered: u64,
    deferred: u64,
    bounced: u64,
    /// `(kind, class id)` → (class name, category, count).
    classes: BTreeMap<(&'static str, u16), (String, String, u64)>,
}

/// Runs bulk mode and prints the summary on standard output.
pub fn run(bulk: Bulk) -> Result<ExitCode, String> {
    if std::env::var_os("RUST_LOG").is_none() {
        // One INFO line per message would bury the summary; RUST_LOG brings them back.
        log::set_max_level(log::LevelFilter::Warn);
    }
    let mut builder = Engine::builder(bulk.addr);
    if let Some(machine) = bulk.machine {
        builder = builder.machine(machine);
    }
    let engine = builder
        .connections(bulk.concurrency)
        .max_deliveries_per_connection(bulk.per_connection)
        .queue_capacity(bulk.concurrency.max(256))
        .session(bulk.session)
        .tls(bulk.tls)
        .build()
        .map_err(|e| format!("cannot start the engine: {e}"))?;
    let deliveries = engine.deliveries();
    let bar = progress_bar(bulk.count);
    let started = Instant::now();

    let count = bulk.count;
    let submitted = AtomicU64::new(0);
    let mut tally = std::thread::scope(|scope| {
        let engine = &engine;
        let submitted = &submitted;
        let (from, to, size, data) = (&bulk.from, &bulk.to, bulk.size, &bulk.data);
        let producer = scope.spawn(move || -> Result<(), String> {
            let padding = padding(size);
            let refill = engine.queue_capacity() / 2;
            for n in 0..count {
                if engine.queued() >= engine.queue_capacity() {
                    // Wait for the queue to drain by half rather than hand over messages one
                    // slot at a time (each a thread wake-up on both sides).
                    while engine.queued() > refill {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                let body = match data {
                    Some(body) => body.clone(),
                    None => test_message(from, to, n, count, size, &padding),
                };
                engine
                    .submit(Message::new(from.clone(), to.iter().cloned(), body))
                    .map_err(|e| format!("cannot submit message {n}: {e}"))?;
                submitted.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        });
        let mut tally = Tally::default();
        while tally.messages < count {
            // Collected in batches every few milliseconds: waiting on the channel for each
            // delivery would cost the engine thread a wake-up of this one per message.
            let before = tally.messages;
            for delivery in deliveries.try_iter() {
                tally.add(&delivery.outcomes);
            }
            bar.inc(tally.messages - before);
            if tally.messages < count {
                if producer.is_finished()
                    && submitted.load(Ordering::SeqCst) == tally.messages
                    && deliveries.is_empty()
                {
                    // The producer stopped early (an error) and everything it submitted
                    // came back.
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        match producer.join() {
            Ok(Ok(())) => Ok(tally),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the message producer panicked".to_owned()),
        }
    })?;
    let stats = engine.stats();
    engine.shutdown();
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    tally.messages = tally.messages.min(count);
    print_summary(&tally, elapsed, bulk.concurrency, stats);
    Ok(if tally.bounced > 0 {
        ExitCode::from(1)
    } else if tally.deferred > 0 {
        ExitCode::from(75)
    } else {
        ExitCode::SUCCESS
    })
}

impl Tally {
    fn add(&mut self, outcomes: &[smtp_client::RecipientOutcome]) {
        self.messages += 1;
        for o in outcomes {
            self.recipients += 1;
            let kind = match o.kind {
                OutcomeKind::Delivered => {
                    self.delivered += 1;
                    continue;
                }
                OutcomeKind::Deferred => {
                    self.deferred += 1;
                    "deferred"
                }
                OutcomeKind::Bounced => {
                    self.bounced += 1;
                    "bounced"
                }
            };
            self.classes
                .entry((kind, o.class.id))
                .or_insert_with(|| (o.class.name.to_string(), o.class.category.to_string(), 0))
                .2 += 1;
        }
    }
}

fn print_summary(
    tally: &Tally,
    elapsed: Duration,
    concurrency: usize,
    stats: smtp_client::driver::engine::Stats,
) {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        tally.messages as f64 / secs
    } else {
        0.0
    };
    println!(
        "messages: {} ({} recipients) over up to {concurrency} connections ({} opened, {} failed, {} retries)",
        tally.messages,
        tally.recipients,
        stats.connections_opened,
        stats.connections_failed,
        stats.retries
    );
    println!("elapsed: {secs:.3} s");
    println!("rate: {rate:.1} msgs/s");
    println!(
        "recipients: {} delivered, {} deferred, {} bounced",
        tally.delivered, tally.deferred, tally.bounced
    );
    for ((kind, id), (name, category, n)) in &tally.classes {
        println!("  {kind}: class {id} {name} ({category}): {n}");
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS: {kib} KiB");
    }
}

/// This process's peak resident set size (`VmHWM`), where `/proc` has it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn progress_bar(count: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(count);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} messages ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// One line of a generated body.
const LINE: &[u8] =
    b"Impulse bulk test message. The quick brown fox jumps over the lazy dog 0123\r\n";

/// Whole body lines, at least `size` bytes of them.
fn padding(size: usize) -> Vec<u8> {
    LINE.repeat(size.div_ceil(LINE.len()))
}

/// Message `n` of `count`, `size` bytes long (or just its headers when they are longer):
/// headers, whole lines of `padding`, and a last shorter line.
fn test_message(
    from: &str,
    to: &[String],
    n: u64,
    count: u64,
    size: usize,
    padding: &[u8],
) -> Vec<u8> {
    let now = SystemTime::now();
    let date = smtp_server::factory::rfc5322_date(now);
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let from = if from.is_empty() { "<>" } else { from };
    let to = to
        .iter()
        .map(|t| format!("<{t}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let headers = format!(
        "From: <{from}>\r\nTo: {to}\r\nSubject: impulse bulk test {} of {count}\r\n\
Date: {date}\r\nMessage-ID: <{nanos}.{n}.impulse-bulk@localhost>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        n + 1
    );
    let room = size.saturating_sub(headers.len());
    let whole = (room / LINE.len() * LINE.len()).min(padding.len());
    let mut body = Vec::with_capacity(headers.len() + room);
    body.extend_from_slice(headers.as_bytes());
    body.extend_from_slice(&padding[..whole]);
    let rest = room - whole;
    if rest >= 3 {
        body.resize(body.len() + rest - 2, b'x');
        body.extend_from_slice(b"\r\n");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_messages_are_about_the_size_asked() {
        let to = vec!["b@example.com".to_owned()];
        for size in [0, 100, 4096, 100_000] {
            let body = test_message("a@example.org", &to, 7, 10, size, &padding(size));
            assert!(body.ends_with(b"\r\n"));
            assert!(body.starts_with(b"From: <a@example.org>\r\n"));
            let text = String::from_utf8(body.clone()).unwrap();
            assert!(text.contains("Subject: impulse bulk test 8 of 10\r\n"));
            if size >= 4096 {
                assert!(
                    (size - 2..=size).contains(&body.len()),
                    "{size}: {}",
                    body.len()
                );
            } else {
                assert!(body.len() < 600, "{size}: {}", body.len());
            }
        }
    }
}
