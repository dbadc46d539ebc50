//! `impulse queue ...`: the operator's view of the relay's queue and its commands.
//!
//! `list`, `show` and `summary` read the spool and its state records (never writing, so
//! they are safe beside a running server). `flush`, `hold`, `release`, `delete` and `bounce`
//! go to the server that owns the spool through its control socket; with no server running
//! they take the spool's lock and apply the command themselves, through the same scheduler
//! (`smtp_relay::driver::offline`).
// A command-line driver: `summary` reads the wall clock for the ages it shows.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;
use smtp_proto::date::rfc3339;
use smtp_relay::driver::{control, offline, Command, RelaySettings};
use smtp_relay::route::RouteTable;
use smtp_relay::{MessageState, Selection, Status};
use smtp_server::spool::{QueueId, RealIo, Spool, SpoolError, SpoolOptions};

/// Arguments of `impulse queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The spool directory (default: the configuration's, else ./spool).
    #[arg(long = "spool", value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// The configuration file, for the spool directory and the host name of notifications.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: QueueCommand,
}

/// The `impulse queue` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List the queued messages with each recipient's status, attempts, next attempt and
    /// last reply.
    List {
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one queued message as `list --json` does.
    Show {
        /// The queue id.
        id: String,
    },
    /// Attempt now (every message when no id is given); clears the down marks of their next
    /// hops.
    Flush {
        /// Queue ids.
        ids: Vec<String>,
    },
    /// Neither attempt nor expire these messages until released.
    Hold {
        /// Queue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Put held messages back on their schedule.
    Release {
        /// Queue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove messages without a notification.
    Delete {
        /// Queue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Fail every open recipient now (5.0.0), with a notification to the sender.
    Bounce {
        /// Queue ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Open recipients by destination domain and message age in minutes, like Postfix's
    /// qshape.
    Summary,
}

/// Runs `impulse queue ...` and returns the process exit code (0 ok, 1 error).
pub fn run(args: QueueArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impulse queue: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fail(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn execute(args: QueueArgs) -> io::Result<()> {
    let config = super::config::load(args.config.as_deref(), Default::default()).map_err(fail)?;
    let dir = args.dir.unwrap_or_else(|| config.spool.dir.clone());
    let ids = |ids: &[String]| -> io::Result<Selection> {
        if ids.is_empty() {
            return Ok(Selection::All);
        }
        ids.iter()
            .map(|i| QueueId::parse(i).map_err(fail))
            .collect::<io::Result<Vec<_>>>()
            .map(Selection::Ids)
    };
    let command = match &args.command {
        QueueCommand::List { json } => return list(&dir, *json),
        QueueCommand::Show { id } => return show(&dir, id),
        QueueCommand::Summary => return summary(&dir),
        QueueCommand::Flush { ids: i } => Command::Flush(ids(i)?),
        QueueCommand::Hold { ids: i } => Command::Hold(ids(i)?),
        QueueCommand::Release { ids: i } => Command::Release(ids(i)?),
        QueueCommand::Delete { ids: i } => Command::Delete(ids(i)?),
        QueueCommand::Bounce { ids: i } => Command::Bounce(ids(i)?),
    };
    let n = apply(&dir, &config.effective_hostname(), &command)?;
    let verb = control::encode(&command);
    let verb = verb.split(' ').next().unwrap_or_default();
    println!("{verb}: {n} message{}", if n == 1 { "" } else { "s" });
    Ok(())
}

/// Carries out a queue command: through the running server's control socket, or under the
/// spool's lock when no server runs.
pub(crate) fn apply(dir: &Path, hostname: &str, command: &Command) -> io::Result<usize> {
    match control::request(dir, command) {
        Ok(answer) => return answer.map_err(fail),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) => {}
        Err(e) => return Err(fail(format!("the server's control socket: {e}"))),
    }
    if !dir.join("queue").is_dir() {
        return Err(fail(format!("{}: not a spool directory", dir.display())));
    }
    let spool = match Spool::open(dir) {
        Ok(s) => s,
        Err(e @ SpoolError::Locked { .. }) => {
            return Err(fail(format!("{e}, and its control socket does not answer")))
        }
        Err(e) => return Err(fail(e)),
    };
    let settings = RelaySettings::new(RouteTable::new(Vec::new(), None), hostname);
    offline::apply(&spool, &settings, command).map_err(fail)
}

/// One queued message as `list --json` prints it.
struct Entry {
    id: QueueId,
    sender: String,
    arrival: u64,
    size: u64,
    state: MessageState,
}

fn entries(dir: &Path, only: Option<QueueId>) -> io::Result<Vec<Entry>> {
    let options = SpoolOptions {
        recover: false,
        sync_threads: 1,
        ..SpoolOptions::default()
    };
    let spool = Spool::open_with(dir, options, Arc::new(RealIo)).map_err(fail)?;
    let ids: Vec<QueueId> = match only {
        Some(id) => vec![id],
        None => spool
            .list()
            .map_err(fail)?
            .into_iter()
            .map(|e| e.id)
            .collect(),
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let env = match spool.read_envelope(id) {
            Ok(e) => e,
            Err(SpoolError::NotFound(_)) if only.is_none() => continue,
            Err(e) => return Err(fail(e)),
        };
        let size = spool.open_message(id).map(|m| m.len()).unwrap_or_default();
        let state = match spool.read_state(id).map_err(fail)? {
            Some(record) => {
                MessageState::decode(&record).map_err(|e| fail(format!("{id}: {e}")))?
            }
            None => MessageState::new(
                smtp_relay::Timestamp(env.received),
                env.recipients
                    .iter()
                    .map(|r| (r.address.as_str(), r.params.as_str())),
            ),
        };
        out.push(Entry {
            id,
            sender: env.sender,
            arrival: env.received,
            size,
            state,
        });
    }
    Ok(out)
}

fn entry_json(e: &Entry) -> serde_json::Value {
    let recipients: Vec<_> = e
        .state
        .recipients
        .iter()
        .map(|r| {
            json!({
                "address": r.address,
                "status": r.status.as_str(),
                "attempts": r.attempts,
                "next_attempt": rfc3339(r.next_attempt.0),
                "last_reply": r.last_reply,
            })
        })
        .collect();
    json!({
        "id": e.id.as_str(),
        "sender": e.sender,
        "arrival": rfc3339(e.arrival),
        "size": e.size,
        "held": e.state.held,
        "recipients": recipients,
    })
}

fn list(dir: &Path, json: bool) -> io::Result<()> {
    let entries = entries(dir, None)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if json {
        let all: Vec<_> = entries.iter().map(entry_json).collect();
        serde_json::to_writer_pretty(&mut out, &all)?;
        writeln!(out)?;
        return out.flush();
    }
    for e in &entries {
        writeln!(
            out,
            "{}{}  {:>9}  {}  <{}>",
            e.id,
            if e.state.held { "!" } else { " " },
            e.size,
            rfc3339(e.arrival),
            super::spool::shown(&e.sender)
        )?;
        for r in &e.state.recipients {
            let when = match r.status {
                Status::Pending | Status::Deferred => {
                    format!(" next {}", rfc3339(r.next_attempt.0))
                }
                _ => String::new(),
            };
            writeln!(
                out,
                "    {:<9} {:>3}{when}  <{}>",
                r.status.as_str(),
                r.attempts,
                super::spool::shown(&r.address)
            )?;
            if !r.last_reply.is_empty() {
                writeln!(out, "        ({})", super::spool::shown(&r.last_reply))?;
            }
        }
    }
    let n = entries.len();
    writeln!(out, "-- {n} message{}", if n == 1 { "" } else { "s" })?;
    out.flush()
}

fn show(dir: &Path, id: &str) -> io::Result<()> {
    let id = QueueId::parse(id).map_err(fail)?;
    let entries = entries(dir, Some(id))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    serde_json::to_writer_pretty(&mut out, &entry_json(&entries[0]))?;
    writeln!(out)?;
    out.flush()
}

/// Age bucket upper bounds in minutes, as qshape's.
const BUCKETS: [u64; 9] = [5, 10, 20, 40, 80, 160, 320, 640, 1280];

fn summary(dir: &Path) -> io::Result<()> {
    let entries = entries(dir, None)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rows: BTreeMap<String, [u64; BUCKETS.len() + 1]> = BTreeMap::new();
    let mut total = [0u64; BUCKETS.len() + 1];
    for e in &entries {
        let age = now.saturating_sub(e.arrival) / 60;
        let bucket = BUCKETS
            .iter()
            .position(|&b| age < b)
            .unwrap_or(BUCKETS.len());
        for r in e.state.recipients.iter().filter(|r| !r.status.is_final()) {
            rows.entry(r.domain()).or_default()[bucket] += 1;
            total[bucket] += 1;
        }
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut header = format!("{:>30} {:>6}", "", "T");
    for b in BUCKETS {
        header.push_str(&format!(" {b:>5}"));
    }
    header.push_str(&format!(" {:>5}", "1280+"));
    writeln!(out, "{header}")?;
    let mut sorted: Vec<_> = rows.into_iter().collect();
    sorted.sort_by_key(|(_, counts)| std::cmp::Reverse(counts.iter().sum::<u64>()));
    let line = |name: &str, counts: &[u64]| {
        let mut s = format!("{:>30} {:>6}", name, counts.iter().sum::<u64>());
        for c in counts {
            s.push_str(&format!(" {c:>5}"));
        }
        s
    };
    writeln!(out, "{}", line("TOTAL", &total))?;
    for (domain, counts) in &sorted {
        writeln!(out, "{}", line(&super::spool::shown(domain), counts))?;
    }
    out.flush()
}
