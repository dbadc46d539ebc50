//! Shared by the socket tests: a server on 127.0.0.1:0 with its own spool in a temp dir.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use smtp_server::config::ServerConfig;
use smtp_server::server::{Server, ServerHandle};
use smtp_server::spool::{QueueId, RealIo, Spool, SpoolOptions};

/// A running server (two loop threads, `mx.test`, a 5 s shutdown grace), stopped on drop.
pub struct Running {
    /// The running server; `None` once shut down.
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub spool: Spool,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts it with the default configuration, changed by `tweak` first.
    pub fn start(tweak: impl FnOnce(&mut ServerConfig)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        // No tmp-file stock, so that `tmp/` holds only messages in flight.
        let options = SpoolOptions {
            tmp_stock: 0,
            ..SpoolOptions::default()
        };
        let spool = Spool::open_with(dir.path().join("spool"), options, Arc::new(RealIo)).unwrap();
        let mut config = ServerConfig {
            workers: 2,
            ..ServerConfig::default()
        };
        config.timeouts.shutdown_grace = 5;
        tweak(&mut config);
        let server = Server::builder()
            .config(config)
            .hostname("mx.test")
            .listen("127.0.0.1:0".parse().unwrap())
            .spool(spool.clone())
            .build()
            .unwrap();
        let handle = server.spawn().unwrap();
        let addr = handle.local_addrs()[0];
        Running {
            handle: Some(handle),
            addr,
            spool,
            _dir: dir,
        }
    }

    /// Shuts it down gracefully and waits.
    pub fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            h.join().unwrap();
        }
    }

    /// The stored bytes of a queued message (its `Received:` header first).
    pub fn stored(&self, id: QueueId) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut self.spool.open_message(id).unwrap(), &mut out).unwrap();
        out
    }

    /// The queue ids in the spool.
    pub fn queued(&self) -> Vec<QueueId> {
        self.spool
            .list()
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}
