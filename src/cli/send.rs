//! `impulse send`: send one message through the blocking client and print each recipient's
//! outcome with its bounce class; with `--count`, bulk mode (see [`super::bulk`]).
//!
//! Exit status: 0 when every recipient was accepted, 1 when any recipient bounced (5xx), 75
//! (`EX_TEMPFAIL`) when some were deferred (4xx, connection or session failure) and none
//! bounced, 2 for bad arguments.
// The binary is a driver: it reads the clock and owns its threads.
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::Args;
use smtp_client::driver::blocking::{Client, Options};
use smtp_client::driver::tls::Verify;
use smtp_client::smtp_proto::sasl::Secret;
use smtp_client::{
    Credentials, Message, OutcomeKind, RecipientOutcome, StateMachine, StateRegistry, TlsMode,
};

/// `impulse send --server HOST:PORT --from A --to B [--to C ...] [--data FILE|-] ...`
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The server to talk to, `HOST:PORT`.
    #[arg(long)]
    server: String,
    /// The envelope sender (`MAIL FROM`); an empty string sends the null path `<>`.
    #[arg(long)]
    from: String,
    /// An envelope recipient (`RCPT TO`); repeat for more.
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    /// The message (headers and body) from a file, or `-` for standard input. Without it a
    /// short test message is generated.
    #[arg(long)]
    data: Option<PathBuf>,
    /// The name to send in EHLO/HELO. Default: this machine's host name.
    #[arg(long)]
    helo: Option<String>,
    /// Use STARTTLS when the server offers it (opportunistic: encrypted, the certificate is
    /// not checked).
    #[arg(long, conflicts_with = "tls_required")]
    starttls: bool,
    /// Never send in plaintext: without TLS every recipient is deferred. The server's
    /// certificate must verify (Mozilla roots, or --tls-ca) for the host part of --server.
    #[arg(long)]
    tls_required: bool,
    /// Trust only the CA certificates in this PEM file when checking the server.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Do not check the server's certificate even with --tls-required (encryption only;
    /// for test servers with self-signed certificates).
    #[arg(long)]
    tls_insecure: bool,
    /// Send the message with BDAT (RFC 3030) instead of DATA when the server offers
    /// CHUNKING: no dot-stuffing, the body goes in counted chunks.
    #[arg(long)]
    chunking: bool,
    /// Authenticate with `USER:PASS` (PLAIN, else LOGIN). Only over TLS unless
    /// --auth-plaintext says otherwise.
    #[arg(long)]
    auth: Option<String>,
    /// Allow --auth without TLS (the password then travels in the clear: for a test server
    /// on loopback, never across a network).
    #[arg(long, requires = "auth")]
    auth_plaintext: bool,
    /// A configuration file whose plugins run in the client too: the linked client-xclient
    /// plugin with its `[plugins.client-xclient]` table, and the `.so` files of
    /// `plugin_files`, whose client states join the session's chain.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A plugin .so whose client states join the chain (repeatable).
    #[arg(long = "plugin", value_name = "FILE.so")]
    plugins: Vec<PathBuf>,
    /// Bulk mode: send this many messages through the mio engine, show a progress bar and
    /// end with a summary (msgs/s, outcomes by class) instead of one line per recipient.
    #[arg(long)]
    count: Option<u64>,
    /// Bulk mode: the most connections open at once.
    #[arg(long, default_value_t = 10, requires = "count")]
    concurrency: usize,
    /// Bulk mode: the size of each generated message in bytes (ignored with --data).
    #[arg(long, default_value_t = 4096, requires = "count")]
    size: usize,
    /// Bulk mode: messages sent over one connection before it is closed with QUIT.
    #[arg(long, default_value_t = 1000, requires = "count")]
    per_connection: u32,
}

/// Runs `impulse send`.
pub fn run(args: SendArgs) -> ExitCode {
    match send(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("impulse send: {message}");
            ExitCode::from(2)
        }
    }
}

fn send(args: SendArgs) -> Result<ExitCode, String> {
    let addr: SocketAddr = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve --server {}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("--server {} has no address", args.server))?;
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".to_owned());
    }
    let body = match &args.data {
        None if args.count.is_some() => Vec::new(),
        None => test_message(&args.from, &args.to),
        Some(path) if path.as_os_str() == "-" => {
            let mut body = Vec::new();
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| format!("cannot read the message from standard input: {e}"))?;
            body
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| format!("cannot read the message from {}: {e}", path.display()))?,
    };
    let helo = args
        .helo
        .unwrap_or_else(|| smtp_server::config::ServerConfig::default().effective_hostname());
    // One set of options for both modes: the blocking client takes them whole, bulk mode
    // hands their session configuration and TLS options to the engine.
    let mut options = Options::new(helo);
    options.session.policy.tls = if args.tls_required {
        TlsMode::Required
    } else if args.starttls {
        TlsMode::Opportunistic
    } else {
        TlsMode::Disabled
    };
    options.tls.ca_file = args.tls_ca;
    if args.tls_insecure {
        options.tls.verify = Verify::Never;
    }
    options.session.policy.chunking = args.chunking;
    // The name the certificate must carry: the host part of --server.
    options.session.peer_name = Some(host_part(&args.server).to_owned());
    if options.session.policy.tls != TlsMode::Disabled {
        // A CA file that cannot be used is a bad argument, not a deferral.
        options
            .tls
            .client_config(options.session.policy.tls)
            .map_err(|e| e.to_string())?;
    }
    if let Some(auth) = args.auth {
        let (user, password) = auth.split_once(':').ok_or("--auth takes USER:PASS")?;
        options.session.credentials = Some(Credentials::Password {
            user: user.to_owned(),
            password: Secret::new(password),
        });
        options.session.policy.auth_without_tls = args.auth_plaintext;
    }
    // Kept to the end: the plugins' code must stay loaded while their states run.
    let (_plugins, machine) = plugin_states(args.config.as_deref(), &args.plugins)?;
    options.machine = machine.clone();
    if let Some(count) = args.count {
        return super::bulk::run(super::bulk::Bulk {
            machine,
            addr,
            session: options.session,
            tls: options.tls,
            from: args.from,
            to: args.to,
            count,
            concurrency: args.concurrency,
            size: args.size,
            data: args.data.is_some().then_some(body),
            per_connection: args.per_connection,
        });
    }
    let message = Message::new(args.from, args.to.clone(), body);

    let outcomes = match Client::connect(addr, options) {
        Ok(mut connection) => {
            let result = connection.send(&message);
            let _ = connection.quit();
            result
        }
        Err(e) => Err(e),
    };
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(e) => {
            // The session failed before per-recipient replies: every recipient is deferred.
            let reply = e.reply();
            args.to
                .iter()
                .map(|rcpt| RecipientOutcome::from_reply(rcpt, reply.clone(), true))
                .collect()
        }
    };
    for outcome in &outcomes {
        print_outcome(outcome);
    }
    let bounced = outcomes.iter().any(|o| o.kind == OutcomeKind::Bounced);
    let deferred = outcomes.iter().any(|o| o.kind == OutcomeKind::Deferred);
    Ok(if bounced {
        ExitCode::from(1)
    } else if deferred {
        ExitCode::from(75)
    } else {
        ExitCode::SUCCESS
    })
}

/// `HOST` of `HOST:PORT` (`[::1]:25` gives `::1`).
fn host_part(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One line per recipient: `<addr>: delivered|deferred|bounced: reply [class]`.
fn print_outcome(outcome: &RecipientOutcome) {
    let kind = match outcome.kind {
        OutcomeKind::Delivered => "delivered",
        OutcomeKind::Deferred => "deferred",
        OutcomeKind::Bounced => "bounced",
    };
    let reply = outcome.reply.to_bytes();
    let reply = String::from_utf8_lossy(&reply);
    let reply = reply.trim_end().replace("\r\n", " / ");
    let origin = if outcome.local { " (local)" } else { "" };
    if outcome.kind == OutcomeKind::Delivered {
        println!("<{}>: {kind}: {reply}", outcome.recipient);
    } else {
        let class = &outcome.class;
        println!(
            "<{}>: {kind}{origin}: {reply} [class {} {} ({})]",
            outcome.recipient, class.id, class.name, class.category
        );
    }
}

/// A short RFC 5322 test message.
fn test_message(from: &str, to: &[String]) -> Vec<u8> {
    let date = smtp_server::factory::rfc5322_date(SystemTime::now());
    let from = if from.is_empty() { "<>" } else { from };
    format!(
        "From: <{from}>\r\nTo: {}\r\nSubject: test message from impulse send\r\n\
Date: {date}\r\nMessage-ID: <{}.impulse-send@localhost>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nThis is a test message sent by impulse send.\r\n",
        to.iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", "),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
    .into_bytes()
}

/// The chain of client states with the configured plugins' states in it (`None`: no config
/// and no plugin, the built-in chain), and the registry that holds their code.
fn plugin_states(
    config: Option<&std::path::Path>,
    plugins: &[PathBuf],
) -> Result<(Option<hooks_api::Registry>, Option<Arc<StateMachine>>), String> {
    if config.is_none() && plugins.is_empty() {
        return Ok((None, None));
    }
    let config = super::config::load(
        config,
        smtp_server::config::Overrides {
            plugins: plugins.to_vec(),
            ..Default::default()
        },
    )?;
    let registry = super::config::registry(&config)?;
    let chain = StateRegistry::from_hooks(&registry)
        .map_err(|e| format!("the plugins' client states: {e}"))?;
    Ok((Some(registry), Some(chain.build())))
}
