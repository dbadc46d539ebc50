//! The plugin side of the `.so` boundary: the entry a plugin exports
//! ([`export_plugin!`](crate::export_plugin!)), which walks the plugin's own declarations
//! and calls their `init` with the host's [`Registrar`]; the forwarding logger it installs;
//! and the [`LAYOUT`] fingerprint of the types that cross.
//!
//! The layer above [`crate::abi`] and the registrar. What it does not do: open libraries or
//! check a declaration (that is [`crate::loader`], the host side), or merge registrations
//! (that is [`crate::registry`]).

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::mem::{align_of, size_of};
use std::sync::OnceLock;

use crate::abi::{AbiDecl, EntryFailure, HostLog, RawStr, ENTRY_FAILED, ENTRY_OK};
use crate::config::PluginConfig;
use crate::hook::{guarded, panic_message};
use crate::plugin::{linked_plugins, PluginDecl};
use crate::registrar::Registrar;

const fn mix(hash: u64, value: usize) -> u64 {
    (hash ^ value as u64).wrapping_mul(0x0100_0000_01b3)
}

macro_rules! fingerprint {
    ($($t:ty),* $(,)?) => {{
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        $( h = mix(h, size_of::<$t>()); h = mix(h, align_of::<$t>()); )*
        h
    }};
}

/// A fingerprint of the sizes and alignments of the types that cross the plugin boundary
/// (the `layout` of an [`AbiDecl`]).
pub const LAYOUT: u64 = fingerprint!(
    Registrar,
    crate::Verdict,
    crate::Pending,
    crate::Completer,
    crate::RcptCtx<'static>,
    crate::MessageCtx<'static>,
    crate::QueueCtx<'static>,
    crate::ExtensionCtx<'static>,
    crate::RouteCtx<'static>,
    crate::AttemptCtx<'static>,
    crate::DeliveryOutcomeCtx<'static>,
    crate::BounceCtx<'static>,
    crate::RouteHop,
    smtp_proto::classify::BounceClass,
    crate::SessionInfo,
    crate::Envelope,
    crate::Headers,
    crate::Notes,
    crate::EsmtpExtension,
    crate::ClientStateRegistration,
    crate::StateAction,
    crate::ClientArgs,
    crate::ClassRegistration,
    crate::RuleRegistration,
    EntryFailure,
    HostLog,
    smtp_proto::Reply,
    smtp_proto::Params<'static>,
    smtp_proto::Path<'static>,
    smtp_proto::ForwardPath<'static>,
    smtp_proto::Mechanism,
    smtp_proto::sasl::Secret,
    smtp_proto::Capabilities,
    smtp_proto::classify::Rule,
    String,
    std::sync::Arc<str>,
    Box<dyn std::any::Any + Send>,
);

/// This image's declaration with the ABI version `abi_version` (what
/// [`export_plugin!`](crate::export_plugin!) exports; another version only to test the
/// guard).
#[doc(hidden)]
pub const fn declaration(abi_version: u32) -> AbiDecl {
    AbiDecl::new(abi_version, LAYOUT)
}

static FORWARD: OnceLock<HostLog> = OnceLock::new();

/// The plugin-side logger: forwards records to the host.
struct Forward;

impl log::Log for Forward {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        FORWARD
            .get()
            .is_some_and(|h| metadata.level() as usize <= h.max_level)
    }

    fn log(&self, record: &log::Record<'_>) {
        if let Some(h) = FORWARD.get() {
            if record.level() as usize <= h.max_level {
                (h.log)(
                    record.level() as usize,
                    record.target(),
                    &record.args().to_string(),
                );
            }
        }
    }

    fn flush(&self) {}
}

static FORWARD_LOGGER: Forward = Forward;

fn install_forward_logger(host: HostLog) {
    let _ = FORWARD.set(host);
    if log::set_logger(&FORWARD_LOGGER).is_ok() {
        let level = match host.max_level {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            _ => log::LevelFilter::Trace,
        };
        log::set_max_level(level);
    }
}

/// Calls `init` of every declaration in `decls` with its configuration, in order. Runs in
/// the image that owns `decls` (the binary, or the `.so`), so `guarded` catches panics with
/// that image's standard library.
pub(crate) fn init_all(
    registrar: &mut Registrar,
    decls: &[&'static PluginDecl],
    configs: &toml::Table,
) -> Result<(), EntryFailure> {
    for decl in decls {
        registrar.begin_plugin(decl.name, decl.version, decl.shutdown);
        let config = PluginConfig::from_configs(decl.name, configs);
        init_guarded(decl.name, || (decl.init)(registrar, &config))?;
    }
    Ok(())
}

/// Runs the `init` of plugin `plugin`, its error or panic (caught) as the entry failure.
pub(crate) fn init_guarded(
    plugin: &str,
    init: impl FnOnce() -> Result<(), String>,
) -> Result<(), EntryFailure> {
    match guarded(init) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(EntryFailure::InitFailed {
            plugin: plugin.to_owned(),
            reason,
        }),
        Err(message) => Err(EntryFailure::Panicked {
            plugin: plugin.to_owned(),
            message,
        }),
    }
}

/// The body of a plugin's entry point (see [`export_plugin!`](crate::export_plugin!)).
///
/// # Safety
///
/// Called by the host only after its [`AbiDecl`] check passed, with `host` a valid
/// `*mut Registrar`, `configs` valid UTF-8 TOML text and `err_out` a valid
/// `*mut Option<EntryFailure>`, all live for the duration of the call and not aliased.
#[doc(hidden)]
pub unsafe fn __entry(host: *mut c_void, configs: RawStr, err_out: *mut c_void) -> i32 {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the ABI guard proved both sides share rustc, hooks-api and layouts, so
        // `host` points at a `Registrar` of this very definition; the host passes a unique,
        // live pointer for the duration of the call.
        let registrar = unsafe { &mut *host.cast::<Registrar>() };
        if let Some(host_log) = registrar.host_log {
            install_forward_logger(host_log);
        }
        // SAFETY: the host passes the text of a live `String` for the duration of the call.
        let text = unsafe { configs.as_str() };
        let configs: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                return Err(EntryFailure::InitFailed {
                    plugin: "<configuration>".to_owned(),
                    reason: e.to_string(),
                })
            }
        };
        let decls = linked_plugins();
        if decls.is_empty() {
            return Err(EntryFailure::Empty);
        }
        init_all(registrar, &decls, &configs)
    }));
    let failure = match result {
        Ok(Ok(())) => return ENTRY_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => EntryFailure::Panicked {
            plugin: "<entry>".to_owned(),
            message: panic_message(&*payload),
        },
    };
    // SAFETY: `err_out` is a valid, unaliased `*mut Option<EntryFailure>` (see above).
    unsafe { *err_out.cast::<Option<EntryFailure>>() = Some(failure) };
    ENTRY_FAILED
}

/// Exports the plugin ABI from a cdylib: the [`ABI_SYMBOL`](crate::abi::ABI_SYMBOL) and
/// [`ENTRY_SYMBOL`](crate::abi::ENTRY_SYMBOL) functions.
/// Use it once per library, next to one or more [`plugin!`](crate::plugin!) declarations:
///
/// ```ignore
/// hooks_api::plugin!("my-plugin", env!("CARGO_PKG_VERSION"), init);
/// hooks_api::export_plugin!();
/// ```
#[macro_export]
macro_rules! export_plugin {
    () => {
        $crate::export_plugin!(abi_version = $crate::abi::ABI_VERSION);
    };
    (abi_version = $abi_version:expr) => {
        /// The plugin's ABI declaration, checked by the host before anything else.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn impulse_plugin_abi() -> *const $crate::abi::AbiDecl {
            static DECL: $crate::abi::AbiDecl = $crate::entry::declaration($abi_version);
            &DECL
        }

        /// The plugin's entry point, called by the host after the ABI check.
        ///
        /// # Safety
        ///
        /// See `hooks_api::entry::__entry`.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn impulse_plugin_entry(
            host: *mut ::core::ffi::c_void,
            configs: $crate::abi::RawStr,
            err_out: *mut ::core::ffi::c_void,
        ) -> i32 {
            // SAFETY: the host calls this only after checking the AbiDecl, with the pointers
            // `hooks_api::entry::__entry` documents.
            unsafe { $crate::entry::__entry(host, configs, err_out) }
        }
    };
}
