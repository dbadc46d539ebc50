//! Impulse's own server on a loopback port for socket tests: [`TestServer`], started by a
//! [`TestServerBuilder`] with a spool in a temporary directory (or one the test brings),
//! plugins from a registry and configuration tweaks; shut down and joined when dropped.
//!
//! It runs the real mio driver on real sockets and threads, so it is for what only sockets
//! show (the loop, shutdown, TLS, real peers). Behaviour over time belongs on the in-memory
//! [`Pair`](crate::pair::Pair) instead.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_server::config::{RelayConfig, ServerConfig};
use smtp_server::hooks_api::Registry;
use smtp_server::server::{Server, ServerHandle};
use smtp_server::spool::{QueueId, RealIo, Spool, SpoolOptions};

use crate::line::LineClient;

/// The host name every test server answers with.
pub const HOSTNAME: &str = "mx.test";

/// A running server named [`HOSTNAME`] on `127.0.0.1:0`; shut down and joined on drop.
#[derive(Debug)]
pub struct TestServer {
    /// The running server; `None` once shut down (or taken by a test that joins it itself).
    pub handle: Option<ServerHandle>,
    /// Where it listens (its first listener: the `mx` one on `127.0.0.1:0`).
    pub addr: SocketAddr,
    /// Every listener's address: `addr`, then one per `[[listener]]` table, in order.
    pub addrs: Vec<SocketAddr>,
    /// Its spool.
    pub spool: Spool,
    _dir: Option<tempfile::TempDir>,
}

/// A registry running the plugins linked into the test binary (through `inventory`) that
/// `config` configures: TOML with one table per plugin, as under `[plugins]` in
/// `impulse.toml`. Panics unless exactly the plugins `expected` were added.
pub fn static_registry(config: &str, expected: &[&str]) -> Registry {
    let configs: smtp_server::hooks_api::toml::Table =
        smtp_server::hooks_api::toml::from_str(config).expect("a TOML plugin table");
    let mut registry = Registry::new();
    let added = registry
        .load_static_configured(&configs)
        .expect("the linked plugins load");
    assert_eq!(added, expected, "the plugins {config:?} configures");
    registry
}

/// How to start a [`TestServer`]: by default one loop thread, no plugin, the default
/// configuration and a fresh spool with default options in a temporary directory.
pub struct TestServerBuilder {
    config: ServerConfig,
    registry: Registry,
    spool: Option<Spool>,
    options: SpoolOptions,
}

impl TestServerBuilder {
    /// Runs `workers` loop threads.
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Changes the configuration (after the other settings of this builder).
    pub fn config(mut self, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        tweak(&mut self.config);
        self
    }

    /// Runs the plugins of `registry`.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Uses an existing spool (to restart on the same one, or one on `MemFs`) instead of a
    /// fresh one.
    pub fn spool(mut self, spool: Spool) -> Self {
        self.spool = Some(spool);
        self
    }

    /// Relay control trusts these client networks (CIDR) instead of loopback only, through a
    /// `[relay]` table with `enabled = false` (relay control only, nothing delivered): for
    /// tests whose clients report an outside address (XCLIENT) and still relay.
    pub fn relay_networks(mut self, networks: &[&str]) -> Self {
        self.config.relay = Some(RelayConfig {
            enabled: false,
            networks: networks.iter().map(|n| (*n).to_owned()).collect(),
            ..RelayConfig::default()
        });
        self
    }

    /// Opens the fresh spool with no stock of ready-made tmp files, so that `tmp/` holds
    /// only messages in flight.
    pub fn no_tmp_stock(mut self) -> Self {
        self.options.tmp_stock = 0;
        self
    }

    /// Starts the server and waits until it listens.
    pub fn start(self) -> TestServer {
        let (spool, dir) = match self.spool {
            Some(spool) => (spool, None),
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let spool =
                    Spool::open_with(dir.path().join("spool"), self.options, Arc::new(RealIo))
                        .expect("a fresh spool opens");
                (spool, Some(dir))
            }
        };
        let handle = Server::builder()
            .config(self.config)
            .hostname(HOSTNAME)
            .listen("127.0.0.1:0".parse().expect("a socket address"))
            .registry(Arc::new(self.registry))
            .spool(spool.clone())
            .build()
            .expect("the test server builds")
            .spawn()
            .expect("the test server starts");
        TestServer {
            addr: handle.local_addrs()[0],
            addrs: handle.local_addrs().to_vec(),
            handle: Some(handle),
            spool,
            _dir: dir,
        }
    }
}

impl TestServer {
    /// A builder with the defaults (see [`TestServerBuilder`]).
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            config: ServerConfig {
                workers: 1,
                ..ServerConfig::default()
            },
            registry: Registry::new(),
            spool: None,
            options: SpoolOptions::default(),
        }
    }

    /// One worker, no plugin, a fresh spool.
    pub fn start() -> TestServer {
        TestServer::builder().start()
    }

    /// `workers` workers running the plugins of `registry`, a fresh spool.
    pub fn with(registry: Registry, workers: usize) -> TestServer {
        TestServer::builder()
            .registry(registry)
            .workers(workers)
            .start()
    }

    /// A server over an existing spool (to restart on the same one).
    pub fn on(spool: Spool, registry: Registry, workers: usize) -> TestServer {
        TestServer::builder()
            .spool(spool)
            .registry(registry)
            .workers(workers)
            .start()
    }

    /// A client connected to it, its banner (`220 mx.test ...`) read and checked.
    pub fn connect(&self) -> LineClient {
        let mut c = LineClient::connect(self.addr);
        let banner = c.reply();
        assert!(
            banner.starts_with(&format!("220 {HOSTNAME}")),
            "banner: {banner}"
        );
        c
    }

    /// How many messages the spool holds.
    pub fn count(&self) -> usize {
        self.spool.list().expect("the spool lists").len()
    }

    /// The queue ids in the spool, oldest first.
    pub fn queued(&self) -> Vec<QueueId> {
        let list = self.spool.list().expect("the spool lists");
        list.into_iter().map(|e| e.id).collect()
    }

    /// A stored message, `Received:` header included.
    pub fn stored(&self, id: QueueId) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.spool
            .open_message(id)
            .expect("a queued message")
            .read_to_end(&mut bytes)
            .expect("it reads back");
        bytes
    }

    /// Shuts the server down gracefully and waits for it (once; later calls do nothing).
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.join().expect("the test server stops cleanly");
        }
    }

    /// Shuts the server down and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
