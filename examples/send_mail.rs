//! Sending one message with the blocking client, and reading each recipient's outcome.
//!
//! ```sh
//! cargo run --example embedded_server &            # a server on 127.0.0.1:2525
//! cargo run --example send_mail -- 127.0.0.1:2525 me@example.org you@example.com them@example.net
//! ```
//!
//! Arguments: `[SERVER [FROM [TO...]]]`, defaulting to `127.0.0.1:2525`,
//! `sender@example.org` and `postmaster@example.com`. For each recipient it prints whether
//! the message was delivered, deferred (retry later) or bounced, the server's reply, and the
//! bounce class and category `smtp_proto::classify` gives that reply. The exit code is 0
//! when every recipient was delivered, 1 otherwise.

use std::io::Write;
use std::net::SocketAddr;

use impulse::client::driver::blocking::{Client, Options};
use impulse::client::{Message, RecipientOutcome};

/// What to send where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The server.
    pub server: SocketAddr,
    /// The sender.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

impl Args {
    /// Reads `[SERVER [FROM [TO...]]]`.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let server = args.next().unwrap_or_else(|| "127.0.0.1:2525".to_owned());
        let server = server
            .parse()
            .map_err(|e| format!("{server:?} is not an address such as 127.0.0.1:2525: {e}"))?;
        let from = args
            .next()
            .unwrap_or_else(|| "sender@example.org".to_owned());
        let mut to: Vec<String> = args.collect();
        if to.is_empty() {
            to.push("postmaster@example.com".to_owned());
        }
        Ok(Args { server, from, to })
    }
}

/// Connects, sends one message, prints one line per recipient to `out` and returns the
/// outcomes.
pub fn run(
    args: &Args,
    out: &mut dyn Write,
) -> Result<Vec<RecipientOutcome>, Box<dyn std::error::Error>> {
    let body = format!(
        "From: <{}>\r\nTo: {}\r\nSubject: Impulse send_mail example\r\n\r\nHello from examples/send_mail.rs.\r\n",
        args.from,
        args.to
            .iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let message = Message::new(args.from.clone(), args.to.iter().cloned(), body);

    let mut conn = Client::connect(args.server, Options::new("client.example"))?;
    writeln!(
        out,
        "connected to {}: {} capabilities",
        args.server,
        conn.session().capabilities().iter().count()
    )?;
    let outcomes = conn.send(&message)?;
    for o in &outcomes {
        writeln!(
            out,
            "{}: {:?} {} ({} {}, category {:?}){}",
            o.recipient,
            o.kind,
            String::from_utf8_lossy(&o.reply.to_bytes()).trim_end(),
            o.class.id,
            o.class.name,
            o.category(),
            if o.local {
                " [decided by the client]"
            } else {
                ""
            },
        )?;
    }
    conn.quit()?;
    Ok(outcomes)
}

#[allow(dead_code)] // Not used when a test includes this file for `run`.
fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("send_mail: {e}");
            std::process::exit(2);
        }
    };
    match run(&args, &mut std::io::stdout()) {
        Ok(outcomes) if outcomes.iter().all(RecipientOutcome::is_delivered) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("send_mail: {e}");
            std::process::exit(1);
        }
    }
}
