//! The server's socket tests start their [`TestServer`] alike: two loop threads, a 5 s
//! shutdown grace, and no tmp-file stock (so that `tmp/` holds only messages in flight).

use impulse_test_support::server::TestServer;
use smtp_server::config::ServerConfig;

/// Starts it with that configuration, changed by `tweak` last.
pub fn start(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    TestServer::builder()
        .workers(2)
        .no_tmp_stock()
        .config(|c| {
            c.timeouts.shutdown_grace = smtp_server::config::ConfigDuration::from_secs(5);
            tweak(c);
        })
        .start()
}
