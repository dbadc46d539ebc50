//! `impulse classify` and `impulse classes`: the bounce classes as the server and the client
//! see them, the classes and rules of the configured plugins included (`--config` activates
//! the linked plugins whose `[plugins.NAME]` table it has, such as bounce-rules; `--plugin`
//! loads a `.so` besides).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use smtp_server::config::Overrides;

/// Where the classes and rules come from, besides the built-ins.
#[derive(Debug, Args)]
pub struct ClassSource {
    /// A configuration file whose plugins (`[plugins.NAME]`, `plugin_files`) register their
    /// classes and rules first, as `impulse serve` would.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A plugin .so to load besides (repeatable).
    #[arg(long = "plugin", value_name = "FILE.so")]
    pub plugins: Vec<PathBuf>,
}

impl ClassSource {
    /// Registers the configured plugins' classes and rules in the global classifier. The
    /// registry is returned so that its plugins stay loaded while the caller classifies.
    fn load(&self) -> Result<Option<hooks_api::Registry>, String> {
        if self.config.is_none() && self.plugins.is_empty() {
            return Ok(None);
        }
        let config = super::config::load(
            self.config.as_deref(),
            Overrides {
                plugins: self.plugins.clone(),
                ..Overrides::default()
            },
        )?;
        super::config::registry(&config).map(Some)
    }
}

/// `impulse classify REPLY`: prints `ID Name (Category)`.
pub fn classify(reply: &str, source: &ClassSource) -> ExitCode {
    let _plugins = match source.load() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let class = smtp_proto::classify::classify_reply_text(reply);
    println!("{} {} ({})", class.id, class.name, class.category);
    ExitCode::SUCCESS
}

/// `impulse classes`: one line per class, built-in and registered.
pub fn classes(source: &ClassSource) -> ExitCode {
    let _plugins = match source.load() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    for class in smtp_proto::classify::classes() {
        println!(
            "{:>4}  {:<28} {:<13} {}",
            class.id,
            class.name,
            class.category.to_string(),
            class.description
        );
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("impulse: {message}");
    ExitCode::FAILURE
}
