//! `impulse classify` and `impulse classes`: the bounce classes as the server and the client
//! see them, the classes and rules of the configured plugins included (`--config` activates
//! the linked plugins whose `[plugins.NAME]` table it has, such as bounce-rules; `--plugin`
//! loads a `.so` besides).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use smtp_proto::classify;
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

/// `impulse classify REPLY`: prints `ID Name (Category)`, or with `json` one JSON object:
/// `{"id", "name", "category", "description", "kumomta", "powermta"}` (the last two `null`
/// for a user class).
pub fn classify(reply: &str, json: bool, source: &ClassSource) -> ExitCode {
    let _plugins = match source.load() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let class = classify::classify_reply_text(reply);
    if json {
        let other = classify::other_names(class.id);
        let value = serde_json::json!({
            "id": class.id,
            "name": class.name,
            "category": class.category.to_string(),
            "description": class.description,
            "kumomta": other.map(|o| o.kumomta),
            "powermta": other.map(|o| o.powermta),
        });
        println!("{value}");
    } else {
        println!("{} {} ({})", class.id, class.name, class.category);
    }
    ExitCode::SUCCESS
}

/// `impulse classes`: one line per class, built-in and registered: id, name, category, the
/// KumoMTA and PowerMTA names (`-` for a user class), description.
pub fn classes(source: &ClassSource) -> ExitCode {
    let _plugins = match source.load() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    for class in classify::classes() {
        let other = classify::other_names(class.id);
        println!(
            "{:>4}  {:<28} {:<13} {:<20} {:<17} {}",
            class.id,
            class.name,
            class.category.to_string(),
            other.map_or("-", |o| o.kumomta),
            other.map_or("-", |o| o.powermta),
            class.description
        );
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("impulse: {message}");
    ExitCode::FAILURE
}
