//! The plugin ABI, as data: what a `.so` exports and what the host checks before trusting
//! it — the `#[repr(C)]` declaration, the version constants and symbol names, and the plain
//! values that cross the entry.
//!
//! This is the bottom layer of the crate: it uses no other module. What it does not do:
//! open libraries (that is [`crate::loader`], the host side), run the entry or compute the
//! layout fingerprint (that is [`crate::entry`], the plugin side, which knows the types
//! that cross).
//!
//! A plugin cdylib built with [`export_plugin!`](crate::export_plugin!) exports two
//! `extern "C"` symbols:
//!
//! - [`ABI_SYMBOL`] `() -> *const AbiDecl`: a `#[repr(C)]` declaration made only of integers
//!   and pointer+length strings, readable whatever compiler built the library;
//! - [`ENTRY_SYMBOL`] `(host: *mut c_void, configs: RawStr, err_out: *mut c_void) -> i32`:
//!   runs inside `catch_unwind`, walks **the plugin's own** `inventory` of
//!   [`PluginDecl`](crate::PluginDecl)s (a dlopen'ed library has its own copy of those
//!   statics) and calls each `init` with the host's [`Registrar`](crate::Registrar).
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

/// The version of the entry protocol; bumped whenever [`AbiDecl`], the entry, or the shape
/// of what crosses it changes (2: the hook chains a `Registrar` holds are generated from the
/// hook table, with the disconnect chain in protocol order; 3: the relay-side points `route`,
/// `attempt`, `delivery_outcome` and `bounce`, and the `Ctx` fault flag).
pub const ABI_VERSION: u32 = 3;
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
    /// [`LAYOUT`](crate::entry::LAYOUT).
    pub layout: u64,
}

impl AbiDecl {
    /// A declaration with these ABI version and layout fingerprint, and this image's
    /// hooks-api version, rustc and target. Plugins get theirs from
    /// [`export_plugin!`](crate::export_plugin!).
    pub const fn new(abi_version: u32, layout: u64) -> Self {
        AbiDecl {
            abi_version,
            hooks_api_version: RawStr::new(HOOKS_API_VERSION),
            rustc_version: RawStr::new(RUSTC_VERSION),
            target: RawStr::new(TARGET),
            layout,
        }
    }
}

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
