//! Embedding the Impulse server in a larger program, in a few lines.
//!
//! ```sh
//! cargo run --example embedded_server -- 127.0.0.1:2525 ./spool
//! swaks --server 127.0.0.1:2525 --to someone@example.com
//! ```
//!
//! The program registers one hook in code (no `.so`): recipients at `blocked.example` are
//! refused. Everything else goes to the durable spool. Ctrl-C stops it gracefully.

use std::sync::Arc;

use impulse::hooks::{Order, PluginConfig, PluginDecl, Registrar, Registry, Verdict};
use impulse::server::config::ServerConfig;
use impulse::server::Server;

fn init(r: &mut Registrar, _config: &PluginConfig) -> Result<(), String> {
    r.on_rcpt(Order::Priority(0), |ctx| {
        if ctx.recipient.to_string().ends_with("@blocked.example>") {
            Verdict::reject(550, "5.7.1", "We do not deliver there")
        } else {
            Verdict::Continue
        }
    });
    Ok(())
}

static POLICY: PluginDecl = PluginDecl {
    name: "embedded-policy",
    version: "1.0.0",
    init,
    shutdown: None,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:2525".to_owned());
    let spool = args.next().unwrap_or_else(|| "./spool".to_owned());

    let mut registry = Registry::new();
    registry.add(&POLICY, &Default::default())?;

    let server = Server::builder()
        .config(ServerConfig::default())
        .registry(Arc::new(registry))
        .listen(listen.parse()?)
        .spool_dir(spool)
        .handle_signals(true)
        .build()?;
    let handle = server.spawn()?;
    println!("embedded server listening on {:?}", handle.local_addrs());
    // A real program would do its own work here, and call handle.shutdown() to stop.
    handle.join()?;
    Ok(())
}
