//! `impulse spool ...`: list, show, print and remove the messages of a spool directory.
//!
//! The spool is opened for inspection only (no recovery, no directory creation), so these
//! commands are safe to run beside a server that is using the spool.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;
use smtp_server::spool::{Envelope, QueueId, RealIo, Spool, SpoolError, SpoolOptions};

/// Arguments of `impulse spool`.
#[derive(Debug, Args)]
pub struct SpoolArgs {
    /// The spool directory.
    #[arg(
        long = "spool",
        value_name = "DIR",
        default_value = "./spool",
        global = true
    )]
    pub dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: SpoolCommand,
}

/// The `impulse spool` subcommands.
#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// List the queued messages, oldest first: id, received time, size, sender, recipients.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the envelope of a queued message.
    Show {
        /// The queue id.
        id: String,
        /// Print a JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the stored message bytes to standard output, byte-exact.
    Cat {
        /// The queue id.
        id: String,
    },
    /// Remove a queued message.
    Rm {
        /// The queue id.
        id: String,
    },
}

/// Runs `impulse spool ...` and returns the process exit code (0 ok, 1 error).
pub fn run(args: SpoolArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impulse spool: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spool_err(e: SpoolError) -> io::Error {
    io::Error::other(e)
}

fn execute(args: SpoolArgs) -> io::Result<()> {
    let options = SpoolOptions {
        recover: false,
        sync_threads: 1,
        ..SpoolOptions::default()
    };
    let spool = Spool::open_with(&args.dir, options, Arc::new(RealIo)).map_err(spool_err)?;
    let parse = |id: &str| QueueId::parse(id).map_err(|e| spool_err(e.into()));
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match args.command {
        SpoolCommand::List { json } => {
            let entries = spool.list().map_err(spool_err)?;
            if json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "id": e.id.as_str(),
                            "sender": e.sender,
                            "recipients": e.recipients,
                            "size": e.size,
                            "received": e.received,
                        })
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &list)?;
                writeln!(out)?;
            } else {
                for e in &entries {
                    let rcpts: Vec<String> = e.recipients.iter().map(|r| shown(r)).collect();
                    writeln!(
                        out,
                        "{}  {}  {:>10}  <{}>  {}",
                        e.id,
                        utc(e.received),
                        e.size,
                        shown(&e.sender),
                        rcpts.join(", ")
                    )?;
                }
            }
        }
        SpoolCommand::Show { id, json } => {
            let id = parse(&id)?;
            let env = spool.read_envelope(id).map_err(spool_err)?;
            let size = spool.open_message(id).map_err(spool_err)?.len();
            if json {
                serde_json::to_writer_pretty(&mut out, &envelope_json(id, &env, size))?;
                writeln!(out)?;
            } else {
                write_envelope(&mut out, id, &env, size)?;
            }
        }
        SpoolCommand::Cat { id } => {
            let mut msg = spool.open_message(parse(&id)?).map_err(spool_err)?;
            io::copy(&mut msg, &mut out)?;
        }
        SpoolCommand::Rm { id } => {
            // The same path as `impulse queue delete`: the state record goes too, and a
            // running server's relay is told.
            let id = parse(&id)?;
            spool.read_envelope(id).map_err(spool_err)?;
            drop(spool);
            let delete = smtp_relay::driver::Command::Delete(smtp_relay::Selection::Ids(vec![id]));
            let hostname = smtp_server::config::ServerConfig::default().effective_hostname();
            match super::queue::apply(&args.dir, &hostname, &delete)? {
                0 => return Err(spool_err(SpoolError::NotFound(id))),
                _ => writeln!(out, "removed {id}")?,
            }
        }
    }
    out.flush()
}

fn envelope_json(id: QueueId, env: &Envelope, size: u64) -> serde_json::Value {
    let rcpts: Vec<_> = env
        .recipients
        .iter()
        .map(|r| json!({ "address": r.address, "params": r.params }))
        .collect();
    json!({
        "id": id.as_str(),
        "received": env.received,
        "sender": env.sender,
        "mail_params": env.mail_params,
        "recipients": rcpts,
        "peer": env.peer,
        "helo": env.helo,
        "tls": env.tls,
        "auth": env.auth,
        "notes": env.notes,
        "size": size,
    })
}

fn write_envelope(out: &mut impl Write, id: QueueId, env: &Envelope, size: u64) -> io::Result<()> {
    writeln!(out, "id:          {id}")?;
    writeln!(out, "received:    {} ({})", utc(env.received), env.received)?;
    writeln!(out, "size:        {size}")?;
    writeln!(out, "sender:      <{}>", shown(&env.sender))?;
    writeln!(out, "mail params: {}", shown(&env.mail_params))?;
    for r in &env.recipients {
        writeln!(
            out,
            "recipient:   <{}> {}",
            shown(&r.address),
            shown(&r.params)
        )?;
    }
    writeln!(out, "peer:        {}", shown(&env.peer))?;
    writeln!(out, "helo:        {}", shown(&env.helo))?;
    if let Some(tls) = &env.tls {
        writeln!(out, "tls:         {}", shown(tls))?;
    }
    if let Some(auth) = &env.auth {
        writeln!(out, "auth:        {}", shown(auth))?;
    }
    for note in &env.notes {
        writeln!(out, "note:        {}", shown(note))?;
    }
    Ok(())
}

/// A stored string made safe for a terminal: control characters (CR, LF, NUL, ESC, ...) and
/// backslashes are escaped, so a hostile envelope cannot forge lines or drive the terminal.
pub(crate) fn shown(s: &str) -> String {
    s.escape_debug().to_string()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
fn utc(secs: u64) -> String {
    smtp_proto::date::rfc3339(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn hostile_strings_are_escaped() {
        assert_eq!(shown("a\r\nb\0\u{1b}[2J"), "a\\r\\nb\\0\\u{1b}[2J");
    }
}
