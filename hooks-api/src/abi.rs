//! The plugin ABI: what a `.so` exports and what the host checks before trusting it.
//!
//! A plugin cdylib built with [`export_plugin!`](crate::export_plugin!) exports two
//! `extern "C"` symbols:
//!
//! - [`ABI_SYMBOL`] `() -> *const AbiDecl`: a `#[repr(C)]` declaration made only of integers
//!   and pointer+length strings, readable whatever compiler built the library;
//! - [`ENTRY_SYMBOL`] `(host: *mut c_void, configs: RawStr, err_out: *mut c_void) -> i32`:
//!   runs inside `catch_unwind`, walks **the plugin's own** `inventory` of
//!   [`PluginDecl`]s (a dlopen'ed library has its own copy of those
//!   statics) and calls each `init` with the host's [`Registrar`].
//!
//! # Why the same rustc and hooks-api version
//!
//! The entry hands Rust values across the boundary — `&mut Registrar`, closures in `Arc<dyn
//! Fn>`, `Reply`s, `String`s. Rust has no stable ABI: the layout of those types and the
//! calling convention of their methods are only guaranteed identical when both sides are
//! compiled by the same compiler from the same source. So the host calls the entry only
//! when every field of [`AbiDecl`] matches its own: [`ABI_VERSION`], the hooks-api version,
//! the full `rustc --version` string, the target triple, and a layout fingerprint (sizes and
//! alignments of the types that cross, which also catches a different `smtp-proto` or
//! feature set). What the guard cannot see: both sides must use the system allocator (no
//! `#[global_allocator]` in either), since values allocated on one side are freed on the
//! other; and both should be built from the same `Cargo.lock`.
//!
//! Configuration crosses as TOML text, and log records as `(level, target, message)`
//! through a host function, so neither depends on the `toml` or `log` crate versions.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::mem::{align_of, size_of};
use std::sync::OnceLock;

use crate::config::PluginConfig;
use crate::hook::guarded;
use crate::plugin::PluginDecl;
use crate::registrar::Registrar;

/// The version of the entry protocol; bumped whenever [`AbiDecl`] or the entry changes.
pub const ABI_VERSION: u32 = 1;
/// This hooks-api's version.
pub const HOOKS_API_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `rustc --version` of the compiler that built this hooks-api.
pub const RUSTC_VERSION: &str = env!("HOOKS_API_RUSTC_VERSION");
/// The target triple this hooks-api was built for.
pub const TARGET: &str = env!("HOOKS_API_TARGET");
/// The symbol returning the [`AbiDecl`].
pub const ABI_SYMBOL: &str = "impulse_plugin_abi";
/// The entry symbol.
pub const ENTRY_SYMBOL: &str = "impulse_plugin_entry";

/// A string as a pointer and a length, the only string form in [`AbiDecl`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RawStr {
    /// The first byte.
    pub ptr: *const u8,
    /// The length in bytes.
    pub len: usize,
}

// SAFETY: a RawStr only ever points at immutable data (string literals, or a host string
// that outlives the call it is passed to); sharing it between threads is sound.
unsafe impl Sync for RawStr {}
// SAFETY: as above; the pointee is never mutated.
unsafe impl Send for RawStr {}

impl RawStr {
    /// Points at `s`.
    pub const fn new(s: &str) -> Self {
        RawStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Copies the string out, refusing null pointers, lengths over 4096 and invalid UTF-8.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads of `len` bytes for the duration of the call.
    pub unsafe fn to_owned_checked(&self) -> Option<String> {
        if self.ptr.is_null() || self.len > 4096 {
            return None;
        }
        // SAFETY: non-null and valid for `len` bytes per the caller's contract.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }

    /// The string, when it was made from a `&str` of the same image.
    ///
    /// # Safety
    ///
    /// `ptr`/`len` must describe a valid `&str` that outlives `'a`.
    pub(crate) unsafe fn as_str<'a>(&self) -> &'a str {
        // SAFETY: per the caller's contract.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr, self.len)) }
    }
}

/// The ABI guard a plugin exports. Only integers and [`RawStr`]s, so the host can read it
/// from a library built by any compiler. `abi_version` stays the first field in every
/// version; later versions only append fields.
#[repr(C)]
#[derive(Debug)]
pub struct AbiDecl {
    /// [`ABI_VERSION`] of the plugin's hooks-api.
    pub abi_version: u32,
    /// [`HOOKS_API_VERSION`].
    pub hooks_api_version: RawStr,
    /// [`RUSTC_VERSION`].
    pub rustc_version: RawStr,
    /// [`TARGET`].
    pub target: RawStr,
    /// [`LAYOUT`].
    pub layout: u64,
}

impl AbiDecl {
    /// This image's declaration.
    pub const fn current() -> Self {
        Self::with_abi_version(ABI_VERSION)
    }

    /// This image's declaration with another ABI version (for testing the guard).
    #[doc(hidden)]
    pub const fn with_abi_version(abi_version: u32) -> Self {
        AbiDecl {
            abi_version,
            hooks_api_version: RawStr::new(HOOKS_API_VERSION),
            rustc_version: RawStr::new(RUSTC_VERSION),
            target: RawStr::new(TARGET),
            layout: LAYOUT,
        }
    }
}

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

/// A fingerprint of the sizes and alignments of the types that cross the plugin boundary.
pub const LAYOUT: u64 = fingerprint!(
    Registrar,
    crate::Verdict,
    crate::Pending,
    crate::Completer,
    crate::RcptCtx<'static>,
    crate::MessageCtx<'static>,
    crate::QueueCtx<'static>,
    crate::ExtensionCtx<'static>,
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

/// The host's log function and level, handed to a `.so` so its `log` records reach the
/// host's logger whatever `log` version each side uses.
#[derive(Clone, Copy)]
pub(crate) struct HostLog {
    pub(crate) log: fn(usize, &str, &str),
    pub(crate) max_level: usize,
}

/// The host side of [`HostLog`]: re-emits a plugin's record through the host's logger.
pub(crate) fn host_log(level: usize, target: &str, message: &str) {
    let level = match level {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        _ => log::Level::Trace,
    };
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(target)
            .args(format_args!("{message}"))
            .build(),
    );
}

impl HostLog {
    pub(crate) fn current() -> Self {
        HostLog {
            log: host_log,
            max_level: log::max_level() as usize,
        }
    }
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

/// Why an entry (or a static initialisation) failed; written through `err_out`.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryFailure {
    /// A panic, in `plugin`'s `init` or in the entry itself.
    Panicked {
        /// The plugin, or `<entry>`.
        plugin: String,
        /// The panic message.
        message: String,
    },
    /// `init` returned an error (or the configuration text did not parse).
    InitFailed {
        /// The plugin.
        plugin: String,
        /// Its reason.
        reason: String,
    },
    /// The library holds no plugin declaration.
    Empty,
}

/// Entry return codes.
pub(crate) const ENTRY_OK: i32 = 0;
pub(crate) const ENTRY_FAILED: i32 = 1;

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
        match guarded(|| (decl.init)(registrar, &config)) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(EntryFailure::InitFailed {
                    plugin: decl.name.to_owned(),
                    reason,
                })
            }
            Err(message) => {
                return Err(EntryFailure::Panicked {
                    plugin: decl.name.to_owned(),
                    message,
                })
            }
        }
    }
    Ok(())
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
        let decls = crate::plugin::linked_plugins();
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
            message: crate::hook::panic_message(&*payload),
        },
    };
    // SAFETY: `err_out` is a valid, unaliased `*mut Option<EntryFailure>` (see above).
    unsafe { *err_out.cast::<Option<EntryFailure>>() = Some(failure) };
    ENTRY_FAILED
}

/// Exports the plugin ABI from a cdylib: the [`ABI_SYMBOL`] and [`ENTRY_SYMBOL`] functions.
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
            static DECL: $crate::abi::AbiDecl =
                $crate::abi::AbiDecl::with_abi_version($abi_version);
            &DECL
        }

        /// The plugin's entry point, called by the host after the ABI check.
        ///
        /// # Safety
        ///
        /// See `hooks_api::abi::__entry`.
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn impulse_plugin_entry(
            host: *mut ::core::ffi::c_void,
            configs: $crate::abi::RawStr,
            err_out: *mut ::core::ffi::c_void,
        ) -> i32 {
            // SAFETY: the host calls this only after checking the AbiDecl, with the pointers
            // `hooks_api::abi::__entry` documents.
            unsafe { $crate::abi::__entry(host, configs, err_out) }
        }
    };
}
