//! The event-loop driver: sockets, threads and hooks around the sans-IO
//! [`Factory`](crate::factory::Factory).
//!
//! ```no_run
//! # fn main() -> Result<(), smtp_server::server::ServerError> {
//! use smtp_server::server::Server;
//! let server = Server::builder()
//!     .listen("127.0.0.1:2525".parse().unwrap())
//!     .spool_dir("./spool")
//!     .build()?;
//! let handle = server.spawn()?;
//! println!("listening on {:?}", handle.local_addrs());
//! handle.shutdown();
//! handle.join()?;
//! # Ok(()) }
//! ```
//!
//! # Threads
//!
//! * **Loop threads** (`impulse-loop-N`, [`ServerConfig::workers`], default one per core):
//!   each runs one event loop (`event_loop::Loop`) that owns one mio [`Poll`](mio::Poll), a
//!   [`Waker`](mio::Waker), a `slab` of connections, a deadline heap and a crossbeam channel
//!   of completions. A connection lives on the loop thread that accepted it until it
//!   closes. (The configuration key keeps its name `workers`; the threads are loops.)
//! * **Spool threads** (the spool's own sync and committer threads): fsync, rename and the
//!   group directory fsync. [`Spool::commit`] never blocks; its callback sends the result to
//!   the connection's loop over the channel and wakes it with the `Waker`.
//! * **Worker pool**, the hook pool (`impulse-pool-N`, [`ServerConfig::pool_threads`]): runs
//!   the message and queue hook chains, which read the message back from the spool file and may do I/O.
//!   Only used when plugins registered such hooks.
//! * **Signal thread** (optional, [`ServerBuilder::handle_signals`]): SIGTERM/SIGINT start a
//!   graceful shutdown, SIGHUP reloads the configuration ([`reload`], from
//!   [`ServerBuilder::reload_from`]), through `signal-hook`'s self-pipe.
//! * **Metrics thread** (`impulse-metrics`, with `[metrics] listen`): answers `GET /metrics`
//!   ([`crate::metrics::http`]).
//! * **Recipients watcher** (`impulse-relay-recipients`, when the server starts with a
//!   `[relay]` table): checks the `recipients` file (the one the table in force names, if
//!   any) once a second and swaps a re-read table into relay control; a reload swaps in the
//!   new table at once.
//!
//! # Relay control
//!
//! Every RCPT goes through relay control in the factory (`FactoryConfig::relay`, always set
//! by the builder: the `[relay]` policy, or without the table loopback and authenticated
//! clients only), on the client address the factory holds (after XCLIENT), before any RCPT
//! hook: `554 5.7.1 <address>: Relay access denied`. Relay domains without recipient
//! validation are warned about at start.
//!
//! # Listeners
//!
//! Every listener (IPv4 and IPv6 alike) is one socket shared by all loop threads: each
//! thread registers its own `dup` of it (edge-triggered) and accepts until `WouldBlock`.
//! We chose this over one `SO_REUSEPORT` socket per thread because it works unchanged with
//! listeners an embedder binds itself and with port 0, and because an idle thread picks up
//! new connections first, where `SO_REUSEPORT` hashes a connection to a thread however busy
//! it is. The price is that every thread wakes for a burst of connections and the losers
//! see `WouldBlock` (a herd bounded by the number of cores).
//!
//! Each listener has a role and a TLS mode ([`ListenerConfig`](crate::config::ListenerConfig):
//! `listen` addresses are `mx` listeners with STARTTLS): a submission listener's factory
//! requires AUTH before MAIL, an implicit-TLS listener runs the TLS handshake before the
//! factory is made (so the banner is the first thing said under TLS), and a
//! `proxy_protocol` listener reads an HAProxy PROXY header first, from trusted proxies
//! only, and makes the factory with the client address it names. The connection's
//! *effective client address* (after PROXY, or XCLIENT) is then
//! [`Factory::peer`](crate::factory::Factory::peer), and its authenticated identity
//! [`Factory::authenticated`](crate::factory::Factory::authenticated).
//!
//! # Tokens
//!
//! `Token(usize::MAX)` is the loop's `Waker`; `Token(usize::MAX - 1 - i)` is listener `i`;
//! `Token(PRELUDE_BASE + slot)` (from `1 << (usize::BITS - 2)`) is a connection still in its
//! prelude; every other token is a [`ConnId`], the connection's slab key. A completion, a deadline
//! or a retry names its connection by a `ConnKey`: the slab key *and* the serial number the
//! loop gave the connection, so one meant for a connection that has gone (and whose key was
//! reused) is dropped.
//!
//! # Files
//!
//! | file | what it owns |
//! |---|---|
//! | `common.rs` | the types the others share (`ConnKey`, `Waiting`, `Msg`, `LoopSender`); imports no sibling |
//! | `event_loop/` | `Loop`, one per loop thread: its turn (`mod.rs`), accepting (`accept.rs`), a connection's prelude before its factory (`prelude.rs`: the PROXY header, the implicit-TLS handshake), driving a connection (`drive.rs`), deadlines (`deadlines.rs`), the grace period (`shutdown.rs`) |
//! | `conn/` | `Conn`, one connection: socket reads and writes, interest; its spool writer (`spooling.rs`), STARTTLS (`tls_state.rs`) and lifetime (`lifetime.rs`) state machines |
//! | `hooks.rs` | hook dispatch on the loop thread, pending hooks |
//! | `queue.rs` | the message path: spool writer, commit, message and queue hooks on the worker pool |
//! | `pool.rs` | the worker pool |
//! | `tls.rs` | the rustls layer of one connection, and loading certificates |
//! | `relay_watch.rs` | re-reading `[relay] recipients` when it changes, on a thread of its own |
//! | `builder.rs`, `limits.rs` | building and starting the server; the connection caps |
//! | `listener.rs`, `proxy.rs` | each listener's role, TLS mode and PROXY settings as the loop uses them; the PROXY v1/v2 header parser (sans-IO) |
//! | `reload.rs` | what a reload changes (`Settings` behind an `Arc`, swapped), SIGHUP |
//!
//! # Where each blocking operation runs
//!
//! | operation | thread | why |
//! |---|---|---|
//! | socket reads and writes | loop | non-blocking sockets |
//! | connect/HELO/MAIL/RCPT/DATA/AUTH/unknown/extension hooks | loop | the plugin contract: these hooks never block; slow work goes *pending* and completes through the loop's channel + `Waker` |
//! | starting a message (`Spool::begin_deferred`) and buffering its body (`SpoolWriter::write_buffered`) | loop | no system call: the tmp file comes from the spool's stock of created files, or is created by the spool thread that first writes it; body bytes are copied into the writer's 64 KiB buffer |
//! | writing a full buffer out (`Spool::flush_behind`, one hand-off per 64 KiB of body; messages under 64 KiB make none), creating a tmp file the stock could not give, removing the file of an aborted message (`Spool::discard_behind`) | spool threads | `write(2)`, `open(O_CREAT)` and `unlink` usually finish in the page cache but can wait (dirty-page throttling, a slow inode allocation); the connection stops reading its body until the writer is back |
//! | fsync of the file, rename, fsync of `queue/` | spool threads | these wait on the disk |
//! | message and queue hooks (read the message back, may do I/O), and the spool commit after them | hook pool | may block by nature |
//!
//! # Connection handling
//!
//! After each readiness event the connection is driven in the factory's call order (see
//! [`Factory`](crate::factory::Factory)): feed held input, else read (until `WouldBlock`, one buffer at a time,
//! only while the factory wants input); drain decoded body into the spool writer; handle
//! events (dispatching hooks, which may park the connection); and only when none of these
//! makes progress, write the queued replies. Interest is then recomputed: `WRITABLE` only
//! while replies wait, `READABLE` only while the factory wants input (back-pressure: a
//! client that pipelines too far ahead is left in the kernel's buffers). Readiness is a
//! hint: a read or write that would block just clears it.
//!
//! # STARTTLS
//!
//! With a certificate ([`TlsConfig`](crate::config::TlsConfig), or
//! [`ServerBuilder::tls`]), the factory advertises STARTTLS. On
//! [`Event::StartTls`](crate::factory::Event::StartTls) the connection drops whatever plaintext
//! it already read after the command (CVE-2011-0411), writes the `220`, then puts a rustls
//! `ServerConnection` between the socket and the factory ([`tls`]): the handshake runs on the
//! loop like any other read and write (rustls does no I/O of its own), the factory learns the
//! protocol and cipher when it completes, and a failed handshake closes that connection only.
//! A handshake that does not finish within the command timeout is closed.
//!
//! Once a second at most, each loop checks the spool's free space (one `statvfs`,
//! [`Spool::check_free_space`]); while it is below 1.5 × the message size limit, MAIL is
//! answered `452 4.3.1`. A hook that goes pending parks its connection until the completion
//! arrives or [`TimeoutsConfig::hook`](crate::config::TimeoutsConfig) runs out (the factory
//! then answers the command; the late completion is dropped as stale). An extension verb
//! handler's session changes (XCLIENT) are passed to the factory, and at EHLO the
//! extensions whose `advertise_if` is false for the session are hidden.
//!
//! Caps: [`LimitsConfig::connections`](crate::config::LimitsConfig) in all (beyond it the
//! loops stop accepting and connections wait in the listen backlog) and
//! `connections_per_ip` per client address (beyond it: `421 4.7.0`, then close; loopback
//! clients are exempt unless `exempt_loopback = false`). When
//! `accept` fails for lack of file descriptors (EMFILE/ENFILE) or memory, the loop stops
//! accepting for 100 ms.
//!
//! # Shutdown
//!
//! [`ServerHandle::shutdown`] (or a signal): every loop stops accepting and closes its
//! listeners; idle connections get `421 4.3.2 <host> Service shutting down` and are closed;
//! connections in a transaction may finish it (and get the 421 when they are idle again)
//! until [`TimeoutsConfig::shutdown_grace`](crate::config::TimeoutsConfig) runs out, when
//! the rest get the 421 too (a message being received is discarded: the client was not
//! answered, so it retries). Then the threads exit and plugin `shutdown`s run.
// The driver reads the clock and owns its threads (clippy.toml keeps both out of the factory).
#![allow(clippy::disallowed_methods)]

mod builder;
mod common;
mod conn;
mod event_loop;
mod hooks;
mod limits;
mod listener;
mod pool;
mod proxy;
mod queue;
mod relay_watch;
pub mod reload;
pub mod tls;
pub mod verify;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use builder::ServerBuilder;
pub use common::ConnId;
pub use queue::spool_envelope;
pub use reload::Reloader;

use crate::config::ConfigError;
use crate::factory::ExtensionError;
use crate::spool::{Spool, SpoolError};

#[cfg(doc)]
use crate::config::ServerConfig;

/// Why the server could not start (or a loop thread failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The spool could not be opened.
    #[error("cannot open the spool: {0}")]
    Spool(#[from] SpoolError),
    /// A plugin's ESMTP extension clashes with the built-ins or another plugin.
    #[error("plugin ESMTP extension: {0}")]
    Extension(#[from] ExtensionError),
    /// Another operating-system error (creating a `Poll`, a thread, ...).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// A loop thread panicked.
    #[error("a server thread panicked")]
    Panicked,
}

impl ServerError {
    fn io(what: &'static str, source: std::io::Error) -> ServerError {
        ServerError::Io { what, source }
    }
}

/// What the loops share to stop together.
#[derive(Debug, Default)]
pub(crate) struct Control {
    stopping: AtomicBool,
    wakers: Mutex<Vec<Arc<mio::Waker>>>,
}

impl Control {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn shutdown(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            log::info!("shutting down: no new connections; finishing transactions");
        }
        for w in self.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = w.wake();
        }
    }
}

/// A built server, not yet running. See [`Server::builder`].
#[derive(Debug)]
pub struct Server {
    inner: builder::Built,
}

impl Server {
    /// A builder: configuration, plugin registry, spool, hostname, listeners.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The addresses the listeners are bound to (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.inner.local_addrs
    }

    /// The spool the server queues into.
    pub fn spool(&self) -> &Spool {
        &self.inner.shared.spool
    }

    /// Starts the loop threads and returns at once.
    pub fn spawn(self) -> Result<ServerHandle, ServerError> {
        builder::start(self.inner)
    }

    /// Runs the server on the calling thread's behalf until it is shut down (by a signal,
    /// with [`ServerBuilder::handle_signals`]), then returns.
    pub fn run(self) -> Result<(), ServerError> {
        self.spawn()?.join()
    }
}

/// A running server: its addresses, a way to stop it and to wait for it.
pub struct ServerHandle {
    local_addrs: Vec<SocketAddr>,
    control: Arc<Control>,
    threads: Vec<JoinHandle<Result<(), ServerError>>>,
    metrics: Arc<crate::metrics::Registry>,
    metrics_addr: Option<SocketAddr>,
    reloader: Reloader,
    on_exit: Option<Box<dyn FnOnce() + Send>>,
}

impl ServerHandle {
    /// The addresses the listeners are bound to.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The registry the server counts into (what `GET /metrics` renders).
    pub fn metrics(&self) -> &Arc<crate::metrics::Registry> {
        &self.metrics
    }

    /// Where the metrics endpoint listens, when `[metrics] listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// A handle that reloads the configuration of the running server (what SIGHUP does).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// Starts a graceful shutdown (the same as SIGTERM): returns at once; [`join`] waits.
    ///
    /// [`join`]: ServerHandle::join
    pub fn shutdown(&self) {
        self.control.shutdown();
    }

    /// A cheap, cloneable trigger for [`shutdown`](ServerHandle::shutdown) from elsewhere.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        ShutdownTrigger {
            control: self.control.clone(),
        }
    }

    /// Waits until every loop thread has exited (after a shutdown), then runs the plugins'
    /// `shutdown` functions.
    pub fn join(mut self) -> Result<(), ServerError> {
        let mut result = Ok(());
        for t in self.threads.drain(..) {
            let r = t.join().unwrap_or(Err(ServerError::Panicked));
            if result.is_ok() {
                result = r;
            }
        }
        if let Some(f) = self.on_exit.take() {
            f();
        }
        result
    }
}

/// Starts a graceful shutdown of a running server from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    control: Arc<Control>,
}

impl ShutdownTrigger {
    /// See [`ServerHandle::shutdown`].
    pub fn shutdown(&self) {
        self.control.shutdown();
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addrs", &self.local_addrs)
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}
