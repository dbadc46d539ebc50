//! The `impulse` command: the operator's entry point to the Impulse toolkit.

use clap::{Parser, Subcommand};
// Linked so that `Registry::load_static_configured` finds them; `impulse serve` activates
// those with a `[plugins.NAME]` table.
use impulse_plugin_auth_file as _;
use impulse_plugin_bounce_rules as _;
use impulse_plugin_client_xclient as _;
use impulse_plugin_suppression as _;
use impulse_plugin_xclient as _;

mod cli;
mod logging;

/// Impulse: a Momentum-style ESMTP toolkit.
#[derive(Debug, Parser)]
#[command(name = "impulse", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The operator commands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Classify an SMTP reply the way the client and the bounce logic do, and print its
    /// bounce class (id, name, category).
    Classify {
        /// The reply text, for example "550 5.1.1 <bob@example.com>: user unknown".
        reply: String,
        /// Print one JSON object: id, name, category, description, and the class's KumoMTA
        /// and PowerMTA names.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: cli::classify::ClassSource,
    },
    /// List the built-in and registered bounce classes, with each built-in class's KumoMTA
    /// and PowerMTA names.
    Classes {
        #[command(flatten)]
        source: cli::classify::ClassSource,
    },
    /// Run the ESMTP server (defaults: 127.0.0.1:2525, ./spool, the system host name) until
    /// SIGTERM or SIGINT.
    Serve(cli::serve::ServeArgs),
    /// Send a message and print each recipient's outcome with its bounce class.
    Send(cli::send::SendArgs),
    /// Inspect a spool directory: list, show, cat and rm queued messages.
    Spool(cli::spool::SpoolArgs),
    /// The relay's queue: list, show and summarise it; flush, hold, release, delete or
    /// bounce messages (through the running server, or directly when none runs).
    Queue(cli::queue::QueueArgs),
    /// Check a configuration without starting the server, or print the effective one.
    Config(cli::config::ConfigArgs),
    /// Check plugin `.so` files, or start a new plugin crate.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

/// `impulse plugin ...`.
#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a plugin as the server would; print its name, version, ABI facts and what it
    /// registers, or the load error (exit code 1).
    Check {
        /// The plugin file, for example `target/release/libmy_plugin.so`.
        file: std::path::PathBuf,
        /// A TOML file with the plugin's table (`[plugins.NAME]`, or `[NAME]`).
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Write a ready plugin crate (a HELO hook that logs, the .so entry points, a test that
    /// loads the built .so): `cargo build --release` in it, then `impulse plugin check` and
    /// `impulse serve --plugin` work with no edit.
    New {
        /// The plugin's name (lower case, digits and '-'), also the crate's.
        name: String,
        /// Where to write it (default: ./NAME; must not exist).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
        /// The hooks-api crate to build against (default: the source tree this impulse was
        /// built from).
        #[arg(long, value_name = "DIR")]
        hooks_api: Option<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    // Held to the end of `main`: the log records still queued are written out then.
    let _log = logging::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Classify {
            reply,
            json,
            source,
        } => cli::classify::classify(&reply, json, &source),
        Command::Classes { source } => cli::classify::classes(&source),
        Command::Serve(args) => cli::serve::run(args),
        Command::Send(args) => cli::send::run(args),
        Command::Spool(args) => cli::spool::run(args),
        Command::Queue(args) => cli::queue::run(args),
        Command::Config(args) => cli::config::run(args),
        Command::Plugin {
            command: PluginCommand::Check { file, config },
        } => cli::plugin::check(&file, config.as_deref()),
        Command::Plugin {
            command:
                PluginCommand::New {
                    name,
                    dir,
                    hooks_api,
                },
        } => cli::plugin_new::run(&name, dir.as_deref(), hooks_api.as_deref()),
    }
}
